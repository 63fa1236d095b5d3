"""Load cluster states into the real test kube-apiserver from YAML written like `kubectl get -o yaml` output.

Objects are created, then their `status` is set through the status subresource (nothing else would set it:
no controller, scheduler or kubelet runs). `kind: HelmRelease` is a fixture shorthand that becomes the Secret
helm itself writes (`sh.helm.release.v1.<name>.v<rev>`, type helm.sh/release.v1, gzip+base64 payload).
Everything created is deleted again by `ClusterState.cleanup()`, also when a test fails.

Times relative to now: any string may hold `{{now}}`, `{{now-3m}}`, `{{now+2h}}` (units s, m, h, d), replaced
when the file is loaded by the UTC time as the API writes it (`2026-11-26T08:00:00Z`). Quote them in YAML
(`startTime: "{{now-3m}}"`): unquoted braces are a flow mapping. For rules that judge ages (grace periods).

Container logs: the Case doc may declare them, served through the real API server path (client ->
kube-apiserver `pods/log` -> kubelet) by the session's stand-in kubelet (tests/kube/kubelet_logs.py):

    logs: {"<ns>/<pod>/<container>": "text ..."}           # what `kubectl logs` shows
    previous_logs: {"<ns>/<pod>/<container>": "text ..."}  # `kubectl logs --previous` (restartCount > 0)

`ClusterState(api, kubelet=kube_kubelet).apply(objs, logs=..., previous_logs=...)` registers the texts and
points the Node of every pod that has logs at the stand-in. The trick, and its price: the test API server
runs with `--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname` and dials the first address of
the first type present, and the stand-in's serving certificate is for 127.0.0.1/localhost only. A Node with
InternalIP 10.0.0.5 would be dialled at 10.0.0.5 (tried: HTTP 500, nothing listens there), and a Hostname
address is only used when there is no InternalIP. So such a Node gets InternalIP 127.0.0.1 (its Hostname
address is kept, the fixture's InternalIP is kept in the annotation `bkdoctor.test/fixture-internal-ip`) and
`daemonEndpoints.kubeletEndpoint.Port` = the stand-in's port. Cross-layer links find hosts by node name first,
then by InternalIP: a case that needs an address-only link must not declare logs for pods on that node
(use events or container states there). A pod whose node is not in the state gets a stand-in Node of that name.
Declared logs must name an existing pod and container (a typo is an error, not a silently empty log).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import gzip
import json
import re
from pathlib import Path
from typing import Any

import yaml
from kube.fixtures import delete_namespace, rest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cluster"

# kind -> (collection path template, namespaced, has status subresource)
KINDS = {
    "Namespace": ("/api/v1/namespaces", False, False),
    "Node": ("/api/v1/nodes", False, True),
    "PersistentVolume": ("/api/v1/persistentvolumes", False, True),
    "StorageClass": ("/apis/storage.k8s.io/v1/storageclasses", False, False),
    "Pod": ("/api/v1/namespaces/{ns}/pods", True, True),
    "Service": ("/api/v1/namespaces/{ns}/services", True, False),
    "ConfigMap": ("/api/v1/namespaces/{ns}/configmaps", True, False),
    "Secret": ("/api/v1/namespaces/{ns}/secrets", True, False),
    "Event": ("/api/v1/namespaces/{ns}/events", True, False),
    "PersistentVolumeClaim": ("/api/v1/namespaces/{ns}/persistentvolumeclaims", True, True),
    "Job": ("/apis/batch/v1/namespaces/{ns}/jobs", True, True),
}
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


def helm_release_secret(doc: dict[str, Any]) -> dict[str, Any]:
    """HelmRelease {metadata: {name, namespace}, chart, version, appVersion, status, revision} -> its Secret."""
    md = doc["metadata"]
    rev = int(doc.get("revision", 1))
    payload = {
        "name": md["name"],
        "namespace": md["namespace"],
        "version": rev,
        "info": {"status": doc.get("status", "deployed"), "description": doc.get("description", "Install complete")},
        "chart": {
            "metadata": {
                "name": doc.get("chart", md["name"]),
                "version": str(doc["version"]),
                "appVersion": str(doc.get("appVersion", doc["version"])),
            }
        },
        "config": doc.get("values", {}),
        "manifest": doc.get("manifest", ""),
    }
    release = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()  # what helm stores
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{md['name']}.v{rev}",
            "namespace": md["namespace"],
            "labels": {
                "owner": "helm",
                "name": md["name"],
                "status": doc.get("status", "deployed"),
                "version": str(rev),
            },
        },
        "data": {"release": base64.b64encode(release.encode()).decode()},
    }


def key(doc: dict[str, Any]) -> tuple[str, str, str]:
    md = doc.get("metadata") or {}
    name = md["name"] + (f".v{doc.get('revision', 1)}" if doc["kind"] == "HelmRelease" else "")
    return doc["kind"], md.get("namespace", ""), name


NOW_RE = re.compile(r"\{\{\s*now\s*(?:([+-])\s*(\d+)\s*([smhd]))?\s*\}\}")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def expand_times(value: Any, now: dt.datetime | None = None) -> Any:
    """`{{now}}`, `{{now-3m}}`, `{{now+2h}}` in every string of a loaded document -> RFC 3339 UTC times."""
    now = now or dt.datetime.now(dt.timezone.utc)

    def sub(m: re.Match) -> str:
        t = now
        if m.group(1):
            delta = dt.timedelta(**{UNITS[m.group(3)]: int(m.group(2))})
            t = now + delta if m.group(1) == "+" else now - delta
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    if isinstance(value, str):
        return NOW_RE.sub(sub, value)
    if isinstance(value, list):
        return [expand_times(v, now) for v in value]
    if isinstance(value, dict):
        return {k: expand_times(v, now) for k, v in value.items()}
    return value


def load_docs(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(case settings, objects) of a fixture file; the first document may be `kind: Case`."""
    now = dt.datetime.now(dt.timezone.utc)
    docs = [expand_times(d, now) for d in yaml.safe_load_all(path.read_text()) if d]
    case = docs[0] if docs and docs[0].get("kind") == "Case" else {}
    objs = [d for d in docs if d.get("kind") != "Case"]
    return case, objs


def merged_state(case_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The base state with the case's objects laid over it (same kind/namespace/name replaces)."""
    case, objs = load_docs(case_path)
    base_name = case.get("base", "base")
    base: list[dict[str, Any]] = []
    if base_name:
        _, base = load_docs(FIXTURES / f"{base_name}.yaml")
    drop = {
        tuple(x.split("/", 2)) if x.count("/") == 2 else (x.split("/")[0], "", x.split("/")[1])
        for x in case.get("delete", [])
    }
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for d in base + objs:
        if key(d) in drop:
            continue
        out[key(d)] = d
    return case, list(out.values())


FIXTURE_IP_ANNOTATION = "bkdoctor.test/fixture-internal-ip"


class ClusterState:
    def __init__(self, api_client, kubelet=None):
        self.api = api_client
        self.kubelet = kubelet  # the stand-in kubelet (kube_kubelet), needed only for cases with logs
        self.created: list[tuple[str, str, str]] = []
        self.namespaces: list[str] = []
        self.log_namespaces: set[str] = set()

    def apply(
        self,
        objs: list[dict[str, Any]],
        logs: dict[str, str] | None = None,
        previous_logs: dict[str, str] | None = None,
    ) -> None:
        objs = [helm_release_secret(o) if o["kind"] == "HelmRelease" else copy.deepcopy(o) for o in objs]
        declared = [(k, v, False) for k, v in (logs or {}).items()] + [
            (k, v, True) for k, v in (previous_logs or {}).items()
        ]
        if declared:
            self._serve_logs(objs, declared)
        nss = sorted({(o.get("metadata") or {}).get("namespace") for o in objs} - {None, ""} - BUILTIN_NAMESPACES)
        for ns in nss:
            if not any(o["kind"] == "Namespace" and o["metadata"]["name"] == ns for o in objs):
                objs.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        order = ["Namespace", "StorageClass", "Node", "PersistentVolume"]
        objs.sort(key=lambda o: order.index(o["kind"]) if o["kind"] in order else len(order))
        for o in objs:
            self.create(o)

    def _serve_logs(self, objs: list[dict[str, Any]], declared: list[tuple[str, str, bool]]) -> None:
        """Register the declared log texts with the stand-in kubelet; point the pods' Nodes at it."""
        if self.kubelet is None:
            raise ValueError("the case declares logs: ClusterState needs kubelet=kube_kubelet (the stand-in kubelet)")
        pods = {
            (o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o for o in objs if o["kind"] == "Pod"
        }
        nodes: set[str] = set()
        for k, text, previous in declared:
            parts = k.split("/")
            if len(parts) != 3:
                raise ValueError(f"log key {k!r}: want <namespace>/<pod>/<container>")
            ns, name, container = parts
            pod = pods.get((ns, name))
            if pod is None:
                raise ValueError(f"log key {k!r}: no pod {ns}/{name} in the case")
            spec = pod.get("spec") or {}
            if container not in [
                c["name"] for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
            ]:
                raise ValueError(f"log key {k!r}: pod {ns}/{name} has no container {container!r}")
            if not spec.get("nodeName"):
                raise ValueError(f"log key {k!r}: pod {ns}/{name} has no spec.nodeName (the API server needs its node)")
            if not isinstance(text, str):
                raise ValueError(f"log key {k!r}: the log must be text")
            nodes.add(spec["nodeName"])
            self.kubelet.set_log(ns, name, container, text, previous=previous)
            self.log_namespaces.add(ns)
        have = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Node"}
        for name in sorted(nodes):
            node = have.get(name)
            if node is None:
                objs.append(self.kubelet.node_body(name))
                continue
            st = node.setdefault("status", {})
            addrs = st.get("addresses") or []
            old = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None)
            if old:
                node["metadata"].setdefault("annotations", {})[FIXTURE_IP_ANNOTATION] = old
            st["addresses"] = [{"type": "InternalIP", "address": self.kubelet.host}] + [
                a for a in addrs if a.get("type") != "InternalIP"
            ]
            st["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet.port}}

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj["kind"]
        if kind not in KINDS:
            raise ValueError(f"fixture kind {kind} is not supported by the loader")
        coll, namespaced, has_status = KINDS[kind]
        md = obj.setdefault("metadata", {})
        ns = md.get("namespace", "default") if namespaced else None
        path = coll.format(ns=ns)
        status = obj.pop("status", None)
        taints = (obj.get("spec") or {}).get("taints") if kind == "Node" else None
        body = rest(self.api, "POST", path, body=obj)
        if kind == "Namespace":
            self.namespaces.append(md["name"])
        else:
            self.created.append((kind, ns or "", md["name"]))
        if status is not None and has_status:
            body = rest(
                self.api,
                "PATCH",
                f"{path}/{md['name']}/status",
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        if kind == "Node":
            # the TaintNodesByCondition admission adds node.kubernetes.io/not-ready at creation; the node
            # lifecycle controller (not running here) removes it once the Node is Ready: do its part
            body = rest(
                self.api,
                "PATCH",
                f"{path}/{md['name']}",
                body={"spec": {"taints": taints}},
                content_type="application/merge-patch+json",
            )
        return body

    def cleanup(self) -> None:
        errors = []
        for ns in sorted(self.log_namespaces):
            self.kubelet.clear(ns)
        self.log_namespaces.clear()
        for kind, ns, name in reversed(self.created):
            coll, namespaced, _ = KINDS[kind]
            # every object one by one: a namespace purge cannot delete Services (no deletecollection in 1.20),
            # and a leftover Service keeps its ClusterIP allocated
            path = f"{coll.format(ns=ns)}/{name}"
            try:
                rest(self.api, "DELETE", path, query=[("gracePeriodSeconds", 0)])
                # no controller removes protection finalizers (kubernetes.io/pv-protection) here: clear them
                rest(
                    self.api,
                    "PATCH",
                    path,
                    body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
            except Exception as e:
                if getattr(e, "status", None) != 404:
                    errors.append(f"{kind} {ns}/{name}: {str(e).splitlines()[0]}")
        for ns in reversed(self.namespaces):
            try:
                delete_namespace(self.api, ns)
            except Exception as e:
                errors.append(f"namespace {ns}: {e}")
        self.created.clear()
        self.namespaces.clear()
        if errors:
            raise RuntimeError("cleanup failed: " + "; ".join(errors))
