from bkdoctor.facts.k8s import ingress_controller_pods, ingress_controller_service, is_true, ref
from bkdoctor.scan.rulekit import G_INGRESS, Rule, T, failed, passed

RULE = Rule(
    id="ingress-nginx",
    title=T("ingress-nginx 控制器就绪", "The ingress-nginx controller is ready"),
    scope="cluster",
    severity="critical",
    roles=(),
    tags=("k8s", "network"),
    group="cluster",
    facts=("services", "pods"),
    guide=G_INGRESS,
    doc=T(
        "所有蓝鲸域名都经 ingress-nginx 访问：需要 ingress-nginx-controller 服务，以及至少一个就绪的控制器 Pod（00-ingress-nginx release）。",
        "Every BlueKing name goes through ingress-nginx: it needs the ingress-nginx-controller Service and at "
        "least one ready controller pod (the 00-ingress-nginx release).",
    ),
    fix=(
        "helmfile -f 00-ingress-nginx.yaml.gotmpl sync",
        "kubectl get pods -A -l app.kubernetes.io/name=ingress-nginx",
    ),
)


def check(facts, ctx):
    svc = ingress_controller_service(facts.get("services"))
    pods = ingress_controller_pods(facts.get("pods"))
    ready = [ref(p) for p in pods if is_true(p, "Ready")]
    observed = {
        "service": ref(svc) if svc else None,
        "cluster_ip": (svc or {}).get("spec", {}).get("clusterIP"),
        "pods": [ref(p) for p in pods],
        "ready": ready,
    }
    expected = {"service": "ingress-nginx-controller", "ready_pods": ">= 1"}
    if svc is None:
        return failed(
            T(
                "没有 ingress-nginx-controller 服务：请部署 00-ingress-nginx",
                "no ingress-nginx-controller Service: deploy 00-ingress-nginx",
            ),
            observed=observed,
            expected=expected,
        )
    if not ready:
        why = (
            T("没有控制器 Pod", "no controller pod")
            if not pods
            else T(f"{len(pods)} 个控制器 Pod 均未就绪", f"none of {len(pods)} controller pod(s) is ready")
        )
        return failed(T(f"ingress-nginx：{why.zh}", f"ingress-nginx: {why.en}"), observed=observed, expected=expected)
    return passed(
        T(
            f"服务 {ref(svc)}（{observed['cluster_ip']}），{len(ready)}/{len(pods)} 个控制器 Pod 就绪",
            f"Service {ref(svc)} ({observed['cluster_ip']}), {len(ready)}/{len(pods)} controller pod(s) ready",
        ),
        observed=observed,
        expected=expected,
    )
