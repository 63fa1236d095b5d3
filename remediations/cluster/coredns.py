from bkdoctor.fix.edits import EditError, corefile_add_reload, corefile_has_reload, corefile_set_hosts
from bkdoctor.fix.plan import CommandChange, K8sChange, Plan, Remediation, check_domain
from bkdoctor.facts.k8s import ingress_controller_service
from bkdoctor.model import FactUnavailable, T

REMEDIATION = Remediation(id="coredns", rule="coredns", scope="cluster",
                          title=T("在 Corefile 每个 server block 的 hosts 块中写入蓝鲸域名（control_coredns.sh update 语义）",
                                  "put the BlueKing names in a hosts block of every Corefile server block (control_coredns.sh update, done right)"))


def _names(ctx, facts=None):
    from bkdoctor.scan.rulekit import coredns_names

    check_domain(ctx.domain)
    return coredns_names(ctx, facts)


def _ip(facts):
    svc = ingress_controller_service(facts.get("services"))
    if svc is None:
        raise FactUnavailable(T("找不到 ingress-nginx 控制器服务（-l app.kubernetes.io/instance=ingress-nginx），无处可指",
                                "no ingress-nginx controller Service (-l app.kubernetes.io/instance=ingress-nginx) to point at"),
                              status="skip")
    return svc["spec"]["clusterIP"]


def plan(facts, ctx):
    cm = facts.get("configmaps").get("kube-system/coredns")
    if cm is None or "Corefile" not in (cm.get("data") or {}):
        return Plan("coredns", ctx.target, "coredns", [], manual=["kubectl -n kube-system get configmap coredns -o yaml"])
    text = cm["data"]["Corefile"]
    ip = _ip(facts)
    try:
        names = _names(ctx, facts)
        new = corefile_add_reload(corefile_set_hosts(text, ip, names))
    except EditError as e:
        return Plan("coredns", ctx.target, "coredns", [], manual=[f"# {e}", "kubectl -n kube-system edit configmap coredns"])
    changes = []
    if new != text:
        changes.append(K8sChange("ConfigMap", "kube-system", "coredns", {"Corefile": text}, {"Corefile": new},
                                 resource_version=cm["metadata"].get("resourceVersion"), meta={"ip": ip, "names": names}))
        if not corefile_has_reload(text):
            # the running CoreDNS has no reload plugin: it never re-reads its Corefile, so its pods must restart
            changes.append(CommandChange("kubectl -n kube-system delete pod -l k8s-app=kube-dns",
                                         T("重启 CoreDNS（Corefile 没有 reload 插件）", "restart CoreDNS (the Corefile has no reload plugin)"),
                                         disruptive=True))
    return Plan("coredns", ctx.target, "coredns", changes)


def replan(current, change, ctx):
    """Someone changed the Corefile since the plan: apply the same edit to their version (theirs is kept)."""
    text = current.get("Corefile") or ""
    new = corefile_add_reload(corefile_set_hosts(text, change.meta["ip"], change.meta.get("names") or _names(ctx)))
    return None if new == text else {"Corefile": new}


def run_cluster_command(cluster, ch):
    """The only command this remediation has: restart CoreDNS by deleting its pods (their Deployment recreates them)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(cluster.api_client)
    try:
        pods = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
        for p in pods:
            core.delete_namespaced_pod(p.metadata.name, "kube-system")
    except ApiException as e:
        return f"HTTP {e.status}: {e.reason}"
    return None
