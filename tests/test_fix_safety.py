"""Fix safety on real hosts: a write killed half-way leaves the old or the new file, never a torn one; rollback
restores exactly, and refuses after a manual edit; the CLI fixes a fleet host over SSH and the real daemon
then reports the registry; a daemon.json that does not parse is never touched."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hostcases import FIXTURES, Case, make_host, make_ssh_host
from safetykit import fix_on, node_inventory

from bkdoctor.fix.hostscript import host_apply_script
from bkdoctor.fix.loop import rollback
from bkdoctor.fix.plan import FileChange, Plan
from bkdoctor.inputs.inventory import HostSpec
from bkdoctor.model import T
from bkdoctor.store import History
from bkdoctor.transport import LocalTransport

ROOT = Path(__file__).resolve().parent.parent


def _wait_group_gone(pgid: int, timeout: float = 60) -> None:
    """Wait until every process of a killed group is gone: nsenter is reaped at once, but a child of the script
    (cp, base64, sync writing 8 MiB) may still be in uninterruptible sleep on a loaded machine, holding the fix
    lock it inherited; the next run would then rightly say another fix is running (exit 75)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still alive {timeout:.0f} s after SIGKILL")


def test_killed_write_leaves_old_or_new_never_torn(nshost_factory):
    host = make_host(nshost_factory, Case(rule="x", name="x", status="pass", path=FIXTURES, spec={}))
    old = host.read("/etc/fstab")
    new = old + b"# " + b"x" * (8 << 20) + b"\n"  # 8 MiB: the write takes long enough to be interrupted
    plan = Plan("swap", "h", "swap", [FileChange("/etc/fstab", old, new)])
    script = host_apply_script(plan, "20260101000000").encode()
    seen = set()
    rng = random.Random(4711)
    for i in range(12):
        cur = host.read("/etc/fstab")
        plan = Plan("swap", "h", "swap", [FileChange("/etc/fstab", cur, new if cur == old else old)])
        script = host_apply_script(plan, f"2026010100{i:04d}").encode()
        p = subprocess.Popen(
            host.nsenter_argv() + ["/bin/sh", "-s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        p.stdin.write(script)
        p.stdin.close()
        time.sleep(rng.uniform(0.0, 0.25))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        _wait_group_gone(p.pid)
        after = host.read("/etc/fstab")
        assert after in (old, new), f"torn file after kill #{i}: {len(after)} bytes"
        seen.add(after == new)
    # a killed run can leave its temp file (SIGKILL cannot be trapped): the next run clears it
    cur = host.read("/etc/fstab")
    plan = Plan("swap", "h", "swap", [FileChange("/etc/fstab", cur, old)])
    host.run("/bin/sh -s", input=host_apply_script(plan, "20260102000000").encode())
    assert host.read("/etc/fstab") == old
    assert host.run("ls /etc/ | grep -c 'fstab.bkdoctor' || true").stdout.strip() == b"0"


def _hosts_file_node(nshost_factory):
    """A node whose /etc/hosts lacks the BlueKing names (the ingress address known): the host, its /etc/hosts, the
    inventory."""
    case = Case(
        rule="hosts-file",
        name="x",
        status="fail",
        path=FIXTURES,
        spec={"files": {"/etc/hosts": "127.0.0.1 localhost\n"}},
    )
    host = make_host(nshost_factory, case)
    inv = node_inventory(
        HostSpec(name="node-10-0-0-5", address="10.0.0.5", roles=("node",), local=True),
        HostSpec(name="master-10-0-0-2", address="10.0.0.2", roles=("master",)),
    )
    inv.ingress_ip = "10.96.45.12"
    return host, host.read("/etc/hosts"), inv


def test_rollback_restores_and_refuses_after_a_manual_edit(nshost_factory, tmp_path):
    host, original, inv = _hosts_file_node(nshost_factory)
    factory = lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root)  # what fix_on runs through
    hist = History(tmp_path / "h.db")

    def do_fix():
        return fix_on(host, inv, ["hosts-file"], hosts={"node-10-0-0-5"}, history=hist)

    out = do_fix()
    assert [o.status for o in out] == ["fixed"]
    fixed = host.read("/etc/hosts")
    rec = hist.fix(out[0].fix_id)
    ok, lines = asyncio.run(rollback(rec, inv, None, factory))
    assert ok, lines
    assert host.read("/etc/hosts") == original
    # fix again, then someone edits the file by hand: the rollback must not clobber their edit
    out = do_fix()
    host.run("echo '10.1.2.3 added-by-hand' >> /etc/hosts")
    edited = host.read("/etc/hosts")
    ok, lines = asyncio.run(rollback(hist.fix(out[0].fix_id), inv, None, factory))
    assert not ok and "changed since the fix" in " ".join(lines)
    assert host.read("/etc/hosts") == edited and edited != fixed


def test_unparsable_daemon_json_is_never_touched(nshost_factory, tmp_path):
    bad = '{\n    // ops comment\n    "data-root": "/data/bcs/lib/docker",\n}\n'
    host = make_host(
        nshost_factory,
        Case(rule="x", name="x", status="fail", path=FIXTURES, spec={"files": {"/etc/docker/daemon.json": bad}}),
    )
    inv = node_inventory(
        HostSpec(name="n", address="10.0.0.5", roles=("node",), local=True, docker_socket="/run/docker.sock")
    )
    out = fix_on(host, inv, ["insecure-registries"], allow_disruptive=True)
    assert host.read("/etc/docker/daemon.json") == bad.encode()
    # the rule says `error` (cannot read insecure-registries from a file that does not parse): nothing is planned
    assert not any(o.status == "fixed" for o in out)
    left = [f for f in host.run("ls /etc/docker").stdout.decode().split() if f.startswith("daemon.json")]
    assert left == ["daemon.json"]  # no backup, no temp file


def _cli_on(ssh_fleet, tmp_path, files):
    """A fleet host with `files` (real sshd), its inventory and a `bkdoctor` runner: (host, run)."""
    fleet, host = make_ssh_host(ssh_fleet, {"hostname": "node-7", "files": files})
    inv = tmp_path / "hosts.yaml"
    hosts = [
        {"name": "node-7", "address": host.address, "roles": ["node"]},
        {"name": "proxy", "address": "10.0.0.9", "roles": ["registry-proxy"]},  # registry-mirrors' expected value
    ]
    inv.write_text(yaml.safe_dump({"domain": "bkce7.bktencent.com", "ssh": fleet.ssh_settings(), "hosts": hosts}))
    env = {**os.environ, "LANG": "C.UTF-8", "XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "400"}

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "bkdoctor.cli", *a, "-i", str(inv)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return host, run


@pytest.mark.ssh
def test_cli_fix_of_an_unparsable_daemon_json_says_why_and_exits_2(ssh_fleet, tmp_path):
    """A fix asked for a rule whose check is `error` on a host (a daemon.json with a // comment: dockerd and the
    rule cannot read it) is one `refused` line naming the rule, the host and the rule's reason, exit 2, the file
    untouched (before: no line at all, exit 0)."""
    bad = '{\n    // ops comment\n    "data-root": "/data/bcs/lib/docker"\n}\n'
    host, run = _cli_on(ssh_fleet, tmp_path, {"/etc/docker/daemon.json": bad})
    for rule in ("insecure-registries", "registry-mirrors"):
        r = run("fix", "--rule", rule, "--yes")
        assert r.returncode == 2, (rule, r.returncode, r.stdout + r.stderr)
        [line] = [l for l in r.stdout.splitlines() if l.startswith("REFUSED")]
        assert f"{rule} @ node-7: daemon.json does not parse" in line and "file left untouched" in line, line
    assert host.read("/etc/docker/daemon.json") == bad.encode()
    left = [f for f in host.run("ls /etc/docker").stdout.decode().split() if f.startswith("daemon.json")]
    assert left == ["daemon.json"]  # no backup, no temp file


@pytest.mark.ssh
@pytest.mark.docker
def test_cli_fix_over_ssh_then_journal_and_rollback(ssh_fleet, tmp_path):
    fleet, host = make_ssh_host(
        ssh_fleet,
        {
            "hostname": "node-7",
            "docker": True,
            "files": {
                "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n'
            },
        },
    )
    inv = tmp_path / "hosts.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "domain": "bkce7.bktencent.com",
                "ssh": fleet.ssh_settings(),
                "hosts": [
                    {"name": "node-7", "address": host.address, "roles": ["node"], "docker_socket": "/run/docker.sock"}
                ],
            }
        )
    )
    env = {**os.environ, "LANG": "C.UTF-8", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *a], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    dry = run("fix", "--rule", "insecure-registries", "-i", str(inv), "--dry-run")
    assert dry.returncode == 0 and '+{"data-root"' in dry.stdout and "docker.bkce7.bktencent.com" in dry.stdout
    assert "docker.bkce7" not in host.docker("info", "--format", "{{json .RegistryConfig}}").stdout.decode()
    no_tty = run("fix", "--rule", "insecure-registries", "-i", str(inv))
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    r = run("fix", "--rule", "insecure-registries", "-i", str(inv), "--yes", "--json", str(tmp_path / "fix.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((tmp_path / "fix.json").read_text())
    assert [o["status"] for o in doc["outcomes"]] == ["fixed"]
    # the real daemon, asked over its own API, now treats docker.<domain> as insecure
    info = json.loads(host.docker("info", "--format", "{{json .RegistryConfig}}").stdout)
    assert info["IndexConfigs"]["docker.bkce7.bktencent.com"]["Secure"] is False
    backups = host.run("ls /etc/docker").stdout.decode().split()
    assert any(b.startswith("daemon.json.bak-") for b in backups)
    j = json.loads(run("journal", "--json").stdout)
    assert j[0]["rule"] == "insecure-registries" and j[0]["status"] == "fixed"
    rb = run("rollback", j[0]["id"], "-i", str(inv))
    assert rb.returncode == 0, rb.stdout + rb.stderr
    assert json.loads(host.read("/etc/docker/daemon.json")) == {
        "data-root": "/data/bcs/lib/docker",
        "exec-opts": ["native.cgroupdriver=systemd"],
    }
    assert run("rollback", j[0]["id"], "-i", str(inv)).returncode == 2  # already rolled back
    again = run("fix", "--rule", "insecure-registries", "-i", str(inv), "--yes")
    assert again.returncode == 0 and "FIXED" in again.stdout


def _host(nshost_factory, **spec):
    """A namespaced test host: the base state with the fixture keys of `spec` (files, setup...)."""
    return make_host(nshost_factory, Case(rule="hosts-file", name="x", status="fail", path=FIXTURES, spec=spec))


def _hosts_inv():
    inv = node_inventory(
        HostSpec(name="node-10-0-0-5", address="10.0.0.5", roles=("node",), local=True),
        HostSpec(name="master-10-0-0-2", address="10.0.0.2", roles=("master",)),
    )
    inv.ingress_ip = "10.96.45.12"
    return inv


def test_symlinked_hosts_file_is_edited_through_the_link(nshost_factory, tmp_path):
    """/etc/hosts -> hosts.real (overlay /etc): the fix writes the target (backup and temp file beside it), the link
    stays a link; a second fix changes nothing; rollback puts the target's bytes back, the link still a link.
    Before: `mv` replaced the link with a regular file, hosts.real unchanged, and rollback did not bring it back."""
    original = "127.0.0.1 localhost\n10.1.1.1 db-primary\n"
    host = _host(
        nshost_factory, files={"/etc/hosts.real": original}, setup="rm -f /etc/hosts; ln -s hosts.real /etc/hosts"
    )
    inv = _hosts_inv()
    factory = lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root)
    hist = History(tmp_path / "h.db")
    link = host.root + "/etc/hosts"
    out = fix_on(host, inv, ["hosts-file"], hosts={"node-10-0-0-5"}, history=hist)
    assert [o.status for o in out] == ["fixed"], [(o.status, o.message.en) for o in out]
    assert os.path.islink(link) and os.readlink(link) == "hosts.real"
    fixed = host.read("/etc/hosts.real")
    assert b"# BEGIN bkdoctor" in fixed and fixed.startswith(original.encode())
    etc = host.run("ls /etc").stdout.decode().split()
    assert [f for f in etc if f.startswith("hosts.real.bak-")] and not [f for f in etc if f.startswith("hosts.bak")]
    again = fix_on(host, inv, ["hosts-file"], hosts={"node-10-0-0-5"}, history=hist)
    assert not [o for o in again if o.status not in ("unchanged",)], [(o.status, o.message.en) for o in again]
    assert host.read("/etc/hosts.real") == fixed and os.path.islink(link)
    ok, lines = asyncio.run(rollback(hist.fix(out[0].fix_id), inv, None, factory))
    assert ok, lines
    assert host.read("/etc/hosts.real") == original.encode() and os.readlink(link) == "hosts.real"


def test_dangling_symlink_is_refused_nothing_written(nshost_factory):
    host = _host(nshost_factory, setup="ln -s nowhere.conf /etc/x.conf")
    plan = Plan("x", "h", "x", [FileChange("/etc/x.conf", b"old\n", b"new\n")])
    r = host.run("/bin/sh -s", check=False, input=host_apply_script(plan, "20260101000000").encode())
    assert r.returncode == 1 and b"@@FAIL /etc/x.conf is a symbolic link to no regular file" in r.stdout, r.stdout
    assert os.readlink(host.root + "/etc/x.conf") == "nowhere.conf"
    assert not [f for f in host.run("ls /etc").stdout.decode().split() if f.startswith(("x.conf.", "nowhere"))]


def test_extended_attributes_are_kept_by_the_write_the_backup_and_the_restore(nshost_factory):
    """The new file, its backup and the restored file keep the original's xattrs (SELinux context, user.*):
    `cp --preserve=all` (GNU coreutils 8.22, CentOS 7.9: a context or xattr it cannot keep is no error)."""
    from bkdoctor.fix.hostscript import parse_apply_output, restore_script
    from bkdoctor.fix.plan import sha256_of

    host = _host(nshost_factory)
    path = host.root + "/etc/fstab"
    try:
        os.setxattr(path, "user.test", b"v")
    except OSError as e:
        pytest.skip(f"the test host's /etc takes no user xattrs here: {e}")
    old = host.read("/etc/fstab")
    new = old + b"# bkdoctor test\n"
    plan = Plan("swap", "h", "swap", [FileChange("/etc/fstab", old, new)])
    out = parse_apply_output(host.run("/bin/sh -s", input=host_apply_script(plan, "20260101000000").encode()).stdout)
    assert out["done"] and not out["fail"], out
    [w] = out["wrote"]
    assert host.read("/etc/fstab") == new
    assert os.getxattr(path, "user.test") == b"v"
    assert os.getxattr(host.root + w["backup"], "user.test") == b"v"
    os.removexattr(host.root + w["backup"], "user.test")
    os.setxattr(host.root + w["backup"], "user.test", b"from-backup")
    r = host.run("/bin/sh -s", input=restore_script("/etc/fstab", w["backup"], sha256_of(new)).encode())
    assert b"@@RESTORED" in r.stdout, r.stdout
    assert host.read("/etc/fstab") == old and os.getxattr(path, "user.test") == b"from-backup"


def test_an_apply_that_never_finished_is_journaled_with_what_it_wrote(nshost_factory, tmp_path, monkeypatch):
    """The apply script wrote /etc/hosts, then hung (a stand-in for a hung reload or mount: a sleep before its last
    line) past the time allowed: the file is changed and the script's own report never came. The loop asks the host
    what it holds, journals the file and its backup, says so, and `bkdoctor rollback` puts the file back."""
    from bkdoctor.fix import loop

    host, original, inv = _hosts_file_node(nshost_factory)
    monkeypatch.setattr(loop, "APPLY_TIMEOUT", 3.0)
    real = loop.host_apply_script
    monkeypatch.setattr(loop, "host_apply_script", lambda plan, ts: real(plan, ts).replace('echo "@@DONE"', "sleep 30"))
    hist = History(tmp_path / "h.db")
    out = fix_on(host, inv, ["hosts-file"], hosts={"node-10-0-0-5"}, history=hist)
    assert [o.status for o in out] == ["failed"], [(o.status, o.message.en) for o in out]
    assert "did not finish" in out[0].message.en and f"bkdoctor rollback {out[0].fix_id}" in out[0].message.en
    assert host.read("/etc/hosts") != original  # written before the hang
    rec = hist.fix(out[0].fix_id)
    assert rec is not None and [w["path"] for w in rec["applied"]["wrote"]] == ["/etc/hosts"]
    factory = lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root)
    ok, lines = asyncio.run(rollback(rec, inv, None, factory))
    assert ok, lines
    assert host.read("/etc/hosts") == original


def test_two_fixes_of_one_file_in_one_run(nshost_factory, tmp_path):
    """swap and localpv-dirs both edit /etc/fstab: the second was planned from the file before the first changed it
    and failed ('changed since the plan was made'), so a run needed a second run. It is planned again from the file
    as it is now: both fixed in one run, each backed up and journaled, and a second run changes nothing."""
    case = Case(
        rule="localpv-dirs",
        name="x",
        status="fail",
        path=FIXTURES,
        spec={
            "setup": (
                "for i in $(seq -w 1 20); do umount /mnt/blueking/vol$i; done\n"
                "rm -rf /mnt/blueking /data/bcs/localpv\nsed -i '/localpv/d' /etc/fstab\n"
                "printf 'UUID=1c4e2f6a-9d1b-4b0e-8e2a-1f0c3d5b7a90\\tswap\\tswap\\tdefaults\\t0 0\\n' >> /etc/fstab"
            )
        },
    )
    host = make_host(nshost_factory, case)
    before = host.read("/etc/fstab").decode()
    inv = node_inventory()
    hist = History(tmp_path / "h.db")
    out = fix_on(host, inv, ["swap", "localpv-dirs"], history=hist)
    assert sorted((o.rule, o.status) for o in out) == [("localpv-dirs", "fixed"), ("swap", "fixed")], [
        (o.rule, o.status, o.message.en) for o in out
    ]
    fstab = host.read("/etc/fstab").decode()
    assert "#UUID=1c4e2f6a-9d1b-4b0e-8e2a-1f0c3d5b7a90\tswap" in fstab and fstab.count("/mnt/blueking/vol") == 20
    assert all(line in fstab for line in before.splitlines() if "swap" not in line)  # no line of the operator lost
    assert fix_on(host, inv, ["swap", "localpv-dirs"], history=hist) == []
    # each fix its own backup (the same second named the same one, and the second overwrote the original's copy);
    # rolled back newest first, the file is the operator's again, byte for byte
    backups = [w["backup"] for o in out for w in o.applied["wrote"]]
    assert len(backups) == 2 and len(set(backups)) == 2, backups
    factory = lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root)
    for o in reversed(out):
        ok, lines = asyncio.run(rollback(hist.fix(o.fix_id), inv, None, factory))
        assert ok, lines
    assert host.read("/etc/fstab").decode() == before


def test_a_restore_that_cannot_write_is_never_said_done(nshost_factory):
    """A step fails after a file was written and the file cannot be put back (made immutable in between: a full
    disk or a read-only remount does the same): the script says so with the backup's name, never 'restored'."""
    from bkdoctor.fix.hostscript import parse_apply_output
    from bkdoctor.fix.plan import CommandChange

    host = make_host(nshost_factory, Case(rule="x", name="x", status="fail", path=FIXTURES, spec={}))
    host.run("mkdir -p /data/t && printf 'a\\n' > /data/t/f")
    if host.run("chattr +i /data/t/f && chattr -i /data/t/f", check=False).returncode:
        pytest.skip("no immutable attribute on this filesystem")
    plan = Plan(
        "x",
        "h",
        "x",
        [FileChange("/data/t/f", b"a\n", b"b\n"), CommandChange("chattr +i /data/t/f; false", T("x", "x"))],
    )
    try:
        res = host.run("/bin/sh -s", input=host_apply_script(plan, "20260102000000").encode(), check=False)
        out = parse_apply_output(res.stdout)
        assert res.returncode != 0 and out["restored"] == [], out
        assert out["unrestored"] == ["/data/t/f /data/t/f.bak-20260102000000"], out
        assert host.read("/data/t/f.bak-20260102000000") == b"a\n"  # the backup is there for a person
    finally:
        host.run("chattr -i /data/t/f", check=False)


def test_rollback_of_a_fix_its_re_check_already_put_back(nshost_factory, tmp_path, monkeypatch):
    """The fix wrote /etc/hosts, its re-check failed (made to fail here: the rule is asked again and answers fail) and
    the fix put the file back itself: rolling that fix back has nothing left to undo, and says so (it used to be
    refused as 'changed since the fix')."""
    from bkdoctor.fix import loop
    from bkdoctor.model import Finding, Result

    host, original, inv = _hosts_file_node(nshost_factory)

    async def still_failing(inv_, rule, target, factory, cluster):
        return Finding(rule, target, Result("fail", T("仍失败", "still failing")))

    monkeypatch.setattr(loop, "verify", still_failing)
    hist = History(tmp_path / "h.db")
    out = fix_on(host, inv, ["hosts-file"], hosts={"node-10-0-0-5"}, history=hist)
    assert [o.status for o in out] == ["failed"] and out[0].applied["restored"] == ["/etc/hosts"], out
    assert host.read("/etc/hosts") == original
    factory = lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root)
    ok, lines = asyncio.run(rollback(hist.fix(out[0].fix_id), inv, None, factory))
    assert ok and lines == ["/etc/hosts: put back when the fix's re-check failed: nothing to undo"], lines
    assert host.read("/etc/hosts") == original


def test_refused_only_for_rules_bkdoctor_can_fix():
    """A check that could not run (status error) is a `refused` fix only where the rule has a remediation: a rule
    without one (bk-version) was never asked to be fixed, so it makes no line and no exit 2."""
    import datetime as dt

    from bkdoctor.fix.loop import refused_outcomes
    from bkdoctor.model import Finding, Result
    from bkdoctor.scan import engine, loader

    rules = {r.id: r for r in loader.all_rules()}
    now = dt.datetime.now(dt.timezone.utc)
    res = engine.ScanResult(
        "x",
        now,
        now,
        [],
        [
            Finding(rules["bk-version"], "n1", Result("error", T("读不到", "cannot read custom.yaml"))),
            Finding(rules["insecure-registries"], "n1", Result("error", T("无法解析", "daemon.json does not parse"))),
        ],
        [],
        node_inventory(),
    )
    assert [(o.rule, o.status) for o in refused_outcomes(res, None)] == [("insecure-registries", "refused")]
