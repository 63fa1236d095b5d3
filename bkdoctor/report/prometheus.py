"""`bkdoctor scan --prometheus FILE`: the scan as Prometheus text exposition (node_exporter textfile collector).

Write FILE into node_exporter's `--collector.textfile.directory` as `bkdoctor.prom`: it is written atomically (a
temp file `.bkdoctor.prom.XXXX` in the same directory, which the collector ignores, then a rename), so a scrape never
reads half a file. Series:

  bkdoctor_finding{rule,target,severity,status}        1 for the finding's status (one series per rule x target)
  bkdoctor_finding_problem{rule,target,severity}       1 when the status is warn/fail/error (alert on this)
  bkdoctor_findings{status}                            findings per status
  bkdoctor_target_reachable{target,kind}               1/0
  bkdoctor_scan_duration_seconds, bkdoctor_last_scan_timestamp_seconds, bkdoctor_scan_info{scan_id,version}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bkdoctor.model import PROBLEM_STATUSES as PROBLEM
from bkdoctor.model import STATUSES


def _label(v: Any) -> str:
    s = "" if v is None else str(v)
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kw.items()) + "}"


def render_prometheus(report: dict[str, Any]) -> str:
    s = report["scan"]
    out: list[str] = []

    def family(name: str, help_: str, typ: str = "gauge") -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {typ}")

    family("bkdoctor_finding", "bkdoctor finding per rule and target; the status label is the result (value 1)")
    for f in report["findings"]:
        out.append(
            "bkdoctor_finding"
            + _labels(rule=f["rule"], target=f["target"], severity=f["severity"], status=f["status"])
            + " 1"
        )
    family("bkdoctor_finding_problem", "1 when the finding is warn, fail or error (suppressed findings are 0)")
    for f in report["findings"]:
        out.append(
            "bkdoctor_finding_problem"
            + _labels(rule=f["rule"], target=f["target"], severity=f["severity"])
            + (" 1" if f["status"] in PROBLEM else " 0")
        )
    family("bkdoctor_findings", "number of findings per status in the last scan")
    for st in STATUSES:
        out.append("bkdoctor_findings" + _labels(status=st) + f" {int(report['summary'].get(st, 0))}")
    family("bkdoctor_target_reachable", "1 when bkdoctor could read the target (host over SSH/locally, or the cluster)")
    for t in report.get("targets", []):
        out.append(
            "bkdoctor_target_reachable"
            + _labels(target=t["name"], kind=t.get("kind", ""))
            + (" 1" if t.get("reachable") else " 0")
        )
    family("bkdoctor_scan_duration_seconds", "wall time of the last scan")
    out.append(f"bkdoctor_scan_duration_seconds {float(s['duration_s'])}")
    family("bkdoctor_last_scan_timestamp_seconds", "end of the last scan, Unix time")
    end = dt.datetime.fromisoformat(s["finished_at"])
    out.append(f"bkdoctor_last_scan_timestamp_seconds {end.timestamp():.3f}")
    family("bkdoctor_scan_info", "the last scan's id and bkdoctor's version (value 1)")
    out.append("bkdoctor_scan_info" + _labels(scan_id=s["id"], version=report["tool"]["version"]) + " 1")
    return "\n".join(out) + "\n"
