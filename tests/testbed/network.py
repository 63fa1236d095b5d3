"""A private L2 network for namespace test hosts (see hostns.NsHost ``net=``).

``TestNet`` is a Linux bridge ``bkdbr<K>`` in the machine's root network
namespace carrying ``198.18.K.0/24`` (K < 256) or ``198.19.(K-256).0/24``:
the RFC 2544 benchmark range, never routed anywhere. The bridge itself gets
``.1``, so the test process reaches every host directly; each host joined with
``NsHost(..., net=testnet)`` gets a veth pair whose inner end is ``eth0``
inside the host with the next free address and a default route via ``.1``.

No iptables, no NAT, no forwarding out of the bridge: packets to or from
these addresses stay on this machine. The hosts' default route points at the
bridge, so a host that tries to reach anything else (its resolv.conf
nameserver, say) sends it there, where it is dropped: forwarding is off on
the bridge (``net.ipv4.conf.bkdbr<K>.forwarding=0``, whatever the machine's
ip_forward), and a policy routing rule (``ip rule add iif bkdbr<K>
prohibit``) refuses to route it should forwarding get switched back on.
Traffic to the bridge's own address is local (the local table is looked up
first) and host-to-host traffic is switched, never routed: both work.

Pitfall: DNS inside a host therefore times out (5-20 s per lookup; sudo
resolves its own hostname). Put the names a test needs in the host's
/etc/hosts (overlay), e.g. ``host.write("/etc/hosts", ..., append=True)``.

Several test processes may run at once: K is picked under an flock, skipping
bridges and subnets already present. A bridge carries its owner (pid and
process start time) in its alias; a bridge left by a process that died
(SIGKILL) is deleted by the next ``TestNet()``.

Teardown: ``close()`` deletes the bridge (and any veth still there); killing
a host's namespace destroys its veth pair, and NsHost.stop() also deletes the
outer end explicitly. ``close()`` runs at exit as a safety net too.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import os
import re
import subprocess
import threading
import weakref

__all__ = ["TestNet", "TestNetError", "live_nets"]

LOCK_PATH = "/tmp/bkdoctor-testnet.lock"
BRIDGE_PREFIX = "bkdbr"
MAX_NETS = 512  # 198.18.0.0/24 .. 198.19.255.0/24
RULE_PREF = 30000  # + K: policy rule "iif bkdbr<K> prohibit", before the main table (32766)
_SYS = "/sys/class/net"

_live: "weakref.WeakSet[TestNet]" = weakref.WeakSet()


def live_nets() -> list["TestNet"]:
    return [n for n in list(_live) if not n.closed]


@atexit.register
def _close_all_at_exit() -> None:  # pragma: no cover - safety net
    for n in live_nets():
        try:
            n.close()
        except Exception:
            pass


class TestNetError(RuntimeError):
    """Creating or using a TestNet failed."""

    __test__ = False  # not a pytest test class


def _ip(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], input=input, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise TestNetError(f"ip {' '.join(args)}: rc={r.returncode}: {r.stderr.strip()}")
    return r


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_tag() -> str:
    pid = os.getpid()
    return f"bkdoctor-testnet pid={pid} start={_proc_start(pid)}"


def _owner_alive(alias: str) -> bool:
    m = re.match(r"bkdoctor-testnet pid=(\d+) start=(\S+)", alias)
    if not m:
        return True  # not ours to judge: leave it alone
    return _proc_start(int(m.group(1))) == m.group(2)


@contextlib.contextmanager
def _machine_lock():
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    with open(LOCK_PATH, "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def subnet_for(k: int) -> ipaddress.IPv4Network:
    if not 0 <= k < MAX_NETS:
        raise ValueError(k)
    return ipaddress.IPv4Network(f"198.{18 + k // 256}.{k % 256}.0/24")


def _veth_prefix(k: int) -> str:
    return f"bkd{k}v"  # + host index (2..254): at most 11 characters


class TestNet:
    """A bridge in the root netns plus a /24 from 198.18.0.0/15. See module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.closed = False
        self._rule = False
        self._mu = threading.Lock()
        self._used: set[int] = set()
        self._veths: dict[int, str] = {}
        # everything that creates or deletes bridges and rules runs under the
        # machine-wide flock, so concurrent test processes never see (and
        # reap) another's half-built or half-removed net
        with _machine_lock():
            try:
                self._reap_stale()
                self.k = self._pick()
                self.subnet = subnet_for(self.k)
                self.bridge = f"{BRIDGE_PREFIX}{self.k}"
                self.gateway = str(self.subnet.network_address + 1)
                _ip("link", "add", self.bridge, "type", "bridge")
                _live.add(self)
                _ip("-4", "rule", "add", "iif", self.bridge, "pref", str(RULE_PREF + self.k), "prohibit")
                self._rule = True
                # Never route what arrives on the bridge, even where
                # ip_forward=1 (new devices inherit it): the kernel then drops
                # such packets silently. The "prohibit" rule is the second
                # line of defence (writing net.ipv4.ip_forward later resets
                # this per-device flag).
                with open(f"/proc/sys/net/ipv4/conf/{self.bridge}/forwarding", "w") as f:
                    f.write("0")
                try:  # no IPv6 chatter on the bridge
                    with open(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6", "w") as f:
                        f.write("1")
                except OSError:
                    pass
                _ip(
                    "-b",
                    "-",
                    input=(
                        f"link set dev {self.bridge} alias '{_owner_tag()}'\n"
                        f"addr add {self.gateway}/{self.subnet.prefixlen} dev {self.bridge}\n"
                        f"link set dev {self.bridge} up\n"
                    ),
                )
            except BaseException:
                self._close_locked()
                raise

    def __repr__(self) -> str:
        return f"<TestNet {self.bridge} {self.subnet} {'closed' if self.closed else 'up'}>"

    def __enter__(self) -> "TestNet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- alloc
    @staticmethod
    def _reap_stale() -> None:
        """Delete bkdbr* bridges whose owning process is gone, and our policy
        rules whose bridge is gone (called under the lock)."""
        for name in os.listdir(_SYS):
            m = re.fullmatch(rf"{BRIDGE_PREFIX}(\d+)", name)
            if not m or _owner_alive(_read(f"{_SYS}/{name}/ifalias")):
                continue
            prefix = _veth_prefix(int(m.group(1)))
            for v in os.listdir(_SYS):
                if v.startswith(prefix) and v[len(prefix) :].isdigit():
                    _ip("link", "del", v, check=False)
            _ip("link", "del", name, check=False)
        for line in _ip("-4", "rule", "show", check=False).stdout.splitlines():
            m = re.match(rf"(\d+):\s+from all iif ({BRIDGE_PREFIX}(\d+))\b.*prohibit", line)
            if m and int(m.group(1)) == RULE_PREF + int(m.group(3)) and not os.path.exists(f"{_SYS}/{m.group(2)}"):
                _ip("-4", "rule", "del", "iif", m.group(2), "pref", m.group(1), check=False)

    @staticmethod
    def _pick() -> int:
        names = set(os.listdir(_SYS))
        used_nets = []
        for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
            parts = line.split()
            if "inet" in parts:
                used_nets.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
        for k in range(MAX_NETS):
            if f"{BRIDGE_PREFIX}{k}" in names:
                continue
            if any(n.startswith(_veth_prefix(k)) for n in names):
                continue
            sn = subnet_for(k)
            if any(sn.overlaps(u) for u in used_nets):
                continue
            return k
        raise TestNetError("no free 198.18.0.0/15 subnet for a TestNet")

    def _alloc(self) -> int:
        with self._mu:
            if self.closed:
                raise TestNetError(f"{self!r} is closed")
            for i in range(2, 255):
                if i not in self._used:
                    self._used.add(i)
                    return i
        raise TestNetError(f"{self!r} is full (253 hosts)")

    # ---------------------------------------------------------- hosts
    def attach(self, pid: int) -> tuple[str, str]:
        """Give the network namespace of ``pid`` an ``eth0`` on this bridge.
        Returns (address, outer veth name)."""
        i = self._alloc()
        addr = str(self.subnet.network_address + i)
        veth = f"{_veth_prefix(self.k)}{i}"
        try:
            _ip(
                "-b",
                "-",
                input=(
                    f"link add {veth} type veth peer name eth0 netns {pid}\n"
                    f"link set dev {veth} master {self.bridge}\n"
                    f"link set dev {veth} up\n"
                ),
            )
            with self._mu:
                self._veths[i] = veth
            r = subprocess.run(
                ["nsenter", "-t", str(pid), "-n", "ip", "-b", "-"],
                capture_output=True,
                text=True,
                timeout=30,
                input=(
                    f"addr add {addr}/{self.subnet.prefixlen} dev eth0\n"
                    "link set dev eth0 up\n"
                    f"route add default via {self.gateway}\n"
                ),
            )
            if r.returncode != 0:
                raise TestNetError(f"configuring eth0 in netns of pid {pid}: {r.stderr.strip()}")
        except BaseException:
            self.detach(addr)
            raise
        return addr, veth

    def detach(self, address: str) -> None:
        """Delete the host's veth pair (if the namespace did not already take it
        along) and free its address."""
        i = int(ipaddress.IPv4Address(address)) - int(self.subnet.network_address)
        with self._mu:
            veth = self._veths.pop(i, None)
        if veth and os.path.exists(f"{_SYS}/{veth}"):
            _ip("link", "del", veth, check=False)
        with self._mu:
            self._used.discard(i)

    def close(self) -> None:
        """Delete the bridge, its policy rule and every veth of ours still
        present. Idempotent."""
        if self.closed:
            return
        with _machine_lock():
            self._close_locked()

    def _close_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._mu:
            veths = list(self._veths.values())
            self._veths.clear()
        for v in veths:
            if os.path.exists(f"{_SYS}/{v}"):
                _ip("link", "del", v, check=False)
        errors = []
        if getattr(self, "bridge", None) and os.path.exists(f"{_SYS}/{self.bridge}"):
            r = _ip("link", "del", self.bridge, check=False)
            if r.returncode != 0 and os.path.exists(f"{_SYS}/{self.bridge}"):
                errors.append(f"cannot delete bridge {self.bridge}: {r.stderr.strip()}")
        if self._rule:  # after the bridge: never a bridge without its rule
            r = _ip("-4", "rule", "del", "iif", self.bridge, "pref", str(RULE_PREF + self.k), check=False)
            if r.returncode != 0 and self._rule_present():
                errors.append(f"cannot delete policy rule for {self.bridge}: {r.stderr.strip()}")
            self._rule = False
        _live.discard(self)
        if errors:
            raise TestNetError("; ".join(errors))

    def _rule_present(self) -> bool:
        out = _ip("-4", "rule", "show", check=False).stdout
        return any(re.match(rf"{RULE_PREF + self.k}:\s+from all iif {self.bridge}\b", ln) for ln in out.splitlines())
