"""Cluster rules against a real kube-apiserver 1.20 holding real objects (fixtures/cluster/<rule>/<case>.<status>.yaml
laid over fixtures/cluster/base.yaml), scanned through the real engine and the official client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import UPDATE_GOLDEN, golden_view
from kube.fixtures import kube_apiserver, kube_kubelet  # noqa: F401

from bkdoctor.facts.cluster import ClusterFacts, configure
from bkdoctor.inputs import thresholds as th
from bkdoctor.inputs.inventory import local_inventory
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader

pytestmark = pytest.mark.kube

CASES = sorted(p for p in FIXTURES.glob("*/*.yaml"))


def scan_cluster(kubeconfig, rules, case=None, inventory_hosts=None):
    import shutil
    import tempfile

    case = case or {}
    inv = local_inventory(domain=case.get("domain", "bkce7.bktencent.com"), install_dir="/nonexistent")
    inv.hosts = inventory_hosts or []
    inv.thresholds = th.merge(case.get("thresholds"))
    for k, v in (case.get("inventory") or {}).items():  # e.g. suites
        setattr(inv, k, v)
    site_dir = None
    if case.get(
        "site_files"
    ):  # the install dir's custom.yaml, version.yaml, bcs-custom-values... on the control machine
        site_dir = tempfile.mkdtemp(prefix="bkd-site-")
        for rel, content in case["site_files"].items():
            (Path(site_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(site_dir) / rel).write_text(content)
        inv.install_dir = site_dir
    access = configure(kubeconfig)
    try:
        result = asyncio.run(engine.scan(inv, loader.select(rules, None), cluster=access))
    finally:
        if site_dir:
            shutil.rmtree(site_dir, ignore_errors=True)
    return build_report(result, "en"), result


@pytest.fixture
def cluster_state(kube_apiserver, kube_kubelet):
    st = ClusterState(kube_apiserver.api_client(), kubelet=kube_kubelet)
    try:
        yield st
    finally:
        st.cleanup()


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_cluster_case(path, kube_apiserver, cluster_state, report_validator):
    rule = path.parent.name
    status = path.stem.rsplit(".", 1)[1]
    case, objs = merged_state(path)
    cluster_state.apply(objs, logs=case.get("logs"), previous_logs=case.get("previous_logs"))
    report, _ = scan_cluster(kube_apiserver.kubeconfig, [rule], case)
    report_validator(report)
    mine = [f for f in report["findings"] if f["rule"] == rule]
    assert len(mine) == 1, mine
    f = mine[0]
    assert f["status"] == status, f"{f['status']}: {f['message']}\nobserved={json.dumps(f['observed'])[:2000]}"
    got = golden_view(f, case.get("golden_ignore") or [])
    golden = path.with_name(path.stem + ".golden.json")
    if UPDATE_GOLDEN or not golden.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"no golden file {golden.name}: run with BKDOCTOR_UPDATE_GOLDEN=1 and review it")
        golden.write_text(json.dumps(got, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text())


def test_every_cluster_rule_has_pass_and_fail_cases():
    have = {}
    for p in CASES:
        have.setdefault(p.parent.name, set()).add(p.stem.rsplit(".", 1)[1])
    for r in loader.all_rules():
        if r.scope == "cluster":
            # a FAQ signature with `on_match: warn` (expected noise past its grace period) cannot fail: warn instead
            worst = "warn" if r.group == "faq" and _faq_on_match(r.id) == "warn" else "fail"
            assert {"pass", worst} <= have.get(r.id, set()), (r.id, have.get(r.id))


def _faq_on_match(rule_id):
    import yaml

    return yaml.safe_load((loader.rules_dir() / "cluster" / f"{rule_id}.yaml").read_text(encoding="utf-8")).get(
        "on_match", "fail"
    )


def test_healthy_base_cluster_passes_every_cluster_rule(kube_apiserver, cluster_state, report_validator):
    _, objs = merged_state(FIXTURES / "base.yaml")
    cluster_state.apply(objs)
    report, _ = scan_cluster(kube_apiserver.kubeconfig, ["cluster"])
    report_validator(report)
    bad = {f["rule"]: (f["status"], f["message"]) for f in report["findings"] if f["status"] not in ("pass", "skip")}
    assert not bad
    assert len(report["findings"]) == len([r for r in loader.all_rules() if r.scope == "cluster"])


def test_each_kind_is_read_once_and_lists_are_paginated(kube_apiserver, cluster_state):
    _, objs = merged_state(FIXTURES / "base.yaml")
    cluster_state.apply(objs)
    facts = ClusterFacts(configure(kube_apiserver.kubeconfig), page=2)  # 3 nodes -> 2 pages
    rules = [r for r in loader.all_rules() if r.scope == "cluster"]
    st, _ = engine.gather_cluster(None, engine.cluster_kinds(rules), facts)
    assert st.reachable
    calls = facts.calls
    assert len(facts.get("nodes")) == 3
    for r in rules:
        for k in r.facts:
            facts.get(k)
    assert facts.calls == calls  # everything came from the cache


def test_unreachable_and_forbidden_cluster_are_errors(kube_apiserver, tmp_path, report_validator):
    # forbidden: the viewer token has no RBAC grants
    report, _ = scan_cluster(kube_apiserver.viewer_kubeconfig, ["cluster"])
    report_validator(report)
    assert {f["status"] for f in report["findings"]} == {"error"}
    assert all("forbidden" in f["message"].lower() for f in report["findings"])
    # unreachable: the same kubeconfig pointed at a closed port
    import yaml

    cfg = yaml.safe_load(Path(kube_apiserver.kubeconfig).read_text())
    cfg["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    bad = tmp_path / "kubeconfig"
    bad.write_text(yaml.safe_dump(cfg))
    report, _ = scan_cluster(str(bad), ["cluster"])
    report_validator(report)
    assert {f["status"] for f in report["findings"]} == {"error"}
    assert report["targets"][-1]["reachable"] is False
    assert "connection refused" in report["targets"][-1]["error"]


def test_no_cluster_configured_is_skip(tmp_path, monkeypatch, report_validator):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert configure(None) is None
    inv = local_inventory(domain="bkce7.bktencent.com")
    inv.hosts = []
    result = asyncio.run(engine.scan(inv, loader.select(["cluster"], None), cluster=None))
    report = report_validator(build_report(result, "en"))
    assert {f["status"] for f in report["findings"]} == {"skip"}


def test_case_logs_go_through_the_api_server_to_the_stand_in_kubelet(kube_apiserver, kube_kubelet, cluster_state):
    path = FIXTURES / "faq-bcs-mariadb" / "mysqld-not-started.fail.yaml"
    case, objs = merged_state(path)
    cluster_state.apply(objs, logs=case.get("logs"))
    facts = ClusterFacts(configure(kube_apiserver.kubeconfig))
    text = facts.pod_log("bcs-system", "bcs-services-stack-mariadb-0", "mariadb")
    assert text == case["logs"]["bcs-system/bcs-services-stack-mariadb-0/mariadb"]
    assert any(
        p.startswith("/containerLogs/bcs-system/bcs-services-stack-mariadb-0/mariadb?")
        for p, _ in kube_kubelet.requests
    )
    assert "bcs-system/bcs-services-stack-mariadb-0/mariadb/0" in facts.get("logs")  # a failing pod: read
    node = next(n for n in facts.get("nodes") if n["metadata"]["name"] == "node-10-0-0-6")
    assert node["metadata"]["annotations"]["bkdoctor.test/fixture-internal-ip"] == "10.0.0.6"
    assert {"type": "Hostname", "address": "node-10-0-0-6"} in node["status"]["addresses"]
    cluster_state.cleanup()
    assert kube_kubelet.get_log("bcs-system", "bcs-services-stack-mariadb-0", "mariadb") is None


def test_declared_logs_must_name_a_pod_and_container():
    class Kubelet:
        host, port = "127.0.0.1", 1

        def set_log(self, *a, **kw):
            pass

    _, objs = merged_state(FIXTURES / "faq-bcs-mariadb" / "mysqld-not-started.fail.yaml")
    st = ClusterState(None, kubelet=Kubelet())
    for key, why in [
        ("bcs-system/bcs-services-stack-mariadb-1/mariadb", "no pod"),
        ("bcs-system/bcs-services-stack-mariadb-0/mysql", "no container"),
        ("bcs-services-stack-mariadb-0/mariadb", "want <namespace>/<pod>/<container>"),
    ]:
        with pytest.raises(ValueError, match=why):
            st._serve_logs([dict(o) for o in objs], [(key, "x", False)])
    with pytest.raises(ValueError, match="kube_kubelet"):
        ClusterState(None).apply(objs, logs={"a/b/c": "x"})


def test_time_placeholders():
    import datetime as dt

    from clusterstate import expand_times

    now = dt.datetime(2026, 11, 26, 8, 0, 0, tzinfo=dt.timezone.utc)
    doc = {"status": {"startTime": "{{now-3m}}", "x": ["{{ now + 2h }}", "at {{now}}", "{{now-1d}}", 5, "{{later}}"]}}
    assert expand_times(doc, now) == {
        "status": {
            "startTime": "2026-11-26T07:57:00Z",
            "x": ["2026-11-26T10:00:00Z", "at 2026-11-26T08:00:00Z", "2026-11-25T08:00:00Z", 5, "{{later}}"],
        }
    }
