"""Fix mode: plan (pure, diffable) -> confirm -> apply (re-checking, with backups, under a lock) -> re-gather the
touched facts -> re-run the rule -> journal.

A remediation is `remediations/<scope>/<id>.py` with `REMEDIATION` (metadata) and a pure `plan(facts, ctx)` returning a
`Plan`: file changes (before -> after bytes), commands, K8s object changes, or manual steps. An empty plan
means the system is already right (`unchanged`): that is what makes a fix idempotent.

Host changes are applied by ONE shell script per target through the same transport as the scan (local or SSH):
it takes a lock (flock), re-checks that each file still has the content the plan was made from (sha256),
backs it up next to itself (`<file>.bak-<timestamp>`), writes a temp file in the same directory, keeps mode
and owner, syncs and renames. If any step fails, the files it already changed are restored from their
backups before it exits. Nothing is written when a check fails.
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import importlib.util
import json
import shlex
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bkdoctor.model import BadInput, T


@dataclass
class FileChange:
    path: str
    before: bytes | None  # None: the file does not exist yet
    after: bytes
    mode: int = 0o644  # for new files; existing files keep theirs
    backup_suffix: str = "bak"

    def diff(self) -> str:
        a = (self.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
        b = self.after.decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, f"a{self.path}" if self.before is not None else "/dev/null",
                                            f"b{self.path}"))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "file", "path": self.path, "before_sha256": _sha(self.before), "after_sha256": _sha(self.after),
                "created": self.before is None}


@dataclass
class CommandChange:
    script: str
    describe: T
    disruptive: bool = False
    undo: str | None = None  # shown by rollback: how to undo by hand (commands are not rolled back automatically)
    where: str = "host"  # host: on the finding's host; control: on the control machine, in install_dir

    def diff(self) -> str:
        return "".join(f"$ {line}\n" for line in self.script.strip().splitlines())

    def to_dict(self) -> dict[str, Any]:
        return {"type": "command", "script": self.script, "disruptive": self.disruptive, "undo": self.undo,
                "where": self.where}


@dataclass
class K8sChange:
    kind: str  # "ConfigMap"
    namespace: str
    name: str
    before: dict[str, str]  # the data keys this change edits, as they were
    after: dict[str, str]
    resource_version: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # what the remediation needs to re-plan on a conflict

    def diff(self) -> str:
        out = []
        for k in sorted(set(self.before) | set(self.after)):
            a = (self.before.get(k) or "").splitlines(keepends=True)
            b = (self.after.get(k) or "").splitlines(keepends=True)
            out.extend(difflib.unified_diff(a, b, f"a/{self.kind}/{self.namespace}/{self.name}[{k}]",
                                            f"b/{self.kind}/{self.namespace}/{self.name}[{k}]"))
        return "".join(l if l.endswith("\n") else l + "\n" for l in out)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "k8s", "kind": self.kind, "namespace": self.namespace, "name": self.name,
                "before": self.before, "after": self.after}


@dataclass
class Plan:
    rule: str
    target: str
    remediation: str
    changes: list[Any] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # no safe automatic fix: exact commands to run
    note: T | None = None
    disruptive: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes and not self.manual

    def diff(self) -> str:
        return "".join(c.diff() for c in self.changes)


@dataclass(frozen=True)
class Remediation:
    id: str
    rule: str
    title: T
    scope: str = "host"  # host | cluster
    disruptive: bool = False


def _sha(b: bytes | None) -> str | None:
    return hashlib.sha256(b).hexdigest() if b is not None else None


# -- loading -----------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def all_remediations() -> dict[str, Any]:
    """{id: module} of remediations/<scope>/<id>.py (loaded by path, like rules)."""
    from bkdoctor.scan.loader import remediations_dir

    out = {}
    for path in sorted(remediations_dir().glob("*/*.py")):
        if path.name.startswith("_"):
            continue
        name = "bkdoctor_remediations." + path.stem.replace("-", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        rem = getattr(mod, "REMEDIATION", None)
        if not isinstance(rem, Remediation) or not callable(getattr(mod, "plan", None)):
            raise ImportError(f"{path}: needs REMEDIATION and plan()")
        if rem.id != path.stem:
            raise ImportError(f"{path}: remediation id {rem.id!r} does not equal the file name")
        if rem.scope != path.parent.name:
            raise ImportError(f"{path}: a {rem.scope} remediation lives in remediations/{rem.scope}/")
        out[rem.id] = mod
    return out


# -- host apply script -------------------------------------------------------------------------------
APPLY_PRELUDE = r"""set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
changed=""
restore() {
  for fb in $changed; do
    f=${fb%%|*}; b=${fb#*|}
    if [ -n "$b" ]; then cp -p "$b" "$f.bkdoctor-restore" && mv -f "$f.bkdoctor-restore" "$f"; else rm -f "$f"; fi
    echo "@@RESTORED $f"
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


def _file_step(ch: FileChange, ts: str) -> str:
    p = shlex.quote(ch.path)
    data = base64.b64encode(ch.after).decode()
    lines = [f"f={p}"]
    if ch.before is None:
        lines.append(f'[ -e "$f" ] && fail "$f appeared since the plan was made"')
        lines.append('d=$(dirname "$f"); mkdir -p "$d" || fail "cannot create $d"')
        lines.append('b=""')
    else:
        lines.append(f'[ -f "$f" ] || fail "$f is gone since the plan was made"')
        lines.append(f'[ "$(sha "$f")" = "{_sha(ch.before)}" ] || fail "$f changed since the plan was made; nothing written"')
        lines.append(f'b="$f.{ch.backup_suffix}-{ts}"')
        lines.append('cp -p "$f" "$b" || fail "cannot back up $f"')
    lines += [
        'changed="$changed $f|$b"',
        # temp files of an earlier run that was killed (SIGKILL cannot be trapped): ours by name, under the lock
        'rm -f "$f".bkdoctor.??????',
        't=$(mktemp "$f.bkdoctor.XXXXXX") || fail "cannot create a temp file next to $f"',
        f'printf "%s" {shlex.quote(data)} | base64 -d > "$t" || {{ rm -f "$t"; fail "cannot write $t"; }}',
    ]
    if ch.before is None:
        lines.append(f'chmod {ch.mode:o} "$t"')
    else:
        lines.append('chmod --reference="$f" "$t" 2>/dev/null; chown --reference="$f" "$t" 2>/dev/null')
    lines += [
        'sync "$t" 2>/dev/null || sync',
        'mv -f "$t" "$f" || { rm -f "$t"; fail "cannot replace $f"; }',
        'echo "@@WROTE $f $b"',
    ]
    return "\n".join(lines)


def host_apply_script(plan: Plan, ts: str) -> str:
    steps = [APPLY_PRELUDE]
    for i, ch in enumerate(plan.changes):
        steps.append(f"# step {i + 1}")
        if isinstance(ch, FileChange):
            steps.append(_file_step(ch, ts))
        elif isinstance(ch, CommandChange):
            # the description can hold inventory values: one quoted word, never expanded
            steps.append(f"( {ch.script.strip()} ) </dev/null 2>&1 || fail "
                         f"{shlex.quote(f'step {i + 1} failed: {ch.describe.en}'.replace(chr(10), ' '))}")
            steps.append(f'echo "@@RAN {i + 1}"')
    steps.append('echo "@@DONE"')
    return "\n".join(steps) + "\n"


def restore_script(path: str, backup: str, expect_sha: str | None) -> str:
    """Put a backup back, only if the file still has the content the fix wrote (else refuse)."""
    f, b = shlex.quote(path), shlex.quote(backup)
    check = f'[ "$(sha {f})" = "{expect_sha}" ] || {{ echo "@@FAIL {path} changed since the fix (edited by hand?): not restoring"; exit 1; }}' \
        if expect_sha else ""
    remove = f'[ -z {b} ] && {{ rm -f {f}; echo "@@RESTORED {path}"; exit 0; }}'
    return "\n".join([APPLY_PRELUDE, check, remove if not backup else "",
                      f'[ -f {b} ] || {{ echo "@@FAIL backup {backup} is gone"; exit 1; }}',
                      f'cp -p {b} {f}.bkdoctor-restore && mv -f {f}.bkdoctor-restore {f} && echo "@@RESTORED {path}"']) + "\n"


def parse_apply_output(out: bytes) -> dict[str, Any]:
    text = out.decode("utf-8", "replace")
    res: dict[str, Any] = {"wrote": [], "ran": [], "restored": [], "fail": None, "done": False, "log": text[-2000:]}
    for line in text.splitlines():
        if line.startswith("@@WROTE "):
            parts = line.split(" ", 2)
            res["wrote"].append({"path": parts[1], "backup": parts[2] if len(parts) > 2 else ""})
        elif line.startswith("@@RAN "):
            res["ran"].append(line.split()[1])
        elif line.startswith("@@RESTORED "):
            res["restored"].append(line.split(" ", 1)[1])
        elif line.startswith("@@FAIL "):
            res["fail"] = line[len("@@FAIL "):]
        elif line == "@@DONE":
            res["done"] = True
    return res


def check_domain(domain: str) -> str:
    """Names go into files and commands: only a plain DNS name is accepted (no shell, no newline)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+", domain or ""):
        raise BadInput(f"refusing to use {domain!r} as a domain name")
    return domain


def plan_to_dict(p: Plan) -> dict[str, Any]:
    return {"rule": p.rule, "target": p.target, "remediation": p.remediation, "disruptive": p.disruptive,
            "changes": [c.to_dict() for c in p.changes], "manual": p.manual,
            "note": p.note.as_dict() if p.note else None, "diff": p.diff()}


def dumps(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False, indent=2, default=str)


def file_text(facts: Any, section: str, path: str) -> tuple[bytes | None, str | None]:
    """(raw bytes, text) of a probed file; (None, None) when it does not exist. A file that is not UTF-8 is
    not edited (its bytes could not be written back exactly)."""
    from bkdoctor.model import FactUnavailable

    s = facts.sec(section)
    if s.rc == 3 or (s.rc != 0 and "No such file" in s.text()):
        return None, None
    if s.rc != 0:
        raise FactUnavailable(T(f"无法读取 {path}：{s.text().strip()[:200]}", f"cannot read {path}: {s.text().strip()[:200]}"))
    try:
        return s.out, s.out.decode("utf-8")
    except UnicodeDecodeError:
        raise FactUnavailable(T(f"{path} 不是 UTF-8 文本，不修改", f"{path} is not UTF-8 text: not editing it")) from None


SYSTEMD = 'test -d /run/systemd/system'
DOCKER_RELOAD = (f'if {SYSTEMD}; then systemctl reload docker; '
                 'else p=$(cat /var/run/docker.pid 2>/dev/null || cat /run/docker.pid 2>/dev/null); '
                 '[ -n "$p" ] || { echo "dockerd is not running: nothing to reload"; exit 1; }; kill -HUP "$p"; fi')
