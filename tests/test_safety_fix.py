"""Fix safety against hostile and careless input (issue 10, items 2, 3, 6, 7).

- Commands on the control machine run in install_dir with `~` expanded THERE (the SSH user's home), quoted.
- Every command bkdoctor prints for copy-paste (the manual steps of every remediation, `Fix:` hints, the
  cross-layer texts, the rules' own fix commands) parses with `bash -n`.
- Shell metacharacters in every host fact and inventory value a plan uses go through every remediation's plan:
  every generated script and command parses with `sh -n`, and the hostile value reaches the shell only quoted
  (a marker command planted in the value never runs when the script is executed).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml
from hostcases import make_ssh_host
from safetykit import fix_on, node_inventory

from bkdoctor.inputs.inventory import load_inventory


def bash_n(cmd: str, shell: str = "bash") -> str | None:
    """None when `cmd` parses, else the shell's complaint."""
    r = subprocess.run([shutil.which(shell) or shell, "-n"], input=cmd.encode(), capture_output=True, timeout=10)
    return None if r.returncode == 0 else r.stderr.decode("utf-8", "replace").strip()


# -- item 2: install_dir with ~ on a control machine reached over SSH --------------------------------------
STANDIN = """#!/bin/sh
# helmfile stand-in: records where it ran and with what
printf '%s|%s\\n' "$PWD" "$*" >> /root/helmfile-calls
"""


@pytest.mark.ssh
def test_control_commands_run_in_install_dir_with_tilde_expanded_on_the_target(ssh_fleet, tmp_path):
    from bkdoctor.fix.loop import run_on_control

    odd = "bk dir/$(touch /root/pwned);x'y"
    fleet, ctl = make_ssh_host(
        ssh_fleet,
        {
            "hostname": "ctl",
            "overlays": ["/etc", "/root"],
            "files": {
                "/root/bkce7.1-install/blueking/bin/helmfile": {"content": STANDIN, "mode": 0o755},
                f"/root/{odd}/bin/helmfile": {"content": STANDIN, "mode": 0o755},
            },
        },
    )
    for install_dir, where in (
        ("~/bkce7.1-install/blueking", "/root/bkce7.1-install/blueking"),
        (f"~/{odd}", f"/root/{odd}"),
    ):
        inv_path = tmp_path / "hosts.yaml"
        inv_path.write_text(
            yaml.safe_dump(
                {
                    "domain": "bkce7.bktencent.com",
                    "install_dir": install_dir,
                    "ssh": fleet.ssh_settings(),
                    "hosts": [{"name": "ctl", "address": ctl.address, "roles": ["control"]}],
                }
            )
        )
        if install_dir.endswith(odd):
            # the inventory schema refuses such a directory; the quoting must hold on its own all the same
            from bkdoctor.model import BadInput

            with pytest.raises(BadInput, match="install_dir"):
                load_inventory(str(inv_path))
            inv_path.write_text(inv_path.read_text().replace(install_dir, "~/bkce7.1-install/blueking"))
            inv = load_inventory(str(inv_path))
            inv.install_dir = install_dir
        else:
            inv = load_inventory(str(inv_path))
        # the command the storage-class remediation runs there (as planned from the cluster's facts)
        rem = _rems()["storage-class"]
        plan = rem.plan(SimpleNamespace(get=lambda kind: []), SimpleNamespace(target="cluster"))
        (ch,) = plan.changes
        assert ch.where == "control"
        rc, out = asyncio.run(run_on_control(inv, ch.script, timeout=60))
        assert rc == 0, out
        calls = ctl.read("/root/helmfile-calls").decode().splitlines()
        assert calls[-1] == f"{where}|-f 00-localpv.yaml.gotmpl sync", calls
    assert ctl.run("test -e /root/pwned", check=False).returncode != 0  # the directory name never ran


def test_target_path_quotes_everything_but_the_home():
    from bkdoctor.model import BadInput
    from bkdoctor.safe.shell import target_path

    assert target_path("~/bkce7.1-install/blueking") == '"$HOME"/bkce7.1-install/blueking'
    assert target_path("~") == '"$HOME"'
    assert target_path("/opt/a b") == "'/opt/a b'"
    assert target_path("~root/x") == "~root/x"
    for bad in ("~$(id)/x", "~a b/x", "/a\0b"):
        with pytest.raises(BadInput):
            target_path(bad)
    # in a real shell: HOME with a space stays one word
    out = subprocess.run(
        ["sh", "-c", f"printf %s {target_path('~/x y')}"], env={"HOME": "/h o"}, capture_output=True, text=True
    ).stdout
    assert out == "/h o/x y"


def _rems():
    from bkdoctor.fix.plan import all_remediations

    return all_remediations()


# -- items 3 and 6: every generated command parses, and a hostile value reaches the shell only quoted ---------
MARK = "PWN"
# shell metacharacters of every kind, a newline, and commands that would leave /run/PWN behind if they ran
HOSTILE = "a$(touch /run/PWN)`touch /run/PWN`;touch /run/PWN|&<>*?[a]~\\\n touch /run/PWN # x'y\"z"


def exposed(script: str, marker: str = MARK) -> list[str]:
    """The places where `marker` is NOT inert in `script` read by a POSIX shell: outside single quotes, a
    backslash escape and a comment (inside double quotes `$(...)` and backquotes still run). Returns the
    script's lines around each such occurrence (empty: every occurrence is quoted)."""
    n = len(script)
    safe = [False] * n
    i, word_start = 0, True
    while i < n:
        c = script[i]
        if c == "'":
            j = script.find("'", i + 1)
            j = n - 1 if j < 0 else j
            for k in range(i, j + 1):
                safe[k] = True
            i, word_start = j + 1, False
            continue
        if c == "\\":
            for k in (i, i + 1):
                if k < n:
                    safe[k] = True
            i, word_start = i + 2, False
            continue
        if c == '"':
            j = i + 1
            while j < n and script[j] != '"':
                j += 2 if script[j] == "\\" else 1
            i, word_start = j + 1, False
            continue
        if c == "#" and word_start:
            j = script.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                safe[k] = True
            i = j
            continue
        word_start = c in " \t\n;&|()"
        i += 1
    out, at = [], script.find(marker)
    while at >= 0:
        if not all(safe[at : at + len(marker)]):
            line_start = script.rfind("\n", 0, at) + 1
            line_end = script.find("\n", at)
            out.append(script[line_start : line_end if line_end >= 0 else n])
        at = script.find(marker, at + 1)
    return out


def test_exposed_finds_what_a_shell_would_run():
    import shlex

    assert exposed(f"echo {shlex.quote(HOSTILE)}") == []
    assert exposed(f"ln -sfn {HOSTILE} /etc/localtime")
    assert exposed(f'fail "step 1 failed: {HOSTILE.replace(chr(34), "")}"')
    assert exposed(f"helm history x  # which declares {HOSTILE}?")  # the newline ends the comment
    assert exposed(f'cd "$HOME"/{shlex.quote(HOSTILE)}') == []
    # and it agrees with a real shell: the quoted form runs nothing, the bare one leaves /run/PWN behind
    for cmd, runs in ((f"echo {shlex.quote(HOSTILE)} >/dev/null", False), (f"echo $(echo {MARK}) >/dev/null", True)):
        assert bool(exposed(cmd)) == runs


def check_command(cmd: str, where: str, hostile: bool = True) -> None:
    for shell in ("sh", "bash"):
        err = bash_n(cmd, shell)
        assert err is None, f"{where}: `{shell} -n` refuses {cmd!r}: {err}"
    if hostile:
        bad = exposed(cmd)
        assert not bad, f"{where}: a hostile value is not quoted in: {bad}"


def fill_placeholders(cmd: str) -> str:
    """`<ns>`, `<your-registry>`: a placeholder the operator fills in (documented as such); the rest must parse."""
    import re

    return re.sub(r"<[^<>\n]+>", "PLACEHOLDER", cmd)


def test_every_rule_fix_command_parses():
    from bkdoctor.scan.loader import all_rules

    n = 0
    for r in all_rules():
        for c in r.fix:
            check_command(fill_placeholders(c), f"rule {r.id}", hostile=False)
            n += 1
    assert n > 50


HOSTILE_STATE = {
    "hostname": "node-10-0-0-5",
    "selinux_enforce": "1",
    "files": {
        "/proc/swaps": "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n/swap'$(touch${IFS}/run/PWN)  file\t4\t0\t-2\n",
        "/etc/selinux/config": "SELINUX=enforcing # $(touch /run/PWN)\nSELINUXTYPE=targeted\n",
        "/etc/docker/daemon.json": '{"insecure-registries": ["a\'$(touch /run/PWN)"], "data-root": "/x`touch /run/PWN`"}\n',
    },
    "symlinks": {"/etc/localtime": "../usr/share/zoneinfo/" + HOSTILE},
    "setup": "\n".join(
        [
            # a firewalld stand-in (as fixtures/host/firewall/firewalld-running.fail)
            "cp /bin/sleep /run/firewalld",
            "/run/firewalld 600 >/dev/null 2>&1 &",
            "echo $! > /run/firewalld.pid",
            "printf '%s\\n' \"10.9.9.9 a'\\$(touch /run/PWN) docker.bkce7.bktencent.com\" >> /etc/hosts",
            "printf '%s\\n' \"/dev/x'\\$(touch /run/PWN) swap swap defaults 0 0\" >> /etc/fstab",
            "for i in $(seq -w 1 20); do umount /mnt/blueking/vol$i; done",
            "rm -rf /mnt/blueking /data/bcs/localpv",
            "sed -i '/localpv/d' /etc/fstab",
            'mkdir -p "/data/bcs/localpv/v\'\\$(touch /run/PWN)"',
        ]
    ),
}


@pytest.fixture(scope="module")
def hostile_host():
    """A namespaced host whose files, links and processes carry shell metacharacters, scanned by the real probe."""
    from hostcases import FIXTURES, Case, make_host
    from testbed.fixtures import NsHostFactory, nshost_unavailable

    why = nshost_unavailable()
    if why:
        pytest.skip(why)
    factory = NsHostFactory()
    try:
        host = make_host(factory, Case(rule="hostile", name="x", status="fail", path=FIXTURES, spec=HOSTILE_STATE))
        from bkdoctor.scan import engine, loader
        from bkdoctor.transport import LocalTransport

        inv = node_inventory()
        rules = [r for r in loader.all_rules() if r.scope == "host" and r.remediation]
        result = asyncio.run(
            engine.scan(
                inv,
                rules,
                factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address),
            )
        )
        (t,) = [t for t in result.targets if t.kind == "host"]
        assert t.facts is not None, t.error
        yield host, t.facts, result
    finally:
        factory.close()


def _host_contexts():
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.scan import engine

    benign = th.merge(None)
    hostile = dict(
        benign,
        timezone="Asia/" + HOSTILE,
        localpv_mount_dir="/mnt/" + HOSTILE,
        localpv_source_dir="/data/" + HOSTILE,
        localpv_count=2,
    )
    for name, thr, proxies in (
        ("benign inventory", benign, ("http://10.0.0.9:5000",)),
        ("hostile inventory", hostile, (f"http://{HOSTILE}:5000",)),
    ):
        yield (
            name,
            engine.Context(
                target="node-" + HOSTILE,
                roles=("node", "master"),
                address=HOSTILE,
                thresholds=thr,
                domain="bkce7.bktencent.com",
                ingress_ip="10.96.45.12",
                registry_proxies=proxies,
                first_master="10.0.0.2",
            ),
        )
    # what is not known yet (no ingress address, no master, no proxy): the manual branches
    yield (
        "sparse inventory",
        engine.Context(target="n", roles=("node",), address=None, thresholds=benign, domain="bkce7.bktencent.com"),
    )


def _commands_of(plan, where: str):
    """(what, text) of every shell text a plan makes: the apply script, each command and its undo, each
    manual step, the restore script of each file."""
    from bkdoctor.fix.hostscript import host_apply_script, restore_script
    from bkdoctor.fix.plan import CommandChange, FileChange

    if plan.changes:
        yield f"{where}: apply script", host_apply_script(plan, "20260101000000")
    for ch in plan.changes:
        if isinstance(ch, CommandChange):
            yield f"{where}: command", ch.script
            if ch.undo:
                yield f"{where}: undo", ch.undo
        if isinstance(ch, FileChange):
            yield f"{where}: restore", restore_script(ch.path, ch.path + ".bak-20260101000000", "0" * 64)
    for m in plan.manual:
        yield f"{where}: manual", fill_placeholders(m)


def test_hostile_host_facts_and_inventory_reach_every_host_plan_quoted(hostile_host):
    from bkdoctor.facts.host import HostFacts
    from bkdoctor.model import BadInput, FactUnavailable

    host, facts, _ = hostile_host
    assert HOSTILE in facts.timezone["localtime_target"]  # the real probe read the hostile link as it is
    with_docker = HostFacts(
        sections=facts.sections,
        docker_api={
            "version": {"Version": "19.03.9", "ApiVersion": "1.40"},
            "info": {
                "RegistryConfig": {"IndexConfigs": {HOSTILE: {"Secure": False}}, "Mirrors": [HOSTILE]},
                "DockerRootDir": "/data/" + HOSTILE,
            },
        },
    )
    rems = {k: m for k, m in _rems().items() if m.scope == "host"}
    seen, planned = 0, set()
    for fname, f in (("no docker", facts), ("docker", with_docker)):
        for cname, ctx in _host_contexts():
            for rid, mod in sorted(rems.items()):
                where = f"{rid} ({fname}, {cname})"
                try:
                    plan = mod.plan(f, ctx)
                except (BadInput, FactUnavailable):
                    continue  # refused: nothing runs
                for what, text in _commands_of(plan, where):
                    check_command(text, what)
                    seen += 1
                assert mod.disruptive or not any(getattr(c, "disruptive", False) for c in plan.changes), rid
                if not plan.empty:
                    planned.add(rid)
    # the test exercised every host remediation with something to do
    assert planned >= {
        "timezone",
        "swap",
        "selinux",
        "firewall",
        "hosts-file",
        "localpv-dirs",
        "insecure-registries",
        "registry-mirrors",
        "time-sync",
    }, planned
    assert seen > 40


def test_timezone_fix_journal_and_undo_with_a_hostile_link(hostile_host, tmp_path):
    """The issue's example end to end: the undo of a timezone fix is the host's own link target, quoted; run as
    the journal shows it, it restores that link and runs nothing."""
    from bkdoctor.store import History

    host, _, _ = hostile_host
    before = host.run("readlink /etc/localtime").stdout.decode()[:-1]
    assert before == "../usr/share/zoneinfo/" + HOSTILE
    inv = node_inventory()
    hist = History(tmp_path / "h.db")
    try:
        out = fix_on(host, inv, ["timezone"], history=hist)
        assert [o.status for o in out] == ["fixed"], [(o.status, o.message.en) for o in out]
        (change,) = hist.fix(out[0].fix_id)["changes"]
        check_command(change["undo"], "journal undo")
        host.run(change["undo"])
        assert host.run("readlink /etc/localtime").stdout.decode()[:-1] == before
        # and with a hostile time zone in the inventory, the failing step's message runs nothing either
        inv.thresholds = dict(inv.thresholds, timezone="Asia/" + HOSTILE)
        out = fix_on(host, inv, ["timezone"])
        assert [o.status for o in out] == ["failed"]
    finally:
        host.run("ln -sfn ../usr/share/zoneinfo/Asia/Shanghai /etc/localtime")
    assert host.run(f"test -e /run/{MARK}", check=False).returncode != 0, "a hostile value ran as a command"


class HostileCluster:
    """Cluster facts as the cluster would hand them over, every name and namespace hostile."""

    def __init__(self, default_sc: bool):
        env_cm = {
            "metadata": {"namespace": HOSTILE, "name": "bkpaas3-apiserver-general-env", "resourceVersion": "1"},
            "data": {"PAAS_APP_IMAGE": "hub.bktencent.com/blueking/slug-app:1"},
        }
        self.kinds = {
            "configmaps": {
                "kube-system/coredns": {
                    "metadata": {"namespace": "kube-system", "name": "coredns", "resourceVersion": "1"},
                    "data": {
                        "Corefile": f".:53 {{\n    hosts {{\n        10.1.1.1 {MARK}.x\n    }}\n"
                        "    forward . /etc/resolv.conf\n}\n"
                    },
                },
                f"{HOSTILE}/bkpaas3-apiserver-general-env": env_cm,
                f"{HOSTILE}/ingress-nginx-controller": {
                    "metadata": {"namespace": HOSTILE, "name": "ingress-nginx-controller"},
                    "data": {},
                },
            },
            # labelled as the chart does: the guide's one ingress lookup (§四.6.3) finds it
            "services": [
                {
                    "metadata": {
                        "name": "ingress-nginx-controller",
                        "namespace": HOSTILE,
                        "labels": {
                            "app.kubernetes.io/instance": "ingress-nginx",
                            "app.kubernetes.io/component": "controller",
                        },
                    },
                    "spec": {"clusterIP": "10.96.45.12"},
                }
            ],
            # the controller pod, not ready: the ingress-nginx fix's manual steps name it
            "pods": [
                {
                    "metadata": {
                        "name": "ingress-nginx-controller-" + HOSTILE,
                        "namespace": HOSTILE,
                        "labels": {
                            "app.kubernetes.io/name": "ingress-nginx",
                            "app.kubernetes.io/component": "controller",
                        },
                    },
                    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
                }
            ],
            "helm_releases": [
                {
                    "namespace": HOSTILE,
                    "name": "bk-" + HOSTILE,
                    "status": "pending-upgrade",
                    "revision": 3,
                    "revisions": 3,
                },
                {
                    "namespace": HOSTILE,
                    "name": "bk-" + HOSTILE,
                    "status": "pending-install",
                    "revision": 1,
                    "revisions": 1,
                },
                {"namespace": HOSTILE, "name": "zz" + HOSTILE, "status": "failed", "revision": 2},
                {"namespace": "blueking", "name": "bk-cmdb", "status": "failed", "revision": 2},
            ],
            "storageclasses": [
                {"metadata": {"name": HOSTILE, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
            ]
            if default_sc
            else [],
        }

    def get(self, kind):
        return self.kinds[kind]


class EmptyCluster(HostileCluster):
    """A cluster without the objects the remediations look for: their manual branches."""

    def __init__(self, default_sc: bool):
        super().__init__(default_sc)
        self.kinds.update(configmaps={}, services=[], pods=[], helm_releases=[])


def test_hostile_cluster_objects_and_values_reach_every_cluster_plan_quoted():
    from bkdoctor.fix.loop import control_script
    from bkdoctor.fix.plan import CommandChange
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.model import BadInput, FactUnavailable
    from bkdoctor.scan import engine

    rems = {k: m for k, m in _rems().items() if m.scope == "cluster"}
    seen, planned = 0, set()
    for default_sc in (False, True):
        for image in (None, "registry.local/blueking/slug-app:v1", HOSTILE):
            ctx = engine.ClusterContext(
                target="cluster",
                thresholds=th.merge(None),
                domain="bkce7.bktencent.com",
                params={"image": image} if image else {},
            )
            for rid, mod in sorted(rems.items()):
                where = f"{rid} (default sc {default_sc}, image {image is not None})"
                try:
                    plans = [mod.plan(HostileCluster(default_sc), ctx)]
                except (BadInput, FactUnavailable):
                    continue
                try:
                    plans.append(mod.plan(EmptyCluster(default_sc), ctx))
                except (BadInput, FactUnavailable):
                    pass
                for what, text in (x for p in plans for x in _commands_of(p, where)):
                    if what.endswith("apply script"):
                        continue  # cluster plans are not host scripts
                    check_command(text, what)
                    seen += 1
                # a plan that deletes pods or rolls back comes from a remediation that says so (reports show it)
                assert mod.disruptive or not any(getattr(c, "disruptive", False) for p in plans for c in p.changes), rid
                plan = plans[0]
                for ch in plan.changes:
                    if isinstance(ch, CommandChange) and ch.where == "control":
                        # as it runs on the control machine, in a hostile install_dir, here or over SSH
                        for install_dir, local in (
                            ("~/" + HOSTILE, False),
                            ("/opt/" + HOSTILE, True),
                            ("~/" + HOSTILE, True),
                        ):
                            check_command(control_script(install_dir, local, ch.script), where + ": control script")
                            seen += 1
                if not plan.empty:
                    planned.add(rid)
    assert planned == set(rems), set(rems) - planned
    assert seen > 30


def test_faq_paas_cluster_command_finds_the_quoted_namespace():
    """The pod-deleting command of faq-paas-init-data names its namespace quoted; the code that runs it through
    the API reads the same namespace back."""
    from bkdoctor.fix.plan import CommandChange
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.scan import engine

    mod = _rems()["faq-paas-init-data"]
    ctx = engine.ClusterContext(
        target="cluster",
        thresholds=th.merge(None),
        domain="bkce7.bktencent.com",
        params={"image": "registry.local/blueking/slug-app:v1"},
    )
    (cmd,) = [c for c in mod.plan(HostileCluster(False), ctx).changes if isinstance(c, CommandChange)]
    seen = []

    class Core:
        def list_namespaced_pod(self, ns):
            seen.append(ns)
            return SimpleNamespace(items=[])

    import kubernetes.client

    orig = kubernetes.client.CoreV1Api
    kubernetes.client.CoreV1Api = lambda api: Core()
    try:
        assert mod.run_command(SimpleNamespace(api_client=None), cmd) is None
    finally:
        kubernetes.client.CoreV1Api = orig
    assert seen == [HOSTILE]


# -- item 7: the `Fix:` hints and the cross-layer texts quote the host name ----------------------------------
HOSTNAME = "node-1;$(touch /run/PWN)`touch /run/PWN` 'x\"y"


def _fix_commands(text: str) -> list[str]:
    import re

    return [m.rstrip() for m in re.findall(r"bkdoctor fix [^\n│]*", text)]


def test_terminal_fix_hint_quotes_rule_and_host():
    import io

    from rich.console import Console

    from bkdoctor.report.terminal import print_report

    finding = {
        "rule": "swap",
        "target": HOSTNAME,
        "status": "fail",
        "severity": "high",
        "message": "swap is on",
        "remediation": {"id": "swap", "commands": ["swapoff -a"]},
        "guide": {"section": "一.4.2"},
    }
    report = {
        "lang": "en",
        "summary": {"pass": 0, "warn": 0, "fail": 1, "error": 0, "skip": 0, "suppressed": 0},
        "findings": [finding],
        "targets": [{"name": HOSTNAME, "address": "10.0.0.5", "reachable": True, "error": None}],
        "scan": {"id": "s1", "duration_s": 0.1},
    }
    import shlex

    # every view: the flat table and the by-host view name the host, the by-rule view fixes the rule on its hosts
    for group_by, argv in (("none", ["--host", HOSTNAME]), ("host", ["--host", HOSTNAME]), ("rule", [])):
        buf = io.StringIO()
        print_report(report, Console(file=buf, width=1000, color_system=None), verbose=False, group_by=group_by)
        cmds = _fix_commands(buf.getvalue())
        assert len(cmds) == 1, buf.getvalue()
        check_command(cmds[0], f"terminal Fix: (--group-by {group_by})")
        assert shlex.split(cmds[0], comments=True) == ["bkdoctor", "fix", "--rule", "swap", *argv]


def test_cross_layer_fix_text_quotes_the_host():
    import shlex

    from bkdoctor.model import Finding, Result, T
    from bkdoctor.scan import engine, loader

    rules = {r.id: r for r in loader.all_rules()}
    cf = Finding(
        rule=rules["faq-image-pull"],
        target="cluster",
        result=Result("fail", T("拉取失败", "image pull failed"), observed={"matches": [{"node": HOSTNAME}]}),
    )
    hf = Finding(
        rule=rules["insecure-registries"],
        target=HOSTNAME,
        result=Result("fail", T("缺少", "docker.x missing"), observed=None),
    )
    targets = [engine.TargetState(name=HOSTNAME, kind="host", address="10.0.0.5", roles=("node",))]
    engine.link_causes([cf], [hf], targets, SimpleNamespace(get=lambda kind: []))
    (rel,) = cf.related
    check_command(rel["fix"], "related fix")
    assert shlex.split(rel["fix"]) == ["bkdoctor", "fix", "--rule", "insecure-registries", "--host", HOSTNAME]
    for text in (cf.result.message.en, cf.result.message.zh):
        (cmd,) = _fix_commands(text.split("。")[0].split(". image pull")[0])
        check_command(cmd, "cross-layer message")


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed (test.sh installs it)")
def test_manual_jq_command_for_daemon_json_works(hostile_host):
    """The manual step shown when dockerd is not running is a jq program that really adds the missing entries,
    keeping every other key and the entries already there."""
    import json
    import shlex

    from bkdoctor.inputs import thresholds as th
    from bkdoctor.scan import engine

    _, facts, _ = hostile_host
    for rid, key, want in (
        ("insecure-registries", "insecure-registries", ["docker.bkce7.bktencent.com"]),
        ("registry-mirrors", "registry-mirrors", ["http://10.0.0.9:5000"]),
    ):
        ctx = engine.Context(
            target="n",
            roles=("node",),
            address="10.0.0.5",
            thresholds=th.merge(None),
            domain="bkce7.bktencent.com",
            registry_proxies=("http://10.0.0.9:5000",),
        )
        plan = _rems()[rid].plan(facts, ctx)
        argv = shlex.split(plan.manual[0], comments=True)
        assert argv[0] == "jq" and argv[2] == "/etc/docker/daemon.json"
        doc = {"data-root": "/data/bcs/lib/docker", key: ["already.there"]}
        out = subprocess.run(["jq", argv[1]], input=json.dumps(doc), capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == {**doc, key: ["already.there"] + want}
        again = subprocess.run(["jq", argv[1]], input=out.stdout, capture_output=True, text=True, check=True)
        assert json.loads(again.stdout) == json.loads(out.stdout)  # idempotent
        out = subprocess.run(["jq", argv[1]], input="{}", capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == {key: want}


def test_manual_outcome_lists_one_command_per_line(hostile_host):
    """A `manual` outcome shows its steps one per line, each of which copy-pastes (a step's trailing comment
    never swallows the next command)."""
    host, _, _ = hostile_host
    inv = node_inventory(docker_socket="/run/docker.sock")
    out = fix_on(host, inv, ["time-sync", "insecure-registries"], dry_run=True)
    manual = [o for o in out if o.status == "manual"]
    assert {o.rule for o in manual} == {"time-sync", "insecure-registries"}, [(o.rule, o.status) for o in out]
    for o in manual:
        for lang in ("en", "zh"):
            head, *steps = o.message.get(lang).split("\n")
            assert steps and head.endswith((":", "：")), o.message.get(lang)
            for step in steps:
                check_command(step.strip(), f"{o.rule} manual step", hostile=False)
        assert any("#" in s for s in o.message.en.split("\n")[1:-1]) or o.rule == "time-sync"


def test_half_edited_hosts_file_is_left_alone(nshost_factory):
    """Item 1 end to end: /etc/hosts with a `# BEGIN bkdoctor` and no end (the operator's lines after it): the fix
    is `refused` (bad input: `fix` exits 2), says why on a line that copy-pastes, and the file is not touched."""
    from hostcases import FIXTURES, Case, make_host

    from bkdoctor.fix.edits import BEGIN
    from bkdoctor.inputs.inventory import HostSpec

    text = f"127.0.0.1 localhost\n{BEGIN}\n10.96.45.12 bkce7.bktencent.com\n10.1.1.1 db-primary\n10.1.1.2 db-replica\n"
    host = make_host(
        nshost_factory,
        Case(rule="hosts-file", name="x", status="fail", path=FIXTURES, spec={"files": {"/etc/hosts": text}}),
    )
    inv = node_inventory(HostSpec(name="n", address="10.0.0.5", roles=("node",), local=True))
    inv.ingress_ip = "10.96.45.12"
    out = fix_on(host, inv, ["hosts-file"])
    assert [o.status for o in out] == ["refused"], [(o.status, o.message.en) for o in out]
    assert "no '# END bkdoctor'" in out[0].message.en
    for step in out[0].message.en.split("\n")[1:]:
        check_command(step.strip(), "manual step", hostile=False)
    assert host.read("/etc/hosts") == text.encode()
    assert host.run("ls /etc | grep -c 'hosts.bak' || true").stdout.strip() == b"0"


@pytest.mark.parametrize("bad", ["10.96.45.12\n203.0.113.9 evil.example", "10.96.45.12 x", "not-an-ip", ""])
def test_hosts_file_writes_only_ip_addresses(bad):
    """The address the hosts-file fix writes comes from the cluster's API (the ingress ClusterIP) or the inventory:
    anything that is not an IP address (a newline would add a line of its own) is a manual step, nothing written."""
    from bkdoctor.facts.host import HostFacts
    from bkdoctor.facts.probe import Section
    from bkdoctor.fix.plan import FileChange
    from bkdoctor.inputs import thresholds as th

    facts = HostFacts({"etc_hosts": Section("etc_hosts", 0, b"127.0.0.1 localhost\n")})
    ctx = SimpleNamespace(
        domain="bkce7.bktencent.com",
        thresholds=th.merge(None),
        roles=("node",),
        ingress={"cluster_ip": bad, "host_ips": [], "service": "blueking/ingress-nginx"},
        ingress_ip=None,
        first_master="10.0.0.2",
    )
    fix = _rems()["hosts-file"].plan(facts, ctx)
    if bad:
        assert not [c for c in fix.changes if isinstance(c, FileChange)] and fix.manual, fix
    good = _rems()["hosts-file"].plan(
        facts, SimpleNamespace(**{**vars(ctx), "ingress": {**ctx.ingress, "cluster_ip": "10.96.45.12"}})
    )
    [change] = good.changes
    assert b"10.96.45.12 bkce7.bktencent.com" in change.after


@pytest.mark.parametrize("bad", ["10.96.45.12\n}\nevil:53 {", "10.96.45.12 x.example", "none"])
def test_edits_write_only_ip_addresses(bad):
    """corefile_set_hosts and hosts_set refuse an address that is not one (the coredns fix takes the ClusterIP from
    the API): the coredns remediation then plans a manual step, the Corefile untouched."""
    from bkdoctor.fix.edits import EditError, corefile_set_hosts, hosts_set

    corefile = ".:53 {\n    forward . /etc/resolv.conf\n}\n"
    with pytest.raises(EditError, match="not an IP address"):
        corefile_set_hosts(corefile, bad, ["bkce7.bktencent.com"])
    with pytest.raises(EditError, match="not an IP address"):
        hosts_set("127.0.0.1 localhost\n", [(bad, ["bkce7.bktencent.com"])])
    assert "10.96.45.12 bkce7.bktencent.com" in corefile_set_hosts(corefile, "10.96.45.12", ["bkce7.bktencent.com"])
