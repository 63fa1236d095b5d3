"""Files bkdoctor writes for the operator (reports, the fix outcome, manifests, exported playbooks).

- Checked before the work: `check_output_path` refuses a directory, a missing directory, a directory where no
  file can be created (read-only, no permission), a block device (a disk: a link to it at the report's path), so a
  typo never costs a whole fleet scan (exit 2, one line). /dev/null, /dev/stdout and fifos are written in place.
- Written atomically (a temp file in the same directory, fsync, rename: readers never see half a file).
- Modes: a new file gets what `open()` would give it (0666 minus the umask: `umask 077` gives 0600), or
  `new_mode` (known_hosts: 0600); a file that exists keeps its mode, and its owner where we may set it. A caller
  that writes a secret passes `mode`, which holds whether the file existed or not.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

from bkdoctor.model import BadInput, T


def current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # no /proc: read it the old way (put back at once)
    os.umask(old)
    return old


def check_output_path(path: str, what: str = "") -> None:
    """Raise BadInput (one line) unless `path` can be written: not a directory, its directory exists and takes a
    new file. Creates nothing that stays."""
    label = f"{what} {path}".strip()
    p = Path(path)
    if p.is_dir():
        raise BadInput(
            T(
                f"无法写入 {label}: 它是目录（请给出文件名）",
                f"cannot write {label}: it is a directory (give a file name)",
            )
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise BadInput(
            T(
                f"无法写入 {label}: 目录 {parent.resolve()} 不存在",
                f"cannot write {label}: directory {parent.resolve()} does not exist",
            )
        )
    if not parent.is_dir():
        raise BadInput(T(f"无法写入 {label}: {parent} 不是目录", f"cannot write {label}: {parent} is not a directory"))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise BadInput(T(f"无法写入 {label}: {e.strerror}", f"cannot write {label}: {e.strerror}")) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        _not_a_disk(st, label)
        if not os.access(p, os.W_OK):
            raise BadInput(T(f"无法写入 {label}: 没有写权限", f"cannot write {label}: not writable"))
        return  # a device or fifo (/dev/null, /dev/stdout) is written in place
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=str(parent))
    except OSError as e:
        raise BadInput(
            T(
                f"无法写入 {label}: 无法在 {parent.resolve()} 中创建文件: {e.strerror}",
                f"cannot write {label}: cannot create a file in {parent.resolve()}: {e.strerror}",
            )
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_atomic(
    path: str, text: str | bytes | Iterable[str], mode: int | None = None, new_mode: int | None = None
) -> None:
    """Write a file so that readers never see half of it (temp file in the same dir, fsync, rename).

    `text` may be the pieces of a text (e.g. `jsonreport.iter_json`): they are written as they come, so a big report
    is never held whole, the same bytes as their join. A target that exists and is not a regular file (/dev/null, a
    fifo, /dev/stdout) is written in place: renaming over it would replace a device node with a file. A block device
    is refused (a disk)."""
    data = _encode(text) if isinstance(text, str) else text
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        _not_a_disk(st, path)
        with open(p, "wb") as fh:
            _write(fh, data)
        return
    if mode is None:
        if st is not None:
            mode = stat.S_IMODE(st.st_mode)
        else:
            mode = new_mode if new_mode is not None else 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=str(p.parent) if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fh.fileno(), st.st_uid, st.st_gid)
                except PermissionError:
                    pass  # not ours to give away: the file becomes the writer's, with the same mode
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _not_a_disk(st: os.stat_result, label: str) -> None:
    """Written in place: a character device or a fifo (/dev/null, /dev/stdout, a pipe). A block device (a disk, also
    through a link at the report's path) would have the report written over it."""
    if stat.S_ISBLK(st.st_mode):
        raise BadInput(
            T(
                f"无法写入 {label}: 它是块设备（磁盘），不是文件",
                f"cannot write {label}: it is a block device (a disk), not a file",
            )
        )


def _encode(text: str) -> bytes:
    # a lone surrogate (from a JSON "\ud800" escape) cannot be UTF-8: replaced, the last line of defence (inputs
    # refuse them already). A str holds no surrogate pairs, so pieces encoded one by one give the bytes of the whole.
    return text.encode("utf-8", "replace")


_CHUNK = 1 << 16  # characters gathered before one encode and write (pieces of a JSON report are a few bytes each)


def _write(fh: Any, data: bytes | Iterable[str]) -> None:
    if isinstance(data, bytes):
        fh.write(data)
        return
    buf: list[str] = []
    size = 0
    for piece in data:
        buf.append(piece)
        size += len(piece)
        if size >= _CHUNK:
            fh.write(_encode("".join(buf)))
            buf, size = [], 0
    if buf:
        fh.write(_encode("".join(buf)))
