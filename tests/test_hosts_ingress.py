"""hosts-file judged against the cluster's ingress, found by the guide's one lookup (§四.6.3: the Services labelled
app.kubernetes.io/instance=ingress-nginx, the controller of them; §六.4.1: its pods' hostIPs): a real API server
holding the base cluster and real namespaced hosts resolving names through their own /etc/hosts."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from clusterstate import FIXTURES as CLUSTER
from clusterstate import ClusterState, merged_state
from hostcases import FIXTURES, Case, make_host
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport

pytestmark = [pytest.mark.kube]

CLUSTER_IP, POD_HOST_IP = "10.96.45.12", "10.0.0.5"  # fixtures/cluster/base.yaml
NODE_NAMES = (
    "bkce7.bktencent.com bkrepo.bkce7.bktencent.com docker.bkce7.bktencent.com "
    "bknodeman.bkce7.bktencent.com apps.bkce7.bktencent.com"
)


def _control_hosts(ip):
    text = yaml.safe_load((FIXTURES / "host" / "hosts-file" / "control-20-names.pass.yaml").read_text())["files"][
        "/etc/hosts"
    ]
    return text.replace("203.0.113.7", ip)


@pytest.fixture
def base_cluster(kube_apiserver):
    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(CLUSTER / "base.yaml")
        st.apply(objs)
        yield kube_apiserver
    finally:
        st.cleanup()


def _scan(api, nshost_factory, roles, hosts_text, whole=False):
    host = make_host(
        nshost_factory,
        Case(rule="hosts-file", name="x", status="pass", path=FIXTURES, spec={"files": {"/etc/hosts": hosts_text}}),
    )
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.hosts = [HostSpec(name="h", address="10.0.0.9", roles=roles)]
    # only the host rule is selected: the engine still reads the ingress from the cluster for it
    result = asyncio.run(
        engine.scan(
            inv,
            loader.select(["hosts-file"], None),
            cluster=configure(api.kubeconfig),
            factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root),
        )
    )
    if whole:
        return result, inv
    report = build_report(result, "en")
    assert [t["name"] for t in report["targets"]] == ["h"]  # no cluster target without a cluster rule
    return next(f for f in report["findings"] if f["rule"] == "hosts-file")


def test_node_names_at_the_cluster_ip_pass(base_cluster, nshost_factory):
    f = _scan(
        base_cluster,
        nshost_factory,
        ("node",),
        f"127.0.0.1 localhost\n10.0.0.2 k8s-api.bcs.local\n{CLUSTER_IP} {NODE_NAMES}\n",
    )
    assert f["status"] == "pass", f["message"]
    assert f["expected"]["ingress"] == [CLUSTER_IP]
    assert f["expected"]["ingress_source"] == "ClusterIP of blueking/ingress-nginx-controller"  # not the admission one


def test_node_names_at_the_pod_host_ip_fail(base_cluster, nshost_factory):
    """Nodes need the ClusterIP (§七.2); the pod's hostIP is for operators' machines (§六.4.1)."""
    f = _scan(
        base_cluster,
        nshost_factory,
        ("node",),
        f"127.0.0.1 localhost\n10.0.0.2 k8s-api.bcs.local\n{POD_HOST_IP} {NODE_NAMES}\n",
    )
    assert f["status"] == "fail"
    assert f"should resolve to {CLUSTER_IP} (ClusterIP of blueking/ingress-nginx-controller)" in f["message"]


def test_the_fix_aims_at_the_address_the_rule_expects(base_cluster, nshost_factory):
    """fix plans with the context the rule judged with: the cluster's ingress, not only the inventory's ingress_ip
    (without it the plan fell back to a manual step asking for ingress_ip while the rule wanted the ClusterIP)."""
    from bkdoctor.fix.loop import make_plans
    from bkdoctor.fix.plan import FileChange

    result, inv = _scan(
        base_cluster,
        nshost_factory,
        ("node",),
        f"127.0.0.1 localhost\n10.0.0.2 k8s-api.bcs.local\n{POD_HOST_IP} {NODE_NAMES}\n",
        whole=True,
    )
    [(finding, plan, why)] = make_plans(result, inv, None)
    assert finding.status == "fail" and why is None and plan is not None and not plan.manual, (why, plan)
    [change] = [c for c in plan.changes if isinstance(c, FileChange)]
    assert change.path == "/etc/hosts" and f"{CLUSTER_IP} " in change.after.decode()


def test_control_machine_names_at_the_pod_host_ip_pass(base_cluster, nshost_factory):
    f = _scan(base_cluster, nshost_factory, ("control",), _control_hosts(POD_HOST_IP))
    assert f["status"] == "pass", f["message"]
    assert f["expected"]["ingress"] == [POD_HOST_IP]


def test_control_machine_names_elsewhere_fail(base_cluster, nshost_factory):
    f = _scan(base_cluster, nshost_factory, ("control",), _control_hosts("192.0.2.99"))
    assert f["status"] == "fail"
    assert "ingress-nginx pod hostIP" in f["message"]
