"""Report renderers (HTML, JUnit). Keep this module free of other bkdoctor imports."""

from pathlib import Path


def reports_dir() -> Path:
    here = Path(__file__).resolve().parent  # bkdoctor/report/
    # installed: bkdoctor/report/templates; in the source tree: the repository's reports/
    for cand in (here / "templates", here.parent.parent / "reports"):
        if (cand / "report-v1.schema.json").exists():
            return cand
    raise FileNotFoundError("reports/ directory not found")
