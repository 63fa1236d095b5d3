"""SSHTransport against real sshd's in namespace test hosts (tests/testbed: TestNet + NsHost.start_sshd)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import stat
import subprocess
import time

import pytest
from testbed.fixtures import keygen, ssh_fleet, ssh_unavailable  # noqa: F401

from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.transport.base import TransportError
from bkdoctor.transport.ssh import SSHSettings, SSHTransport, _parse_http, _parse_jump

needs_ssh = pytest.mark.skipif(ssh_unavailable() is not None, reason=str(ssh_unavailable()))


def run(coro):
    return asyncio.run(coro)


async def once(address: str, settings: SSHSettings, script: str = "uname -n", timeout: float = 30):
    t = SSHTransport(address, settings)
    try:
        return await t.run_script(script, timeout)
    finally:
        await t.close()


def failure(address: str, settings: SSHSettings, script: str = "uname -n") -> tuple[str, float]:
    """(TransportError message, seconds it took)."""
    t0 = time.monotonic()
    with pytest.raises(TransportError) as ei:
        run(once(address, settings, script))
    return str(ei.value), time.monotonic() - t0


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _wait_gone(host, comm: str, timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in host.pids() if _comm(p) == comm]
        if not left:
            return
        assert time.monotonic() < deadline, f"{comm} still running in {host.name}: {left}"
        time.sleep(0.05)


def settings_for(fleet, **kw) -> SSHSettings:
    return SSHSettings.merged(fleet.ssh_settings(), {}, **kw)


# ---------------------------------------------------------------- no hosts needed


def test_settings_merged():
    inv = {"user": "ops", "port": 2222, "identity_file": "~/.ssh/id_x", "password_env": "BK_PW", "connect_timeout": 3}
    host = {"port": 22, "become": True}
    s = SSHSettings.merged(inv, host, accept_new_host_keys=True, proxy_jump=None, password="pw")
    assert (s.user, s.port, s.become, s.connect_timeout, s.accept_new_host_keys) == ("ops", 22, True, 3, True)
    assert s.identity_file == os.path.expanduser("~/.ssh/id_x")
    assert s.proxy_jump is None and s.command_timeout == 60
    assert "pw" not in repr(s)
    assert SSHSettings.password_env_name(inv, host) == "BK_PW"
    assert SSHSettings.password_env_name(inv, {"password_env": "H"}) == "H"
    assert SSHSettings.merged({}, {}).known_hosts_path == os.path.expanduser("~/.ssh/known_hosts")
    with pytest.raises(ValueError):
        SSHSettings.merged({"bogus": 1}, {})
    with pytest.raises(ValueError):
        SSHSettings.merged({"password": "x"}, {})  # passwords never come from the inventory


def test_parse_jump():
    assert _parse_jump("ops@10.0.0.1:2222", "root") == ("ops", "10.0.0.1", 2222)
    assert _parse_jump("jump.example", "root") == ("root", "jump.example", 22)
    assert _parse_jump("[fd00::1]:22", "bk") == ("bk", "fd00::1", 22)
    with pytest.raises(TransportError, match="not a number"):
        _parse_jump("h:x", "root")


def test_parse_http():
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
    )
    assert _parse_http(chunked, "x") == {"a": 1}
    assert _parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "x") == []
    with pytest.raises(TransportError, match=r"HTTP 404: page not found"):
        _parse_http(b'HTTP/1.1 404 Not Found\r\n\r\n{"message":"page not found"}', "x")
    with pytest.raises(TransportError, match="not JSON"):
        _parse_http(b"HTTP/1.1 200 OK\r\n\r\n<html>", "x")


# ---------------------------------------------------------------- real sshd


@pytest.mark.ssh
@needs_ssh
def test_probe_over_ssh_one_connection(ssh_fleet):
    fleet = ssh_fleet(1)
    h = fleet[0]
    script, nonce = build_script(["hostname", "uname_r", "os_release"])

    async def go():
        t = SSHTransport(h.address, settings_for(fleet))
        try:
            t0 = time.monotonic()
            r1 = await t.run_script(script, 30)
            first = time.monotonic() - t0
            r2 = await t.run_script("id -u", 30)
            return r1, r2, first
        finally:
            await t.close()

    r1, r2, first = run(go())
    parsed = parse_output(r1.stdout, nonce)
    assert r1.rc == 0, r1.stderr
    assert parsed["hostname"].out.strip() == h.hostname.encode() == b"node1"
    assert parsed["uname_r"].out.strip() == os.uname().release.encode()
    assert b"ID=" in parsed["os_release"].out
    assert r2.stdout == b"0\n"
    # one connection, reused for both commands
    log = h.daemon_log("sshd")
    assert log.count("Accepted publickey for root") == 1, log
    print(f"\n[timing] connect + one probe over SSH: {first:.3f}s")


@pytest.mark.ssh
@pytest.mark.docker
@needs_ssh
@pytest.mark.skipif(not shutil.which("dockerd"), reason="dockerd not installed")
def test_docker_api_over_ssh(ssh_fleet):
    fleet = ssh_fleet(1)
    h = fleet[0]
    h.start_dockerd()

    async def go():
        t = SSHTransport(h.address, settings_for(fleet))
        try:
            api = await t.docker_api("/run/docker.sock", ["/version", "/info"], 10)
            with pytest.raises(TransportError) as missing:
                await t.docker_api("/run/nope.sock", ["/version"], 10)
            with pytest.raises(TransportError) as notfound:
                await t.docker_api("/run/docker.sock", ["/no/such/endpoint"], 10)
            r = await t.run_script("echo still-here", 10)  # same connection still fine
            return api, str(missing.value), str(notfound.value), r
        finally:
            await t.close()

    api, missing, notfound, r = run(go())
    assert api["/version"]["ApiVersion"] and api["/version"]["Version"]
    assert api["/info"]["Name"] == "node1"
    assert api["/info"]["Driver"] == "vfs"
    assert "/run/nope.sock" in missing and "cannot open the socket over SSH" in missing
    assert "HTTP 404" in notfound
    assert r.stdout == b"still-here\n"
    assert h.daemon_log("sshd").count("Accepted publickey") == 1


@pytest.mark.ssh
@needs_ssh
def test_connection_refused(ssh_fleet):
    fleet = ssh_fleet(1)
    fleet[0].stop_sshd()
    msg, took = failure(fleet[0].address, settings_for(fleet))
    assert msg == "connection refused"
    assert took < 3


@pytest.mark.ssh
@needs_ssh
@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_always_rejected(ssh_fleet, tmp_path, accept_new):
    fleet = ssh_fleet(1)
    h = fleet[0]
    other = keygen(str(tmp_path / "other"), "impostor")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{h.address} {' '.join(other.split()[:2])}\n")
    before = kh.read_bytes()
    msg, took = failure(h.address, settings_for(fleet, known_hosts=str(kh), accept_new_host_keys=accept_new))
    assert msg == f"host key for {h.address} CHANGED (possible man-in-the-middle); fix known_hosts"
    assert took < 5
    assert kh.read_bytes() == before


@pytest.mark.ssh
@needs_ssh
def test_host_key_types(ssh_fleet, tmp_path):
    """known_hosts decides which host key type is negotiated: a server offering ed25519 and ecdsa is
    verified with whichever one known_hosts has; a known key of a type the server lacks is refused."""
    ecdsa = str(tmp_path / "ssh_host_ecdsa_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa], check=True, capture_output=True)
    fleet = ssh_fleet(1, sshd={"extra_config": [f"HostKey {ecdsa}"]})
    ssh_fleet(1)  # node2 joins the same fleet: ed25519 only
    both, only = fleet.hosts
    ecdsa_pub = " ".join(open(ecdsa + ".pub").read().split()[:2])
    kh = tmp_path / "kh"
    for line in (both.known_hosts_line(), f"{both.address} {ecdsa_pub}"):
        kh.write_text(line + "\n")
        assert run(once(both.address, settings_for(fleet, known_hosts=str(kh)))).stdout == b"node1\n"
    kh.write_text(f"{only.address} {ecdsa_pub}\n")
    msg, _ = failure(only.address, settings_for(fleet, known_hosts=str(kh), accept_new_host_keys=True))
    assert msg.startswith(f"host key for {only.address} CHANGED (the server offers none of the key types")


@pytest.mark.ssh
@needs_ssh
def test_unknown_host_key_and_trust_on_first_use(ssh_fleet, tmp_path):
    fleet = ssh_fleet(2)
    h1, h2 = fleet.hosts
    kh = tmp_path / "sub" / "known_hosts"  # neither the file nor its dir exists yet
    msg, _ = failure(h1.address, settings_for(fleet, known_hosts=str(kh)))
    assert msg == (f"host key for {h1.address} not in known_hosts (use --accept-new-host-keys to trust on first use)")
    assert not kh.exists()

    tofu = settings_for(fleet, known_hosts=str(kh), accept_new_host_keys=True)
    assert run(once(h1.address, tofu)).stdout == b"node1\n"
    assert kh.read_text() == f"{h1.address} {h1.host_key_pub}\n"
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    # now known: works without TOFU; a second host is appended, the file's mode is kept
    assert run(once(h1.address, settings_for(fleet, known_hosts=str(kh)))).stdout == b"node1\n"
    kh.chmod(0o644)
    assert run(once(h2.address, tofu)).stdout == b"node2\n"
    assert kh.read_text().splitlines() == [f"{h1.address} {h1.host_key_pub}", f"{h2.address} {h2.host_key_pub}"]
    assert stat.S_IMODE(kh.stat().st_mode) == 0o644


@pytest.mark.ssh
@needs_ssh
def test_silent_server_times_out_at_connect_timeout(ssh_fleet):
    fleet = ssh_fleet(1)
    h = fleet[0]
    h.start_silent_listener(2222)
    msg, took = failure(h.address, settings_for(fleet, port=2222, connect_timeout=1))
    assert msg == "timed out after 1s connecting"
    assert 0.9 < took < 2.5


@pytest.mark.ssh
@needs_ssh
def test_command_timeout(ssh_fleet):
    fleet = ssh_fleet(1)
    h = fleet[0]

    async def go():
        t = SSHTransport(h.address, settings_for(fleet, command_timeout=1))
        try:
            t0 = time.monotonic()
            with pytest.raises(TransportError) as ei:
                await t.run_script("sleep 30", 60)
            took = time.monotonic() - t0
            after = await t.run_script("echo ok >&2; echo ok; exit 3", 60)  # the connection survives
            return str(ei.value), took, after
        finally:
            await t.close()

    msg, took, after = run(go())
    assert msg == "command timed out after 1s"
    assert took < 4
    assert (after.rc, after.stdout, after.stderr) == (3, b"ok\n", b"ok\n")  # preamble line stripped
    _wait_gone(h, "sleep")  # the hung command was killed on the host, not left behind


@pytest.mark.ssh
@needs_ssh
def test_password_auth(ssh_fleet):
    with open("/etc/shadow", "rb") as f:
        machine_shadow = hashlib.sha256(f.read()).digest()
    fleet = ssh_fleet(1, sshd={"password_auth": True, "password": "S3cret-pw!"})
    h = fleet[0]
    assert b"root:$" in h.read("/etc/shadow")  # set in the host's overlay /etc/shadow...
    with open("/etc/shadow", "rb") as f:
        assert hashlib.sha256(f.read()).digest() == machine_shadow  # ...never in the machine's

    no_key = dataclasses.replace(settings_for(fleet), identity_file=None)  # merged() ignores None overrides
    ok = dataclasses.replace(no_key, password="S3cret-pw!")
    assert run(once(h.address, ok)).stdout == b"node1\n"
    bad = dataclasses.replace(no_key, password="wrong-Pw-123")
    msg, took = failure(h.address, bad)
    assert msg == "authentication failed for root (password)"
    assert "wrong-Pw-123" not in msg
    assert took < 5
    assert "wrong-Pw-123" not in repr(bad)


@pytest.mark.ssh
@needs_ssh
@pytest.mark.skipif(not shutil.which("sudo"), reason="sudo not installed (apt-get install sudo)")
def test_become_with_sudo(ssh_fleet):
    fleet = ssh_fleet(1)
    h = fleet[0]
    # sudo resolves the host's own name, and DNS inside a test host times out
    h.write("/etc/hosts", f"{h.address} {h.hostname}\n", append=True)
    h.add_user("bkops", sudo="nopasswd", authorized_key=fleet.client_pub)
    h.add_user("bkpw", sudo="password", authorized_key=fleet.client_pub)

    plain = settings_for(fleet, user="bkops")
    assert run(once(h.address, plain, "id -un")).stdout == b"bkops\n"
    become = settings_for(fleet, user="bkops", become=True)
    r = run(once(h.address, become, "id -u; cat /etc/shadow >/dev/null && echo can-read-shadow"))
    assert r.stdout == b"0\ncan-read-shadow\n", r.stderr

    # a hung command run through sudo is killed too (as root, through sudo)
    msg, took = failure(h.address, settings_for(fleet, user="bkops", become=True, command_timeout=1), "sleep 30")
    assert msg == "command timed out after 1s" and took < 4
    _wait_gone(h, "sleep")

    msg, took = failure(h.address, settings_for(fleet, user="bkpw", become=True))
    assert msg == "sudo: a password is required"
    assert took < 5
    # the machine's own passwd never saw the users
    with open("/etc/passwd") as f:
        assert "bkops:" not in f.read()


@pytest.mark.ssh
@needs_ssh
def test_proxy_jump(ssh_fleet):
    fleet = ssh_fleet(3)
    jump, target, hop2 = fleet.hosts
    s = settings_for(fleet, proxy_jump=f"root@{jump.address}:22")
    r = run(once(target.address, s, "uname -n; echo $SSH_CLIENT"))
    name, client = r.stdout.decode().split("\n")[:2]
    assert name == "node2"
    assert client.split()[0] == jump.address  # the target saw the jump host, not us
    # two hops, OpenSSH style "a,b": us -> node1 -> node3 -> node2
    two = settings_for(fleet, proxy_jump=f"{jump.address},root@{hop2.address}")
    r = run(once(target.address, two, "echo $SSH_CLIENT"))
    assert r.stdout.split()[0].decode() == hop2.address
    assert "Accepted publickey" in hop2.daemon_log("sshd")

    # the jump host is checked against known_hosts too
    with open(fleet.known_hosts, "w") as f:
        f.write(target.known_hosts_line() + "\n")
    msg, _ = failure(target.address, s)
    assert msg.startswith(f"jump host {jump.address}: host key for {jump.address} not in known_hosts")

    # an unreachable jump host is named as such
    jump.stop_sshd()
    fleet.write_known_hosts()
    msg, _ = failure(target.address, s)
    assert msg == f"jump host {jump.address}: connection refused"


@pytest.mark.ssh
@needs_ssh
def test_twenty_hosts_concurrently(ssh_fleet, tmp_path):
    t0 = time.monotonic()
    fleet = ssh_fleet(20, parallel=2)
    bring_up = time.monotonic() - t0
    # all first contacts at once: 20 trust-on-first-use appends to one known_hosts file
    kh = tmp_path / "known_hosts"
    s = settings_for(fleet, known_hosts=str(kh), accept_new_host_keys=True)
    script, nonce = build_script(["hostname", "uname_r", "os_release"])

    async def one(h):
        t = SSHTransport(h.address, s)
        try:
            return await t.run_script(script, 30)
        finally:
            await t.close()

    async def go():
        return await asyncio.gather(*(one(h) for h in fleet.hosts))

    t1 = time.monotonic()
    results = run(go())
    wall = time.monotonic() - t1
    names = [parse_output(r.stdout, nonce)["hostname"].out.strip().decode() for r in results]
    assert names == [h.name for h in fleet.hosts]
    assert sorted(kh.read_text().splitlines()) == sorted(h.known_hosts_line() for h in fleet.hosts)
    print(
        f"\n[timing] 20 hosts: bring-up {bring_up:.2f}s ({bring_up / 20:.3f}s/host), "
        f"probe over SSH concurrently {wall:.2f}s"
    )
    assert wall < 15
