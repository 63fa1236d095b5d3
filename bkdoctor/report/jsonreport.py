"""The JSON report (schema `bkdoctor/report/v1`, file reports/report-v1.schema.json)."""

from __future__ import annotations

import json
from typing import Any, Iterator

from bkdoctor import __version__
from bkdoctor.model import SEVERITY_RANK, STATUSES
from bkdoctor.safe.secrets import mask_obj, mask_text

SCHEMA_ID = "bkdoctor/report/v1"


def redact(obj: Any) -> Any:
    """Mask secrets by key name and by value shape (bkdoctor/safe/secrets.py): never print a secret."""
    return mask_obj(obj)


def _sort_key(f: dict[str, Any]) -> tuple:
    order = {"error": 0, "fail": 1, "warn": 2, "suppressed": 3, "skip": 4, "pass": 5}
    return (order[f["status"]], -SEVERITY_RANK[f["severity"]], f["rule"], f["target"])


def build_report(result: Any, lang: str) -> dict[str, Any]:
    # every output (JSON, HTML, JUnit, terminal, history) is made from this report: mask here, once
    findings = [mask_obj(f.to_dict(lang)) for f in result.findings]
    findings.sort(key=_sort_key)
    summary = {s: 0 for s in STATUSES}
    for f in findings:
        summary[f["status"]] += 1
    summary["total"] = len(findings)
    inv = result.inventory
    return {
        "schema": SCHEMA_ID,
        "tool": {"name": "bkdoctor", "version": __version__},
        "lang": lang,
        "scan": {
            "id": result.id,
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat(),
            "duration_s": round(result.duration_s, 3),
            "inventory": mask_text(inv.path) if inv.path else inv.path,
            "domain": mask_text(inv.domain) if inv.domain else inv.domain,
            "rules": [r.id for r in result.rules],
        },
        "targets": [mask_obj(t.to_dict()) for t in result.targets],
        "findings": findings,
        "summary": summary,
    }


# the report's long lists: one compact line per element (C's encoder, one call each)
_ROWS = ("findings", "targets")


def iter_json(report: dict[str, Any]) -> Iterator[str]:
    """The report's JSON text in pieces, written as it is made (`write_atomic` takes the pieces): the top level
    indented by two spaces, each finding and each target on one line of its own. Pieces, not `json.dumps` whole: at
    300 hosts (an 8,000-finding report) the whole text and its UTF-8 copy were the scan's peak RSS (issue 16). One
    line an element, not `indent=2` all through: with `indent`, Python's encoder is the pure-Python one (408 ms for
    8,000 findings here, one line each in C's 110 ms), and a line a finding is what `grep` and `jq -c` read."""
    enc = json.JSONEncoder(ensure_ascii=False, default=str)  # no indent: encode() takes C's encoder
    yield "{"
    for i, (k, v) in enumerate(report.items()):
        yield ("," if i else "") + "\n  " + enc.encode(k) + ": "
        if k in _ROWS and isinstance(v, list) and v:
            for j, row in enumerate(v):
                yield ("[\n    " if j == 0 else ",\n    ") + enc.encode(row)
            yield "\n  ]"
        else:  # a JSON text has no raw newline inside a string (escaped): each newline is the layout's
            yield json.dumps(v, ensure_ascii=False, indent=2, default=str).replace("\n", "\n  ")
    yield "\n}\n"


def dumps(report: dict[str, Any]) -> str:
    return "".join(iter_json(report))
