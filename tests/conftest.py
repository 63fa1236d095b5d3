import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

# the scans' cache (bkdoctor/scan/kubeletcache.py: `bkdoctor scan` keeps each host's kubelet identity and version) in
# a directory of this session, never root's real ~/.cache; the CLI subprocesses inherit it
_CACHE_HOME = tempfile.mkdtemp(prefix="bkdoctor-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
atexit.register(shutil.rmtree, _CACHE_HOME, True)

# the suite imports the kubernetes client as the CLI does, lazily (bkdoctor/facts/kubelazy.py), before anything
# imports it the ordinary way: every cluster test also checks the lazy packages against the client's own uses and
# the tests' (tests/test_kubelazy.py runs the ordinary import beside it)
from bkdoctor.facts import kubelazy  # noqa: E402

kubelazy.install()

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import jsonschema  # noqa: E402
import pytest  # noqa: E402
from testbed.fixtures import nshost_factory, ssh_fleet  # noqa: E402,F401

_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "reports" / "report-v1.schema.json").read_text())


@pytest.fixture
def report_validator():
    """Validate a report against reports/report-v1.schema.json (every test that makes a report uses it)."""
    v = jsonschema.Draft202012Validator(_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

    def check(report):
        errors = sorted(v.iter_errors(report), key=lambda e: list(e.absolute_path))
        assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        return report

    return check
