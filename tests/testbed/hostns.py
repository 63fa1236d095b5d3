"""A real fake host built from Linux namespaces, for end-to-end tests.

``NsHost`` starts a holder process in new mount, UTS, network, IPC and PID
namespaces (``unshare``), rearranges the holder's mount namespace so that a
probe run inside it (``nsenter``) sees a given scenario, and tears everything
down again:

* overlayfs on ``/etc`` (and any other ``overlays``): lowerdir is the real
  directory, upper/work live in a temp dir, so the machine's files are never
  touched; ``files``/``symlinks``/``remove``/``dirs`` are applied in the merged
  view (removals become whiteouts in the upper dir);
* fresh private tmpfs on ``/data``, ``/mnt`` and ``/run`` (plus ``tmpfs``);
* ``/proc`` remounted for the new PID namespace, single ``/proc``/``/sys``
  files replaced by read-only bind mounts of temp files;
* ``/sys`` remounted for the new network namespace (``/sys/class/net`` shows
  the host's interfaces), with the machine's cgroup mounts bound back in;
* a tmpfs on ``/sys/fs`` when a fake ``/sys/fs/selinux/enforce`` is wanted
  (the kernel here has no SELinux), the real ``/sys/fs`` entries bound back;
* hostname in the UTS namespace; ``lo`` up in the network namespace.

With ``net=TestNet()`` (tests/testbed/network.py) the host also gets an
``eth0`` on a private bridge in 198.18.0.0/15 (``host.address``), a default
route via the bridge, and empty files bound over the machine's login records
(/var/log/btmp...). ``start_sshd()`` then runs Debian's real sshd on that
address with its own ed25519 host key (``host_key_pub``,
``known_hosts_line()``), keys in /etc/ssh/authorized_keys/<user> (overlay),
optional password auth (chpasswd into the overlay /etc/shadow); ``add_user()``
creates login users and sudoers drop-ins in the overlay;
``start_silent_listener()`` is a TCP port that never speaks SSH.

Pid 1 of the namespace is a tiny reaper; killing it (SIGKILL, from outside)
makes the kernel kill everything else in the PID namespace, dockerd and
containerd included. Nothing is mounted in the machine's own mount namespace
(every mount is made after ``--propagation private``).

Only side effect on the machine: the tmpfs mount points (``/data``...) are
created as empty directories on the machine if they do not exist, because a
mount point must exist in the (shared) root filesystem.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .network import TestNet

__all__ = ["NsHost", "NsHostError", "NsRunError", "live_hosts"]

DEFAULT_TMPFS = ("/data", "/mnt", "/run")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# pid 1 inside the PID namespace: reaps every orphan, never exits by itself.
_INIT = (
    "import os,time\n"
    "while True:\n"
    "    try:\n"
    "        os.wait()\n"
    "    except ChildProcessError:\n"
    "        time.sleep(0.5)\n"
    "    except InterruptedError:\n"
    "        pass\n"
)

_live: "weakref.WeakSet[NsHost]" = weakref.WeakSet()


def live_hosts() -> list["NsHost"]:
    """Hosts started and not yet stopped (in this process)."""
    return [h for h in list(_live) if h.started]


@atexit.register
def _stop_all_at_exit() -> None:  # pragma: no cover - safety net
    for h in live_hosts():
        try:
            h.stop()
        except Exception:
            pass


class NsHostError(RuntimeError):
    """Starting or driving an NsHost failed."""


class NsRunError(subprocess.CalledProcessError):
    """CalledProcessError whose message carries the command's output."""

    def __str__(self) -> str:  # pragma: no cover - message only
        def tail(b):
            if not b:
                return ""
            if isinstance(b, bytes):
                b = b.decode("utf-8", "replace")
            return b[-2000:]

        return f"{super().__str__()}\n--- stdout ---\n{tail(self.stdout)}\n--- stderr ---\n{tail(self.stderr)}"


# --------------------------------------------------------------------------
# small helpers


def _q(s: str) -> str:
    return shlex.quote(s)


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _canon(path: str) -> str:
    """Normalise a host path and resolve symlinked *parent* components as the
    machine sees them (``/var/run/x`` -> ``/run/x``), keeping the last one."""
    if not path.startswith("/"):
        raise ValueError(f"path must be absolute: {path!r}")
    path = os.path.normpath(path)
    if path == "/":
        return path
    parent, base = os.path.split(path)
    return os.path.join(os.path.realpath(parent), base)


def _unescape_mountinfo(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mountpoints(pid: int | str = "self") -> list[str]:
    """Mount points listed in /proc/<pid>/mountinfo, in order."""
    out = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            out.append(_unescape_mountinfo(line.split()[4]))
    return out


def _top_submounts(top: str, mps: Iterable[str]) -> list[str]:
    """Mount points strictly below ``top`` that are not below another one,
    relative to ``top``."""
    below = sorted({m for m in mps if m != top and _under(m, top)})
    tops: list[str] = []
    for m in below:
        if not any(_under(m, t) for t in tops):
            tops.append(m)
    return [os.path.relpath(m, top) for m in tops]


def proc_children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads)."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (host pids)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo += proc_children(p)
    return out


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ns_id(pid: int, ns: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{ns}")
    except OSError:
        return None


def pids_in_pidns(ns_id: str) -> list[int]:
    """Host pids of every process whose PID namespace is ``ns_id``."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and _ns_id(int(d), "pid") == ns_id:
            out.append(int(d))
    return out


def _set_pdeathsig() -> None:
    """preexec_fn: die (SIGKILL) if the process that started us dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def _unix_http_get(sock_path: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: d\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def _tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<no log: {e}>"


# --------------------------------------------------------------------------


class NsHost:
    """A fake host made of namespaces. See module docstring."""

    READY_TIMEOUT = 20.0

    def __init__(
        self,
        name: str,
        *,
        files: dict[str, str | bytes | dict] | None = None,
        symlinks: dict[str, str] | None = None,
        remove: list[str] | None = None,
        dirs: list[str] | None = None,
        overlays: Iterable[str] = ("/etc",),
        hostname: str | None = None,
        selinux_enforce: str | None = None,
        binds: dict[str, str] | None = None,
        workdir: str | None = None,
        tmpfs: Iterable[str] = (),
        fresh_sysfs: bool = True,
        private_shm: bool = True,
        env: dict[str, str] | None = None,
        net: "TestNet | None" = None,
    ):
        self.name = name
        self.net = net
        self.hostname = hostname if hostname is not None else name
        if selinux_enforce is not None:
            selinux_enforce = str(selinux_enforce)
        self.selinux_enforce = selinux_enforce
        self.overlays = [_canon(d) for d in overlays]
        for d in self.overlays:
            if not os.path.isdir(d):
                raise ValueError(f"overlay dir does not exist on this machine: {d}")
        self.tmpfs_dirs = [_canon(d) for d in (*DEFAULT_TMPFS, *tmpfs)]
        self.fresh_sysfs = fresh_sysfs
        self.private_shm = private_shm
        self.workdir = workdir
        self.env = (
            dict(env)
            if env is not None
            else {
                "PATH": DEFAULT_PATH,
                "HOME": "/root",
                "LANG": "C",
                "TERM": "dumb",
            }
        )

        # normalised scenario
        self.files: dict[str, tuple[bytes, int | None]] = {}
        for p, spec in (files or {}).items():
            mode = None
            if isinstance(spec, dict):
                mode = spec.get("mode")
                spec = spec["content"]
            data = spec.encode() if isinstance(spec, str) else bytes(spec)
            self.files[self._check_path(p, "files")] = (data, mode)
        self.symlinks = {self._check_path(p, "symlinks", writable_only=True): t for p, t in (symlinks or {}).items()}
        self.remove = [self._check_path(p, "remove", writable_only=True) for p in (remove or [])]
        self.dirs = [self._check_path(p, "dirs", writable_only=True) for p in (dirs or [])]
        self.binds: dict[str, str] = {}
        for tgt, src in (binds or {}).items():
            t = _canon(tgt)
            if not (self._writable_area(t) or os.path.exists(t)):
                raise ValueError(
                    f"bind target {tgt!r} is neither under {self.overlays + self.tmpfs_dirs} "
                    "nor existing on this machine"
                )
            if not os.path.exists(src):
                raise ValueError(f"bind source {src!r} does not exist")
            self.binds[t] = os.path.abspath(src)

        # runtime state
        self.pid: int | None = None
        self._tmp: str | None = None
        self._own_tmp = False
        self._holder: subprocess.Popen | None = None
        self._pidns: str | None = None
        self._procs: list[subprocess.Popen] = []
        self._logs: list = []
        self._daemons: dict[str, tuple[subprocess.Popen, str]] = {}
        self._stopped = False
        self.timings: dict[str, float] = {}
        self.address: str | None = None  # eth0's IPv4 address when net= is given
        self._veth: str | None = None
        self.host_key_pub: str | None = None  # "ssh-ed25519 AAAA..." once start_sshd() ran
        self.sshd_port: int | None = None
        self.root_password: str | None = None

    # ---------------------------------------------------------------- paths
    def _writable_area(self, p: str) -> bool:
        return any(_under(p, d) for d in self.overlays + self.tmpfs_dirs)

    def _check_path(self, path: str, what: str, writable_only: bool = False) -> str:
        p = _canon(path)
        if self._writable_area(p):
            if p in self.overlays or p in self.tmpfs_dirs:
                raise ValueError(f"{what}: {path!r} is a managed mount point itself")
            return p
        if not writable_only and (_under(p, "/proc") or _under(p, "/sys")):
            return p
        raise ValueError(
            f"{what}: path {path!r} is not under an overlaid dir {self.overlays}, "
            f"a tmpfs dir {self.tmpfs_dirs}" + ("" if writable_only else ", /proc or /sys")
        )

    # ------------------------------------------------------------ lifecycle
    @property
    def started(self) -> bool:
        return self.pid is not None and not self._stopped

    @property
    def root(self) -> str:
        self._need_started()
        return f"/proc/{self.pid}/root"

    @property
    def tmpdir(self) -> str:
        """The harness's temp dir for this host (outside view; also visible
        inside at the same path since /tmp is shared)."""
        assert self._tmp
        return self._tmp

    def _need_started(self):
        if not self.started:
            raise NsHostError(f"NsHost {self.name!r} is not running")

    def __enter__(self) -> "NsHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<NsHost {self.name!r} pid={self.pid} {'running' if self.started else 'stopped'}>"

    def start(self) -> "NsHost":
        if self.pid is not None:
            raise NsHostError("NsHost.start() called twice")
        t0 = time.monotonic()
        _live.add(self)
        try:
            self._start()
            if self.net is not None:
                t1 = time.monotonic()
                self.address, self._veth = self.net.attach(self.pid)
                self.timings["net"] = time.monotonic() - t1
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _start(self) -> None:
        if self.workdir:
            os.makedirs(self.workdir, exist_ok=True)
        self._tmp = tempfile.mkdtemp(prefix=f"nshost-{self.name}-", dir=self.workdir)
        self._own_tmp = True
        os.chmod(self._tmp, 0o755)
        for d in self.tmpfs_dirs:
            # the mount point must exist in the shared root filesystem
            os.makedirs(d, exist_ok=True)
        script = self._setup_script()
        script_path = os.path.join(self._tmp, "setup.sh")
        with open(script_path, "w") as f:
            f.write(script)
        setup_log = os.path.join(self._tmp, "setup.log")
        errf = open(setup_log, "wb")
        self._logs.append(errf)
        argv = [
            "unshare",
            "--mount",
            "--uts",
            "--net",
            "--pid",
            "--ipc",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--kill-child=SIGKILL",
            "sh",
            script_path,
        ]
        main = threading.current_thread() is threading.main_thread()
        self._holder = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errf,
            start_new_session=True,
            env=self.env,
            cwd="/",
            # PDEATHSIG fires when the *thread* that forked dies: main thread only
            preexec_fn=_set_pdeathsig if main else None,
        )
        deadline = time.monotonic() + self.READY_TIMEOUT
        out = b""
        fd = self._holder.stdout.fileno()
        while b"ready\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NsHostError(
                    f"NsHost {self.name!r}: setup timed out after {self.READY_TIMEOUT}s; setup log:\n{_tail(setup_log)}"
                )
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    rc = self._holder.wait(timeout=5)
                    raise NsHostError(
                        f"NsHost {self.name!r}: setup failed (rc={rc}); output:\n"
                        f"{out.decode(errors='replace')}\nsetup log:\n{_tail(setup_log)}"
                    )
                out += chunk
        self._holder.stdout.close()
        kids = proc_children(self._holder.pid)
        for _ in range(100):
            if kids:
                break
            time.sleep(0.01)
            kids = proc_children(self._holder.pid)
        if len(kids) != 1:
            raise NsHostError(f"cannot find the namespace init (children of unshare: {kids})")
        self.pid = kids[0]
        self._pidns = _ns_id(self.pid, "pid")
        if self._pidns is None or self._pidns == _ns_id(os.getpid(), "pid"):
            raise NsHostError("namespace init is not in a new PID namespace")

    def _setup_script(self) -> str:
        tmp = self._tmp
        stage = os.path.join(tmp, "stage")
        os.makedirs(stage)
        L: list[str] = [
            "set -eu",
            "umask 022",
            f"echo {_q(self.hostname)} > /proc/sys/kernel/hostname",
            "ip link set lo up",
        ]
        mps = mountpoints()

        # ---- /sys for the new network namespace, cgroup mounts bound back
        if self.fresh_sysfs:
            st = os.path.join(tmp, "m-sys")
            os.makedirs(st)
            L += [f"mount --rbind /sys {_q(st)}", "umount -l /sys", "mount -t sysfs sysfs /sys"]
            for rel in _top_submounts("/sys", mps):
                L.append(f"if [ -e /sys/{_q(rel)} ]; then mount --rbind {_q(st + '/' + rel)} /sys/{_q(rel)}; fi")
            L.append(f"umount -l {_q(st)}")

        # ---- /sys/fs tmpfs: fake selinuxfs, or hide a real one
        fs_entries = [e for e in sorted(os.listdir("/sys/fs")) if e != "selinux"]
        sysfs_new = [p for p in self.files if _under(p, "/sys/fs") and p.split("/")[3] not in fs_entries]
        if self.selinux_enforce is not None or os.path.exists("/sys/fs/selinux") or sysfs_new:
            st = os.path.join(tmp, "m-sysfs")
            os.makedirs(st)
            L += [f"mount --rbind /sys/fs {_q(st)}", "mount -t tmpfs -o mode=755,size=1m sysfs /sys/fs"]
            for e in fs_entries:
                src = f"{st}/{e}"
                L.append(
                    f"if [ -d {_q(src)} ]; then mkdir /sys/fs/{_q(e)}; "
                    f"else touch /sys/fs/{_q(e)}; fi; mount --rbind {_q(src)} /sys/fs/{_q(e)}"
                )
            L.append(f"umount -l {_q(st)}")
            if self.selinux_enforce is not None:
                L += [
                    "mkdir /sys/fs/selinux",
                    "mount -t tmpfs -o mode=755,size=1m selinuxfs /sys/fs/selinux",
                    f"printf %s {_q(self.selinux_enforce)} > /sys/fs/selinux/enforce",
                ]
                if self.selinux_enforce in ("0", "1"):
                    # a few more selinuxfs files real hosts have
                    L += [
                        "echo 1 > /sys/fs/selinux/mls",
                        "echo 33 > /sys/fs/selinux/policyvers",
                        "echo 0 > /sys/fs/selinux/deny_unknown",
                    ]

        # ---- overlays
        for i, d in enumerate(self.overlays):
            upper = os.path.join(tmp, f"ovl{i}", "upper")
            work = os.path.join(tmp, f"ovl{i}", "work")
            os.makedirs(upper)
            os.makedirs(work)
            subs = _top_submounts(d, mps)
            st = os.path.join(tmp, f"m-ovl{i}")
            if subs:
                os.makedirs(st)
                L.append(f"mount --rbind {_q(d)} {_q(st)}")
            L.append(f"mount -t overlay overlay -o {_q(f'lowerdir={d},upperdir={upper},workdir={work}')} {_q(d)}")
            for rel in subs:
                full = os.path.join(d, rel)
                if full in self.files or full in self.symlinks or any(_under(full, r) for r in self.remove):
                    continue
                L.append(f"mount --rbind {_q(st + '/' + rel)} {_q(full)}")
            if subs:
                L.append(f"umount -l {_q(st)}")

        # ---- tmpfs dirs, /dev/shm
        for d in self.tmpfs_dirs:
            L.append(f"mount -t tmpfs -o mode=755 tmpfs {_q(d)}")
        if "/run" in self.tmpfs_dirs:
            L += ["mkdir -p -m 1777 /run/lock", "mkdir -p /run/user"]
        if self.private_shm:
            L.append("mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm")

        # ---- scenario
        for p in self.remove:
            L.append(f"rm -rf -- {_q(p)}")
        for p in self.dirs:
            L.append(f"mkdir -p -- {_q(p)}")
        files = dict(self.files)
        if (
            self._writable_area("/etc/hostname")
            and "/etc/hostname" not in files
            and "/etc/hostname" not in self.remove
            and "/etc/hostname" not in self.symlinks
        ):
            files["/etc/hostname"] = ((self.hostname + "\n").encode(), None)
        for n, (p, (data, mode)) in enumerate(sorted(files.items())):
            src = os.path.join(stage, f"f{n}")
            with open(src, "wb") as f:
                f.write(data)
            if self._writable_area(p) or p in sysfs_new:
                if mode is None:
                    try:
                        st_ = os.lstat(p)
                        mode = st_.st_mode & 0o7777 if os.path.isfile(p) else 0o644
                    except OSError:
                        mode = 0o644
                L.append(
                    f"mkdir -p -- {_q(os.path.dirname(p))}; rm -rf -- {_q(p)}; "
                    f"cp -- {_q(src)} {_q(p)}; chmod {mode:o} {_q(p)}"
                )
            else:  # /proc or /sys: read-only bind over an existing file
                os.chmod(src, mode if mode is not None else 0o444)
                L.append(
                    f"[ -e {_q(p)} ] || {{ echo 'NsHost: cannot fake {p}: "
                    f"no such file in /proc or /sys' >&2; exit 3; }}"
                )
                L.append(f"mount --bind {_q(src)} {_q(p)}; mount -o remount,bind,ro {_q(p)}")
        for p, target in self.symlinks.items():
            L.append(f"mkdir -p -- {_q(os.path.dirname(p))}; rm -rf -- {_q(p)}; ln -s -- {_q(target)} {_q(p)}")
        for tgt, src in self.binds.items():
            if os.path.isdir(src):
                L.append(f"mkdir -p -- {_q(tgt)}")
            else:
                L.append(f"mkdir -p -- {_q(os.path.dirname(tgt))}; [ -e {_q(tgt)} ] || : > {_q(tgt)}")
            L.append(f"mount --bind {_q(src)} {_q(tgt)}")

        # ---- networked hosts may run sshd, which appends failed password
        # logins to /var/log/btmp: bind empty files over the machine's login
        # records (inside the host only)
        if self.net is not None:
            for p in self._HIDE_LOGS:
                if os.path.isfile(p) and not self._writable_area(p):
                    fake = os.path.join(tmp, "varlog-" + os.path.basename(p))
                    open(fake, "wb").close()
                    L.append(f"mount --bind {_q(fake)} {_q(p)}")

        L.append("echo ready")
        L.append(f"exec {_q(sys.executable)} -c {_q(_INIT)} </dev/null >/dev/null 2>&1")
        return "\n".join(L) + "\n"

    def stop(self) -> None:
        """Kill everything started for this host, remove temp dirs. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[str] = []
        ns_pids: list[int] = []
        if self._pidns:
            ns_pids = pids_in_pidns(self._pidns)
        # 1. SIGKILL pid 1 of the namespace: the kernel kills all its members
        targets = [self.pid] if self.pid is not None else []
        if self.pid is None and self._holder is not None and self._holder.poll() is None:
            targets = proc_children(self._holder.pid)  # setup still running
        for t in targets:
            try:
                os.kill(t, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # 2. everything we spawned (nsenter wrappers, the unshare holder): they
        # exit by themselves once their child in the namespace is dead. Let
        # them reap it (killing unshare first would leave the init as a zombie
        # of the machine's pid 1), kill only what hangs.
        procs = list(self._procs) + ([self._holder] if self._holder else [])
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    errors.append(f"pid {p.pid} ({p.args[0]}) did not exit")
            if p.stdout and not p.stdout.closed:
                p.stdout.close()
        # 3. make sure no member of the namespace survived
        # (re-scan the namespace on every round: a member forked after the first snapshot, or one still
        # tearing down its mounts in uninterruptible exit on a loaded machine, must be waited for too)
        deadline = time.monotonic() + 20

        def members() -> list[int]:
            found = set(ns_pids) | (set(pids_in_pidns(self._pidns)) if self._pidns else set())
            return sorted(p for p in found if pid_alive(p))

        left = members()
        while left and time.monotonic() < deadline:
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
            left = members()
        if left:
            errors.append(f"processes still alive in the namespace: {left}")
        for f in self._logs:
            try:
                f.close()
            except Exception:
                pass
        # 3b. the veth pair normally dies with the network namespace; make sure
        if self.net is not None and self.address is not None:
            try:
                self.net.detach(self.address)
            except Exception as e:
                errors.append(f"detach from {self.net!r}: {e}")
        # 4. temp dir (mounts died with the mount namespace)
        if self._tmp and self._own_tmp and not os.environ.get("NSHOST_KEEP_TMP"):
            for _ in range(20):
                try:
                    shutil.rmtree(self._tmp)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:  # EBUSY while the ns is being torn down
                    if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        errors.append(f"rmtree {self._tmp}: {e}")
                        break
                    time.sleep(0.1)
        _live.discard(self)
        if errors:
            raise NsHostError(f"NsHost {self.name!r} stop: " + "; ".join(errors))

    # ------------------------------------------------------------ run stuff
    def nsenter_argv(self) -> list[str]:
        """argv prefix running a command inside all the host's namespaces.
        nsenter forks after entering the PID namespace (its default), so the
        command is a real member of it; cwd is the host's /."""
        self._need_started()
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-n", "-p", "-i", "--wdns=/", "--"]

    def run(
        self,
        cmd: str,
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """``sh -c cmd`` inside the host; stdout/stderr captured as bytes."""
        argv = self.nsenter_argv() + ["sh", "-c", cmd]
        r = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=env if env is not None else self.env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise NsRunError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    def read(self, path: str) -> bytes:
        """Read a file as the host sees it (from outside, via /proc/pid/root)."""
        with open(self.root + path, "rb") as f:
            return f.read()

    def spawn(
        self, argv: list[str], name: str | None = None, log: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start a long-running process inside the host (via nsenter). The
        Popen (of nsenter) is tracked and killed by stop(); the daemon's own
        host pid is ``daemon_pid(name)``. Output goes to ``log`` (a path
        outside; default <tmpdir>/<name>.log)."""
        self._need_started()
        name = name or os.path.basename(argv[0])
        if name in self._daemons and self._daemons[name][0].poll() is None:
            raise NsHostError(f"{name} already running in {self.name}")
        log = log or os.path.join(self.tmpdir, f"{name}.log")
        lf = open(log, "ab")
        self._logs.append(lf)
        p = subprocess.Popen(
            self.nsenter_argv() + list(argv),
            stdin=subprocess.DEVNULL,
            stdout=lf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env if env is not None else self.env,
        )
        self._procs.append(p)
        self._daemons[name] = (p, log)
        return p

    def daemon_pid(self, name: str, timeout: float = 5.0) -> int:
        """Host pid of a daemon started by spawn(): the child of its nsenter."""
        p, _ = self._daemons[name]
        deadline = time.monotonic() + timeout
        while True:
            kids = proc_children(p.pid)
            if kids:
                return kids[0]
            if p.poll() is not None:
                raise NsHostError(f"{name} exited (rc={p.returncode}); log:\n{_tail(self._daemons[name][1])}")
            if time.monotonic() > deadline:
                raise NsHostError(f"{name}: no child under nsenter pid {p.pid}")
            time.sleep(0.01)

    def daemon_log(self, name: str) -> str:
        return _tail(self._daemons[name][1], 100000)

    def pids(self) -> list[int]:
        """Host pids of every process in the host's PID namespace."""
        self._need_started()
        return pids_in_pidns(self._pidns)

    # -------------------------------------------------------------- dockerd
    def _daemon_json(self) -> dict | None:
        path = self.root + "/etc/docker/daemon.json"
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                cfg = json.load(f)
            return cfg if isinstance(cfg, dict) else {}
        except (OSError, ValueError):
            return {}  # let dockerd complain about it

    def docker_socket(self) -> str:
        return f"{self.root}{self._docker_sock_inside()}"

    def _docker_sock_inside(self) -> str:
        cfg = self._daemon_json() or {}
        for h in cfg.get("hosts") or []:
            if isinstance(h, str) and h.startswith("unix://"):
                return _canon(h[len("unix://") :])
        return "/run/docker.sock"

    def dockerd_argv(self) -> list[str]:
        """dockerd command line: our defaults unless daemon.json sets the
        same thing (dockerd refuses a setting given both ways)."""
        cfg = self._daemon_json()
        argv = ["dockerd"]
        if cfg is not None:
            argv += ["--config-file", "/etc/docker/daemon.json"]
        cfg = cfg or {}

        def unless(keys, *flags):
            if not any(k in cfg for k in keys):
                argv.extend(flags)

        unless(["hosts"], "--host", "unix:///run/docker.sock")
        unless(["data-root", "graph"], "--data-root", "/data/docker")
        unless(["storage-driver"], "--storage-driver", "vfs")
        unless(["iptables"], "--iptables=false")
        unless(["ip-masq"], "--ip-masq=false")
        unless(["bridge", "bip"], "--bridge=none")
        unless(["exec-root"], "--exec-root", "/run/docker-exec")
        unless(["pidfile"], "--pidfile", "/run/docker.pid")
        unless(["userland-proxy"], "--userland-proxy=false")
        droot = cfg.get("data-root") or cfg.get("graph")
        if isinstance(droot, str) and not self._writable_area(_canon(droot)):
            raise NsHostError(
                f"daemon.json data-root {droot!r} would be on the machine's real disk; "
                f"put it under {self.tmpfs_dirs + self.overlays} or pass tmpfs=[...]"
            )
        return argv

    def start_dockerd(self, timeout: float = 60, extra_args: Iterable[str] = ()) -> None:
        """Start the real dockerd inside the host; return once /_ping is OK."""
        self._need_started()
        t0 = time.monotonic()
        argv = self.dockerd_argv() + list(extra_args)
        self.spawn(argv, name="dockerd")
        sock = self.docker_socket()
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            p = self._daemons["dockerd"][0]
            if p.poll() is not None:
                raise NsHostError(
                    f"dockerd exited (rc={p.returncode}) in {self.name}; argv={argv}"
                    f"; log tail:\n{_tail(self._daemons['dockerd'][1])}"
                )
            try:
                status, body = _unix_http_get(sock, "/_ping")
                if status == 200 and body.strip() == b"OK":
                    break
                last = f"{status} {body[:200]!r}"
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise NsHostError(
                    f"dockerd not ready after {timeout}s ({last}); argv={argv}; "
                    f"log tail:\n{_tail(self._daemons['dockerd'][1])}"
                )
            time.sleep(0.05)
        self.timings["dockerd"] = time.monotonic() - t0

    def dockerd_pid(self) -> int:
        return self.daemon_pid("dockerd")

    def reload_dockerd(self) -> None:
        """SIGHUP dockerd: it re-reads daemon.json (reloadable keys only)."""
        os.kill(self.dockerd_pid(), signal.SIGHUP)

    def docker(
        self, *args: str, check: bool = True, timeout: float = 30, inside: bool = False
    ) -> subprocess.CompletedProcess:
        """Run the docker CLI against this host's dockerd: from outside over
        the socket (default) or inside the host (``inside=True``)."""
        if inside:
            return self.run(" ".join(_q(a) for a in ("docker", *args)), check=check, timeout=timeout)
        env = dict(self.env)
        env["DOCKER_CONFIG"] = os.path.join(self.tmpdir, "docker-cli")
        r = subprocess.run(
            ["docker", "-H", f"unix://{self.docker_socket()}", *args],
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise NsRunError(r.returncode, ["docker", *args], r.stdout, r.stderr)
        return r

    # -------------------------------------------------------------- chronyd
    def start_chronyd(self, synced: bool = True, timeout: float = 20, conf_path: str | None = None) -> None:
        """Run Debian's chronyd inside the host without ever touching the
        machine clock (``-x``). synced=True: ``local stratum 10`` so that
        ``chronyc tracking`` says ``Leap status : Normal``; synced=False: one
        server on an unanswered loopback port (inside the host's own netns),
        so it says ``Not synchronised``. Command socket at
        /run/chrony/chronyd.sock (the Debian default chronyc uses); no UDP
        command port."""
        self._need_started()
        if not shutil.which("chronyd"):
            raise NsHostError("chronyd not installed (apt-get install chrony)")
        t0 = time.monotonic()
        conf = [
            "cmdport 0",
            "bindcmdaddress /run/chrony/chronyd.sock",
            "pidfile /run/chrony/chronyd.pid",
            "driftfile /run/chrony/chrony.drift",
        ]
        if synced:
            conf.append("local stratum 10")
        else:
            conf.append("server 127.0.0.1 port 11123 iburst minpoll 4 maxpoll 4")
        cpath = conf_path or os.path.join(self.tmpdir, "chrony.conf")
        with open(cpath, "w") as f:
            f.write("\n".join(conf) + "\n")
        os.chmod(cpath, 0o644)
        self.run("mkdir -p /run/chrony && chmod 750 /run/chrony")
        self.spawn(["chronyd", "-x", "-d", "-u", "root", "-f", cpath], name="chronyd")
        want = "Normal" if synced else "Not synchronised"
        deadline = time.monotonic() + timeout
        out = ""
        while True:
            p = self._daemons["chronyd"][0]
            if p.poll() is not None:
                raise NsHostError(f"chronyd exited (rc={p.returncode}); log:\n{self.daemon_log('chronyd')}")
            r = self.run("chronyc -n tracking", check=False, timeout=10)
            out = r.stdout.decode(errors="replace")
            if "Leap status" in out and want in out:
                break
            if time.monotonic() > deadline:
                raise NsHostError(
                    f"chronyd not {want!r} after {timeout}s: {out!r} {r.stderr!r}; log:\n{self.daemon_log('chronyd')}"
                )
            time.sleep(0.2)
        self.timings["chronyd"] = time.monotonic() - t0

    # ----------------------------------------------------------------- files
    def write(self, path: str, data: str | bytes, mode: int | None = None, append: bool = False) -> None:
        """Write (or append to) a file as the host sees it, from outside via
        /proc/<pid>/root (atomic rename). Only under an overlaid or tmpfs dir,
        so the machine's own files are never touched. An existing file keeps
        its owner, group and (unless ``mode``) mode; a new one is 0644."""
        self._need_started()
        p = _canon(path)
        if not self._writable_area(p) or p in self.overlays or p in self.tmpfs_dirs:
            raise ValueError(f"write: {path!r} is not under {self.overlays + self.tmpfs_dirs}")
        full = self.root + p
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        try:
            st = os.stat(full)
            owner: tuple[int, int] | None = (st.st_uid, st.st_gid)
            if mode is None:
                mode = st.st_mode & 0o7777
        except FileNotFoundError:
            owner = None
        if mode is None:
            mode = 0o644
        if append and os.path.exists(full):
            with open(full, "rb") as f:
                old = f.read()
            if old and not old.endswith(b"\n"):
                old += b"\n"
            data = old + data
        tmp = f"{full}.nshost-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        if owner is not None:
            os.chown(tmp, *owner)
        os.chmod(tmp, mode)
        os.replace(tmp, full)

    # ------------------------------------------------------------------ sshd
    SSHD = "/usr/sbin/sshd"
    AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys"  # AuthorizedKeysFile <dir>/%u, in the /etc overlay
    _HIDE_LOGS = ("/var/log/btmp", "/var/log/wtmp", "/var/log/lastlog", "/var/log/faillog")

    def _ssh_prep(self) -> None:
        """sshd's privilege separation dir /run/sshd (root, 0755) and the
        authorized keys dir. (The machine's login records are hidden by the
        setup script of every networked host.)"""
        for d in ("/run/sshd", self.AUTHORIZED_KEYS_DIR):
            full = self.root + d
            if not os.path.isdir(full):
                os.makedirs(full, exist_ok=True)
                os.chmod(full, 0o755)

    def _ensure_host_key(self, host_key: str | None) -> str:
        if host_key is not None:
            src = os.path.abspath(host_key)
            dst = os.path.join(self.tmpdir, "ssh_host_key")
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            pub_src = src + ".pub"
            if os.path.exists(pub_src):
                with open(pub_src) as f:
                    pub = f.read()
            else:
                pub = subprocess.run(
                    ["ssh-keygen", "-y", "-f", dst], check=True, capture_output=True, text=True, timeout=30
                ).stdout
        else:
            dst = os.path.join(self.tmpdir, "ssh_host_ed25519_key")
            if not os.path.exists(dst):  # generated once per host
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"nshost-{self.name}", "-f", dst],
                    check=True,
                    capture_output=True,
                    timeout=30,
                    stdin=subprocess.DEVNULL,
                )
            with open(dst + ".pub") as f:
                pub = f.read()
        self.host_key_pub = " ".join(pub.split()[:2])
        return dst

    def authorize_key(self, pubkey: str, user: str = "root") -> None:
        """Append a public key line to the user's authorized keys (in the /etc overlay)."""
        self._ssh_prep()
        self.write(f"{self.AUTHORIZED_KEYS_DIR}/{user}", pubkey.strip() + "\n", mode=0o644, append=True)

    def set_login_shell(self, user: str, shell: str) -> None:
        """Change a user's shell in the host's /etc/passwd (overlay)."""
        with open(self.root + "/etc/passwd") as f:
            lines = f.read().splitlines(keepends=True)
        out, changed = [], False
        for line in lines:
            f_ = line.rstrip("\n").split(":")
            if len(f_) >= 7 and f_[0] == user and f_[6] != shell:
                f_[6] = shell
                line = ":".join(f_) + "\n"
                changed = True
            out.append(line)
        if changed:
            self.write("/etc/passwd", "".join(out))

    def set_password(self, user: str, password: str) -> None:
        """chpasswd inside the host: only the host's /etc/shadow (overlay) changes."""
        self.run("chpasswd", input=f"{user}:{password}\n".encode())

    def add_user(
        self,
        name: str,
        *,
        sudo: str | None = None,
        password: str | None = None,
        authorized_key: str | None = None,
        shell: str = "/bin/sh",
    ) -> int:
        """Create a login user in the host's /etc overlay (passwd/shadow/group,
        written directly: no useradd, so nothing outside /etc is touched), home
        /run/home/<name>. sudo: None, "nopasswd" or "password" (a sudoers.d
        drop-in). The account is unlocked ("*", not "!") so that public key
        logins work with UsePAM no. Returns the uid."""
        self._need_started()
        if sudo not in (None, "nopasswd", "password"):
            raise ValueError(f"sudo must be None, 'nopasswd' or 'password', not {sudo!r}")
        with open(self.root + "/etc/passwd") as f:
            passwd = [line.split(":") for line in f if line.strip()]
        if any(p[0] == name for p in passwd):
            raise NsHostError(f"user {name!r} exists in {self.name}")
        uids = {int(p[2]) for p in passwd if len(p) > 2 and p[2].isdigit()}
        uid = 2000
        while uid in uids:
            uid += 1
        home = f"/run/home/{name}"
        self.write("/etc/passwd", f"{name}:x:{uid}:{uid}::{home}:{shell}\n", append=True)
        self.write("/etc/group", f"{name}:x:{uid}:\n", append=True)
        self.write("/etc/shadow", f"{name}:*:19000:0:99999:7:::\n", append=True)
        os.makedirs(self.root + home, mode=0o700, exist_ok=True)
        os.chown(self.root + home, uid, uid)
        if sudo:
            rule = "NOPASSWD: ALL" if sudo == "nopasswd" else "ALL"
            self.write(f"/etc/sudoers.d/nshost-{name}", f"{name} ALL=(ALL:ALL) {rule}\n", mode=0o440)
        if password is not None:
            self.set_password(name, password)
        if authorized_key:
            self.authorize_key(authorized_key, user=name)
        return uid

    def known_hosts_line(self) -> str:
        """``<address> <host key>`` (``[address]:port`` off port 22) for a known_hosts file."""
        if not self.host_key_pub or not self.address:
            raise NsHostError(f"{self.name}: start_sshd() first")
        where = self.address if self.sshd_port in (None, 22) else f"[{self.address}]:{self.sshd_port}"
        return f"{where} {self.host_key_pub}"

    def sshd_config(self, port: int, host_key_path: str, password_auth: bool, extra: Iterable[str] = ()) -> str:
        """`extra` lines come last; a keyword set there before any `Match` replaces the default's line (sshd takes a
        keyword's first value), but for HostKey, of which sshd takes every line. One inside a Match block does not."""
        extra = list(extra)
        given: set[str] = set()
        for ln in extra:
            if not ln.strip():
                continue
            if ln.split()[0].lower() == "match":
                break
            given.add(ln.split()[0].lower())
        given.discard("hostkey")
        return (
            "\n".join(
                [
                    ln
                    for ln in [
                        f"Port {port}",
                        f"ListenAddress {self.address}",
                        "AddressFamily inet",
                        f"HostKey {host_key_path}",
                        f"PidFile /run/sshd-{port}.pid",
                        f"AuthorizedKeysFile {self.AUTHORIZED_KEYS_DIR}/%u",
                        f"PermitRootLogin {'yes' if password_auth else 'prohibit-password'}",
                        "PubkeyAuthentication yes",
                        f"PasswordAuthentication {'yes' if password_auth else 'no'}",
                        "KbdInteractiveAuthentication no",
                        "PermitEmptyPasswords no",
                        "UsePAM no",
                        "StrictModes yes",
                        "UseDNS no",
                        "PrintMotd no",
                        "PrintLastLog no",
                        "X11Forwarding no",
                        "AllowTcpForwarding yes",
                        "AllowStreamLocalForwarding yes",
                        "MaxStartups 200:30:400",
                        "MaxSessions 64",
                        "LoginGraceTime 30",
                        "LogLevel VERBOSE",
                        "Subsystem sftp internal-sftp",
                    ]
                    if ln.split()[0].lower() not in given
                ]
                + extra
            )
            + "\n"
        )

    def start_sshd(
        self,
        port: int = 22,
        host_key: str | None = None,
        *,
        password_auth: bool = False,
        password: str | None = None,
        authorized_keys: Iterable[str] = (),
        extra_config: Iterable[str] = (),
        login_shell: str | None = "/bin/sh",
        timeout: float = 10,
    ) -> None:
        """Run Debian's /usr/sbin/sshd (-D -e) inside the host, listening on
        its eth0 address (needs ``net=``); return once the port accepts.

        Host key: ed25519, generated once per host in its tmp dir, or a copy
        of ``host_key`` (a private key path; shared keys make 100 hosts cheap).
        ``host_key_pub``/``known_hosts_line()`` give the public side.
        Root may log in with a key (prohibit-password); ``password_auth=True``
        also allows passwords and sets root's password (``password`` or a
        random one, in ``root_password``) with chpasswd in the host's overlay
        /etc/shadow. Keys: ``authorized_keys`` or ``authorize_key()``, in
        /etc/ssh/authorized_keys/<user> (overlay). UsePAM no; PidFile under /run.

        ``login_shell``: root's shell in the host's /etc/passwd (overlay).
        sshd runs every command through it, and bash started by sshd sources
        ~/.bashrc: root's home is the machine's /root, whose .bashrc may be
        slow (pyenv init: +0.3 s per command). None keeps the machine's.
        """
        self._need_started()
        if self.address is None:
            raise NsHostError(f"{self.name}: start_sshd() needs a network: NsHost(..., net=TestNet())")
        if not os.path.exists(self.SSHD):
            raise NsHostError(f"{self.SSHD} not installed (apt-get install openssh-server)")
        t0 = time.monotonic()
        key_path = self._ensure_host_key(host_key)
        self._ssh_prep()
        if login_shell:
            self.set_login_shell("root", login_shell)
        for k in authorized_keys:
            self.authorize_key(k)
        if password_auth:
            self.root_password = password if password is not None else os.urandom(9).hex()
            self.set_password("root", self.root_password)
        cfg = os.path.join(self.tmpdir, f"sshd_config_{port}")
        with open(cfg, "w") as f:
            f.write(self.sshd_config(port, key_path, password_auth, extra_config))
        name = "sshd"
        self.spawn([self.SSHD, "-D", "-e", "-f", cfg], name=name)
        self.sshd_port = port
        self._wait_port(port, name, timeout)
        self.timings["sshd"] = time.monotonic() - t0

    def _wait_port(self, port: int, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            p = self._daemons[name][0]
            if p.poll() is not None:
                raise NsHostError(
                    f"{name} exited (rc={p.returncode}) in {self.name}; log:\n{self.daemon_log(name)[-4000:]}"
                )
            try:
                with socket.create_connection((self.address, port), timeout=0.5):
                    return
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                raise NsHostError(
                    f"{name} in {self.name}: {self.address}:{port} not accepting after "
                    f"{timeout}s ({last!r}); log:\n{self.daemon_log(name)[-4000:]}"
                )
            time.sleep(0.003)

    def stop_daemon(self, name: str, sig: int = signal.SIGTERM, timeout: float = 5) -> None:
        """Signal a daemon started by spawn() and wait for it (SIGKILL if it lingers)."""
        p, _ = self._daemons[name]
        if p.poll() is None:
            try:
                os.kill(self.daemon_pid(name, timeout=1), sig)
            except (ProcessLookupError, NsHostError):
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in proc_children(p.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                p.wait(timeout=timeout)

    def stop_sshd(self) -> None:
        """Stop the listening sshd (open sessions live on, as with a real sshd)."""
        self.stop_daemon("sshd")

    def start_silent_listener(self, port: int, timeout: float = 10) -> None:
        """A TCP listener on eth0 that accepts connections and never sends a
        byte: an SSH client must time out in its handshake."""
        self._need_started()
        if self.address is None:
            raise NsHostError(f"{self.name}: start_silent_listener() needs net=")
        code = (
            "import socket\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(({self.address!r}, {int(port)}))\n"
            "s.listen(128)\n"
            "held = []\n"
            "while True:\n"
            "    held.append(s.accept()[0])\n"
        )
        name = f"silent-{port}"
        self.spawn([sys.executable, "-c", code], name=name)
        self._wait_port(port, name, timeout)
