#!/usr/bin/env python3
"""Benchmark: `bkdoctor scan` of a fleet over SSH, against the floor and against the other ways to do it.

Starts N real sshd test hosts (network namespaces on a bridge, tests/testbed) in the base CentOS state of
fixtures/hosts/centos79.yaml (its /etc files, 20 localpv bind mounts, a stand-in kubelet binary), with their own
name in /etc/hosts and a resolver that fails at once; a stand-in Docker Engine API on one unix socket in the
shared /tmp answers for every host, so each looks like a node with dockerd up. Then, for each N, side by side:

  scan       `bkdoctor scan -i inv.yaml --no-history --no-cluster --json <tmp>` (default rules, no
             measurements), a subprocess: wall time, its CPU (user+sys, wait4 of that child) and peak RSS
             (its cache in the bench's work dir: the first scan of a host runs kubelet, the repeats do not)
  engine     `engine.scan` of the same inventory in this process (no interpreter start, no report)
  floor      in-process asyncssh: connect to every host, run `true`, close; same concurrency (32)
  probe      the same, but running bkdoctor's probe script (`sh -s`) instead of `true`: raw, no parsing
  ansible5   `ansible all -i hosts.ini -m setup -f 5`  (ansible-core from PyPI, in a venv of its own)
  ansible50  the same with -f 50
  loop       a sequential loop, one OpenSSH `ssh host '<the guide's verification commands>'` per host

`host CPU` is the CPU spent on the hosts (sshd, the shell, every command), read from each sshd listener's
cutime/cstime. The hosts run on this same machine, so their CPU is part of every wall time here; on a real
fleet it is spread over the hosts. Host bring-up is not measured (printed apart).
Writes bench/out/fleet-<timestamp>.json.

Usage: python3 bench/fleet.py [--hosts 10,50,100] [--repeat 3] [--ansible-repeat 1] [--loop-repeat 1]
                              [--skip-ansible-above N] [--no-ansible] [--keep-resolv]      (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from benchutil import run_child  # noqa: E402
from scan_local import NAIVE  # noqa: E402  (the guide's verification commands, one after another)

VENV = Path(os.environ.get("BKDOCTOR_BENCH_VENV", "/var/cache/bkdoctor/bench-venv"))
CONCURRENCY = 32
# issue 16's goals
GOALS = {
    "scan_over_floor": 1.5,
    "speedup_vs_ansible": 15.0,
    "cpu_ms_per_host": 15.0,
    "host_cpu_ms": 40.0,
    "host_forks": 15,
    "peak_rss_mb_300": 150,
}
KUBELET = "#!/bin/sh\necho 'Kubernetes v1.20.11'\nexit 0\n"  # the cost host pads it past 1 MiB (below)


def med(xs):
    return statistics.median(xs) if xs else None


# ----------------------------------------------------------------------------- stand-in dockerd

DOCKER_VERSION = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Version": "19.03.9",
    "ApiVersion": "1.40",
    "MinAPIVersion": "1.12",
    "GitCommit": "9d988398e7",
    "GoVersion": "go1.13.10",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "3.10.0-1160.el7.x86_64",
    "BuildTime": "2020-05-15T00:24:05.000000000+00:00",
    "Components": [
        {"Name": "Engine", "Version": "19.03.9", "Details": {"ApiVersion": "1.40"}},
        {"Name": "containerd", "Version": "1.2.13"},
        {"Name": "runc", "Version": "1.0.0-rc10"},
    ],
}


def docker_info() -> dict:
    """A `docker info` of a BlueKing node as bcs.sh leaves it (daemon.json of the base state is live)."""
    return {
        "ID": "XQ2T:ZK3L:7P4B:QW7E:M7VQ:SVKX:3Z4C:6ROC:JQ5N:3PXF:2N5R:HLQ3",
        "Containers": 38,
        "ContainersRunning": 31,
        "ContainersPaused": 0,
        "ContainersStopped": 7,
        "Images": 54,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "xfs"], ["Supports d_type", "true"], ["Native Overlay Diff", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
            "Authorization": None,
            "Log": [
                "awslogs",
                "fluentd",
                "gcplogs",
                "gelf",
                "journald",
                "json-file",
                "local",
                "logentries",
                "splunk",
                "syslog",
            ],
        },
        "MemoryLimit": True,
        "SwapLimit": True,
        "KernelMemory": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": True,
        "BridgeNfIp6tables": True,
        "Debug": False,
        "NFd": 182,
        "OomKillDisable": True,
        "NGoroutines": 171,
        "SystemTime": "2026-11-26T16:00:00.000000000+08:00",
        "LoggingDriver": "json-file",
        "CgroupDriver": "systemd",
        "NEventsListener": 0,
        "KernelVersion": "3.10.0-1160.el7.x86_64",
        "OperatingSystem": "CentOS Linux 7 (Core)",
        "OSType": "linux",
        "Architecture": "x86_64",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {
                "docker.bkce7.bktencent.com": {
                    "Name": "docker.bkce7.bktencent.com",
                    "Mirrors": [],
                    "Secure": False,
                    "Official": False,
                },
                "docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True},
            },
            "Mirrors": [],
        },
        "NCPU": 16,
        "MemTotal": 67387764736,
        "GenericResources": None,
        "DockerRootDir": "/data/bcs/lib/docker",
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": "node",
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": "19.03.9",
        "ClusterStore": "",
        "ClusterAdvertise": "",
        "Runtimes": {"runc": {"path": "runc"}},
        "DefaultRuntime": "runc",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "docker-init",
        "ContainerdCommit": {
            "ID": "7ad184331fa3e55e52b890ea95e65ba581ae3429",
            "Expected": "7ad184331fa3e55e52b890ea95e65ba581ae3429",
        },
        "RuncCommit": {
            "ID": "dc9208a3303feef5b3839f4323d9beb36df0a9dd",
            "Expected": "dc9208a3303feef5b3839f4323d9beb36df0a9dd",
        },
        "InitCommit": {"ID": "fec3683", "Expected": "fec3683"},
        "SecurityOptions": ["name=seccomp,profile=default"],
        "ProductLicense": "Community Engine",
        "Warnings": None,
    }


def serve_docker(path: str) -> None:
    """A stand-in Docker Engine API (GET/HEAD /_ping, /version, /info, any /vX.Y prefix) on one unix socket,
    until killed. Run in a process of its own (`fleet.py --serve-docker PATH`), so its CPU is nobody's.

    The socket lives in the machine's /tmp, which the test hosts share: bkdoctor reaches it through sshd's
    direct-streamlocal channel of each host (inventory `docker_socket:`), the loop through DOCKER_HOST."""
    version, info = json.dumps(DOCKER_VERSION).encode(), json.dumps(docker_info()).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, body_too: bool) -> None:
            p = self.path.split("?", 1)[0]
            if p.endswith("/_ping"):
                body, ctype = b"OK", "text/plain; charset=utf-8"
            elif p.endswith("/version"):
                body, ctype = version, "application/json"
            elif p.endswith("/info"):
                body, ctype = info, "application/json"
            else:
                body, ctype = b'{"message":"page not found"}', "application/json"
            self.send_response(200 if not body.startswith(b'{"message"') else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Api-Version", "1.40")
            self.send_header("Server", "Docker/19.03.9 (linux)")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body_too:
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            self._answer(True)

        def do_HEAD(self):  # noqa: N802
            self._answer(False)

        def address_string(self):
            return "unix"

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    server = Server(path + ".tmp", Handler)
    os.chmod(path + ".tmp", 0o666)
    os.rename(path + ".tmp", path)  # appears only once it accepts
    server.serve_forever()


def _stop(proc: subprocess.Popen) -> None:
    """Stop a server this bench started (by its Popen, never by name): TERM, then KILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class FakeDockerd:
    """The stand-in Docker API server process (see serve_docker)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-docker", path], stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the stand-in Docker API server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        _stop(self.proc)
        for p in (self.path, self.path + ".tmp"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


class Registry:
    """The site's registry as the hosts reach it (§七.3: `docker.$BK_DOMAIN/v2/` through the ingress, expect 401):
    Debian's Distribution server (`docker-registry`, htpasswd auth with no user: every request 401) on the address
    the base state's /etc/hosts gives `docker.<domain>`, held by the first test bridge (the hosts' default route
    points there; traffic to the bridge's own addresses is local). Without it every probe waits out curl's 5 s on
    an address that answers nothing: a site whose registry is down (`--registry-down`)."""

    def __init__(self, bridge: str, work: Path, domain: str = "bkce7.bktencent.com") -> None:
        import ipaddress
        import urllib.error
        import urllib.request

        hosts = base_state()["files"]["/etc/hosts"]
        text = hosts["content"] if isinstance(hosts, dict) else hosts
        addr = next(ln.split()[0] for ln in text.splitlines() if f"docker.{domain}" in ln.split()[1:])
        self.addr = str(ipaddress.IPv4Address(addr))
        self.bridge, self.proc = bridge, None
        (work / "registry").mkdir(exist_ok=True)
        (work / "registry" / "htpasswd").write_text("")
        cfg = work / "registry" / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog: {level: error}\n"
            f"http: {{addr: '{self.addr}:80'}}\n"
            f"storage: {{filesystem: {{rootdirectory: '{work / 'registry' / 'data'}'}}}}\n"
            f"auth: {{htpasswd: {{realm: bench, path: '{work / 'registry' / 'htpasswd'}'}}}}\n"
        )
        subprocess.run(["ip", "addr", "add", f"{self.addr}/32", "dev", bridge], check=True)
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(work / "registry" / "log", "wb"),
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1)
                code = 200
            except urllib.error.HTTPError as e:
                code = e.code
            except OSError:
                code = None
            if code == 401:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the registry did not answer 401 on {self.addr}:80 (got {code})")
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        subprocess.run(["ip", "addr", "del", f"{self.addr}/32", "dev", self.bridge], capture_output=True)


# ----------------------------------------------------------------------------- hosts


def base_state() -> dict:
    import yaml

    st = yaml.safe_load((ROOT / "fixtures" / "hosts" / "centos79.yaml").read_text())
    files = dict(st.get("files") or {})
    files["/usr/local/bin/kubelet"] = {"content": KUBELET, "mode": 0o755}
    # a CentOS 7.9 node's kernel release (uname -m is read from it, as on a real node) and firewalld installed and
    # disabled, as the guide leaves it (its unit file's links and [Install] are read)
    files["/proc/sys/kernel/osrelease"] = "3.10.0-1160.el7.x86_64\n"
    files["/usr/lib/systemd/system/firewalld.service"] = (ROOT / "fixtures" / "hosts" / "firewalld.service").read_text()
    return {
        "files": files,
        "symlinks": st.get("symlinks") or {},
        "remove": st.get("remove") or [],
        "tmpfs_sizes": st.get("tmpfs_sizes") or {},
        "setup": st.get("setup") or "",
    }


def sh_binds(sh: str) -> dict[str, str]:
    """The hosts' /bin/sh: `bash` (CentOS 7.9's /bin/sh is bash: this machine's bash in its place), `dash` (this
    machine's /bin/sh as it is) or the path of a shell binary (a bash 4.2 built from its source, say). A bind over the
    file /bin/sh resolves to, inside each host's own mount namespace: this machine's /bin/sh is untouched."""
    if sh == "dash":
        return {}
    src = shutil.which("bash") if sh == "bash" else sh
    if not src or not os.path.isfile(src) or not os.access(src, os.X_OK):
        raise SystemExit(f"--sh: no such shell: {sh}")
    return {os.path.realpath("/bin/sh"): os.path.realpath(src)}


def start_fleet(factory, n: int, plain: bool, keep_resolv: bool, sh: str = "bash"):
    """n hosts on one bridge; returns the Fleet. Base CentOS state unless `plain`; `sh`: the hosts' /bin/sh
    (sh_binds).

    Every host's own name is in its /etc/hosts (as on a real node) and, unless `keep_resolv`, its resolver is
    127.0.0.1 where nothing listens: a name lookup fails at once, as with a site DNS that answers NXDOMAIN.
    (The bridge routes nowhere: with the machine's resolv.conf each lookup of an outside name times out.)"""
    from concurrent.futures import ThreadPoolExecutor

    st = base_state() if not plain else {"files": {}, "symlinks": {}, "remove": [], "tmpfs_sizes": {}, "setup": ""}
    files = dict(st["files"])
    if not keep_resolv:
        files["/etc/resolv.conf"] = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
    overlays = ["/etc"] + ([] if plain else ["/usr/local/bin", "/usr/lib/systemd/system"])
    kw = dict(
        shared_host_key=True,
        parallel=2,
        files=files,
        symlinks=st["symlinks"],
        remove=st["remove"],
        overlays=overlays,
        binds=sh_binds(sh),
    )
    if not isinstance(factory, list):
        factory = [factory]
    # one TestNet (a /24 bridge) holds 253 hosts: the 300-host tier spans two, each factory its own bridge
    parts = []
    left = n
    for i, f in enumerate(factory):
        if left <= 0:
            break
        k = min(left, PER_NET)
        if parts:  # the same client key everywhere (one inventory `ssh:`), known_hosts merged below
            from testbed.fixtures import Fleet
            from testbed.network import TestNet

            f.net = TestNet()
            f.fleet = Fleet(
                f.net, f._tmp, parts[0].client_key, parts[0].client_pub, os.path.join(f._tmp, "known_hosts")
            )
        parts.append(f(k, **kw))
        left -= k
    if left > 0:
        raise RuntimeError(f"{n} hosts need {-(-n // PER_NET)} factories")
    fleet = parts[0] if len(parts) == 1 else MultiFleet(parts)
    script = (
        "set -e\n" + "".join(f"mount -o remount,size={s} {d}\n" for d, s in st["tmpfs_sizes"].items()) + st["setup"]
    )
    with ThreadPoolExecutor(max_workers=2) as ex:
        list(ex.map(lambda h: h.run(script + f"\necho '{h.address} {h.name}' >> /etc/hosts\n"), fleet.hosts))
    return fleet


PER_NET = int(os.environ.get("BKDOCTOR_BENCH_PER_NET", "250"))  # hosts per bridge (a smaller value tests the split)


class MultiFleet:
    """Several testbed Fleets (one bridge each) seen as one: one client key, one merged known_hosts."""

    def __init__(self, parts) -> None:
        self.parts = parts
        self.hosts = [h for p in parts for h in p.hosts]
        self.client_key, self.client_pub = parts[0].client_key, parts[0].client_pub
        self.known_hosts = os.path.join(parts[0].workdir, "known_hosts_all")
        with open(self.known_hosts, "w") as out:
            for p in parts:
                out.write(Path(p.known_hosts).read_text())
        os.chmod(self.known_hosts, 0o600)

    def ssh_settings(self, **overrides):
        d = self.parts[0].ssh_settings(**overrides)
        d["known_hosts"] = self.known_hosts
        return d


def write_inventory(path: Path, fleet, hosts, docker_sock: str) -> None:
    import yaml

    data = {
        "domain": "bkce7.bktencent.com",
        "docker_socket": docker_sock,
        "ssh": fleet.ssh_settings(),
        "hosts": [
            {"name": h.name, "address": h.address, "roles": ["master" if i < 3 else "node"]}
            for i, h in enumerate(hosts)
        ],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write_ini(path: Path, fleet, hosts) -> None:
    args = f"-o UserKnownHostsFile={fleet.known_hosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
    lines = (
        ["[bench]"]
        + [f"{h.name} ansible_host={h.address}" for h in hosts]
        + [
            "",
            "[all:vars]",
            "ansible_user=root",
            f"ansible_ssh_private_key_file={fleet.client_key}",
            "ansible_python_interpreter=/usr/bin/python3",
            f"ansible_ssh_common_args='{args}'",
            "",
        ]
    )
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- runners


def bench_scan(inv: Path, out: Path, root: Path = ROOT) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "BKDOCTOR_DEBUG")}
    env["LANG"] = "C.UTF-8"
    # the scans' cache (kubelet's identity and version per host: scan/kubeletcache.py) in the bench's work dir, not
    # root's ~/.cache: the first scan of a host runs kubelet, the repeats (as a site's scan, fix, re-scan) do not
    env["XDG_CACHE_HOME"] = str(out.parent / "xdg-cache")
    # NOT --json /dev/null: bkdoctor writes reports atomically (temp file + rename), which as root would
    # replace the /dev/null device node with a regular file
    r = run_child(
        [
            sys.executable,
            "-m",
            "bkdoctor.cli",
            "scan",
            "-i",
            str(inv),
            "--no-history",
            "--no-cluster",
            "--json",
            str(out),
        ],
        env=env,
        cwd=str(root),
    )
    if r["rc"] not in (0, 1):
        raise RuntimeError(f"bkdoctor scan exited {r['rc']}: {r['stderr']}")
    rep = json.loads(out.read_text())
    hosts = [t for t in rep["targets"] if t["kind"] == "host"]
    r["unreachable"] = [t["name"] for t in hosts if not t["reachable"]]
    r["findings"] = len(rep["findings"])
    r["statuses"] = {}
    for f in rep["findings"]:
        r["statuses"][f["status"]] = r["statuses"].get(f["status"], 0) + 1
    r.pop("stderr")
    return r


def _probe_script(inv) -> dict[str, str]:
    """The probe bkdoctor sends to each host (role `node`, the default rules), by address (for the probe floor)."""
    from bkdoctor.facts.host import sections_for
    from bkdoctor.facts.probe import build_script
    from bkdoctor.scan import engine, loader

    rules = [r for r in loader.select(None, None) if r.scope in ("host", "fleet")]
    out = {}
    for h in inv.hosts:
        params = engine.probe_params(inv, h)
        wanted = sections_for({f for r in rules for f in r.facts})
        # as over SSH: the registry section prints `forward` (the host's sshd connects the GET, bench_floor sends
        # it), the probe resolves the name; the server address is the host's own (SSH_CONNECTION)
        fwd = engine.forwarded(wanted, params, True)
        params.update(engine.forward_params(fwd), BKD_SSH_SERVER=h.address)
        out[h.address], _ = build_script(engine.probe_sections(wanted, params, True), params=params)
    return out


def bench_floor(fleet, hosts, script: dict[str, str] | None = None, registry: str | None = None) -> dict:
    """In-process asyncssh, same concurrency: connect, run one command (`true`, or `sh -s` with the probe
    on stdin when `script` is given, then the GET of docker.<domain>/v2/ from the host's sshd at `registry`, as the
    scan does), close. No parsing, no rules, no report."""
    import asyncssh

    from bkdoctor.transport.base import READ_AHEAD

    async def go():
        kh = asyncssh.import_known_hosts(Path(fleet.known_hosts).read_text())
        key = asyncssh.read_private_key(fleet.client_key)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(addr):
            async with sem:
                async with asyncssh.connect(
                    addr,
                    username="root",
                    known_hosts=kh,
                    client_keys=[key],
                    agent_path=None,
                    config=[],
                    connect_timeout=10,
                ) as c:
                    if script is None:
                        await c.run("true", check=True)
                    else:
                        # as the transport sends it (bash reads the rest in blocks)
                        data = (READ_AHEAD + script[addr]).encode()
                        r = await c.run("/bin/sh -s", input=data, encoding=None)
                        if not r.stdout:
                            raise RuntimeError("the probe gave no output")
                        if registry:
                            rd, wr = await c.open_connection(registry, 80)
                            wr.write(
                                b"GET /v2/ HTTP/1.1\r\nHost: docker.bkce7.bktencent.com\r\nConnection: close\r\n\r\n"
                            )
                            reply = b""
                            while b"\n" not in reply and len(reply) < 8192:
                                chunk = await rd.read(8192)
                                if not chunk:
                                    break
                                reply += chunk
                            if not reply.startswith(b"HTTP/1.1 401"):
                                raise RuntimeError(f"the registry did not answer 401: {reply[:80]!r}")
                            wr.close()

        return await asyncio.gather(*(one(h.address) for h in hosts), return_exceptions=True)

    c0, t0 = time.process_time(), time.perf_counter()
    res = asyncio.run(go())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    errs = [repr(e) for e in res if isinstance(e, BaseException)]
    if errs:
        raise RuntimeError(f"floor: {len(errs)} host(s) failed: {errs[:3]}")
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mb": None, "rc": 0}


def bench_engine(inv_path: Path) -> dict:
    """`engine.scan` in this process (default rules, no report): the scan without interpreter start."""
    from bkdoctor.inputs.inventory import load_inventory
    from bkdoctor.scan import engine, loader

    inv, rules = load_inventory(str(inv_path)), loader.select(None, None)
    c0, t0 = time.process_time(), time.perf_counter()
    res = asyncio.run(engine.scan(inv, rules))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    bad = [t.name for t in res.targets if t.kind == "host" and not t.reachable]
    if bad:
        raise RuntimeError(f"engine.scan could not reach {bad}")
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mb": None, "rc": 0}


class CgroupCPU:
    """The CPU of one host's sshd and everything it starts, in nanoseconds: its sshd listener moved into a cgroup v1
    cpuacct group of its own (its children are born there), read from cpuacct.usage. cutime counts 10 ms ticks, too
    coarse for a few milliseconds a probe. None where this machine has no writable cpuacct hierarchy."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, pid: int, path: Path) -> None:
        self.pid, self.path = pid, path

    @classmethod
    def start(cls, host) -> CgroupCPU | None:
        if not (cls.ROOT / "cpuacct.usage").is_file():
            return None
        pid = host.daemon_pid("sshd")
        path = cls.ROOT / f"bkdoctor-bench-{os.getpid()}-{pid}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "cgroup.procs").write_text(f"{pid}\n")
        except OSError:
            path.rmdir()
            return None
        return cls(pid, path)

    def total(self) -> float:
        """Seconds of CPU so far (the listener's connections ended: HostCPU's settle has run)."""
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        """The listener back in the root group (if it still runs), this group removed once it is empty."""
        try:
            (self.ROOT / "cgroup.procs").write_text(f"{self.pid}\n")
        except OSError:
            pass  # it ended: the group empties with it
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class HostCPU:
    """CPU used on the test hosts: every connection's sshd, the shells and commands it ran. Each sshd listener
    reaps its per-connection children, so its cutime+cstime (/proc/PID/stat) grows by exactly that."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, hosts) -> None:
        self.pids = [h.daemon_pid("sshd") for h in hosts]

    def _settle(self, timeout: float = 5.0) -> None:
        from testbed.hostns import proc_children

        deadline = time.monotonic() + timeout
        while any(proc_children(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def total(self) -> float:
        self._settle()
        t = 0
        for p in self.pids:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            t += int(f[13]) + int(f[14])  # cutime, cstime (fields 16, 17)
        return t / self.TICK


def host_forks(host, fn) -> dict:
    """Processes created on one host while `fn` runs: strace -f on the host's sshd listener follows every
    connection's sshd, the shells and every command; each successful fork/vfork/clone (not a thread) counts."""
    import re

    out = Path(tempfile.mkdtemp(prefix="bkd-forks-")) / "trace"
    pid = host.daemon_pid("sshd")
    st = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", str(out), "-e", "trace=fork,vfork,clone,clone3", "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not out.exists() and time.monotonic() < deadline:  # attached
            time.sleep(0.05)
        time.sleep(0.2)
        fn()
        time.sleep(0.5)  # the last children exit
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
    forks, pending = 0, {}
    for line in out.read_text(errors="replace").splitlines():
        # a call another process interrupts is split in two lines: "PID clone(... <unfinished ...>" and
        # "PID <... clone resumed>...) = CHILD" (the first version of this count missed those)
        if m := re.match(r"(\d+)\s+(?:fork|vfork|clone3?)\((.*)<unfinished \.\.\.>", line):
            pending[m.group(1)] = m.group(2)
            continue
        if m := re.match(r"(\d+)\s+(?:fork|vfork|clone3?)\((.*)\)\s*=\s*(\d+)", line):
            args, child = m.group(2), m.group(3)
        elif m := re.match(r"(\d+)\s+<\.\.\. (?:fork|vfork|clone3?) resumed>(.*)\)\s*=\s*(\d+)", line):
            args, child = pending.pop(m.group(1), "") + m.group(2), m.group(3)
        else:
            continue
        if int(child) > 0 and "CLONE_THREAD" not in args:
            forks += 1
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"forks": forks}


def _exit_masters(cp_dir: Path) -> None:
    """Stop the ControlPersist masters that ansible's ssh left in our own control-path dir."""
    if not cp_dir.is_dir():
        return
    for sock in cp_dir.iterdir():
        subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
            capture_output=True,
            timeout=10,
        )
    # any master that did not answer: only processes whose command line names our unique dir
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if str(cp_dir).encode() in cmd and cmd.startswith(b"ssh"):
            try:
                os.kill(int(d), signal.SIGTERM)
            except ProcessLookupError:
                pass
    shutil.rmtree(cp_dir, ignore_errors=True)


def bench_ansible(ini: Path, forks: int, work: Path, n: int) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="ans-", dir=work))
    cp_dir = run_dir / "cp"
    cp_dir.mkdir()
    cfg = run_dir / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(cfg),
            "ANSIBLE_HOST_KEY_CHECKING": "True",  # our known_hosts, strict
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir),
            "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{VENV / 'bin'}:{env.get('PATH', '')}",
        }
    )
    env.pop("PYTHONPATH", None)
    out = run_dir / "out.txt"
    try:
        with open(out, "wb") as fo:
            r = run_child(
                [str(VENV / "bin" / "ansible"), "all", "-i", str(ini), "-m", "setup", "-f", str(forks)],
                env=env,
                cwd=str(run_dir),
                stdout=fo,
            )
        text = out.read_text(errors="replace")
        ok = sum(1 for line in text.splitlines() if " | SUCCESS =>" in line)
        if ok != n:
            bad = [line for line in text.splitlines() if " | UNREACHABLE" in line or " | FAILED" in line][:3]
            raise RuntimeError(
                f"ansible -f {forks}: {ok}/{n} hosts succeeded (rc {r['rc']}): {bad} {r['stderr'][-600:]}"
            )
    finally:
        _exit_masters(cp_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
    r.pop("stderr")
    return r


def bench_loop(fleet, hosts, sock: str) -> dict:
    cmds = f"export DOCKER_HOST=unix://{sock}; " + "; ".join(f"{c} 2>&1" for c in NAIVE)
    base = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        fleet.client_key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={fleet.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ConnectTimeout=10",
    ]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for h in hosts:
        r = subprocess.run(base + [f"root@{h.address}", cmds], stdin=subprocess.DEVNULL, capture_output=True)
        if r.returncode == 255:
            raise RuntimeError(f"loop: ssh to {h.address} failed: {r.stderr[-300:]!r}")
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall,
        "cpu_s": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
        "maxrss_mb": None,
        "rc": 0,
    }


# ----------------------------------------------------------------------------- main


def ensure_ansible() -> str | None:
    """ansible-core in its own venv (never the project's environment); None when it is there."""
    if (VENV / "bin" / "ansible").exists():
        return None
    print(f"# installing ansible-core into {VENV} (once)", flush=True)
    try:
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "ansible-core"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"cannot install ansible-core: {getattr(e, 'stderr', b'') or e}"
    return None


def _sigterm(*_):
    raise KeyboardInterrupt


METHODS = {  # key: label
    "scan": "bkdoctor scan (CLI)",
    "engine": "engine.scan in-process",
    "floor": "floor: asyncssh + `true`",
    "probe": "asyncssh + bkdoctor probe",
    "ansible5": "ansible -m setup -f 5",
    "ansible50": "ansible -m setup -f 50",
    "loop": "ssh loop, sequential",
    "baseline": "--baseline: bkdoctor scan",
}


def _ansible_forks(v: str) -> list[int]:
    if not v or not set(v.split(",")) <= {"5", "50"}:
        raise argparse.ArgumentTypeError(f"takes 5, 50 or 5,50, not {v!r}")
    return sorted({int(x) for x in v.split(",")})


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-docker":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the parent, which stops us
        serve_docker(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="10,50,100", help="fleet sizes, comma separated (default 10,50,100)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each method per size; medians reported")
    ap.add_argument(
        "--ansible-repeat",
        type=int,
        default=1,
        help="runs of each ansible variant per size (default 1: tens of seconds each, far from the goal either way)",
    )
    ap.add_argument(
        "--loop-repeat",
        type=int,
        default=1,
        help="runs of the sequential ssh loop per size (default 1: it is slow and steady)",
    )
    ap.add_argument(
        "--skip-ansible-above", type=int, default=None, metavar="N", help="no ansible runs for fleets larger than N"
    )
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument(
        "--registry-down",
        action="store_true",
        help="no registry at docker.<domain> (every probe then waits out curl's 5 s: a site whose registry is down)",
    )
    ap.add_argument(
        "--ansible-forks",
        type=_ansible_forks,
        default=[5, 50],
        help="which of `ansible -f 5`, `-f 50` to run (default 5,50; at 100 hosts `-f 5` alone takes many minutes)",
    )
    ap.add_argument(
        "--docker-absent",
        action="store_true",
        help="the inventory names a Docker socket that does not exist (dockerd down on every host)",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also scan with an older checkout (`git archive REV | tar -x -C DIR`), side by side",
    )
    ap.add_argument(
        "--go-kubelet",
        default=None,
        metavar="PATH",
        help="the cost host's kubelet is this Go binary (a Kubernetes 1.20 one prints `Kubernetes v1.20.x` as kubelet "
        "does, e.g. the kube-apiserver .ci/run builds): a real node's Go start-up, where the stand-in is a shell script",
    )
    ap.add_argument("--plain", action="store_true", help="plain hosts (no CentOS base state)")
    ap.add_argument(
        "--sh",
        default="bash",
        metavar="SHELL",
        help="the hosts' /bin/sh: bash (default: CentOS 7.9's is bash), dash (this machine's), or a shell binary's path",
    )
    ap.add_argument(
        "--keep-resolv",
        action="store_true",
        help="leave the hosts' resolv.conf as the machine's: every outside name lookup then times out",
    )
    a = ap.parse_args()
    sizes = sorted({int(x) for x in a.hosts.split(",") if x.strip()})
    if not sizes or sizes[0] < 1 or sizes[-1] > 500:
        ap.error("--hosts: sizes from 1 to 500 (two /24 test networks at most)")

    from testbed.fixtures import SSHFleetFactory, ssh_unavailable

    why = ssh_unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    ans_why = None if a.no_ansible else ensure_ansible()
    if ans_why:
        print(f"# ansible skipped: {ans_why}")
    use_ansible = not a.no_ansible and not ans_why
    from benchutil import compile_tree

    compile_tree(ROOT)  # as installed: no run pays for compiling the sources
    if a.baseline:
        compile_tree(a.baseline)
    signal.signal(signal.SIGTERM, _sigterm)

    load0 = os.getloadavg()
    meta = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "sizes": sizes,
        "repeat": a.repeat,
        "ansible_repeat": a.ansible_repeat,
        "loop_repeat": a.loop_repeat,
        "concurrency": CONCURRENCY,
        "loadavg_before": load0,
        "plain_hosts": a.plain,
        "keep_resolv": a.keep_resolv,
        "host_sh": a.sh,
        "goals": GOALS,
        "methods": METHODS,
        "note": "the test hosts' sshd run on this same machine: their CPU is part of every number",
    }
    meta["ansible_version"] = None
    if use_ansible:
        meta["ansible_version"] = subprocess.run(
            [str(VENV / "bin" / "ansible"), "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    print(
        f"# bkdoctor fleet scan over SSH: sizes {sizes}, repeat {a.repeat} (ansible {a.ansible_repeat}, "
        f"loop {a.loop_repeat}), "
        f"concurrency {CONCURRENCY}, {os.cpu_count()} CPUs, load {load0[0]:.2f}, the hosts' /bin/sh: {a.sh}"
    )
    print(
        "# the hosts' sshd run on this same machine: their per-connection CPU (key exchange, sessions, the "
        "probe's commands) is part of every number below; 'host CPU' shows it apart"
    )
    if load0[0] > 0.5 * (os.cpu_count() or 1):
        print(f"# WARNING: the machine is busy (load {load0[0]:.2f}): numbers are noisy")

    if a.go_kubelet and a.plain:  # plain hosts share this machine's /usr/local/bin: the link would land here
        ap.error("--go-kubelet needs the CentOS base state (its /usr/local/bin overlay): not with --plain")
    work = Path(tempfile.mkdtemp(prefix="bkdbench-fleet-"))
    factory = [SSHFleetFactory(workdir=str(work))] + [
        SSHFleetFactory(workdir=str(work), prefix=f"net{i + 2}-node") for i in range((sizes[-1] - 1) // PER_NET)
    ]
    dockerd = registry = None
    results: dict = {}
    t_start = time.monotonic()
    try:
        dockerd = FakeDockerd(str(work / "docker.sock"))
        sock = str(work / "no-such-docker.sock") if a.docker_absent else dockerd.path
        meta["docker_absent"] = a.docker_absent
        t0 = time.monotonic()
        fleet = start_fleet(factory, sizes[-1], a.plain, a.keep_resolv, a.sh)
        bringup = time.monotonic() - t0
        meta["bringup_s"] = bringup
        meta["registry_down"] = a.registry_down
        if not a.registry_down:
            registry = Registry(factory[0].net.bridge, work)
        print(
            f"# host bring-up (not measured below): {sizes[-1]} hosts in {bringup:.1f}s "
            f"({bringup / sizes[-1] * 1000:.0f} ms/host)"
        )
        # fixed cost of the command (interpreter start, imports, rules, report): a scan of 1 host
        inv1 = work / "inv-1.yaml"
        write_inventory(inv1, fleet, fleet.hosts[:1], sock)
        one = [bench_scan(inv1, work / "r1.json") for _ in range(a.repeat)]
        bench_engine(inv1)  # warm the in-process rows up (imports, rule files, asyncssh)
        bench_floor(fleet, fleet.hosts[:1])
        meta["scan_1host"] = one
        cpu1 = med([r["cpu_s"] for r in one])
        print(
            f"# bkdoctor scan of 1 host: {med([r['wall_s'] for r in one]):.2f}s wall, {cpu1 * 1000:.0f} ms CPU "
            f"(mostly the fixed cost: interpreter, imports, rules, report), {med([r['maxrss_mb'] for r in one]):.0f} MB"
        )
        # the cost on the host of one scan: CPU (sshd + shell + commands, from the sshd listener's cutime/cstime)
        # and processes created (strace -f on sshd), against connect + `true`
        # this host in CentOS 7.9's base state also runs chronyd (from the first boot): `chronyc tracking` answers,
        # so the probe's fallbacks (timedatectl, ntpstat) do not run, as on a real node
        fleet.hosts[0].start_chronyd(synced=True)
        if a.go_kubelet:
            # into the host's own /usr/local/bin (an overlay: not with --plain, refused above), checked from inside
            # the host (a path under the host's private /data, /mnt or /run would be a dangling link there)
            go = Path(a.go_kubelet).resolve()
            fleet.hosts[0].run(f"ln -sf {shlex.quote(str(go))} /usr/local/bin/kubelet")
            out = fleet.hosts[0].run("kubelet --version", check=False).stdout.decode(errors="replace").strip()
            if not out.startswith("Kubernetes v"):
                raise SystemExit(f"--go-kubelet {go}: `kubelet --version` in the host printed {out[:80]!r}")
            meta["go_kubelet"] = f"{go} ({out})"
            print(f"# the cost host's kubelet: {go} ({out})", flush=True)
        elif not a.plain:
            # a real kubelet is a ~100 MB binary: the scans' kubelet cache (scan/kubeletcache.py, files of 1 MiB or
            # more) remembers its version, so a repeat scan does not run it. The stand-in script, padded past that
            # size after its `exit` (never read), is remembered the same way: the first of the cost host's scans runs
            # it, the others do not, as on a real node.
            pad = 3 << 19  # 1.5 MiB
            fleet.hosts[0].run(
                f"head -c {pad} /dev/zero | tr '\\0' '#' >> /usr/local/bin/kubelet && "
                "test $(stat -c %s /usr/local/bin/kubelet) -gt 1048576"
            )
            meta["kubelet_padded_bytes"] = pad
        h1 = HostCPU(fleet.hosts[:1])
        cg = CgroupCPU.start(fleet.hosts[0])
        cost_fns = {
            "scan": lambda: bench_scan(inv1, work / "r1.json"),
            "floor": lambda: bench_floor(fleet, fleet.hosts[:1]),
        }
        if a.baseline:  # the older checkout's scan of the same host, interleaved
            cost_fns["baseline"] = lambda: bench_scan(inv1, work / "rb1.json", a.baseline)
        hc: dict[str, list] = {k: [] for k in cost_fns}
        hg: dict[str, list] = {k: [] for k in cost_fns}
        # cutime moves in 10 ms ticks: the mean of many runs resolves a few ms (the median of 5 could not); the
        # cgroup's counter (where there is one) is exact to the nanosecond
        try:
            for _ in range(max(12, 2 * a.repeat)):
                for k, fn in cost_fns.items():
                    c0 = h1.total()
                    g0 = cg.total() if cg else 0.0
                    fn()
                    hc[k].append((h1.total() - c0) * 1000)
                    if cg:
                        hg[k].append((cg.total() - g0) * 1000)
        finally:
            if cg:
                cg.close()
        host_cost = {
            k: {"host_cpu_ms": sum(v) / len(v), "host_cpu_ms_min": min(v), "runs": len(v)} for k, v in hc.items()
        }
        if cg:
            for k, v in hg.items():
                host_cost[k].update(host_cpu_cgroup_ms=med(v), host_cpu_cgroup_ms_min=min(v))
        if shutil.which("strace"):
            for k, fn in cost_fns.items():
                host_cost[k].update(host_forks(fleet.hosts[0], fn))
        meta["host_cost"] = host_cost
        hs, hf = host_cost["scan"], host_cost["floor"]
        print(
            f"# on the host, per scan: {hs['host_cpu_ms']:.0f} ms CPU (mean of {hs['runs']}; min {hs['host_cpu_ms_min']:.0f}), "
            f"{hs.get('forks', '?')} processes created; connect + `true`: {hf['host_cpu_ms']:.0f} ms, "
            f"{hf.get('forks', '?')} processes -> the probe itself {hs['host_cpu_ms'] - hf['host_cpu_ms']:.0f} ms, "
            f"{(hs['forks'] - hf['forks']) if 'forks' in hs else '?'} processes (goals <= {GOALS['host_cpu_ms']:.0f} ms, "
            f"<= {GOALS['host_forks']} processes; clock ticks are 10 ms)",
            flush=True,
        )
        if "baseline" in host_cost:
            hb = host_cost["baseline"]
            print(
                f"# the baseline's scan on the host: {hb['host_cpu_ms']:.0f} ms CPU (mean; min {hb['host_cpu_ms_min']:.0f}), "
                f"{hb.get('forks', '?')} processes created",
                flush=True,
            )
        if cg:
            line = ", ".join(
                f"{k} {v['host_cpu_cgroup_ms']:.1f} ms (min {v['host_cpu_cgroup_ms_min']:.1f})"
                for k, v in host_cost.items()
            )
            probe = hs["host_cpu_cgroup_ms"] - hf["host_cpu_cgroup_ms"]
            base = ""
            if "baseline" in host_cost:
                base = (
                    f" (the baseline's {host_cost['baseline']['host_cpu_cgroup_ms'] - hf['host_cpu_cgroup_ms']:.1f} ms)"
                )
            print(
                f"# the same, from the host's cpuacct cgroup (median of {hs['runs']}): {line}; the probe itself "
                f"{probe:.1f} ms{base}",
                flush=True,
            )
            meta["host_cpu_cgroup_probe_ms"] = probe
        for n in sizes:
            hosts = fleet.hosts[:n]
            inv, ini = work / f"inv-{n}.yaml", work / f"hosts-{n}.ini"
            write_inventory(inv, fleet, hosts, sock)
            write_ini(ini, fleet, hosts)
            from bkdoctor.inputs.inventory import load_inventory

            script = _probe_script(load_inventory(str(inv)))
            hcpu = HostCPU(hosts)
            runs: dict[str, list] = {k: [] for k in METHODS}
            ansible_here = use_ansible and (a.skip_ansible_above is None or n <= a.skip_ansible_above)
            for i in range(a.repeat):
                todo = {
                    "scan": lambda: bench_scan(inv, work / "r.json"),
                    "engine": lambda: bench_engine(inv),
                    **({"baseline": lambda: bench_scan(inv, work / "rb.json", a.baseline)} if a.baseline else {}),
                    "floor": lambda: bench_floor(fleet, hosts),
                    "probe": lambda: bench_floor(fleet, hosts, script, registry.addr if registry else None),
                }
                if ansible_here and i < a.ansible_repeat:
                    for forks in a.ansible_forks:
                        todo[f"ansible{forks}"] = lambda forks=forks: bench_ansible(ini, forks, work, n)
                if i < a.loop_repeat:
                    todo["loop"] = lambda: bench_loop(fleet, hosts, dockerd.path)
                for k, fn in todo.items():
                    h0 = hcpu.total()
                    r = fn()
                    r["host_cpu_s"] = hcpu.total() - h0
                    runs[k].append(r)
                print(
                    f"#   N={n} run {i + 1}/{a.repeat}: "
                    + ", ".join(f"{k} {runs[k][-1]['wall_s']:.2f}s" for k in todo),
                    flush=True,
                )
            bad = {h for r in runs["scan"] for h in r["unreachable"]}
            if bad:
                raise RuntimeError(f"bkdoctor could not reach {sorted(bad)}")
            results[n] = summarize(n, runs, cpu1)
            print_table(n, results[n])
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        if registry is not None:
            registry.close()
        if dockerd is not None:
            dockerd.close()
        for f in reversed(factory):
            f.close()
        shutil.rmtree(work, ignore_errors=True)
    meta["total_s"] = time.monotonic() - t_start
    meta["loadavg_after"] = os.getloadavg()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fleet-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str) + "\n")
    print(f"# whole run {meta['total_s']:.0f}s; wrote {path.relative_to(ROOT)}")
    return 0


def summarize(n: int, runs: dict, cpu1: float) -> dict:
    s: dict = {"n": n, "runs": runs, "median_s": {}, "min_s": {}, "cpu_s": {}, "host_cpu_ms_per_host": {}}
    for k, v in runs.items():
        if v:
            s["median_s"][k] = med([r["wall_s"] for r in v])
            s["min_s"][k] = min(r["wall_s"] for r in v)
            s["cpu_s"][k] = med([r["cpu_s"] for r in v])
            s["host_cpu_ms_per_host"][k] = med([r["host_cpu_s"] for r in v]) / n * 1000
    m = s["median_s"]
    cpu = s["cpu_s"]["scan"]
    s["scan_over_floor"] = m["scan"] / m["floor"]
    s["scan_over_probe_floor"] = m["scan"] / m["probe"]
    s["engine_over_probe_floor"] = m["engine"] / m["probe"]
    s["speedup"] = {k: m[k] / m["scan"] for k in ("ansible5", "ansible50", "loop") if k in m}
    s["scan_cpu_ms_per_host"] = cpu / n * 1000
    s["scan_cpu_ms_per_host_marginal"] = (cpu - cpu1) / (n - 1) * 1000 if n > 1 else None
    s["engine_cpu_ms_per_host"] = s["cpu_s"]["engine"] / n * 1000
    s["floor_cpu_ms_per_host"] = s["cpu_s"]["floor"] / n * 1000
    s["probe_floor_cpu_ms_per_host"] = s["cpu_s"]["probe"] / n * 1000
    # where every host has its own CPU (a real fleet), a one-process control machine's wall time waits on its own
    # CPU: this ratio, not the scan / floor wall ratio measured here (the test hosts share these cores)
    ctl = s["scan_cpu_ms_per_host_marginal"] or s["scan_cpu_ms_per_host"]
    s["control_cpu_over_floor"] = ctl / s["floor_cpu_ms_per_host"] if s["floor_cpu_ms_per_host"] else None
    s["scan_maxrss_mb"] = max(r["maxrss_mb"] for r in runs["scan"])
    for k in ("ansible5", "ansible50"):
        if runs[k]:
            s[f"{k}_maxrss_mb"] = max(r["maxrss_mb"] for r in runs[k])
    s["statuses"] = runs["scan"][-1].get("statuses")
    return s


def print_table(n: int, s: dict) -> None:
    print(f"\nN={n} hosts (median of the runs; the hosts' sshd share these {os.cpu_count()} CPUs)")
    print(
        f"  {'what':<27} {'median':>8} {'min':>8} {'runs':>4} {'CPU':>8} {'host CPU':>9} {'peak RSS':>9} {'x scan':>7}"
    )
    for k, label in METHODS.items():
        runs = s["runs"][k]
        if not runs:
            print(f"  {label:<27} {'skipped':>8}")
            continue
        rss = max((r["maxrss_mb"] for r in runs if r.get("maxrss_mb")), default=None)
        hc = f"{s['host_cpu_ms_per_host'][k]:.0f}ms/h"
        print(
            f"  {label:<27} {s['median_s'][k]:>7.2f}s {s['min_s'][k]:>7.2f}s {len(runs):>4} {s['cpu_s'][k]:>7.2f}s "
            f"{hc:>9} {(f'{rss:.0f} MB' if rss else '-'):>9} {s['median_s'][k] / s['median_s']['scan']:>6.1f}x"
        )

    def verdict(ok):
        return "ok" if ok else "MISSED"

    g = GOALS
    print(
        "  (CPU: of the command or of this process for the in-process rows; host CPU: sshd + commands on the "
        "hosts, per host)"
    )
    print(
        f"  scan / floor              {s['scan_over_floor']:6.2f}x  (goal <= {g['scan_over_floor']}x: "
        f"{verdict(s['scan_over_floor'] <= g['scan_over_floor'])});  scan / probe floor "
        f"{s['scan_over_probe_floor']:.2f}x, engine / probe floor {s['engine_over_probe_floor']:.2f}x"
    )
    for k, label in (("ansible5", "ansible -f 5"), ("ansible50", "ansible -f 50")):
        if k in s["speedup"]:
            print(
                f"  speedup vs {label:<14} {s['speedup'][k]:6.1f}x  (goal >= {g['speedup_vs_ansible']:.0f}x: "
                f"{verdict(s['speedup'][k] >= g['speedup_vs_ansible'])})"
            )
    if "loop" in s["speedup"]:
        print(f"  speedup vs ssh loop       {s['speedup']['loop']:6.1f}x")
    marg = s["scan_cpu_ms_per_host_marginal"]
    key = marg if marg is not None else s["scan_cpu_ms_per_host"]
    print(
        f"  bkdoctor CPU per host     {key:6.1f} ms  (goal < {g['cpu_ms_per_host']:.0f}: "
        f"{verdict(key < g['cpu_ms_per_host'])}; "
        + ("marginal over the 1-host scan; " if marg is not None else "")
        + f"{s['scan_cpu_ms_per_host']:.1f} all in; engine in-process {s['engine_cpu_ms_per_host']:.1f}, "
        f"asyncssh floor {s['floor_cpu_ms_per_host']:.1f}, probe floor {s['probe_floor_cpu_ms_per_host']:.1f})"
    )
    if s.get("control_cpu_over_floor"):
        print(
            f"  control CPU / floor's     {s['control_cpu_over_floor']:6.2f}x  (bkdoctor's CPU a host over asyncssh "
            "connect + `true`'s: what the wall waits on where each host has its own CPU)"
        )
    if n < 20:
        print("  (below ~20 hosts the per-host CPU is mostly the noise of the fixed ~0.9 s start-up cost)")
    print(f"  bkdoctor peak RSS         {s['scan_maxrss_mb']:6.0f} MB;  findings {s['statuses']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
