"""Values that enter a shell command, as shell words: everything is shlex.quote'd; the one thing the target's
shell must still expand, a leading `~` of a path meant for another machine, is turned into `"$HOME"` (or
`~user`, checked to be a plain user name) followed by the quoted rest. A path is never expanded here for a
remote target: `~` means the home of the user bkdoctor logs in as there."""

from __future__ import annotations

import re
import shlex

from bkdoctor.model import BadInput, T

_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def target_path(path: str) -> str:
    """A shell word for `path` on the machine the command runs on (`~` expanded there, the rest quoted)."""
    if "\0" in path:
        raise BadInput(T(f"拒绝含 NUL 字节的路径: {path!r}", f"refusing a path with a NUL byte: {path!r}"))
    if not path.startswith("~"):
        return shlex.quote(path)
    head, sep, rest = path[1:].partition("/")
    if head == "":
        home = '"$HOME"'
    elif _USER.fullmatch(head):
        home = "~" + head  # unquoted: the target's shell looks that user up
    else:
        raise BadInput(
            T(f"拒绝 {path!r}: {'~' + head!r} 不是用户名", f"refusing {path!r}: {'~' + head!r} is not a user name")
        )
    return home + ("/" + shlex.quote(rest) if rest else "")
