from bkdoctor.fix.plan import K8sChange, Plan, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(id="faq-snippet-annotations", rule="faq-snippet-annotations", scope="cluster",
                          title=T('在 ingress-nginx 控制器 ConfigMap 中设置 allow-snippet-annotations: "true"',
                                  'set allow-snippet-annotations: "true" in the ingress-nginx controller ConfigMap'))
KEY = "allow-snippet-annotations"


def plan(facts, ctx):
    cms = facts.get("configmaps")
    cm = next((v for k, v in sorted(cms.items()) if k.endswith("/ingress-nginx-controller")), None)
    if cm is None:
        return Plan(REMEDIATION.rule, ctx.target, REMEDIATION.id, [], manual=[
            "kubectl get cm -A | grep ingress-nginx-controller",
            "kubectl -n <ns> patch cm ingress-nginx-controller -p '{\"data\":{\"allow-snippet-annotations\":\"true\"}}'"])
    data = cm.get("data") or {}
    if data.get(KEY) == "true":
        return Plan(REMEDIATION.rule, ctx.target, REMEDIATION.id, [])
    md = cm["metadata"]
    return Plan(REMEDIATION.rule, ctx.target, REMEDIATION.id, [K8sChange(
        "ConfigMap", md["namespace"], md["name"], {KEY: data.get(KEY)}, {KEY: "true"},
        resource_version=md.get("resourceVersion"))],
        note=T("ingress-nginx 会自动加载该 ConfigMap，无需重启", "ingress-nginx reloads this ConfigMap by itself: no restart"))


def replan(current, change, ctx):
    return None if current.get(KEY) == "true" else {KEY: "true"}


def verify(facts, ctx):
    cms = facts.get("configmaps")
    cm = next((v for k, v in sorted(cms.items()) if k.endswith("/ingress-nginx-controller")), None)
    return cm is not None and (cm.get("data") or {}).get(KEY) == "true"
