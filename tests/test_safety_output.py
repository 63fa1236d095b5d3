"""Output files and the history database (issue 10, items 13 and 14), as an operator meets them: real
subprocesses scanning this machine read-only (`--rule swap`), real umasks, a real read-only mount (in a private
mount namespace of the command alone), real symbolic links, a real corrupted and a real locked SQLite file.

- Reports respect the umask and keep an existing file's mode.
- A bad output path (a directory, a missing directory, a read-only one) fails before the scan: exit 2, one
  line, nothing created (no other report, no history database).
- `--db` never follows a symbolic link; a corrupted or locked database costs only the history entry: the
  reports and the terminal summary are out first, the problem is one warning line, the exit code is the
  findings'.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL = """\
domain: bkce7.bktencent.com
hosts:
  - name: ctl
    address: localhost
    roles: [control]
"""


def run(*args, env=None, umask=None, prefix=(), timeout=120):
    e = dict(os.environ)
    e.pop("BKDOCTOR_DEBUG", None)
    e.setdefault("LANG", "C.UTF-8")
    e.update(env or {})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


@pytest.fixture
def home(tmp_path):
    return {"XDG_DATA_HOME": str(tmp_path / "xdg")}


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def one_line_error(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bkdoctor: error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# -- item 13: modes -------------------------------------------------------------------------------------------
def test_reports_follow_the_umask_and_keep_an_existing_mode(tmp_path, home):
    out = tmp_path / "out"
    out.mkdir()
    files = [out / "r.json", out / "r.html", out / "r.xml"]
    args = [
        "scan",
        "--rule",
        "swap",
        "--no-history",
        "--json",
        str(files[0]),
        "--html",
        str(files[1]),
        "--junit",
        str(files[2]),
    ]
    r = run(*args, env=home, umask=0o077)
    assert r.returncode in (0, 1), r.stderr
    assert [mode(f) for f in files] == [0o600] * 3  # umask 077: nobody else may read the reports
    for f in files:
        f.unlink()
    r = run(*args, env=home, umask=0o027)
    assert [mode(f) for f in files] == [0o640] * 3
    # an existing file keeps its mode, whatever the umask: the 0600 report under umask 077 ...
    for f, m in zip(files, (0o600, 0o640, 0o604)):
        os.chmod(f, m)
    r = run(*args, env=home, umask=0o022)
    assert r.returncode in (0, 1), r.stderr
    assert [mode(f) for f in files] == [0o600, 0o640, 0o604]
    assert json.loads(files[0].read_text())["schema"] == "bkdoctor/report/v1"
    # ... and its owner (a report a colleague owns stays theirs)
    os.chown(files[0], 4321, 4321)
    run(*args, env=home, umask=0o077)
    st = os.stat(files[0])
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4321, 0o600)
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json", "r.xml"]  # no temp file left


def test_other_output_files_follow_the_umask(tmp_path, home):
    y = tmp_path / "job.yaml"
    r = run("cluster-job", "-o", str(y), env=home, umask=0o077)
    assert r.returncode == 0, r.stderr
    assert mode(y) == 0o600 and "kind: Job" in y.read_text()
    os.chmod(y, 0o644)
    run("cluster-job", "-o", str(y), env=home, umask=0o077)
    assert mode(y) == 0o644


# -- item 13: bad output paths fail before the scan -----------------------------------------------------------
def _ro_dir_prefix(d: Path) -> list[str]:
    """Run the command in a private mount namespace where `d` is mounted read-only (root cannot write there
    either; the machine's own mounts are not touched)."""
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
        str(d),
    ]


@pytest.mark.parametrize("case", ["html-is-a-dir", "json-missing-dir", "junit-read-only-dir", "html-under-a-file"])
def test_bad_output_path_fails_before_the_scan_and_creates_nothing(tmp_path, home, case):
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "afile").write_text("x")
    bad = {
        "html-is-a-dir": ("--html", str(tmp_path)),
        "json-missing-dir": ("--json", "/nonexistent/x.json"),
        "junit-read-only-dir": ("--junit", str(ro / "r.xml")),
        "html-under-a-file": ("--html", str(tmp_path / "afile" / "r.html")),
    }[case]
    prefix = _ro_dir_prefix(ro) if case == "junit-read-only-dir" else ()
    good = tmp_path / "good.json" if bad[0] != "--json" else tmp_path / "good.xml"
    good_opt = "--json" if bad[0] != "--json" else "--junit"
    db = tmp_path / "new.db"
    r = run("scan", "--rule", "swap", "--db", str(db), good_opt, str(good), *bad, env=home, prefix=prefix)
    line = one_line_error(r)
    assert bad[1] in line or os.path.dirname(bad[1]) in line, line
    # refused before the work: no report written, no history database, nothing in the read-only dir
    assert not good.exists() and not db.exists() and list(ro.iterdir()) == []
    assert not (Path(home["XDG_DATA_HOME"])).exists()


def test_scan_with_new_db_and_unwritable_json_creates_nothing(tmp_path, home):
    """The issue's example: `scan --db new.db --json /nonexistent/x` exits 2 and creates no database."""
    db = tmp_path / "new.db"
    one_line_error(run("scan", "--db", str(db), "--json", "/nonexistent/x", env=home))
    assert sorted(tmp_path.iterdir()) == []


def test_fix_json_and_export_dir_are_checked_before_the_scan(tmp_path, home):
    one_line_error(
        run("fix", "--rule", "swap", "--dry-run", "--json", str(tmp_path), "--db", str(tmp_path / "h.db"), env=home)
    )
    (tmp_path / "f").write_text("x")
    line = one_line_error(run("fix", "--rule", "swap", "--export", "ansible", str(tmp_path / "f"), env=home))
    assert "not a directory" in line
    one_line_error(run("fix", "--rule", "swap", "--export", "ansible", "/nonexistent/a/b", env=home))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# -- item 14: the history database ----------------------------------------------------------------------------
def test_db_symlink_is_never_followed(tmp_path, home):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    os.chmod(target, 0o644)
    link = tmp_path / "link.db"
    link.symlink_to(target)
    line = one_line_error(run("scan", "--rule", "swap", "--db", str(link), env=home))
    assert "symbolic link" in line
    assert target.read_text() == "precious\n" and mode(target) == 0o644  # not chmod'ed, not written
    # a dangling link: refused, and nothing is created where it points
    dangling = tmp_path / "dangling.db"
    dangling.symlink_to(tmp_path / "elsewhere.db")
    for cmd in (["scan", "--rule", "swap"], ["history"], ["journal"], ["diff"]):
        line = one_line_error(run(*cmd, "--db", str(dangling), env=home))
        assert "symbolic link" in line, (cmd, line)
    assert not (tmp_path / "elsewhere.db").exists()
    # SQLite's side files are names too: a planted -wal link is refused
    real = tmp_path / "real.db"
    (tmp_path / "real.db-wal").symlink_to(target)
    assert "symbolic link" in one_line_error(run("history", "--db", str(real), env=home))
    assert target.read_text() == "precious\n"


def test_history_refuses_a_link_swapped_in_after_the_check(tmp_path):
    """O_NOFOLLOW: History() itself, not only the CLI's check, never opens through a link."""
    from bkdoctor.model import BadInput
    from bkdoctor.store import History

    target = tmp_path / "victim"
    target.write_text("precious\n")
    link = tmp_path / "h.db"
    link.symlink_to(target)
    import bkdoctor.store as store

    orig = store.check_db_path
    store.check_db_path = lambda p=None: Path(p)  # as if the link appeared after the check
    try:
        with pytest.raises(BadInput, match="symbolic link"):
            History(link)
    finally:
        store.check_db_path = orig
    assert target.read_text() == "precious\n"


def _inv(tmp_path, kernel_min):
    p = tmp_path / f"inv-{kernel_min}.yaml"
    p.write_text(LOCAL + textwrap.dedent(f"thresholds: {{kernel_min: '{kernel_min}'}}\n"))
    return str(p)


@pytest.mark.parametrize("kernel_min,code", [("0.1", 0), ("999", 1)])
def test_corrupted_db_costs_only_the_history_entry(tmp_path, home, kernel_min, code):
    db = tmp_path / "bad.db"
    garbage = b"this is not an SQLite database\n" * 100
    db.write_bytes(garbage)
    out = tmp_path / "r.json"
    r = run(
        "scan",
        "-i",
        _inv(tmp_path, kernel_min),
        "--rule",
        "kernel-version",
        "--db",
        str(db),
        "--json",
        str(out),
        env=home,
    )
    assert r.returncode == code, (r.returncode, r.stderr)  # from the findings, not from the database
    assert json.loads(out.read_text())["schema"] == "bkdoctor/report/v1"  # the report is out
    assert "Scan " in r.stdout  # and the terminal summary
    warn = r.stderr.strip().splitlines()
    assert len(warn) == 1 and warn[0].startswith("bkdoctor: warning: ") and "history" in warn[0], r.stderr
    assert "Traceback" not in r.stderr
    assert db.read_bytes() == garbage  # the operator's file is left as it was


def test_locked_db_costs_only_the_history_entry(tmp_path, home):
    from bkdoctor.store import History

    db = tmp_path / "h.db"
    History(db)  # a real, valid history database
    holder = sqlite3.connect(str(db), timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another bkdoctor (or a sqlite3 shell) holds it
    try:
        r = run(
            "scan",
            "-i",
            _inv(tmp_path, "999"),
            "--rule",
            "kernel-version",
            "--db",
            str(db),
            "--json",
            "-",
            env=home,
            timeout=180,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["findings"][0]["status"] == "fail"
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("bkdoctor: warning: ") and "locked" in lines[-1], r.stderr
    assert "Scan " in r.stderr  # the summary (on stderr with --json -) came before the warning
    assert sum(1 for l in lines if l.startswith("bkdoctor:")) == 1 and "Traceback" not in r.stderr
    assert History(db).scans() == []  # nothing half-recorded


def test_locked_journal_does_not_stop_a_fix(nshost_factory, tmp_path):
    """A journal that cannot be written after a change was made: the fix still reports `fixed`, a warning says
    where the backups are, and nothing crashes (the change itself is not undone)."""
    import asyncio

    from hostcases import FIXTURES, Case, make_host

    from bkdoctor.fix.loop import run_fix
    from bkdoctor.inputs.inventory import HostSpec, local_inventory
    from bkdoctor.scan import loader
    from bkdoctor.store import History
    from bkdoctor.transport import LocalTransport

    host = make_host(
        nshost_factory,
        Case(
            rule="hosts-file",
            name="x",
            status="fail",
            path=FIXTURES,
            spec={"files": {"/etc/hosts": "127.0.0.1 localhost\n"}},
        ),
    )
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.hosts = [
        HostSpec(name="n", address="10.0.0.5", roles=("node",), local=True),
        HostSpec(name="m", address="10.0.0.2", roles=("master",)),
    ]
    inv.ingress_ip = "10.96.45.12"
    hist = History(tmp_path / "h.db")
    holder = sqlite3.connect(str(tmp_path / "h.db"), timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    said = []
    try:
        out = asyncio.run(
            run_fix(
                inv,
                loader.select(["hosts-file"], None),
                hosts={"n"},
                cluster=None,
                dry_run=False,
                allow_disruptive=False,
                confirm=lambda p: True,
                say=said.append,
                history=hist,
                factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root),
            )
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [o.status for o in out] == ["fixed"]
    warn = [s for s in said if s.startswith("warning:")]
    assert len(warn) == 1 and "locked" in warn[0] and "/etc/hosts <- /etc/hosts.bak-" in warn[0], said
    assert b"# BEGIN bkdoctor" in host.read("/etc/hosts")
    assert hist.fixes() == []


@pytest.mark.parametrize(
    "before,after",
    [
        (b"SELINUX=enforcing", b"SELINUX=disabled"),  # no final newline: before, one line "-...+..."
        (b"SELINUX=enforcing\r\nSELINUXTYPE=targeted\r\n", b"SELINUX=disabled\r\nSELINUXTYPE=targeted\r\n"),
        (b"a\n", b"a"),  # only the final newline goes: the diff must say so
        (
            "x\ry # note\x85z\n".encode(),
            "x\ry # note\x85z\nnew\n".encode(),
        ),  # a CR or NEL inside a line is not a line end
        (b"", b"one\ntwo"),
    ],
)
def test_file_diff_shows_what_is_written(tmp_path, before, after):
    """FileChange.diff is the diff diff(1) shows: `\\ No newline at end of file` where a last line has none, lines
    split at "\\n" only; patch(1) applies it to the old bytes and gets the new ones exactly. On the terminal a CR
    is visible (␍), never a carriage return that rewrites the line."""
    import shutil

    from bkdoctor.fix.plan import FileChange
    from bkdoctor.safe.terminal import clean

    d = FileChange("/etc/selinux/config", before, after).diff()
    for line in d.split("\n")[:-1]:
        assert line.startswith(("---", "+++", "@@", "-", "+", " ", "\\ No newline at end of file")), (line, d)
    if not before.endswith(b"\n") and before:
        assert "\n\\ No newline at end of file\n+" in d, d
    if b"\r\n" in before:
        assert "-SELINUX=enforcing␍\n" in clean(d), clean(d)
    if "\x85".encode() in before:
        assert " x␍y # note\\x85z\n+new\n" in clean(d), clean(d)  # one line, as the file has it
    if shutil.which("patch"):
        f = tmp_path / "config"
        f.write_bytes(before)
        r = subprocess.run(["patch", "-s", str(f)], input=d.encode(), capture_output=True, timeout=30)
        assert r.returncode == 0 and f.read_bytes() == after, (r.stdout, r.stderr, d)
