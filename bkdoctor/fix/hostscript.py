"""The host side of applying a plan: ONE shell script per target, run through the same transport as the scan
(local or SSH), and the parser of what it prints.

The apply script takes a lock (flock), re-checks that each file still has the content the plan was made from
(sha256), backs it up next to itself (`<file>.bak-<timestamp>`), writes a temp file in the same directory, keeps
mode, owner and extended attributes (the SELinux context, `user.*`: `cp --preserve=all`, which does not fail where
the filesystem cannot keep them), syncs and renames. A file that is a symbolic link (/etc/hosts -> hosts.real) is
edited where it points: the backup, the temp file and the rename are in the target's directory, so the link stays a
link; a dangling link is refused, nothing written. If any step fails, the files it already changed are restored
from their backups before it exits. Nothing is written when a check fails. The restore script (after a failed
re-check, and `bkdoctor rollback`) puts a backup back only if the file still has what the fix wrote (through the
link, onto its target, as the apply did).
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

from bkdoctor.fix.plan import CommandChange, FileChange, Plan, sha256_of

APPLY_PRELUDE = r"""set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
changed=""
restore() {
  for fb in $changed; do
    f=${fb%%|*}; b=${fb#*|}
    # said restored only when it was (an immutable file, a full disk): else where its backup is, for a person
    if [ -n "$b" ]; then
      if cp -p --preserve=all "$b" "$f.bkdoctor-restore" && mv -f "$f.bkdoctor-restore" "$f"; then echo "@@RESTORED $f"
      else rm -f "$f.bkdoctor-restore"; echo "@@UNRESTORED $f $b"; fi
    elif rm -f "$f"; then echo "@@RESTORED $f"; else echo "@@UNRESTORED $f"; fi
  done
}
fail() { echo "@@FAIL $*"; restore; exit 1; }
mkdir -p /run/lock 2>/dev/null
if command -v flock >/dev/null 2>&1; then
  exec 9>/run/lock/bkdoctor-fix.lock || fail "cannot open the lock file"
  flock -n 9 || { echo "@@FAIL another bkdoctor fix is running on this host"; exit 75; }
fi
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
"""

THROUGH_LINK = r"""# a symbolic link is written where it points (the link stays a link): $f becomes its target; a dangling link or a
# loop is refused
through_link() {
  [ -L "$f" ] || return 0
  r=$(readlink -f -- "$f" 2>/dev/null) && [ -n "$r" ] && [ -f "$r" ] ||
    fail "$f is a symbolic link to no regular file (dangling or a loop): not writing through it"
  f=$r
}
"""


def _file_step(ch: FileChange, ts: str) -> str:
    p = shlex.quote(ch.path)
    data = base64.b64encode(ch.after).decode()
    # $p: the path as planned (what @@WROTE names, what the journal and rollback know); $f: the file written, its
    # target when it is a symbolic link
    lines = [f"p={p}; f=$p"]
    if ch.before is None:
        lines.append('{ [ -e "$f" ] || [ -L "$f" ]; } && fail "$f appeared since the plan was made"')
        lines.append('d=$(dirname "$f"); mkdir -p "$d" || fail "cannot create $d"')
        lines.append('b=""')
    else:
        lines.append("through_link")
        lines.append('[ -f "$f" ] || fail "$f is gone since the plan was made"')
        lines.append(
            f'[ "$(sha "$f")" = "{sha256_of(ch.before)}" ] || fail "$f changed since the plan was made; nothing written"'
        )
        lines.append(f'b="$f.{ch.backup_suffix}-{ts}"')
        # never over another backup: it may be the only copy of the original
        lines.append('{ [ -e "$b" ] || [ -L "$b" ]; } && fail "backup $b exists already: not overwriting it"')
        lines.append('cp -p --preserve=all "$f" "$b" || fail "cannot back up $f"')
    lines += [
        'changed="$changed $f|$b"',
        # temp files of an earlier run that was killed (SIGKILL cannot be trapped): ours by name, under the lock
        'rm -f "$f".bkdoctor.??????',
        't=$(mktemp "$f.bkdoctor.XXXXXX") || fail "cannot create a temp file next to $f"',
    ]
    if ch.before is not None:
        # a copy first (mode, owner, SELinux context, user.* attributes), then its content replaced in place
        lines.append('cp -p --preserve=all "$f" "$t" || { rm -f "$t"; fail "cannot copy $f to $t"; }')
    lines.append(f'printf "%s" {shlex.quote(data)} | base64 -d > "$t" || {{ rm -f "$t"; fail "cannot write $t"; }}')
    if ch.before is None:
        lines.append(f'chmod {ch.mode:o} "$t"')
    lines += [
        'sync "$t" 2>/dev/null || sync',
        'mv -f "$t" "$f" || { rm -f "$t"; fail "cannot replace $f"; }',
        'echo "@@WROTE $p $b"',
    ]
    return "\n".join(lines)


def written_script(plan: Plan, ts: str) -> str:
    """After an apply whose end this side did not see (the time ran out, the connection dropped): which of the plan's
    files now hold what the fix writes, each with its backup of this run (`<file>.<suffix>-<ts>`), as `@@WROTE` lines
    the journal and `bkdoctor rollback` read. Read-only and without the lock: the apply may still be running."""
    lines = [
        "LC_ALL=C; export LC_ALL",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH",
        "sha() { sha256sum \"$1\" 2>/dev/null | cut -d' ' -f1; }",
    ]
    for ch in plan.changes:
        if not isinstance(ch, FileChange):
            continue
        lines.append(f"p={shlex.quote(ch.path)}; f=$p")
        lines.append('if [ -L "$f" ]; then r=$(readlink -f -- "$f" 2>/dev/null) && [ -n "$r" ] && f=$r; fi')
        check = f'[ -f "$f" ] && [ "$(sha "$f")" = "{sha256_of(ch.after)}" ]'
        if ch.before is None:  # created by the fix: no backup, rollback removes it
            lines.append(f'if {check}; then echo "@@WROTE $p "; fi')
        else:
            lines.append(f'b="$f.{ch.backup_suffix}-{ts}"')
            lines.append(f'if {check} && [ -f "$b" ]; then echo "@@WROTE $p $b"; fi')
    return "\n".join(lines) + "\n"


def host_apply_script(plan: Plan, ts: str) -> str:
    steps = [APPLY_PRELUDE, THROUGH_LINK]
    for i, ch in enumerate(plan.changes):
        steps.append(f"# step {i + 1}")
        if isinstance(ch, FileChange):
            steps.append(_file_step(ch, ts))
        elif isinstance(ch, CommandChange):
            # the description can hold inventory values: one quoted word, never expanded
            steps.append(
                f"( {ch.script.strip()} ) </dev/null 2>&1 || fail "
                f"{shlex.quote(f'step {i + 1} failed: {ch.describe.en}'.replace(chr(10), ' '))}"
            )
            steps.append(f'echo "@@RAN {i + 1}"')
    steps.append('echo "@@DONE"')
    return "\n".join(steps) + "\n"


def restore_script(path: str, backup: str, expect_sha: str | None) -> str:
    """Put a backup back, only if the file still has the content the fix wrote (else refuse). The path, the backup
    and the hash come from the journal (the paths as the host printed them): each is one quoted word, and the
    messages name them through "$f" / "$b", never as script text."""
    lines = [APPLY_PRELUDE, THROUGH_LINK, f"f={shlex.quote(path)}; b={shlex.quote(backup)}", "through_link"]
    if expect_sha:
        lines.append(
            f'[ "$(sha "$f")" = {shlex.quote(expect_sha)} ] || '
            '{ echo "@@FAIL $f changed since the fix (edited by hand?): not restoring"; exit 1; }'
        )
    if not backup:
        lines.append('rm -f "$f"; echo "@@RESTORED $f"; exit 0')
    lines += [
        '[ -f "$b" ] || { echo "@@FAIL backup $b is gone"; exit 1; }',
        'if cp -p --preserve=all "$b" "$f.bkdoctor-restore" && mv -f "$f.bkdoctor-restore" "$f"; then '
        'echo "@@RESTORED $f"; else rm -f "$f.bkdoctor-restore"; echo "@@FAIL cannot put $b back onto $f"; exit 1; fi',
    ]
    return "\n".join(lines) + "\n"


def parse_apply_output(out: bytes) -> dict[str, Any]:
    text = out.decode("utf-8", "replace")
    res: dict[str, Any] = {
        "wrote": [],
        "ran": [],
        "restored": [],
        "unrestored": [],
        "fail": None,
        "done": False,
        "log": text[-2000:],
    }
    for line in text.splitlines():
        if line.startswith("@@WROTE "):
            parts = line.split(" ", 2)
            res["wrote"].append({"path": parts[1], "backup": parts[2] if len(parts) > 2 else ""})
        elif line.startswith("@@RAN "):
            res["ran"].append(line.split()[1])
        elif line.startswith("@@RESTORED "):
            res["restored"].append(line.split(" ", 1)[1])
        elif line.startswith("@@UNRESTORED "):  # "<file> <its backup>": left for a person
            res["unrestored"].append(line.split(" ", 1)[1])
        elif line.startswith("@@FAIL "):
            res["fail"] = line[len("@@FAIL ") :]
        elif line == "@@DONE":
            res["done"] = True
    return res
