"""The kubelet binaries seen by earlier scans, so that an unchanged one is not run again (issue 16).

`kubelet --version` (a Go binary's start-up, ~70-110 ms of a node's CPU) was the largest single cost of a node's
probe, and the binary almost never changes between two scans. The probe's kubelet_version section prints the
binary's identity (path, device, inode, size, mtime, ctime: facts/host.py) and skips `--version` when that identity
is the one passed in BKD_KUBELET_SEEN. This module keeps, per host, the last identity and the output `--version`
gave with it, in `$XDG_CACHE_HOME/bkdoctor/kubelet.json` (default ~/.cache/bkdoctor): passes the identity to the next
probe, puts the kept output back after the probe's "not run" line (so the fact parses a version as before, with the
time of the scan it came from), and records what ran.

It is a cache: a missing, unreadable, corrupt or oversized file, or one another user owns or could write, is no cache
(kubelet runs; nothing is said), and a good one replaces it at the end of the scan. What it cannot follow is not
kept: a binary under MIN_SIZE (a wrapper script prints what it execs), and the probe gives no identity for a
symbolic link or a path with a newline; an entry is used for MAX_AGE at most; only the output's version line is kept,
masked. The file is 0600 in a 0700 directory, read at most MAX_BYTES, written
once a scan, atomically (a temp file and a rename in the same directory), never through a symbolic link (neither the
directory nor the file: opened relative to the directory's descriptor, O_NOFOLLOW); entries are pruned to the newest
MAX_ENTRIES that fit MAX_BYTES. Two scans at the same time: each writes its own hosts' entries over what the file
holds when it writes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from bkdoctor.facts.host import KUBELET_CACHED, KUBELET_NOT_RUN, kubelet_output
from bkdoctor.facts.probe import Section
from bkdoctor.safe.secrets import mask_text

log = logging.getLogger("bkdoctor")

SECTION = "kubelet_version"
PARAM = "BKD_KUBELET_SEEN"
FILE_NAME = "kubelet.json"
MAX_BYTES = 1 << 20  # ~250 bytes an entry: a few thousand hosts
MAX_ENTRIES = 10_000
MAX_FIELD = 1024  # an identity or an output longer than this is not kept (kubelet prints one short line)
# a file smaller than this is not remembered: a wrapper script that execs another binary prints that binary's version,
# which the script's own identity does not follow (a compiled kubelet is ~100 MB)
MIN_SIZE = 1 << 20
# an entry older than this is not used (kubelet runs again): any change the identity cannot see lasts a day at most
MAX_AGE = dt.timedelta(hours=24)
_VERSION = re.compile(rb"v?\d+\.\d+\.\d+")
_FORMAT = 1


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bkdoctor"


def host_key(host: Any, inv: Any) -> str:
    """What identifies a host to bkdoctor: its name, address, and the SSH port and user the scan reaches it with."""
    ssh = {**(getattr(inv, "ssh", None) or {}), **(host.ssh or {})}
    return json.dumps([host.name, host.address, ssh.get("port", 22), ssh.get("user", "root")])


def _entries(data: bytes) -> dict[str, tuple[str, str, str]] | None:
    """The file's entries: key -> (identity, output, UTC time of the scan that ran kubelet); None: not a cache (an
    entry of another shape is left out)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] != _FORMAT:
        return None
    if not isinstance(doc.get("hosts"), dict):
        return None
    out = {}
    for k, e in doc["hosts"].items():
        if (
            isinstance(e, list)
            and len(e) == 3
            and all(isinstance(x, str) and 0 < len(x) <= MAX_FIELD for x in e)
            and len(k) <= MAX_FIELD
        ):
            out[k] = (e[0], e[1], e[2])
    return out


def _big(ident: str) -> bool:
    """Whether the identity (`path dev ino size %y %z`: each time three words) names a file of MIN_SIZE or more."""
    parts = ident.rsplit(" ", 9)
    return len(parts) == 10 and parts[3].isdigit() and int(parts[3]) >= MIN_SIZE


class KubeletCache:
    """One scan's view of the cache file: `seen(key)` for the probe's parameter, `settle(key, section)` after it,
    `save()` once at the end."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, now: dt.datetime | None = None) -> None:
        self.dir = Path(directory) if directory is not None else default_dir()
        self.entries = self._read()
        self.changed: dict[str, tuple[str, str, str] | None] = {}  # this scan's: key -> entry, None: dropped
        self.replace = self.entries is None  # a file that is not a cache is replaced, even with nothing new
        self.entries = self.entries or {}
        self.at = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- the file -----------------------------------------------------------------------------------------------
    def _open_dir(self, create: bool) -> int | None:
        """The cache directory's descriptor (never a symbolic link), made 0700 (created so when `create`)."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.dir, flags)
        except FileNotFoundError:
            if not create:
                return None
            try:
                self.dir.parent.mkdir(parents=True, exist_ok=True)
                os.mkdir(self.dir, 0o700)
            except FileExistsError:
                pass
            fd = os.open(self.dir, flags)
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise PermissionError(f"{self.dir}: not a directory of this user")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
        return fd

    def _read(self) -> dict[str, tuple[str, str, str]] | None:
        """The entries on disk; {} when there is no file; None when there is one that is not a cache."""
        try:
            dfd = self._open_dir(create=False)
        except OSError:
            return None
        if dfd is None:
            return {}
        try:
            return self._read_in(dfd)
        finally:
            os.close(dfd)

    @staticmethod
    def _read_in(dfd: int) -> dict[str, tuple[str, str, str]] | None:
        try:
            # O_NONBLOCK: a fifo put there does not hold the scan (it is not a regular file: refused below)
            fd = os.open(FILE_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return {}
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                return None
            # ours and writable by us alone: a file another user could have written is no cache (it could name any
            # identity with any version)
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            chunks, n = [], 0
            while n <= MAX_BYTES:
                b = os.read(fd, MAX_BYTES + 1 - n)
                if not b:
                    break
                chunks.append(b)
                n += len(b)
            if n > MAX_BYTES:  # grew while read
                return None
        except OSError:
            return None
        finally:
            os.close(fd)
        return _entries(b"".join(chunks))

    def save(self) -> None:
        """Write the entries (this scan's over what the file holds now), newest first up to the bounds; errors are
        logged at debug level only: a cache."""
        if not self.changed and not self.replace:
            return
        try:
            dfd = self._open_dir(create=True)
            assert dfd is not None
        except OSError as e:
            log.debug("kubelet cache %s not written: %s", self.dir, e)
            return
        try:
            entries = self._read_in(dfd) or {}
            for k, e in self.changed.items():
                if e is None:
                    entries.pop(k, None)
                else:
                    entries[k] = e
            self._write(dfd, entries)
        except OSError as e:
            log.debug("kubelet cache %s not written: %s", self.dir, e)
        finally:
            os.close(dfd)

    @staticmethod
    def _write(dfd: int, entries: dict[str, tuple[str, str, str]]) -> None:
        head, tail = b'{"v":%d,"hosts":{' % _FORMAT, b"}}\n"
        parts: list[bytes] = []
        size = len(head) + len(tail)
        for k, e in sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:MAX_ENTRIES]:
            p = f"{json.dumps(k)}:{json.dumps(list(e))}".encode()
            size += len(p) + (2 if parts else 0)  # ",\n" between two
            if size > MAX_BYTES:
                break
            parts.append(p)
        data = head + b",\n".join(parts) + tail
        tmp = f".{FILE_NAME}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, FILE_NAME, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise

    # -- one host's probe ------------------------------------------------------------------------------------------
    key = staticmethod(host_key)

    def seen(self, key: str) -> str:
        """BKD_KUBELET_SEEN for this host: the identity whose output is kept ('' : none, kubelet runs)."""
        e = self.entries.get(key)
        if not e:
            return ""
        try:
            at = dt.datetime.strptime(e[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return ""
        now = dt.datetime.strptime(self.at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        return e[0] if dt.timedelta(0) <= now - at <= MAX_AGE else ""

    def settle(self, key: str, sec: Section, seen: str) -> Section:
        """The section as the fact reads it: the "not run" line of a binary whose identity is `seen` gets the kept
        output after it (and the time of its scan); a run's (identity, output) is recorded, and anything else drops
        the host's entry. A "not run" line without the kept output stays as it is (the fact is then an error)."""
        ident, body = kubelet_output(sec.out)
        line = KUBELET_NOT_RUN.encode() + b"\n"
        if seen and ident == seen and body == line:
            e = self.entries.get(key)
            if e is not None and e[0] == seen:
                head = sec.out[: len(sec.out) - len(body)]
                filled = head + f"{KUBELET_CACHED}{e[2]}\n".encode() + e[1].encode()
                return Section(sec.name, sec.rc, filled)
            return sec
        old = self.entries.get(key)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        # only the line with the version, masked (kubelet's output comes from the host: a wrapper's `set -x` or a
        # chatty binary could print flags; the file is on the control machine's disk)
        line = next((ln for ln in text.splitlines() if _VERSION.search(ln.encode())), "")
        line = mask_text(line) + "\n" if line else ""
        if ident and sec.rc == 0 and line and _big(ident) and 0 < len(ident) <= MAX_FIELD and len(line) <= MAX_FIELD:
            new = (ident, line, self.at)
            if old != new:
                self.changed[key] = self.entries[key] = new
        elif old is not None:
            self.changed[key] = None
            del self.entries[key]
        return sec
