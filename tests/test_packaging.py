"""Packaging for offline and air-gapped sites (packaging/): the wheelhouse and the container image.

- ``packaging/wheelhouse.sh`` is built once per module; fresh venvs (this interpreter, and the oldest and newest
  other CPythons this machine has) install bkdoctor from it with no index at all.
- ``packaging/build-image.sh`` builds the image against a dockerd of our own (``MachineDockerd``), the saved
  tarball is loaded back after the image was removed, and the README's one-liner runs ``bkdoctor scan`` in it
  against a real sshd test host and the real test kube-apiserver: the reports land in the mounted directory.

The dockerd runs in this machine's network namespace, because the container reaches the API server on
127.0.0.1 and the test host on its bridge with ``--network host`` only there; everything else is its own.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from kube.fixtures import kube_apiserver  # noqa: F401
from testbed.hostns import _unix_http_get, pid_alive, proc_children, proc_tree

# the first run builds the root filesystem with debootstrap (2-4 minutes on two busy cores) inside one test's setup
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'^__version__\s*=\s*["\']([^"\']+)', (ROOT / "bkdoctor" / "__init__.py").read_text(), re.M)[1]
TAG = f"bkdoctor:{VERSION}"


def _tail(text: str | bytes, n: int = 4000) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-n:]


try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover
    _prctl = None


def _set_pdeathsig() -> None:  # in the child between fork and exec: die with the test process
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))


# --------------------------------------------------------------------------------------------- wheelhouse


def _pip_offline_env() -> dict[str, str]:
    """No pip configuration of this machine, and an index that cannot answer: any network use fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL="http://127.0.0.1:9/",
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_DEFAULT_TIMEOUT="5",
    )
    return env


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheelhouse")
    t0 = time.monotonic()
    # the oldest and the newest CPython the install test uses (this interpreter's version is always added);
    # the default list (3.10-3.14) only adds index look-ups
    env = dict(os.environ, WHEELHOUSE_PYTHONS="3.10 3.13")
    r = subprocess.run(
        ["bash", str(ROOT / "packaging" / "wheelhouse.sh"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert r.returncode == 0, f"wheelhouse.sh failed:\n{_tail(r.stdout)}\n{_tail(r.stderr)}"
    print(f"wheelhouse built in {time.monotonic() - t0:.0f}s")
    assert f"--find-links {out} bkdoctor" in r.stdout  # it prints the install command
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert [w for w in wheels if w.startswith("bkdoctor-")] == [f"bkdoctor-{VERSION}-py3-none-any.whl"]
    cur = "cp%d%d" % sys.version_info[:2]
    for tag in ("cp310", cur, "cp313"):  # binary wheels for every version asked for ...
        assert any(w.startswith("pyyaml-") and f"-{tag}-" in w for w in wheels), (tag, wheels)
    for w in wheels:  # ... and only ones that install on any glibc >= 2.17
        plat = w[:-4].split("-")[-1]
        assert plat == "any" or "manylinux2014" in plat or "manylinux_2_17" in plat or "manylinux1" in plat, w
    return out


def _interpreter(version: str) -> str | None:
    """This interpreter, or a CPython <version> that runs (a pyenv shim of a version not selected does not)."""
    if version == "current":
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    candidates = (
        [str(d / "bin" / f"python{version}") for d in sorted(pyenv.glob(f"{version}.*"))] if pyenv.is_dir() else []
    )
    candidates += [p for p in (shutil.which(f"python{version}"), f"/usr/bin/python{version}") if p]
    for exe in candidates:
        try:
            if (
                os.path.exists(exe)
                and subprocess.run([exe, "-c", "import venv"], capture_output=True, timeout=60).returncode == 0
            ):
                return exe
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


@pytest.mark.parametrize("python", ["current", "3.10", "3.13"])
def test_wheelhouse_installs_offline(wheelhouse, tmp_path, python):
    exe = _interpreter(python)
    if exe is None:
        pytest.skip(f"no CPython {python} on this machine")
    env = _pip_offline_env()
    venv = tmp_path / "venv"
    subprocess.run([exe, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300, env=env)
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheelhouse), "bkdoctor"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, f"offline install failed:\n{_tail(r.stdout)}\n{_tail(r.stderr)}"
    bkd = venv / "bin" / "bkdoctor"
    r = subprocess.run([str(bkd), "--version"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"bkdoctor, version {VERSION}", r
    r = subprocess.run(
        [str(bkd), "rules", "--json"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    rules = json.loads(r.stdout)
    assert len(rules) > 20
    # the installed package, not this work tree, answered
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import bkdoctor; print(bkdoctor.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert r.stdout.strip().startswith(str(venv)), r.stdout


# ------------------------------------------------------------------------------------------------ dockerd


class DockerdError(RuntimeError):
    pass


_DOCKERD_SCRIPT = r"""
set -eu
D=$1; DRIVER=$2; CG=$3
# what dockerd and containerd write outside their own directories stays in this mount namespace:
# /run/containerd/s (shim sockets), /run/docker/plugins, /etc/docker/key.json
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock
mount --bind "$D/etc-docker" /etc/docker
dockerd --config-file "$D/daemon.json" --data-root "$D/data-$DRIVER" --exec-root "$D/exec" \
  --host "unix://$D/docker.sock" --pidfile "$D/docker.pid" --storage-driver "$DRIVER" \
  --iptables=false --ip6tables=false --ip-masq=false --bridge=none --userland-proxy=false \
  --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$CG" >"$D/dockerd-$DRIVER.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid' TERM
wait $pid
"""


class MachineDockerd:
    """A dockerd of the test's own in the machine's network namespace (``--network host`` containers see
    127.0.0.1 and the test bridges), in private mount and PID namespaces (``unshare``): its mounts and
    processes die with the namespace. Data, exec root, socket, pidfile, daemon.json and /etc/docker are under
    a temp dir; containers' cgroups under a parent of its own, removed at stop(). overlay2 when the temp dir
    supports it (a container starts in a second), else vfs (a full copy of the image per container)."""

    BASE = "/var/tmp"
    PREFIX = "bkdoctor-dockerd-"
    CGROUP_PREFIX = "bkdoctor-pkgtest-"

    def __init__(self) -> None:
        self._sweep_stale()
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX, dir=self.BASE)
        self.cgroup_parent = f"{self.CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.proc: subprocess.Popen | None = None
        self.driver: str | None = None
        for sub in ("etc-docker", "cli"):
            os.makedirs(os.path.join(self.dir, sub))
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            f.write("{}\n")
        with open(os.path.join(self.dir, "owner.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")

    @classmethod
    def _sweep_stale(cls) -> None:
        """What a test process killed hard left behind (its dockerd died with it through PDEATHSIG): temp
        dirs whose owner is gone, and the empty cgroups named after a dead pid."""
        for name in os.listdir(cls.BASE):
            if not name.startswith(cls.PREFIX):
                continue
            d = os.path.join(cls.BASE, name)
            try:
                with open(os.path.join(d, "owner.pid")) as f:
                    owner = int(f.read().strip())
            except (OSError, ValueError):
                continue
            if not pid_alive(owner):
                shutil.rmtree(d, ignore_errors=True)
        base = "/sys/fs/cgroup"
        for ctrl in [base] + [os.path.join(base, c) for c in os.listdir(base)]:
            try:
                names = os.listdir(ctrl)
            except OSError:
                continue
            for name in names:
                m = re.fullmatch(re.escape(cls.CGROUP_PREFIX) + r"(\d+)-[0-9a-f]+", name)
                if m and not pid_alive(int(m[1])):
                    _rmdir_tree(os.path.join(ctrl, name))

    @property
    def socket(self) -> str:
        return os.path.join(self.dir, "docker.sock")

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_CONFIG=os.path.join(self.dir, "cli"))
        return env

    def start(self, timeout: float = 60) -> "MachineDockerd":
        errors = []
        for driver in ("overlay2", "vfs"):
            try:
                self._start(driver, timeout)
                return self
            except DockerdError as e:
                errors.append(str(e))
                self._kill()
        raise DockerdError("\n".join(errors))

    def _start(self, driver: str, timeout: float) -> None:
        self.driver = driver
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "--kill-child=SIGKILL",
                "sh",
                "-c",
                _DOCKERD_SCRIPT,
                "sh",
                self.dir,
                driver,
                self.cgroup_parent,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
            preexec_fn=_set_pdeathsig,
        )
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if self.proc.poll() is not None:  # dockerd exited, and so did the namespace
                raise DockerdError(f"dockerd ({driver}) exited; log:\n{self.log(driver)}")
            try:
                status, body = _unix_http_get(self.socket, "/_ping")
                if status == 200 and body.strip() == b"OK":
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise DockerdError(f"dockerd ({driver}) not ready after {timeout}s ({last}); log:\n{self.log(driver)}")
            time.sleep(0.1)

    def log(self, driver: str | None = None) -> str:
        try:
            with open(os.path.join(self.dir, f"dockerd-{driver or self.driver}.log"), "rb") as f:
                return _tail(f.read())
        except OSError:
            return "<no log>"

    def _init_pid(self) -> int | None:
        if self.proc is None:
            return None
        kids = proc_children(self.proc.pid)
        return kids[0] if kids else None

    def _dockerd_pid(self) -> int | None:
        init = self._init_pid()
        for pid in proc_children(init) if init else []:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "dockerd":
                        return pid
            except OSError:
                pass
        return None

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, env=self.env, stdin=subprocess.DEVNULL
        )
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: rc={r.returncode}\n{_tail(r.stdout)}\n{_tail(r.stderr)}")
        return r

    def _kill(self) -> None:
        """Stop dockerd (SIGTERM: it stops its containers and containerd), then kill the namespace's pid 1,
        which takes everything left in it along. Only our own processes: the unshare we started and its tree."""
        if self.proc is None:
            return
        dpid = self._dockerd_pid()
        if dpid is not None:
            try:
                os.kill(dpid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 20
            while pid_alive(dpid) and time.monotonic() < deadline:
                time.sleep(0.1)
        init = self._init_pid()
        if init is not None:
            try:
                os.kill(init, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in reversed(proc_tree(self.proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=20)
        self.proc = None

    def _remove_cgroups(self) -> None:
        base = "/sys/fs/cgroup"
        tops = [os.path.join(base, c, self.cgroup_parent) for c in os.listdir(base)]
        tops.append(os.path.join(base, self.cgroup_parent))  # cgroup v2 unified at the top
        for top in tops:
            _rmdir_tree(top)

    def stop(self) -> None:
        try:
            self._kill()
        finally:
            self._remove_cgroups()
            shutil.rmtree(self.dir, ignore_errors=True)


def _rmdir_tree(top: str) -> None:
    """Remove a cgroup and its children, deepest first (rmdir only: a cgroup with tasks stays)."""
    if not os.path.isdir(top):
        return
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
        for _ in range(50):  # the last container's tasks may take a moment to leave
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def _docker_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("dockerd", "docker", "unshare", "containerd", "runc"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not os.path.isdir("/etc/docker"):
        return "/etc/docker missing (docker.io not installed)"
    return None


@pytest.fixture(scope="module")
def dockerd():
    why = _docker_unavailable()
    if why:
        pytest.skip(why)
    d = MachineDockerd()
    try:
        d.start()
        yield d
    finally:
        d.stop()


# -------------------------------------------------------------------------------------------------- image


@pytest.fixture(scope="module")
def image(wheelhouse, dockerd, tmp_path_factory):
    """Built by packaging/build-image.sh, saved, removed from the daemon and loaded back from the tarball
    (what an air-gapped site gets)."""
    out = tmp_path_factory.mktemp("image-out")
    t0 = time.monotonic()
    r = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build-image.sh"), "--wheelhouse", str(wheelhouse), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        env=dockerd.env,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - t0
    assert r.returncode == 0, f"build-image.sh failed:\n{_tail(r.stdout)}\n{_tail(r.stderr)}"
    print(r.stdout)
    print(f"image built in {took:.0f}s ({'cached rootfs' if 'cached rootfs' in r.stdout else 'debootstrap'})")
    tarball = out / f"bkdoctor-{VERSION}.tar"
    assert tarball.is_file()
    sums = (out / f"bkdoctor-{VERSION}.tar.sha256").read_text().split()
    check = subprocess.run(["sha256sum", "-c", f"bkdoctor-{VERSION}.tar.sha256"], cwd=out, capture_output=True)
    assert sums[1] == tarball.name and check.returncode == 0
    dockerd.docker("rmi", TAG)
    assert dockerd.docker("image", "inspect", TAG, check=False).returncode != 0
    loaded = dockerd.docker("load", "-i", str(tarball))
    assert TAG in loaded.stdout
    return {"tag": TAG, "tarball": tarball, "build_log": r.stdout, "build_s": took}


@pytest.mark.docker
def test_image_config_and_contents(image, dockerd):
    cfg = json.loads(dockerd.docker("image", "inspect", TAG).stdout)[0]
    c = cfg["Config"]
    assert c["Entrypoint"] == ["/opt/bkdoctor/bin/bkdoctor"]
    assert c["WorkingDir"] == "/work"
    env = dict(e.split("=", 1) for e in c["Env"])
    assert env["HOME"] == "/root" and env["XDG_DATA_HOME"] == "/work/reports/.bkdoctor"
    assert env["XDG_CACHE_HOME"] == "/work/reports/.bkdoctor/cache"  # kept across runs, as the history
    assert env["PATH"].startswith("/opt/bkdoctor/bin:")
    assert c["Labels"]["org.opencontainers.image.version"] == VERSION
    assert len(cfg["RootFS"]["Layers"]) == 1
    size_mb = cfg["Size"] / 1e6
    print(f"image size {size_mb:.0f} MB, tarball {image['tarball'].stat().st_size / 1e6:.0f} MB")
    assert size_mb < 300, f"image grew to {size_mb:.0f} MB"

    r = dockerd.docker("run", "--rm", "--network", "none", TAG, "--version")
    assert r.stdout.strip() == f"bkdoctor, version {VERSION}"
    r = dockerd.docker("run", "--rm", "--network", "none", TAG, "rules", "--json")
    assert len(json.loads(r.stdout)) > 20
    # trimmed: no apt lists, no docs but copyright files, no installer in the venv; still a Debian bookworm
    probe = (
        "set -e; . /etc/os-release; echo $VERSION_CODENAME; ls /var/lib/apt/lists | grep -v -x -e lock -e partial | wc -l; "
        "find /usr/share/doc -type f ! -name copyright | wc -l; "
        '/opt/bkdoctor/bin/python -c \'import importlib.util as u; print(u.find_spec("pip"), u.find_spec("setuptools"))\'; '
        "python3 --version; test -s /etc/ssl/certs/ca-certificates.crt; test -f /usr/share/zoneinfo/Asia/Shanghai; "
        "cat /opt/bkdoctor/IMAGE"
    )
    r = dockerd.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", TAG, "-c", probe)
    lines = r.stdout.splitlines()
    assert lines[0] == "bookworm"
    assert lines[1] == "0" and lines[2] == "0"
    assert lines[3] == "None None"
    assert lines[4].startswith("Python 3.11.")
    assert lines[5] == f"bkdoctor {VERSION}"


@pytest.mark.docker
@pytest.mark.ssh
@pytest.mark.kube
def test_image_scan_ssh_host_and_cluster(image, dockerd, ssh_fleet, kube_apiserver, report_validator, tmp_path):  # noqa: F811
    """The README's one-liner, with this test's files in place of ~/.kube/config, ~/.ssh and $PWD."""
    fleet = ssh_fleet(1)
    host = fleet[0]
    # ~/.ssh as an operator has it: the key under a default name (no identity_file in the inventory), and
    # known_hosts knowing the host
    dotssh = tmp_path / "dotssh"
    dotssh.mkdir(mode=0o700)
    shutil.copy(fleet.client_key, dotssh / "id_ed25519")
    os.chmod(dotssh / "id_ed25519", 0o600)
    shutil.copy(fleet.known_hosts, dotssh / "known_hosts")
    inventory = tmp_path / "hosts.yaml"
    fleet.inventory_yaml(inventory, roles=["master"])
    import yaml

    inv = yaml.safe_load(inventory.read_text())
    del inv["ssh"]["identity_file"], inv["ssh"]["known_hosts"]
    inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
    reports = tmp_path / "reports"
    reports.mkdir()

    t0 = time.monotonic()
    r = dockerd.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        f"{kube_apiserver.kubeconfig}:/root/.kube/config:ro",
        "-v",
        f"{dotssh}:/root/.ssh:ro",
        "-v",
        f"{inventory}:/work/hosts.yaml:ro",
        "-v",
        f"{reports}:/work/reports",
        TAG,
        "scan",
        "-i",
        "/work/hosts.yaml",
        "--html",
        "/work/reports/r.html",
        "--json",
        "/work/reports/r.json",
        check=False,
        timeout=600,
    )
    print(f"scan in the container: {time.monotonic() - t0:.1f}s\n{_tail(r.stdout, 3000)}\n{_tail(r.stderr, 1000)}")
    assert r.returncode in (0, 1), f"rc={r.returncode}\n{_tail(r.stdout)}\n{_tail(r.stderr)}"

    report = report_validator(json.loads((reports / "r.json").read_text()))
    targets = {t["name"]: t for t in report["targets"]}
    assert targets[host.name]["kind"] == "host" and targets[host.name]["reachable"], targets
    assert targets[host.name]["address"] == host.address
    clusters = [t for t in report["targets"] if t["kind"] == "cluster"]
    assert len(clusters) == 1 and clusters[0]["reachable"], clusters
    by_target: dict[str, list[dict]] = {}
    for f in report["findings"]:
        by_target.setdefault(f["target"], []).append(f)
    host_findings = by_target.get(host.name, [])
    cluster_findings = by_target.get(clusters[0]["name"], [])
    # facts were really gathered over SSH and through the API: not only errors
    assert any(f["status"] in ("pass", "warn", "fail") for f in host_findings), host_findings
    assert any(f["status"] in ("pass", "warn", "fail") for f in cluster_findings), cluster_findings
    assert {f["rule"] for f in host_findings} >= {"swap", "kernel-params"}
    assert {f["rule"] for f in cluster_findings} >= {"node-ready", "coredns"}

    html = (reports / "r.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and host.name in html
    # the history lives in the mounted reports directory: the next container sees this scan
    assert (reports / ".bkdoctor" / "bkdoctor" / "history.db").is_file()
    r = dockerd.docker("run", "--rm", "--network", "none", "-v", f"{reports}:/work/reports", TAG, "history", "--json")
    hist = json.loads(r.stdout)
    assert [h["id"] for h in hist] == [report["scan"]["id"]], hist


@pytest.mark.docker
def test_image_explains_old_docker_seccomp(image, dockerd, tmp_path):
    """Docker 19.03 with runc < 1.0.0-rc93 answers clone3 with EPERM, so glibc 2.36 cannot start a thread:
    the image says what to add instead of failing half-way through a scan."""
    profile = tmp_path / "docker-19.03-old-runc.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }
        )
    )
    r = dockerd.docker(
        "run", "--rm", "--network", "none", "--security-opt", f"seccomp={profile}", TAG, "--version", check=False
    )
    assert r.returncode == 71, r
    assert "--security-opt seccomp=unconfined" in r.stderr and "containerd.io" in r.stderr
    # the way out the message names works
    r = dockerd.docker("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", TAG, "--version")
    assert r.stdout.strip() == f"bkdoctor, version {VERSION}"
