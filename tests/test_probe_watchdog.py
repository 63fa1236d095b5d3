"""The probe's watchdog (issue 16): one background loop stops a command run through `t` that runs 10 s or more,
instead of a `timeout` process per command. A hung command's section ends as it did under `timeout 10` (exit 124,
the output it gave), the sections after it run, commands not started through `t` (fio, curl measurements, a
section's own `sleep`) are left alone, and nothing of the watchdog is left on the host after the probe."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bkdoctor.facts import host, probe
from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.inputs.inventory import load_inventory
from bkdoctor.scan import engine
from bkdoctor.scan.engine import compress_script, decompress_output

# a command that gives part of its output and then hangs (a df on a dead NFS mount)
HEADER = "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
HANG = f"#!/bin/sh\nprintf '{HEADER[:-1]}\\n'\nexec sleep 1000\n"
# the script as it was before the watchdog: `t` is `timeout 10` (the fallback where /proc has no children files)
WATCHDOG_TEST = "&& [ -r /proc/uptime ] &&"


def old_mechanism(script: str) -> str:
    assert script.count(WATCHDOG_TEST) == 1
    return script.replace(WATCHDOG_TEST, "&& [ -r /nonexistent/bkdoctor ] &&")


def test_hung_commands_are_stopped_like_timeout_did_in_every_shell(tmp_path, monkeypatch):
    """A hung command in a section of the probe's own shell and one in a subshell's command substitution (a site
    rule's `$(t systemctl ...)`) are stopped after 10 s with the old status and output; a long command not run
    through `t` finishes; a missing command fails as `timeout` said it. Under dash, `bash --posix` and bash, the three
    at once (each run waits ~35 s for the three hangs and the long sleep). A command that ignores SIGINT is killed."""
    hang = tmp_path / "hang"
    hang.write_text(HANG)
    hang.chmod(0o755)
    stubborn = tmp_path / "stubborn"
    stubborn.write_text("#!/bin/sh\ntrap '' INT\nexec sleep 1000\n")
    stubborn.chmod(0o755)
    monkeypatch.setitem(host.SECTIONS, "w0_ignores_int", f"t {stubborn}")
    monkeypatch.setitem(host.SECTIONS, "w1_inline", f"t {hang} -P -k /")
    monkeypatch.setitem(probe.EXTRA_SECTIONS, "w2_subshell", f'r=$(t {hang} 2>&1); r=${{r#Filesystem }}; echo "$r"')
    monkeypatch.setitem(host.SECTIONS, "w3_long", "sleep 11; echo slept")
    monkeypatch.setitem(host.SECTIONS, "w4_absent", "t bkdoctor-no-such-command --version")
    script, nonce = build_script(["w0_ignores_int", "w1_inline", "w2_subshell", "w3_long", "w4_absent", "hostname"])
    assert probe.runs_inline(host.SECTIONS["w1_inline"]) and probe.runs_inline(host.SECTIONS["w3_long"])
    shells = (["dash", "-s"], ["bash", "--posix", "-s"], ["bash", "-s"])
    (tmp_path / "probe.sh").write_text(script)
    t0 = time.monotonic()
    procs = []
    for argv in shells:
        with open(tmp_path / "probe.sh", "rb") as f:
            procs.append(subprocess.Popen(argv, stdin=f, stdout=subprocess.PIPE))
    outs = [p.communicate(timeout=120)[0] for p in procs]
    took = time.monotonic() - t0
    assert took < 60, took  # 10-13 s a hang, 11 s the sleep: not the hangs' 1000 s
    for argv, out in zip(shells, outs):
        s = parse_output(out, nonce)
        assert set(s) == {"w0_ignores_int", "w1_inline", "w2_subshell", "w3_long", "w4_absent", "hostname"}, (argv, out)
        # SIGINT ignored: SIGKILL 2 s later (the shell says "Killed"; `timeout 10` would have waited for ever)
        assert s["w0_ignores_int"].rc == 124 and "Killed" in s["w0_ignores_int"].text(), (argv, s["w0_ignores_int"])
        assert (s["w1_inline"].rc, s["w1_inline"].text()) == (124, HEADER), argv
        assert (s["w2_subshell"].rc, s["w2_subshell"].text()) == (0, "1024-blocks Used Available Capacity Mounted on\n")
        assert (s["w3_long"].rc, s["w3_long"].text()) == (0, "slept\n"), argv
        assert s["w4_absent"].rc == 127, argv
        assert s["w4_absent"].text() == (
            "timeout: failed to run command 'bkdoctor-no-such-command': No such file or directory\n"
        ), argv
        assert s["hostname"].ok and s["hostname"].text().strip(), argv


def _ns_pids(h) -> dict[int, int]:
    """pid in the host's own PID namespace -> pid here, for every process of the host."""
    out = {}
    for hp in h.pids():
        try:
            status = Path(f"/proc/{hp}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                out[int(line.split()[-1])] = hp
    return out


@pytest.mark.ssh
def test_a_hung_command_over_ssh_and_nothing_left_after(ssh_fleet, tmp_path):
    """Over the real transport (gzip'ed), a `df` that hangs: the probe finishes, `df` reports the timeout as under
    `timeout 10` (same status and bytes), the sections after it have their output; then neither the watchdog nor
    its sleep is left on the host (checked by pid in the host's own PID namespace)."""
    fleet = ssh_fleet(
        1, files={"/usr/local/bin/df": {"content": HANG, "mode": 0o755}}, overlays=["/etc", "/usr/local/bin"]
    )
    h = fleet.hosts[0]
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(
        yaml.safe_dump(
            {
                "domain": "bkce7.bktencent.com",
                "ssh": fleet.ssh_settings(connect_timeout=5),
                "hosts": [{"name": h.name, "address": h.address, "roles": ["node"]}],
            }
        )
    )
    inv = load_inventory(str(inv_path))
    script, nonce = build_script({"df", "hostname", "meminfo", "uname_r"})
    # the watchdog's pid and its sleep's, as the host's namespace numbers them, printed outside any section
    end = probe._WATCHDOG_END
    spy = (
        'read -r __c </proc/$__bkd_wdp/task/$__bkd_wdp/children; printf \'\\nWATCHDOG %s %s\\n\' "$__bkd_wdp" "$__c"\n'
    )
    assert script.endswith(end + "\n")

    async def run(text: str):
        t = engine.default_transport(inv.hosts[0], inv)
        try:
            return await t.run_script(compress_script(text), 60)
        finally:
            await t.close()

    before = set(_ns_pids(h))
    t0 = time.monotonic()
    res = asyncio.run(run(script[: -len(end) - 1] + spy + end + "\n"))
    took = time.monotonic() - t0
    out = decompress_output(res.stdout)
    s = parse_output(out, nonce)
    assert 9 < took < 30, took
    assert {"df", "hostname", "meminfo", "uname_r"} <= set(s), out
    assert s["meminfo"].ok and "MemTotal:" in s["meminfo"].text()
    assert s["uname_r"].ok and s["hostname"].ok
    # the watchdog ran, with its sleep; both are gone once the probe returned (and so is everything it started)
    line = next(x for x in out.split(b"\n") if x.startswith(b"WATCHDOG "))
    wd, *sleeps = (int(x) for x in line.split()[1:])
    assert wd and sleeps, line
    deadline = time.monotonic() + 5
    while (left := set(_ns_pids(h)) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left & {wd, *sleeps}, (left, wd, sleeps)
    assert not left, left
    # the same probe with `timeout 10` as before: the same status and bytes for the hung section and the others
    old = parse_output(decompress_output(asyncio.run(run(old_mechanism(script))).stdout), nonce)
    for name in ("df", "hostname", "meminfo", "uname_r"):
        want = old[name].out if name != "meminfo" else s[name].out  # meminfo's numbers move between two runs
        assert (s[name].rc, s[name].out) == (old[name].rc, want), name
    assert s["df"].rc == 124


def test_a_killed_probe_shell_leaves_no_hung_command_nor_watchdog(tmp_path, monkeypatch):
    """The probe's shell dies while a command run through `t` hangs (killed from outside): at its next wake the
    watchdog finds its parent gone, SIGKILLs the marked command the shell left behind (adopted by pid 1), and exits;
    `timeout 10` would have stopped that command too."""
    hang = tmp_path / "hang"
    hang.write_text(HANG)
    hang.chmod(0o755)
    monkeypatch.setitem(host.SECTIONS, "w1_inline", f"t {hang}")
    script, _ = build_script(["w1_inline"])
    (tmp_path / "probe.sh").write_text(script)
    with open(tmp_path / "probe.sh", "rb") as f:
        p = subprocess.Popen(["dash", "-s"], stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while len(kids := Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()) < 2:
        assert time.monotonic() < deadline, kids
        time.sleep(0.05)
    p.kill()
    p.wait()
    left = [int(k) for k in kids]  # the watchdog and the hung command
    deadline = time.monotonic() + 15
    while (left := [k for k in left if _alive(k)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, left


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
