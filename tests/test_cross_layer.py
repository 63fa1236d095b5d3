"""Hosts and the cluster in one scan: a pod that cannot pull from docker.<domain> on node-10-0-0-5 and that
node lacking docker.<domain> in insecure-registries are one story in the report."""

from __future__ import annotations

import asyncio

import pytest
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import Case, make_host
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport

pytestmark = [pytest.mark.kube, pytest.mark.docker]


def test_pull_failure_names_the_host_cause_and_its_fix(kube_apiserver, nshost_factory, report_validator):
    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(FIXTURES / "faq-image-pull" / "saas-image.fail.yaml")
        st.apply(objs)
        case = Case(
            rule="insecure-registries",
            name="x",
            status="fail",
            path=FIXTURES,
            spec={
                "docker": True,
                "files": {
                    "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n'
                },
            },
        )
        host = make_host(nshost_factory, case)
        inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
        # the inventory knows the node by its address only: the link goes through the Node's InternalIP
        inv.hosts = [HostSpec(name="n5", address="10.0.0.5", roles=("node",), docker_socket="/run/docker.sock")]

        def factory(h, inv_):
            return LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address)

        rules = loader.select(["insecure-registries", "faq-image-pull"], None)
        result = asyncio.run(engine.scan(inv, rules, factory=factory, cluster=configure(kube_apiserver.kubeconfig)))
        report = report_validator(build_report(result, "en"))
    finally:
        st.cleanup()
    f = {x["rule"]: x for x in report["findings"]}
    pull, ir = f["faq-image-pull"], f["insecure-registries"]
    assert pull["status"] == "fail" and ir["status"] == "fail"
    assert pull["related"] == [
        {
            "rule": "insecure-registries",
            "target": "n5",
            "status": "fail",
            "relation": "caused-by",
            "node": "node-10-0-0-5",
            "message": ir["message"],
            "fix": "bkdoctor fix --rule insecure-registries --host n5",
        }
    ]
    assert pull["message"].startswith("root cause: insecure-registries is fail on node node-10-0-0-5")
    assert "bkdoctor fix --rule insecure-registries --host n5" in pull["message"]
    assert ir["related"][0]["rule"] == "faq-image-pull" and ir["related"][0]["relation"] == "causes"


def test_no_link_when_the_host_is_fine(kube_apiserver, nshost_factory, report_validator):
    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(FIXTURES / "faq-image-pull" / "saas-image.fail.yaml")
        st.apply(objs)
        host = make_host(nshost_factory, Case(rule="x", name="x", status="pass", path=FIXTURES, spec={"docker": True}))
        inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
        inv.hosts = [
            HostSpec(name="node-10-0-0-5", address="198.18.255.5", roles=("node",), docker_socket="/run/docker.sock")
        ]
        result = asyncio.run(
            engine.scan(
                inv,
                loader.select(["insecure-registries", "faq-image-pull"], None),
                factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root),
                cluster=configure(kube_apiserver.kubeconfig),
            )
        )
        report = report_validator(build_report(result, "en"))
    finally:
        st.cleanup()
    f = {x["rule"]: x for x in report["findings"]}
    assert f["insecure-registries"]["status"] == "pass"
    assert f["faq-image-pull"]["status"] == "fail" and "related" not in f["faq-image-pull"]
