"""Small pure helpers over Kubernetes objects as dicts (what the API returns)."""

from __future__ import annotations

from typing import Any


def md(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def ref(obj: dict[str, Any]) -> str:
    m = md(obj)
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else m.get("name", "?")


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return md(obj).get("labels") or {}


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def is_true(obj: dict[str, Any], ctype: str) -> bool:
    c = condition(obj, ctype)
    return bool(c) and c.get("status") == "True"


INGRESS_SVC_LABEL = ("app.kubernetes.io/instance", "ingress-nginx")  # §四.6.3 / §七.2.2.1 / §十一.4
INGRESS_POD_LABEL = ("app.kubernetes.io/name", "ingress-nginx")  # §四.6.1 / §六.4.1


def ingress_controller_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ingress-nginx controller pods (app.kubernetes.io/name=ingress-nginx, component controller or none): the
    ingress-nginx rule checks them, its fix names them."""
    return [
        p
        for p in pods
        if labels(p).get("app.kubernetes.io/name") == "ingress-nginx"
        and labels(p).get("app.kubernetes.io/component", "controller") == "controller"
    ]


def ingress_controller_service(services: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The guide's lookup (§四.6.3: `kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx`), done so
    that its answer is the controller: the admission and metrics Services carry the same label, so of the
    labelled Services the controller is taken (component=controller, or the name ingress-nginx-controller), not
    whichever comes first. One lookup for every rule, signature and fix."""
    k, v = INGRESS_SVC_LABEL
    labelled = [
        s
        for s in services
        if labels(s).get(k) == v and (s.get("spec") or {}).get("clusterIP") not in (None, "", "None")
    ]

    def rank(s: dict[str, Any]) -> tuple[int, int, str]:
        name, comp = md(s).get("name", ""), labels(s).get("app.kubernetes.io/component")
        not_controller = 0 if (comp == "controller" or name == "ingress-nginx-controller") else 1
        aux = 1 if any(x in name for x in ("admission", "metrics", "webhook")) else 0
        return (aux, not_controller, ref(s))

    if not labelled:
        return None
    best = sorted(labelled, key=rank)[0]
    return None if rank(best)[0] else best


def find_ingress(services: list[dict[str, Any]], pods: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """{service, cluster_ip, host_ips}: the controller Service's ClusterIP (what nodes and CoreDNS point at,
    §七.2 / §四.6.3) and the controller pods' hostIPs (what operators' machines point at, §六.4.1)."""
    svc = ingress_controller_service(services)
    if svc is None:
        return None
    k, v = INGRESS_POD_LABEL
    host_ips = sorted(
        {
            (p.get("status") or {}).get("hostIP")
            for p in pods or []
            if labels(p).get(k) == v
            and labels(p).get("app.kubernetes.io/component", "controller") == "controller"
            and (p.get("status") or {}).get("hostIP")
        }
    )
    return {"service": ref(svc), "cluster_ip": (svc.get("spec") or {}).get("clusterIP"), "host_ips": host_ips}


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    st = pod.get("status") or {}
    return list(st.get("initContainerStatuses") or []) + list(st.get("containerStatuses") or [])


def waiting(pod: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(container, reason, message) of every waiting container."""
    out = []
    for cs in container_statuses(pod):
        w = (cs.get("state") or {}).get("waiting")
        if w:
            out.append((cs.get("name", "?"), w.get("reason", ""), w.get("message", "")))
    return out


def pod_failing(pod: dict[str, Any]) -> bool:
    """A pod that is worth reading logs of: failed, crash-looping, not ready for a while, or restarting."""
    st = pod.get("status") or {}
    if st.get("phase") in ("Failed",):
        return True
    if st.get("phase") == "Succeeded":
        return False
    for cs in container_statuses(pod):
        if cs.get("restartCount", 0) > 0 or ((cs.get("state") or {}).get("waiting") or {}).get("reason") in (
            "CrashLoopBackOff",
            "Error",
            "RunContainerError",
        ):
            return True
        term = (cs.get("state") or {}).get("terminated")
        if term and term.get("exitCode", 0) != 0:
            return True
    return st.get("phase") == "Running" and not is_true(pod, "Ready")


def node_internal_ip(node: dict[str, Any]) -> str | None:
    return next(
        (a.get("address") for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"),
        None,
    )


def is_master(node: dict[str, Any]) -> bool:
    lb = labels(node)
    return "node-role.kubernetes.io/master" in lb or "node-role.kubernetes.io/control-plane" in lb


# a StorageClass made the default by either annotation (the beta one is what older charts still set)
DEFAULT_SC_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def default_storage_class(storage_classes: list[dict[str, Any]]) -> str | None:
    """The name of the default StorageClass (`kubectl get sc` shows it as `xxx (default)`, §五.2.1), or None."""
    for sc in storage_classes:
        ann = (sc.get("metadata") or {}).get("annotations") or {}
        if any(ann.get(a) == "true" for a in DEFAULT_SC_ANNOTATIONS):
            return (sc.get("metadata") or {}).get("name")
    return None
