from bkdoctor.scan.rulekit import (
    G_NODE_DNS,
    HOST_ROLES,
    Rule,
    T,
    failed,
    guide_hosts_names,
    hosts_names,
    ingress_targets,
    passed,
    warned,
)

RULE = Rule(
    id="hosts-file",
    title=T(
        "蓝鲸域名在本机解析到 ingress（/etc/hosts 或 DNS）",
        "The BlueKing names resolve to the ingress here (/etc/hosts or DNS)",
    ),
    scope="host",
    severity="high",
    roles=HOST_ROLES,
    tags=("dns", "network"),
    group="host",
    facts=("resolved", "hosts"),
    needs_domain=True,
    guide=G_NODE_DNS,
    doc=T(
        "按本机实际解析结果（getent hosts，/etc/hosts 或 DNS 均可，§七.2 方案A/方案B）判断：节点上 docker.$BK_DOMAIN 等域名"
        "须解析到 ingress-nginx 控制器服务的 ClusterIP（dockerd 拉 SaaS 镜像时在主机上解析）；中控机上 §六.4.1 的 20 个域名须"
        "解析到 ingress-nginx Pod 所在节点 IP（或清单 ingress_ip 指定的负载均衡/公网 IP）；所有主机还需 k8s-api.bcs.local（bcs.sh）。"
        "ingress 地址用文档的查询（-l app.kubernetes.io/instance=ingress-nginx）从集群读取。/etc/hosts 中同一域名有多个地址也是失败"
        "（CentOS 的 host.conf 为 multi on）。缺失时报 lookup docker.<域名> no such host。文档要求的域名（节点：docker.$BK_DOMAIN，"
        "§七.2；中控机：§六.4.1 的 20 个）有问题为失败；其余域名（domain.md 的 $BK_DOMAIN、bkrepo、bknodeman、apps，bcs.sh 的 "
        "k8s-api.bcs.local）不在文档中，有问题为警告。",
        "Judged by what each name resolves to on the host (getent hosts: /etc/hosts or DNS both count, §七.2 方案A/方案B): "
        "on nodes docker.$BK_DOMAIN and the other names must resolve to the ClusterIP of the ingress-nginx controller "
        "Service (dockerd resolves it on the host to pull SaaS images); on the control machine the 20 names of §六.4.1 "
        "must resolve to the ingress pod's node IP (or the LB/public IP given as ingress_ip); every host also needs "
        "k8s-api.bcs.local (bcs.sh). The ingress address comes from the cluster by the guide's lookup "
        "(-l app.kubernetes.io/instance=ingress-nginx). One name on several /etc/hosts lines fails too (CentOS has "
        "multi on in host.conf). Without them: lookup docker.<domain> no such host. A name the guide asks for (on nodes "
        "docker.$BK_DOMAIN, §七.2; on the control machine the 20 of §六.4.1) fails; the others (domain.md's "
        "$BK_DOMAIN, bkrepo, bknodeman, apps; bcs.sh's k8s-api.bcs.local) are not in the guide and warn.",
    ),
    fix=(
        "IP1=$(kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx -o jsonpath='{.items[0].spec.clusterIP}')",
        'echo "$IP1 $BK_DOMAIN bkrepo.$BK_DOMAIN docker.$BK_DOMAIN bknodeman.$BK_DOMAIN apps.$BK_DOMAIN" >> /etc/hosts',
        "getent hosts docker.$BK_DOMAIN",
    ),
)


def check(facts, ctx):
    resolved = facts.resolved
    hosts = facts.hosts
    bk_names, extra = hosts_names(ctx)
    want, source = ingress_targets(ctx)
    got = {n: resolved.get(n.lower()) for n in bk_names + extra}
    missing = [n for n, ip in got.items() if not ip]
    conflicting = {n: hosts[n.lower()] for n in bk_names + extra if len(hosts.get(n.lower(), [])) > 1}
    bk_ips = sorted({got[n] for n in bk_names if got[n]})
    observed = {"resolved": got}
    if conflicting:
        observed["etc_hosts_conflicts"] = conflicting
    expected = {
        "names": bk_names + extra,
        "ingress": want if want is not None else "one address for all",
        "ingress_source": source,
    }
    guide = guide_hosts_names(ctx)
    problems: list[tuple[T, bool]] = []  # (what, whether a name the guide itself asks for is in it)
    if missing:
        problems.append(
            (T(f"无法解析：{', '.join(missing)}", f"do not resolve: {', '.join(missing)}"), bool(guide & set(missing)))
        )
    if conflicting:
        txt = ", ".join(f"{n} -> {'/'.join(ips)}" for n, ips in conflicting.items())
        problems.append(
            (
                T(f"/etc/hosts 中同一域名有多个地址：{txt}", f"names on several /etc/hosts lines: {txt}"),
                bool(guide & set(conflicting)),
            )
        )
    if want is None and len(bk_ips) > 1:
        problems.append(
            (
                T(
                    f"蓝鲸域名解析到不同地址：{', '.join(bk_ips)}",
                    f"BlueKing names resolve to different addresses: {', '.join(bk_ips)}",
                ),
                True,
            )
        )
    if want is not None:
        wrong = {n: ip for n in bk_names if (ip := got[n]) and ip not in want}
        if wrong:
            txt = ", ".join(f"{n} -> {ip}" for n, ip in list(wrong.items())[:6]) + (" …" if len(wrong) > 6 else "")
            problems.append(
                (
                    T(
                        f"应解析到 {'/'.join(want)}（{source}），实际：{txt}",
                        f"should resolve to {'/'.join(want)} ({source}), but: {txt}",
                    ),
                    bool(guide & set(wrong)),
                )
            )
    if problems:
        in_guide = any(g for _, g in problems)
        message = T(
            "域名解析：" + "；".join(p.zh for p, _ in problems),
            "name resolution: " + "; ".join(p.en for p, _ in problems),
        )
        if in_guide:
            return failed(message, observed=observed, expected=expected)
        # only names beyond the guide (domain.md's, bcs.sh's k8s-api.bcs.local): a warning, said to be so
        return warned(
            T(
                message.zh + f"（这些域名不在文档中；文档只要求 {', '.join(sorted(guide)) or '-'}）",
                message.en + f" (names not in the guide, which asks for {', '.join(sorted(guide)) or '-'} only)",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"{len(bk_names)} 个蓝鲸域名均解析到 {'/'.join(bk_ips) or '-'}，k8s-api.bcs.local 可解析",
            f"all {len(bk_names)} BlueKing names resolve to {'/'.join(bk_ips) or '-'}; k8s-api.bcs.local resolves",
        ),
        observed=observed,
        expected=expected,
    )
