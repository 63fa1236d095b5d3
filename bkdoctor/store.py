"""Scan history in SQLite (sqlite-utils): `$XDG_DATA_HOME/bkdoctor/history.db`, mode 0600.

Stored per scan: its report summary, targets and findings (rule, target, status, severity, message,
observed, expected). Evidence is not stored (it can hold file contents); values under secret-looking keys
are masked by the report builder before anything reaches the database.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from bkdoctor.model import PROBLEM_STATUSES as PROBLEM
from bkdoctor.model import BadInput, T


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "bkdoctor" / "history.db"


def check_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The history database's path, refused (BadInput) when it is a symbolic link (dangling or not) or not a
    regular file, or when one of SQLite's side files is a link. Creates nothing: `scan` calls it before the
    work and records only after the reports are out."""
    import stat

    p = Path(path) if path else default_db_path()
    for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm"), Path(f"{p}-journal")):
        try:
            st = os.lstat(q)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise BadInput(T(f"历史数据库 {q}: {e.strerror}", f"history database {q}: {e.strerror}")) from None
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(
                T(
                    f"历史数据库 {q} 是符号链接: 不跟随（请给出真实路径）",
                    f"history database {q} is a symbolic link: not following it (give the real path)",
                )
            )
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(T(f"历史数据库 {q} 不是普通文件", f"history database {q} is not a regular file"))
    if p.parent.exists() and not p.parent.is_dir():
        raise BadInput(
            T(f"历史数据库 {p}: {p.parent} 不是目录", f"history database {p}: {p.parent} is not a directory")
        )
    if os.path.islink(p.parent):
        # the directory holding the database (and its side files) must not be swapped for a link either; the
        # directories above it are followed like any path on the command line
        raise BadInput(
            T(
                f"历史数据库 {p}: 其所在目录 {p.parent} 是符号链接: 不跟随（请给出真实路径）",
                f"history database {p}: its directory {p.parent} is a symbolic link: not following it (give the real path)",
            )
        )
    return p


# PRAGMA user_version of bkdoctor's history databases ("bkdt"): set on each open, so a database this program
# made is known by its header alone. Databases from before it have 0 and are known by their tables.
USER_VERSION = 0x626B6474
_TABLES = ("scans", "findings", "fixes")


def _refuse_foreign(p: Path) -> None:
    """BadInput unless the file at `p` is absent, empty, or bkdoctor's history database (its user_version, or only
    its tables): another program's file is neither opened for writing, nor chmod'ed, nor given WAL files. Reads
    the header, then at most the schema through a read-only, immutable connection (no lock, no -wal/-shm)."""
    import errno
    import sqlite3
    from urllib.parse import quote

    def refuse(zh: str, en: str) -> BadInput:
        return BadInput(T(f"历史数据库 {p}: {zh}: 未改动它", f"history database {p}: {en}: left as it is"))

    try:
        # never through a link (refused where the database is opened), never blocking on a FIFO swapped in
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            head = fh.read(100)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP):
            return
        raise BadInput(T(f"历史数据库 {p}: {e.strerror}", f"history database {p}: {e.strerror}")) from None
    if not head:
        return
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise refuse("不是 SQLite 数据库", "not an SQLite database")
    if int.from_bytes(head[60:64], "big") == USER_VERSION:
        return
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(p))}?mode=ro&immutable=1", uri=True)
        try:
            tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise refuse(f"无法读取其结构（{str(e)[:200]}）", f"its schema cannot be read ({str(e)[:200]})") from None
    theirs = sorted(t for t in tables if t not in _TABLES and not t.startswith("sqlite_"))
    if theirs or not {"scans", "findings"} <= tables:
        some = ", ".join(t[:40] for t in theirs[:5]) or "-"
        raise refuse(
            f"不是 bkdoctor 的历史数据库（其他程序的表: {some}）",
            f"not a bkdoctor history database (tables of another program: {some})",
        )


_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


def _change_shape(c: dict[str, Any]) -> bool:
    """What `fix.loop.rollback` reads of a journaled change has its type: a file's after_sha256 is a sha256 (it goes
    into the host's restore script), a command has its script, and its undo is text."""
    if c.get("type") == "file":
        sha = c.get("after_sha256")
        return sha is None or (isinstance(sha, str) and _SHA256.match(sha) is not None)
    if c.get("type") == "command":
        script, undo = c.get("script"), c.get("undo")
        return isinstance(script, str) and script.strip() != "" and isinstance(undo, (str, type(None)))
    return True


def _k8s_write_shape(k: dict[str, Any]) -> bool:
    """A journaled K8s write (`applied.k8s`) names its object and maps data keys to text (None: the key was absent)."""
    if not all(isinstance(k.get(f), str) for f in ("kind", "namespace", "name")):
        return False
    for f in ("applied_before", "applied_after"):
        v = k.get(f) or {}
        if not isinstance(v, dict) or not all(
            isinstance(a, str) and isinstance(b, (str, type(None))) for a, b in v.items()
        ):
            return False
    return True


def journal_applied(applied: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a fix's `applied`: the text that came from a host or a control-machine command
    (an error, a failure line, a command's output) masked; what `bkdoctor rollback` restores from (the files'
    backups under `wrote`, a ConfigMap's `applied_before`/`applied_after` contents) kept as it is, or rollback could
    not compare or restore it. The host script's whole log is not kept."""
    from bkdoctor.safe.secrets import mask_text

    def text(v: Any) -> Any:
        return mask_text(v) if isinstance(v, str) else v

    out = {k: v for k, v in applied.items() if k != "log"}
    for k in ("error", "fail"):
        if k in out:
            out[k] = text(out[k])
    for k, field in (("commands", "output"), ("k8s", "error")):
        if isinstance(out.get(k), list):
            out[k] = [{**e, field: text(e[field])} if isinstance(e, dict) and field in e else e for e in out[k]]
    return out


class History:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        import sqlite_utils

        self.path = check_db_path(path)
        _refuse_foreign(self.path)  # before anything is opened for writing or chmod'ed
        self._fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # created 0600 before SQLite opens it (no moment with a wider mode), never through a symbolic link
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as e:
                import errno

                if e.errno == errno.ELOOP:
                    raise BadInput(
                        T(
                            f"历史数据库 {self.path} 是符号链接: 不跟随",
                            f"history database {self.path} is a symbolic link: not following it",
                        )
                    ) from None
                raise
            os.fchmod(self._fd, 0o600)
            self.db = sqlite_utils.Database(str(self.path))
            # what SQLite opened by name is the file opened above (not a link swapped in meanwhile)
            mine, theirs = os.fstat(self._fd), os.lstat(self.path)
            if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
                raise BadInput(
                    T(
                        f"历史数据库 {self.path} 在打开过程中被替换",
                        f"history database {self.path} was replaced while opening it",
                    )
                )
            # before WAL mode: on a new file it lands in the main file's header at once (_refuse_foreign reads it)
            self.db.execute(f"PRAGMA user_version = {USER_VERSION}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self._ensure()
        except BadInput:
            self._close_fd()
            raise
        except (OSError, sqlite_utils.db.NotFoundError) as e:  # type: ignore[attr-defined]
            self._close_fd()
            raise BadInput(T(f"历史数据库 {self.path}: {e}", f"history database {self.path}: {e}")) from None
        except Exception as e:  # sqlite3.DatabaseError: file is not a database, ...
            self._close_fd()
            raise BadInput(
                T(
                    f"历史数据库 {self.path}: {type(e).__name__}: {e}",
                    f"history database {self.path}: {type(e).__name__}: {e}",
                )
            ) from None

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _private(self) -> None:
        if self._fd is not None:
            os.fchmod(self._fd, 0o600)

    def _ensure(self) -> None:
        if "scans" not in self.db.table_names():
            self.db["scans"].create(
                {
                    "id": str,
                    "started_at": str,
                    "finished_at": str,
                    "duration_s": float,
                    "inventory": str,
                    "domain": str,
                    "lang": str,
                    "tool_version": str,
                    "summary": str,
                    "targets": str,
                    "rules": str,
                },
                pk="id",
            )
        if "findings" not in self.db.table_names():
            self.db["findings"].create(
                {
                    "scan_id": str,
                    "rule": str,
                    "target": str,
                    "status": str,
                    "severity": str,
                    "message": str,
                    "observed": str,
                    "expected": str,
                },
                foreign_keys=[("scan_id", "scans", "id")],
            )
            self.db["findings"].create_index(["scan_id"])
        if "fixes" not in self.db.table_names():
            # the journal: what each fix changed (file paths, backups, content hashes; K8s keys before/after),
            # enough to roll it back. File contents are not stored: the backups on the host are.
            self.db["fixes"].create(
                {
                    "id": str,
                    "created_at": str,
                    "target": str,
                    "rule": str,
                    "remediation": str,
                    "status": str,
                    "message": str,
                    "changes": str,
                    "applied": str,
                    "rolled_back_at": str,
                },
                pk="id",
            )

    def save(self, report: dict[str, Any]) -> None:
        from bkdoctor.safe.secrets import mask_obj

        # built masked already; whatever reaches the database goes through it anyway. Not the summary: it is our
        # own counts per status, and its key `pass` looks like a secret's (a count of 2 became `***`)
        summary = {str(k): v for k, v in report["summary"].items() if isinstance(v, int) and not isinstance(v, bool)}
        report = mask_obj(report)
        report["summary"] = summary
        s = report["scan"]
        with self.db.conn:
            self.db["scans"].insert(
                {
                    "id": s["id"],
                    "started_at": s["started_at"],
                    "finished_at": s["finished_at"],
                    "duration_s": s["duration_s"],
                    "inventory": s.get("inventory"),
                    "domain": s.get("domain"),
                    "lang": report["lang"],
                    "tool_version": report["tool"]["version"],
                    "summary": json.dumps(report["summary"]),
                    "targets": json.dumps(report["targets"], ensure_ascii=False),
                    "rules": json.dumps(s.get("rules", [])),
                }
            )
            self.db["findings"].insert_all(
                (
                    {
                        "scan_id": s["id"],
                        "rule": f["rule"],
                        "target": f["target"],
                        "status": f["status"],
                        "severity": f["severity"],
                        "message": f["message"],
                        "observed": json.dumps(f["observed"], ensure_ascii=False, default=str),
                        "expected": json.dumps(f["expected"], ensure_ascii=False, default=str),
                    }
                    for f in report["findings"]
                ),
                batch_size=500,
            )
        self._private()

    def save_fix(self, fix_id: str, outcome: Any) -> None:
        import datetime as dt

        from bkdoctor.fix.plan import plan_to_dict
        from bkdoctor.safe.secrets import mask_text

        plan = outcome.plan
        applied = journal_applied(outcome.applied or {})
        with self.db.conn:
            self.db["fixes"].insert(
                {
                    "id": fix_id,
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "target": outcome.target,
                    "rule": outcome.rule,
                    "remediation": plan.remediation if plan else None,
                    "status": outcome.status,
                    "message": mask_text(outcome.message.en),
                    "changes": json.dumps(plan_to_dict(plan)["changes"] if plan else [], ensure_ascii=False),
                    "applied": json.dumps(applied, ensure_ascii=False, default=str),
                    "rolled_back_at": None,
                }
            )
        self._private()

    def fixes(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "select id, created_at, target, rule, remediation, status, message, rolled_back_at "
                "from fixes order by created_at desc, rowid desc limit ?",
                [limit],
            )
        )

    def fix(self, fix_id: str) -> dict[str, Any]:
        # a prefix is compared as text: `like ?` took `%` and `_` in the id as wildcards (`rollback %` matched a fix)
        rows = list(self.db.query("select * from fixes where substr(id, 1, length(?)) = ?", [fix_id, fix_id]))
        rows = rows if fix_id else []  # an empty prefix names no fix
        if not rows:
            raise BadInput(
                T(f"修复日志（{self.path}）中没有修复 {fix_id!r}", f"no fix {fix_id!r} in the journal ({self.path})")
            )
        if len(rows) > 1:
            raise BadInput(T(f"修复 id 前缀 {fix_id!r} 有歧义", f"fix id prefix {fix_id!r} is ambiguous"))
        r = rows[0]
        r["changes"] = self._column(r, "fix", "changes", "[]", list)
        r["applied"] = self._column(r, "fix", "applied", "{}", dict)
        bad = next((c for c in r["changes"] if not isinstance(c, dict) or not isinstance(c.get("path", ""), str)), 0)
        for key in ("wrote", "k8s"):
            v = r["applied"].get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(w, dict) for w in v)):
                bad = v
        for w in (r["applied"].get("wrote") or []) if bad == 0 else []:
            if not all(isinstance(w.get(k, ""), (str, type(None))) for k in ("path", "backup")):
                bad = w
        if bad == 0:
            bad = next((c for c in r["changes"] if not _change_shape(c)), 0)
        if bad == 0:
            bad = next((k for k in r["applied"].get("k8s") or [] if not _k8s_write_shape(k)), 0)
        if bad != 0:
            raise BadInput(
                T(
                    f"{self.path}: 修复 {str(r['id'])[:80]!r}: 日志记录已损坏（changes/applied 的结构不符合预期）: 未回滚",
                    f"{self.path}: fix {str(r['id'])[:80]!r}: the journal entry is damaged (changes/applied of an "
                    f"unexpected shape): not rolled back",
                )
            )
        return r

    def _column(self, r: dict[str, Any], what: str, col: str, default: str, kind: type) -> Any:
        """A JSON column of a row, of the expected type, or BadInput naming the scan or fix (a damaged or hand-edited
        database is bad input, not a crash)."""
        raw = r.get(col)
        try:
            v = json.loads(raw or default) if isinstance(raw, (str, type(None))) else None
        except (ValueError, RecursionError):
            v = None
        if not isinstance(v, kind):
            raise BadInput(
                T(
                    f"{self.path}: {'修复' if what == 'fix' else '扫描'} {str(r.get('id'))[:80]!r}: 列 {col} 不是 JSON "
                    f"{'列表' if kind is list else '对象'}（数据库损坏？）",
                    f"{self.path}: {what} {str(r.get('id'))[:80]!r}: column {col} is not a JSON "
                    f"{'list' if kind is list else 'object'} (a damaged database?)",
                )
            )
        return v

    def mark_rolled_back(self, fix_id: str) -> None:
        import datetime as dt

        with self.db.conn:
            self.db["fixes"].update(fix_id, {"rolled_back_at": dt.datetime.now(dt.timezone.utc).isoformat()})

    def scans(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from scans order by started_at desc, rowid desc limit ?", [limit]))
        for r in rows:
            summary = self._column(r, "scan", "summary", "{}", dict)
            if not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in summary.values()):
                raise BadInput(
                    T(
                        f"{self.path}: 扫描 {str(r['id'])[:80]!r}: summary 列含有计数以外的内容（数据库损坏？）",
                        f"{self.path}: scan {str(r['id'])[:80]!r}: column summary holds other than counts "
                        f"(a damaged database?)",
                    )
                )
            r["summary"] = summary
            if r.get("duration_s") is not None and (
                not isinstance(r["duration_s"], (int, float)) or isinstance(r["duration_s"], bool)
            ):
                raise BadInput(
                    T(
                        f"{self.path}: 扫描 {str(r['id'])[:80]!r}: duration_s 列不是数字（数据库损坏？）",
                        f"{self.path}: scan {str(r['id'])[:80]!r}: column duration_s is not a number (a damaged database?)",
                    )
                )
        return rows

    def resolve(self, ref: str) -> str:
        """A scan id, a unique prefix of one, or -N (N-th latest, -1 = latest)."""
        if ref.startswith("-") and ref[1:].isdigit():
            n = int(ref[1:])
            rows = self.scans(limit=n)
            if len(rows) < n or n == 0:
                raise BadInput(
                    T(
                        f"没有扫描 {ref}: 历史中只有 {len(rows)} 次扫描",
                        f"no scan {ref}: history has {len(rows)} scan(s)",
                    )
                )
            return rows[n - 1]["id"]
        rows = list(self.db.query("select id from scans where substr(id, 1, length(?)) = ?", [ref, ref])) if ref else []
        if not rows:
            raise BadInput(T(f"{self.path} 中没有扫描 {ref!r}", f"no scan {ref!r} in {self.path}"))
        exact = [r for r in rows if r["id"] == ref]
        if exact:
            return ref
        if len(rows) > 1:
            raise BadInput(
                T(
                    f"扫描 id 前缀 {ref!r} 有歧义（{len(rows)} 次扫描）",
                    f"scan prefix {ref!r} is ambiguous ({len(rows)} scans)",
                )
            )
        return rows[0]["id"]

    def findings(self, scan_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        """A scan's findings by (rule, target); a row of another shape (NULL rule, BLOB message, ...: a damaged or
        hand-edited database) is BadInput naming the database and the scan, not a crash in `diff`."""
        out = {}
        for r in self.db.query("select * from findings where scan_id = ?", [scan_id]):
            for col, types in (("rule", str), ("target", str), ("status", str), ("message", (str, type(None)))):
                if not isinstance(r.get(col), types):
                    what = "text" if types is str else "text or NULL"
                    raise BadInput(
                        T(
                            f"{self.path}: 扫描 {str(scan_id)[:80]!r}: findings 的列 {col} 须为"
                            f"{'文本' if types is str else '文本或 NULL'}，实为 {type(r.get(col)).__name__}（数据库损坏？）",
                            f"{self.path}: scan {str(scan_id)[:80]!r}: findings column {col} must be {what}, not "
                            f"{type(r.get(col)).__name__} (a damaged database?)",
                        )
                    )
            out[(r["rule"], r["target"])] = r
        return out

    def diff(self, a: str | None = None, b: str | None = None) -> dict[str, Any]:
        """Compare two scans (default: the last two): new problems, resolved, still failing, by rule and target."""
        if a is None and b is None:
            rows = self.scans(limit=2)
            if len(rows) < 2:
                raise BadInput(
                    T(f"diff 需要两次扫描；历史中只有 {len(rows)} 次", f"diff needs two scans; history has {len(rows)}")
                )
            b, a = rows[0]["id"], rows[1]["id"]
        elif a is None or b is None:
            raise BadInput(
                T("diff 接受两个扫描 id，或不给（比较最近两次）", "diff takes two scan ids, or none for the last two")
            )
        a, b = self.resolve(a), self.resolve(b)
        fa, fb = self.findings(a), self.findings(b)
        new, resolved, still, changed = [], [], [], []
        for key in sorted(set(fa) | set(fb)):
            sa = fa.get(key, {}).get("status")
            sb = fb.get(key, {}).get("status")
            item = {
                "rule": key[0],
                "target": key[1],
                "before": sa,
                "after": sb,
                "message": (fb.get(key) or fa.get(key) or {}).get("message"),
            }
            pa, pb = sa in PROBLEM, sb in PROBLEM
            if pb and not pa:
                new.append(item)
            elif pa and not pb:
                resolved.append(item)
            elif pa and pb:
                (still if sa == sb else changed).append(item)
        return {"from": a, "to": b, "new": new, "resolved": resolved, "still_failing": still, "changed": changed}
