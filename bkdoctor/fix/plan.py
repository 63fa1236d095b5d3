"""The fix side's contract: the changes a fix is made of (FileChange, CommandChange, K8sChange), `Fix` (what a
remediation's plan() returns), `Plan` (a Fix for one finding: rule, target, remediation), `Remediation` (a
remediation's metadata and functions) and the remediation loader.

A remediation is `remediations/<scope>/<id>.py`, named like the rule it fixes (`rules/<scope>/<id>.py|.yaml`):
`REMEDIATION = Remediation(id, title, scope, disruptive)` and a pure `plan(facts, ctx) -> Fix` (file changes,
before -> after bytes; commands; K8s object changes; or manual steps). An empty Fix means the system is already
right (`unchanged`): that is what makes a fix idempotent. Cluster remediations may also define
`replan(current, change, ctx)` (the same edit on a ConfigMap someone changed since the plan), `verify(facts, ctx)`
(the cause is right, when the symptom outlives the fix) and `run_command(cluster, change)` (a CommandChange done
through the API). Shared plan helpers are in `fixkit`; the host apply/restore scripts in `hostscript`; the loop that
plans, confirms, applies and re-checks in `loop`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bkdoctor.model import T


@dataclass
class FileChange:
    path: str
    before: bytes | None  # None: the file does not exist yet
    after: bytes
    mode: int = 0o644  # for new files; existing files keep theirs
    backup_suffix: str = "bak"

    def diff(self) -> str:
        """The unified diff as diff(1) shows it: lines end at "\n" only (as the programs reading these files split
        them; a CR stays in its line, and the terminal filter shows it as ␍), and a last line without a newline is
        followed by `\\ No newline at end of file` (else it ran into the next line of the diff)."""
        out = []
        for line in difflib.unified_diff(
            _nl_lines(self.before or b""),
            _nl_lines(self.after),
            f"a{self.path}" if self.before is not None else "/dev/null",
            f"b{self.path}",
        ):
            out.append(line)
            if not line.endswith("\n"):
                out.append("\n\\ No newline at end of file\n")
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "file",
            "path": self.path,
            "before_sha256": sha256_of(self.before),
            "after_sha256": sha256_of(self.after),
            "created": self.before is None,
        }


def _nl_lines(data: bytes) -> list[str]:
    """Lines ended by "\n" only, each with its end (str.splitlines() also splits at \r, \x85, U+2028…)."""
    parts = data.decode("utf-8", "replace").split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


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
        return {
            "type": "command",
            "script": self.script,
            "disruptive": self.disruptive,
            "undo": self.undo,
            "where": self.where,
        }


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
            out.extend(
                difflib.unified_diff(
                    a,
                    b,
                    f"a/{self.kind}/{self.namespace}/{self.name}[{k}]",
                    f"b/{self.kind}/{self.namespace}/{self.name}[{k}]",
                )
            )
        return "".join(l if l.endswith("\n") else l + "\n" for l in out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "k8s",
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "before": self.before,
            "after": self.after,
        }


Change = FileChange | CommandChange | K8sChange


class _Steps:
    """What a Fix and a Plan share: their changes and manual steps."""

    changes: list[Change]
    manual: list[str]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.manual

    def diff(self) -> str:
        return "".join(c.diff() for c in self.changes)


@dataclass
class Fix(_Steps):
    """What a remediation's plan() returns: only its changes, manual steps and note (the loop adds which rule,
    target and remediation it is for)."""

    changes: list[Change] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # no safe automatic fix: exact commands to run
    note: T | None = None
    # the operator's file cannot be edited safely (a half-edited block, an import): `manual` is what to do, and the
    # outcome is `refused` (bad input: exit 2), not a plain manual step
    refused: bool = False


@dataclass
class Plan(_Steps):
    """A Fix for one finding, as the loop shows, applies and journals it."""

    rule: str
    target: str
    remediation: str
    changes: list[Change] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    note: T | None = None
    refused: bool = False

    @property
    def disruptive(self) -> bool:
        """Restarts a daemon or deletes a pod: applied only with --allow-disruptive."""
        return any(isinstance(c, CommandChange) and c.disruptive for c in self.changes)

    @classmethod
    def of(cls, fix: Fix, rule: str, target: str, remediation: str) -> Plan:
        if not isinstance(fix, Fix):
            raise TypeError(f"remediation {remediation}: plan() returned {type(fix).__name__}, not a Fix")
        return cls(rule, target, remediation, list(fix.changes), list(fix.manual), fix.note, fix.refused)


@dataclass(frozen=True)
class Remediation:
    """A remediation's metadata, declared in its file; the loader adds the functions the file defines.
    The rule it fixes is the rule with the same id and scope (the file name, as for rules)."""

    id: str
    title: T
    scope: str = "host"  # host | cluster
    disruptive: bool = False  # some of its fixes restart a daemon or delete a pod (Rule.disruptive, in reports)
    plan: Callable[[Any, Any], Fix] | None = field(default=None, compare=False, repr=False)
    replan: Callable[[dict[str, str], K8sChange, Any], dict[str, str] | None] | None = field(
        default=None, compare=False, repr=False
    )
    verify: Callable[[Any, Any], bool] | None = field(default=None, compare=False, repr=False)
    run_command: Callable[[Any, CommandChange], str | None] | None = field(default=None, compare=False, repr=False)


CLUSTER_ONLY = ("replan", "verify", "run_command")  # the loop calls these for cluster plans only


def sha256_of(b: bytes | None) -> str | None:
    return hashlib.sha256(b).hexdigest() if b is not None else None


# -- loading -----------------------------------------------------------------------------------------
def _load(path: Path) -> Remediation:
    from bkdoctor.scan.loader import rules_dir

    name = "bkdoctor_remediations." + path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    rem = getattr(mod, "REMEDIATION", None)
    if not isinstance(rem, Remediation) or not callable(getattr(mod, "plan", None)):
        raise ImportError(f"{path}: needs REMEDIATION (Remediation) and plan()")
    if rem.id != path.stem:
        raise ImportError(f"{path}: remediation id {rem.id!r} does not equal the file name")
    if rem.scope != path.parent.name:
        raise ImportError(f"{path}: a {rem.scope} remediation lives in remediations/{rem.scope}/")
    if not any((rules_dir() / rem.scope / f"{rem.id}{ext}").exists() for ext in (".py", ".yaml")):
        raise ImportError(f"{path}: no {rem.scope} rule {rem.id!r} (rules/{rem.scope}/{rem.id}.py or .yaml) to fix")
    funcs = {k: getattr(mod, k) for k in ("plan", *CLUSTER_ONLY) if callable(getattr(mod, k, None))}
    if rem.scope != "cluster" and set(funcs) & set(CLUSTER_ONLY):
        raise ImportError(f"{path}: {', '.join(sorted(set(funcs) & set(CLUSTER_ONLY)))} only for cluster remediations")
    return dataclasses.replace(rem, **funcs)


@lru_cache(maxsize=1)
def all_remediations() -> dict[str, Remediation]:
    """{id: Remediation} of remediations/<scope>/<id>.py (loaded by path, like rules)."""
    from bkdoctor.scan.loader import remediations_dir

    out: dict[str, Remediation] = {}
    for path in sorted(remediations_dir().glob("*/*.py")):
        if path.name.startswith("_"):
            continue
        if path.stem in out:
            raise ImportError(f"{path}: a remediation {path.stem!r} exists in another scope already")
        out[path.stem] = _load(path)
    return out


def plan_to_dict(p: Plan) -> dict[str, Any]:
    return {
        "rule": p.rule,
        "target": p.target,
        "remediation": p.remediation,
        "disruptive": p.disruptive,
        "changes": [c.to_dict() for c in p.changes],
        "manual": p.manual,
        "note": p.note.as_dict() if p.note else None,
        "diff": p.diff(),
    }
