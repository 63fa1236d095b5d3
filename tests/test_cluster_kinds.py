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


def test_a_configmap_refused_alone_errs_only_for_its_readers(monkeypatch):
    """RBAC may grant some ConfigMaps and not others: a 403 on one name is that name's error, not every rule's
    (before, the coredns rule erred because bk-user-api-general-envs, which it never reads, was forbidden)."""
    from bkdoctor.model import FactUnavailable, T

    denied = "bk-user-api-general-envs"

    def fake_list(self, path, params=None, **kw):
        name = params["fieldSelector"].split("=", 1)[1]
        if name == denied:
            raise FactUnavailable(T("禁止", f'configmaps "{name}" is forbidden (HTTP 403)'))
        return [{"metadata": {"namespace": "kube-system", "name": name}, "data": {}}] if name == "coredns" else []

    monkeypatch.setattr(cluster.ClusterFacts, "_list", fake_list)
    facts = cluster.ClusterFacts(None)
    monkeypatch.setattr(
        cluster.ClusterFacts,
        "_load",
        lambda self, kind: cluster.ClusterFacts._configmaps(self, cluster.RECORDS["configmaps"]),
    )
    assert cluster.configmap(facts, "coredns", namespace="kube-system") == {
        "metadata": {"namespace": "kube-system", "name": "coredns"},
        "data": {},
    }
    with pytest.raises(FactUnavailable, match="forbidden"):
        cluster.configmap(facts, denied)

    # every name refused: the fact itself is unavailable, as a token with no grants gets
    monkeypatch.setattr(
        cluster.ClusterFacts,
        "_list",
        lambda self, path, params=None, **kw: (_ for _ in ()).throw(FactUnavailable(T("禁止", "forbidden (HTTP 403)"))),
    )
    with pytest.raises(FactUnavailable, match="forbidden"):
        cluster.configmap(cluster.ClusterFacts(None), "coredns")


def test_a_configmap_refused_by_the_api_errs_only_for_its_readers(monkeypatch):
    """The API's refusal arrives as the client's ApiException, not a FactUnavailable: before, it escaped the
    per-name loop and made the whole `configmaps` fact unavailable (found with a real kube-apiserver's RBAC:
    tests/test_bundle.py)."""
    from kubernetes.client.rest import ApiException

    from bkdoctor.model import FactUnavailable

    def fake_list(self, path, params=None, **kw):
        name = params["fieldSelector"].split("=", 1)[1]
        if name == "coredns":
            raise ApiException(status=403, reason="Forbidden")
        return [{"metadata": {"namespace": "ns", "name": name}, "data": {}}]

    monkeypatch.setattr(cluster.ClusterFacts, "_list", fake_list)
    monkeypatch.setattr(
        cluster.ClusterFacts,
        "_load",
        lambda self, kind: cluster.ClusterFacts._configmaps(self, cluster.RECORDS["configmaps"]),
    )
    facts = cluster.ClusterFacts(None)
    assert cluster.configmap(facts, "ingress-nginx-controller")["metadata"]["name"] == "ingress-nginx-controller"
    with pytest.raises(FactUnavailable, match="403"):
        cluster.configmap(facts, "coredns")
