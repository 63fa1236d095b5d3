"""`bkdoctor install`'s ingress lookups (the access hosts entries of §六.4.1, the ingress-deployed predicate of
§四.6.1) are the rules' own (k8s.find_ingress), on the real kube-apiserver: the admission webhook job's pod, which
carries app.kubernetes.io/name=ingress-nginx too, is never taken for the controller."""

from __future__ import annotations

import asyncio

from clusterstate import FIXTURES, ClusterState, helm_release_secret, load_docs
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.inputs.inventory import local_inventory
from bkdoctor.install.builtin import b_access, p_ingress
from bkdoctor.install.phases import Installer, load_phases
from bkdoctor.store import History

ADMISSION_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "ingress-nginx-admission-create-abcde",
        "namespace": "blueking",
        "labels": {
            "app.kubernetes.io/name": "ingress-nginx",
            "app.kubernetes.io/instance": "ingress-nginx",
            "app.kubernetes.io/component": "admission-webhook",
        },
    },
    "spec": {
        "nodeName": "node-10-0-0-99",
        "restartPolicy": "Never",
        "containers": [{"name": "create", "image": "hub.bktencent.com/blueking/kube-webhook-certgen:v1.5.1"}],
    },
    "status": {"phase": "Succeeded", "hostIP": "10.0.0.99"},
}
ENVS = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "bk-user-api-general-envs", "namespace": "blueking"},
    "data": {"INITIAL_ADMIN_USERNAME": "admin", "INITIAL_ADMIN_PASSWORD": "s3cret-Pw"},
}


def test_install_uses_the_rules_ingress_lookup(kube_apiserver, tmp_path):
    said: list[str] = []
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inst = Installer(
        inv,
        history=History(str(tmp_path / "h.db")),
        say=said.append,
        confirm=lambda q: True,
        cluster_factory=lambda: configure(kube_apiserver.kubeconfig),
    )
    st = ClusterState(kube_apiserver.api_client())
    try:
        # only the admission job ran (the controller is not there yet): ingress-nginx is not deployed
        st.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "blueking"}}, ADMISSION_POD])
        assert asyncio.run(p_ingress(inst)) is False
        # the chart's objects (base.yaml: the controller Service and pod on 10.0.0.5) beside the job's pod
        _, objs = load_docs(FIXTURES / "base.yaml")
        order = ["StorageClass", "Node", "PersistentVolume"]
        rest = [
            helm_release_secret(o) if o["kind"] == "HelmRelease" else o
            for o in objs + [ENVS]
            if o["kind"] != "Namespace"
        ]  # blueking exists already
        for o in sorted(rest, key=lambda o: order.index(o["kind"]) if o["kind"] in order else len(order)):
            st.create(o)
        assert asyncio.run(p_ingress(inst)) is True
        step = next(s for p in load_phases() if p.id == "access" for s in p.steps)
        ok, detail = asyncio.run(b_access(inst, step))
        assert ok, detail
        out = "\n".join(said)
        assert "10.0.0.5 bkce7.bktencent.com" in out and "10.0.0.99" not in out, out
    finally:
        st.cleanup()
