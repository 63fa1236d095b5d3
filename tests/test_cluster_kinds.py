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


def _pod(i: int, failing: bool, restarted: bool = False) -> dict:
    cs = {"name": "main", "restartCount": 1 if restarted else 0, "ready": not failing}
    return {
        "metadata": {"namespace": "ns", "name": f"p{i:04d}"},
        "spec": {"containers": [{"name": "main", "image": "x"}, {"name": "side", "image": "y"}]},
        "status": {
            "phase": "Failed" if failing else "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [cs],
        },
    }


class _FakeApi:
    """Pages of pods and log reads, as the API serves them; records when each log read came (after which page)."""

    def __init__(self, pods: list[dict], page: int) -> None:
        self.pods, self.page, self.pages_served, self.log_reads = pods, page, 0, []

    def __call__(self, facts, path: str, query=None, *, raw: bool = False):
        import time

        if path.endswith("/log"):
            self.log_reads.append((path, dict(query or {}), self.pages_served))
            return f"log of {path} {sorted((query or {}).items())}".encode()
        start = int((query or {}).get("continue") or 0)
        items = [dict(p) for p in self.pods[start : start + self.page]]
        time.sleep(0.1)  # a page takes a while (the log reads get their turn), then it is served
        self.pages_served += 1
        more = start + self.page < len(self.pods)
        return {"items": items, "metadata": {"continue": str(start + self.page) if more else ""}}


def test_logs_are_read_while_the_pods_are_listed_and_are_those_of_listing_first(monkeypatch):
    """Issue 16: log reads start with the first failing pod of the first page (in a thread of their own), not after
    the whole list; what is read is the same as listing every pod first and reading after: the first
    MAX_LOG_PODS failing pods in list order, the previous log of restarted containers, in the same key order."""
    from bkdoctor.facts import cluster
    from bkdoctor.facts.k8s import container_statuses, md, pod_failing

    pods = [_pod(i, failing=i % 3 == 0, restarted=i % 6 == 0) for i in range(1200)]  # 400 failing: the cap cuts
    api = _FakeApi(pods, cluster.SMALL_PAGE)
    monkeypatch.setattr(
        cluster.ClusterFacts, "_get", lambda self, path, query=None, *, raw=False: api(self, path, query, raw=raw)
    )
    facts = cluster.ClusterFacts(access=object())  # type: ignore[arg-type]
    logs = facts.get("logs")

    expected = {}
    for p in [p for p in facts.get("pods") if pod_failing(p)][: facts.MAX_LOG_PODS]:  # the old way
        ns, name = md(p)["namespace"], md(p)["name"]
        restarted = {cs["name"] for cs in container_statuses(p) if cs.get("restartCount", 0) > 0}
        for c in p["spec"]["containers"]:
            for prev in (False, True) if c["name"] in restarted else (False,):
                q = {"container": c["name"], "tailLines": facts.log_tail, **({"previous": "true"} if prev else {})}
                expected[f"{ns}/{name}/{c['name']}/{int(prev)}"] = (
                    f"log of /api/v1/namespaces/{ns}/pods/{name}/log {sorted(q.items())}"
                )
    assert list(logs.items()) == list(expected.items())
    assert len(api.log_reads) == len(expected)
    assert api.log_reads[0][2] < api.pages_served  # the first read came before the last page
    assert len(facts.get("pods")) == 1200 and api.pages_served == 6  # listed once


def test_logs_are_unavailable_when_the_pods_are(monkeypatch):
    from bkdoctor.facts import cluster
    from bkdoctor.model import FactUnavailable, T

    api = _FakeApi([_pod(i, failing=True) for i in range(450)], cluster.SMALL_PAGE)

    def failing_get(facts, path, query=None, *, raw=False):
        if not raw and (query or {}).get("continue"):
            raise FactUnavailable(T("禁止", "forbidden (HTTP 403)"))  # the second page is refused
        return api(facts, path, query, raw=raw)

    monkeypatch.setattr(cluster.ClusterFacts, "_get", failing_get)
    facts = cluster.ClusterFacts(access=object())  # type: ignore[arg-type]
    with pytest.raises(FactUnavailable, match="forbidden"):
        facts.get("logs")
    with pytest.raises(FactUnavailable, match="forbidden"):
        facts.get("pods")


def test_the_longest_kinds_are_read_first():
    from bkdoctor.facts.cluster import gather_order

    kinds = {"configmaps", "events", "helm_releases", "jobs", "logs", "nodes", "pods", "services", "version"}
    assert gather_order(kinds)[:3] == ["logs", "events", "helm_releases"]
    assert "pods" not in gather_order(kinds)  # `logs` lists them
    assert sorted(gather_order(kinds)) == sorted(kinds - {"pods"})
    assert gather_order({"services", "pods", "nodes"}) == ["pods", "nodes", "services"]


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


def test_the_kept_objects_are_out_of_the_collectors_sight_while_listing_and_given_back(monkeypatch):
    """Issue 16: the gathering freezes (gc.freeze) each page's kept objects, so the collector's full collections do
    not walk every kept pod and event again as the lists grow; at the end it unfreezes them (nothing stays frozen,
    the facts are the same), and a freeze made by someone else before is left as it was."""
    import gc

    from bkdoctor.scan import engine

    frozen_at_page = []
    api = _FakeApi([_pod(i, failing=i % 3 == 0) for i in range(1000)], cluster.SMALL_PAGE)

    def get(facts, path, query=None, *, raw=False):
        if path == "/version":
            return {"gitVersion": "v1.20.2"}
        frozen_at_page.append(gc.get_freeze_count())
        return api(facts, path, query, raw=raw)

    monkeypatch.setattr(cluster.ClusterFacts, "_get", get)

    def gather():
        facts = cluster.ClusterFacts(access=object())  # type: ignore[arg-type]
        st, facts = engine.gather_cluster(None, {"pods"}, facts)
        assert st.reachable and not facts.freeze_kept
        return facts.get("pods")

    assert gc.isenabled() and gc.get_freeze_count() == 0
    frozen_at_page.clear()
    pods = gather()
    assert gc.get_freeze_count() == 0  # given back
    assert frozen_at_page[0] == 0 and all(n > 0 for n in frozen_at_page[1:])  # the pages read so far: frozen
    assert [p["metadata"]["name"] for p in pods] == [f"p{i:04d}" for i in range(1000)]

    keep = [{"someone else's": i} for i in range(10)]
    gc.freeze()
    try:
        frozen_at_page.clear()
        assert gather() == pods
        # nothing frozen by the gathering (frozen objects freed meanwhile leave the count)
        assert all(b <= a for a, b in zip(frozen_at_page, frozen_at_page[1:]))
        assert gc.get_freeze_count() > 0  # and their freeze not undone
    finally:
        gc.unfreeze()
    del keep
