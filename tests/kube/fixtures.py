"""pytest fixtures for a real kube-apiserver v1.20.2 (see apiserver.py).

Import into tests/conftest.py (or a test module)::

    from kube.fixtures import kube_apiserver, kube_ns, kube_kubelet  # noqa: F401

- ``kube_apiserver`` (session): one started KubeAPIServer for the whole run; skipped with the reason when
  the binary/etcd/openssl/kubernetes client is missing, unless BKDOCTOR_REQUIRE_KUBE=1 (then it fails).
- ``kube_ns`` (function): a fresh namespace name; at teardown everything namespaced in it is deleted
  (grace period 0, no finalizers left) and the namespace is finalized so it does not stay Terminating.
- ``kube_kubelet`` (session): a stand-in kubelet (KubeletLogServer) trusted by the API server, for pods/log.
  Point a Node at it with ``kube_kubelet.node_body(name)`` / ``kube_kubelet.node_status()``.

Cluster-scoped objects a test creates (Nodes, ClusterRoles, ...) are not cleaned: delete them in the test.
"""

from __future__ import annotations

import json
import os
import re
import secrets

import pytest

from .apiserver import KubeAPIServer


def _require() -> bool:
    return os.environ.get("BKDOCTOR_REQUIRE_KUBE", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def kube_apiserver():
    why = KubeAPIServer.available()
    if not why:
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            why = "the kubernetes Python client is not installed (pip install 'kubernetes>=33.1,<36')"
    if why:
        if _require():
            pytest.fail(f"BKDOCTOR_REQUIRE_KUBE is set but: {why}", pytrace=False)
        pytest.skip(why)
    global _SERVER, _USERS
    # Shared, reference-counted: a test module that imports these fixtures while conftest does too gets
    # a second fixture definition, but still the one server.
    if _SERVER is None:
        _SERVER = KubeAPIServer().start()
    _USERS += 1
    try:
        yield _SERVER
    finally:
        _USERS -= 1
        if _USERS == 0:
            server, _SERVER = _SERVER, None
            server.stop()


_SERVER: KubeAPIServer | None = None
_USERS = 0


@pytest.fixture(scope="session")
def kube_kubelet(kube_apiserver):
    """The session's stand-in kubelet (one per server; stopped with it)."""
    kubelet = getattr(kube_apiserver, "_session_kubelet", None)
    if kubelet is None:
        kubelet = kube_apiserver._session_kubelet = kube_apiserver.kubelet_log_server()
    return kubelet


def _ns_name(nodeid: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", nodeid.split("::")[-1].lower()).strip("-")
    suffix = secrets.token_hex(3)
    return f"t-{base[: 63 - 3 - len(suffix) - 1].strip('-')}-{suffix}"


def rest(api_client, method: str, path: str, *, query=None, body=None, content_type: str | None = None):
    """A raw JSON request through a ``kubernetes.client.ApiClient`` (its auth and TLS); returns the decoded
    body. Raises ``kubernetes.client.rest.ApiException`` on errors."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    resp = api_client.call_api(
        path,
        method,
        query_params=list(query or []),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    data = resp.data
    return json.loads(data) if data else {}


def purge_namespace(api_client, namespace: str) -> None:
    """Delete every namespaced object in ``namespace`` (all listable/deletable resources of the preferred
    version of each group), with grace period 0 and background propagation, then clear leftover finalizers.
    No kubelet, namespace controller or garbage collector runs, so nothing else would do it."""
    resources = []
    core = rest(api_client, "GET", "/api/v1")
    resources += [("/api/v1", r) for r in core["resources"]]
    groups = rest(api_client, "GET", "/apis")
    for g in groups.get("groups", []):
        gv = g["preferredVersion"]["groupVersion"]
        try:
            rl = rest(api_client, "GET", f"/apis/{gv}")
        except Exception:
            continue
        resources += [(f"/apis/{gv}", r) for r in rl.get("resources", [])]
    for prefix, r in resources:
        verbs = set(r.get("verbs", []))
        if not r.get("namespaced") or "/" in r["name"] or not {"list", "deletecollection"} <= verbs:
            continue
        path = f"{prefix}/namespaces/{namespace}/{r['name']}"
        try:
            rest(api_client, "DELETE", path, query=[("gracePeriodSeconds", 0), ("propagationPolicy", "Background")])
            left = rest(api_client, "GET", path)
        except Exception:
            continue
        for item in left.get("items", []) or []:
            meta = item.get("metadata", {})
            if meta.get("finalizers"):
                try:
                    rest(
                        api_client,
                        "PATCH",
                        f"{path}/{meta['name']}",
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
                except Exception:
                    pass


def delete_namespace(api_client, namespace: str) -> None:
    """Purge, delete and finalize ``namespace`` so that it is really gone (no namespace controller here)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    purge_namespace(api_client, namespace)
    try:
        core.delete_namespace(namespace, grace_period_seconds=0)
    except ApiException as e:
        if e.status != 404:
            raise
        return
    try:
        ns = core.read_namespace(namespace)
    except ApiException as e:
        if e.status == 404:
            return
        raise
    ns.spec.finalizers = []
    try:
        core.replace_namespace_finalize(namespace, ns)
    except ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture
def kube_ns(kube_apiserver, request):
    """A fresh namespace (its name); removed with all its content after the test."""
    from kubernetes import client

    api = kube_apiserver.api_client()
    name = _ns_name(request.node.nodeid)
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"bkdoctor-test": "true"}))
    )
    try:
        yield name
    finally:
        try:
            delete_namespace(api, name)
        finally:
            api.close()
