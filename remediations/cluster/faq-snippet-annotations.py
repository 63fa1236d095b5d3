from bkdoctor.fix.fixkit import configmap_named
from bkdoctor.fix.plan import Fix, K8sChange, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="faq-snippet-annotations",
    scope="cluster",
    title=T(
        '在 ingress-nginx 控制器 ConfigMap 中设置 allow-snippet-annotations: "true"',
        'set allow-snippet-annotations: "true" in the ingress-nginx controller ConfigMap',
    ),
)
KEY = "allow-snippet-annotations"


def plan(facts, ctx):
    cm = configmap_named(facts, "ingress-nginx-controller")
    if cm is None:
        return Fix(
            manual=[
                "kubectl get cm -A | grep ingress-nginx-controller",
                'kubectl -n <ns> patch cm ingress-nginx-controller -p \'{"data":{"allow-snippet-annotations":"true"}}\'',
            ]
        )
    data = cm.get("data") or {}
    if data.get(KEY) == "true":
        return Fix()
    md = cm["metadata"]
    return Fix(
        [
            K8sChange(
                "ConfigMap",
                md["namespace"],
                md["name"],
                {KEY: data.get(KEY)},
                {KEY: "true"},
                resource_version=md.get("resourceVersion"),
            )
        ],
        note=T(
            "ingress-nginx 会自动加载该 ConfigMap，无需重启",
            "ingress-nginx reloads this ConfigMap by itself: no restart",
        ),
    )


def replan(current, change, ctx):
    return None if current.get(KEY) == "true" else {KEY: "true"}


def verify(facts, ctx):
    cm = configmap_named(facts, "ingress-nginx-controller")
    return cm is not None and (cm.get("data") or {}).get(KEY) == "true"
