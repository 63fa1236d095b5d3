"""`bkdoctor install` phases held against the guide, and `--plan` (the full guided run is tests/test_install_e2e.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bkdoctor import guidetext
from bkdoctor.install.phases import load_phases, select_phases
from bkdoctor.install.steps import (
    parse_join_commands,
    render,
    root_of,
    script,
    shell_path,
    yaml_set_missing,
)
from bkdoctor.model import BadInput


def guide_section(text: str, sid: str) -> str:
    """A section's text by the one guide parser (bkdoctor/guidetext.py); KeyError when there is none."""
    return guidetext.section_text(*guidetext.parse(text), sid)


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT.parent.parent / "shared" / "seed" / "000_ac029a12e5ebe66c.txt"
if not GUIDE.exists():
    GUIDE = Path("/work/shared/seed/000_ac029a12e5ebe66c.txt")
BASE = "https://bkopen-1252002024.file.myqcloud.com"
VALUES = {
    "domain": "bkce7.bktencent.com",
    "registry": "",
    "base": BASE,
    "master": "10.0.0.2",
    "node_ip": "10.0.0.5",
    "upstream": "https://hub.bktencent.com",
    "proxy_port": "5500",
    "proxy_config": "/etc/docker/registry/bkhub.yaml",
    "proxy_data": "/var/lib/registry-bkhub",
}

# Each phase's steps as the guide has them: (section, where, what). `what` is the command as rendered with the
# guide's own values, or kind:detail for what bkdoctor does itself. Order matters.
EXPECTED = {
    # one step per guide section; kernel-params is field knowledge
    "preflight": [
        ("一.4.2", "k8s-nodes", "fix:swap,selinux,firewall"),
        ("一.4.3", "k8s-nodes", "fix:timezone,time-sync"),
        ("not in the guide", "k8s-nodes", "fix:kernel-params"),
    ],
    "registry-proxy": [
        ("二.3.1", "registry-proxy", 'run:cat > "$proxy_config_file" <<EOF'),
        ("二.3.2", "registry-proxy", 'run:docker restart "$proxy_instance_name"'),
    ],
    "k8s": [
        ("三.2.1", "first-master", f"curl -fsSL {BASE}/ce7/bcs.sh | bash -s -- -i k8s"),
        ("三.3", "k8s-nodes", "builtin:join"),
    ],
    # §二.4.2 after k8s: the nodes have Docker (and bcs.sh's daemon.json) only then
    "registry-mirrors": [("二.4.2", "node-role", "fix:registry-mirrors")],
    "control-sync": [("三.4.2", "control", 'run:scp -o BatchMode=yes -- "$master_ip":~/.kube/config ~/.kube/config')],
    "install-files": [
        ("四.2.1", "control", "bkdl-7.1-stable.sh -ur latest base demo"),
        ("四.2.2", "control", "check:test -d bin && test -d blueking"),
        ("四.4.2", "control", "builtin:yaml-keys"),
        (
            "四.5.1",
            "control",
            "helm repo add blueking https://hub.bktencent.com/chartrepo/blueking && helm repo update",
        ),
        ("四.5.3", "control", "./scripts/generate_app_secret.sh ./environments/default/app_secret.yaml"),
        (
            "四.5.3",
            "control",
            "./scripts/generate_rsa_keypair.sh ./environments/default/bkapigateway_builtin_keypair.yaml",
        ),
        ("四.5.3", "control", "./scripts/create_k8s_cluster_admin_for_paas3.sh"),
        ("四.5.3", "control", "check:test -s environments/default/app_secret.yaml"),
    ],
    "ingress": [
        ("四.6.2", "control", "helmfile -f 00-ingress-nginx.yaml.gotmpl sync"),
        ("四.6.3", "control", "fix:coredns"),
    ],
    "storage": [
        ("五.2.3", "node-role", "rules:localpv-dirs"),
        ("五.2.4", "control", "helmfile -f 00-localpv.yaml.gotmpl sync"),
        ("五.3", "control", "helmfile -f base-storage.yaml.gotmpl sync"),
    ],
    "base-first": [("六.3.1", "control", "helmfile -f base-blueking.yaml.gotmpl -l seq=first sync")],
    "base-second": [("六.3.2", "control", "helmfile -f base-blueking.yaml.gotmpl -l seq=second sync")],
    "base-third": [("六.3.3", "control", "helmfile -f base-blueking.yaml.gotmpl -l seq=third sync")],
    "base-fourth": [("六.3.4", "control", "helmfile -f base-blueking.yaml.gotmpl -l seq=fourth sync")],
    "access": [
        ("六.4.3", "control", "builtin:access-info"),
        ("六.4.2", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_cmdb,bk_job"'),
        ("六.4.2", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_usermgr"'),
        ("六.4.2", "control", 'scripts/set_desktop_default_app.sh -a "bk_usermgr"'),
    ],
    "node-access": [
        ("七.2.2", "k8s-nodes", "fix:hosts-file"),
        ("七.3", "k8s-nodes", "rules:registry-ingress"),
        ("七.4.1", "k8s-nodes", "fix:insecure-registries"),
        ("四.5.2", "k8s-nodes", "rules:registry-trusted"),
    ],
    "saas": [
        ("九.3.1", "control", "manual:0shared"),
        ("九.5.1", "control", "manual:bk_itsm-V2.6.6.tar.gz"),
        ("九.5.2", "control", "manual:bk_sops-V3.28.13.tar.gz"),
        ("九.5.3", "control", "run:environments/default/version.yaml"),
        ("九.5.3", "control", "helmfile -f base-blueking.yaml.gotmpl -l name=bk-nodeman sync"),
        ("九.6.2", "control", './scripts/set_desktop_default_app.sh -a "bk_itsm,bk_sops,bk_nodeman"'),
        ("九.6.2", "control", './scripts/add_user_desktop_app.sh -u "admin" -a "bk_itsm,bk_sops,bk_nodeman"'),
    ],
    "agents": [
        ("十.2.1", "control", "bkdl-7.1-stable.sh -ur latest gse_agent"),
        ("十.2.2", "control", "./scripts/setup_bkce7.sh -u agent"),
        ("十.2.3", "control", "bkdl-7.1-stable.sh -ur latest gse_plugins_freq"),
        ("十.2.3", "control", "./scripts/setup_bkce7.sh -u plugin"),
        ("十.2.4", "control", "bkdl-7.1-stable.sh -ur latest gse_proxy"),
        ("十.2.4", "control", "./scripts/setup_bkce7.sh -u proxy"),
        ("十.2.4", "control", "./scripts/setup_bkce7.sh -u opentools"),
        ("十.3.2", "control", "manual:32181"),
        ("十.3.2", "control", "check:for port in 32181 30300 30025"),
        ("十.4.1", "control", "manual:直连区域"),
    ],
    "bcs": [
        ("十一.2.2", "control", "builtin:yaml-keys"),
        ("十一.3", "control", "builtin:yaml-keys"),
        ("十一.4", "control", "fix:coredns"),
        ("十一.5.1", "control", "helmfile -f 03-bcs.yaml.gotmpl sync"),
        ("十一.5.2", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_bcs"'),
        ("十一.5.2", "control", 'scripts/set_desktop_default_app.sh -a "bk_bcs"'),
        ("十一.6.1", "control", "manual:CommonTemplate(id=10001)"),
    ],
    "monitor-log": [
        ("十二.3.1", "control", "helmfile -f monitor-storage.yaml.gotmpl sync"),
        ("十二.3.2", "control", "./scripts/config_monitor_bcs_token.sh"),
        ("十二.3.3", "control", "helmfile -f 04-bkmonitor.yaml.gotmpl sync"),
        ("十二.3.4", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_monitorv3"'),
        ("十二.3.4", "control", 'scripts/set_desktop_default_app.sh -a "bk_monitorv3"'),
        ("十二.3.4", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_fta_solution"'),
        ("十二.3.4", "control", 'scripts/set_desktop_default_app.sh -a "bk_fta_solution"'),
        ("十二.4.1", "control", "run:auto_create_index"),
        ("十二.4.2", "control", "helmfile -f 04-bklog-collector.yaml.gotmpl sync"),
        ("十二.4.3", "control", "helmfile -f 04-bklog-search.yaml.gotmpl sync"),
        ("十二.4.3", "control", 'scripts/add_user_desktop_app.sh -u "admin" -a "bk_log_search"'),
        ("十二.4.3", "control", 'scripts/set_desktop_default_app.sh -a "bk_log_search"'),
    ],
}


def _what(step):
    if step.kind in ("fix", "rules"):
        return f"{step.kind}:" + ",".join(step.value)
    if step.kind == "builtin":
        return f"builtin:{step.value}"
    if step.kind == "manual":
        return "manual:" + step.value["en"]
    return render(step.value, VALUES)


def test_every_phase_matches_the_guide_step_for_step():
    phases = load_phases()
    assert [p.id for p in phases] == list(EXPECTED)
    guide = GUIDE.read_text(encoding="utf-8")
    for p in phases:
        got = [(s.guide, s.on, s) for s in p.steps]
        want = EXPECTED[p.id]
        assert len(got) == len(want), (p.id, [g[:2] for g in got])
        for (sec, on, step), (wsec, won, wwhat) in zip(got, want):
            assert (sec, on) == (wsec, won), (p.id, sec, on)
            what = _what(step)
            if ":" in wwhat.split(" ")[0] and wwhat.split(":")[0] in (
                "fix",
                "rules",
                "builtin",
                "manual",
                "run",
                "check",
            ):
                kind, detail = wwhat.split(":", 1)
                assert what.startswith(kind + ":") or step.kind == kind, (p.id, sec, what)
                assert detail in what, (p.id, sec, what)
            else:
                assert what == wwhat, (p.id, sec, what)  # the guide's command, verbatim
            if sec == "not in the guide":
                assert step.note.startswith("not in the guide: "), (p.id, step.note)
                continue
            # the quote is in that section of the guide
            assert squash(step.quote) in squash(guide_section(guide, sec)), (p.id, sec, step.quote)
            # a command the step runs that is the guide's command line is quoted from it
            if step.kind == "run" and what == wwhat:
                text = squash(guide_section(guide, sec)).replace(BASE, "@BASE")
                for part in wwhat.replace(BASE, "@BASE").split(" && "):
                    assert squash(part) in text, (p.id, sec, part)


def test_a_tolerated_failure_is_the_one_the_guide_says_to_ignore():
    """`tolerate:` lets a run step's failure pass only by the text the guide itself says can be ignored (§六.4.2:
    若提示`user(admin) not exists`，表示用户未登录，可忽略报错), quoted from that step's section."""
    guide = GUIDE.read_text(encoding="utf-8")
    tolerated = [(p.id, s) for p in load_phases() for s in p.steps if s.tolerate]
    assert tolerated, "no step tolerates a failure: keep this test honest"
    for pid, s in tolerated:
        sec = guide_section(guide, s.guide)
        assert f"若提示`{s.tolerate}`" in sec and "可忽略报错" in sec, (pid, s.guide, s.tolerate)


def test_guide_sections_are_found_and_headings_in_code_are_not_headings():
    guide = GUIDE.read_text(encoding="utf-8")
    sec = guide_section(guide, "二.3.1")
    assert "blobdescriptor: inmemory" in sec and "3.2 部署Docker容器" not in sec
    assert "curl -fsSL https://bkopen-1252002024.file.myqcloud.com/ce7/bcs.sh | bash -s -- -i k8s" in guide_section(
        guide, "三.2.1"
    )
    with pytest.raises(KeyError):
        guide_section(guide, "三.9.9")


def test_no_invented_helmfile_and_the_repair_mapping_follows_the_guide():
    text = (ROOT / "bkdoctor" / "install" / "phases.yaml").read_text()
    assert "04-saas" not in text
    import importlib.util

    spec = importlib.util.spec_from_file_location("hr", ROOT / "remediations" / "cluster" / "helm-releases.py")
    hr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hr)
    assert hr._file("bk-nodeman") == "base-blueking.yaml.gotmpl"  # §九.5.3
    assert hr._file("bk-itsm") is None and hr._file("bk-sops") is None  # S-Mart apps (§九.4–九.5)
    assert "04-saas" not in (ROOT / "remediations" / "cluster" / "helm-releases.py").read_text()


def test_load_refuses_steps_without_shape(tmp_path):
    good = yaml.safe_load((ROOT / "bkdoctor" / "install" / "phases.yaml").read_text())
    cases = [
        (
            {"run": "ls", "guide": "四.5.1", "quote": "x", "dir": "blueking", "where": "nodes"},
            "only the control machine",
        ),
        ({"run": "ls", "guide": "四.5.1"}, "cites its guide section"),
        ({"run": "ls", "guide": "四.5.1", "quote": "x", "on": "nodes"}, "not `on:`"),
        ({"run": "ls", "guide": "四.5.1", "quote": "x", "dir": "blueking"}, "no earlier step creates"),
    ]
    for step, msg in cases:
        data = {"phases": [{"id": "x", "title": {"zh": "x", "en": "x"}, "steps": [step]}]}
        if "on" in step:  # as YAML would read it
            data = yaml.safe_load(yaml.safe_dump(data).replace("'on':", "on:").replace('"on":', "on:"))
        p = tmp_path / "p.yaml"
        p.write_text(yaml.safe_dump(data, allow_unicode=True))
        with pytest.raises(ValueError, match=msg.replace("`", ".")):
            load_phases(p)
    assert good["phases"]


def test_scripts_quote_every_value_and_parse():
    hostile = {**VALUES, "domain": "x$(touch /tmp/pwned)`id`.com", "master": "10.0.0.2; rm -rf /", "node_ip": "a'b"}
    for p in load_phases():
        for s in p.steps:
            for cmd in [s.value if s.kind in ("run", "check") else None, s.verify_run]:
                if not cmd:
                    continue
                text = script(
                    s,
                    render(cmd, hostile),
                    install_dir="~/bk dir/blue'king",
                    env={
                        "BK_DOMAIN": "a$(id)",
                        "REGISTRY": "r;id",
                        "INSTALL_DIR": "~/x",
                        "RELEASE_BASEURL": "http://m/",
                    },
                    on_control=s.on == "control",
                )
                r = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
                assert r.returncode == 0, (p.id, text, r.stderr)
                assert "$(touch" not in text.replace(shlex.quote(hostile["domain"]), "")
                assert "rm -rf /" not in text.replace(shlex.quote(hostile["master"]), "")


def test_script_runs_in_the_right_directory_with_the_right_env(tmp_path):
    """Run a rendered step for real: cd into blueking/, bin/ beside it first in PATH, REGISTRY exported and
    KUBECONFIG untouched (it used to be replaced by REGISTRY)."""
    root = tmp_path / "bkce7.1-install"
    (root / "blueking").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "whereami").write_text("#!/bin/sh\necho tool=$0\n")
    (root / "bin" / "whereami").chmod(0o755)
    step = next(
        s for p in load_phases() for s in p.steps if s.kind == "run" and s.dir == "blueking" and "REGISTRY" in s.env
    )
    text = script(
        step,
        "pwd; whereami; echo reg=$REGISTRY kc=$KUBECONFIG",
        install_dir=str(root / "blueking"),
        env={"REGISTRY": "10.0.0.9:5000", "BK_DOMAIN": "d"},
        on_control=True,
    )
    out = subprocess.run(
        ["sh", "-s"],
        input=text,
        text=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/k/config", "HOME": str(tmp_path)},
    ).stdout
    assert out.splitlines() == [str(root / "blueking"), f"tool={root}/bin/whereami", "reg=10.0.0.9:5000 kc=/k/config"]
    # a missing directory: a clear line and 97, never a command run elsewhere
    r = subprocess.run(
        ["sh", "-s"],
        input=script(step, "echo ran", install_dir=str(tmp_path / "nope" / "blueking"), env={}, on_control=True),
        text=True,
        capture_output=True,
    )
    assert r.returncode == 97 and "ran" not in r.stdout and "does not exist" in r.stderr
    assert shell_path("~/bkce7.1-install/blueking") == '"$HOME"/bkce7.1-install/blueking'
    assert root_of("~/bkce7.1-install/blueking") == "~/bkce7.1-install"


K8SCTRL = """[INFO]: LAN_IP: 10.0.0.2
======================
\x1b[7m  Kubernetes控制节点启动成功  \x1b[0m
\x1b[7m  扩容控制平面执行以下命令  \x1b[0m
set -a
cluster_env=Q0xVU1RFUl9FTlY9dGVzdAo=
master_join_cmd_b64=a3ViZWFkbSBqb2luIGs4cy1hcGkuYmNzLmxvY2FsOjY0NDM=
set +a
curl -fsSL http://127.0.0.1:8080/ce7/bcs.sh | bash -s -- install k8s-control-plane
\x1b[7m  扩容节点执行以下命令  \x1b[0m
set -a
cluster_env=Q0xVU1RFUl9FTlY9dGVzdAo=
join_cmd_b64=a3ViZWFkbSBqb2luIGs4cy1hcGkuYmNzLmxvY2FsOjY0NDM=
set +a
curl -fsSL http://127.0.0.1:8080/ce7/bcs.sh | bash -s -- install k8s-node
"""


def test_k8sctrl_join_commands_are_parsed_strictly():
    cmds = parse_join_commands(K8SCTRL)
    assert cmds["node"].splitlines()[2].startswith("join_cmd_b64=") and cmds["node"].endswith("install k8s-node")
    assert cmds["master"].endswith("install k8s-control-plane")
    for bad in (
        K8SCTRL.replace(
            "set +a\ncurl -fsSL http://127.0.0.1:8080/ce7/bcs.sh | bash -s -- install k8s-node",
            "set +a\ncurl -fsSL http://127.0.0.1:8080/ce7/bcs.sh | bash -s -- install k8s-node; rm -rf /",
        ),
        K8SCTRL.replace("join_cmd_b64=a3", "join_cmd_b64=$(id)a3"),
    ):
        with pytest.raises(ValueError):
            parse_join_commands(bad)


def test_custom_yaml_keys_are_added_and_every_line_kept():
    text = "# operator's notes\ndomain:\n  bkDomain: bkce7.bktencent.com   # mine\napps:\n  other:\n    x: 1\nfoo: [1, 2]\n"
    out = yaml_set_missing(text, ["domain", "bkMainSiteDomain"], '"bkce7.bktencent.com"')
    out = yaml_set_missing(out, ["apps", "bkappFilebeat", "containersLogPath"], '"/data/bcs/lib/docker/containers"')
    for line in text.splitlines():
        assert line in out.splitlines()
    data = yaml.safe_load(out)
    assert data["domain"] == {"bkDomain": "bkce7.bktencent.com", "bkMainSiteDomain": "bkce7.bktencent.com"}
    assert data["apps"] == {
        "other": {"x": 1},
        "bkappFilebeat": {"containersLogPath": "/data/bcs/lib/docker/containers"},
    }
    assert data["foo"] == [1, 2]
    assert yaml.safe_load(yaml_set_missing("", ["bcs", "storageClass"], '"nfs"')) == {"bcs": {"storageClass": "nfs"}}


def _inventory(tmp_path, masters=1):
    hosts = [{"name": "ctl", "address": "localhost", "roles": ["control"], "local": True}]
    hosts += [
        {"name": f"master-{i}", "address": f"198.18.250.{10 + i}", "roles": ["master"]} for i in range(1, masters + 1)
    ]
    hosts += [{"name": "node-1", "address": "198.18.250.50", "roles": ["node"]}]
    inv = tmp_path / "hosts.yaml"
    inv.write_text(yaml.safe_dump({"domain": "bkce7.bktencent.com", "ssh": {"connect_timeout": 1}, "hosts": hosts}))
    return inv


def _plan(tmp_path, *args):
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", "install", "--plan", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_plan_on_a_bare_control_machine_lists_every_step(tmp_path):
    r = _plan(tmp_path, "--json", "-i", str(_inventory(tmp_path)), "--with", "bcs", "--with", "monitor-log")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["phase"] for x in rows] == [
        p.id for p in select_phases(load_phases(), None, None, None, {"bcs", "monitor-log"})
    ]
    steps = {(x["phase"], s["n"]): s for x in rows for s in x["steps"]}
    k8s = steps[("k8s", 1)]
    assert k8s["hosts"] == ["master-1"] and k8s["dir"] == "-" and k8s["command"].startswith("curl -fsSL https://")
    bkdl = steps[("install-files", 1)]
    assert bkdl["hosts"] == ["ctl"] and bkdl["dir"] == "-" and bkdl["env"] == ["INSTALL_DIR", "RELEASE_BASEURL"]
    assert steps[("install-files", 2)]["dir"] == "~/bkce7.1-install"
    assert steps[("storage", 3)]["dir"] == "~/bkce7.1-install/blueking"
    assert all(s["error"] is None for s in steps.values()), [s for s in steps.values() if s["error"]]
    assert (
        not (tmp_path / "home" / "bkce7.1-install").exists()
        and not (tmp_path / "d" / "bkdoctor" / "install-logs").exists()
    )
    # the text form: host, directory and command of each step
    t = _plan(tmp_path, "-i", str(_inventory(tmp_path)))
    assert t.returncode == 0, t.stderr
    assert "on: master-1  dir: -" in t.stdout and "dir: ~/bkce7.1-install/blueking  env: REGISTRY" in t.stdout


def test_plan_error_when_the_directory_does_not_exist_yet(tmp_path):
    r = _plan(tmp_path, "-i", str(_inventory(tmp_path)), "--phase", "storage")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "bkdoctor: error: plan error: storage step 2 (§五.2.4): "
            "directory ~/bkce7.1-install/blueking does not exist yet"
        )
    )
    # once it exists, no error
    (tmp_path / "home" / "bkce7.1-install" / "blueking").mkdir(parents=True)
    assert _plan(tmp_path, "-i", str(_inventory(tmp_path)), "--phase", "storage").returncode == 0


def test_plan_error_for_an_even_number_of_masters(tmp_path):
    r = _plan(tmp_path, "-i", str(_inventory(tmp_path, masters=2)), "--until", "k8s")
    assert r.returncode == 2 and "2 masters in the inventory: §三.3.2 wants an odd number" in r.stderr


def test_preflight_verifies_what_the_guide_asks_before_k8s():
    """§一.4.3 time sync (Chrony or NTP), §一.5 node capacity and the clock skew between hosts: checked in preflight,
    not first noticed when bk-repo says Expired token."""
    pre = next(p for p in load_phases() if p.id == "preflight")
    fixed = [r for s in pre.steps if s.kind == "fix" for r in s.value]
    assert "time-sync" in fixed and {"time-sync", "node-capacity", "fleet-clock-skew"} <= set(pre.verify)
    assert len({s.guide for s in pre.steps}) == len(pre.steps)  # one step per guide section


def test_select_phases():
    ph = load_phases()
    assert "registry-proxy" not in [p.id for p in select_phases(ph, None, None, None, set())]
    ids = [p.id for p in select_phases(ph, None, None, None, {"registry-proxy"})]
    assert "registry-proxy" in ids and "registry-mirrors" in ids  # the proxy, and the nodes using it
    # the proxy container before k8s, the nodes' registry-mirrors after it (Docker and bcs.sh's daemon.json first)
    assert ids.index("registry-proxy") < ids.index("k8s") < ids.index("registry-mirrors")
    assert "registry-mirrors" not in [p.id for p in select_phases(ph, None, None, None, set())]
    assert [p.id for p in select_phases(ph, None, "storage", "base-second", set())] == [
        "storage",
        "base-first",
        "base-second",
    ]
    assert [p.id for p in select_phases(ph, "ingress", None, None, set())] == ["ingress"]
    with pytest.raises(BadInput):
        select_phases(ph, "nope", None, None, set())


def test_install_dir_is_validated_everywhere(tmp_path):
    inv = tmp_path / "hosts.yaml"
    for bad in ("x; touch /tmp/pwned", "/a/../etc", "~/a\n", "$(id)"):
        inv.write_text(yaml.safe_dump({"install_dir": bad}))
        r = _plan(tmp_path, "-i", str(inv))
        assert r.returncode == 2 and "install_dir" in r.stderr, (bad, r.stderr)
    r = _plan(tmp_path, "--install-dir", "/tmp/x;id", "--domain", "bkce7.bktencent.com")
    assert r.returncode == 2 and "--install-dir" in r.stderr
    # a hand-edited saved config
    cfg = tmp_path / "c" / "bkdoctor" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(yaml.safe_dump({"domain": "bkce7.bktencent.com", "install_dir": "~/x`id`"}))
    r = _plan(tmp_path, "--domain", "bkce7.bktencent.com")
    assert r.returncode == 2 and "install_dir" in r.stderr
    inv.write_text(yaml.safe_dump({"download_base": "http://mirror/ce7; id"}))
    assert _plan(tmp_path, "-i", str(inv)).returncode == 2


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

_KEY = st.sampled_from(["domain", "bkDomain", "apps", "bcs", "x", "y-z", "storageClass"])
_LEAF = st.one_of(st.integers(-5, 5), st.booleans(), st.text("abc ", max_size=4))
_DOC = st.recursive(_LEAF, lambda c: st.dictionaries(_KEY, c, min_size=1, max_size=3), max_leaves=8).filter(
    lambda d: isinstance(d, dict)
)


@settings(max_examples=300, deadline=None)
@given(_DOC, st.lists(_KEY, min_size=1, max_size=3), st.booleans())
def test_yaml_set_missing_keeps_every_line_and_adds_only_the_key(doc, path, comments):
    from bkdoctor.install.steps import yaml_get

    text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
    if comments:
        text = "# operator\n" + text.replace(":\n", ":  # mine\n", 1)
    if yaml_get(doc, path) is not None or any(
        not isinstance(yaml_get(doc, path[:i]), (dict, type(None))) for i in range(1, len(path))
    ):
        return  # present, or under a scalar: the builtin reports it and never edits
    out = yaml_set_missing(text, path, '"v"')
    lines = out.splitlines()
    it = iter(lines)
    assert all(any(line == x for x in it) for line in text.splitlines()), (text, out)  # in order, byte for byte
    want = yaml.safe_load(text)
    cur = want
    for k in path[:-1]:
        cur = cur.setdefault(k, {})
    cur[path[-1]] = "v"
    assert yaml.safe_load(out) == want, (text, out)


def test_control_commands_keep_kubeconfig_and_get_registry(tmp_path):
    """The env bug: `export KUBECONFIG=…` was built, then replaced by `export REGISTRY=…`."""
    from bkdoctor.inputs.inventory import load_inventory
    from bkdoctor.install.phases import Installer
    from bkdoctor.store import History

    inv = load_inventory(str(_inventory(tmp_path)))
    inv.registry = "10.0.0.9:5000"
    kc = tmp_path / "kube config"
    inst = Installer(
        inv,
        history=History(str(tmp_path / "h.db")),
        say=lambda s: None,
        confirm=lambda q: True,
        cluster_factory=lambda: None,
        kubeconfig=str(kc),
    )
    step = next(s for p in load_phases() if p.id == "storage" for s in p.steps if "base-storage" in str(s.value))
    text = inst._script(step, inst.control(), "echo kc=$KUBECONFIG reg=$REGISTRY; pwd")
    root = tmp_path / "home" / "bkce7.1-install"
    (root / "blueking").mkdir(parents=True)
    out = subprocess.run(
        ["sh", "-s"],
        input=text,
        text=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")},
    ).stdout.splitlines()
    assert out == [f"kc={kc} reg=10.0.0.9:5000", str(root / "blueking")]


def test_each_base_phase_checks_the_components_the_guide_lists_for_its_seq():
    """§六.3.x names each seq's components (包含组件); the phase's checks hold a deployed release for each, so a re-run
    does not skip a seq one of whose releases was removed (helm-releases alone judges only what is there)."""
    import re

    guide = GUIDE.read_text(encoding="utf-8")
    phases = {p.id: p for p in load_phases()}
    for n, seq in enumerate(("first", "second", "third", "fourth"), 1):
        text = guide_section(guide, f"六.3.{n}")
        line = next(ln for ln in text.splitlines() if "包含组件" in ln)
        named = set(re.findall(r"`(bk-[a-z-]+)`", line))
        checked = {c.split(":", 1)[1] for c in phases[f"base-{seq}"].checks if c.startswith("release:")}
        assert named and named <= checked, (seq, named - checked)
        # PaaS平台相关组件 (seq=third) is the bk-paas release
        assert checked - named <= {"bk-paas"}, (seq, checked - named)
