from bkdoctor.fix.edits import EditError, corefile_add_reload, corefile_has_reload, corefile_set_hosts
from bkdoctor.fix.fixkit import check_domain, configmap_named
from bkdoctor.fix.plan import CommandChange, Fix, K8sChange, Remediation
from bkdoctor.model import FactUnavailable, T

REMEDIATION = Remediation(
    id="coredns",
    scope="cluster",
    disruptive=True,
    title=T(
        "在 Corefile 每个 server block 的 hosts 块中写入蓝鲸域名（control_coredns.sh update 语义）",
        "put the BlueKing names in a hosts block of every Corefile server block (control_coredns.sh update, done right)",
    ),
)


def _expected(facts, ctx):
    """(the ingress ClusterIP, the names): what the coredns rule checks (rulekit.coredns_expected)."""
    from bkdoctor.scan.rulekit import coredns_expected

    svc, names = coredns_expected(facts, ctx)
    if svc is None:
        raise FactUnavailable(
            T(
                "找不到 ingress-nginx 控制器服务（-l app.kubernetes.io/instance=ingress-nginx），无处可指",
                "no ingress-nginx controller Service (-l app.kubernetes.io/instance=ingress-nginx) to point at",
            ),
            status="skip",
        )
    check_domain(ctx.domain)
    return svc["spec"]["clusterIP"], names


def plan(facts, ctx):
    cm = configmap_named(facts, "coredns", namespace="kube-system")
    if cm is None or "Corefile" not in (cm.get("data") or {}):
        return Fix(manual=["kubectl -n kube-system get configmap coredns -o yaml"])
    text = cm["data"]["Corefile"]
    ip, names = _expected(facts, ctx)
    try:
        new = corefile_add_reload(corefile_set_hosts(text, ip, names))
    except EditError as e:
        return Fix(manual=[f"# {e}", "kubectl -n kube-system edit configmap coredns"], refused=True)
    changes = []
    if new != text:
        changes.append(
            K8sChange(
                "ConfigMap",
                "kube-system",
                "coredns",
                {"Corefile": text},
                {"Corefile": new},
                resource_version=cm["metadata"].get("resourceVersion"),
                meta={"ip": ip, "names": names},
            )
        )
        if not corefile_has_reload(text):
            # the running CoreDNS has no reload plugin: it never re-reads its Corefile, so its pods must restart
            changes.append(
                CommandChange(
                    "kubectl -n kube-system delete pod -l k8s-app=kube-dns",
                    T(
                        "重启 CoreDNS（Corefile 没有 reload 插件）",
                        "restart CoreDNS (the Corefile has no reload plugin)",
                    ),
                    disruptive=True,
                )
            )
    return Fix(changes)


def replan(current, change, ctx):
    """Someone changed the Corefile since the plan: apply the same edit to their version (theirs is kept)."""
    text = current.get("Corefile") or ""
    new = corefile_add_reload(corefile_set_hosts(text, change.meta["ip"], change.meta["names"]))
    return None if new == text else {"Corefile": new}


def run_command(cluster, ch):
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
