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


def ingress_controller_service(services: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Service named `ingress-nginx-controller` (not items[0] of the label query: the admission and
    metrics services carry the same labels)."""
    named = [s for s in services if md(s).get("name") == "ingress-nginx-controller"]
    return sorted(named, key=lambda s: md(s).get("namespace") != "blueking")[0] if named else None


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
                "CrashLoopBackOff", "Error", "RunContainerError"):
            return True
        term = (cs.get("state") or {}).get("terminated")
        if term and term.get("exitCode", 0) != 0:
            return True
    return st.get("phase") == "Running" and not is_true(pod, "Ready")


def node_internal_ip(node: dict[str, Any]) -> str | None:
    return next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP"), None)


def is_master(node: dict[str, Any]) -> bool:
    lb = labels(node)
    return "node-role.kubernetes.io/master" in lb or "node-role.kubernetes.io/control-plane" in lb
