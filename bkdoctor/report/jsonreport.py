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


def iter_json(report: dict[str, Any]) -> Iterator[str]:
    """The report's JSON text in pieces, as `dumps` gives it whole. Written as it is made (`write_atomic` takes the
    pieces): with `indent`, Python's encoder is the pure-Python one, whose million small pieces `json.dumps` holds
    in a list before it joins them; at 300 hosts (a 15 MB report) that list, the joined text and its UTF-8 copy
    were the scan's peak RSS, 108 -> 200 MB (issue 16)."""
    yield from json.JSONEncoder(ensure_ascii=False, indent=2, default=str).iterencode(report)
    yield "\n"


def dumps(report: dict[str, Any]) -> str:
    return "".join(iter_json(report))
