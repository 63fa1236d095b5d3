from bkdoctor.rulekit import G_NODE_DNS, HOST_ROLES, Rule, T, failed, passed

RULE = Rule(
    id="hosts-file",
    title=T("/etc/hosts 包含蓝鲸域名与 k8s-api.bcs.local", "/etc/hosts has the BlueKing names and k8s-api.bcs.local"),
    scope="host", severity="high", roles=HOST_ROLES, tags=("dns", "network"), group="host",
    facts=("hosts",), needs_domain=True,
    guide=G_NODE_DNS,
    doc=T("节点拉取 SaaS 镜像时在主机上解析 docker.$BK_DOMAIN；$BK_DOMAIN、bkrepo、docker、bknodeman、apps 应指向同一个"
          "ingress-nginx 地址；bcs.sh 还要求 k8s-api.bcs.local 指向第一台 Master。缺失时报 lookup docker.<域名> no such host。",
          "Nodes resolve docker.$BK_DOMAIN on the host when they pull SaaS images; $BK_DOMAIN, bkrepo, docker, "
          "bknodeman and apps must point at the same ingress-nginx address, and bcs.sh needs k8s-api.bcs.local "
          "pointing at the first master. Without them: lookup docker.<domain> no such host."),
    remediation="hosts-file",
    fix=("IP1=$(kubectl get svc -n blueking ingress-nginx-controller -o jsonpath='{.spec.clusterIP}')",
         "echo \"$IP1 $BK_DOMAIN bkrepo.$BK_DOMAIN docker.$BK_DOMAIN bknodeman.$BK_DOMAIN apps.$BK_DOMAIN\" >> /etc/hosts"),
)


def check(facts, ctx):
    hosts = facts.hosts
    th = ctx.thresholds
    bk_names = [f"{p}.{ctx.domain}" if p else ctx.domain for p in th["hosts_names"]]
    extra = list(th["hosts_extra_names"])
    missing = [n for n in bk_names + extra if n.lower() not in hosts]
    conflicting = {n: hosts[n.lower()] for n in bk_names + extra if len(hosts.get(n.lower(), [])) > 1}
    bk_ips = sorted({hosts[n.lower()][0] for n in bk_names if n.lower() in hosts})
    observed = {"names": {n: hosts.get(n.lower()) for n in bk_names + extra}}
    expected = {"names": bk_names + extra, "same_ip": True, "ingress_ip": ctx.ingress_ip}
    problems = []
    if missing:
        problems.append(T(f"缺少：{', '.join(missing)}", f"missing: {', '.join(missing)}"))
    if conflicting:
        txt = ", ".join(f"{n} -> {'/'.join(ips)}" for n, ips in conflicting.items())
        problems.append(T(f"同一域名有多个地址：{txt}", f"names with several addresses: {txt}"))
    if len(bk_ips) > 1:
        problems.append(T(f"蓝鲸域名指向不同地址：{', '.join(bk_ips)}", f"BlueKing names point at different addresses: {', '.join(bk_ips)}"))
    if ctx.ingress_ip and bk_ips and bk_ips != [ctx.ingress_ip]:
        problems.append(T(f"蓝鲸域名应指向 ingress {ctx.ingress_ip}，实际为 {', '.join(bk_ips)}",
                          f"BlueKing names should point at the ingress {ctx.ingress_ip}, not {', '.join(bk_ips)}"))
    if problems:
        return failed(T("/etc/hosts：" + "；".join(p.zh for p in problems), "/etc/hosts: " + "; ".join(p.en for p in problems)),
                      observed=observed, expected=expected)
    return passed(T(f"/etc/hosts 中蓝鲸域名均指向 {bk_ips[0] if bk_ips else '-'}，k8s-api.bcs.local 已配置",
                    f"/etc/hosts points every BlueKing name at {bk_ips[0] if bk_ips else '-'}; k8s-api.bcs.local is set"),
                  observed=observed, expected=expected)
