"""The real kube-apiserver v1.20.2 test harness (tests/kube/), driven with the official Python client.

Needs the binary from ``bash tests/kube/build-apiserver.sh``; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
from kube.fixtures import kube_apiserver, kube_kubelet, kube_ns  # noqa: F401

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.kube


@pytest.fixture
def api(kube_apiserver):
    c = kube_apiserver.api_client()
    yield c
    c.close()


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def node_name(core):
    """A unique Node name; the Node (cluster-scoped) is deleted after the test."""
    name = f"node-{secrets.token_hex(3)}"
    yield name
    try:
        core.delete_node(name)
    except ApiException as e:
        if e.status != 404:
            raise


def _pod(name: str, node: str | None = None, containers=("app",)) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": f"mirrors.tencent.com/bkce/{c}:1.0"} for c in containers],
        },
    }


def test_version_is_1_20_2(api, kube_apiserver):
    v = client.VersionApi(api).get_code()
    assert v.git_version == "v1.20.2"
    assert (v.major, v.minor) == ("1", "20")
    assert kube_apiserver.url.startswith("https://127.0.0.1:")


def test_kubeconfig_files_load_with_context(kube_apiserver):
    admin = config.new_client_from_config(config_file=kube_apiserver.kubeconfig, context="bkdoctor-test")
    names = {n.metadata.name for n in client.CoreV1Api(admin).list_namespace().items}
    assert {"default", "kube-system", "kube-public"} <= names
    admin.close()
    viewer = config.new_client_from_config(config_file=kube_apiserver.viewer_kubeconfig, context="bkdoctor-test")
    assert client.VersionApi(viewer).get_code().git_version == "v1.20.2"
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(viewer).list_namespace()
    assert e.value.status == 403
    assert "bkdoctor-viewer" in e.value.body
    viewer.close()


def test_node_status_through_status_subresource(core, node_name):
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}})
    status = {
        "status": {
            "nodeInfo": {
                "kubeletVersion": "v1.20.11",
                "kubeProxyVersion": "v1.20.11",
                "containerRuntimeVersion": "docker://19.3.9",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "CentOS Linux 7 (Core)",
                "kernelVersion": "3.10.0-1160.el7.x86_64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
        }
    }
    core.patch_node_status(node_name, status)
    node = core.read_node_status(node_name)
    assert node.status.node_info.kubelet_version == "v1.20.11"
    assert node.status.node_info.container_runtime_version == "docker://19.3.9"
    ready = [c for c in node.status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "True"
    # the main resource ignores status changes: only the subresource sets them
    core.patch_node(node_name, {"status": {"nodeInfo": {"kubeletVersion": "v9.9.9"}}})
    assert core.read_node(node_name).status.node_info.kubelet_version == "v1.20.11"


def test_pod_waiting_reason_image_pull_backoff(core, kube_ns):
    core.create_namespaced_pod(kube_ns, _pod("web", containers=("web",)))
    pod = core.read_namespaced_pod("web", kube_ns)
    assert pod.status.phase == "Pending" and not pod.status.container_statuses
    core.patch_namespaced_pod_status(
        "web",
        kube_ns,
        {
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "web",
                        "ready": False,
                        "restartCount": 0,
                        "image": "mirrors.tencent.com/bkce/web:1.0",
                        "imageID": "",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": 'Back-off pulling image "mirrors.tencent.com/bkce/web:1.0"',
                            }
                        },
                    }
                ],
            }
        },
    )
    pods = core.list_namespaced_pod(kube_ns).items
    assert [p.metadata.name for p in pods] == ["web"]
    st = pods[0].status.container_statuses[0]
    assert st.state.waiting.reason == "ImagePullBackOff"


def test_paginated_list(core, kube_ns):
    for i in range(3):
        core.create_namespaced_config_map(kube_ns, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
    seen, token, pages = [], None, 0
    while True:
        kw = {"limit": 1}
        if token:
            kw["_continue"] = token
        page = core.list_namespaced_config_map(kube_ns, **kw)
        pages += 1
        assert len(page.items) <= 1
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if pages == 1:
            assert token and page.metadata.remaining_item_count == 2
        if not token:
            break
    assert seen == ["cm-0", "cm-1", "cm-2"] and pages == 3


def test_viewer_forbidden_until_rbac_grants(kube_apiserver, api, core, kube_ns):
    core.create_namespaced_secret(kube_ns, {"metadata": {"name": "db"}, "stringData": {"password": "x"}})
    viewer_api = kube_apiserver.viewer_api_client()
    viewer = client.CoreV1Api(viewer_api)
    with pytest.raises(ApiException) as e:
        viewer.list_namespaced_secret(kube_ns)
    assert e.value.status == 403
    assert 'User "bkdoctor-viewer" cannot list resource "secrets"' in json.loads(e.value.body)["message"]

    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        kube_ns,
        {
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_ns,
        {
            "metadata": {"name": "viewer-reads-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bkdoctor-viewer"}],
        },
    )
    deadline = time.monotonic() + 15  # the RBAC authorizer reads through informers: allow a moment
    while True:
        try:
            names = [s.metadata.name for s in viewer.list_namespaced_secret(kube_ns).items]
            break
        except ApiException as e:
            if e.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert "db" in names
    # still nothing outside the granted namespace
    with pytest.raises(ApiException) as e:
        viewer.list_namespaced_secret("kube-system")
    assert e.value.status == 403
    viewer_api.close()


def test_pod_log_through_stand_in_kubelet(core, kube_ns, kube_kubelet, node_name):
    core.create_node(kube_kubelet.node_body(node_name))
    # and the same through the status subresource, as a real kubelet does
    core.patch_node_status(node_name, {"status": kube_kubelet.node_status()})
    node = core.read_node(node_name)
    assert node.status.daemon_endpoints.kubelet_endpoint.port == kube_kubelet.port

    core.create_namespaced_pod(kube_ns, _pod("usermgr", node=node_name, containers=("api", "sidecar")))
    text = "".join(f"line {i}\n" for i in range(1, 11)) + "ERROR: Access denied for user 'root'@'10.0.0.5'\n"
    kube_kubelet.set_log(kube_ns, "usermgr", "api", text)
    kube_kubelet.set_log(kube_ns, "usermgr", "api", "crashed before: OOM\n", previous=True)

    assert core.read_namespaced_pod_log("usermgr", kube_ns, container="api") == text
    tail = core.read_namespaced_pod_log("usermgr", kube_ns, container="api", tail_lines=2)
    assert tail == "line 10\nERROR: Access denied for user 'root'@'10.0.0.5'\n"
    assert core.read_namespaced_pod_log("usermgr", kube_ns, container="api", previous=True) == "crashed before: OOM\n"
    path, cn = kube_kubelet.requests[-1]
    assert path.startswith(f"/containerLogs/{kube_ns}/usermgr/api?") and "previous=true" in path
    assert cn == "kube-apiserver-kubelet-client"  # the API server presented its kubelet client cert

    with pytest.raises(ApiException) as e:  # the kubelet has no log for this container
        core.read_namespaced_pod_log("usermgr", kube_ns, container="sidecar")
    assert e.value.status >= 400
    with pytest.raises(ApiException) as e:  # validated by the API server itself
        core.read_namespaced_pod_log("usermgr", kube_ns, container="nope")
    assert e.value.status == 400


def test_delete_namespaced_service(core, kube_ns):
    svc = core.create_namespaced_service(
        kube_ns,
        {
            "metadata": {"name": "bk-user"},
            "spec": {"selector": {"app": "bk-user"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    assert svc.spec.cluster_ip.startswith("10.")
    core.delete_namespaced_service("bk-user", kube_ns)  # kubernetes 37.0.2 raises here against 1.20
    with pytest.raises(ApiException) as e:
        core.read_namespaced_service("bk-user", kube_ns)
    assert e.value.status == 404


def test_kube_ns_teardown_really_removes_namespace(kube_apiserver, core):
    from kube.fixtures import delete_namespace

    name = f"t-purge-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_pod(name, _pod("p", node="some-node"))  # scheduled: graceful delete by default
    core.create_namespaced_config_map(name, {"metadata": {"name": "c", "finalizers": ["example.com/keep"]}})
    delete_namespace(core.api_client, name)
    with pytest.raises(ApiException) as e:
        core.read_namespace(name)
    assert e.value.status == 404
    assert not core.list_namespaced_pod(name).items
    assert not core.list_namespaced_config_map(name).items


def test_client_version_in_tested_range():
    """See tests/kube/requirements.txt: newer clients break against a 1.20 server in ways a fake won't show."""
    major = int(kubernetes.__version__.split(".")[0])
    assert 33 <= major < 36, (
        f"kubernetes client {kubernetes.__version__}: use 'kubernetes>=33.1,<36' (36.x returns pod logs as "
        f"a bytes repr, 37.x fails delete_namespaced_service against 1.20)"
    )


def test_available_reports_missing_binary(tmp_path):
    from kube.apiserver import KubeAPIServer

    why = KubeAPIServer.available(str(tmp_path / "no-such-kube-apiserver"))
    assert why and "build-apiserver.sh" in why


def test_start_failure_raises_with_log_tail_and_cleans_up(kube_apiserver):
    """A server that cannot start raises KubeAPIServerError with its log, and leaves no process or dir."""
    import os

    from kube.apiserver import KubeAPIServer, KubeAPIServerError

    broken = KubeAPIServer(extra_args=["--no-such-flag=1"], ready_timeout=20)
    with pytest.raises(KubeAPIServerError) as e:
        broken.start()
    assert "exited" in str(e.value) and "no-such-flag" in str(e.value)
    assert broken.workdir is None and len(broken.started_pids) == 2  # etcd and kube-apiserver
    for pid in broken.started_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
