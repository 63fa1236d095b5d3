"""The registry check of §七.3 over SSH (issue 16): the node's sshd connects, this side sends the GET, no curl on the
node (facts/host.py FORWARDED_GETS, transport.ssh.http_status). The guide's check is curl: on real sshd test hosts,
for every way an ingress can answer or not, the section over SSH says exactly what the probe's own curl says on the
same host; where no connection was made, or sshd does not forward, curl answers in one second probe; where curl might
not connect as the GET does (a proxy, a curlrc, a global IPv6 address, a login that is not the host's own sshd),
curl answers in the probe itself."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest
import yaml

from bkdoctor.facts.host import HostFacts, p_resolved
from bkdoctor.facts.probe import Section, build_script, parse_output
from bkdoctor.inputs.inventory import load_inventory
from bkdoctor.model import FactUnavailable
from bkdoctor.scan import engine
from bkdoctor.transport.base import HTTPStatus, NotForwarded, TransportError
from bkdoctor.transport.ssh import final_status

pytestmark = [pytest.mark.ssh]

# domain -> the address docker.<domain> has in the host's /etc/hosts (None: no line, and DNS fails at once), and what
# answers there
CASES = {
    "ok.test": "10.96.45.12",  # a real Distribution server asking for auth: 401 (fixtures' answers-401)
    "refused.test": "10.96.45.13",  # an address of the host with nothing listening (ingress-nginx down)
    "closes.test": "10.96.45.14",  # reads the request, closes: curl's "Empty reply from server"
    "junk.test": "10.96.45.15",  # not HTTP at all
    "silent.test": "10.96.45.16",  # accepts, never answers: --max-time
    "dropped.test": "10.96.45.17",  # the SYN dropped (iptables): --max-time before a connection
    "moved.test": "10.96.45.18",  # a redirect, not followed (no -L in the guide's command)
    "old.test": "10.96.45.19",  # HTTP/1.0, no Content-Length, body to the close
    "cut.test": "10.96.45.21",  # "HTTP/1.1 401" and the connection closes before the line ends
    "continue.test": "10.96.45.22",  # "100 Continue" first, then 401
    "contclose.test": "10.96.45.24",  # "100 Continue", then the connection closes
    "tab.test": "10.96.45.25",  # "HTTP/1.1 401<TAB>Unauthorized": curl takes the code
    "none.test": None,  # docker.<domain> does not resolve (§七.2 not done)
}
# answered without curl: a connection was made for the GET, or the name has no address. The others go to curl in a
# second probe
OVER_SSH = {
    "ok.test",
    "closes.test",
    "junk.test",
    "silent.test",
    "moved.test",
    "old.test",
    "cut.test",
    "continue.test",
    "contclose.test",
    "tab.test",
    "none.test",  # getent found no address: curl's exit 6, no second probe
}

# the stand-ins for broken ingresses: real TCP servers in the host, one thread per address
_SERVERS = r"""
import socket, sys, threading, time
REPLIES = {
    "junk": b"SSH-2.0-OpenSSH_7.4\r\n",
    "moved": b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://elsewhere/v2/\r\nContent-Length: 0\r\n\r\n",
    "old": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n",
    "cut": b"HTTP/1.1 401",
    "continue": b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    "contclose": b"HTTP/1.1 100 Continue\r\n\r\n",
    "tab": b"HTTP/1.1 401\tUnauthorized\r\nContent-Length: 0\r\n\r\n",
    "proxy": b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
}
def serve(addr, port, mode):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, port)); s.listen(64)
    held = []
    while True:
        c, _ = s.accept()
        if mode == "silent":
            held.append(c); continue
        req = c.recv(65536)
        if mode == "ua":  # the registry's 401, and who asked (User-Agent) in /run/ua.log
            with open("/run/ua.log", "ab") as f:
                f.write(b"".join(l + b"\n" for l in req.split(b"\r\n") if l.lower().startswith(b"user-agent:")))
            c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        if mode == "closes":
            c.close(); continue
        if mode == "continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            time.sleep(0.05)
        c.sendall(REPLIES.get(mode, b""))
        c.close()
for spec in sys.argv[1:]:
    a, m = spec.split("=")
    a, _, p = a.partition(":")
    threading.Thread(target=serve, args=(a, int(p or 80), m), daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


PROXY = "10.96.45.20"  # a proxy that answers every request 502 (port 3128)
UA = "10.96.45.23"  # docker.ua.test: a registry's 401 that logs the User-Agent (curl's or bkdoctor's)


def _make_host(ssh_fleet, tmp_path, sshd_extra=(), files=None, overlays=None, login_env=""):
    """One sshd test host whose /etc/hosts gives each case's docker.<domain>, with its ingress stand-ins, a proxy
    and docker.ua.test. Its sshd logs every exec request (ForceCommand), so that a test sees how many probes a scan
    sent."""
    log = tmp_path / "execs.log"
    wrapper = tmp_path / "count-exec"
    wrapper.write_text(
        f'#!/bin/sh\necho "$SSH_ORIGINAL_COMMAND" >> {log}\n{login_env}exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    wrapper.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    lines = ["127.0.0.1 localhost", f"{UA} docker.ua.test"] + [f"{a} docker.{d}" for d, a in CASES.items() if a]
    fleet = ssh_fleet(
        1,
        files={
            "/etc/hosts": "\n".join(lines) + "\n",
            "/etc/resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
            "/etc/docker/registry/ingress.yml": "version: 0.1\nlog: {level: error}\n"
            "storage: {filesystem: {rootdirectory: /run/registry-data}}\nhttp: {addr: '10.96.45.12:80'}\n"
            "auth: {silly: {realm: 'http://bkrepo.ok.test/token', service: docker}}\n",
            **(files or {}),
        },
        **({"overlays": overlays} if overlays else {}),
        sshd={"extra_config": [f"ForceCommand {wrapper}", *sshd_extra]},
    )
    h = fleet.hosts[0]
    addrs = [a for a in CASES.values() if a] + [PROXY, UA]
    h.run("ip link set lo up; " + "; ".join(f"ip addr add {a}/32 dev lo" for a in addrs))
    h.run("iptables -A OUTPUT -p tcp -d 10.96.45.17 -j DROP")
    h.spawn(["docker-registry", "serve", "/etc/docker/registry/ingress.yml"], name="registry")
    modes = [
        f"{CASES[f'{m}.test']}={m}"
        for m in ("closes", "junk", "silent", "moved", "old", "cut", "continue", "contclose", "tab")
    ]
    h.spawn([sys.executable, "-c", _SERVERS, *modes, f"{PROXY}:3128=proxy", f"{UA}=ua"], name="ingresses")
    h.run(
        "for i in $(seq 200); do curl -s -o /dev/null http://10.96.45.12/v2/ && "
        f"curl -s -o /dev/null http://10.96.45.18/v2/ && curl -s -o /dev/null http://{PROXY}:3128/ && exit 0; "
        "sleep 0.05; done; exit 1"
    )
    h.run("rm -f /run/ua.log")
    return fleet, h, log


@pytest.fixture
def ingress_host(ssh_fleet, tmp_path):
    return _make_host(ssh_fleet, tmp_path)


def _inventory(tmp_path: Path, fleet, h, domain: str, docker_socket: str | None = None, **ssh) -> object:
    p = tmp_path / f"inv-{domain}.yaml"
    doc = {
        "domain": domain,
        "ssh": {**fleet.ssh_settings(connect_timeout=5), **ssh},
        "hosts": [{"name": "n1", "address": h.address, "roles": ["node"]}],
    }
    p.write_text(yaml.safe_dump({**doc, **({"docker_socket": docker_socket} if docker_socket else {})}))
    return load_inventory(str(p))


async def _scan(inv) -> Section:
    """engine.gather_host of the registry check alone, as a scan sends it."""
    host = inv.hosts[0]
    st = await engine.gather_host(host, inv, {"registry_ingress"}, False, engine.default_transport)
    assert st.reachable, st.error
    assert set(st.facts.sections) == {"registry_ingress"}, sorted(st.facts.sections)  # getent's was asked for it only
    return st.facts.sections["registry_ingress"]


async def _curl(inv) -> Section:
    """The probe's own curl section on the same host, over the same transport."""
    script, nonce = build_script({"registry_ingress"}, params={"BKD_DOMAIN": inv.domain})
    t = engine.default_transport(inv.hosts[0], inv)
    try:
        res = await t.run_script(script, 30)
    finally:
        await t.close()
    return parse_output(res.stdout, nonce)["registry_ingress"]


def test_over_ssh_the_node_answers_as_its_curl(ingress_host, tmp_path):
    fleet, h, log = ingress_host
    invs = {d: _inventory(tmp_path, fleet, h, d) for d in CASES}

    async def both():
        ssh = await asyncio.gather(*(_scan(i) for i in invs.values()))
        execs.extend(log.read_text().splitlines())
        log.write_text("")
        curl = await asyncio.gather(*(_curl(i) for i in invs.values()))
        return dict(zip(invs, ssh)), dict(zip(invs, curl))

    execs: list[str] = []
    log.write_text("")
    ssh, curl = asyncio.run(both())
    # one probe a case, and a second one each for the cases no connection came for: the equality below is the GET's
    assert execs == ["/bin/sh -s"] * (len(CASES) + len(set(CASES) - OVER_SSH)), execs
    # the expected words themselves, so that a curl that changed its mind fails here, not silently in both
    want = {
        "ok.test": "401 10.96.45.12 0",
        "refused.test": "000  7",
        "closes.test": "000 10.96.45.14 52",
        "junk.test": "000 10.96.45.15 1",
        "silent.test": "000 10.96.45.16 28",
        "dropped.test": "000  28",
        "moved.test": "301 10.96.45.18 0",
        "old.test": "200 10.96.45.19 0",
        "cut.test": "000 10.96.45.21 52",
        "continue.test": "401 10.96.45.22 0",
        "contclose.test": "100 10.96.45.24 52",
        "tab.test": "401 10.96.45.25 0",
        "none.test": "000  6",
    }
    assert {d: c.text().strip() for d, c in curl.items()} == want
    assert {d: (s.rc, s.text().strip()) for d, s in ssh.items()} == {
        d: (c.rc, c.text().strip()) for d, c in curl.items()
    }
    # and the facts and the rule's finding read the same from either
    for d in CASES:
        assert (
            HostFacts({"registry_ingress": ssh[d]}).registry_ingress
            == HostFacts({"registry_ingress": curl[d]}).registry_ingress
        )


def test_no_curl_and_one_probe_where_sshd_forwards(ingress_host, tmp_path):
    fleet, h, log = ingress_host
    inv = _inventory(tmp_path, fleet, h, "ua.test")
    log.write_text("")
    sec = asyncio.run(_scan(inv))
    assert sec.text() == f"401 {UA} 0\n"
    assert log.read_text().splitlines() == ["/bin/sh -s"]  # the probe alone: no second probe
    assert h.read("/run/ua.log") == b"User-Agent: bkdoctor\n"  # bkdoctor's GET, not curl's


@pytest.mark.parametrize("config", ["AllowTcpForwarding no", "DisableForwarding yes", "PermitOpen 10.1.2.3:80"])
def test_where_sshd_does_not_forward_curl_answers_in_one_more_probe(ssh_fleet, tmp_path, config):
    fleet, h, log = _make_host(ssh_fleet, tmp_path, sshd_extra=[config])
    inv = _inventory(tmp_path, fleet, h, "ua.test")
    log.write_text("")
    sec = asyncio.run(_scan(inv))
    assert sec.text() == f"401 {UA} 0\n"
    assert log.read_text().splitlines() == ["/bin/sh -s", "/bin/sh -s"]
    assert h.read("/run/ua.log").decode().startswith("User-Agent: curl/"), h.read("/run/ua.log")  # curl asked


CURLRC = f'proxy = "http://{PROXY}:3128"\n'


@pytest.mark.parametrize(
    "how",
    [
        "proxy in the environment",
        "all_proxy in the environment",
        "~/.curlrc",
        "~/.config/curlrc",
        "$XDG_CONFIG_HOME/.curlrc",
        "ALL_PROXY in the environment",
        "CURL_HOME's curlrc",
        "a login's own HOME's curlrc",
        "root's curlrc under another HOME",
        "a global IPv6 address",
        "a login relayed from elsewhere",
        "forward_tcp: false",
    ],
)
def test_curl_answers_in_the_probe_where_it_might_not_connect_as_the_get(ssh_fleet, tmp_path, how):
    """A proxy curl reads (here from sshd's SetEnv; on CentOS from /etc/profile.d through root's ~/.bashrc), a curl
    config file: curl's answer is what the proxy makes of it, in the probe itself (one probe). A global IPv6 address
    (curl may take an AAAA record), a session whose SSH_CONNECTION shows another server address (a gateway's
    ForceCommand `ssh node`: here the test's own ForceCommand sets it), `ssh.forward_tcp: false`: curl too."""
    kw: dict = {}
    if how == "proxy in the environment":
        kw["sshd_extra"] = [f"SetEnv http_proxy=http://{PROXY}:3128"]
    elif how == "all_proxy in the environment":
        kw["sshd_extra"] = [f"SetEnv all_proxy=http://{PROXY}:3128"]
    elif how == "~/.curlrc":
        kw.update(files={"/root/.curlrc": CURLRC}, overlays=["/etc", "/root"])
    elif how == "~/.config/curlrc":
        kw.update(files={"/root/.config/curlrc": CURLRC}, overlays=["/etc", "/root"])
    elif how == "$XDG_CONFIG_HOME/.curlrc":
        kw.update(files={"/etc/xdg-test/.curlrc": CURLRC}, sshd_extra=["SetEnv XDG_CONFIG_HOME=/etc/xdg-test"])
    elif how == "ALL_PROXY in the environment":
        kw["sshd_extra"] = [f"SetEnv ALL_PROXY=http://{PROXY}:3128"]
    elif how == "CURL_HOME's curlrc":
        kw.update(files={"/etc/test-home/.curlrc": CURLRC}, login_env="CURL_HOME=/etc/test-home; export CURL_HOME\n")
    elif how == "a login's own HOME's curlrc":  # not /root: the ${HOME} entry of the test alone
        kw.update(files={"/etc/test-home/.curlrc": CURLRC}, login_env="HOME=/etc/test-home; export HOME\n")
    elif how == "root's curlrc under another HOME":  # sudo keeping the caller's HOME: curl reads passwd's home
        kw.update(
            files={"/root/.curlrc": CURLRC, "/etc/test-home/x": ""},
            overlays=["/etc", "/root"],
            login_env="HOME=/etc/test-home; export HOME\n",
        )
    elif how == "a login relayed from elsewhere":
        kw["login_env"] = "SSH_CONNECTION='198.18.9.9 50000 10.9.9.9 22'; export SSH_CONNECTION\n"
    fleet, h, log = _make_host(ssh_fleet, tmp_path, **kw)
    if how == "a global IPv6 address":
        h.run("ip -6 addr add 2001:db8::5/128 dev lo")
        assert b" 00 " in h.run("cat /proc/net/if_inet6").stdout
    inv = _inventory(tmp_path, fleet, h, "ua.test", **({"forward_tcp": False} if how.startswith("forward") else {}))
    log.write_text("")
    sec = asyncio.run(_scan(inv))
    assert log.read_text().splitlines() == ["/bin/sh -s"]  # one probe
    if "proxy" in how.lower() or "curlrc" in how:
        assert sec.text() == f"502 {PROXY} 0\n"  # the proxy's answer, as the guide's curl would get it
        assert not os.path.exists(h.root + "/run/ua.log")  # nothing asked the registry directly
    else:
        assert sec.text() == f"401 {UA} 0\n"
        assert h.read("/run/ua.log").decode().startswith("User-Agent: curl/")  # curl asked, not bkdoctor


class _Fake:
    """A transport that forwards, for answer_forwarded's own decisions (no network)."""

    forwards_tcp = True

    def __init__(self, outcome="401") -> None:
        self.calls: list[tuple] = []
        self.outcome = outcome

    async def http_status(self, address, port, host, path, timeout):
        self.calls.append((address, port, host, path, timeout))
        if self.outcome == "refused":
            raise NotForwarded("administratively prohibited")
        if self.outcome == "lost":
            raise TransportError("SSH connection lost")
        if self.outcome == "no-connection":
            return None
        return HTTPStatus(401, address, 0)


FWD = Section("registry_ingress", 0, b"forward\n")


@pytest.mark.parametrize(
    "getent, outcome, answer, again, called",
    [
        (b"docker.a.b 10.0.0.9\n", "401", b"401 10.0.0.9 0\n", set(), True),
        (b"DOCKER.A.B 10.0.0.9\n", "401", b"401 10.0.0.9 0\n", set(), True),  # getent's canonical case
        (b"docker.a.b 10.0.0.9\n", "no-connection", None, {"registry_ingress"}, True),  # curl tries: other addresses
        (b"docker.a.b 10.0.0.9\n", "refused", None, {"registry_ingress"}, True),  # sshd does not forward
        (b"docker.a.b 10.0.0.9\n", "lost", "absent", set(), True),  # the SSH connection is gone: no answer at all
        (b"docker.a.b\n", "401", b"000  6\n", set(), False),  # no address: curl's "Could not resolve host"
        (b"docker.a.b fd00::9\n", "401", None, {"registry_ingress"}, False),  # IPv6: curl
        (b"docker.a.b 10.0.0.9;id\n", "401", None, {"registry_ingress"}, False),  # not an address
        (b"docker.a.b -oProxyCommand=x\n", "401", None, {"registry_ingress"}, False),
        (b"other.a.b 10.0.0.9\n", "401", None, {"registry_ingress"}, False),  # the name not answered (cut off)
        (None, "401", None, {"registry_ingress"}, False),  # no getent section at all
    ],
)
def test_answer_forwarded_decides(getent, outcome, answer, again, called):
    parsed = {"registry_ingress": FWD}
    if getent is not None:
        parsed["getent_hosts"] = Section("getent_hosts", 0, getent)
    t = _Fake(outcome)
    got, left = asyncio.run(engine.answer_forwarded(t, {"registry_ingress": "docker.a.b"}, parsed))
    assert left == again
    if answer == "absent":
        assert got == {"registry_ingress": None}
    else:
        assert (got["registry_ingress"].out if got else None) == answer
    assert bool(t.calls) == called
    if called:
        assert t.calls == [("10.0.0.9", 80, "docker.a.b", "/v2/", 5)]


@pytest.mark.parametrize(
    "section",
    [
        Section("registry_ingress", 0, b"502 10.96.45.20 0\n"),  # curl ran in the probe (a proxy): its answer stands
        Section("registry_ingress", 127, b""),  # no curl on the host: skip, as before
        Section("registry_ingress", 4, b""),  # no BK_DOMAIN
        None,  # cut off: the fact's error, not a GET
    ],
)
def test_a_section_that_did_not_print_forward_is_left_alone(section):
    parsed = {"getent_hosts": Section("getent_hosts", 0, b"docker.a.b 10.0.0.9\n")}
    if section is not None:
        parsed["registry_ingress"] = section
    t = _Fake()
    got, left = asyncio.run(engine.answer_forwarded(t, {"registry_ingress": "docker.a.b"}, parsed))
    assert (got, left, t.calls) == ({}, set(), [])


def test_no_getent_command_goes_to_curl():
    parsed = {"registry_ingress": FWD, "getent_hosts": Section("getent_hosts", 127, b"")}
    got, left = asyncio.run(engine.answer_forwarded(_Fake(), {"registry_ingress": "docker.a.b"}, parsed))
    assert (got, left) == ({}, {"registry_ingress"})


def test_which_sections_are_forwarded():
    params = {"BKD_DOMAIN": "a.b", "BKD_HOSTS_NAMES": "a.b docker.a.b bkrepo.a.b"}
    fwd = engine.forwarded({"registry_ingress", "swap"}, params, True)
    assert fwd == {"registry_ingress": "docker.a.b"}
    assert engine.forward_params(fwd) == {"BKD_INGRESS_FWD": "1"}
    assert engine.probe_sections({"registry_ingress", "swap"}, params, True) == {
        "getent_hosts",
        "registry_ingress",
        "swap",
    }
    assert engine.forwarded({"registry_ingress"}, params, False) == {}  # local, in-cluster, forward_tcp: false
    # a name the probe does not resolve anyway (a site's own hosts_names without docker): curl, as before
    assert engine.forwarded({"registry_ingress"}, {**params, "BKD_HOSTS_NAMES": "a.b"}, True) == {}
    assert engine.forwarded({"registry_ingress"}, {**params, "BKD_DOMAIN": ""}, True) == {}
    # a domain that is not a DNS name (--domain and custom.yaml's bkDomain are not the inventory's schema) never
    # reaches the GET's Host header: curl, with the value quoted, as before
    for bad in ("a.b/x", "a.b@c", "a.b:80", "a..b", "-a.b", "a.b\rX: y", "a.b%0d"):
        p = {"BKD_DOMAIN": bad, "BKD_HOSTS_NAMES": f"docker.{bad}"}
        assert engine.forwarded({"registry_ingress"}, p, True) == {}, bad
    assert p_resolved(HostFacts({"getent_hosts": Section("getent_hosts", 0, b"docker.a.b 1.2.3.4\n")})) == {
        "docker.a.b": "1.2.3.4"
    }


@pytest.mark.parametrize(
    "buf, want",
    [
        (b"", (None, True, None)),
        (b"HT", (None, True, None)),
        (b"HTTP/1.1 401", (None, True, None)),  # not a whole line yet
        (b"HTTP/1.1 401\r\n", (401, False, None)),
        (b"HTTP/1.1 401 Unauthorized\r\n", (401, False, None)),
        (b"HTTP/1.0 200 OK\n", (200, False, None)),
        # as curl 7.88 reads them (its sscanf): blanks before the code, anything but a digit after it
        (b"HTTP/1.1 401\tUnauthorized\r\n", (401, False, None)),
        (b"HTTP/1.1  401 x\r\n", (401, False, None)),
        (b"HTTP/1.1 401x\r\n", (401, False, None)),
        (b"HTTP/1.1 100 Continue\r\n", (None, True, 100)),
        (b"HTTP/1.1 100 Continue\r\n\r\n", (None, True, 100)),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 U\r\n", (401, False, 100)),
        (b"HTTP/1.1 103 Early\r\nLink: </x>\r\n\r\nHTTP/1.1 100 C\r\n\r\nHTTP/1.1 404 N\r\n", (404, False, 100)),
        (b"SSH-2.0-OpenSSH_7.4\r\n", (None, False, None)),
        (b"hello", (None, False, None)),
        (b"HTTP/2 200\r\n", (None, False, None)),
        (b"HTTP/1.10 401 x\r\n", (None, False, None)),
        (b"HTTP/1.1 4011 x\r\n", (None, False, None)),
        (b"HTTP/1.1 40\r\n", (None, False, None)),
        (b"HTTP/1.1 100 C\r\n\r\n" * 8 + b"HTTP/1.1 401 U\r\n", (401, False, 100)),
        # more interim responses than a registry sends: not HTTP (the parse of a trickle stays bounded)
        (b"HTTP/1.1 100 C\r\n\r\n" * 9 + b"HTTP/1.1 401 U\r\n", (None, False, 100)),
    ],
)
def test_final_status(buf, want):
    assert final_status(buf) == want


def test_one_second_probe_for_both_the_docker_cli_and_curl(ssh_fleet, tmp_path):
    """sshd forwards nothing (DisableForwarding): the Docker API's stream-local channel fails as the GET's does; the
    Docker CLI and curl answer in ONE second probe, not one each."""
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this machine (the test host shares its /usr/bin)")
    fleet, h, log = _make_host(ssh_fleet, tmp_path, sshd_extra=["DisableForwarding yes"])
    sock = tmp_path / "docker.sock"  # a socket nothing answers on: the API fails, the CLI is asked
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))
    inv = _inventory(tmp_path, fleet, h, "refused.test", docker_socket=str(sock))  # nothing listens: curl exits 7
    log.write_text("")
    st = asyncio.run(
        engine.gather_host(inv.hosts[0], inv, {"registry_ingress", "docker_bins"}, True, engine.default_transport)
    )
    assert st.reachable, st.error
    assert st.facts.docker_api is None and "stream-local" in (st.facts.docker_api_error or "")
    assert st.facts.sections["registry_ingress"].text() == "000  7\n"
    assert {"docker_cli_info", "docker_client"} <= set(st.facts.sections)
    assert log.read_text().splitlines() == ["/bin/sh -s", "/bin/sh -s"]


def test_a_lost_connection_is_no_answer_not_a_registry_failure(ingress_host, tmp_path):
    """The SSH connection gone before the GET (sshd restarted, a jump host dropped): no section, so the rule's fact
    is an error, never curl's exit 7 ("no answer: check the ingress-nginx Service") about a registry that is fine."""
    fleet, h, _ = ingress_host
    inv = _inventory(tmp_path, fleet, h, "ua.test")

    async def go():
        t = engine.default_transport(inv.hosts[0], inv)
        try:
            assert await t.http_status(UA, 80, "docker.ua.test", "/v2/", 5) == HTTPStatus(401, UA, 0)
            conn = await t._connection()
            conn.close()
            await conn.wait_closed()
            with pytest.raises(TransportError) as e:
                await t.http_status(UA, 80, "docker.ua.test", "/v2/", 5)
            assert not isinstance(e.value, NotForwarded)
        finally:
            await t.close()

    asyncio.run(go())
    # and answer_forwarded leaves the section out for it (test_answer_forwarded_decides: "lost")


class _ProbeOnce(_Fake):
    """A forwarding transport whose first probe answers (the registry section prints FORWARD, getent an address) and
    whose second one fails, for gather_host's own handling of it."""

    def __init__(self, outcome: str = "no-connection", sections=None) -> None:
        super().__init__(outcome)
        self.scripts: list[str] = []
        self.sections = sections or (
            ("getent_hosts", "docker.ok.test 10.0.0.9"),
            ("registry_ingress", "forward"),
            ("proc_swaps", "Filename"),
        )

    async def server_address(self) -> str:
        return "198.18.0.2"

    async def run_script(self, script, timeout, clock=False):
        from bkdoctor.transport.base import CommandResult

        self.scripts.append(script)
        if len(self.scripts) > 1:
            raise TransportError("command timed out after 60s")
        m = re.search(r"@@BKD-([0-9a-f]+):B:", script).group(1)
        out = "".join(f"\n@@BKD-{m}:B:{n}\n{body}\n@@BKD-{m}:E:{n}:0\n" for n, body in self.sections)
        return CommandResult(0, out.encode(), b"")

    async def close(self) -> None:
        return None


def test_a_failed_second_probe_loses_only_its_sections(tmp_path):
    """The main probe's facts stand when the second probe (curl, after no connection came for the GET) fails."""
    inv = _one_host_inventory(tmp_path)
    t = _ProbeOnce()
    st = asyncio.run(engine.gather_host(inv.hosts[0], inv, {"registry_ingress", "proc_swaps"}, False, lambda h, i: t))
    assert st.reachable, st.error
    assert len(t.scripts) == 2 and "BKD_INGRESS_FWD=1" in t.scripts[0] and "BKD_INGRESS_FWD=''" in t.scripts[1]
    assert "BKD_SSH_SERVER=198.18.0.2" in t.scripts[0]
    assert t.calls == [("10.0.0.9", 80, "docker.ok.test", "/v2/", 5)]
    assert "registry_ingress" not in st.facts.sections and "getent_hosts" not in st.facts.sections
    assert st.facts.sections["proc_swaps"].text() == "Filename"


def _one_host_inventory(tmp_path):
    p = tmp_path / "inv.yaml"
    p.write_text(
        yaml.safe_dump({"domain": "ok.test", "hosts": [{"name": "n1", "address": "198.18.0.2", "roles": ["node"]}]})
    )
    return load_inventory(str(p))


def test_a_lost_connection_leaves_the_section_out_of_the_scan(tmp_path):
    """Through gather_host: the GET's TransportError (the SSH connection gone) leaves no section, so the rule's fact
    is an error; no second probe is tried on a dead connection; the rest of the probe stands."""
    inv = _one_host_inventory(tmp_path)
    t = _ProbeOnce("lost")
    st = asyncio.run(engine.gather_host(inv.hosts[0], inv, {"registry_ingress", "proc_swaps"}, False, lambda h, i: t))
    assert st.reachable, st.error
    assert len(t.scripts) == 1
    assert "registry_ingress" not in st.facts.sections
    with pytest.raises(FactUnavailable):
        st.facts.registry_ingress
    assert st.facts.sections["proc_swaps"].text() == "Filename"


def test_a_probe_with_only_the_added_resolver_is_no_output(tmp_path):
    """getent_hosts added for the forwarded name only is not an answer of the probe's own: a probe that gave nothing
    else is 'no output' (the host's error), as before the change."""
    inv = _one_host_inventory(tmp_path)
    t = _ProbeOnce(sections=(("getent_hosts", "docker.ok.test 10.0.0.9"),))
    st = asyncio.run(engine.gather_host(inv.hosts[0], inv, {"registry_ingress"}, False, lambda h, i: t))
    assert not st.reachable and "no output" in (st.error or ""), st


def test_a_forward_line_never_reads_as_an_answer():
    f = HostFacts({"registry_ingress": Section("registry_ingress", 0, b"forward\n")})
    with pytest.raises(FactUnavailable):
        f.registry_ingress


@pytest.mark.parametrize(
    "doc",
    [
        {"ssh": {"forward_tcp": "no"}},  # a string, not YAML's false
        {"ssh": {"forward_tcp": 1}},
        {"hosts_ssh": {"forward_tcp": None}},
    ],
)
def test_a_forward_tcp_that_is_not_a_boolean_is_refused(tmp_path, doc):
    """`ssh.forward_tcp` (inventory or host): anything but true/false is exit 2 with one line naming it, and no
    report is written."""
    import subprocess
    import sys as _sys

    host = {"name": "n1", "address": "192.0.2.1", "roles": ["node"]}
    if "hosts_ssh" in doc:
        host["ssh"] = doc.pop("hosts_ssh")
    inv = tmp_path / "hosts.yaml"
    inv.write_text(yaml.safe_dump({"domain": "bk.example.com", **doc, "hosts": [host]}))
    out = tmp_path / "report.json"
    r = subprocess.run(
        [_sys.executable, "-m", "bkdoctor.cli", "scan", "-i", str(inv), "--json", str(out), "--no-history"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "forward_tcp" in lines[0] and "boolean" in lines[0], r.stderr
    assert not out.exists()
