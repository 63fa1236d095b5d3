"""Support bundle round trip: a live scan and a scan of the collected bundle give the same findings, and no
secret value reaches the bundle."""

from __future__ import annotations

import asyncio
import base64
import json
import tarfile

import pytest
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import Case, make_host
from kube.fixtures import kube_apiserver, kube_ns  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.inputs.bundle import mask_text, read_bundle, write_bundle
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.model import BadInput
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport

pytestmark = [pytest.mark.kube, pytest.mark.docker]
SECRET = "S3cr3t-Known-4711"


def _view(report):
    return sorted((f["rule"], f["target"], f["status"], f["message"]) for f in report["findings"])


def test_live_and_bundle_give_the_same_findings_and_no_secret(
    kube_apiserver, nshost_factory, tmp_path, report_validator
):
    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(FIXTURES / "faq-image-pull" / "saas-image.fail.yaml")
        objs += [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "bk-user-api-general-envs", "namespace": "blueking"},
                "data": {
                    "BK_PAAS_ADMIN_PASSWORD": SECRET,
                    "BK_USER_DB_URL": f"mysql://root:pw@db/bk?password={SECRET}",
                    "BK_DOMAIN": "bkce7.bktencent.com",
                },
            },
            {
                "kind": "HelmRelease",
                "metadata": {"name": "bk-secret-carrier", "namespace": "blueking"},
                "chart": "x",
                "version": "1.0.0",
                "values": {"mysql": {"rootPassword": SECRET}},
            },
        ]
        st.apply(objs)
        host = make_host(
            nshost_factory,
            Case(
                rule="x",
                name="x",
                status="fail",
                path=FIXTURES,
                spec={
                    "docker": True,
                    "files": {
                        "/etc/docker/daemon.json": json.dumps(
                            {"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}
                        ),
                        "/etc/sysctl.d/99-local.conf": f"# db_password={SECRET} (left here by someone)\nvm.swappiness = 0\n",
                    },
                },
            ),
        )
        inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
        inv.hosts = [HostSpec(name="n5", address="10.0.0.5", roles=("node",), docker_socket="/run/docker.sock")]
        rules = loader.select(None, None)

        def factory(h, i):
            return LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address)

        live = asyncio.run(engine.scan(inv, rules, factory=factory, cluster=configure(kube_apiserver.kubeconfig)))
        live_report = report_validator(build_report(live, "en"))
        path = tmp_path / "bundle.tar.gz"
        write_bundle(live, str(path))
    finally:
        st.cleanup()
    # the cluster and the host are gone: the bundle alone gives the same answers
    manifest, hosts, cf = read_bundle(str(path))
    inv2 = local_inventory(domain=manifest["domain"], install_dir="/nonexistent")
    inv2.hosts = []
    replay = asyncio.run(engine.scan(inv2, rules, preloaded_hosts=hosts, cluster_facts=cf))
    replay_report = report_validator(build_report(replay, "en"))
    assert _view(replay_report) == _view(live_report)
    assert any(f["rule"] == "faq-image-pull" and f["status"] == "fail" for f in replay_report["findings"])
    # no secret anywhere in the bundle, in any encoding we wrote
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.isfile():
                raw = tar.extractfile(m).read()
                assert SECRET.encode() not in raw, m.name
                doc = json.loads(raw)
                for sec in (doc.get("sections") or {}).values():
                    assert SECRET.encode() not in base64.b64decode(sec["out"]), m.name
                assert b"sh.helm.release" not in raw  # release payloads never stored
        assert oct(tar.getmember("bkdoctor-bundle/manifest.json").mode) == "0o600"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_mask_text():
    assert (
        mask_text("BK_PAAS_ADMIN_PASSWORD=abc token: xyz --db-password hunter2 Authorization: Bearer abcdefgh1234")
        == "BK_PAAS_ADMIN_PASSWORD=*** token: *** --db-password *** Authorization: Bearer ***"
    )
    assert (
        mask_text("lookup docker.bkce7.bktencent.com: no such host")
        == "lookup docker.bkce7.bktencent.com: no such host"
    )


def test_bad_bundle_is_bad_input(tmp_path):
    p = tmp_path / "b.tar.gz"
    p.write_bytes(b"not a tarball")
    with pytest.raises(BadInput):
        read_bundle(str(p))
    with pytest.raises(BadInput):
        read_bundle(str(tmp_path / "missing.tar.gz"))


def _cli(*args: str, home) -> dict:
    """`bkdoctor ARGS --json - --no-history` through the console script's entry point; the JSON report."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env.update(LANG="C.UTF-8", HOME=str(home), XDG_DATA_HOME=str(home / "xdg"))
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from bkdoctor.launch import main; sys.argv[0] = 'bkdoctor'; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode in (0, 1), r.stderr[-3000:]
    return json.loads(r.stdout) if r.stdout.strip() else {}


def test_a_configmap_refused_alone_gives_the_same_status_live_and_from_the_bundle(
    kube_apiserver, kube_ns, tmp_path, report_validator
):
    """RBAC grants three of the four ConfigMap names: the coredns rule reads the fourth. Live, `configmap()`
    raises the 403 for that name (error); the bundle carries the refusal, so its scan says error too (before, the
    name looked absent in the bundle and the rule said fail: no kube-system/coredns ConfigMap)."""
    from kubernetes import client
    from kubernetes.config import new_client_from_config
    from test_incluster import sa_kubeconfig, status_code, wait_for

    from bkdoctor.facts.cluster import CONFIGMAPS

    api = kube_apiserver.api_client()
    rbac = client.RbacAuthorizationV1Api(api)
    core = client.CoreV1Api(api)
    role = f"{kube_ns}-cm-reader"
    granted = [n for n in CONFIGMAPS if n != "coredns"]
    try:
        # the ingress controller Service the rule checks CoreDNS against (else it errs before reading the Corefile)
        core.create_namespaced_service(
            kube_ns,
            {
                "metadata": {
                    "name": "ingress-nginx-controller",
                    "labels": {"app.kubernetes.io/instance": "ingress-nginx"},
                },
                "spec": {"ports": [{"port": 80}]},
            },
        )
        core.create_namespaced_service_account(kube_ns, {"metadata": {"name": "bkdoctor"}})
        rbac.create_cluster_role(
            {
                "metadata": {"name": role},
                "rules": [
                    {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"], "resourceNames": granted},
                ],
            }
        )
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": "bkdoctor", "namespace": kube_ns}],
            }
        )
        kc = sa_kubeconfig(kube_apiserver, api, kube_ns, tmp_path / "kubeconfig")  # a token of ServiceAccount bkdoctor
        home = tmp_path / "home"
        home.mkdir()
        common = ["--rule", "coredns", "--domain", "bkce7.bktencent.com"]
        sa = new_client_from_config(kc)
        query = [("fieldSelector", f"metadata.name={granted[0]}")]
        # the RBAC authorizer sees the binding through an informer: a moment later
        wait_for(lambda: status_code(sa, "GET", "/api/v1/configmaps", query) == 200, timeout=30)
        sa.close()
        live = report_validator(_cli("scan", "--kubeconfig", kc, *common, "--json", "-", "--no-history", home=home))
        bundle = tmp_path / "b.tar.gz"
        _cli("collect", "-o", str(bundle), "--kubeconfig", kc, *common, home=home)
    finally:
        # cluster-wide objects, and the Service: the namespace's teardown cannot delete Services (no
        # deletecollection for them in v1.20), and a labelled one left behind is every later test's ingress
        deletes = [(rbac.delete_cluster_role_binding, role), (rbac.delete_cluster_role, role)]
        deletes.append((lambda name: core.delete_namespaced_service(name, kube_ns), "ingress-nginx-controller"))
        for delete, name in deletes:
            try:
                delete(name)
            except client.rest.ApiException:
                pass
        api.close()
    offline = report_validator(_cli("scan", "--bundle", str(bundle), *common, "--json", "-", "--no-history", home=home))
    [live_f] = [f for f in live["findings"] if f["rule"] == "coredns"]
    [offline_f] = [f for f in offline["findings"] if f["rule"] == "coredns"]
    assert live_f["status"] == "error" and '"coredns" is forbidden' in live_f["message"], live_f
    assert (offline_f["status"], offline_f["message"]) == (live_f["status"], live_f["message"])
    # the other names were read: the refusal is coredns's alone, carried beside the ConfigMaps that were
    with tarfile.open(bundle) as tar:
        doc = json.loads(tar.extractfile("bkdoctor-bundle/cluster.json").read())
    assert "__error__" not in doc["kinds"]["configmaps"] and list(doc["configmap_errors"]) == ["coredns"]


def test_a_bundle_without_configmap_errors_has_none_refused(tmp_path):
    """Bundles written before `configmap_errors` existed stay readable: nothing refused; a malformed entry is
    bad input naming the key."""
    from safetykit import write_bundle

    from bkdoctor.facts.cluster import configmap
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.inputs.bundle import SCHEMA
    from bkdoctor.model import FactUnavailable

    manifest = {"schema": SCHEMA, "thresholds": th.merge(None), "hosts": [], "cluster": "c", "rules": []}
    cms = {"kube-system/coredns": {"metadata": {"namespace": "kube-system", "name": "coredns"}, "data": {}}}

    def bundle(**extra) -> str:
        cluster = {"name": "c", "server": "https://x", "reachable": True, "error": None, "kinds": {"configmaps": cms}}
        path = tmp_path / f"b{len(list(tmp_path.iterdir()))}.tar.gz"
        return write_bundle(path, {"manifest.json": manifest, "cluster.json": {**cluster, **extra}})

    _, _, cf = read_bundle(bundle())
    assert cf.configmap_errors == {} and configmap(cf, "coredns")["data"] == {}
    _, _, cf = read_bundle(bundle(configmap_errors={"coredns": {"zh": "禁止", "en": "forbidden (HTTP 403)"}}))
    with pytest.raises(FactUnavailable, match="forbidden") as e:
        configmap(cf, "coredns")
    assert e.value.status == "error"
    for bad in (
        [],
        {"coredns": "forbidden"},
        {"coredns": {"en": "x"}},
        {"coredns": {"zh": "x", "en": "x", "status": 1}},
    ):
        with pytest.raises(BadInput, match="configmap_errors"):
            read_bundle(bundle(configmap_errors=bad))
