"""What a scan shows and keeps: the JSON report (the one masked source of every view), HTML, JUnit, Prometheus,
the terminal (grouped), fix plans, diffs and history views. This module stays free of other bkdoctor imports."""

from pathlib import Path


def reports_dir() -> Path:
    here = Path(__file__).resolve().parent  # bkdoctor/report/
    # installed: bkdoctor/report/templates; in the source tree: the repository's reports/
    for cand in (here / "templates", here.parent.parent / "reports"):
        if (cand / "report-v1.schema.json").exists():
            return cand
    raise FileNotFoundError("reports/ directory not found")
