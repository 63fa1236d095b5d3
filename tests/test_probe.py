"""The probe's framing and the facts layer: bad bytes never break parsing, a cut-off probe never passes."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from testbed.shells import extra_shells

from bkdoctor.facts import host
from bkdoctor.facts.host import FACTS, PARSERS, SECTIONS, HostFacts, probe_params
from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.inputs.thresholds import merge
from bkdoctor.scan import loader
from bkdoctor.scan.engine import Context, evaluate
from bkdoctor.scan.loader import all_rules
from bkdoctor.transport import LocalTransport


def sh(script: str) -> bytes:
    return subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, check=False).stdout


def test_every_section_runs_in_plain_posix_sh():
    script, nonce = build_script(SECTIONS)
    # dash is a strict POSIX shell: no bashisms may slip into the probe
    out = subprocess.run(["dash", "-n"], input=script.encode(), capture_output=True)
    assert out.returncode == 0, out.stderr
    parsed = parse_output(sh(script), nonce)
    assert set(parsed) == set(SECTIONS)


def test_binary_garbage_and_forged_markers_do_not_confuse_framing(tmp_path):
    f = tmp_path / "garbage"
    f.write_bytes(b"\x00\xff\xfe\n@@BKD-deadbeef:E:hostname:0\n\x1b[31m no newline at end")
    script, nonce = build_script({"hostname"})
    section = SECTIONS["hostname"]
    assert section in script
    script = script.replace(section, f"cat {f}")
    parsed = parse_output(sh(script), nonce)
    assert parsed["hostname"].out == f.read_bytes()
    assert parsed["hostname"].rc == 0
    assert "\ufffd" in parsed["hostname"].text()


def _registry_config_probe(tmp_path, files: dict[str, bytes], cfg: str) -> tuple[str, str]:
    """sysctl_files, modules_load and registry_config with the /etc files of the test's own, read in one batch."""
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    script, nonce = build_script(
        {"registry_config", "sysctl_files"}, nonce="0123456789abcdef", params={"BKD_REGISTRY_CONFIG": cfg}
    )
    # the files the batch reads: the test's own (so the `cat` each section would run is known)
    glob = " ".join(str(tmp_path / n) for n in files)
    script = script.replace(host.FILE_READS["sysctl_files"], glob)
    return script, nonce


def test_files_read_in_one_batch_are_the_bytes_cat_gives(tmp_path):
    files = {
        "nul": b"a\x00b\nno newline at end",
        "empty": b"",
        "forged": b"@@BKD-0123456789abcdef:R:/etc/passwd\n@@BKD-deadbeef:S\n",
        "plain": b"k = v\n",
    }
    script, nonce = _registry_config_probe(tmp_path, files, str(tmp_path / "nul"))
    assert script.count(f"@@BKD-{nonce}:B:__files") == 1
    out = sh(script)
    after = out[out.index(f"@@BKD-{nonce}:E:__files:0".encode()) :]
    assert after.count(f"@@BKD-{nonce}:R:".encode()) == 5  # the sections refer to the batch: nothing read twice
    parsed = parse_output(out, nonce)
    assert "__files" not in parsed
    expect = b"".join(b"### " + str(tmp_path / n).encode() + b"\n" + d + b"\n" for n, d in files.items())
    assert parsed["sysctl_files"].out == expect and parsed["sysctl_files"].rc == 0
    assert parsed["registry_config"].out == files["nul"] and parsed["registry_config"].rc == 0
    # without the batch (fewer than 3 files): the same bytes from `cat` itself
    script, nonce = _registry_config_probe(tmp_path, {"nul": files["nul"]}, str(tmp_path / "absent"))
    out = sh(script)
    assert b":R:" not in out
    parsed = parse_output(out, nonce)
    assert parsed["registry_config"].rc == 3 and parsed["sysctl_files"].out.endswith(files["nul"] + b"\n")


def test_a_batch_frame_that_is_not_whole_drops_its_sections(tmp_path):
    files = {"a": b"one\n", "b": b"two\n", "c": b"three\n", "d": b"x BKD_SEP=0123456789abcdef\x00 y\n"}
    script, nonce = _registry_config_probe(tmp_path, files, str(tmp_path / "a"))
    out = sh(script)
    parsed = parse_output(out, nonce)
    assert parsed["registry_config"].out == b"one\n" and files["d"] in parsed["sysctl_files"].out  # another token
    sep = f"@@BKD-{nonce}:S\n".encode()
    cat_at = out.index(sep, out.index(sep) + 1) + len(sep)
    token = out[out.index(sep) + len(sep) : cat_at - len(sep) - 1]
    marker = b"BKD_SEP=" + token + b"\x00"
    # one before each of the 5 reads: `a` is read twice, as the registry's config and as a sysctl file (two words)
    assert out[cat_at:].startswith(marker) and out.count(marker) == 5, out
    bad = {
        "bytes before the first file": out[:cat_at] + b"stray\n" + out[cat_at:],
        "a separator lost": out[:cat_at] + out[cat_at:].replace(marker, b"", 2)[: len(out)],
        "one too many": out[:cat_at] + out[cat_at:].replace(b"two\n", b"two\n" + marker, 1),
        "no token": out[: out.index(sep) + len(sep)] + b"\n" + out[cat_at - len(sep) :],
    }
    for why, data in bad.items():
        got = parse_output(data, nonce)
        assert "sysctl_files" not in got and "registry_config" not in got, why  # an error, never other bytes


def _tails_probe(tmp_path, modules: str) -> tuple[bytes, str]:
    """/etc files and the two kernel files in one batch; /proc/modules (absent on this machine's kernel) stood in
    for by `modules`, another file without a size until read, or an empty one."""
    script, nonce = build_script({"modules", "mountinfo", "fstab", "etc_hosts", "os_release"})
    return sh(script.replace("/proc/modules", modules)), nonce


def test_kernel_files_without_a_size_ride_in_the_batch(tmp_path):
    out, nonce = _tails_probe(tmp_path, "/proc/cpuinfo")
    after = out[out.index(f"@@BKD-{nonce}:E:__files:0".encode()) :]
    assert after.count(f"@@BKD-{nonce}:R:".encode()) == 5  # 3 /etc files and 2 of /proc: no `cat` of their own
    parsed = parse_output(out, nonce)
    assert parsed["modules"].out == Path("/proc/cpuinfo").read_bytes() and parsed["modules"].rc == 0
    # `cat`'s /proc/self/mountinfo: a child of the probe's shell, in this test's mount namespace, as Python's is
    assert parsed["mountinfo"].out == Path("/proc/self/mountinfo").read_bytes() and parsed["mountinfo"].rc == 0
    assert parsed["fstab"].out == Path("/etc/fstab").read_bytes()
    # an empty file is empty, and the next one is whole
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    out, nonce = _tails_probe(tmp_path, str(empty))
    parsed = parse_output(out, nonce)
    assert parsed["modules"].out == b"" and parsed["mountinfo"].out == Path("/proc/self/mountinfo").read_bytes()


def test_cut_off_probe_drops_the_section_and_the_rule_errors():
    script, nonce = build_script({"proc_swaps", "fstab"})
    out = sh(script)
    cut = out[: out.index(b":B:proc_swaps") + 40]  # the connection died mid-section
    facts = HostFacts(parse_output(cut, nonce))
    rule = next(r for r in all_rules() if r.id == "swap")
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain="a.b")
    res = evaluate(rule, facts, ctx)
    assert res.status == "error" and "cut off" in res.message.en


def test_a_crashing_rule_is_an_error_finding_not_a_crash():
    rule = next(r for r in all_rules() if r.id == "swap")
    broken = dataclasses.replace(rule, check=lambda f, c: 1 / 0)
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain=None)
    res = evaluate(broken, HostFacts({}), ctx)
    assert res.status == "error" and "ZeroDivisionError" in res.message.en


def test_probe_is_one_round_trip_with_only_needed_sections():
    script, _ = build_script({"proc_swaps", "fstab"})
    assert "/proc/swaps" in script and "docker" not in script and "iptables" not in script


def test_facts_table_is_consistent():
    assert set(FACTS) == set(PARSERS)
    for r in all_rules():
        if r.scope in ("host", "fleet"):
            assert set(r.facts) <= set(FACTS), r.id


def test_every_section_belongs_to_a_fact():
    read = {s for f in FACTS for s in FACTS[f]} | {s for r in host.RECORDS.values() for s in r.fallback}
    assert read == set(SECTIONS)


def test_a_section_reading_an_undeclared_parameter_fails(monkeypatch):
    monkeypatch.setitem(host.SECTIONS, "typo", 'echo "$BKD_DOMIAN"')
    with pytest.raises(ValueError, match="BKD_DOMIAN"):
        host._check_params()


GOLDEN = Path(__file__).with_name("data") / "probe-script.golden.sh"
# the whole probe under these shells; BKDOCTOR_TEST_SH=name=/path[,...] adds shells (tests/test_probe_sections.py)
PROBE_SHELLS = ["dash", "bash", *extra_shells().values()]


def test_probe_script_is_unchanged():
    """The whole probe, every section with the parameters of a fixed inventory, byte for byte (the facts moved
    into one record each, issue 13; the probe's rewrite, issue 16, changes this golden on purpose)."""
    inv = local_inventory("bk.example.com", install_dir="/nonexistent/bkdoctor-golden")
    h = HostSpec(name="golden", address="192.0.2.1", roles=("control", "master", "node", "registry-proxy"))
    params = {**probe_params(inv, h), "BKD_DOCKER_IF_NO_SOCKET": "/var/run/docker.sock"}
    script, _ = build_script(set(SECTIONS), nonce="0123456789abcdef", params=params)
    assert script == GOLDEN.read_text()


RULE_FILE = """from bkdoctor.scan.rulekit import G_KERNEL, cite, HOST_ROLES, Rule, T, passed

RULE = Rule(id="{id}", title=T("t", "t"), scope="{scope}", severity="low", roles=HOST_ROLES, group="{scope}",
            facts={facts!r}, guide=cite(G_KERNEL, "| Swap | 必须关闭 | `free -m`（Swap行值为0） |"), doc=T("d", "d"))


def check(facts, ctx):
    return passed(T("ok", "ok"))
"""


def _rule_file(root: Path, scope: str, rid: str, facts: tuple[str, ...]) -> Path:
    (root / scope).mkdir(exist_ok=True)
    p = root / scope / f"{rid}.py"
    p.write_text(RULE_FILE.format(id=rid, scope=scope, facts=facts), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "scope,good,typo",
    [
        ("host", ("daemon_json", "docker"), "daemon_jsn"),
        ("fleet", ("clock_offset",), "clock_ofset"),
        ("cluster", ("nodes", "helm_releases"), "node"),
    ],
)
def test_a_rule_declaring_an_unknown_fact_is_refused_at_load(tmp_path, monkeypatch, scope, good, typo):
    monkeypatch.setattr(loader, "rules_dir", lambda: tmp_path)
    assert loader._load_file(_rule_file(tmp_path, scope, f"good-{scope}", good)).facts == good
    bad = _rule_file(tmp_path, scope, f"typo-{scope}", (good[0], typo))
    with pytest.raises(ImportError) as e:
        loader._load_file(bad)
    assert str(bad) in str(e.value) and repr(typo) in str(e.value)


def test_a_host_fact_is_not_a_cluster_fact(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "rules_dir", lambda: tmp_path)
    with pytest.raises(ImportError, match="unknown cluster fact"):
        loader._load_file(_rule_file(tmp_path, "cluster", "wrong-side", ("daemon_json",)))


def test_local_transport_times_out_and_kills_the_probe():
    t = LocalTransport()
    import time

    from bkdoctor.transport import TransportError

    t0 = time.monotonic()
    try:
        asyncio.run(t.run_script("sleep 30\n", timeout=0.5))
    except TransportError as e:
        assert "timed out" in str(e)
    else:
        raise AssertionError("no timeout")
    assert time.monotonic() - t0 < 5


def test_sections_in_the_probes_shell_cannot_leak():
    """A section runs in the probe's own shell (no subshell, no fork) only when it cannot end or move that shell or
    leave jobs behind; its status is `return N`, which only a function has: no section uses `return` in a subshell."""
    from bkdoctor.facts.probe import runs_inline

    inline = {n for n, s in SECTIONS.items() if runs_inline(s)}
    assert {"hostname", "id", "nproc", "meminfo", "sysctl_runtime", "firewalld_enabled", "df", "getent_hosts"} <= inline
    assert {"fio"}.isdisjoint(inline)  # a trap
    for n, h in host.HELPERS.items():  # what a section may not do, a helper does in its own subshell only
        assert re.fullmatch(r"__bkd_\w+\(\) \(.*\)", h, re.S) and not runs_inline(h), n
    for n, s in SECTIONS.items():
        assert ("return" in s) <= (n in inline), n
    for bad in (
        "exit 3",
        "cd /",
        "trap 'x' EXIT",
        "sleep 1 & wait",
        "set -e",
        ". /etc/profile",
        "export A=1",
        "alias printf=:; echo x",
        "unalias -a",
    ):
        assert not runs_inline(bad), bad
    for bad in ("set", "set -- a; set -u", "set +x", "set -o noglob", "set -f --"):
        assert not runs_inline(bad), bad
    assert runs_inline('set --; set -- "$@" a')  # a function's own positional parameters
    assert runs_inline("a && b; c 2>&1 >&2; [ -x f ] || return 3")
    # `exec` first in a command substitution replaces the substitution's process only; anywhere else it is a breach
    for ok in ("r=$(exec chronyc -n tracking); e=$?", 'x=$(TZ=UTC0 exec stat -L -- "$k" 2>/dev/null) || x='):
        assert runs_inline(ok), ok
    for bad in (
        "exec 3>/tmp/x",
        "a; exec b",
        "x=$(a; exec b)",
        "$(( exec ))",
        "x=`exec b`",
        "(exec b)",
        "$(A=$(b) exec c)",
    ):
        assert not runs_inline(bad), bad


def test_every_captured_command_is_execd_by_its_substitution():
    """A command whose output a section captures runs as `$(exec cmd ...)`: bash (CentOS 7's /bin/sh) forks twice for
    `$(cmd 2>/dev/null)`, bash 4.2 for any `$(cmd)` in the bounded groups' `sh -c` (tests/test_probe_cost.py counts
    them under dash and bash); only substitutions of builtins, and a pipeline (which forks per command anyway), do
    not."""
    builtins_only = {"$(command -v kubectl || echo -)", "$(echo $r | tr '\\n' ' ')"}
    seen = set()
    for n, s in [*SECTIONS.items(), *host.HELPERS.items()]:
        for m in re.finditer(r"\$\((?!\()", s):
            rest = s[m.end() :]
            if re.match(r"(?:[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_./:+-]* )*exec ", rest):
                seen.add(n)
                continue
            assert any(s.startswith(b, m.start()) for b in builtins_only), (n, s[m.start() : m.start() + 60])
    assert {"chronyc_tracking", "kubelet_version", "getent_hosts", "nfs_df"} <= seen, seen


@pytest.mark.parametrize("shell", PROBE_SHELLS)
def test_a_guarded_command_that_ignores_sigterm_is_killed(tmp_path, shell):
    """`t` outside the group stops a command that ignores SIGTERM too (`timeout -k 5 10`): a process in an NFS wait is
    killable by SIGKILL only, and `timeout` without `-k` waits for it for ever. The prelude's own `t`, short limit."""
    import re
    import time

    from bkdoctor.facts import probe

    prelude = re.sub(r"timeout -k 5 10 ", "timeout -k 1 1 ", probe._PRELUDE)
    assert prelude != probe._PRELUDE, "the prelude's t() no longer reads `timeout -k 5 10`"
    t0 = time.monotonic()
    r = subprocess.run(
        [shell, "-c", prelude + f"t {_stubborn(tmp_path)}; echo rc=$?"], capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - t0 < 10, r
    assert "rc=137" in r.stdout


def _stubborn(tmp_path: Path, name: str = "stubborn") -> Path:
    """A command that hangs and ignores SIGTERM (as a process in an NFS wait does: SIGKILL only)."""
    p = tmp_path / name
    p.write_text("#!/bin/sh\ntrap '' TERM\nsleep 30 &\nwait $!\nwait $!\n")
    p.chmod(0o755)
    return p


@pytest.mark.parametrize("shell", PROBE_SHELLS)
def test_a_hang_in_the_bounded_group_errs_its_sections_and_the_rest_goes_on(tmp_path, shell, monkeypatch):
    """One guarded command hangs and ignores SIGTERM: the group's timeout stops it (SIGTERM, then SIGKILL), the
    sections of the group before it keep their output, it and those after it in the group arrive without their end
    marker and their facts are errors (never a pass, never silently absent), and the sections outside the group are
    whole. The group's limits shortened here (20 s and 5 s in the probe)."""
    import shutil
    import time

    from bkdoctor.facts import probe

    monkeypatch.setattr(probe, "GROUP_LIMIT", 1)
    monkeypatch.setattr(probe, "GROUP_KILL_AFTER", 1)
    b = tmp_path / "bin"
    b.mkdir()
    (b / "kubelet").write_text("#!/bin/sh\necho 'Kubernetes v1.20.11'\n")
    (b / "kubelet").chmod(0o755)
    _stubborn(b, "timedatectl")  # after kubelet_version, before iptables in host.GROUPS[0]
    names = {"kubelet_version", "timedatectl", "iptables", "df", "proc_swaps", "fstab", "uname_r"}
    script, nonce = build_script(names, shell=(shutil.which(shell),))
    group = [n for n in host.GROUPS[0] if n in names]
    assert group == ["kubelet_version", "timedatectl", "iptables"], group
    assert [n for n in host.GROUPS[1] if n in names] == ["df"]  # the other group: whole
    at = script.index("__bkd_g=")
    script = script[:at] + f"PATH='{b}':$PATH; export PATH\n" + script[at:]
    t0 = time.monotonic()
    r = subprocess.run([shell, "-s"], input=script.encode(), capture_output=True, timeout=60)
    assert time.monotonic() - t0 < 10, r
    parsed = parse_output(r.stdout, nonce)
    assert set(parsed) == {"kubelet_version", "df", "proc_swaps", "fstab", "uname_r"}, sorted(parsed)
    facts = HostFacts(parsed)
    assert facts.kubelet
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain="a.b")
    for rid in ("firewall", "time-sync"):
        res = evaluate(next(r for r in all_rules() if r.id == rid), facts, ctx)
        assert res.status == "error" and "cut off" in res.message.en, (rid, res)
    for rid in ("swap", "data-disk"):
        assert evaluate(next(r for r in all_rules() if r.id == rid), facts, ctx).status != "error", rid


def test_every_command_that_can_hang_and_every_network_path_is_in_the_bounded_group():
    """A section that runs `t cmd`, or touches a path that may be a network mount (the NFS share, /data, the
    registry's and LocalPV's directories, fio's), runs in the bounded group; in the script no such path is touched
    outside it (a shell test on a dead hard NFS mount blocks the probe's own shell, where no timeout reaches)."""
    import re

    net = ("$BKD_NFS_PATH", "$BKD_REGISTRY_DATA", "BKD_LOCALPV_SRC", "/data")
    # a measurement with its own 35 s timeout; curls with their own limits (their path touches: below)
    outside = {"fio", "registry_http"}
    for n, s in SECTIONS.items():
        if n not in outside and (re.search(r"(?:^|[;&|{(]\s*|\b(?:then|else|do)\s+)t ", s) or any(p in s for p in net)):
            assert n in host.BOUNDED, n
    assert len(set(host.BOUNDED)) == len(host.BOUNDED) and set(host.BOUNDED) <= set(SECTIONS)
    script, _ = build_script(set(SECTIONS) - outside, params={"BKD_NFS_PATH": "/mnt/nfs"})
    main = script[: script.index("__bkd_g=")]
    for p in net:
        assert p not in main, p
    # fio and registry_http touch their directories under a `timeout` only (a command, not the shell's own test)
    for n, p in (("fio", "$BKD_FIO_DIR"), ("registry_http", "$BKD_REGISTRY_DATA")):
        for m in re.finditer(re.escape(p), SECTIONS[n]):
            before = SECTIONS[n][: m.start()]
            assert re.search(r"(?:\bt|timeout -k \d+ \d+) (?:test -d|rm -f) \"$", before) or before.endswith('f="'), (
                n,
                m,
            )
    assert "timeout 3 getent" not in script and "timeout -k 1 3 getent" in script  # -k: a getent ignoring SIGTERM
    # the group's text is its shell's argv (`ps` shows it): no parameter's value and no nonce in it, only code
    script, nonce = build_script({"nfs_df", "registry_ingress"}, params={"BKD_NFS_PATH": "/nfs-v", "BKD_DOMAIN": "x.y"})
    at = script.index("__bkd_g=") + len("__bkd_g=")
    (text,) = shlex.split(script[at : script.index("\nif command -v timeout", at)])
    assert nonce not in text and "@@BKD" not in text and "/nfs-v" not in text and "x.y" not in text
    assert 'BKD_NFS_PATH="$BKD_NFS_PATH" timeout' in script and 'BKD_DOMAIN="' not in script  # its environment
    assert "chronyc_tracking" in host.BOUNDED  # runs chronyc without `t` (`$(t ...)` forks twice)
    assert host.BOUNDED == sum(host.GROUPS, ()) and host.BOUNDED[-1] == "nfs_df"  # the likeliest hang last
    assert host.GROUPS[0][-1] == "iptables" and "df" in host.GROUPS[1]  # a held lock never costs the disk facts


def test_every_bounded_section_runs_inline_under_the_groups_term_trap(monkeypatch):
    """A subshell `( ... )` resets the group's TERM trap: timeout would return at SIGTERM and leave a command that
    ignores it running under PID 1. build_script refuses a bounded section that cannot run inline."""
    from bkdoctor.facts.probe import runs_inline

    assert all(runs_inline(SECTIONS[n]) for n in host.BOUNDED)
    monkeypatch.setitem(SECTIONS, "df", "cd /; t df -P -k / /data")
    with pytest.raises(ValueError, match="inline"):
        build_script({"df"})


_FUSE_HELPER = r"""
import ctypes, os, subprocess, sys
mnt, shell = sys.argv[1], sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/dev/fuse", os.O_RDWR)  # not inherited by the probe
opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
if libc.mount(b"bkdoctor-test", mnt.encode(), b"fuse", 0, opts) != 0:
    sys.exit(f"mount: {os.strerror(ctypes.get_errno())}")
# nobody reads /dev/fuse: every request on the mount waits, as on a dead hard NFS mount (SIGKILL ends the wait)
c = subprocess.run(["timeout", "-k", "1", "1", "stat", "-c", "%F", mnt], capture_output=True)
sys.stderr.write(f"control stat rc={c.returncode}\n")
r = subprocess.run([*shell, "-s"], input=sys.stdin.buffer.read(), capture_output=True, timeout=60)
sys.stdout.buffer.write(r.stdout)
"""


@pytest.mark.parametrize("shell", PROBE_SHELLS)
def test_a_dead_nfs_path_costs_only_its_own_section(tmp_path, shell, monkeypatch):
    """The NFS share's path hangs for real (a FUSE mount nobody answers, in a private mount namespace): before, the
    probe's own shell blocked in nfs_df's `test -d` for ever; now the bounded group stops it and nfs_df is an error
    while every other section, in the group before it too, is whole."""
    import shutil
    import time

    from bkdoctor.facts import probe

    if not (Path("/dev/fuse").exists() and shutil.which("unshare")):
        pytest.skip("no /dev/fuse or unshare here")
    monkeypatch.setattr(probe, "GROUP_LIMIT", 1)
    monkeypatch.setattr(probe, "GROUP_KILL_AFTER", 1)
    mnt = tmp_path / "nfs"
    mnt.mkdir()
    names = {"nfs_df", "df", "proc_swaps", "uname_r"}
    script, nonce = build_script(names, params={"BKD_NFS_PATH": str(mnt)}, shell=(shutil.which(shell),))
    helper = tmp_path / "fuse_helper.py"
    helper.write_text(_FUSE_HELPER)
    t0 = time.monotonic()
    r = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "python3", str(helper), str(mnt), shell],
        input=script.encode(),
        capture_output=True,
        timeout=60,
    )
    took = time.monotonic() - t0
    if b"mount:" in r.stderr:
        pytest.skip(f"cannot mount FUSE here: {r.stderr.decode()[-200:]}")
    assert b"control stat rc=137" in r.stderr or b"control stat rc=124" in r.stderr, r.stderr  # it does hang
    assert took < 15, took
    parsed = parse_output(r.stdout, nonce)
    assert set(parsed) == {"df", "proc_swaps", "uname_r"}, sorted(parsed)
    with pytest.raises(host.FactUnavailable, match="cut off"):
        HostFacts(parsed).nfs


# hung command -> (the stub that hangs, the argument string it hangs on), and the facts that err: those that need the
# hung command, and (after the "+") those after it in its own group (host.GROUPS: a hang stops the rest of its group)
_SLOTS = {
    "iptables": ("iptables", "-w -S", {"iptables"}, set()),
    "timedatectl": ("timedatectl", "status", {"time_sync"}, {"iptables"}),
    "df": ("df", "-P -k / /data", {"resources", "data_disk"}, {"nfs"}),
    "nfs_df": ("stat", "-f -c %T {nfs}", {"nfs"}, set()),
}


@pytest.mark.parametrize("slot", sorted(_SLOTS))
@pytest.mark.parametrize("shell", PROBE_SHELLS)
def test_a_hang_in_each_slot_errs_only_what_needs_it_and_the_nonce_is_never_in_argv(tmp_path, shell, slot, monkeypatch):
    """One command hangs (and ignores SIGTERM) in each slot of the groups: the facts that err are those that need it
    and those after it in its own group, never the other group's (a held xtables lock or a wedged D-Bus costs no disk
    fact, a dead mount no firewall or clock fact). While it hangs, no process's argv holds the nonce or a parameter's
    value (`ps` shows argv to any local user): the group's shell has them in its environment."""
    import os
    import shutil
    import time

    from bkdoctor.facts import probe

    monkeypatch.setattr(probe, "GROUP_LIMIT", 2)
    monkeypatch.setattr(probe, "GROUP_KILL_AFTER", 1)
    cmd, args, need, after = _SLOTS[slot]
    nfs = tmp_path / "nfs"
    nfs.mkdir()
    b = tmp_path / "bin"
    b.mkdir()
    quick = {
        "systemctl": "echo disabled; exit 1",
        "timedatectl": "echo 'NTP synchronized: yes'",
        "chronyc": "exit 1",
    }
    quick["iptables"] = "echo '-P INPUT ACCEPT'"
    for name in ("df", "stat"):
        quick[name] = f'exec {shutil.which(name)} "$@"'
    for name, rest in quick.items():
        hang = f'case "$*" in "{args.format(nfs=nfs)}") trap "" TERM; sleep 30 & wait $!; wait $!;; esac\n'
        (b / name).write_text(f"#!/bin/sh\n{hang if name == cmd else ''}{rest}\n")
        (b / name).chmod(0o755)
    slow = {"fio", "registry_http"}  # a measurement; curls (outside the groups, and not hanging here)
    facts_ = sorted(f for f, secs in FACTS.items() if not slow & set(secs))
    names = {s for f in facts_ for s in FACTS[f]}
    params = {"BKD_NFS_PATH": str(nfs)}
    script, nonce = build_script(names, params=params, shell=(shutil.which(shell),))
    at = script.index("__bkd_g=")
    script = script[:at] + f"PATH='{b}':$PATH; export PATH\n" + script[at:]
    t0 = time.monotonic()
    p = subprocess.Popen([shell, "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(script.encode())
    p.stdin.close()
    seen_env = False
    while p.poll() is None and time.monotonic() - t0 < 2:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                env = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            assert nonce.encode() not in argv, argv[:300]
            if b"trap 'exit 143' TERM" in argv:  # a group's shell (or its timeout): code only, no parameter's value
                assert str(nfs).encode() not in argv, argv[:300]
                seen_env = seen_env or (f"__bkd_m=@@BKD-{nonce}".encode() in env)
        time.sleep(0.1)
    out = p.stdout.read()
    p.wait(timeout=30)
    assert seen_env  # the group's shell was there, with the nonce in its environment
    assert time.monotonic() - t0 < 15
    parsed = parse_output(out, nonce)
    erred = set()
    for f in facts_:
        try:
            getattr(HostFacts(parsed), f)
        except host.FactUnavailable as e:
            if "cut off" in e.reason.en:
                erred.add(f)
    assert erred == need | after, (slot, erred)


def test_disk_iops_keeps_a_finished_fio_run_when_fio_fstype_is_cut_off():
    """fio_fstype runs in a bounded group, fio outside it: a hang in the group must not discard a 35 s measurement.
    The rule says the type is unknown (the local threshold applied); with the type, the same as before."""
    fio = b'{"fio version": "fio-3.7", "jobs": [{"read": {"iops": 40.0}, "write": {"iops": 60.0}}]}\n'
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain="a.b")
    rule = next(r for r in all_rules() if r.id == "disk-iops")
    facts = HostFacts({"fio": host.Section("fio", 0, fio)})
    assert facts.disk_iops["iops"] == 100.0 and facts.disk_iops["fstype"] is None
    res = evaluate(rule, facts, ctx)
    assert res.status != "error" and "fs type unknown" in res.message.en, res
    facts = HostFacts({"fio": host.Section("fio", 0, fio), "fio_fstype": host.Section("fio_fstype", 0, b"nfs\n")})
    assert facts.disk_iops["nfs"] and "(nfs)" in evaluate(rule, facts, ctx).message.en


# -- the transport's read-ahead line (transport.base.READ_AHEAD) under the shells /bin/sh may be ------------------------
def _sh_prefix(shell_path: str | None) -> list[str]:
    """A prefix for LocalTransport whose `/bin/sh` is `shell_path` (a bind over the file /bin/sh resolves to, in a
    mount namespace of its own: this machine's /bin/sh is untouched), or this machine's own /bin/sh (None)."""
    if shell_path is None:
        return []
    target = os.path.realpath("/bin/sh")
    bind = f'mount --bind {shlex.quote(os.path.realpath(shell_path))} {shlex.quote(target)} && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", bind, "bind"]


TRANSPORT_SHELLS = {
    "dash": shutil.which("dash"),
    "bash": shutil.which("bash"),
    **extra_shells(),
}


@pytest.mark.skipif(
    not all(map(shutil.which, ("strace", "unshare", "setpriv"))), reason="strace, unshare and setpriv needed"
)
@pytest.mark.parametrize("sh", sorted(TRANSPORT_SHELLS))
def test_the_shell_reads_the_script_in_blocks_and_runs_it_as_before(tmp_path, sh):
    """bash reads a script from a pipe one byte per read(2): the read-ahead line makes it read the rest in blocks,
    in the same shell. What the script does is what it did: its exit status, the lines after a command that reads
    its standard input (which now sees the end, not the script's next line, as under dash), a script larger than a
    pipe's buffer, every line of it."""
    import asyncio

    from bkdoctor.transport import LocalTransport

    prefix = _sh_prefix(TRANSPORT_SHELLS[sh])
    lines = 4000
    big = "n=0\n" + "".join(f"n=$((n + 1)) # {'x' * 40}\n" for _ in range(lines)) + 'echo "lines $n"\n'
    assert len(big) > 1 << 17  # twice a pipe's 64 KiB
    trace = tmp_path / "reads"
    cases = [
        ("echo a\nexit 3\necho never\n", 3, b"a\n", []),
        ("cat\necho after\n", 0, b"after\n", []),
        # an error that ends a POSIX shell still does inside the read-ahead's `.` (not `command .`, which kept it on)
        ("echo a\n. /nonexistent/bkdoctor-test\necho ran-on\n", None, b"a\n", []),
        (big, 0, f"lines {lines}\n".encode(), ["strace", "-f", "-c", "-e", "trace=read", "-o", str(trace)]),
    ]
    for script, rc, out, wrap in cases:
        t = LocalTransport(prefix=wrap + prefix)
        r = asyncio.run(t.run_script(script, 60))
        assert r.stdout == out and (r.rc == rc if rc is not None else r.rc != 0), (sh, script[:30], r)
    reads = int(re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(?:\s+\d+)?\s+read$", trace.read_text(), re.M).group(1))
    assert reads < len(big) / 100, (sh, reads)  # in blocks (byte by byte: one read per byte, 180,000 here)
    # an install step streamed on this machine: its `ssh` (here `cat`) reads its input, the next line still runs
    from bkdoctor.transport.local import run_streaming_local

    got: list[bytes] = []
    rc = asyncio.run(run_streaming_local(prefix, "echo step1\ncat\necho step3\n", 60, got.append))
    assert (rc, b"".join(got)) == (0, b"step1\nstep3\n"), (sh, got)
    # a shell that may not open its own standard input again by that name (the pipe is root's, the shell runs as
    # nobody after a privilege drop): the script still runs whole, read as before, and nothing more is printed
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = asyncio.run(LocalTransport(prefix=prefix + drop).run_script("echo a\nid -u\nexit 4\n", 60))
    assert (r.rc, r.stdout, r.stderr) == (4, b"a\n65534\n", b""), (sh, r)


def test_each_section_reads_only_the_words_the_batch_read():
    """`__bkd_rd` prints a reference for any readable regular file once the batch has run (it no longer looks the path
    up in the batch's list): a section may read only its own FILE_READS words, a literal path among them or each file
    of a loop over exactly them."""
    users = {n for n, s in SECTIONS.items() if "__bkd_rd" in s}
    assert users == set(host.FILE_READS), users ^ set(host.FILE_READS)
    for n in users:
        words = host.FILE_READS[n].split()
        for arg in re.findall(r"__bkd_rd (\S+?);?(?:\s|$)", SECTIONS[n]):
            if arg == '"$f"':
                assert f"for f in {host.FILE_READS[n]}; do" in SECTIONS[n], n
            else:
                assert arg in words, (n, arg)


def test_a_file_readable_only_after_the_batch_errs_its_section_never_other_bytes(tmp_path):
    """A file that was not a readable regular file when the batch ran, and is one when its section reads it (a race
    of milliseconds), is not in the batch's table: the section is an error, as a cut-off one, and the others whole."""
    files = {"a": b"one\n", "b": b"two\n", "c": b"three\n"}
    late = tmp_path / "late"
    script, nonce = _registry_config_probe(tmp_path, files, str(late))
    at = script.index(f"printf '\\n@@BKD-{nonce}:E:__files:%s\\n'")
    at = script.index("\n", at) + 1
    script = script[:at] + f"printf 'late\\n' > {shlex.quote(str(late))}\n" + script[at:]
    out = sh(script)
    assert f"@@BKD-{nonce}:R:{late}".encode() in out  # the section referred to it
    parsed = parse_output(out, nonce)
    assert "registry_config" not in parsed  # an error: absent from the parsed output
    assert parsed["sysctl_files"].out == b"".join(
        b"### " + str(tmp_path / n).encode() + b"\n" + d + b"\n" for n, d in files.items()
    )


@pytest.mark.parametrize("shell", PROBE_SHELLS)
def test_a_section_without_return_or_parameters_runs_as_a_brace_group_and_leaks_nothing(monkeypatch, shell):
    """Sections that need no function (no `return`, no positional parameters) run as `{ ...; }` in the probe's shell
    (bash copies a function's body at its definition and at each call); those that do stay functions, so a `set --`
    or a `return` never reaches the shell, and each status is the section's own."""
    monkeypatch.setitem(SECTIONS, "hostname", 'set -- a b c; printf "%s\\n" "$#"; return 3')
    monkeypatch.setitem(SECTIONS, "nproc", "x=1; false")
    monkeypatch.setitem(SECTIONS, "uname_r", 'printf "%s %s\\n" "$#" "${x-}"')
    script, nonce = build_script({"hostname", "nproc", "uname_r"}, shell=(shutil.which(shell),))
    assert "{ x=1; false\n} </dev/null 2>&1" in script and "__bkd_s() { set -- a b c;" in script
    assert "__bkd_s() { printf" in script  # "$#": a function's own parameters
    out = parse_output(subprocess.run([shell, "-s"], input=script.encode(), capture_output=True).stdout, nonce)
    assert (out["hostname"].rc, out["hostname"].out) == (3, b"3\n")
    assert (out["nproc"].rc, out["nproc"].out) == (1, b"")
    assert (out["uname_r"].rc, out["uname_r"].out) == (0, b"0 1\n")  # the shell's variables, not its parameters
