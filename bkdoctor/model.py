"""Core data types: rule metadata, check results, findings.

Rules are pure: they receive facts and return `Result`s. The engine turns results into `Finding`s by
adding the rule's metadata (severity, title, guide section, remediation) and the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

STATUSES = ("pass", "warn", "fail", "error", "skip", "suppressed")
SEVERITIES = ("critical", "high", "medium", "low", "info")
SCOPES = ("host", "fleet", "cluster")
ROLES = ("control", "master", "node", "registry-proxy")
HOST_ROLES = ("control", "master", "node")  # the deployment's own machines (not the registry proxy)
K8S_ROLES = ("master", "node")  # the cluster's members
PROBLEM_STATUSES = ("warn", "fail", "error")  # what a suppression, --fail-on warn and the history count as a problem

# Ordering used for sorting and for --fail-on: an `error` (could not check) counts like a failure, because a
# host we could not read is not a host we can call healthy.
STATUS_RANK = {"pass": 0, "skip": 0, "suppressed": 0, "warn": 1, "fail": 2, "error": 2}
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


@dataclass(frozen=True)
class T:
    """A text in Chinese and English."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def format(self, **kw: Any) -> "T":
        return T(self.zh.format(**kw), self.en.format(**kw))

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Guide:
    """A pointer into the deployment guide (../shared/seed): section number, its title, the line."""

    section: str
    title: str
    line: int | None = None
    # a short verbatim quote from that section (a test finds it there); None for "not in the guide"
    quote: str | None = None
    # further (section, quote) pairs when a rule's thresholds come from more than one section
    also: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"section": self.section, "title": self.title, "line": self.line}
        if self.quote:
            d["quote"] = self.quote
        if self.also:
            d["also"] = [{"section": s, "quote": q} for s, q in self.also]
        return d


@dataclass(frozen=True)
class Rule:
    id: str
    title: T
    scope: str
    severity: str
    facts: tuple[str, ...]
    guide: Guide
    doc: T  # why it matters: the cause an operator sees when it fails
    roles: tuple[str, ...] = ("control", "master", "node")
    tags: tuple[str, ...] = ()
    group: str = "host"
    remediation: str | None = None  # set by the loader: the id when remediations/<scope>/<id>.py exists
    fix: tuple[str, ...] = ()  # manual commands shown in reports
    disruptive: bool = False
    needs_domain: bool = False
    host_rules: tuple[str, ...] = ()  # cluster rules: host rules whose failures on the matched nodes are the cause
    check: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def applies_to(self, roles: tuple[str, ...] | list[str]) -> bool:
        return bool(set(self.roles) & set(roles))

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title.as_dict(),
            "scope": self.scope,
            "severity": self.severity,
            "group": self.group,
            "tags": list(self.tags),
            "roles": list(self.roles),
            "facts": list(self.facts),
            "remediation": self.remediation,
            "guide": self.guide.as_dict(),
            "doc": self.doc.as_dict(),
        }


@dataclass
class Result:
    """What a rule's check returns for one target."""

    status: str
    message: T
    observed: Any = None
    expected: Any = None
    evidence: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"bad status {self.status!r}")


def passed(message: T, **kw: Any) -> Result:
    return Result("pass", message, **kw)


def warned(message: T, **kw: Any) -> Result:
    return Result("warn", message, **kw)


def failed(message: T, **kw: Any) -> Result:
    return Result("fail", message, **kw)


def skipped(message: T, **kw: Any) -> Result:
    return Result("skip", message, **kw)


def errored(message: T, **kw: Any) -> Result:
    return Result("error", message, **kw)


@dataclass
class Finding:
    rule: Rule
    target: str
    result: Result
    suppression: dict[str, Any] | None = None
    related: list[dict[str, Any]] = field(default_factory=list)  # cross-layer links (cause <-> symptom)

    @property
    def status(self) -> str:
        return "suppressed" if self.suppression else self.result.status

    def to_dict(self, lang: str) -> dict[str, Any]:
        r = self.rule
        remediation = None
        if r.remediation or r.fix:
            remediation = {"id": r.remediation, "commands": list(r.fix), "disruptive": r.disruptive}
        return {
            "rule": r.id,
            "target": self.target,
            "status": self.status,
            "severity": r.severity,
            "title": r.title.get(lang),
            "message": self.result.message.get(lang),
            "i18n": {
                "zh": {"title": r.title.zh, "message": self.result.message.zh},
                "en": {"title": r.title.en, "message": self.result.message.en},
            },
            "observed": self.result.observed,
            "expected": self.result.expected,
            "evidence": self.result.evidence,
            "remediation": remediation,
            "guide": r.guide.as_dict(),
            "suppression": self.suppression,
            **({"related": self.related} if self.related else {}),
        }


class FactUnavailable(Exception):
    """Raised by a fact accessor when the fact could not be gathered or parsed.

    `status` is `error` (we tried and failed: permission denied, parse error, timeout) or `skip`
    (the fact does not apply here: the command is not installed, the domain is not configured).
    """

    def __init__(self, reason: T, status: str = "error") -> None:
        super().__init__(reason.en)
        self.reason = reason
        self.status = status


class BadInput(Exception):
    """Bad usage or bad input: the CLI prints the one-line reason and exits 2.

    The reason is a `T`, English and Chinese (every raise site gives both: tests/test_bilingual_errors.py); the CLI
    prints them on one line, "English / 中文" (`bkdoctor.cli.bad_input_line`). `str()` is the English text, what
    another message quoting the refusal or a log shows. A plain string is still taken (English only)."""

    def __init__(self, text: T | str) -> None:
        self.text = text if isinstance(text, T) else T("", str(text))
        super().__init__(self.text.en)
