"""Cluster remediations against a real kube-apiserver. Every fail/warn case of a rule with a cluster remediation
has its plan compared with a golden diff, fixtures/cluster/<rule>/<case>.fix.diff (what an operator sees before
saying yes; a case whose fix is manual has none). Regenerate them with
`BKDOCTOR_UPDATE_GOLDEN=1 python3 -m pytest tests/test_fix_cluster.py -k plan_golden` and review the diffs.
The coredns remediation: fail -> fix -> pass -> fix again changes nothing; foreign entries kept; a Corefile without
reload gets CoreDNS restarted (disruptive); a concurrent update between read and write (a real 409) is retried on
the new content, not overwritten. The FAQ remediations: fixed, then unchanged."""

from __future__ import annotations

import asyncio

import pytest
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import UPDATE_GOLDEN
from kube.fixtures import kube_apiserver, kube_kubelet  # noqa: F401

from bkdoctor.facts import corefile
from bkdoctor.facts.cluster import configure
from bkdoctor.fix.loop import apply_k8s_change, run_fix
from bkdoctor.fix.plan import K8sChange
from bkdoctor.inputs import thresholds as th
from bkdoctor.inputs.inventory import local_inventory
from bkdoctor.scan import loader

pytestmark = pytest.mark.kube
REMEDIATED = sorted(r.id for r in loader.all_rules() if r.remediation and r.scope == "cluster")
PLAN_CASES = sorted(
    p for r in REMEDIATED for p in (FIXTURES / r).glob("*.yaml") if p.stem.rsplit(".", 1)[1] in ("fail", "warn")
)
CASES = [
    "no-hosts-block.fail",
    "two-server-blocks.fail",
    "wrong-ip.fail",
    "missing-names.fail",
    "no-fallthrough.fail",
    "no-reload.warn",
]


def _inv():
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.hosts = []
    inv.thresholds = th.merge(None)
    return inv


def _fix(kubeconfig, allow_disruptive=True):
    said = []
    out = asyncio.run(
        run_fix(
            _inv(),
            loader.select(["coredns"], None),
            hosts=None,
            cluster=configure(kubeconfig),
            dry_run=False,
            allow_disruptive=allow_disruptive,
            confirm=lambda p: True,
            say=said.append,
        )
    )
    return out, "\n".join(said)


def _corefile(api):
    from kubernetes import client

    return client.CoreV1Api(api).read_namespaced_config_map("coredns", "kube-system").data["Corefile"]


@pytest.fixture
def state(kube_apiserver):
    st = ClusterState(kube_apiserver.api_client())
    yield st
    st.cleanup()


def _golden(path, diff):
    """The golden plan diff of a case: compared exactly; written only with BKDOCTOR_UPDATE_GOLDEN=1."""
    golden = path.with_name(path.stem + ".fix.diff")
    if UPDATE_GOLDEN or not golden.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"no golden diff {golden.name}: run with BKDOCTOR_UPDATE_GOLDEN=1 and review it")
        golden.write_text(diff + "\n")
    assert diff + "\n" == golden.read_text()


@pytest.mark.parametrize("path", PLAN_CASES, ids=[f"{p.parent.name}/{p.stem}" for p in PLAN_CASES])
def test_cluster_fix_plan_golden(path, kube_apiserver, kube_kubelet):
    rule = path.parent.name
    case, objs = merged_state(path)
    inv = _inv()
    inv.domain = case.get("domain", inv.domain)
    inv.thresholds = th.merge(case.get("thresholds"))
    for k, v in (case.get("inventory") or {}).items():  # as the rule's own case scan builds it
        setattr(inv, k, v)
    st = ClusterState(kube_apiserver.api_client(), kubelet=kube_kubelet)
    try:
        # fix_objects: what the fix reads besides the symptom; fix_params: --set values
        st.apply(
            objs + list(case.get("fix_objects") or []), logs=case.get("logs"), previous_logs=case.get("previous_logs")
        )
        said = []
        out = asyncio.run(
            run_fix(
                inv,
                loader.select([rule], None),
                hosts=None,
                cluster=configure(kube_apiserver.kubeconfig),
                dry_run=True,
                allow_disruptive=True,
                confirm=lambda p: True,
                say=said.append,
                params=case.get("fix_params"),
            )
        )
    finally:
        st.cleanup()
    diff = "\n".join(said)
    golden = path.with_name(path.stem + ".fix.diff")
    if diff:
        assert [o.status for o in out] == ["planned"], [(o.status, o.message.en) for o in out]
        _golden(path, diff)
    else:  # nothing bkdoctor can change: the outcome says what to do by hand
        assert [o.status for o in out] in (["manual"], ["failed"], ["refused"]), [(o.status, o.message.en) for o in out]
        assert not golden.exists(), f"{golden.name}: this case has no plan to show"


@pytest.mark.parametrize("case", CASES)
def test_coredns_fail_fix_pass(case, kube_apiserver, state):
    _, objs = merged_state(FIXTURES / "coredns" / f"{case}.yaml")
    if case == "no-reload.warn":
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "coredns-74ff55c5b-7qx9d",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns"},
                },
                "spec": {
                    "nodeName": "master-10-0-0-2",
                    "containers": [{"name": "coredns", "image": "k8s.gcr.io/coredns:1.7.0"}],
                },
            }
        )
    state.apply(objs)
    api = kube_apiserver.api_client()
    foreign_before = [l for l in _corefile(api).splitlines() if "intra.example.com" in l or "10.0.0.53" in l]
    out, diff = _fix(kube_apiserver.kubeconfig)
    assert [o.status for o in out] == ["fixed"], [(o.status, o.message.en) for o in out]
    _golden(FIXTURES / "coredns" / f"{case}.yaml", diff)  # the plan shown is the golden one
    text = _corefile(api)
    for line in foreign_before:
        assert line in text.splitlines()  # other people's lines are kept
    corefile.parse(text)
    again, _ = _fix(kube_apiserver.kubeconfig)
    assert again == []  # the rule passes: nothing to fix
    if case == "no-reload.warn":
        from kubernetes import client

        pods = client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
        # restarted: deleted (the kubelet, absent here, would stop it; its Deployment would recreate it)
        assert pods and all(p.metadata.deletion_timestamp for p in pods)


def test_no_reload_fix_is_disruptive_and_needs_the_flag(kube_apiserver, state):
    _, objs = merged_state(FIXTURES / "coredns" / "no-reload.warn.yaml")
    state.apply(objs)
    before = _corefile(kube_apiserver.api_client())
    out, _ = _fix(kube_apiserver.kubeconfig, allow_disruptive=False)
    assert [o.status for o in out] == ["skipped"] and "disruptive" in out[0].message.en
    assert _corefile(kube_apiserver.api_client()) == before


def test_foreign_entries_kept_when_fixing_wrong_ips(kube_apiserver, state):
    _, objs = merged_state(FIXTURES / "coredns" / "foreign-entries.pass.yaml")
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "coredns")
    cm["data"]["Corefile"] = cm["data"]["Corefile"].replace("10.96.45.12 docker.", "10.96.45.99 docker.")
    state.apply(objs)
    out, _ = _fix(kube_apiserver.kubeconfig)
    assert [o.status for o in out] == ["fixed"]
    text = _corefile(kube_apiserver.api_client())
    assert "10.0.0.99 gitlab.intra.example.com" in text
    # the stale entry no longer resolves, and the line stays visible, commented out (no line is ever dropped)
    assert not any("10.96.45.99" in l.split("#", 1)[0] for l in text.splitlines())
    assert any(l.strip() == "# bkdoctor: 10.96.45.99 docker.bkce7.bktencent.com" for l in text.splitlines()), text


def test_concurrent_update_is_retried_not_overwritten(kube_apiserver, state):
    from kubernetes import client

    _, objs = merged_state(FIXTURES / "coredns" / "no-hosts-block.fail.yaml")
    state.apply(objs)
    api = kube_apiserver.api_client()
    core = client.CoreV1Api(api)
    text = _corefile(api)
    from bkdoctor.fix.edits import corefile_set_hosts

    names = ["bkce7.bktencent.com", "docker.bkce7.bktencent.com"]
    ch = K8sChange(
        "ConfigMap",
        "kube-system",
        "coredns",
        {"Corefile": text},
        {"Corefile": corefile_set_hosts(text, "10.96.45.12", names)},
        meta={"ip": "10.96.45.12"},
    )

    def other_writer(attempt):
        if attempt == 0:  # between our read and our write: somebody adds a zone of their own
            cm = core.read_namespaced_config_map("coredns", "kube-system")
            cm.data["Corefile"] = (
                cm.data["Corefile"] + "intra.example.com:53 {\n    forward . 10.0.0.53\n    reload\n}\n"
            )
            core.replace_namespaced_config_map("coredns", "kube-system", cm)

    replan = lambda cur: (lambda new: None if new == cur["Corefile"] else {"Corefile": new})(
        corefile_set_hosts(cur["Corefile"], "10.96.45.12", names)
    )
    res = apply_k8s_change(type("C", (), {"api_client": api})(), ch, replan, before_write=other_writer)
    assert res["ok"] and res["attempts"] == ["conflict", "ok"], res
    final = _corefile(api)
    assert "intra.example.com:53" in final  # their change survived
    blocks = corefile.parse(final)
    assert len(blocks) == 2 and all(b.plugin("hosts") for b in blocks)  # and ours reached both server blocks


def _fix_rule(kubeconfig, rule, params=None, allow_disruptive=True):
    return asyncio.run(
        run_fix(
            _inv(),
            loader.select([rule], None),
            hosts=None,
            cluster=configure(kubeconfig),
            dry_run=False,
            allow_disruptive=allow_disruptive,
            confirm=lambda p: True,
            say=lambda s: None,
            params=params,
        )
    )


def test_faq_snippet_annotations_fix(kube_apiserver, kube_kubelet, report_validator):
    from kubernetes import client

    case, objs = merged_state(FIXTURES / "faq-snippet-annotations" / "admission-denied.fail.yaml")
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "blueking"},
            "data": {"allow-snippet-annotations": "false", "proxy-body-size": "10240m"},
        }
    )
    st = ClusterState(kube_apiserver.api_client(), kubelet=kube_kubelet)
    try:
        st.apply(objs, logs=case.get("logs"), previous_logs=case.get("previous_logs"))
        out = _fix_rule(kube_apiserver.kubeconfig, "faq-snippet-annotations")
        assert [o.status for o in out] == ["fixed"], [(o.status, o.message.en) for o in out]
        data = (
            client.CoreV1Api(kube_apiserver.api_client())
            .read_namespaced_config_map("ingress-nginx-controller", "blueking")
            .data
        )
        assert data == {"allow-snippet-annotations": "true", "proxy-body-size": "10240m"}
        # fix again: the old log line still matches, but the cause is right: nothing changes
        again = _fix_rule(kube_apiserver.kubeconfig, "faq-snippet-annotations")
        assert [o.status for o in again] == ["unchanged"], [(o.status, o.message.en) for o in again]
    finally:
        st.cleanup()


def test_faq_paas_init_data_needs_an_image_then_fixes(kube_apiserver, kube_kubelet):
    from kubernetes import client

    case, objs = merged_state(FIXTURES / "faq-paas-init-data" / "slug-app-pull.fail.yaml")
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "bkpaas3-apiserver-general-env", "namespace": "blueking"},
            "data": {"PAAS_APP_IMAGE": "hub.bktencent.com/blueking/slug-app:v1.1.0-beta.27", "OTHER": "x"},
        }
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bkpaas3-apiserver-web-6d8f7c9b5-abcde", "namespace": "blueking"},
            "spec": {
                "nodeName": "node-10-0-0-5",
                "containers": [{"name": "web", "image": "hub.bktencent.com/blueking/bkpaas3-apiserver:1.1.0"}],
            },
        }
    )
    st = ClusterState(kube_apiserver.api_client(), kubelet=kube_kubelet)
    try:
        st.apply(objs, logs=case.get("logs"), previous_logs=case.get("previous_logs"))
        out = _fix_rule(kube_apiserver.kubeconfig, "faq-paas-init-data")
        assert [o.status for o in out] == ["manual"] and "--set image=" in out[0].message.en
        out = _fix_rule(
            kube_apiserver.kubeconfig,
            "faq-paas-init-data",
            {"image": "registry.intra:5000/blueking/slug-app:v1.1.0-beta.27"},
            allow_disruptive=False,
        )
        assert [o.status for o in out] == ["skipped"]  # it deletes a pod
        out = _fix_rule(
            kube_apiserver.kubeconfig,
            "faq-paas-init-data",
            {"image": "registry.intra:5000/blueking/slug-app:v1.1.0-beta.27"},
        )
        assert [o.status for o in out] == ["fixed"], [(o.status, o.message.en) for o in out]
        core = client.CoreV1Api(kube_apiserver.api_client())
        data = core.read_namespaced_config_map("bkpaas3-apiserver-general-env", "blueking").data
        assert data == {"PAAS_APP_IMAGE": "registry.intra:5000/blueking/slug-app:v1.1.0-beta.27", "OTHER": "x"}
        web = core.read_namespaced_pod("bkpaas3-apiserver-web-6d8f7c9b5-abcde", "blueking")
        assert web.metadata.deletion_timestamp is not None
        again = _fix_rule(
            kube_apiserver.kubeconfig,
            "faq-paas-init-data",
            {"image": "registry.intra:5000/blueking/slug-app:v1.1.0-beta.27"},
        )
        assert [o.status for o in again] == ["unchanged"], [(o.status, o.message.en) for o in again]
    finally:
        st.cleanup()
