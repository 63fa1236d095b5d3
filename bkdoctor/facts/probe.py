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
import hashlib
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


# what a section may not do in the probe's own shell: end it, move it, change its options, traps, limits, aliases
# (bash expands an alias in the lines it reads after: `alias printf=:` silenced the end markers) or exported state,
# or leave background jobs (a lone `&`, not `&&` nor a `>&` redirection) for a later `wait`. `set --` alone is
# allowed: in a function it sets the function's own positional parameters, restored when it returns
_ISOLATE_RE = re.compile(
    r"\b(?:exit|trap|cd|exec|shift|unset|export|readonly|ulimit|umask|eval|source|wait|alias|unalias)\b"
    r"|\bset\b(?!\s+--[\s;])"
    r"|(?:^|[;&|({]\s*)\.\s|(?<![&>])&(?![&>])"
)


# `exec` first in a command substitution, after assignments for the command alone (`$(exec cmd)`, `$(TZ=UTC0 exec
# cmd)`): it replaces the substitution's own process, never the probe's shell, so it is not an isolation breach. The
# sections use it for every external command they capture: CentOS 7's /bin/sh is bash 4.2, which forks a second time
# for `$(cmd 2>/dev/null)` (a redirection stops its one-command shortcut) and for any `$(cmd)` in a `sh -c` shell (the
# bounded groups: there the substitution's parse is nested, bash 4.2's builtins/evalstring.c ONESHOT condition
# `parse_and_execute_level == 1` fails); bash 5.2 still does for the redirection. dash forks once either way.
_COMSUB_EXEC_RE = re.compile(r"\$\((?:[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_./:+-]* )*exec ")


# what only a function gives a section run in the probe's shell: `return N` for its status, and positional parameters
# of its own (`set --`, "$@", $#, $1...: in a brace group they would be the shell's, and stay set)
_NEEDS_FUNCTION_RE = re.compile(r"\breturn\b|\bset\b|\$[@#*0-9]|\$\{[@#*0-9]")


@functools.lru_cache(maxsize=1024)  # asked for every section of every host's script: one regex search per snippet
def runs_inline(snippet: str) -> bool:
    """Whether a built-in section may run in the probe's shell itself (a function, `return` for its status) instead
    of a subshell. Site rules' sections (EXTRA_SECTIONS) always run in a subshell."""
    return not _ISOLATE_RE.search(_COMSUB_EXEC_RE.sub("$(", snippet))


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
    if snippet is not None and runs_inline(snippet) and not _NEEDS_FUNCTION_RE.search(snippet):
        # in the probe's own shell as a brace group, where it needs no function: bash copies a function's body when
        # it is defined and again at each call, and frees both (4.2: a third of its own work in a node's probe)
        lines.append(f"{{ {snippet}\n}} </dev/null 2>&1")
    elif snippet is not None and runs_inline(snippet):
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

    # the file batch's separator: its own random token (it is in `env`'s argv, which any local user may read: the
    # nonce is not); fixed when the nonce is (the goldens, the DaemonSet's script), but not the way back to it
    sep = hashlib.sha256(b"bkdoctor file batch " + nonce.encode()).hexdigest()[:16] if nonce else secrets.token_hex(8)
    nonce = nonce or secrets.token_hex(8)
    mark = _MARK.format(nonce=nonce)
    unknown = set(names) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        raise KeyError(f"unknown probe sections: {sorted(unknown)}")
    assigns = []
    for k, v in sorted((params or {}).items()):
        if not _PARAM_RE.match(k):
            raise KeyError(f"bad probe parameter name {k!r}")
        if "\0" in str(v):  # the inventory refuses one: bash's `. /dev/stdin` (transport.base.READ_AHEAD) stops there
            raise ValueError(f"probe parameter {k} holds a NUL byte")
        assigns.append(f"{k}={shlex.quote(str(v))}")
    lines = ["# bkdoctor host probe: read-only", _PRELUDE, *assigns, _file_batch(mark, names, sep)]
    lines += dict.fromkeys(HELPERS[n] for n in sorted(set(names)) if n in HELPERS)
    for name in sorted(set(names) - set(BOUNDED)):
        lines.append(_section(mark, name))
    for group in ([n for n in g if n in set(names)] for g in GROUPS):
        if group:
            lines.append(_group(mark, group, {a.split("=", 1)[0] for a in assigns}, shell))
    return "\n".join(lines) + "\n", nonce


# the files the sections read with `__bkd_rd`, read first in one `cat` (1 process, not one `cat` a file): before
# every file, cat reads its own /proc/self/environ, which `env -i BKD_SEP=<token>` made exactly `BKD_SEP=<token>\0`,
# a separator no file can hold by chance (a random token per run, and a NUL) nor by design (only root writes the
# files read here; /proc/modules and mountinfo escape what they print and hold no NUL). No sizes are needed, so a
# file that changes while it is read gives the bytes cat read, and the files the kernel sizes only by reading them
# (/proc/modules, /proc/self/mountinfo: cat's own, in the probe's mount namespace) ride along. The frame holds their
# paths, a separator, the token, a separator, and cat's bytes. A section then prints `<mark>:R:<path>` where it
# would have run `cat <path>`, and parse_output puts the bytes there. Only readable regular files without a newline
# in their path (each word once: a file two globs name is read twice, the table keeps one); fewer than 2, no `env`
# or no readable /proc/self/environ, and every `__bkd_rd` is a plain `cat`, and so it is when cat fails (a file
# vanished or became unreadable: `__bkd_L`, set once cat has read them all, stays empty). A section reads only the
# words the batch read (FILE_READS: tests/test_probe.py holds each to them), so `__bkd_rd` asks the batch's own
# question again, readable regular file, where it looked its path up in the list of those read: bash 4.2 (CentOS 7's
# /bin/sh) scans a whole string for multibyte characters at every pattern match, ~200,000 instructions a lookup in a
# list of ~30 paths. A file that became readable between the two (milliseconds) is not in the table: its section is
# then an error, as a cut-off one is, never other bytes.
_FILES = "__files"
_ENVIRON = "/proc/self/environ"


def _file_batch(mark: str, names: list[str] | set[str], sep: str) -> str:
    from bkdoctor.facts.host import FILE_READS

    words = " ".join(dict.fromkeys(w for n in sorted(set(names)) if n in FILE_READS for w in FILE_READS[n].split()))
    rd = (
        "__bkd_nl='\n'; __bkd_L=\n"
        f'__bkd_rd() {{ case "$1" in *"$__bkd_nl"*) cat "$1"; return;; esac; '
        f'if [ -n "$__bkd_L" ] && [ -f "$1" ] && [ -r "$1" ]; then printf \'{mark}:R:%s\\n\' "$1"; else cat "$1"; fi; }}'
    )
    if not words:
        return rd
    return (
        rd + "\n"
        f"__bkd_files() {{ set --; __bkd_L=; for __bkd_f in {words}; do "
        'case "$__bkd_f" in *"$__bkd_nl"*) continue;; esac; [ -f "$__bkd_f" ] && [ -r "$__bkd_f" ] || continue; '
        'set -- "$@" "$__bkd_f"; '
        # cat by its path: `env -i` leaves no PATH, and glibc before 2.24 (CentOS 7's 2.17) then looks in the
        # current directory first (the login directory: a `./cat` there would run as the probe's user)
        'done; __bkd_c=; for __bkd_f in /bin/cat /usr/bin/cat; do [ -x "$__bkd_f" ] && { __bkd_c=$__bkd_f; break; }; done; '
        f'if [ $# -lt 2 ] || [ -z "$__bkd_c" ] || ! [ -r {_ENVIRON} ] || ! command -v env >/dev/null 2>&1; then return 0; fi; '
        f"printf '%s\\n' \"$@\"; printf '{mark}:S\\n{sep}\\n{mark}:S\\n'; "
        # a separator before every file (`for` takes its list once, before `set` changes it)
        f'__bkd_k=$#; for __bkd_f do set -- "$@" {_ENVIRON} "$__bkd_f"; done; shift $__bkd_k; '
        f'env -i BKD_SEP={sep} "$__bkd_c" -- "$@" 2>/dev/null || return 1; __bkd_L=1; }}\n'
        f"printf '\\n{mark}:B:{_FILES}\\n'\n"
        "__bkd_files </dev/null 2>&1\n"
        f"printf '\\n{mark}:E:{_FILES}:%s\\n' \"$?\""
    )


def _file_table(sec: Section | None, mark: bytes) -> dict[bytes, bytes] | None:
    """path -> bytes from the batch frame; None when it is not whole (a separator before every file, and nothing
    else before the first): its sections are then dropped, never filled with other bytes."""
    if sec is None or sec.rc != 0:
        return None
    parts = sec.out.split(mark + b":S\n", 2)
    if len(parts) != 3 or not parts[0].endswith(b"\n"):
        return None
    paths = parts[0][:-1].split(b"\n")
    token = parts[1].rstrip(b"\n")
    if not token.isalnum():
        return None
    chunks = parts[2].split(b"BKD_SEP=" + token + b"\0")
    if chunks[0] or len(chunks) != len(paths) + 1:
        return None
    return dict(zip(paths, chunks[1:]))


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


def same_sections(names: set[str]) -> dict[str, str]:
    """Extra sections (site rules') whose snippet is a built-in one's among `names`: extra -> built-in. The probe runs
    the built-in one alone and the extra one reads its output (a site `process` check beside the built-in
    `processes`: one `cat` of /proc/[0-9]*/stat, not two)."""
    from bkdoctor.facts.host import SECTIONS

    builtin = {SECTIONS[n]: n for n in sorted(names) if n in SECTIONS}
    return {
        n: builtin[EXTRA_SECTIONS[n]] for n in sorted(names) if n in EXTRA_SECTIONS and EXTRA_SECTIONS[n] in builtin
    }


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
