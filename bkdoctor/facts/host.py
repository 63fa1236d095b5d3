"""Host facts: one record per fact, its probe sections and its parser together.

A rule asks for facts by name (`RULE.facts`). Each fact is declared once, above its parser, with `@fact(name,
sections={section: shell snippet})`: the read-only snippets the probe runs for it (`facts/probe.py` frames them
into one script), and the parser that turns their raw output into the fact. A section several facts read is
declared once with `shared()` and named in each fact as `SHARED`. A snippet may read `BKD_*` parameters; the fact
that owns the section declares how each is computed from the inventory (`params=`), and `probe_params()` gives
them all to the script. The tables the engine and the tests read (`SECTIONS`, `FACTS`, `PARSERS`, `API_FACTS`,
`DOCKER_FALLBACK_SECTIONS`, `MEASURE_BUDGET`) are derived from these records at the end of the module.

Parsing is lazy and cached. A fact that cannot be read raises `FactUnavailable` with the reason; rules let it
propagate and the engine turns it into an `error` or `skip` finding, never a `pass`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bkdoctor.facts.probe import Section
from bkdoctor.model import FactUnavailable, T

# A parameter's value from (inventory, host spec or None); None: set by the engine itself, not from the inventory
ParamFn = Callable[[Any, Any], Any] | None
Parser = Callable[["HostFacts"], Any]


@dataclass(frozen=True)
class Fact:
    """One host fact: the probe sections it reads (in evidence order) and the parser of their output."""

    name: str
    sections: tuple[str, ...]
    parse: Parser
    fallback: tuple[str, ...] = ()  # sections read only when the Docker Engine API does not answer (a second probe)
    api: bool = False  # also needs the Docker Engine API of the host (through the transport)
    params: tuple[str, ...] = ()  # the BKD_* parameters this fact's sections read, declared here
    # section -> seconds a measurement may add to the probe's time limit, from the thresholds
    budget: dict[str, Callable[[dict[str, Any]], float]] = field(default_factory=dict)


RECORDS: dict[str, Fact] = {}
SECTIONS: dict[str, str] = {}  # section -> shell snippet: every built-in section of the probe
_PARAMS: dict[str, ParamFn] = {}  # BKD_* name -> how its value is computed
_SHARED: set[str] = set()

# in a fact's `sections`: a section declared once with `shared()`, because several facts read it
SHARED = None


def _add_section(name: str, snippet: str) -> None:
    if name in SECTIONS:
        raise ValueError(f"probe section {name!r} is declared twice")
    SECTIONS[name] = snippet


def _add_params(params: dict[str, ParamFn]) -> None:
    for k, fn in params.items():
        if k in _PARAMS:
            raise ValueError(f"probe parameter {k} is declared twice")
        _PARAMS[k] = fn


def shared(name: str, snippet: str) -> None:
    """A section several facts read: declared once, named in each of them as `SHARED`."""
    _add_section(name, snippet)
    _SHARED.add(name)


def param(name: str, fn: ParamFn) -> None:
    """A parameter no built-in section reads, given to every probe all the same."""
    _add_params({name: fn})


def fact(
    name: str,
    sections: dict[str, str | None],
    *,
    fallback: dict[str, str] | None = None,
    api: bool = False,
    params: dict[str, ParamFn] | None = None,
    budget: dict[str, Callable[[dict[str, Any]], float]] | None = None,
) -> Callable[[Parser], Parser]:
    """Declare a host fact: `sections` maps each probe section it reads to its read-only shell snippet (`SHARED`
    for a section declared with `shared()`); `params` the BKD_* parameters its snippets read and how each is
    computed from (inventory, host). The decorated function is its parser."""

    def register(parse: Parser) -> Parser:
        if name in RECORDS:
            raise ValueError(f"host fact {name!r} is declared twice")
        for s, snippet in sections.items():
            if snippet is SHARED:
                if s not in _SHARED:
                    raise ValueError(f"fact {name!r}: section {s!r} is not declared with shared()")
            else:
                _add_section(s, snippet)
        for s, snippet in (fallback or {}).items():
            _add_section(s, snippet)
        _add_params(params or {})
        RECORDS[name] = Fact(
            name, tuple(sections), parse, tuple(fallback or ()), api, tuple(params or ()), dict(budget or {})
        )
        return parse

    return register


def sections_for(facts: list[str] | set[str] | tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for f in facts:
        if f not in FACTS:
            raise KeyError(f"unknown fact {f!r}")
        out.update(FACTS[f])
    return out


def probe_params(inv: Any, host: Any = None) -> dict[str, str]:
    """Shell variables the probe's sections may read (single-quoted into the script), declared with their facts."""
    return {k: fn(inv, host) for k, fn in _PARAMS.items() if fn is not None}


def _missing(name: str) -> FactUnavailable:
    return FactUnavailable(
        T(f"探测结果中缺少 {name}（探测被中断？）", f"probe output lacks section {name} (probe cut off?)")
    )


def version_tuple(v: str) -> tuple[int, ...]:
    """'3.10.0-1160.el7.x86_64' -> (3, 10, 0); '19.03.9' -> (19, 3, 9); 'v1.20.11' -> (1, 20, 11)."""
    m = re.match(r"v?(\d+(?:\.\d+)*)", v.strip())
    if not m:
        raise ValueError(f"not a version: {v!r}")
    return tuple(int(x) for x in m.group(1).split("."))


@dataclass
class HostFacts:
    """Facts of one host. `sections` come from the probe; `docker_api` from the Engine API (or None)."""

    sections: dict[str, Section]
    docker_api: dict[str, Any] | None = None
    docker_api_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # not every section's output (see ScanResult.__repr__)
        return f"HostFacts(sections={len(self.sections)}, docker_api={self.docker_api is not None})"

    # -- raw access ---------------------------------------------------------------------------------
    def sec(self, name: str) -> Section:
        s = self.sections.get(name)
        if s is None:
            raise _missing(name)
        return s

    def text(self, name: str, *, missing_ok: bool = False) -> str | None:
        """Content of a file-reading section; None when the file does not exist (if `missing_ok`)."""
        s = self.sec(name)
        if s.ok:
            return s.text()
        msg = s.text().strip()
        if missing_ok and (s.rc in (3, 127) or "No such file" in msg):
            return None
        if "Permission denied" in msg:
            raise FactUnavailable(T(f"读取 {name} 权限不足：{msg}", f"permission denied reading {name}: {msg}"))
        if missing_ok is False and ("No such file" in msg or s.rc == 3):
            raise FactUnavailable(T(f"{name} 不存在：{msg}", f"{name} does not exist: {msg}"))
        raise FactUnavailable(T(f"无法读取 {name}（退出码 {s.rc}）：{msg}", f"cannot read {name} (exit {s.rc}): {msg}"))

    def get(self, fact: str) -> Any:
        if fact not in self._cache:
            parser: Callable[[HostFacts], Any] = PARSERS[fact]
            try:
                self._cache[fact] = parser(self)
            except FactUnavailable as e:
                self._cache[fact] = e
        v = self._cache[fact]
        if isinstance(v, FactUnavailable):
            raise v
        return v

    def __getattr__(self, name: str) -> Any:  # facts.swaps, facts.selinux, ...
        if name.startswith("_") or name not in PARSERS:
            raise AttributeError(name)
        return self.get(name)

    def raw(self, fact: str, limit: int = 4000) -> dict[str, str]:
        """Raw section text for the evidence of a finding (bounded)."""
        out = {}
        for s in FACTS.get(fact, ()):
            sec = self.sections.get(s)
            if sec is not None:
                t = sec.text()
                out[s] = t if len(t) <= limit else t[:limit] + "\n…(truncated)"
        return out


# Sections without `exit`, `cd`, traps or background jobs run in the probe's own shell (`return N` for a status; see
# probe.runs_inline): one that reads with builtins forks nothing. Builtins stand in for a command only where their
# output is provably the command's, byte for byte; in any other case the command itself runs.
# uname -n / -r: the kernel's own files hold the same string and a newline
_KERNEL_FILE = "if [ -r /proc/sys/kernel/{f} ]; then __bkd_cat /proc/sys/kernel/{f}; else {cmd}; fi"
# id -u: the effective uid, the third field of the shell's own Uid: line
_EUID = (
    'u=; while read -r k r e x; do if [ "$k" = Uid: ]; then u=$e; break; fi; done </proc/self/status; '
    'if [ -n "$u" ]; then printf \'%s\\n\' "$u"; else id -u; fi'
)
# getconf _NPROCESSORS_ONLN: glibc counts the ranges of this file ("0-3,8,10-11"); anything else, getconf
_ONLINE_CPUS = (
    "o=; [ -r /sys/devices/system/cpu/online ] && read -r o </sys/devices/system/cpu/online; "
    'case "$o" in ""|*[!0-9,-]*|*,) {cmd}; return;; esac; '
    'n=0; while [ -n "$o" ]; do r=${{o%%,*}}; case "$o" in *,*) o=${{o#*,}};; *) o=;; esac; '
    'case "$r" in ""|-*|*-|*-*-*|0[0-9]*|*-0[0-9]*) {cmd}; return;; esac; '
    "n=$((n + ${{r#*-}} - ${{r%-*}} + 1)); done; printf '%s\\n' \"$n\""
)
_NPROCS_ONLINE = _ONLINE_CPUS.format(cmd="getconf _NPROCESSORS_ONLN")
# grep -c '^processor' /proc/cpuinfo, read only when `nproc` gives no number: when the online file gives one, so does
# `nproc` (the same count, no getconf), and grep's would not be read; it is printed here all the same (x86's
# /proc/cpuinfo lists the online CPUs: the same number), so a probe cut off between the two still has a count
_CPUINFO = _ONLINE_CPUS.format(cmd="grep -c '^processor' /proc/cpuinfo")
# -- the facts: each one's probe sections (shell snippets, read-only) and its parser -------------------------------
# `t` (defined by the probe's prelude) wraps commands that may hang (a stuck daemon, an NFS mount) in `timeout`.

# sections several facts read
shared("systemd_running", "test -d /run/systemd/system && echo yes || echo no")
# running processes by name; zombies (a daemon that just exited, not yet reaped) do not count. One `cat` of every
# /proc/PID/stat (issue 16: half the CPU of `ps`, which reads more of /proc per process and loads more libraries): the
# name is comm's first word and the state its letter, as `ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}'` gave
# them; a process that exits between the glob and cat is not there (cat's complaint goes nowhere), the status is 0.
# Without a readable /proc/self/stat, `ps` alone as before (_process_names reads both), and without ps the names.
_STAT_HEADER = "# cat /proc/[0-9]*/stat"
_PS_HEADER = "# ps -eo stat=,comm="
shared(
    "processes",
    (
        f"if [ -r /proc/self/stat ]; then echo '{_STAT_HEADER}'; cat /proc/[0-9]*/stat 2>/dev/null; true; "
        f"elif command -v ps >/dev/null 2>&1; then echo '{_PS_HEADER}'; ps -eo stat=,comm=; true; "
        "else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi"
    ),
)
# `pid (comm) S ...`: comm is at most 15 bytes of anything but NUL (a newline, `) Z ` too), so it is the longest run
# of up to 15 after `pid (` that a `) ` and the state letter follow (newer kernels print a kernel worker's workqueue
# after its comm, `kworker/1:2H-kblockd`: longer, so not matched, and no process a rule looks for; a wider window
# could reach across a short line into the next) (the fields after it are numbers, never a `)`);
# read across lines, so a comm with a newline neither hides its process nor makes up another
_STAT_LINE = re.compile(r"(\d+) \((.{0,15})\) ([A-Za-z]) ", re.S)


def _process_names(f: HostFacts) -> set[str]:
    return process_names(f.text("processes"))


def process_names(text: str) -> set[str]:
    """The names of the running processes, as the words of `ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}'` were:
    awk's fields are split on blanks (space, tab) only, so a name is comm's first word. From /proc/PID/stat (a
    comm's control characters as they are: ps shows them as `?` or `.`, by version), or from ps's (every line of the
    section is one of ps's, its stderr too: a line of it gives its second word, where the pipeline gave all its
    words; no procps message is a process name). Without a header: the names from /proc, one a line, or a bundle of
    an older bkdoctor (awk's words)."""
    lines = text.split("\n")
    names: set[str] = set()
    if lines[0] == _STAT_HEADER:
        n = 0
        for m in _STAT_LINE.finditer(text, len(_STAT_HEADER)):
            n += 1
            if m.group(3) != "Z":
                words = re.split(r"[ \t]+", m.group(2).strip(" \t"))
                if words[0]:
                    names.add(words[0])
        if not n:  # not even the probe's own shell: cat did not run (too many pids for one argv?), not "none run"
            raise FactUnavailable(T("无法读取进程列表", "cannot read the process list (/proc/[0-9]*/stat)"))
        return names
    if lines[0] != _PS_HEADER:
        return set(text.split())
    for line in lines[1:]:
        fields = re.split(r"[ \t]+", line.strip(" \t"))
        if len(fields) >= 2 and not fields[0].startswith("Z"):
            names.update(fields[1].split())
    return names


# `df -P -k / /data`: the disks of `resources` and the /data of `data_disk`, in one df (each ran its own); the last
# line, after df, says whether /data is a directory (data_disk's None); the status is df's
_DATA_DIR = "# /data is a directory"
shared("df", f"t df -P -k / /data; r=$?; [ -d /data ] && echo '{_DATA_DIR}'; return $r")
# read by no built-in section today; every probe has carried it (the install dir, as the fixes see it)
param("BKD_INSTALL_DIR", lambda inv, host: inv.install_dir)


# the shell's `read` (no process) of the personality and the kernel release; a comment line says where the machine
# came from, then the machine as `uname -m` prints it (p_os reads the last line)
_UNAME_FROM_RELEASE = "# uname -m not run: the arch of the kernel release, default personality"
_UNAME_M = (
    "p=; r=; [ -r /proc/self/personality ] && read -r p </proc/self/personality; "
    "[ -r /proc/sys/kernel/osrelease ] && read -r r </proc/sys/kernel/osrelease; "
    'if [ "$p" = 00000000 ]; then case "$r" in '
    + " ".join(
        f"*.el[0-9]*.{a}) printf '%s\\n%s\\n' '{_UNAME_FROM_RELEASE}' {a}; return 0;;" for a in ("x86_64", "aarch64")
    )
    + " esac; fi; uname -m"
)


def _kv_file(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip().strip('"').strip("'")
    return out


@fact(
    "os",
    sections={
        "os_release": "__bkd_rd /etc/os-release",
        "centos_release": "__bkd_rd /etc/centos-release",
        "redhat_release": "__bkd_rd /etc/redhat-release",
        # `uname -m`, or what it prints without running it (issue 16: one process less on the guide's hosts): a RHEL
        # or CentOS kernel names its machine at the end of its release (3.10.0-1160.el7.x86_64: the kernel package's
        # arch, which rpm installs on that machine only), and under the default personality (/proc/self/personality
        # 00000000) uname's machine is the kernel's. Any other personality (`setarch linux32`: uname says i686,
        # fixtures/host/os-version), another kernel or arch, or a file the shell cannot read: uname itself. Not
        # /proc/sys/kernel/arch: newer kernels only, not CentOS 7's 3.10, and blind to the personality.
        "uname_m": _UNAME_M,
    },
)
def p_os(f: HostFacts) -> dict[str, Any]:
    osr = f.text("os_release", missing_ok=True)
    centos = f.text("centos_release", missing_ok=True)
    redhat = f.text("redhat_release", missing_ok=True)
    if osr is None and centos is None and redhat is None:
        raise FactUnavailable(
            T("没有 /etc/os-release 和 /etc/centos-release", "neither /etc/os-release nor /etc/centos-release exists")
        )
    m_arch = f.sections.get("uname_m")
    arch = arch_from = None  # §一.4.1: 64位 (x86_64)
    if m_arch is not None and m_arch.ok:
        lines = m_arch.text().strip().splitlines()
        arch_from = "kernel release" if _UNAME_FROM_RELEASE in lines else "uname -m"
        lines = [x for x in lines if x != _UNAME_FROM_RELEASE]
        arch = lines[-1].strip() if lines else None
    try:
        from bkdoctor.facts.osid import identify  # the `distro` library (see osid.py)
    except ImportError:  # distro not installed: the hand parser below
        pass
    else:
        ident = identify({"os_release": osr, "centos_release": centos, "redhat_release": redhat})
        return {"arch": arch, "arch_from": arch_from, **ident}
    kv = _kv_file(osr or "")
    release = (centos or redhat or "").strip()
    version = kv.get("VERSION_ID", "")
    m = re.search(r"release\s+(\d+(?:\.\d+)*)", release)
    if m:
        version = m.group(1)  # '7.9.2009' is more precise than VERSION_ID '7'
    return {
        "arch": arch,
        "arch_from": arch_from,
        "id": kv.get("ID", "centos" if centos else ""),
        "name": kv.get("PRETTY_NAME") or release or kv.get("NAME", ""),
        "version": version,
        "release": release,
        "id_like": kv.get("ID_LIKE", ""),
    }


@fact("kernel", sections={"uname_r": _KERNEL_FILE.format(f="osrelease", cmd="uname -r")})
def p_kernel(f: HostFacts) -> str:
    return f.text("uname_r").strip()


@fact("hostname", sections={"hostname": _KERNEL_FILE.format(f="hostname", cmd="uname -n")})
def p_hostname(f: HostFacts) -> str:
    return f.text("hostname").strip()


@fact("swaps", sections={"proc_swaps": "__bkd_cat /proc/swaps"})
def p_swaps(f: HostFacts) -> list[dict[str, str]]:
    text = f.text("proc_swaps")
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            out.append({"device": parts[0], "type": parts[1], "size_kb": parts[2]})
    return out


def parse_fstab(text: str) -> list[dict[str, Any]]:
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) < 3:
            continue
        entries.append(
            {
                "line": n,
                "text": line,
                "source": parts[0],
                "target": parts[1],
                "fstype": parts[2],
                "options": parts[3] if len(parts) > 3 else "defaults",
            }
        )
    return entries


@fact("fstab", sections={"fstab": "__bkd_rd /etc/fstab"})
def p_fstab(f: HostFacts) -> list[dict[str, Any]]:
    text = f.text("fstab", missing_ok=True)
    return parse_fstab(text or "")


@fact(
    "selinux",
    sections={
        # no selinuxfs (SELinux disabled, as the guide wants it): status 3, which p_selinux reads as cat's "No such
        # file" (a dangling link too); sysfs directories are searchable by all, so `-e` is false only for ENOENT
        "selinux_enforce": "[ -e /sys/fs/selinux/enforce ] || return 3; __bkd_cat /sys/fs/selinux/enforce",
        "selinux_config": "__bkd_rd /etc/selinux/config",
    },
)
def p_selinux(f: HostFacts) -> dict[str, Any]:
    enforce = f.text("selinux_enforce", missing_ok=True)
    runtime: str
    if enforce is None:
        runtime = "disabled"  # no selinuxfs: SELinux is disabled (or not built in)
    else:
        v = enforce.strip()
        if v not in ("0", "1"):
            raise FactUnavailable(
                T(
                    f"/sys/fs/selinux/enforce 内容无法识别：{v[:40]!r}",
                    f"unrecognised /sys/fs/selinux/enforce content: {v[:40]!r}",
                )
            )
        runtime = "enforcing" if v == "1" else "permissive"
    cfg = f.text("selinux_config", missing_ok=True)
    config = None
    if cfg is not None:
        config = _kv_file(cfg).get("SELINUX", "").lower() or None
    return {"runtime": runtime, "config": config, "config_exists": cfg is not None}


# Whether firewalld starts at the next boot, without `systemctl is-enabled` (issue 16: one process less, and no
# GetUnitFileState call that makes PID 1 walk /etc/systemd/system): the shell reads the files as systemd 219
# (CentOS 7.9's) does for that call, from redhat-plumbers/systemd-rhel7 (rhel-7.9, the 7.9 release and its update of
# Nov 2021) src/shared/install.c unit_file_lookup_state (read, not run here), and, stricter than that word, what
# boot itself reads:
# - the unit file is the first firewalld.service in /etc/systemd/system, /run/systemd/system,
#   /usr/local/lib/systemd/system, /usr/lib/systemd/system (a dangling link too); none: is-enabled's own message;
# - masked (masked-runtime under /run) when that file is a link to /dev/null, an empty file or a device;
# - enabled (/etc/systemd/system) or enabled-runtime (/run/systemd/system) when an entry of a .wants or .requires
#   directory there is named firewalld.service, of any type and in a linked directory too (boot pulls in every such
#   entry by its name: a copied file starts firewalld as a link does; is-enabled counts links only), or when a link
#   there (in a directory that is not itself a link, as systemd does not enter one; backup names too, which the
#   release skips and its update does not; not a dot name, which the glob skips as the release and boot do) is
#   named firewalld.service or resolves to one of the unit files
#   (`-ef`: find_symlinks_fd matches its target's name: the WantedBy links, the Alias
#   dbus-org.fedoraproject.FirewallD1.service); not the link at the top named after the unit whose target is named so
#   too (linked, then linked-runtime);
# - otherwise static, indirect or disabled, by the unit file's [Install] (the shell prints the file with `read`, no
#   `cat`; p_firewalld reads it: unit_file_state_from_install).
# What the shell cannot tell, `systemctl is-enabled` answers: a directory two levels down (the release looks at any
# depth, its update at .wants/.requires only), a directory or unit file this user cannot read, a unit file that is
# a dangling link or no file, a link named firewalld.service at the top that resolves to no unit file (its target's
# name unknown). Not is-enabled's word, on purpose: a link of another name whose target is missing (a removed
# package's, common) is not read as enabling firewalld, where is-enabled says enabled if that missing target is
# named firewalld.service; nothing starts through it at boot, and "enabled" here means "starts at the next boot".
# Left: a link of another name to an existing file named firewalld.service outside the unit directories. The section
# runs in the bounded group (host.GROUPS): `-ef` follows links (one may point into a dead NFS mount), and systemctl
# asks PID 1.
_FW_DIRS = "/etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system"
_FW_INSTALL = "# [Install] of "
_FW_MAX_LINES = 2000
_FW_TOO_LONG = f"# not read on: more than {_FW_MAX_LINES} lines"
_FW_VIA = "# via "  # after enabled / enabled-runtime: the entry that starts it at boot
_ASK = "{ t systemctl is-enabled firewalld; return; }"
_FIREWALLD_ENABLED = (
    f"u=; c=; for d in {_FW_DIRS}; do e=$d/firewalld.service; "
    '[ -h "$e" ] || [ -e "$e" ] || continue; [ -n "$u" ] || u=$e; c="$c $e"; done; '
    '[ -n "$u" ] || { echo "Failed to get unit file state for firewalld.service: No such file or directory"; '
    "return 1; }; "
    'if [ -c "$u" ] || [ -b "$u" ] || { [ -f "$u" ] && ! [ -s "$u" ]; }; then '
    'case "$u" in /run/systemd/system/*) echo masked-runtime;; *) echo masked;; esac; return 1; fi; '
    f'[ -f "$u" ] && [ -r "$u" ] || {_ASK}; '
    "lc=; lr=; for d in /etc/systemd/system /run/systemd/system; do "
    'w=enabled; [ "$d" = /etc/systemd/system ] || w=enabled-runtime; '
    f'[ -d "$d" ] || continue; [ -r "$d" ] && [ -x "$d" ] || {_ASK}; '
    'for e in "$d"/*.wants/firewalld.service "$d"/*.requires/firewalld.service; do '
    f'if [ -h "$e" ] || [ -e "$e" ]; then printf \'%s\\n{_FW_VIA}%s\\n\' "$w" "$e"; return 0; fi; done; '
    'for e in "$d"/* "$d"/*/*; do q=${e%/*}; [ "$q" = "$d" ] || ! [ -h "$q" ] || continue; '
    'if ! [ -h "$e" ]; then [ -d "$e" ] || continue; '
    f'[ "$q" = "$d" ] && [ -r "$e" ] && [ -x "$e" ] || {_ASK}; continue; fi; '
    'm=; for x in $c; do [ "$x" = "$e" ] || ! [ "$e" -ef "$x" ] || m=1; done; '
    f'if [ "$e" = "$d/firewalld.service" ]; then [ -n "$m" ] || {_ASK}; '
    '[ "$d" = /etc/systemd/system ] && lc=1 || lr=1; continue; fi; '
    'case "$e" in */firewalld.service) m=1;; esac; '
    f'[ -z "$m" ] || {{ printf \'%s\\n{_FW_VIA}%s\\n\' "$w" "$e"; return 0; }}; done; done; '
    # systemd 219 answers linked before linked-runtime
    '[ -z "$lc" ] || { echo linked; return 1; }; [ -z "$lr" ] || { echo linked-runtime; return 1; }; '
    f"printf '%s%s\\n' '{_FW_INSTALL}' \"$u\"; "
    # at most _FW_MAX_LINES lines (a unit file is ~25): a huge or endless one is not read on, and said so
    f'n=0; while IFS= read -r l || [ -n "$l" ]; do n=$((n + 1)); [ $n -le {_FW_MAX_LINES} ] || '
    f"{{ echo '{_FW_TOO_LONG}'; break; }}; printf '%s\\n' \"$l\"; done <\"$u\""
)
_INSTALL_KEYS = (b"WantedBy", b"RequiredBy", b"Alias", b"Also")


def _install_words(value: bytes) -> list[bytes]:
    """The words of a WantedBy=/RequiredBy=/Alias=/Also= value as systemd 219's config_parse_strv takes them
    (FOREACH_WORD_QUOTED, util.c split()): blank-separated, a word may be quoted with ' or " (a backslash escapes),
    and at an unclosed quote, text right after a closing quote or a backslash at the end, the rest is garbage and
    dropped; a word that is not UTF-8 is dropped."""
    words, i, n = [], 0, len(value)
    while True:
        while i < n and value[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
            i += 1
        if i >= n:
            return words
        q = value[i : i + 1]
        j = i + 1 if q in (b"'", b'"') else i
        while j < n and (
            value[j : j + 1] != q if q in (b"'", b'"') else value[j : j + 1] not in (b" ", b"\t", b"\r", b"\n")
        ):
            j += 2 if value[j : j + 1] == b"\\" else 1
        if j > n or (
            q in (b"'", b'"') and (j >= n or (j + 1 < n and value[j + 1 : j + 2] not in (b" ", b"\t", b"\r", b"\n")))
        ):
            return words  # unclosed quote, garbage after it, or an escape cut by the end: the rest is dropped
        word = value[i + 1 : j] if q in (b"'", b'"') else value[i:j]
        i = j + 1 if q in (b"'", b'"') else j
        try:
            word.decode("utf-8")
        except UnicodeDecodeError:
            continue
        words.append(word)


def unit_file_state_from_install(data: bytes) -> str:
    """static, indirect or disabled, as systemd 219 (rhel-7.9) decides from the unit file's [Install] section
    (install_info_discover): disabled when WantedBy=, RequiredBy= or Alias= name anything, indirect when only Also=
    does, static otherwise (an empty value empties the list before it; words as _install_words reads them). Lines as
    its config parser reads them: blanks are space, tab, CR and LF only, `#` and `;` comments, a trailing backslash
    (an odd number of them) joins the next line (on the last line: dropped). A NUL (systemd: the file cannot be
    read, an error, not enabled) ends a line here; a `.include` (which systemd follows, to a file not read here)
    counts as static: both the strict side (static counts as enabled in p_firewalld)."""
    section = None
    lists: dict[bytes, list[bytes]] = {}
    lines = data.replace(b"\0", b"\n").split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        cont = (len(line) - len(line.rstrip(b"\\"))) % 2 == 1
        while cont and i < len(lines):
            line = line[:-1] + b" " + lines[i]
            i += 1
            cont = (len(line) - len(line.rstrip(b"\\"))) % 2 == 1
        if cont:
            break  # a continuation the file ends in: systemd drops it
        line = line.strip(b" \t\r\n")
        if not line or line[:1] in (b"#", b";"):
            continue
        if line.startswith(b".include"):
            return "static"
        if line.startswith(b"[") and line.endswith(b"]"):
            section = line[1:-1]
            continue
        if section != b"Install" or b"=" not in line:
            continue
        key, value = (x.strip(b" \t\r\n") for x in line.split(b"=", 1))
        if key in _INSTALL_KEYS:
            lists[key] = lists.get(key, []) + _install_words(value) if value else []
    if any(lists.get(k) for k in (b"WantedBy", b"RequiredBy", b"Alias")):
        return "disabled"
    return "indirect" if lists.get(b"Also") else "static"


@fact(
    "firewalld",
    sections={
        "systemd_running": SHARED,
        # the links on disk, as `systemctl is-enabled` reads them (not `systemctl show`'s UnitFileState: what PID 1
        # computed when it loaded the unit, stale after links changed by hand until a daemon-reload)
        "firewalld_enabled": _FIREWALLD_ENABLED,
        # No `is-active` for root (issue 16: one process less): a running firewalld is a process named firewalld
        # (its ExecStart is the script /usr/sbin/firewalld: the kernel names the process after it), which
        # `processes` lists; a bundle of an older bkdoctor has is-active's answer, and it is read.
        # ... but a user other than root may not see root's processes (/proc mounted with hidepid=1 or 2, as
        # hardening guides ask): then systemd is asked (status 4 without a process for root, who sees them all)
        "firewalld_active": (
            'u=; while read -r k r e x; do if [ "$k" = Uid: ]; then u=$e; break; fi; done </proc/self/status; '
            '[ "$u" = 0 ] && return 4; t systemctl is-active firewalld'
        ),
        "processes": SHARED,
    },
)
def p_firewalld(f: HostFacts) -> dict[str, Any]:
    systemd = f.text("systemd_running").strip() == "yes"
    procs = _process_names(f)
    running = "firewalld" in procs
    active = None
    if systemd:
        sa = f.sections.get("firewalld_active")
        if sa is not None and sa.rc != 4:  # not root (or a bundle of an older bkdoctor, where it always ran)
            a = sa.text().strip().splitlines()
            active = bool(a) and a[-1].strip() == "active"
    # the links on disk count with or without systemd running (a bundle of an older bkdoctor: is-enabled's answer,
    # read when systemd ran, as it was read then)
    sec = f.sec("firewalld_enabled")
    e = sec.text()
    via = None
    if e.startswith(_FW_INSTALL):
        if e.endswith(_FW_TOO_LONG + "\n"):
            raise FactUnavailable(
                T(
                    f"firewalld 的 unit 文件超过 {_FW_MAX_LINES} 行，未读完：无法判断是否开机启动",
                    f"firewalld's unit file has more than {_FW_MAX_LINES} lines, not read on: cannot tell whether "
                    "it starts at boot",
                )
            )
        state = unit_file_state_from_install(sec.out.split(b"\n", 1)[1] if b"\n" in sec.out else b"")
    elif "\n" + _FW_VIA in e:  # the word, then the entry (whose path may hold a newline: all of the rest)
        state, via = e.split("\n" + _FW_VIA, 1)
        via = via.removesuffix("\n")
    elif systemd or f.sections.get("firewalld_wants") is None:  # systemctl's answer, or a bundle's
        lines = e.strip().splitlines()
        state = lines[-1].strip() if lines else ""
    else:
        state = ""
    enabled = state in ("enabled", "enabled-runtime", "static")
    # a bundle of an older bkdoctor: the wants directories it listed
    wants = f.sections.get("firewalld_wants")
    if wants is not None and "firewalld.service" in wants.text().split():
        enabled = True
    return {
        "systemd": systemd,
        "active": bool(active) or running,
        "enabled": enabled,
        "enabled_by": via if enabled else None,
        "process": running,
    }


# Chains that Kubernetes, the CNI plugins and Docker own: their rules are expected once K8s runs.
K8S_CHAIN_PREFIXES = ("KUBE-", "FLANNEL", "CNI-", "DOCKER", "cali-", "felix-", "WEAVE", "ISTIO", "BCS-")


@fact("iptables", sections={"iptables": "t iptables -w -S", "id": _EUID})
def p_iptables(f: HostFacts) -> dict[str, Any]:
    s = f.sec("iptables")
    text = s.text()
    if s.rc == 127 or ("not found" in text and s.rc != 0):
        raise FactUnavailable(T("未安装 iptables 命令", "the iptables command is not installed"), status="skip")
    if s.rc != 0:
        hint = ""
        uid = f.sections.get("id")
        if uid is not None and uid.text().strip() != "0":
            hint = " (not root)"
        raise FactUnavailable(
            T(
                f"iptables -S 失败（退出码 {s.rc}）{hint}：{text.strip()[:200]}",
                f"iptables -S failed (exit {s.rc}){hint}: {text.strip()[:200]}",
            )
        )
    return parse_iptables(text)


def parse_iptables(text: str) -> dict[str, Any]:
    policies: dict[str, str] = {}
    own_rules: list[str] = []
    ignored = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "-P" and len(parts) >= 3:
            policies[parts[1]] = parts[2]
        elif parts[0] == "-A" and len(parts) >= 2:
            chain = parts[1]
            jump = parts[parts.index("-j") + 1] if "-j" in parts[:-1] else ""
            if chain == "DOCKER-USER" and parts[2:] != ["-j", "RETURN"]:
                # Docker's chain for the operator's own rules (Docker puts only `-j RETURN` there): theirs, not Docker's
                own_rules.append(line.strip())
                continue
            if chain.startswith(K8S_CHAIN_PREFIXES) or jump.startswith(K8S_CHAIN_PREFIXES):
                ignored += 1
                continue
            own_rules.append(line.strip())
    filtering = [r for r in own_rules if re.search(r"-j (DROP|REJECT)\b", r)]
    drop_policies = {c: p for c, p in policies.items() if c in ("INPUT", "FORWARD") and p in ("DROP", "REJECT")}
    return {
        "policies": policies,
        "own_rules": own_rules,
        "filtering_rules": filtering,
        "drop_policies": drop_policies,
        "ignored_k8s_rules": ignored,
    }


_SHANGHAI = "/usr/share/zoneinfo/Asia/Shanghai"
_SAME_TZ = f"# /etc/localtime is {_SHANGHAI}"


@fact(
    "timezone",
    sections={
        # readlink prints nothing and exits 1 for anything but a symbolic link: the shell's test tells first
        "localtime_link": "[ -h /etc/localtime ] || return 1; readlink /etc/localtime",
        # the same file (a link to Shanghai's, the guide's setting) has the same checksum: cksum runs for a copy only
        "localtime_sum": (
            f"if [ /etc/localtime -ef {_SHANGHAI} ]; then echo '{_SAME_TZ}'; else cksum /etc/localtime {_SHANGHAI}; fi"
        ),
        # Debian's file, absent on CentOS: status 3 without `cat` (read as its "No such file", a dangling link too)
        "timezone_file": "[ -e /etc/timezone ] || return 3; __bkd_rd /etc/timezone",
        # the SSH transport's clock sample already ran `date '+%s.%N %z'` in this shell and kept the offset in
        # `__bkd_tz` (transport/ssh.py): printed as `date +%z` prints it, and `date` runs only without that sample
        "date_z": 'case "${__bkd_tz-}" in [+-][0-9][0-9][0-9][0-9]) printf \'%s\\n\' "$__bkd_tz";; *) date +%z;; esac',
    },
)
def p_timezone(f: HostFacts) -> dict[str, Any]:
    link = f.sec("localtime_link")
    target = link.text().strip() if link.ok else None
    zone = None
    if target:
        m = re.search(r"zoneinfo/(?:posix/|right/)?(.+)$", target)
        zone = m.group(1) if m else target
    same_as_shanghai = None
    sums = f.sec("localtime_sum").text().splitlines()
    if sums == [_SAME_TZ]:
        same_as_shanghai = True  # one file (-ef: same device and inode): cksum would print one sum twice
    elif len(sums) >= 2:
        a, b = sums[0].split()[:2], sums[1].split()[:2]
        if "/etc/localtime" in sums[0] and "Asia/Shanghai" in sums[1]:
            same_as_shanghai = a == b
    if zone is None and same_as_shanghai:
        zone = "Asia/Shanghai"  # a copied zone file, byte-identical to Shanghai's
    tzfile = f.text("timezone_file", missing_ok=True)
    if zone is None and tzfile:
        zone = tzfile.strip() or None
    offset = f.sec("date_z").text().strip() if f.sec("date_z").ok else None
    if zone is None and same_as_shanghai is None and offset is None:
        raise FactUnavailable(
            T("无法确定时区：/etc/localtime 缺失", "cannot tell the time zone: /etc/localtime is missing")
        )
    return {"zone": zone, "localtime_target": target, "same_as_shanghai": same_as_shanghai, "utc_offset": offset}


# p_time_sync reads ntpstat only when chronyc gave no sync state, and timedatectl only when neither did. chronyc runs
# first (host.BOUNDED), its output kept, and when a line `Leap status<blanks>:<something>` is there with status 0 (the
# parser's regex then matches for sure: it is stricter than the regex) the two others do not run: status 4, a comment.
# chronyc runs without `t`: `$(t ...)` would fork twice, and the section is in the bounded group (`t` is a plain call
# there); `$(exec chronyc ...)`: bash 4.2 forks twice for a substitution in the group's `sh -c` (probe.runs_inline).
# Its output is printed after it ends, with one final newline (the parser's regexes ignore trailing newlines).
_CHRONYC = (
    "__bkd_sync=; command -v chronyc >/dev/null 2>&1 || return 127; r=$(exec chronyc -n tracking); e=$?; "
    "[ -z \"$r\" ] || printf '%s\\n' \"$r\"; [ $e -eq 0 ] || return $e; nl='\n'; "
    # its lines split by the shell at newlines (as getent_hosts': no pattern over the whole output a line, which bash
    # 4.2 scans whole each time); an output with a glob character, which the split would glob, gives no sync state
    'case "$r" in *[][*?]*) return 0;; esac; o=$IFS; IFS=$nl; for l in $r; do '
    'case "$l" in "Leap status"*) l=${l#Leap status}; while :; do case "$l" in [" \t"]*) l=${l#?};; *) break;; esac; '
    'done; case "$l" in :?*) __bkd_sync=1; break;; esac;; esac; done; IFS=$o'
)
_SYNC_KNOWN = "[ -z \"${__bkd_sync-}\" ] || { echo '# not run: chronyc tracking gave the sync state'; return 4; }; "


@fact(
    "time_sync",
    sections={
        "systemd_running": SHARED,
        "processes": SHARED,
        "chronyc_tracking": _CHRONYC,
        "ntpstat": _SYNC_KNOWN + "command -v ntpstat >/dev/null 2>&1 || return 127; t ntpstat",
        "timedatectl": _SYNC_KNOWN + "t timedatectl status",
    },
)
def p_time_sync(f: HostFacts) -> dict[str, Any]:
    procs = _process_names(f)
    daemons = sorted(d for d in ("chronyd", "ntpd", "systemd-timesyn", "openntpd") if d in procs)
    synced: bool | None = None
    offset_s: float | None = None
    source = None
    tr = f.sec("chronyc_tracking")
    if tr.ok:
        text = tr.text()
        m = re.search(r"Leap status\s*:\s*(.+)", text)
        if m:
            synced = m.group(1).strip() == "Normal"
            source = "chronyc tracking"
        m = re.search(r"System time\s*:\s*([\d.]+) seconds (fast|slow)", text)
        if m:
            offset_s = float(m.group(1)) * (1 if m.group(2) == "fast" else -1)
    if synced is None:
        ns = f.sec("ntpstat")
        if ns.rc in (0, 1) and ns.text().strip():
            synced = ns.rc == 0
            source = "ntpstat"
    if synced is None:
        td = f.sec("timedatectl")
        if td.ok:
            m = re.search(r"(?:NTP synchronized|System clock synchronized):\s*(yes|no)", td.text())
            if m:
                synced = m.group(1) == "yes"
                source = "timedatectl"
    return {"daemons": daemons, "synced": synced, "offset_s": offset_s, "source": source}


@fact(
    "resources",
    sections={
        "cpuinfo": _CPUINFO,
        "nproc": _NPROCS_ONLINE,
        # in the file batch (its ~50 lines read by the shell cost bash 4.2 ~3.6 M instructions, more than the batch's
        # lookup; dash's read loop was cheap): a `cat` of the kernel's text, as __bkd_cat printed it
        "meminfo": "__bkd_rd /proc/meminfo",
        "df": SHARED,
    },
)
def p_resources(f: HostFacts) -> dict[str, Any]:
    cpus = None
    for name in ("nproc", "cpuinfo"):
        s = f.sections.get(name)
        if s is not None and s.ok and s.text().strip().isdigit():
            cpus = int(s.text().strip())
            break
    mem_kb = None
    mi = f.text("meminfo")
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", mi, re.M)
    if m:
        mem_kb = int(m.group(1))
    disks = parse_df(f.sec("df").text())
    if cpus is None or mem_kb is None:
        raise FactUnavailable(T("无法读取 CPU 或内存信息", "cannot read the CPU count or the memory size"))
    # the disk that counts is the filesystems holding / and /data, each counted once
    seen, total_kb = set(), 0
    for d in disks:
        if d["device"] in seen:
            continue
        seen.add(d["device"])
        total_kb += d["size_kb"]
    return {"cpus": cpus, "mem_kb": mem_kb, "disks": disks, "disk_kb": total_kb or None}


def _df_row(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 6 and parts[1].isdigit()


def parse_df(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if _df_row(line):
            out.append(
                {
                    "device": parts[0],
                    "size_kb": int(parts[1]),
                    "used_kb": int(parts[2]),
                    "avail_kb": int(parts[3]),
                    "mount": " ".join(parts[5:]),
                }
            )
    return out


@fact("data_disk", sections={"df": SHARED})
def p_data_disk(f: HostFacts) -> dict[str, Any] | None:
    """The /data row of the shared `df / /data` (the second: df -P prints a row per operand, in their order, the
    same filesystem twice too); None when /data is not a directory. df's status is 0 only when both rows are there."""
    old = f.sections.get("df_data")  # a bundle of an older bkdoctor: `test -d /data || exit 3; df -P -k /data`
    s = old or f.sec("df")
    if old is not None:
        if old.rc == 3:
            return None
        text, err = old.text(), old.text()
    else:
        lines = s.text().splitlines()
        if _DATA_DIR not in lines:
            return None  # /data does not exist (or is not a directory)
        text = "\n".join(ln for ln in lines if ln != _DATA_DIR) + "\n"
        # df's own messages: what `df /data` alone printed (it prints no header without a row; not the row of /)
        err = "\n".join(ln for ln in lines if ln != _DATA_DIR and not _df_row(ln) and not ln.startswith("Filesystem "))
    if not s.ok:
        raise FactUnavailable(T(f"df /data 失败：{err.strip()[:200]}", f"df /data failed: {err.strip()[:200]}"))
    d = parse_df(text)
    if old is None:
        d = d[1:]  # the row of / first
    if not d:
        raise FactUnavailable(T("无法解析 df /data 的输出", "cannot parse the output of df /data"))
    return d[0]


# in the probe's file batch (FILE_READS): `cat`'s /proc/self is the probe shell's child, in the same mount namespace
@fact("mounts", sections={"mountinfo": "__bkd_rd /proc/self/mountinfo"})
def p_mounts(f: HostFacts) -> list[dict[str, str]]:
    out = []
    for line in f.text("mountinfo").splitlines():
        parts = line.split()
        if len(parts) < 10 or "-" not in parts:
            continue
        sep = parts.index("-")
        out.append(
            {
                "root": _unoct(parts[3]),
                "mount_point": _unoct(parts[4]),
                "fstype": parts[sep + 1],
                "source": _unoct(parts[sep + 2]),
            }
        )
    return out


def _unoct(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


@fact(
    "daemon_json",
    sections={"daemon_json": "test -e /etc/docker/daemon.json || return 3; __bkd_rd /etc/docker/daemon.json"},
)
def p_daemon_json(f: HostFacts) -> dict[str, Any]:
    """{'exists': bool, 'config': dict|None, 'error': str|None, 'text': str|None}."""
    s = f.sec("daemon_json")
    if s.rc == 3:
        return {"exists": False, "config": None, "error": None, "text": None}
    text = f.text("daemon_json")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        return {"exists": True, "config": None, "text": text, "error": f"line {e.lineno} column {e.colno}: {e.msg}"}
    except RecursionError:
        return {"exists": True, "config": None, "text": text, "error": "nested too deep"}
    if not isinstance(cfg, dict):
        return {"exists": True, "config": None, "text": text, "error": "top level is not a JSON object"}
    return {"exists": True, "config": cfg, "error": None, "text": text}


# the docker CLI sections folded into the main probe (issue 16): skipped (rc 125) when the Engine API socket exists
_NOSOCK = '[ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && return 125; '


@fact(
    "docker",
    sections={"docker_bins": "command -v dockerd; command -v docker; true"},
    api=True,
    # fallback only (a second, small probe when the Engine API cannot be reached): docker CLI calls cost
    # ~30 ms each, so they are not paid on every scan
    fallback={
        "docker_cli_info": (
            _NOSOCK + "command -v docker >/dev/null 2>&1 || return 127; t docker info --format '{{json .}}'"
        ),
        "docker_client": _NOSOCK + "command -v docker >/dev/null 2>&1 || return 127; docker --version",
    },
    # set by the engine in the main probe: the CLI sections run only when that socket is absent (125 if not)
    params={"BKD_DOCKER_IF_NO_SOCKET": None},
)
def p_docker(f: HostFacts) -> dict[str, Any]:
    """Docker facts: the Engine API first (/version + /info), then the docker CLI (fallback probe)."""
    bins = f.sec("docker_bins").text().split()
    installed = bool(bins) or f.docker_api is not None
    if f.docker_api is not None:
        v, i = f.docker_api.get("version") or {}, f.docker_api.get("info") or {}
        return {
            "installed": True,
            "source": "engine-api",
            "server_version": v.get("Version"),
            "api_version": v.get("ApiVersion"),
            "info": i,
            "client_version": None,
            "daemon_error": None,
        }
    info, server_version, source, cli_error = None, None, None, None
    cli_i = f.sections.get("docker_cli_info")
    if cli_i is not None and cli_i.ok:
        try:
            info = json.loads(cli_i.text())
            server_version = info.get("ServerVersion") or None
            source = "docker-cli" if server_version else None
            if not server_version:
                info = None
        except (json.JSONDecodeError, AttributeError, RecursionError):
            info = None
    elif cli_i is not None:
        cli_error = cli_i.text().strip()[-300:]
    client_version = None
    c = f.sections.get("docker_client")
    if c is not None and c.ok:
        m = re.search(r"version\s+([\w.+~-]+)", c.text())
        client_version = m.group(1).rstrip(",") if m else None
    return {
        "installed": installed,
        "source": source,
        "server_version": server_version,
        "api_version": None,
        "info": info,
        "client_version": client_version,
        "daemon_error": f.docker_api_error or cli_error,
    }


# GOGC=off for this one run (issue 16): kubelet is a Go program whose package initialisation garbage-collects on
# every core before it prints its version; without the collector a Kubernetes 1.20 binary's `--version` took 74 ms of
# CPU instead of 100 ms here (kube-apiserver v1.20.2, the same start-up as kubelet's; bench/probe_commands.py -n 20),
# for ~5 MB more peak memory (66.6 -> 71.2 MB) in a process that exits at once. The output is the same. A stand-in or wrapper script
# ignores it. Set by `env` (which then becomes kubelet: one exec more, no process more), in kubelet's environment
# only: not `GOGC=off t kubelet` -- `t` is a shell function, and bash 4.2 in POSIX mode (CentOS 7's /bin/sh) keeps an
# assignment before a function call, exported, after it returns (the next section's `docker info` would get it).
#
# Even so, `kubelet --version` was the largest single cost of a node's probe, and the binary almost never changes
# between two scans. So the section first prints the identity of the binary it would run: the first executable
# regular file named kubelet in $PATH (found by the shell itself: no `command -v` subshell) and one `stat -L` of it:
# device, inode, size, mtime and ctime. TZ=UTC0 keeps the text independent of the login's zone. GNU stat's %y/%z
# print `YYYY-MM-DD hh:mm:ss.NNNNNNNNN +0000` (stat.c's human_time: nstrftime "%Y-%m-%d %H:%M:%S.%N %z", the same
# in the 8.x sources as in 9.1 here; CentOS 7's 8.22 read from that source, not run; ext3's 1-second timestamps print
# .000000000). The ctime cannot be set
# by a user (touch sets mtime only): a binary replaced in place, moved or linked in, or chmod'ed gets a new identity
# (the kernel's timestamps move by a clock tick, 1-10 ms on 3.10: a same-size rewrite of the same inode within the
# tick of the scan's stat, and only that, would go unseen until the next change).
# When that identity is the one the engine passes in BKD_KUBELET_SEEN (the last scan's, which it kept with that
# scan's output: scan/kubeletcache.py), kubelet does not run and a "not run" line says so; the engine puts the kept
# output back after it. No stat, or stat failing: no identity, kubelet runs as before. No executable file named
# kubelet in $PATH: the old `command -v` path (127 when absent; a non-executable one fails as it did).
KUBELET_ID = "# kubelet binary: "
KUBELET_NOT_RUN = "# kubelet --version not run: binary unchanged since the last scan"
# what the engine puts in place of the line above, with the time of the scan whose output it kept
KUBELET_CACHED = "# kubelet --version not run: binary unchanged since the scan at "
# The identity only when the engine keeps a cache (BKD_KUBELET_ID=1: `bkdoctor scan` without --no-cache; every other
# path runs the section as before, without `stat`), and only of a binary that is itself the file PATH names: not a
# symbolic link (a snap's /snap/bin/kubelet -> /usr/bin/snap, an alternatives link: what they run changes while the
# link's target does not), not a path with a newline (the identity is one line). A small file (a wrapper script that
# execs another binary) is not remembered by the engine either (scan/kubeletcache.py).
_KUBELET = (
    '__bkd_k=; if [ -n "$BKD_KUBELET_ID" ]; then __bkd_kp=$PATH:; while [ -n "$__bkd_kp" ]; do '
    "__bkd_kd=${__bkd_kp%%:*}; __bkd_kp=${__bkd_kp#*:}; "
    '[ -n "$__bkd_kd" ] || __bkd_kd=.; if [ -f "$__bkd_kd/kubelet" ] && [ -x "$__bkd_kd/kubelet" ]; then '
    "__bkd_k=$__bkd_kd/kubelet; break; fi; done; fi; "
    'case "$__bkd_k" in *"\n"*) __bkd_k=;; esac; [ -z "$__bkd_k" ] || ! [ -h "$__bkd_k" ] || __bkd_k=; '
    'if [ -z "$__bkd_k" ]; then command -v kubelet >/dev/null 2>&1 || return 127; '
    "if command -v env >/dev/null 2>&1; then t env GOGC=off kubelet --version; else t kubelet --version; fi; "
    "return; fi; "
    "__bkd_ki=$(TZ=UTC0 exec stat -L -c '%d %i %s %y %z' -- \"$__bkd_k\" 2>/dev/null) || __bkd_ki=; "
    'if [ -n "$__bkd_ki" ]; then __bkd_ki="$__bkd_k $__bkd_ki"; '
    f"printf '{KUBELET_ID}%s\\n' \"$__bkd_ki\"; "
    f'if [ "$__bkd_ki" = "$BKD_KUBELET_SEEN" ]; then echo \'{KUBELET_NOT_RUN}\'; return 0; fi; fi; '
    # a path with `=` would be an assignment to env: run without GOGC then (a case without a match is true)
    'if command -v env >/dev/null 2>&1 && case "$__bkd_k" in *=*) false;; esac; then '
    't env GOGC=off "$__bkd_k" --version; else t "$__bkd_k" --version; fi'
)


def kubelet_output(out: bytes) -> tuple[str | None, bytes]:
    """The kubelet_version section's output split into the binary's identity (its first line, without the prefix;
    None when stat gave none, or a bundle of an older bkdoctor) and the rest (kubelet's output, or the not-run
    line)."""
    head = KUBELET_ID.encode()
    if not out.startswith(head):
        return None, out
    line, _, rest = out.partition(b"\n")
    return line[len(head) :].decode("utf-8", "replace"), rest


@fact(
    "kubelet",
    sections={"kubelet_version": _KUBELET},
    # the identity of the binary whose output the engine keeps (scan/kubeletcache.py); empty: kubelet runs.
    # BKD_KUBELET_ID: print the identity (set by the engine when it keeps a cache); empty: as before, no `stat`
    params={"BKD_KUBELET_SEEN": lambda inv, host: "", "BKD_KUBELET_ID": lambda inv, host: ""},
)
def p_kubelet(f: HostFacts) -> dict[str, Any]:
    """`cached_at` (only then): the UTC time of the scan whose `kubelet --version` output this is, when the binary
    has not changed since and this probe did not run it (the engine kept that output)."""
    s = f.sec("kubelet_version")
    if s.rc == 127:
        return {"installed": False, "version": None}
    _, body = kubelet_output(s.out)
    cached_at = None
    if body.startswith(KUBELET_CACHED.encode()):
        line, _, body = body.partition(b"\n")
        cached_at = line[len(KUBELET_CACHED) :].decode("ascii", "replace").strip()
    elif body.startswith(KUBELET_NOT_RUN.encode()):
        raise FactUnavailable(
            T(
                "kubelet --version 未运行（二进制文件自上次扫描以来未变），但 bkdoctor 没有保存它上次的输出",
                "kubelet --version was not run (binary unchanged since the last scan), but bkdoctor has no saved "
                "output of it",
            )
        )
    text = body.decode("utf-8", errors="replace")
    m = re.search(r"v?(\d+\.\d+\.\d+[\w.+-]*)", text)
    if not s.ok or not m:
        raise FactUnavailable(
            T(
                f"kubelet --version 失败：{text.strip()[:200]}",
                f"kubelet --version failed: {text.strip()[:200]}",
            )
        )
    out = {"installed": True, "version": m.group(1)}
    if cached_at is not None:
        out["cached_at"] = cached_at
    return out


SYSCTL_KEYS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
_SYSCTL_PATHS = " ".join(k.replace(".", "/") for k in SYSCTL_KEYS)  # under /proc/sys


# Where the sysctls persisted on CentOS 7.9 come from: what systemd-sysctl.service applies at boot, systemd
# 219-78.el7 (redhat-plumbers/systemd-rhel7 at v219-78: src/sysctl/sysctl.c, src/shared/conf-files.c,
# CONF_DIRS_NULSTR in src/shared/macro.h). It lists the *.conf files of /etc/sysctl.d, /run/sysctl.d,
# /usr/local/lib/sysctl.d and /usr/lib/sysctl.d (/lib/sysctl.d is the same directory on CentOS 7: /lib -> usr/lib);
# a file name seen in an earlier directory hides the same name in a later one (/etc over /run over /usr/lib), so a
# symlink to /dev/null (or any name that reads nothing) masks the file of that name; names starting with "." are
# not read. The files left are sorted by name (strcmp) whatever their directory and read in that order, then RHEL's
# own patch ("sysctl: bring back /etc/sysctl.conf") reads /etc/sysctl.conf last of all (CentOS 7 also links
# /etc/sysctl.d/99-sysctl.conf to it). A later assignment of a key replaces an earlier one: the last line wins.
# Lines: blank and "#"/";" comments skipped, no "=" skipped, key and value stripped of blanks; a key with a "." before
# any "/" has its dots read as slashes. Version 219 knows no "-key" prefix: such a line names another key.
# `sysctl --system` of procps-ng 3.3.10 (CentOS 7's) differs only in corners: it looks in /run/sysctl.d before
# /etc/sysctl.d (a /run file hides an /etc file of the same name), reads names starting with "." and skips a line
# with an empty value; what persists is what boot applies, so that is the model here.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
_SYSCTL_GLOBS = " ".join(f"{d}/*.conf" for d in SYSCTL_DIRS) + f" {SYSCTL_CONF}"
# a header before each file the section prints; "#!#" for a name that is no readable regular file (a symlink to
# /dev/null, or dangling): it hides its name and reads as nothing, as systemd-sysctl reads it
_SYSCTL_HEAD = re.compile(
    r"^(###|#!#) ((?:" + "|".join(re.escape(d) for d in SYSCTL_DIRS) + r")/[^/]+\.conf|" + re.escape(SYSCTL_CONF) + ")$"
)


@fact(
    "sysctl",
    sections={
        "sysctl_runtime": (
            f"for k in {_SYSCTL_PATHS}; do "
            # one line, a number: `read` gives what "$(cat ...)" gives (the value without its newline)
            'if [ -r /proc/sys/$k ]; then v=; IFS= read -r v </proc/sys/$k; printf \'%s=%s\\n\' "$k" "$v"; '
            "else printf '%s=<absent>\\n' \"$k\"; fi; done"
        ),
        "sysctl_files": (
            f"for f in {_SYSCTL_GLOBS}; do "
            'if [ -f "$f" ]; then printf \'### %s\\n\' "$f"; __bkd_rd "$f"; echo; '
            'elif [ -h "$f" ]; then printf \'#!# %s\\n\' "$f"; fi; done; true'
        ),
    },
)
def p_sysctl(f: HostFacts) -> dict[str, Any]:
    runtime: dict[str, str | None] = {}
    for line in f.text("sysctl_runtime").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            runtime[k.replace("/", ".")] = None if v == "<absent>" else v.strip()
    return {"runtime": runtime, **sysctl_at_boot(sysctl_listing(f.text("sysctl_files")))}


def sysctl_listing(text: str) -> list[tuple[str, str | None]]:
    """The sysctl_files section as (path, text) in the order printed; text None: a name that is no regular file."""
    out: list[tuple[str, str | None]] = []
    buf: list[str] = []
    for line in text.split("\n"):
        m = _SYSCTL_HEAD.match(line)
        if m:
            if out and out[-1][1] is not None:
                out[-1] = (out[-1][0], "\n".join(buf))
            out.append((m.group(2), "" if m.group(1) == "###" else None))
            buf = []
        else:
            buf.append(line)
    if out and out[-1][1] is not None:
        out[-1] = (out[-1][0], "\n".join(buf))
    return out


def _sysctl_key(k: str) -> str:
    """systemd 219's normalize_sysctl, written back with dots: "net/ipv4/ip_forward" and "net.ipv4.ip_forward" are
    one key; a "." after a "/" is part of a name (net/ipv4/conf/eth0.1/rp_filter = net.ipv4.conf.eth0/1.rp_filter)."""
    m = re.search(r"[./]", k)
    return k.translate(str.maketrans("./", "/.")) if m and m.group() == "/" else k


def sysctl_at_boot(listing: list[tuple[str, str | None]]) -> dict[str, Any]:
    """What systemd-sysctl of CentOS 7.9 applies at boot from these files (see SYSCTL_DIRS): `persisted`, each
    key's last assignment {value, file, line}; `order`, the files in the order read; `masked`, a hidden file ->
    the file of the same name that hides it."""
    chosen: dict[str, tuple[str, str | None]] = {}  # name -> (path, text), the first directory wins
    masked: dict[str, str] = {}
    conf: list[tuple[str, str | None]] = []
    for path, text in listing:
        if path == SYSCTL_CONF:
            conf.append((path, text))
            continue
        name = path.rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        if name in chosen:
            masked[path] = chosen[name][0]
        else:
            chosen[name] = (path, text)
    order = [chosen[n] for n in sorted(chosen, key=lambda n: n.encode("utf-8", "surrogateescape"))] + conf
    persisted: dict[str, dict[str, Any]] = {}
    for path, text in order:
        for no, raw in enumerate((text or "").split("\n"), 1):
            s = raw.strip(" \t\r\n")
            if not s or s[0] in "#;" or "=" not in s:
                continue
            k, v = s.split("=", 1)
            k, v = _sysctl_key(k.strip(" \t\r\n")), v.strip(" \t\r\n")
            # the value systemd writes; the file named is the last to assign it (systemd keeps an earlier equal
            # one: the same value), the line to change to change what boot applies
            persisted[k] = {"value": v, "file": path, "line": no}
    return {
        "persisted": persisted,
        "order": [p for p, _ in order],
        "masked": masked,
    }


@fact(
    "modules",
    sections={
        # in the probe's file batch (FILE_READS); a kernel without loadable modules has none: status 3 without `cat`
        "modules": "[ -e /proc/modules ] || return 3; __bkd_rd /proc/modules",
        "module_dirs": (
            "for d in /sys/module/br_netfilter /sys/module/bridge; do "  # as `ls -d` lists them: sorted
            'if [ -e "$d" ] || [ -h "$d" ]; then printf \'%s\\n\' "$d"; fi; done; true'
        ),
        "modules_load": (
            "for f in /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules; do "
            '[ -f "$f" ] && { printf \'### %s\\n\' "$f"; __bkd_rd "$f"; echo; }; done; true'
        ),
    },
)
def p_modules(f: HostFacts) -> dict[str, Any]:
    # a kernel without loadable-module support has no /proc/modules: everything is built in (see /sys/module)
    mods = f.text("modules", missing_ok=True) or ""
    loaded = {line.split()[0] for line in mods.splitlines() if line.split()}
    for d in f.sec("module_dirs").text().split():
        loaded.add(d.rsplit("/", 1)[-1])  # built-in modules appear only under /sys/module
    persisted: dict[str, str] = {}
    current = None
    for line in f.text("modules_load").splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            continue
        s = line.split("#", 1)[0].strip()
        if s:
            persisted[s.split()[0]] = current or "?"
    return {"loaded": sorted(loaded), "persisted": persisted}


def parse_hosts(text: str) -> dict[str, list[str]]:
    """name -> list of IPs (in file order; more than one means conflicting lines)."""
    names: dict[str, list[str]] = {}
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip()
        parts = s.split()
        if len(parts) < 2:
            continue
        ip = parts[0]
        for n in parts[1:]:
            names.setdefault(n.lower(), [])
            if ip not in names[n.lower()]:
                names[n.lower()].append(ip)
    return names


@fact("hosts", sections={"etc_hosts": "__bkd_rd /etc/hosts"})
def p_hosts(f: HostFacts) -> dict[str, list[str]]:
    text = f.text("etc_hosts", missing_ok=True)
    return parse_hosts(text or "")


def _hosts_names(inv: Any, host: Any) -> str:
    """The names to resolve: the guide's names under BK_DOMAIN (and its control-machine names on `control`)."""
    th = inv.thresholds
    roles = host.roles if host else ()
    prefixes = (
        list(th["hosts_names"]) + (list(th["hosts_guide_names"]) if "control" in roles else []) if inv.domain else []
    )
    names = [f"{p}.{inv.domain}" if p else inv.domain for p in dict.fromkeys(prefixes)] + list(th["hosts_extra_names"])
    return " ".join(names)


# what each name resolves to here (/etc/hosts or DNS, through nsswitch), as dockerd and curl see it
# IPv4 first (ahostsv4): `getent hosts` asks AF_INET6 first, which a name in /etc/hosts with an IPv4 address
# does not answer, and then waits on DNS; ahostsv4 answers nothing on a host without a non-loopback IPv4
# address (AI_ADDRCONFIG), so `getent hosts` is the fallback. One line each.
# First ONE `getent ahostsv4 n1 0.0.0.0 n2 0.0.0.0 ...` for all names (2 processes, not 3 a name): getent looks the
# keys up in order and goes on after a failure, printing for each key the same lines `getent ahostsv4 key` prints,
# the first with the canonical name (AI_CANONNAME), the others with none (a trailing space). The numeric sentinel
# 0.0.0.0 is answered without a lookup, its first line `0.0.0.0 STREAM 0.0.0.0`: a name's answer is the first line
# with a canonical name after the previous sentinel, taken only when its own sentinel follows (nothing there: its
# ahostsv4 failed, `getent hosts` is left). A name the batch does not reach (the shared timeout, a getent that
# prints otherwise) goes the old way, in parallel, each bounded: the batch only ever gives what the name's own
# `getent ahostsv4` would have given first.
# f=1: ahostsv4 answered nothing for the name in the batch, so only its fallback is left; each name in parallel,
# each lookup bounded (as before the batch), all of it in the function's subshell
_GETENT_FALLBACK = (
    "__bkd_gf() ( nl='\n'; while [ $# -gt 1 ]; do f=$1; n=$2; shift 2; "
    '( r=; [ -n "$f" ] || { r=$(exec timeout -k 1 3 getent ahostsv4 "$n" 2>/dev/null); r=${r%%"$nl"*}; }; '
    '[ -n "$r" ] || { r=$(exec timeout -k 1 3 getent hosts "$n" 2>/dev/null); r=${r%%"$nl"*}; }; '
    'printf \'%s %s\\n\' "$n" "${r%% *}" ) & done; wait )'
)


@fact(
    "resolved",
    sections={
        "getent_hosts": (
            "command -v getent >/dev/null 2>&1 || return 127; nl='\n'; s=0.0.0.0; set --; for n in $BKD_HOSTS_NAMES; "
            'do [ "$n" = $s ] || set -- "$@" "$n" $s; done; r=; if [ $# -gt 0 ]; then '
            'r=$(exec timeout -k 1 3 getent ahostsv4 "$@" 2>/dev/null); '
            # cut off (not getent's own 0 or 2): its last line may be cut as well, so it is not read
            'case $? in 0|2) ;; *) case "$r" in *"$nl"*) r=${r%"$nl"*};; *) r=;; esac;; esac; fi; '
            # one pass over the lines, split by the shell at newlines (IFS; no other expansion in the loop is
            # unquoted), each queried name's answer queued as `A:<address>` at its sentinel (`A:` for none). Not one
            # `${r%%"$nl"*}` and `${r#*"$nl"}` a line over the whole output: bash 4.2 (CentOS 7's /bin/sh) scans the
            # whole string at every pattern match, ~20 M instructions for 6 names. An output with a glob character
            # (a canonical name from DNS or /etc/hosts) would be globbed by the split: every name to the fallback
            'case "$r" in *[][*?]*) r=;; esac; q=; a=; o=$IFS; IFS=$nl; for l in $r; do case "$l" in '
            '"$s "*" $s") q="${q}A:$a "; a=;; *" ") ;; *) [ -n "$a" ] || a=${l%% *};; esac; done; IFS=$o; set --; '
            'for n in $BKD_HOSTS_NAMES; do f=; a=; if [ "$n" != $s ]; then e=${q%% *}; q=${q#* }; '
            'case "$e" in A:*) f=1; a=${e#A:};; esac; fi; '
            'if [ -n "$a" ] && [ -n "$f" ]; then printf \'%s %s\\n\' "$n" "$a"; else set -- "$@" "$f" "$n"; fi; done; '
            # the names left, each as (f, name), to the fallback: a function of its own (HELPERS) whose body is a
            # subshell, so that this section runs in the probe's shell (no subshell of its own: one process fewer)
            # while the fallback's background lookups and `wait` stay in that subshell, forked only when needed
            '[ $# -lt 2 ] || __bkd_gf "$@"'
        ),
    },
    params={"BKD_HOSTS_NAMES": _hosts_names},
)
def p_resolved(f: HostFacts) -> dict[str, str | None]:
    """name -> the first address `getent hosts` gives (None: it does not resolve)."""
    s = f.sec("getent_hosts")
    if s.rc == 127:
        raise FactUnavailable(T("没有 getent 命令", "no getent command"))
    out: dict[str, str | None] = {}
    for line in s.text().splitlines():
        parts = line.split()
        if parts:
            out[parts[0].lower()] = parts[1] if len(parts) > 1 else None
    return out


def _localpv_dirs(inv: Any) -> tuple[str, str]:
    from bkdoctor.inputs import site as site_mod

    return site_mod.localpv_dirs(inv)


# LocalPV: the PV dir is custom.yaml's localpv.hostDir (§五.5), the source dir the threshold (§五.2.3)
@fact(
    "localpv",
    sections={
        "localpv_dirs": (
            'for d in "${BKD_LOCALPV_DIR:-/mnt/blueking}"/vol* "${BKD_LOCALPV_SRC:-/data/bcs/localpv}"/vol*; do '
            '[ -d "$d" ] && echo "$d"; done; true'
        ),
    },
    params={
        "BKD_LOCALPV_DIR": lambda inv, host: _localpv_dirs(inv)[0],
        "BKD_LOCALPV_SRC": lambda inv, host: _localpv_dirs(inv)[1],
    },
)
def p_localpv(f: HostFacts) -> set[str]:
    return set(f.text("localpv_dirs").split())


@fact(
    "localpv_space",
    sections={
        "localpv_df": 's="${BKD_LOCALPV_SRC:-/data/bcs/localpv}"; test -d "$s" || return 3; t df -P -k "$s"',
    },
)  # BKD_LOCALPV_SRC: declared by `localpv`
def p_localpv_space(f: HostFacts) -> dict[str, Any] | None:
    """df of the LocalPV source dir; None when the dir does not exist."""
    s = f.sec("localpv_df")
    if s.rc == 3:
        return None
    if not s.ok:
        raise FactUnavailable(T(f"df 失败：{s.text().strip()[:200]}", f"df failed: {s.text().strip()[:200]}"))
    d = parse_df(s.text())
    if not d:
        raise FactUnavailable(T("无法解析 df 的输出", "cannot parse the output of df"))
    return d[0]


# NFS shared storage (§一.3.2.2), where the inventory says it is mounted
@fact(
    "nfs",
    sections={
        "nfs_df": (
            # every touch of the path (the shell's own `test -d` too) is bounded: the section is in BOUNDED, the last
            # of the group, so on a dead hard mount the group's timeout stops it where a shell test would block the
            # probe for ever (and `stat -f` runs without `t` because it is bounded already; `$(t ...)` would fork
            # twice; `exec`: see probe.runs_inline)
            '[ -n "$BKD_NFS_PATH" ] || return 4; test -d "$BKD_NFS_PATH" || return 3; '
            'printf \'fstype %s\\n\' "$(exec stat -f -c %T "$BKD_NFS_PATH")"; t df -P -k "$BKD_NFS_PATH"'
        ),
    },
    params={"BKD_NFS_PATH": lambda inv, host: getattr(inv, "nfs_path", None) or ""},
)
def p_nfs(f: HostFacts) -> dict[str, Any] | None:
    """{'fstype', df fields} of the NFS path; None when the inventory names none (rc 4); 'missing' when absent."""
    s = f.sec("nfs_df")
    if s.rc == 4:
        return None
    if s.rc == 3:
        return {"missing": True}
    if not s.ok:
        raise FactUnavailable(T(f"df 失败：{s.text().strip()[:200]}", f"df failed: {s.text().strip()[:200]}"))
    text = s.text()
    m = re.search(r"^fstype (\S*)", text, re.M)
    d = parse_df("\n".join(line for line in text.splitlines() if not line.startswith("fstype ")))
    if not d:
        raise FactUnavailable(T("无法解析 df 的输出", "cannot parse the output of df"))
    return {"missing": False, "fstype": m.group(1) if m else None, **d[0]}


# §七.3: from this node, docker.$BK_DOMAIN/v2/ through the ingress (expect 401 Unauthorized). The guide's command is
# `curl -v docker.bkce7.bktencent.com/v2/`; its answer, as three words: curl's %{http_code} %{remote_ip}, its exit.
# The guide gives curl no time limit; the probe gives it 5 s (stricter: a registry that answers later fails here).
INGRESS_MAX_TIME = 5  # seconds, curl's --max-time
# Over SSH (BKD_INGRESS_FWD=1, set by engine.gather_host) the section prints FORWARD instead of running curl, and the
# node's sshd makes the connection (FORWARDED_GETS), unless curl here might not connect as that GET does, each asked
# of the shell alone (no process):
# - a proxy in the environment curl reads: http_proxy (curl takes the lower-case name only, for http), all_proxy,
#   ALL_PROXY (no_proxy is not read: a proxy at all sends the check to curl);
# - a curl config file: CURL_HOME set, or curlrc / .curlrc in $XDG_CONFIG_HOME, ~/.config, ~ and /root (curl's
#   tool_findfile.c; /root: the home of root in passwd, which curl reads when $HOME has none, as under sudo);
# - a global IPv6 address on the node (/proc/net/if_inet6, scope 00): curl asks for every address family and tries
#   IPv6 first, so a name with an AAAA record may take it elsewhere; the probe's getent asks for IPv4 (without a
#   global address curl's IPv6 attempts fail at once and it goes on to IPv4, as the GET does);
# - the login is not this host's own sshd: SSH_CONNECTION's server address is not the one bkdoctor connected to
#   (BKD_SSH_SERVER; empty where it does not know it: through a jump host to a name), as behind a gateway that relays
#   sessions and would make the GET's connection itself. sudo (`become`) drops SSH_CONNECTION: not asked then.
FORWARD = "forward"
_CURLRC = " ".join(
    [
        f'"{d}/{f}"'
        for d in ("${XDG_CONFIG_HOME:-/nonexistent}", "${HOME:-/nonexistent}/.config")
        for f in ("curlrc", ".curlrc")
    ]
    + ['"${HOME:-/nonexistent}/.curlrc"', "/root/.curlrc"]
)
_INGRESS_FORWARD = (
    'if [ -n "$BKD_INGRESS_FWD" ] && [ -z "${http_proxy-}${all_proxy-}${ALL_PROXY-}${CURL_HOME-}" ]; then '
    f'__bkd_r={FORWARD}; for __bkd_c in {_CURLRC}; do [ -e "$__bkd_c" ] && __bkd_r=; done; '
    "[ -r /proc/net/if_inet6 ] && while read -r __bkd_a __bkd_a __bkd_a __bkd_c __bkd_a __bkd_a; do "
    '[ "$__bkd_c" = 00 ] && __bkd_r=; done </proc/net/if_inet6; '
    'if [ -n "${SSH_CONNECTION-}" ]; then __bkd_c=${SSH_CONNECTION#* }; __bkd_c=${__bkd_c#* }; '
    '[ "${__bkd_c%% *}" = "$BKD_SSH_SERVER" ] || __bkd_r=; fi; '
    'if [ -n "$__bkd_r" ]; then echo "$__bkd_r"; return 0; fi; fi; '
)


@fact(
    "registry_ingress",
    sections={
        "registry_ingress": (
            'command -v curl >/dev/null 2>&1 || return 127; [ -n "$BKD_DOMAIN" ] || return 4; '
            + _INGRESS_FORWARD
            + f"curl -s -o /dev/null --max-time {INGRESS_MAX_TIME} -w '%{{http_code}} %{{remote_ip}}' "
            '"http://docker.$BKD_DOMAIN/v2/"; echo " $?"'
        ),
    },
    # BKD_INGRESS_FWD, BKD_SSH_SERVER: '' in every probe (never the environment's); set by engine.gather_host over SSH
    params={
        "BKD_DOMAIN": lambda inv, host: inv.domain or "",
        "BKD_INGRESS_FWD": lambda inv, host: "",
        "BKD_SSH_SERVER": lambda inv, host: "",
    },
)
def p_registry_ingress(f: HostFacts) -> dict[str, Any] | None:
    """{'code': HTTP status (0: no answer), 'remote_ip', 'curl_exit'}; None when BK_DOMAIN is unknown. The section is
    the probe's curl, or over SSH the same three words for the GET the node's own sshd connected (FORWARDED_GETS)."""
    s = f.sec("registry_ingress")
    if s.rc == 127:
        raise FactUnavailable(T("未安装 curl", "curl is not installed"), status="skip")
    if s.rc == 4:
        return None
    if s.text().strip() == FORWARD:  # the GET it stood for was not made (engine.gather_host leaves none such)
        raise FactUnavailable(T("节点上的检查未完成", "the check was not completed on the node"))
    parts = s.text().split()
    code = int(parts[0]) if parts and parts[0].isdigit() else 0
    remote = parts[1] if len(parts) > 2 else None
    rc = int(parts[-1]) if parts and parts[-1].isdigit() else -1
    return {"code": code, "remote_ip": remote or None, "curl_exit": rc}


@dataclass(frozen=True)
class ForwardedGet:
    """A section the SSH transport may answer without its command on the host (engine.gather_host). The probe runs
    the section with `param`=1 (it prints FORWARD where its command would connect as the GET does) and resolves
    `name(params)` there (getent_hosts: the node's /etc/hosts and DNS through nsswitch); the node's sshd connects to
    the first IPv4 address that gave (a direct-tcpip channel, as the login user), this side sends the GET and reads
    up to the final status line (transport.http_status). An answer from a connection that was made, and a name with
    no address at all (curl's exit 6), are written as the section's own command writes them (the three words of
    curl's -w and its exit code for that outcome): the rule and the report cannot tell the two apart. Every other
    outcome (only an IPv6 address, a connection that failed or did not come within the time, sshd that does not
    forward) goes to a second probe that runs the section's own command, curl as the guide does: curl then decides
    how the name resolves and which addresses it tries."""

    name: Callable[[dict[str, str]], str | None]  # the probe's parameters -> the host name (None: run the section)
    port: int
    path: str
    timeout: float
    param: str  # set to 1 in the probe: the section prints FORWARD rather than run its command


# issue 16: curl was the node probe's costliest command (~7 ms of a node's CPU a scan under bash 4.2, bench/fleet.py)
FORWARDED_GETS = {
    "registry_ingress": ForwardedGet(
        lambda p: f"docker.{p['BKD_DOMAIN']}" if p.get("BKD_DOMAIN") else None,
        80,
        "/v2/",
        INGRESS_MAX_TIME,
        "BKD_INGRESS_FWD",
    ),
}


# §三.4.1 / §七.4.2.1: a CA installed for $REGISTRY
@fact(
    "registry_certs",
    sections={
        "registry_certs": (
            '[ -n "$BKD_REGISTRY_HOST" ] || return 4; d="/etc/docker/certs.d/$BKD_REGISTRY_HOST"; '
            'test -d "$d" || return 3; ls -1 "$d"'
        ),
    },
    params={"BKD_REGISTRY_HOST": lambda inv, host: getattr(inv, "registry", None) or ""},
)
def p_registry_certs(f: HostFacts) -> dict[str, Any] | None:
    """Files in /etc/docker/certs.d/$REGISTRY/ (None: no REGISTRY given; [] : no such dir)."""
    s = f.sec("registry_certs")
    if s.rc == 4:
        return None
    if s.rc == 3:
        return {"files": []}
    if not s.ok:
        raise FactUnavailable(
            T(f"无法读取 certs.d：{s.text().strip()[:200]}", f"cannot list certs.d: {s.text().strip()[:200]}")
        )
    return {"files": s.text().split()}


# §三.4.2: the control machine has kubectl, a kubeconfig and the bcs.local hosts line
@fact(
    "control_sync",
    sections={
        "control_sync": (
            "printf 'kubectl %s\\n' \"$(command -v kubectl || echo -)\"; "
            'k="${KUBECONFIG:-$HOME/.kube/config}"; '
            "if [ -s \"$k\" ]; then printf 'kubeconfig %s\\n' \"$k\"; else printf 'kubeconfig -\\n'; fi; "
            "grep bcs.local /etc/hosts | sed 's/^/hosts /'; true"
        ),
    },
)
def p_control_sync(f: HostFacts) -> dict[str, Any]:
    out: dict[str, Any] = {"kubectl": None, "kubeconfig": None, "bcs_local": []}
    for line in f.text("control_sync").splitlines():
        k, _, v = line.partition(" ")
        if k == "kubectl" and v.strip() != "-":
            out["kubectl"] = v.strip()
        elif k == "kubeconfig" and v.strip() != "-":
            out["kubeconfig"] = v.strip()
        elif k == "hosts" and v.split("#", 1)[0].strip():
            out["bcs_local"].append(v.strip())
    return out


@fact("clock", sections={"clock": "date -u +%s"})
def p_clock(f: HostFacts) -> int:
    return int(f.text("clock").strip())


# gathered by the engine, not by the probe: a timed round trip that reads the host's clock
@fact("clock_offset", sections={})
def p_clock_offset(f: HostFacts) -> dict[str, float]:
    """{'offset_s': host clock minus bkdoctor's clock at the round trip's midpoint, 'rtt_s': round trip}."""
    v = f.extra.get("clock_offset")
    if isinstance(v, FactUnavailable):
        raise v
    if v is None:
        raise FactUnavailable(T("未采集时钟样本", "no clock sample was taken"))
    return v


# --- measurements (rules tagged `slow`, opt-in). These are the only sections that write anything: fio's
# temp file under the data dir, removed by the section itself even when fio fails.
@fact(
    "disk_iops",
    sections={
        "fio": (
            # every touch of the directory (a network mount, maybe) is bounded: its `test -d` and the trap's `rm -f` by
            # a `timeout` each (a hang in `test -d`: status 124 or 137, "fio failed"), fio by its own
            'command -v fio >/dev/null 2>&1 || exit 127; timeout -k 5 10 test -d "$BKD_FIO_DIR"; r=$?; '
            "[ $r -eq 0 ] || { [ $r -eq 1 ] && exit 3; exit $r; }; "
            'f="$BKD_FIO_DIR/.bkdoctor-fio.$$"; trap \'timeout -k 5 10 rm -f "$f"\' EXIT INT TERM; '
            'run() { timeout $((BKD_FIO_RUNTIME + 30)) fio --name=bkdoctor --filename="$f" --size="$BKD_FIO_SIZE" '
            '--rw=randrw --rwmixread=50 --bs=4k --ioengine=psync --iodepth=1 --runtime="$BKD_FIO_RUNTIME" '
            '--time_based --output-format=json "$@"; }; '
            # O_DIRECT measures the disk, not the page cache; filesystems without it (tmpfs) get a buffered run
            "run --direct=1 2>/dev/null || { echo '#buffered'; run --direct=0; }"
        ),
        "fio_fstype": 'stat -f -c %T "$BKD_FIO_DIR"',
    },
    params={
        "BKD_FIO_DIR": lambda inv, host: inv.thresholds["iops_dir"],
        "BKD_FIO_RUNTIME": lambda inv, host: str(int(inv.thresholds["fio_runtime_s"])),
        "BKD_FIO_SIZE": lambda inv, host: inv.thresholds["fio_size"],
    },
    budget={"fio": lambda th: float(th["fio_runtime_s"]) + 30},
)
def p_disk_iops(f: HostFacts) -> dict[str, Any]:
    s = f.sec("fio")
    if s.rc == 127:
        raise FactUnavailable(
            T("未安装 fio（yum install -y fio）", "fio is not installed (yum install -y fio)"), status="skip"
        )
    if s.rc == 3:
        raise FactUnavailable(T("测试目录不存在", "the directory to measure does not exist"), status="error")
    text = s.text()
    buffered = "#buffered" in text
    if buffered:
        text = text.split("#buffered", 1)[1]
    start = text.find("{")
    if s.rc != 0 or start < 0:
        raise FactUnavailable(
            T(f"fio 失败（退出码 {s.rc}）：{text.strip()[-300:]}", f"fio failed (exit {s.rc}): {text.strip()[-300:]}")
        )
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
        job = data["jobs"][0]
        read_iops, write_iops = float(job["read"]["iops"]), float(job["write"]["iops"])
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise FactUnavailable(T(f"无法解析 fio 的 JSON 输出：{e}", f"cannot parse fio's JSON output: {e}"))
    # fio_fstype is in a bounded group (host.GROUPS): a hang there leaves it out, and the finished fio run is kept,
    # its filesystem type unknown (None), never discarded
    ft = f.sections.get("fio_fstype")
    fstype = ft.text().strip() if ft is not None and ft.ok else None
    return {
        "iops": read_iops + write_iops,
        "read_iops": read_iops,
        "write_iops": write_iops,
        "buffered": buffered,
        "fstype": fstype,
        "nfs": bool(fstype and fstype.startswith("nfs")),
        "fio_version": data.get("fio version"),
    }


@fact(
    "bandwidth",
    sections={
        "bandwidth": (
            "command -v curl >/dev/null 2>&1 || return 127; "
            'curl -sS -L -o /dev/null --connect-timeout 5 --max-time "$BKD_BW_SECONDS" '
            "-w '%{http_code} %{size_download} %{time_total} %{speed_download}\\n' \"$BKD_BW_URL\"; "
            "rc=$?; [ $rc -eq 28 ] && return 0; return $rc"  # 28: the time limit cut the download: that is the plan
        ),
    },
    params={
        "BKD_BW_URL": lambda inv, host: inv.thresholds["bandwidth_url"],
        "BKD_BW_SECONDS": lambda inv, host: str(int(inv.thresholds["bandwidth_seconds"])),
    },
    budget={"bandwidth": lambda th: float(th["bandwidth_seconds"]) + 30},
)
def p_bandwidth(f: HostFacts) -> dict[str, Any]:
    s = f.sec("bandwidth")
    if s.rc == 127:
        raise FactUnavailable(T("未安装 curl", "curl is not installed"), status="skip")
    text = s.text().strip()
    last = text.splitlines()[-1] if text else ""
    parts = last.split()
    if s.rc != 0 or len(parts) < 4 or not parts[0].isdigit():
        raise FactUnavailable(
            T(f"下载失败（curl 退出码 {s.rc}）：{text[-200:]}", f"download failed (curl exit {s.rc}): {text[-200:]}")
        )
    code, size, secs, speed = int(parts[0]), float(parts[1]), float(parts[2]), float(parts[3])
    if code >= 400 or code == 0:
        raise FactUnavailable(T(f"下载地址返回 HTTP {code}", f"the download URL answered HTTP {code}"))
    return {"http_code": code, "bytes": size, "seconds": secs, "mbps": speed * 8 / 1e6}


def _endpoints(inv: Any, host: Any) -> str:
    """The URLs the thresholds list for the host's roles, each once."""
    endpoints: list[str] = []
    for role in host.roles if host else ():
        for u in inv.thresholds["endpoints"].get(role, []):
            if u not in endpoints:
                endpoints.append(u)
    return " ".join(endpoints)


@fact(
    "endpoints",
    sections={
        "endpoints": (
            "command -v curl >/dev/null 2>&1 || return 127; for u in $BKD_ENDPOINTS; do "
            "r=$(exec curl -sS -o /dev/null --connect-timeout 5 --max-time 8 -w '%{http_code} %{time_connect}' \"$u\" 2>&1); "
            "printf '%s %s %s\\n' \"$u\" \"$?\" \"$(echo $r | tr '\\n' ' ')\"; done"
        ),
    },
    params={"BKD_ENDPOINTS": _endpoints},
    budget={"endpoints": lambda th: 10 * max(1, sum(len(v) for v in th["endpoints"].values()))},
)
def p_endpoints(f: HostFacts) -> list[dict[str, Any]]:
    s = f.sec("endpoints")
    if s.rc == 127:
        raise FactUnavailable(T("未安装 curl", "curl is not installed"), status="skip")
    out = []
    for line in s.text().splitlines():
        parts = line.split(None, 3)
        if len(parts) < 2:
            continue
        url, rc = parts[0], int(parts[1]) if parts[1].isdigit() else -1
        rest = parts[2:] if len(parts) > 2 else []
        code = int(rest[0]) if rest and rest[0].isdigit() else 0
        detail = " ".join(rest[1:]) if len(rest) > 1 else ""
        out.append(
            {"url": url, "curl_exit": rc, "http_code": code, "ok": rc == 0 and code > 0, "detail": detail.strip()}
        )
    return out


def _probe_image(th: dict[str, Any]) -> tuple[str, str]:
    """(repository, tag) of the image the registry proxy is asked for."""
    img = th["registry_probe_image"]
    repo, _, tag = img.rpartition(":") if ":" in img else (img, "", "latest")
    return repo, tag or "latest"


# --- the registry proxy (guide §二): its config, its storage, and HTTP GETs to it and to its upstream
@fact(
    "registry",
    sections={
        "registry_config": 'test -e "$BKD_REGISTRY_CONFIG" || return 3; __bkd_rd "$BKD_REGISTRY_CONFIG"',
        "registry_storage": 'test -d "$BKD_REGISTRY_DATA" || return 3; t df -P -k "$BKD_REGISTRY_DATA"',
        "registry_http": (
            'command -v curl >/dev/null 2>&1 || return 127; b="http://127.0.0.1:$BKD_REGISTRY_PORT"; '
            "printf 'v2 %s\\n' \"$(exec curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' \"$b/v2/\")\"; "
            "printf 'upstream %s\\n' \"$(exec curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' \"$BKD_REGISTRY_UPSTREAM/v2/\")\"; "
            '[ -n "$BKD_REGISTRY_REPO" ] || return 0; '
            'for i in 1 2; do printf \'manifest%s %s\\n\' "$i" "$(exec curl -s -o /dev/null --max-time 60 '
            "-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
            "-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' "
            "-H 'Accept: application/vnd.oci.image.manifest.v1+json' -w '%{http_code} %{time_total}' "
            '"$b/v2/$BKD_REGISTRY_REPO/manifests/$BKD_REGISTRY_TAG")"; done; '
            # the registry's data may be a network mount: `test -d` under `t` (a process, /usr/bin/test, where the shell's
            # own test would block the probe on a dead mount); 1 is "no", a hang (124/137) or any other status nothing;
            # stderr closed for the shell's own "Killed" notice too, a line the parser would not read
            '{ t test -d "$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests"; } 2>/dev/null; '
            "case $? in 0) echo 'cached yes';; 1) echo 'cached no';; esac"
        ),
    },
    params={
        "BKD_REGISTRY_PORT": lambda inv, host: str(int(inv.thresholds["registry_port"])),
        "BKD_REGISTRY_CONFIG": lambda inv, host: inv.thresholds["registry_config"],
        "BKD_REGISTRY_DATA": lambda inv, host: inv.thresholds["registry_data"],
        "BKD_REGISTRY_UPSTREAM": lambda inv, host: inv.thresholds["registry_upstream"].rstrip("/"),
        "BKD_REGISTRY_REPO": lambda inv, host: _probe_image(inv.thresholds)[0],
        "BKD_REGISTRY_TAG": lambda inv, host: _probe_image(inv.thresholds)[1],
    },
)
def p_registry(f: HostFacts) -> dict[str, Any]:
    out: dict[str, Any] = {
        "config_exists": False,
        "config_error": None,
        "remoteurl": None,
        "storage": None,
        "v2": None,
        "upstream": None,
        "manifest": [],
        "cached": None,
    }
    cfg = f.sec("registry_config")
    if cfg.rc != 3:
        text = f.text("registry_config")
        out["config_exists"] = True
        from bkdoctor.model import BadInput
        from bkdoctor.safe.yamlfile import load as safe_load

        try:
            data = safe_load(text or "", "registry config")
            if not isinstance(data, dict):
                raise ValueError("top level is not a mapping")
            out["remoteurl"] = (data.get("proxy") or {}).get("remoteurl") or None
        except (BadInput, ValueError, AttributeError) as e:
            out["config_error"] = (str(e).splitlines() or ["bad YAML"])[0]
    st = f.sec("registry_storage")
    if st.ok:
        d = parse_df(st.text())
        out["storage"] = d[0] if d else None
    http = f.sec("registry_http")
    if http.rc == 127:
        raise FactUnavailable(T("未安装 curl", "curl is not installed"), status="skip")
    for line in http.text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        code = int(parts[1]) if parts[1].isdigit() else 0
        secs = float(parts[2]) if len(parts) > 2 else None
        if parts[0] in ("v2", "upstream"):
            out[parts[0]] = {"code": code, "seconds": secs}
        elif parts[0].startswith("manifest"):
            out["manifest"].append({"code": code, "seconds": secs})
        elif parts[0] == "cached":
            out["cached"] = parts[1] == "yes"
    return out


# -- the tables the engine, the in-cluster job and the tests read: derived from the records above ------------------
FACTS: dict[str, tuple[str, ...]] = {n: r.sections for n, r in RECORDS.items()}  # fact -> the sections it reads
PARSERS: dict[str, Parser] = {n: r.parse for n, r in RECORDS.items()}
API_FACTS = {n for n, r in RECORDS.items() if r.api}  # facts that also need the Docker Engine API of the host
# gathered by a second probe only when the Engine API could not be reached but Docker is installed
DOCKER_FALLBACK_SECTIONS = RECORDS["docker"].fallback
# section -> seconds a measurement may add to the probe's time limit, from the thresholds
# the files a section reads with `__bkd_rd` (shell words: globs, quoted parameters), read by the probe first in ONE
# `cat` with a separator before each (probe._file_batch); `__bkd_rd` then prints a reference the control side
# replaces with the file's bytes. The kernel's /proc files ride along: no size is needed, so one that changes while
# it is read (mountinfo) gives what cat read.
FILE_READS = {
    "os_release": "/etc/os-release",
    "centos_release": "/etc/centos-release",
    "redhat_release": "/etc/redhat-release",
    "fstab": "/etc/fstab",
    "selinux_config": "/etc/selinux/config",
    "timezone_file": "/etc/timezone",
    "daemon_json": "/etc/docker/daemon.json",
    "etc_hosts": "/etc/hosts",
    "registry_config": '"$BKD_REGISTRY_CONFIG"',
    "sysctl_files": _SYSCTL_GLOBS,
    "modules_load": "/etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules",
    "modules": "/proc/modules",  # sized by the kernel only when read: no matter to the batch (probe._file_batch)
    "meminfo": "/proc/meminfo",
    "mountinfo": "/proc/self/mountinfo",  # cat's own: a child of the probe's shell, in its mount namespace
}
MEASURE_BUDGET = {s: b for r in RECORDS.values() for s, b in r.budget.items()}
# section -> a shell function it calls, defined once in the probe's shell before the sections when the section is in
# the probe: reviewed code that may do what a section in the probe's shell may not (background jobs, `wait`), inside
# a function whose body is a subshell (`f() ( ... )`), so none of it reaches the probe's shell
HELPERS = {"getent_hosts": _GETENT_FALLBACK}
# The sections that run in the probe's bounded groups (probe.build_script: `timeout -k 5 GROUP_LIMIT sh -c` each, one
# after the other), each group in its order, the likeliest hang last (a hang costs the sections after it in ITS group,
# as errors; the other group runs whole): every section that runs a command that can hang (`t cmd`: inside a group
# `t` runs it directly), and every section that touches a path that may be a network mount, even with a shell test
# only (`test -d` on a dead hard NFS mount blocks the shell itself, where no per-command timeout could reach it; in
# the group the group's timeout does). Two groups, so that a wedged D-Bus or a held xtables lock (commands that ask
# another process) never costs the disk facts, nor a dead mount the firewall's and the clock's. Not here, and why:
# registry_certs (/etc), fio (a measurement with its own 35 s timeout: its own `test -d` and `rm -f` are bounded by a
# `timeout` each), registry_http (curls with their own limits; its `test -d` on the registry's data runs under `t`).
GROUPS = (
    (  # commands that ask another process: PID 1 or a daemon over D-Bus, chronyd, the xtables lock
        "kubelet_version",
        "docker_cli_info",  # runs only when the Docker socket is absent
        "chronyc_tracking",
        "ntpstat",
        "firewalld_enabled",  # the unit files' links (-ef follows them); systemctl only where they cannot tell
        "firewalld_active",  # systemctl, for a user other than root only
        "timedatectl",  # D-Bus activation of timedated
        # -w: waits for the xtables lock, without limit on CentOS 7 (iptables 1.4.21: `-w` takes no seconds there;
        # from its changelog, not run here); kube-proxy and the CNI hold it all day
        "iptables",
    ),
    (  # paths that may be on a network mount
        "localpv_dirs",  # globs under /data
        "fio_fstype",
        "registry_storage",
        "localpv_df",
        "df",  # / and /data
        "nfs_df",  # the NFS share itself: the likeliest hang of all
    ),
)
BOUNDED = tuple(n for g in GROUPS for n in g)


def _check_params() -> None:
    """Every BKD_* a section reads is declared by some fact (a typo fails at import, not as an empty variable)."""
    for name, snippet in SECTIONS.items():
        for p in re.findall(r"\bBKD_[A-Z0-9_]+", snippet):
            if p not in _PARAMS:
                raise ValueError(f"probe section {name!r} reads {p}, which no fact declares")


_check_params()
