"""Values that reached a command line as options or unquoted words (review "inj23": every value that enters a
shell is quoted, every bad input is exit 2 with one line). One test per hole, each failing before its fix. Real
subprocesses of `python -m bkdoctor.cli`; nothing runs against this machine (`--plan`, generated text)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_safety_adv import home, one_line_error, run  # noqa: F401 (home: the fixture)

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bkce7.bktencent.com"
EVIL_ADDRESS = "-oProxyCommand=sh -c 'id>/tmp/x'"


# -- 1: a host address is a host name or an IP literal, never an ssh/scp option --------------------------------------
def _yaml_inventory(tmp_path, address: str) -> Path:
    import yaml

    p = tmp_path / "inv.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "domain": DOMAIN,
                "hosts": [
                    {"name": "ctl", "address": "localhost", "roles": ["control"]},
                    {"name": "m1", "address": address, "roles": ["master"]},
                ],
            }
        )
    )
    return p


@pytest.mark.parametrize(
    "address", [EVIL_ADDRESS, "-oProxyCommand=id", "10.0.0.2 -v", "root@10.0.0.2", "[fd00::5]", "fd00::1%$(id)", "a\nb"]
)
@pytest.mark.parametrize("command", [["scan", "--no-history"], ["install", "--plan"]])
def test_inventory_address_that_is_not_a_host_is_exit_2(tmp_path, home, address, command):
    inv = _yaml_inventory(tmp_path, address)
    line = one_line_error(run(*command, "-i", str(inv), env=home))
    assert "hosts.1.address" in line and "not a valid address" in line, line
    assert not Path("/tmp/x").exists() or Path("/tmp/x").stat().st_mtime < inv.stat().st_mtime


@pytest.mark.parametrize("command", [["scan", "--no-history"], ["install", "--plan"]])
def test_ansible_ini_ansible_host_option_is_exit_2(tmp_path, home, command):
    p = tmp_path / "hosts.ini"
    p.write_text(f'[control]\nctl ansible_host=127.0.0.1\n[master]\nm1 ansible_host="{EVIL_ADDRESS}"\n')
    line = one_line_error(run(*command, "-i", str(p), env=home))
    assert "m1" in line and "ansible_host" in line and "not a valid address" in line, line
    p.write_text("[control]\nctl ansible_host=127.0.0.1\n[master]\nm1 ansible_host=-oProxyCommand=id\n")
    line = one_line_error(run(*command, "-i", str(p), env=home))
    assert "ansible_host" in line, line


def test_addresses_that_are_hosts_still_load(tmp_path):
    from bkdoctor.inputs.inventory import load_inventory
    from bkdoctor.safe.names import valid_address

    for ok in ("10.0.0.2", "fd00::5", "::ffff:10.0.0.2", "node-1.example.com", "master_1", "localhost"):
        assert valid_address(ok), ok
        assert load_inventory(str(_yaml_inventory(tmp_path, ok))).hosts[1].address == ok
    for bad in ("", "-x", "x-", "a b", "a;b", "a'b", "fe80::1%eth0", "x" * 254, "user@h", "h:22", None, 10):
        assert not valid_address(bad), bad


def test_export_and_cluster_nodes_refuse_an_option_address(tmp_path):
    from bkdoctor.export import ansible as ae
    from bkdoctor.inputs.inventory import HostSpec, load_inventory
    from bkdoctor.inputs.targets import _check_node
    from bkdoctor.model import BadInput

    inv = load_inventory(str(_yaml_inventory(tmp_path, "10.0.0.2")))
    with pytest.raises(BadInput, match="ansible_host"):
        ae.connection_vars(HostSpec(name="m1", address="-oProxyCommand=id", roles=("master",)), inv)
    with pytest.raises(BadInput, match="InternalIP"):
        _check_node("n1", "fd00::1%$(id)")  # ipaddress takes a zone of any characters


def test_control_sync_ends_ssh_and_scp_options_before_the_host():
    from bkdoctor.install.phases import load_phases

    step = next(s for p in load_phases() if p.id == "control-sync" for s in p.steps if s.kind == "run")
    for line in step.value.splitlines():
        for tool in ("ssh ", "scp "):
            if tool in line:
                assert f'{tool}-o BatchMode=yes -- "$master_ip"' in line, line


# -- 2: string thresholds are URLs, paths, names or versions: never an option, never a line of their own ------------
@pytest.mark.parametrize(
    "key,value",
    [
        ("bandwidth_url", "-K/tmp/curl.cfg"),  # the probe's `curl ... "$BKD_BW_URL"` read a curl config
        ("bandwidth_url", "file:///etc/shadow"),
        ("registry_upstream", "-K/tmp/curl.cfg"),
        ("registry_upstream", "https://hub.bktencent.com\n  username: x"),  # a line of the proxy's YAML config
        ("registry_upstream", "https://hub.bktencent.com two"),
        ("iops_dir", "-rf"),
        ("registry_data", "/var/lib/../../etc"),
        ("registry_config", "relative/config.yml"),
        ("localpv_mount_dir", "/mnt/blue king"),
        ("docker_socket", "-H tcp://x"),
        ("fio_size", "--filename=/dev/sda"),
        ("timezone", "-x"),
        ("timezone", "../../../etc/passwd"),
        ("registry_probe_image", "../../../x:y"),
        ("kernel_min", "-1"),
    ],
)
def test_string_threshold_of_another_shape_is_exit_2(tmp_path, home, key, value):
    import yaml

    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "domain": DOMAIN,
                "hosts": [{"name": "ctl", "address": "localhost", "roles": ["control", "registry-proxy"]}],
                "thresholds": {key: value},
            }
        )
    )
    for command in (["scan", "--no-history"], ["install", "--plan", "--with", "registry-proxy"]):
        line = one_line_error(run(*command, "-i", str(inv), env=home))
        assert f"thresholds.{key}" in line and "\n" not in line, line


def test_every_string_threshold_has_its_shape_and_the_defaults_fit_it():
    from bkdoctor.inputs import thresholds as th

    def strings(d, at=""):
        for k, v in d.items():
            w = f"{at}.{k}" if at else k
            if isinstance(v, dict):
                yield from strings(v, w)
            elif isinstance(v, str):
                yield w, v

    import fnmatch

    for where, v in strings(th.DEFAULTS):
        assert any(fnmatch.fnmatchcase(where, pat) for pat in th.SHAPES), where  # no string threshold without one
        assert th.shape_ok(where, v), (where, v)
    for ok in ("http://mirror.intra:8080/a/b.tar.gz?x=1", "https://[fd00::5]/v2/"):
        assert th.merge({"bandwidth_url": ok, "registry_upstream": ok})["bandwidth_url"] == ok
    assert th.merge({"registry_probe_image": ""})["registry_probe_image"] == ""
    assert th.merge({"timezone": "Etc/GMT-8", "fio_size": "1g", "iops_dir": "/"})["timezone"] == "Etc/GMT-8"


# -- 3: BK_DOMAIN from custom.yaml is a domain name like the inventory's `domain` -----------------------------------
@pytest.mark.parametrize("bk_domain", ["* -i", "-i", "bk.example.com;id", "a b.com", "$(id).com"])
def test_custom_yaml_bkdomain_that_is_not_a_domain_is_exit_2(tmp_path, home, bk_domain):
    import yaml

    inst = tmp_path / "blueking"
    custom = inst / "environments" / "default" / "custom.yaml"
    custom.parent.mkdir(parents=True)
    custom.write_text(yaml.safe_dump({"domain": {"bkDomain": bk_domain}}))
    line = one_line_error(run("scan", "--install-dir", str(inst), "--rule", "hosts-file", "--no-history", env=home))
    assert str(custom) in line and "domain.bkDomain" in line and "not a domain name" in line, line
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump(
            {"install_dir": str(inst), "hosts": [{"name": "c", "address": "localhost", "roles": ["control"]}]}
        )
    )
    line = one_line_error(run("scan", "-i", str(inv), "--no-history", env=home))
    assert str(custom) in line, line
    # the inventory's own domain wins and custom.yaml is not read for it
    inv.write_text(inv.read_text() + f"domain: {DOMAIN}\n")
    from bkdoctor.inputs.inventory import load_inventory

    assert load_inventory(str(inv)).domain == DOMAIN


# -- 4: cluster-job --image is an OCI reference, printed as nothing else ---------------------------------------------
@pytest.mark.parametrize(
    "image",
    ["bkdoctor/bkdoctor:1\u202e3.0", "reg\x1b[2J/x:1", "-x", "x:1 ", "a\u200bb", "x;id", "x" * 600],
    ids=["bidi", "esc", "option", "blank", "zwsp", "semicolon", "long"],
)
@pytest.mark.parametrize("mode", ["job", "daemonset", "cronjob"])
def test_cluster_job_image_outside_the_oci_charset_is_exit_2(tmp_path, home, image, mode):
    args = ["cluster-job", "--namespace", "bkd-test", "--image", image, "-o", str(tmp_path / "m.yaml")]
    args += ["--schedule", "0 * * * *"] if mode == "cronjob" else ["--mode", mode]
    line = one_line_error(run(*args, env=home))
    assert "--image" in line and "\u202e" not in line and "\x1b" not in line and "\u200b" not in line, line
    assert not (tmp_path / "m.yaml").exists()


def test_cluster_job_image_references_are_kept(tmp_path):
    from bkdoctor.incluster import job

    for ok in ("bkdoctor/bkdoctor:1.0", "registry.local:5000/a/b_c:v1.2-rc.1", "r/x@sha256:" + "a" * 64):
        objs = job.render("bkd-test", ok, "job")
        assert any(ok in str(o) for o in objs), ok


# -- 5: a number in a file bkdoctor checks against a schema is a finite one -------------------------------------------
@pytest.mark.parametrize(
    "ssh",
    [
        {"connect_timeout": float("nan")},
        {"command_timeout": float("inf")},
        {"connect_timeout": float("-inf")},
        {"command_timeout": 1e300},
    ],
    ids=["nan", "inf", "-inf", "huge"],
)
@pytest.mark.parametrize("where", ["inventory", "host"])
def test_non_finite_ssh_timeouts_are_exit_2(tmp_path, home, ssh, where):
    import yaml

    host = {"name": "c", "address": "10.0.0.2", "roles": ["node"]}
    doc = {"domain": DOMAIN, "hosts": [host]}
    (host if where == "host" else doc)["ssh"] = ssh
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump(doc))
    line = one_line_error(run("scan", "-i", str(inv), "--no-history", env=home))
    key = next(iter(ssh))
    assert f"ssh.{key}" in line and "line " in line, line


def test_every_schema_validator_takes_only_finite_numbers():
    from bkdoctor.inputs import inventory
    from bkdoctor.safe.yamlfile import schema_validator
    from bkdoctor.scan import faq, siterules

    v = schema_validator({"type": "number", "minimum": 0})
    assert v.is_valid(1.5) and v.is_valid(3)
    assert not any(v.is_valid(x) for x in (float("nan"), float("inf"), float("-inf")))
    assert not schema_validator({"type": "integer"}).is_valid(float("inf"))
    sig = {"grace_minutes": float("nan")}
    assert any(list(e.absolute_path) == ["grace_minutes"] for e in faq._validator().iter_errors(sig))
    for make in (inventory._validator, faq._validator, siterules._validator):
        assert not make().is_type(float("nan"), "number"), make


# -- 6: a fix or scan id is a text prefix: `%` and `_` are no wildcards ------------------------------------------------
FIX_ID = "fix-20260101T000000Z-abc123"
SCAN_ID = "20260101T000000Z-abc123"


def _journal(tmp_path) -> Path:
    import sqlite3

    from safetykit import journal_with_fix

    db = journal_with_fix(tmp_path / "history.db", FIX_ID, "no-such-host")
    with sqlite3.connect(db) as c:
        c.execute(
            "insert into scans (id, started_at, summary, targets, rules) values (?, '2026-01-01', '{}', '[]', '[]')",
            [SCAN_ID],
        )
    return db


@pytest.mark.parametrize("ref", ["%", "_", "fix-%", "fix_", "%abc123", "FIX-", ""])
def test_rollback_with_a_like_wildcard_is_no_such_fix(tmp_path, home, ref):
    db = _journal(tmp_path)
    inv = tmp_path / "inv.yaml"
    inv.write_text(f"domain: {DOMAIN}\nhosts:\n  - {{name: c, address: 10.0.0.2, roles: [node]}}\n")
    line = one_line_error(run("rollback", ref, "-i", str(inv), "--db", str(db), env=home))
    assert f"no fix {ref!r}" in line, line


def test_ids_match_by_text_prefix_only(tmp_path):
    from bkdoctor.model import BadInput
    from bkdoctor.store import History

    h = History(str(_journal(tmp_path)))
    assert h.fix("fix-2026")["id"] == FIX_ID and h.fix(FIX_ID)["id"] == FIX_ID
    assert h.resolve("2026") == SCAN_ID and h.resolve(SCAN_ID) == SCAN_ID
    for ref in ("%", "_", "2026%", "2026_", "", "20260101t"):
        with pytest.raises(BadInput, match="no scan"):
            h.resolve(ref)
        with pytest.raises(BadInput, match="no fix"):
            h.fix(ref)


# -- 7: scan --from-daemonset NAMESPACE is a DNS label before it is a piece of an API path ---------------------------
@pytest.mark.parametrize("ns", ["../../api/v1/nodes", "kube-system/pods", "-x", "Blue", "a b", "x" * 64])
def test_from_daemonset_namespace_that_is_not_a_label_is_exit_2(tmp_path, home, ns):
    kc = tmp_path / "kc.yaml"  # never contacted: the option is refused first
    kc.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://198.18.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    line = one_line_error(run("scan", "--from-daemonset", ns, "--kubeconfig", str(kc), "--no-history", env=home))
    assert "--from-daemonset" in line and "namespace" in line, line


# -- 7: the timezone fix's undo: the link's old target (the host's own text) is never ln's option ---------------------
@pytest.mark.parametrize("old", ["-v", "--target-directory=/etc", "../usr/share/zoneinfo/UTC"])
def test_timezone_undo_ends_ln_options_before_the_old_target(old):
    import shlex
    from types import SimpleNamespace

    from bkdoctor.fix.plan import all_remediations
    from bkdoctor.inputs.thresholds import merge

    facts = SimpleNamespace(timezone={"zone": "UTC", "localtime_target": old})
    plan = all_remediations()["timezone"].plan(facts, SimpleNamespace(thresholds=merge(None)))
    assert shlex.split(plan.changes[0].undo) == ["ln", "-sfn", "--", old, "/etc/localtime"]


# -- 7: the exported localpv-dirs task never globs the fstab paths it mounts ------------------------------------------
def test_localpv_ansible_mount_task_does_not_glob(tmp_path):
    import subprocess

    import yaml

    doc = yaml.safe_load((ROOT / "remediations" / "host" / "localpv-dirs.ansible.yml").read_text())
    (task,) = [t for t in doc["tasks"] if "BKD_UNMOUNTED" in (t.get("environment") or {})]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mountpoint").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "mount").write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {tmp_path}/mounted\necho >> {tmp_path}/mounted\n')
    for f in ("mountpoint", "mount"):
        (bin_dir / f).chmod(0o755)
    (tmp_path / "mnt").mkdir()
    for v in ("vol01", "vol02"):
        (tmp_path / "mnt" / v).mkdir()
    glob = f"{tmp_path}/mnt/vol*"
    r = subprocess.run(
        ["bash", "-c", task["ansible.builtin.shell"]],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "BKD_UNMOUNTED": f"{glob} {tmp_path}/mnt/vol03"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mounted").read_text().splitlines() == [f"--|{glob}|", f"--|{tmp_path}/mnt/vol03|"]


@pytest.mark.parametrize("d", ["/mnt/blue*king", "/mnt/vol?", "/mnt/[ab]", "/mnt/a\\040b"])
def test_fstab_dir_refuses_glob_and_escape_characters(d):
    from bkdoctor.fix.fixkit import fstab_dir
    from bkdoctor.model import BadInput

    with pytest.raises(BadInput, match="localpv_mount_dir"):
        fstab_dir("localpv_mount_dir", d)
    assert fstab_dir("localpv_mount_dir", "/mnt/blueking/") == "/mnt/blueking"


# -- ssh.proxy_jump: `[user@]host[:port]` hops, never an ssh option (the Ansible export writes -o ProxyJump=...) -----
@pytest.mark.parametrize(
    "jump", ["-oProxyCommand=id", "ops@-oProxyCommand=id", "-J@bastion", "bastion:22 -v", "bastion:99999", "a b"]
)
def test_proxy_jump_that_is_not_a_hop_is_exit_2(tmp_path, home, jump):
    import yaml

    p = tmp_path / "inv.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "domain": DOMAIN,
                "ssh": {"proxy_jump": jump},
                "hosts": [{"name": "m1", "address": "10.0.0.2", "roles": ["master"]}],
            }
        )
    )
    line = one_line_error(run("scan", "--no-history", "-i", str(p), env=home))
    assert "ssh.proxy_jump" in line, line
    ini = tmp_path / "hosts.ini"  # the Ansible import: the jump host of ansible_ssh_common_args (one word of it)
    ini.write_text(f"[master]\nm1 ansible_host=10.0.0.2 ansible_ssh_common_args='-o ProxyJump={jump.split()[0]}'\n")
    from bkdoctor.safe.names import valid_jump

    if not valid_jump(jump.split()[0]):  # "bastion:22 -v", "a b": the first word alone is a good hop
        line = one_line_error(run("scan", "--no-history", "-i", str(ini), env=home))
        assert "jump host" in line, line


def test_proxy_jumps_that_are_hops_still_load():
    from bkdoctor.safe.names import valid_jump

    for ok in ("bastion", "ops@bastion:2222", "10.0.0.9", "ops@[fd00::9]:22", "a.example.com,ops@b:2200"):
        assert valid_jump(ok), ok
