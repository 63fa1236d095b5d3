"""Report renderers (HTML, JUnit). Keep this module free of other bkdoctor imports."""
from pathlib import Path


def reports_dir() -> Path:
    here = Path(__file__).resolve().parent.parent  # bkdoctor/
    for cand in (here / "reports", here.parent / "reports"):
        if (cand / "report-v1.schema.json").exists():
            return cand
    raise FileNotFoundError("reports/ directory not found")
