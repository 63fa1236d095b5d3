"""The cluster kinds are records (facts/cluster.py) and the ConfigMaps read for the rules have one home."""

import re
from pathlib import Path

import pytest

from bkdoctor.facts import cluster
from bkdoctor.scan import siterules

ROOT = Path(__file__).resolve().parent.parent


def test_facts_are_the_records():
    assert cluster.FACTS == frozenset(cluster.RECORDS)
    assert all(k.path.startswith("/") for k in cluster.RECORDS.values())
    assert cluster.FAMILIES[siterules.CLUSTER_PREFIX] is siterules.load_cluster_kind  # registered by the site rules


def test_a_configmap_nobody_fetches_is_refused():
    facts = cluster.ClusterFacts(None, preloaded={"configmaps": {"kube-system/coredns": {"data": {}}}})
    assert cluster.configmap(facts, "coredns", namespace="kube-system") == {"data": {}}
    assert cluster.configmap(facts, "coredns") == {"data": {}}
    assert cluster.configmap(facts, "ingress-nginx-controller") is None
    with pytest.raises(ValueError, match="CONFIGMAPS"):
        cluster.configmap(facts, "not-fetched")


def test_rules_and_remediations_read_configmaps_through_the_guard():
    """`facts.get("configmaps")` read directly would bypass the check of `configmap()`."""
    raw = re.compile(r"""get\(\s*["']configmaps["']\s*\)""")
    files = [*ROOT.glob("rules/**/*.py"), *ROOT.glob("remediations/**/*.py")]
    assert files
    assert [str(p.relative_to(ROOT)) for p in files if raw.search(p.read_text(encoding="utf-8"))] == []
