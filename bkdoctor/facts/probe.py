"""The batched, read-only host probe.

One POSIX `sh` script gathers every section the selected rules need in a single round trip. It runs on
CentOS 7 with nothing but its base packages (coreutils, util-linux, procps), and on anything with a
POSIX shell. It only reads: files, /proc, /sys, and `--version`/status commands. The sections' snippets are
declared with the facts that read them, in `facts/host.py` (`SECTIONS`), and so is their parsing: this module
frames them into one script and splits its output, so the script stays dumb and auditable.

Output framing: every section is written as

    \\n@@BKD-<nonce>:B:<name>\\n<raw output>\\n@@BKD-<nonce>:E:<name>:<exit code>\\n

The nonce is random per run, so no file content can forge a boundary. Raw output is kept as bytes: a
binary or non-UTF-8 file cannot break the framing.

The sections whose commands can hang, or which touch a path that may be a network mount (`host.BOUNDED`), run last,
in two groups (`host.GROUPS`: commands that ask another process, then paths), each in one shell bounded by one
`timeout -k 5 15`: a hang there stops that group, and its remaining sections arrive without their end marker, so they
are absent from the parsed output (their facts are errors) while the other group and every other section are whole.
A group's shell gets the nonce and the parameters its sections read in its environment, not in its argv (`ps`).
"""

from __future__ import annotations

import functools
import re
import secrets
import shlex
from dataclasses import dataclass

# sections registered at run time by the operator's site rules (bkdoctor/scan/siterules.py): name -> snippet, built
# there from the rule's parameters with every value shlex.quote'd
EXTRA_SECTIONS: dict[str, str] = {}

_PRELUDE = r"""LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
# a command that can hang, outside the bounded groups (host.BOUNDED: every built-in section that runs one is in
# them, but registry_http's `test -d` on the registry's data)
if command -v timeout >/dev/null 2>&1; then t() { timeout -k 5 10 "$@"; }; else t() { "$@"; }; fi
# a small kernel text file (/proc, /sys: never a NUL byte) read by the shell itself, printed as `cat` prints it (a
# last line without newline too); anything that is not a readable regular file goes to `cat`, for its own message
__bkd_cat() { if [ -f "$1" ] && [ -r "$1" ]; then while IFS= read -r __bkd_l; do printf '%s\n' "$__bkd_l"; done <"$1"; [ -z "$__bkd_l" ] || printf '%s' "$__bkd_l"; else cat "$1"; fi; }
"""

_MARK = "@@BKD-{nonce}"


@dataclass
class Section:
    name: str
    rc: int
    out: bytes

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace")


# what a section may not do in the probe's own shell: end it, move it, change its options, traps, limits or exported
# state, or leave background jobs (a lone `&`, not `&&` nor a `>&` redirection) for a later `wait`. `set --` alone
# is allowed: in a function it sets the function's own positional parameters, restored when it returns
_ISOLATE_RE = re.compile(
    r"\b(?:exit|trap|cd|exec|shift|unset|export|readonly|ulimit|umask|eval|source|wait)\b|\bset\b(?!\s+--[\s;])"
    r"|(?:^|[;&|({]\s*)\.\s|(?<![&>])&(?![&>])"
)


@functools.lru_cache(maxsize=1024)  # asked for every section of every host's script: one regex search per snippet
def runs_inline(snippet: str) -> bool:
    """Whether a built-in section may run in the probe's shell itself (a function, `return` for its status) instead
    of a subshell. Site rules' sections (EXTRA_SECTIONS) always run in a subshell."""
    return not _ISOLATE_RE.search(snippet)


_PARAM_RE = re.compile(r"^BKD_[A-Z0-9_]+\Z")

# The sections that run a command that can hang on a production host (df or stat on a dead NFS mount, systemctl or
# timedatectl with a wedged D-Bus, iptables -w behind a held xtables lock), or touch a path that may be a network
# mount (a shell test on a dead NFS mount blocks the shell itself), run in bounded shells, after every other section,
# one per group of host.GROUPS (the D-Bus/lock callers, then the paths): `timeout -k 5 GROUP_LIMIT /bin/sh -c
# '<sections>'` (2 processes a group, where a `timeout` per command cost one more process each). Inside it `t` runs
# its command directly. A hang stops its group at GROUP_LIMIT s (SIGTERM to timeout's process group, SIGKILL 5 s
# later): the section that hung and those after it in that group have no end marker, so parse_output leaves them out
# and their facts are errors; the sections before it, the other group and every section outside the groups keep
# their output. Bound: GROUP_LIMIT + 5 s a group, 40 s for both (a `timeout -k 5 10` per command gave 15 s each, 7
# to 12 of them in a probe), within the transport's 60 s for the whole probe with the unbounded rest (getent 3 s,
# curl 5 s). The order in each group puts the likeliest hang last.
GROUP_LIMIT = 15
GROUP_KILL_AFTER = 5
# the group's shell reads the nonce from its environment (owner-only /proc/PID/environ), never from its argv: any
# local user reads root's argv in `ps`, and the nonce is what keeps file content from forging a section boundary
_GROUP_MARK = "__bkd_m"


def _section(mark: str, name: str, env_mark: bool = False) -> str:
    """`env_mark`: the marker is the group shell's $__bkd_m (its environment), not text of the script."""
    from bkdoctor.facts.host import SECTIONS

    snippet = SECTIONS.get(name)
    fmt, arg = ("%s", f' "${_GROUP_MARK}"') if env_mark else (mark, "")
    lines = [f"printf '\\n{fmt}:B:{name}\\n'{arg}"]
    # stdin is closed so nothing can read the rest of the script
    if snippet is not None and runs_inline(snippet):
        # in the probe's own shell, as a function (`return N` gives the section's status): no subshell, so a
        # section that only runs builtins forks nothing, and one that runs a command forks that command only
        lines.append(f"__bkd_s() {{ {snippet}\n}}; __bkd_s </dev/null 2>&1")
    else:
        # a subshell keeps a section's `exit`, `cd`, trap or background jobs from leaking into the next one
        lines.append(f"( {snippet or EXTRA_SECTIONS[name]} ) </dev/null 2>&1")
    lines.append(f"printf '\\n{fmt}:E:{name}:%s\\n'{arg} \"$?\"")
    return "\n".join(lines)


def _group(mark: str, group: list[str], params: set[str], shell: tuple[str, ...]) -> str:
    """One bounded group: its sections in a `timeout`-bounded shell whose argv holds code only (`ps` shows it to any
    local user): the nonce and the parameters its sections read reach it through its environment."""
    from bkdoctor.facts.host import HELPERS, SECTIONS

    for n in group:
        if re.search(r"\b__bkd_(?:cat|rd|gf)\b", SECTIONS[n]) or n in HELPERS:
            raise ValueError(f"bounded section {n!r} uses a function of the probe's shell: not in the group's")
        # a subshell `( ... )` resets the TERM trap below to the default: timeout would return at SIGTERM and leave a
        # command that ignores it running, so a bounded section must run in the group's shell itself
        if not runs_inline(SECTIONS[n]):
            raise ValueError(f"bounded section {n!r} cannot run inline: the group's TERM trap would not cover it")
    # the trap: at the group's SIGTERM its shell ends when the running command has ended (a command killed by it, as
    # df in an NFS wait is), and waits for it otherwise, so that timeout's SIGKILL 5 s later reaches a command that
    # ignores SIGTERM (without it the shell died at once, timeout returned, the command stayed). A handler, not an
    # ignored signal: the commands the group runs get SIGTERM's default action.
    text = "\n".join(["trap 'exit 143' TERM", 't() { "$@"; }', *(_section(mark, n, env_mark=True) for n in group)])
    # only the parameters its sections read, as `NAME="$NAME"` prefixes: in the group's environment, not its argv
    used = sorted(set(re.findall(r"\bBKD_[A-Z0-9_]+", " ".join(SECTIONS[n] for n in group))) & params)
    env = " ".join([f"{_GROUP_MARK}='{mark}'", *(f'{p}="${p}"' for p in used)])
    sh = shlex.join(shell)
    return (
        f"__bkd_g={shlex.quote(text + chr(10))}\n"
        "if command -v timeout >/dev/null 2>&1; then "
        f'{env} timeout -k {GROUP_KILL_AFTER} {GROUP_LIMIT} {sh} -c "$__bkd_g"; else {env} {sh} -c "$__bkd_g"; fi '
        "</dev/null 2>&1"
    )


def build_script(
    names: list[str] | set[str],
    nonce: str | None = None,
    params: dict[str, str] | None = None,
    shell: tuple[str, ...] = ("/bin/sh",),
) -> tuple[str, str]:
    """Return (script, nonce) gathering the given sections, in a stable order.

    `params` become shell variables (`BKD_DOMAIN=...`) that sections may read; values are single-quoted,
    so a value can never become code. `shell` runs the bounded group (the shell the transport starts; tests run
    other shells)."""
    from bkdoctor.facts.host import BOUNDED, GROUPS, HELPERS, SECTIONS  # the built-in sections, with their facts

    nonce = nonce or secrets.token_hex(8)
    mark = _MARK.format(nonce=nonce)
    unknown = set(names) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        raise KeyError(f"unknown probe sections: {sorted(unknown)}")
    assigns = []
    for k, v in sorted((params or {}).items()):
        if not _PARAM_RE.match(k):
            raise KeyError(f"bad probe parameter name {k!r}")
        assigns.append(f"{k}={shlex.quote(str(v))}")
    lines = ["# bkdoctor host probe: read-only", _PRELUDE, *assigns, _file_batch(mark, names)]
    lines += dict.fromkeys(HELPERS[n] for n in sorted(set(names)) if n in HELPERS)
    for name in sorted(set(names) - set(BOUNDED)):
        lines.append(_section(mark, name))
    for group in ([n for n in g if n in set(names)] for g in GROUPS):
        if group:
            lines.append(_group(mark, group, {a.split("=", 1)[0] for a in assigns}, shell))
    return "\n".join(lines) + "\n", nonce


# the files the sections read with `__bkd_rd`, read first in one `wc -c` and one `cat` (2 processes, not one `cat` a
# file): the frame holds their paths, a separator, wc's sizes, a separator, and cat's bytes. A section then prints
# `<mark>:R:<path>` where it would have run `cat <path>`, and parse_output puts the bytes there. Only readable regular
# files without a newline in their path, each once; fewer than 3, no `wc`, or no /proc/sys/kernel/random/uuid, and
# every `__bkd_rd` is a plain `cat`, and so it is when wc or cat fails (then `__bkd_L` is emptied before any section
# runs). In cat's bytes every file comes after one read of /proc/sys/kernel/random/uuid (37 bytes,
# `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n`, new at every read): each mark must sit exactly where wc's sizes put it,
# so a file that changed size between wc and cat moves the marks after it and the frame is refused (its sections are
# errors, never filled with another file's bytes), even when another file changed by as many bytes the other way.
# The kernel's text files of host.FILE_TAILS (/proc/modules, /proc/self/mountinfo: no size until read, and a node
# mounts and unmounts all the time) come last, not in wc's sizes, listed after `<mark>:T` between wc's sizes and
# cat's bytes: a tail runs from its mark to the next mark, at the start of a line, and the last one to the end.
_FILES = "__files"
_UUID = "/proc/sys/kernel/random/uuid"
_UUID_LINE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n")
# the mark after a tail: a line of its own (a kernel text file ends with its newline), never the end of a longer line
_NEXT_MARK = re.compile(rb"^" + _UUID_LINE.pattern, re.M)


def _file_batch(mark: str, names: list[str] | set[str]) -> str:
    from bkdoctor.facts.host import FILE_READS, FILE_TAILS

    words = " ".join(FILE_READS[n] for n in sorted(set(names)) if n in FILE_READS)
    tails = " ".join(FILE_TAILS[n] for n in sorted(set(names)) if n in FILE_TAILS)
    rd = (
        "__bkd_nl='\n'; __bkd_L=\n"
        f'__bkd_rd() {{ case "$1" in *"$__bkd_nl"*) cat "$1"; return;; esac; case "$__bkd_L" in *"$__bkd_nl$1$__bkd_nl"*) '
        f'printf \'{mark}:R:%s\\n\' "$1";; *) cat "$1";; esac; }}'
    )
    if not words:
        return rd
    tail_words = (
        f'for __bkd_f in {tails}; do [ -f "$__bkd_f" ] && [ -r "$__bkd_f" ] || continue; '
        '__bkd_T="$__bkd_T$__bkd_f$__bkd_nl"; __bkd_n=$((__bkd_n + 1)); done; '
        if tails
        else ""
    )
    add_tails = (
        '__bkd_r=$__bkd_T; while [ -n "$__bkd_r" ]; do __bkd_f=${__bkd_r%%"$__bkd_nl"*}; __bkd_r=${__bkd_r#*"$__bkd_nl"}; '
        f'__bkd_L="$__bkd_L$__bkd_f$__bkd_nl"; set -- "$@" {_UUID} "$__bkd_f"; done; '
        if tails
        else ""
    )
    return (
        rd + "\n"
        f"__bkd_files() {{ set --; __bkd_L=$__bkd_nl; for __bkd_f in {words}; do "
        'case "$__bkd_f" in *"$__bkd_nl"*) continue;; esac; [ -f "$__bkd_f" ] && [ -r "$__bkd_f" ] || continue; '
        'case "$__bkd_L" in *"$__bkd_nl$__bkd_f$__bkd_nl"*) continue;; esac; __bkd_L="$__bkd_L$__bkd_f$__bkd_nl"; set -- "$@" "$__bkd_f"; '
        f"done; __bkd_T=; __bkd_n=0; {tail_words}"
        f"if [ $# -lt 1 ] || [ $(($# + __bkd_n)) -lt 3 ] || ! [ -f {_UUID} ] || ! [ -r {_UUID} ] || "
        "! command -v wc >/dev/null 2>&1; then __bkd_L=; return 0; fi; "
        f"printf '%s\\n' \"$@\"; printf '{mark}:S\\n'; wc -c -- \"$@\" 2>/dev/null || {{ __bkd_L=; return 1; }}; "
        + (f'[ -z "$__bkd_T" ] || printf \'{mark}:T\\n%s\' "$__bkd_T"; ' if tails else "")
        + f"printf '{mark}:S\\n'; "
        # cat's arguments: a mark before every file (`for` takes its list once, before `set` changes it)
        + f'__bkd_k=$#; for __bkd_f do set -- "$@" {_UUID} "$__bkd_f"; done; shift $__bkd_k; '
        + f'{add_tails}cat -- "$@" 2>/dev/null || {{ __bkd_L=; return 1; }}; }}\n'
        f"printf '\\n{mark}:B:{_FILES}\\n'\n"
        "__bkd_files </dev/null 2>&1\n"
        f"printf '\\n{mark}:E:{_FILES}:%s\\n' \"$?\""
    )


def _file_table(sec: Section | None, mark: bytes) -> dict[bytes, bytes] | None:
    """path -> bytes from the batch frame; None when it is not whole: every mark where wc's sizes put it (a file that
    changed between the two is caught here, and its sections are dropped, never filled with other bytes)."""
    if sec is None or sec.rc != 0:
        return None
    parts = sec.out.split(mark + b":S\n", 2)
    if len(parts) != 3 or not parts[0].endswith(b"\n"):
        return None
    paths = parts[0][:-1].split(b"\n")
    sizes_part, _, tail_part = parts[1].partition(mark + b":T\n")
    tails = tail_part[:-1].split(b"\n") if tail_part.endswith(b"\n") else []
    if tail_part and not tails:
        return None
    sizes = []
    for line in sizes_part.splitlines()[: len(paths)]:
        n = line.split(None, 1)[0] if line.strip() else b""
        if not n.isdigit():
            return None
        sizes.append(int(n))
    if len(sizes) != len(paths):
        return None
    body, table, pos = parts[2], {}, 0
    for p, n in zip(paths, sizes):
        if not _UUID_LINE.match(body, pos) or pos + 37 + n > len(body):
            return None
        table[p] = body[pos + 37 : pos + 37 + n]
        pos += 37 + n
    for i, p in enumerate(tails):
        if not _UUID_LINE.match(body, pos):
            return None
        pos += 37
        m = _NEXT_MARK.search(body, pos) if i < len(tails) - 1 else None
        if i < len(tails) - 1 and m is None:
            return None
        end = m.start() if m is not None else len(body)
        table[p] = body[pos:end]
        pos = end
    return table if pos == len(body) else None


def _fill_files(out: dict[str, Section], mark: bytes) -> None:
    files = out.pop(_FILES, None)
    ref = mark + b":R:"
    table: dict[bytes, bytes] | None | bool = False  # read once, when a section refers to it
    for name, sec in list(out.items()):
        if ref not in sec.out:
            continue
        if table is False:
            table = _file_table(files, mark)
        pieces = sec.out.split(ref)
        buf = [pieces[0]]
        for p in pieces[1:]:
            nl = p.find(b"\n")
            if nl < 0 or not table or p[:nl] not in table:
                del out[name]  # the bytes are not known: the section is an error, as if it were cut off
                break
            buf += [table[p[:nl]], p[nl + 1 :]]
        else:
            out[name] = Section(name, sec.rc, b"".join(buf))


def parse_output(data: bytes, nonce: str) -> dict[str, Section]:
    """Split probe output into sections. Sections whose end marker is missing (the probe was cut off)
    are absent from the result, so their facts become `error`, never a silent `pass`."""
    mark = f"@@BKD-{nonce}".encode()
    out: dict[str, Section] = {}
    pos = 0
    begin_prefix = b"\n" + mark + b":B:"
    while True:
        b = data.find(begin_prefix, pos)
        if b < 0:
            break
        name_start = b + len(begin_prefix)
        nl = data.find(b"\n", name_start)
        if nl < 0:
            break
        name = data[name_start:nl].decode("ascii", errors="replace")
        end_prefix = b"\n" + mark + b":E:" + name.encode() + b":"
        e = data.find(end_prefix, nl + 1)
        if e < 0:
            # no end marker: cut off here, or its bounded group was stopped (a hang) while the rest of the probe went
            # on; the section is absent (an error), and the next one's begin marker is looked for after it
            pos = nl
            continue
        rc_start = e + len(end_prefix)
        rc_end = data.find(b"\n", rc_start)
        if rc_end < 0:
            break
        try:
            rc = int(data[rc_start:rc_end])
        except ValueError:
            rc = -1
        out[name] = Section(name, rc, data[nl + 1 : e])
        pos = rc_end
    _fill_files(out, mark)
    return out
