"""`bkdoctor install` phases and `--plan` (the full guided run is tests/test_install_e2e.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bkdoctor.install import load_phases, select_phases
from bkdoctor.model import BadInput

ROOT = Path(__file__).resolve().parent.parent


def test_phases_are_in_the_guides_order_and_consistent():
    ids = [p.id for p in load_phases()]
    assert ids[:4] == ["preflight", "registry-proxy", "k8s", "control-sync"]
    assert ids.index("ingress") < ids.index("storage") < ids.index("base-first") < ids.index("base-fourth") < ids.index("saas")
    assert {p.id for p in load_phases() if p.optional} == {"registry-proxy", "bcs", "monitor-log"}
    coredns_gate = next(p for p in load_phases() if p.id == "storage").gate
    assert "coredns" in coredns_gate


def test_select_phases():
    ph = load_phases()
    assert "registry-proxy" not in [p.id for p in select_phases(ph, None, None, None, set())]
    assert "registry-proxy" in [p.id for p in select_phases(ph, None, None, None, {"registry-proxy"})]
    assert [p.id for p in select_phases(ph, None, "storage", "base-second", set())] == ["storage", "base-first", "base-second"]
    assert [p.id for p in select_phases(ph, "coredns" if False else "ingress", None, None, set())] == ["ingress"]
    with pytest.raises(BadInput):
        select_phases(ph, "nope", None, None, set())


def test_plan_on_this_host_changes_nothing(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env.pop("KUBECONFIG", None)
    r = subprocess.run([sys.executable, "-m", "bkdoctor.cli", "install", "--plan", "--json", "--domain", "bkce7.bktencent.com"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["phase"] for x in rows] == [p.id for p in select_phases(load_phases(), None, None, None, set())]
    # without a cluster nothing after preflight can be verified as done
    assert all(x["verify"] == "not yet" for x in rows)
    assert not (tmp_path / "bkdoctor" / "install-logs").exists()  # a plan runs nothing
