"""No wasted round trips (issue 16): one SSH exec per host when the Docker socket is absent, the clock sample in
the probe's own session, the probe output compressed by sshd (no `gzip` process on the host). Counted on real sshd test hosts: a ForceCommand
wrapper logs every exec request sshd receives (the Docker API's stream-local channels are not execs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.inputs.inventory import load_inventory
from bkdoctor.scan import engine

pytestmark = [pytest.mark.ssh]
ROOT = Path(__file__).resolve().parent.parent


def bkdoctor(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env["LANG"] = "C.UTF-8"
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_socket_absent_is_one_exec_per_host(ssh_fleet, tmp_path):
    log = tmp_path / "execs.log"
    wrapper = tmp_path / "count-exec"
    # SSH_CONNECTION: client address, client port, server address, server port
    wrapper.write_text(
        f'#!/bin/sh\nset -- $SSH_CONNECTION\nprintf "%s|%s\\n" "$3" "$SSH_ORIGINAL_COMMAND" '
        f'>> {log}\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    wrapper.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    fleet = ssh_fleet(2, sshd={"extra_config": [f"ForceCommand {wrapper}"]})
    absent, dead = fleet.hosts
    # the other host's socket exists but nothing answers on it: the API fails, so the CLI is asked in a second
    # probe, as before (this also shows the counter counts)
    dead_sock = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead_sock))
    s.close()
    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": fleet.ssh_settings(connect_timeout=5),
        "hosts": [
            {
                "name": "absent",
                "address": absent.address,
                "roles": ["node"],
                "docker_socket": str(tmp_path / "no-such.sock"),
            },
            {"name": "dead", "address": dead.address, "roles": ["node"], "docker_socket": str(dead_sock)},
        ],
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(inv))
    r = bkdoctor("scan", "-i", str(tmp_path / "hosts.yaml"), "--json", "-", "--no-history", "--no-cluster")
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    execs: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        addr, _, cmd = line.partition("|")
        execs.setdefault(addr, []).append(cmd)
    assert len(execs[absent.address]) == 1, execs  # the probe, the docker CLI and the clock in one session
    assert len(execs[dead.address]) == 2, execs  # + the CLI fallback probe: the socket is there, the API is not

    by = {(f["rule"], f["target"]): f for f in rep["findings"]}
    # the clock sample rode on the probe: fleet-clock-skew has a reading for both hosts (they share this clock)
    for t in ("absent", "dead"):
        f = by[("fleet-clock-skew", t)]
        assert f["status"] == "pass", f
        assert abs(f["observed"]["skew_s"]) < 1 + f["observed"]["uncertainty_s"]
    # the CLI's answer is the same whether it came inline (socket absent) or from the second probe
    a, d = by[("docker-version", "absent")], by[("docker-version", "dead")]
    assert a["status"] == d["status"] and a.get("observed") == d.get("observed"), (a, d)
    if subprocess.run(["sh", "-c", "command -v docker"], capture_output=True).returncode == 0:
        client = subprocess.run(["docker", "--version"], capture_output=True, text=True).stdout.split()[2].rstrip(",")
        assert client in json.dumps(a, ensure_ascii=False), a


def _probe_over_ssh(inv_path, script: str):
    """Run `script` on the inventory's one host over the real transport; its output, the session's compression and
    its ciphers."""
    import asyncio

    inv = load_inventory(str(inv_path))

    async def run():
        t = engine.default_transport(inv.hosts[0], inv)
        try:
            res = await t.run_script(script, 60)
            conn = t._conn  # the one connection of this host
            algs = {k: conn.get_extra_info(k) for k in ("recv_cipher", "send_cipher")}
            return res, conn.get_extra_info("recv_compression"), conn.get_extra_info("send_compression"), algs
        finally:
            await t.close()

    return asyncio.run(run())


_CHACHA_ONLY = "Ciphers chacha20-poly1305@openssh.com,aes256-ctr"


@pytest.mark.parametrize("server", ["default", "Compression no", _CHACHA_ONLY])
def test_probe_output_is_compressed_by_sshd(ssh_fleet, tmp_path, server):
    """The probe's output travels compressed (zlib@openssh.com, after authentication: `ssh -C`), with no `gzip` or
    subshell on the host; a server that refuses compression is spoken to plainly, with the same sections. The session
    is encrypted with AES-GCM (one AEAD call a packet on both ends, where asyncssh's chacha20-poly1305 costs the
    control machine ~40 us a packet in Python); a server whose `Ciphers` has no GCM is spoken to with its own."""
    extra = [] if server == "default" else [server]
    fleet = ssh_fleet(1, sshd={"extra_config": extra})
    h = fleet.hosts[0]
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(
        yaml.safe_dump(
            {
                "ssh": fleet.ssh_settings(connect_timeout=5),
                "hosts": [{"name": h.name, "address": h.address, "roles": ["node"]}],
            }
        )
    )
    script, nonce = build_script({"uname_r", "os_release", "mountinfo", "etc_hosts"})
    assert "gzip" not in script
    res, recv, send, algs = _probe_over_ssh(inv_path, script)
    want = "none" if server == "Compression no" else "zlib@openssh.com"
    assert (recv, send) == (want, want), (recv, send)
    cipher = "chacha20-poly1305@openssh.com" if server == _CHACHA_ONLY else "aes128-gcm@openssh.com"
    assert algs == {"recv_cipher": cipher, "send_cipher": cipher}, algs
    plain = subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True).stdout
    got = parse_output(res.stdout, nonce)
    assert got.keys() == parse_output(plain, nonce).keys() and got["uname_r"].ok, sorted(got)


def _ignore_flood(count: int, size: int, pause: float, **server_opts) -> tuple[float, int]:
    """A hostile sshd (asyncssh's server: a real sshd sends no such packets) that, once the session starts, sends
    `count` SSH_MSG_IGNORE packets of `size` zero bytes, compressed (a few hundred bytes each on the wire), to a client
    with bkdoctor's compression: (seconds until the connection was dropped or 20 s passed, packets sent)."""
    import asyncio
    import time

    import asyncssh
    from asyncssh.constants import MSG_IGNORE
    from asyncssh.packet import String

    from bkdoctor.transport import ssh

    ssh._bound_decompression()
    sent = [0]

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn):
            self.conn = conn

        def begin_auth(self, username):
            return False  # no authentication: the session starts at once

        def auth_completed(self):
            async def send():
                for _ in range(count):
                    self.conn.send_packet(MSG_IGNORE, String(b"\0" * size))
                    sent[0] += 1
                    await asyncio.sleep(pause)

            asyncio.get_running_loop().create_task(send())

    async def main():
        key = asyncssh.generate_private_key("ssh-ed25519")
        algs = ["zlib@openssh.com", "none"]
        srv = await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[key], compression_algs=algs, **server_opts
        )
        port = srv.sockets[0].getsockname()[1]
        t0 = time.monotonic()
        try:
            async with asyncssh.connect(
                "127.0.0.1", port, known_hosts=None, username="x", config=[], compression_algs=algs
            ) as conn:
                await asyncio.wait_for(conn.wait_closed(), 20)
        except (asyncssh.Error, OSError):
            pass
        finally:
            srv.close()
        return time.monotonic() - t0

    return asyncio.run(main()), sent[0]


def test_a_compression_bomb_from_the_server_drops_that_connection():
    """Packets that inflate to 200 MB each (20 MB in the session here, to be quick): asyncssh inflated them whole in
    the scan's one event loop; bounded (transport/ssh.py, OpenSSH's 256 KiB a packet), the connection is dropped at
    the first one. Unbounded, it stays up (each packet inflated) until the 20 s wait ends."""
    import zlib

    from asyncssh import compression

    from bkdoctor.transport import ssh

    ssh._bound_decompression()
    d = compression.get_decompressor(b"zlib@openssh.com")
    c = zlib.compressobj(9)
    bomb = c.compress(b"\0" * (200 << 20)) + c.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 256 << 10 and d.decompress(bomb) is None  # asyncssh's own: 200 MB out
    ok = zlib.compressobj()
    assert compression.get_decompressor(b"zlib").decompress(ok.compress(b"x" * 1000) + ok.flush(zlib.Z_SYNC_FLUSH))
    took, _ = _ignore_flood(5, 20 << 20, 0.05)
    assert took < 15, took
    # what the operator reads on that host's error finding
    import asyncssh

    why = ssh._lost_reason(asyncssh.CompressionError("Decompression failed"))
    assert "256 KiB" in why and "512 MiB" in why and "dropped" in why, why


def test_inflation_is_budgeted_per_connection_across_rekeys(monkeypatch):
    """Packets each under the per-packet cap (200 KiB of zeros; SSH_MSG_IGNORE: no channel's output, so no output
    bound sees them), and the server re-keys every few packets (a new decompressor each time): the connection's
    inflation budget (MAX_INFLATED_CONNECTION, 4 MiB here) still runs out, and the connection is dropped."""
    from bkdoctor.transport import ssh

    monkeypatch.setattr(ssh, "MAX_INFLATED_CONNECTION", 4 << 20)
    took, sent = _ignore_flood(200, 200 << 10, 0.01, rekey_bytes=4096)
    assert took < 15 and sent < 200, (took, sent)  # dropped after ~20 packets (4 MiB), re-keyed on the way
