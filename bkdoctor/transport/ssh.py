"""SSH transport (asyncssh): one connection per host, the probe on stdin of `sh -s`, the Docker Engine API
through a direct-streamlocal channel to the remote unix socket.

Operator-facing errors are `TransportError`s with a short reason and no traceback, e.g.
`connection refused`, `timed out after 10s connecting`, `authentication failed for root (publickey)`,
`host key for 198.18.0.5 CHANGED (possible man-in-the-middle); fix known_hosts`,
`command timed out after 60s`, `sudo: a password is required`. A password never appears in a message,
a log line or a repr.

Host keys are checked against a known_hosts file (default ~/.ssh/known_hosts). Only with
`accept_new_host_keys` is an *unknown* host trusted on first use, its key appended to that file
(atomically, under a lock; mode kept, 0600 when created). A host whose key differs from a known one is
always rejected. ~/.ssh/config is not read: the inventory is the single source of connection settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import fcntl
import functools
import json
import os
import re
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from bkdoctor.transport.base import (
    MAX_SCRIPT_OUTPUT,
    READ_AHEAD,  # bash: the rest of the script in blocks
    CommandResult,
    HTTPStatus,
    NotForwarded,
    Transport,
    TransportError,
    read_bounded,
)

# stderr kept before the preamble's line (sudo's lecture, a login script's noise: a few lines)
MAX_PREAMBLE_STDERR = 1 << 20

MAX_API_RESPONSE = 64 * 1024 * 1024  # bytes: a Docker /info of a big host is well below 1 MiB
# First line of every remote script: the shell's process group on stderr, so that a timed-out command
# can be killed. /proc/$$/stat field 5 is the pgrp (field 2 is "(sh)" or "(bash)": no spaces).
_PGID_PREAMBLE = (
    "__bkd_pg=$$; [ -r /proc/$$/stat ] && read -r _ _ _ _ __bkd_pg _ </proc/$$/stat; "
    'echo "@@BKD-PGID:$__bkd_pg" >&2; unset __bkd_pg\n'
)
_PGID_LINE = re.compile(rb"@@BKD-PGID:(\d+)(?: (\S*))?\n")
# the same line with the host's clock (issue 16: the clock sample rides on the probe's session, no second exec). The
# same `date` also gives the UTC offset (%s is the epoch in any zone), kept in `__bkd_tz` for the probe's `date_z`
# section (facts/host.py), which then runs no `date` of its own: one process fewer
_PGID_CLOCK_PREAMBLE = _PGID_PREAMBLE.replace(
    'echo "@@BKD-PGID:$__bkd_pg" >&2',
    "__bkd_tz=$(date '+%s.%N %z'); echo \"@@BKD-PGID:$__bkd_pg ${__bkd_tz%% *}\" >&2; __bkd_tz=${__bkd_tz#* }",
)
assert _PGID_CLOCK_PREAMBLE != _PGID_PREAMBLE
_CLOSE_TIMEOUT = 2.0


@dataclass
class SSHSettings:
    """How to reach one host. Built by `merged()` from the inventory's `ssh:` and the host's `ssh:`."""

    user: str = "root"
    port: int = 22
    identity_file: str | None = None
    known_hosts: str | None = None  # None -> ~/.ssh/known_hosts
    connect_timeout: float = 10
    command_timeout: float = 60
    # never from argv: the caller reads it from `password_env` (see `password_env_name`) or a prompt
    password: str | None = field(default=None, repr=False)
    proxy_jump: str | None = None  # "user@host:port" of a jump host ("a,b": through a, then b)
    become: bool = False  # run the probe through `sudo -n /bin/sh -s` when user is not root
    accept_new_host_keys: bool = False  # trust on first use; a CHANGED key is always an error
    # the registry check's GET connected by the host's sshd (direct-tcpip; facts/host.py FORWARDED_GETS); false: curl
    # in the probe, as the guide runs it (an sshd that forbids forwarding, a gateway that is not the host itself)
    forward_tcp: bool = True

    @classmethod
    def merged(
        cls, inventory_ssh: dict[str, Any] | None, host_ssh: dict[str, Any] | None, **overrides: Any
    ) -> "SSHSettings":
        """inventory `ssh:` < host `ssh:` < overrides (e.g. CLI flags; None values are ignored).

        `password_env` is not a setting here: the caller resolves it (`password_env_name`) and passes
        `password=`. `~` in identity_file/known_hosts is expanded."""
        names = {f.name for f in dataclasses.fields(cls)}
        vals: dict[str, Any] = {}
        for src in (inventory_ssh or {}, host_ssh or {}):
            for k, v in src.items():
                if k == "password_env":
                    continue
                if k not in names or k == "password":
                    raise ValueError(f"unknown ssh setting {k!r}")
                vals[k] = v
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"unknown ssh setting {k!r}")
            if v is not None:
                vals[k] = v
        for k in ("identity_file", "known_hosts"):
            if vals.get(k):
                vals[k] = os.path.expanduser(vals[k])
        return cls(**vals)

    @staticmethod
    def password_env_name(inventory_ssh: dict[str, Any] | None, host_ssh: dict[str, Any] | None) -> str | None:
        """The environment variable holding the SSH password for this host (host's setting wins)."""
        return (host_ssh or {}).get("password_env") or (inventory_ssh or {}).get("password_env")

    @property
    def known_hosts_path(self) -> str:
        return os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts")


# ------------------------------------------------------------------ known_hosts


def _kh_host(host: str, port: int) -> str:
    """known_hosts host field: `host` on port 22, `[host]:port` elsewhere."""
    return host if port == 22 else f"[{host}]:{port}"


_KH_CACHE: dict[str, tuple[tuple[int, int, int], Any]] = {}


def _read_known_hosts(path: str):
    """Parsed known_hosts, cached while the file is unchanged (size, mtime, inode): a 1,000-line file costs
    ~20 ms to parse, and a fleet scan connects to every host with the same file."""
    import asyncssh

    try:
        st = os.stat(path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    except FileNotFoundError:
        stamp = (-1, 0, 0)
    except OSError as e:
        raise TransportError(f"cannot read known_hosts {path}: {e.strerror or e}") from None
    hit = _KH_CACHE.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise TransportError(f"cannot read known_hosts {path}: {e.strerror or e}") from None
    try:
        kh = asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.Error) as e:  # a malformed line
        raise TransportError(f"cannot parse known_hosts {path}: {e}") from None
    _KH_CACHE[path] = (stamp, kh)
    return kh


def _ip_or_empty(host: str) -> str:
    """known_hosts matching takes an IP address as `addr`; a host name there raised ValueError (a scan of an
    inventory with a DNS name as address ended in exit 3). '' lets asyncssh match by name."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ""
    return host


def _has_entries(kh, host: str, addr: str, port: int) -> bool:
    m = kh.match(host, addr, None if port == 22 else port)
    return bool(m[0] or m[1] or m[3] or m[5])


def _append_known_host(path: str, host: str, addr: str, port: int, key) -> str:
    """Trust on first use: append `host key` to known_hosts unless the file (re-read under the lock) knows
    the host by now. Returns "added", "present" (same key) or "changed" (another key appeared).

    Written by outfiles.write_atomic (a temp file renamed over the old one; mode and owner kept, 0600 for a new
    file). Concurrent writers (threads or processes) are serialised by flock on the directory."""
    import asyncssh

    from bkdoctor.safe.outfiles import write_atomic

    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        os.makedirs(d, mode=0o700, exist_ok=True)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        try:
            with open(path, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            old = b""
        kh = asyncssh.import_known_hosts(old.decode("utf-8", "replace"))
        m = kh.match(host, addr, None if port == 22 else port)
        if m[0] or m[1]:
            return "present" if key in m[0] else "changed"
        kind, b64 = key.export_public_key("openssh").decode().split()[:2]
        line = f"{_kh_host(host, port)} {kind} {b64}\n".encode()
        if old and not old.endswith(b"\n"):
            old += b"\n"
        write_atomic(path, old + line, new_mode=0o600)
        return "added"
    finally:
        os.close(dfd)  # releases the flock


# ------------------------------------------------------------------ connecting


def _parse_jump(spec: str, default_user: str) -> tuple[str, str, int]:
    """`[user@]host[:port]` (IPv6 as `[addr]:port`) -> (user, host, port)."""
    user, _, rest = spec.rpartition("@")
    user = user or default_user
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", rest)
    if m:
        host, port = m.group(1), m.group(2)
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    else:
        host, port = rest, None
    if not host:
        raise TransportError(f"bad proxy_jump {spec!r}: expected user@host:port")
    try:
        p = int(port) if port else 22
    except ValueError:
        raise TransportError(f"bad proxy_jump {spec!r}: port {port!r} is not a number") from None
    return user, host, p


class _HostKeyPolicy:
    """Per-connection host key verdict, filled in by the asyncssh client callback."""

    def __init__(self, settings: SSHSettings, host: str, port: int, kh) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.kh = kh
        self.verdict: str | None = None  # "changed" | "unknown" | "tofu-error: ..."
        self.known_types: list[str] = []  # key types known_hosts has for the host
        self.offered_type: str | None = None

    def validate(self, host: str, addr: str, port: int, key) -> bool:
        # only called by asyncssh for a key that is NOT among the trusted keys for this host
        self.offered_type = key.algorithm.decode()
        if _has_entries(self.kh, host, addr, port):
            self.verdict = "changed"
            return False
        if not self.settings.accept_new_host_keys:
            self.verdict = "unknown"
            return False
        try:
            outcome = _append_known_host(self.settings.known_hosts_path, self.host, addr, self.port, key)
        except OSError as e:
            self.verdict = f"tofu-error: cannot update {self.settings.known_hosts_path}: {e.strerror or e}"
            return False
        if outcome == "changed":  # another scan trusted a different key meanwhile
            self.verdict = "changed"
            return False
        return True


def _client_factory(policy: _HostKeyPolicy):
    import asyncssh

    class _Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host, addr, port, key):  # noqa: D401 - asyncssh callback
            return policy.validate(host, addr, port, key)

    return _Client


def _explain_connect_error(
    e: BaseException, s: SSHSettings, host: str, policy: _HostKeyPolicy, known_before: bool
) -> str:
    import asyncssh

    if isinstance(e, asyncio.TimeoutError):
        return f"timed out after {s.connect_timeout:g}s connecting"
    if isinstance(e, asyncssh.HostKeyNotVerifiable):
        if policy.verdict == "changed":
            if policy.known_types and policy.offered_type not in policy.known_types:
                return (
                    f"host key for {host} CHANGED (the server offers none of the key types known_hosts has "
                    f"for it: {', '.join(policy.known_types)}; possible man-in-the-middle); fix known_hosts"
                )
            return f"host key for {host} CHANGED (possible man-in-the-middle); fix known_hosts"
        if policy.verdict == "unknown":
            return f"host key for {host} not in known_hosts (use --accept-new-host-keys to trust on first use)"
        if policy.verdict and policy.verdict.startswith("tofu-error: "):
            return policy.verdict[len("tofu-error: ") :]
        return f"host key for {host} not trusted: {e.reason}"
    if isinstance(e, asyncssh.PermissionDenied):
        methods = []
        if s.identity_file or s.password is None:
            methods.append("publickey")
        if s.password is not None:
            methods.append("password")
        return f"authentication failed for {s.user} ({','.join(methods)})"
    if isinstance(e, asyncssh.KeyExchangeFailed):
        if known_before and "server host key" in str(e.reason):
            return (
                f"host key for {host} CHANGED (the server offers none of the key types known_hosts has "
                f"for it: {', '.join(policy.known_types)}; possible man-in-the-middle); fix known_hosts"
            )
        return f"SSH key exchange failed: {e.reason}"
    if isinstance(e, asyncssh.ConnectionLost):
        return f"connection closed during the SSH handshake: {e.reason}"
    if isinstance(e, asyncssh.DisconnectError):
        return f"disconnected by the SSH server: {e.reason}"
    if isinstance(e, asyncssh.KeyImportError):
        return f"cannot load identity file {s.identity_file}: {e}"
    if isinstance(e, asyncssh.Error):
        return f"SSH error: {e.reason}"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve {host}: {e.strerror}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError):
        if e.errno == errno.EHOSTUNREACH:
            return "no route to host"
        if e.errno == errno.ENETUNREACH:
            return "network unreachable"
        if e.errno == errno.ETIMEDOUT:
            return f"timed out after {s.connect_timeout:g}s connecting"
        return f"cannot connect: {e.strerror or e}"
    return f"cannot connect: {type(e).__name__}: {e}"


# OpenSSH's PACKET_MAX_SIZE: the most a packet may inflate to, as ssh(1) itself accepts it
MAX_INFLATED_PACKET = 256 << 10
# the most one connection may inflate in all (every packet, across re-keyings): the probe's two streams at their
# bound (MAX_SCRIPT_OUTPUT each) and room for an install step's long log; past it the connection is dropped
MAX_INFLATED_CONNECTION = 512 << 20


@functools.cache
def _bound_decompression() -> None:
    """asyncssh inflates a compressed packet without a limit (a hostile sshd's 243 KB packet became 250 MB in this
    process, and a stream of them the whole event loop's CPU): its zlib decompressor is replaced by one that gives up
    past MAX_INFLATED_PACKET in a packet or MAX_INFLATED_CONNECTION in a connection (SSH_MSG_IGNORE packets count:
    they are no channel's output, so no output bound sees them), and asyncssh then drops that connection
    ("Decompression failed"). The budget is the connection's, not the decompressor's: asyncssh makes a new one at
    each key exchange, which the server may start at will; the connection is the caller of get_decompressor (a
    frame up: asyncssh's own code, checked by tests/test_roundtrips.py with the private table it patches,
    compression._cmp_decompressors)."""
    import sys
    import weakref
    import zlib

    from asyncssh import compression
    from asyncssh.connection import SSHConnection

    spent: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    class Bounded(compression.Decompressor):
        def __init__(self) -> None:
            self._d = zlib.decompressobj()
            self._budget: list[int] = [MAX_INFLATED_CONNECTION]  # this decompressor's own, if no connection is found
            f = sys._getframe(1)
            for _ in range(4):
                if f is None:
                    break
                conn = f.f_locals.get("self")
                if isinstance(conn, SSHConnection):
                    self._budget = spent.setdefault(conn, [MAX_INFLATED_CONNECTION])
                    break
                f = f.f_back

        def decompress(self, data: bytes) -> bytes | None:
            try:
                out = self._d.decompress(data, MAX_INFLATED_PACKET + 1)
            except zlib.error:
                return None
            self._budget[0] -= len(out)
            if len(out) > MAX_INFLATED_PACKET or self._d.unconsumed_tail or self._budget[0] < 0:
                return None
            return out

    class Small(compression.Compressor):
        """What bkdoctor sends (a script of ~20 KB, on a site's LAN) is worth no deflating: level 0 (stored blocks,
        a copy: 0.01 ms for the probe where level 1 with the least memory took 0.75 ms, ~20 calls a host, the
        control machine's CPU at 300 hosts), a 1 KiB window, the least memory (no 256 KB deflate state per connection,
        zlib's default, at 32 connections at once). Any inflater reads such a stream; what sshd sends is deflated."""

        def __init__(self) -> None:
            self._c = zlib.compressobj(0, zlib.DEFLATED, 10, 1)

        def compress(self, data: bytes) -> bytes | None:
            try:
                return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
            except zlib.error:
                return None

    for alg in (b"zlib@openssh.com", b"zlib"):  # plain zlib is not offered (below); bounded all the same
        compression._cmp_decompressors[alg] = Bounded
        compression._cmp_compressors[alg] = Small


def _lost_reason(e: BaseException) -> str:
    """Why a connection dropped, said so an operator can act on it."""
    reason = getattr(e, "reason", None) or str(e)
    if reason == "Decompression failed":  # _bound_decompression refused to inflate more
        return (
            f"the host sent compressed data that inflates past {MAX_INFLATED_PACKET >> 10} KiB in a packet or "
            f"{MAX_INFLATED_CONNECTION >> 20} MiB in the connection (a broken or hostile sshd): connection dropped"
        )
    return reason


# AES-GCM first (issue 16): asyncssh's default, chacha20-poly1305, runs per packet in Python (two ChaCha20 contexts
# built and a Poly1305 tag: ~40 us a packet, ~100 packets a probe, ~4-5 ms of the control machine's CPU a host, in a
# cProfile of engine.scan at 50 test hosts; the README quotes the fleet bench instead),
# where AES-GCM is one AEAD call a packet; sshd runs it on AES-NI. Both are AEAD modes every OpenSSH since 6.2 offers
# (CentOS 7's 7.4 does), and GCM is outside the Terrapin prefix-truncation attack (CVE-2023-48795) that chacha20-poly1305
# needs strict key exchange against. The rest of asyncssh's list follows, for a server whose `Ciphers` allows no GCM.
_PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@functools.cache
def _encryption_algs() -> tuple[str, ...]:
    from asyncssh.encryption import get_default_encryption_algs

    rest = [a.decode() for a in get_default_encryption_algs()]
    return tuple([a for a in _PREFERRED_CIPHERS if a in rest] + [a for a in rest if a not in _PREFERRED_CIPHERS])


async def _connect(host: str, port: int, user: str, s: SSHSettings, tunnel=None, compress: bool = True):
    import asyncssh

    _bound_decompression()

    kh = _read_known_hosts(s.known_hosts_path)
    policy = _HostKeyPolicy(s, host, port, kh)
    known_before = _has_entries(kh, host, _ip_or_empty(host), port)
    opts: dict[str, Any] = {
        "port": port,
        "username": user,
        "known_hosts": kh,  # an object, never b"" (which would make asyncssh fall back to the default file)
        "client_factory": _client_factory(policy),
        "connect_timeout": s.connect_timeout,  # asyncssh bounds TCP connect + handshake + auth with it
        "config": [],  # ignore ~/.ssh/config: the inventory decides
        "x509_trusted_certs": None,
        # the session's bytes compressed by sshd itself (zlib after authentication, as `ssh -C` asks): the probe's
        # output of a busy host (mountinfo, iptables, processes) shrinks ~5-10x without a `gzip` process and its
        # subshell on the host (issue 16: those were 2 of the probe's processes). A server that refuses compression
        # (`Compression no`) is spoken to plainly.
        # A jump host's connection carries the next one's bytes, encrypted already: nothing for zlib there.
        # Not plain `zlib` (from the first packet, before authentication; OpenSSH servers offer it no more since 7.4).
        "compression_algs": ["zlib@openssh.com", "none"] if compress else ["none"],
        "encryption_algs": list(_encryption_algs()),
    }
    # Host key algorithms: the types known_hosts has for this host first, then every other default type.
    # The client's order decides, so a server that has a known type is verified with it; one that has
    # none is still negotiated with (instead of a bare "connection reset") and then refused as CHANGED.
    m = kh.match(host, _ip_or_empty(host), None if port == 22 else port)
    policy.known_types = sorted({k.algorithm.decode() for k in m[0]})
    if m[0] and not m[1]:  # plain keys, no @cert-authority: asyncssh's defaults are right for CAs
        from asyncssh.public_key import get_default_public_key_algs

        first: list[bytes] = []
        for k in m[0]:
            first += [a for a in k.sig_algorithms if a not in first]
        opts["server_host_key_algs"] = [
            a.decode() for a in first + [a for a in get_default_public_key_algs() if a not in first]
        ]
    if s.identity_file:
        if not os.path.exists(s.identity_file):
            raise TransportError(f"identity file {s.identity_file} not found")
        opts["client_keys"] = [s.identity_file]
        opts["agent_path"] = None
    if s.password is not None:
        opts["password"] = s.password
    if tunnel is not None:
        opts["tunnel"] = tunnel
    try:
        # the outer bound also covers anything asyncssh does before its own timer starts
        return await asyncio.wait_for(asyncssh.connect(host, **opts), s.connect_timeout + 1)
    except TransportError:
        raise
    except (OSError, asyncio.TimeoutError, asyncssh.Error, ValueError) as e:
        raise TransportError(_explain_connect_error(e, s, host, policy, known_before)) from None
    except Exception as e:  # anything else asyncssh may raise: still one host down, not a crashed scan
        raise TransportError(f"cannot connect: {type(e).__name__}: {e}") from None


# ------------------------------------------------------------------ HTTP over a channel


def _parse_http(raw: bytes, what: str) -> Any:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise TransportError(f"{what}: incomplete HTTP response ({len(raw)} bytes)")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/\d\.\d (\d{3})", lines[0])
    if not m:
        raise TransportError(f"{what}: not an HTTP response: {lines[0][:80]!r}")
    status = int(m.group(1))
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out, pos = bytearray(), 0
        while True:
            eol = body.find(b"\r\n", pos)
            if eol < 0:
                raise TransportError(f"{what}: truncated chunked body")
            try:
                size = int(body[pos:eol].split(b";")[0], 16)
            except ValueError:
                raise TransportError(f"{what}: bad chunk size {body[pos:eol][:20]!r}") from None
            if size == 0:
                break
            out += body[eol + 2 : eol + 2 + size]
            if len(body) < eol + 2 + size:
                raise TransportError(f"{what}: truncated chunked body")
            pos = eol + 2 + size + 2
        body = bytes(out)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if len(body) < n:
            raise TransportError(f"{what}: truncated body ({len(body)} of {n} bytes)")
        body = body[:n]
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
        if status < 400:
            raise TransportError(f"{what}: response is not JSON: {body[:80]!r}") from None
    if status >= 400:
        msg = data.get("message") if isinstance(data, dict) else body[:200].decode("utf-8", "replace")
        raise TransportError(f"{what}: HTTP {status}: {msg}")
    return data


# a status line of an HTTP/1.x reply, whole (curl's %{http_code} comes from a whole line only). As curl 7.88 reads it
# (http.c: sscanf " HTTP/%1d.%1d%c%3d%c"): a space after the version, blanks before the code, no fourth digit; at most
# this many bytes of the reply are read for the final one
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [ \t]*([0-9]{3})(?![0-9])[^\r\n]*\r?\n")
# the reply is parsed again from its start at each read: its size and the number of interim responses are bounded so
# that a host trickling bytes (or endless `100 Continue`s) costs this side little (a registry sends 0 or 1 interim)
MAX_STATUS_BYTES = 8192
MAX_INTERIM = 8


def final_status(buf: bytes) -> tuple[int | None, bool, int | None]:
    """The status of the final response at the start of `buf` (1xx interim responses, as `100 Continue`, skipped, as
    curl does), whether more bytes could still give one ((None, True) so far nothing; (None, False) not HTTP/1.x),
    and the last interim status read (curl prints that one when the reply ends there)."""
    pos, interim, n_interim = 0, None, 0
    while True:
        if not buf.startswith(b"HTTP/"[: len(buf) - pos], pos) and not buf.startswith(b"HTTP/", pos):
            return None, False, interim  # curl 7.66 and later: "Received HTTP/0.9 when not allowed"
        eol = buf.find(b"\n", pos)
        if eol < 0:
            return None, True, interim
        m = _STATUS_LINE.fullmatch(buf, pos, eol + 1)
        if not m:
            return None, False, interim
        code = int(m.group(1))
        if not 100 <= code < 200:
            return code, False, interim
        interim = code
        n_interim += 1
        if n_interim > MAX_INTERIM:  # not a registry: read as a reply that is not HTTP
            return None, False, interim
        ends = [i for i in (buf.find(b"\n\r\n", eol), buf.find(b"\n\n", eol)) if i >= 0]
        if not ends:
            return None, True, interim
        i = min(ends)
        pos = i + (3 if buf.startswith(b"\n\r\n", i) else 2)
        if pos >= len(buf):
            return None, True, interim


# ------------------------------------------------------------------ the transport


class SSHTransport(Transport):
    """One SSH connection per host (opened on first use, reused by every call, closed by `close()`).

    `run_script` feeds the script on stdin of `/bin/sh -s` (or `sudo -n /bin/sh -s` with `become` and a
    non-root user) in one exec channel. `docker_api` opens a direct-streamlocal channel over the same
    connection to the remote unix socket and speaks HTTP/1.1 (one channel per GET, `Connection: close`).
    The socket is opened by sshd *as the login user*: with `become` the probe runs as root but the Docker
    API still needs the login user to have access to the socket (e.g. be in the `docker` group).
    """

    def __init__(self, address: str, settings: SSHSettings | None = None) -> None:
        self.address = address
        self.settings = settings or SSHSettings()
        self._conn = None
        self._jumps: list[Any] = []
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<SSHTransport {self.settings.user}@{self.address}:{self.settings.port}>"

    async def _connection(self):
        if self._closed:
            raise TransportError("transport closed")
        async with self._lock:
            if self._conn is None:
                s = self.settings
                hops = [h.strip() for h in (s.proxy_jump or "").split(",") if h.strip()]
                # every hop is checked against the same known_hosts with the same policy, and uses the
                # same credentials (identity file, password) as the target
                for i, spec in enumerate(hops):
                    if i < len(self._jumps):
                        continue  # connected by an earlier attempt
                    ju, jh, jp = _parse_jump(spec, s.user)
                    try:
                        self._jumps.append(
                            await _connect(
                                jh, jp, ju, s, tunnel=self._jumps[-1] if self._jumps else None, compress=False
                            )
                        )
                    except TransportError as e:
                        raise TransportError(f"jump host {jh}: {e}") from None
                self._conn = await _connect(
                    self.address, s.port, s.user, s, tunnel=self._jumps[-1] if self._jumps else None
                )
            return self._conn

    def _command(self) -> str:
        s = self.settings
        if s.become and s.user != "root":
            return "sudo -n /bin/sh -s"
        return "/bin/sh -s"

    folds_clock = True  # run_script(clock=True) samples the host clock in the same session

    async def run_script(
        self, script: str, timeout: float, clock: bool = False, keep_tail: bool = False
    ) -> CommandResult:
        """Run `script` on stdin of a remote POSIX sh. The timeout is the smaller of `timeout` and the
        host's `command_timeout`.

        With `clock`, the preamble's line also carries the host's `date -u +%s.%N`, read the moment it arrives:
        `result.clock` is the offset against this machine's clock (midpoint of the round trip from opening the
        session to that line) and the round trip, or the unparsable text.

        On timeout the remote command is killed, best effort: a one-line preamble reports the shell's
        process group on stderr (stripped from the result), and a second exec channel on the same
        connection runs `kill -9 -<pgid>` (through `sudo -n` with `become`). sshd made the session a
        process group of its own, so only the probe's own processes are hit."""
        import asyncssh

        conn = await self._connection()
        limit = min(t for t in (timeout, self.settings.command_timeout) if t)
        proc = None
        pgid: int | None = None
        data = ((_PGID_CLOCK_PREAMBLE if clock else _PGID_PREAMBLE) + READ_AHEAD + script).encode()
        sample: dict[str, Any] | None = None

        async def go():
            nonlocal proc, pgid, sample
            t0 = time.time()
            proc = await conn.create_process(self._command(), encoding=None)
            proc.stdin.write(data)
            proc.stdin.write_eof()
            # stderr up to the preamble's line (sudo may warn before the shell starts): nothing reaches
            # stdout before it, so not draining stdout meanwhile cannot stall the channel
            before = b""
            while True:
                line = await proc.stderr.readline()
                m = _PGID_LINE.fullmatch(line)
                if m:
                    pgid = int(m.group(1))
                    if clock:
                        t1 = time.time()
                        text = (m.group(2) or b"").decode("ascii", "replace")
                        try:
                            sample = {"offset_s": float(text) - (t0 + t1) / 2, "rtt_s": t1 - t0}
                        except ValueError:
                            sample = {"error": text[:80]}
                    break
                before += line
                if not line:
                    break
                if len(before) > MAX_PREAMBLE_STDERR:  # a login script or sudo talking without end
                    raise TransportError(
                        f"more than {MAX_PREAMBLE_STDERR >> 10} KiB on stderr before the shell started"
                    )
            out, err = await asyncio.gather(
                read_bounded(proc.stdout, MAX_SCRIPT_OUTPUT, "the script's output", keep_tail),
                read_bounded(proc.stderr, MAX_SCRIPT_OUTPUT, "the script's error output", keep_tail),
            )
            await proc.wait()
            return out, before + err

        async def stop() -> None:
            if proc is not None:
                try:
                    proc.send_signal("KILL")
                except (OSError, asyncssh.Error):
                    pass
                proc.close()
            if pgid is not None:
                await self._kill_group(conn, pgid)

        try:
            out, err = await asyncio.wait_for(go(), limit)
        except asyncio.TimeoutError:
            await stop()
            raise TransportError(f"command timed out after {limit:g}s") from None
        except TransportError:  # more output than any probe prints: stopped, the memory kept bounded
            await stop()
            raise
        except asyncssh.ChannelOpenError as e:
            raise TransportError(f"cannot open an SSH session channel: {e.reason}") from None
        except (asyncssh.Error, OSError) as e:
            raise TransportError(f"SSH connection failed while running the probe: {_lost_reason(e)}") from None
        rc = proc.exit_status
        if rc is None or rc < 0:  # killed by a signal (or no status at all): shell-style 128+N
            sig = proc.exit_signal
            num = getattr(signal, "SIG" + sig[0], None) if sig else None
            rc = 128 + int(num) if num is not None else 255
        out = out or b""
        err = err or b""
        if self._command().startswith("sudo") and rc != 0 and not out.strip():
            self._raise_sudo_error(rc, err)
        return CommandResult(rc, out, err, clock=sample)

    async def _kill_group(self, conn, pgid: int) -> None:
        if pgid <= 1:
            return
        kill = f"kill -9 -{pgid} 2>/dev/null || kill -9 {pgid} 2>/dev/null; true"  # dash: no "--"
        if self._command().startswith("sudo"):
            kill = f"sudo -n /bin/sh -c '{kill}'"
        try:
            await asyncio.wait_for(conn.run(kill, check=False, encoding=None), _CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, OSError, Exception):  # best effort only
            pass

    def _raise_sudo_error(self, rc: int, err: bytes) -> None:
        text = err.decode("utf-8", "replace")
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("sudo:") and "unable to resolve host" not in line:
                raise TransportError(line[:200])
        if rc == 127:
            raise TransportError(f"sudo is not installed on the host (become: true for user {self.settings.user})")

    async def docker_api(self, socket_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
        conn = await self._connection()
        try:
            return await asyncio.wait_for(self._api_get_all(conn, socket_path, paths), timeout)
        except asyncio.TimeoutError:
            raise TransportError(f"docker API {socket_path}: timed out after {timeout:g}s") from None

    async def _api_get_all(self, conn, socket_path: str, paths: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in paths:
            out[p] = await self._api_get(conn, socket_path, p)
        return out

    async def _api_get(self, conn, socket_path: str, path: str) -> Any:
        import asyncssh

        what = f"docker API {socket_path} GET {path}"
        try:
            reader, writer = await conn.open_unix_connection(socket_path)
        except asyncssh.ChannelOpenError as e:
            raise TransportError(
                f"docker API {socket_path}: cannot open the socket over SSH ({e.reason}): it is missing, "
                f"{self.settings.user} may not access it, or sshd forbids stream-local forwarding"
            ) from None
        except (asyncssh.Error, OSError) as e:
            raise TransportError(f"docker API {socket_path}: {getattr(e, 'reason', None) or e}") from None
        try:
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bkdoctor\r\n"
                    "Accept: application/json\r\nConnection: close\r\n\r\n"
                ).encode()
            )
            # no write_eof(): Go's HTTP server treats a half-close as the client going away
            buf = bytearray()
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_API_RESPONSE:
                    raise TransportError(f"{what}: response larger than {MAX_API_RESPONSE >> 20} MiB")
        except (asyncssh.Error, OSError) as e:
            raise TransportError(f"{what}: {getattr(e, 'reason', None) or e}") from None
        finally:
            writer.close()
        return _parse_http(bytes(buf), what)

    @property
    def forwards_tcp(self) -> bool:  # type: ignore[override]
        return self.settings.forward_tcp

    async def server_address(self) -> str:
        """The address this connection reached the host's sshd at, as the host's SSH_CONNECTION shows it ('' where it
        is not known here: through a jump host to a name, which the last hop resolved). Connects if need be."""
        import ipaddress

        conn = await self._connection()
        if self._jumps:
            addr = self.address
        else:
            peer = conn.get_extra_info("peername")
            addr = str(peer[0]) if peer else ""
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return ""
        return str(getattr(ip, "ipv4_mapped", None) or ip)

    async def http_status(self, address: str, port: int, host: str, path: str, timeout: float) -> HTTPStatus | None:
        """GET http://`host``path` from the host: its sshd connects to `address`:`port` (a direct-tcpip channel on
        this connection, opened as the login user; no command runs there) and this side reads the reply up to its
        final status line. `address` is numeric (the host's own resolution, from its probe): sshd looks up nothing,
        so no slow DNS can hold the connection. Within `timeout` in all. None: no connection came (sshd's connect()
        failed, or did not finish in time); NotForwarded: sshd refused the channel in a way that does not say why
        for sure (code 1, "administratively prohibited"); TransportError: this SSH connection is gone."""
        import asyncssh

        conn = await self._connection()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bkdoctor\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        opened = False

        def gone() -> bool:
            return conn.is_closed() or self._closed

        async def go() -> HTTPStatus | None:
            nonlocal opened
            try:
                reader, writer = await conn.open_connection(address, port)
            except asyncssh.ChannelOpenError as e:
                if gone():
                    raise TransportError(f"SSH connection lost: {e.reason}") from None
                if e.code == asyncssh.OPEN_CONNECT_FAILED:  # sshd's connect() failed
                    return None
                raise NotForwarded(f"sshd did not open {address}:{port} ({e.reason or e.code})") from None
            opened = True
            buf = b""
            try:
                writer.write(request)
                while True:
                    code, more, interim = final_status(buf)
                    if code is not None:
                        return HTTPStatus(code, address, 0)
                    if not more or len(buf) >= MAX_STATUS_BYTES:
                        return HTTPStatus(interim or 0, address, 1)  # not HTTP/1.x
                    chunk = await reader.read(MAX_STATUS_BYTES - len(buf))
                    if not chunk:
                        if gone():  # the end of the channel was the end of the SSH connection
                            raise TransportError("SSH connection lost while reading the reply")
                        # curl: "Empty reply from server", or a reply cut short (after a 1xx curl prints that code)
                        return HTTPStatus(interim or 0, address, 52)
                    buf += chunk
            except (asyncssh.Error, OSError) as e:
                if gone():
                    raise TransportError(f"SSH connection lost: {getattr(e, 'reason', None) or e}") from None
                return HTTPStatus(0, address, 56)  # curl: "Failure when receiving data from the peer"
            finally:
                writer.close()

        try:
            return await asyncio.wait_for(go(), timeout)
        except asyncio.TimeoutError:
            # a channel whose open sshd confirms after this stays open, idle, until the transport closes: the scan of
            # the host closes it right after its last probe (asyncssh gives no handle to close it earlier)
            if opened:
                return HTTPStatus(0, address, 28)  # connected, no status within the time: curl's --max-time
            return None
        except asyncssh.Error as e:
            if gone():
                raise TransportError(f"SSH connection lost: {getattr(e, 'reason', None) or e}") from None
            raise NotForwarded(f"{address}:{port}: {getattr(e, 'reason', None) or e}") from None
        except OSError as e:
            raise TransportError(f"SSH connection failed: {e}") from None

    async def close(self) -> None:
        self._closed = True
        for conn in [self._conn, *reversed(self._jumps)]:
            if conn is None:
                continue
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), _CLOSE_TIMEOUT)
            except (asyncio.TimeoutError, Exception):  # closing must never fail a scan
                pass
        self._conn = None
        self._jumps = []
