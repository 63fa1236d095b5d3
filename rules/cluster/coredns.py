from bkdoctor import corefile
from bkdoctor.k8s import ingress_controller_service, md
from bkdoctor.rulekit import G_COREDNS, Rule, T, failed, passed, skipped

RULE = Rule(
    id="coredns",
    title=T("CoreDNS 解析蓝鲸域名到 ingress-nginx", "CoreDNS resolves the BlueKing names to ingress-nginx"),
    scope="cluster", severity="critical", roles=(), tags=("dns", "k8s"), group="cluster",
    facts=("configmaps", "services"), needs_domain=True,
    guide=G_COREDNS,
    doc=T("kube-system/coredns 的 Corefile 中，每个 server block 都要有 hosts 块（含 fallthrough），把蓝鲸域名指向 "
          "ingress-nginx-controller 服务的 ClusterIP；还要有 reload 插件，修改才能自动生效。否则 Pod 内解析 bkrepo/bkapi 等失败。",
          "The Corefile in kube-system/coredns needs, in every server block, a hosts block (with fallthrough) that "
          "points the BlueKing names at the ClusterIP of the ingress-nginx-controller Service, and the reload "
          "plugin so that edits apply. Otherwise pods cannot resolve bkrepo, bkapi and the rest."),
    remediation="coredns",
    fix=("./scripts/control_coredns.sh update \"$IP1\" $BK_DOMAIN bkrepo.$BK_DOMAIN docker.$BK_DOMAIN ...",
         "./scripts/control_coredns.sh list"),
)


def check(facts, ctx):
    cms = facts.get("configmaps")
    cm = cms.get("kube-system/coredns")
    svc = ingress_controller_service(facts.get("services"))
    if svc is None:
        return skipped(T("还没有 ingress-nginx-controller 服务（§四.6.2 部署后再检查）",
                         "no ingress-nginx-controller Service yet (deploy it first, §四.6.2)"))
    ip = (svc.get("spec") or {}).get("clusterIP")
    th = ctx.thresholds
    names = [f"{p}.{ctx.domain}" if p else ctx.domain for p in th["coredns_names"]] + list(th["coredns_extra_names"])
    expected = {"ip": ip, "service": f"{md(svc).get('namespace')}/ingress-nginx-controller", "names": names,
                "fallthrough": True, "reload": True}
    if cm is None or "Corefile" not in (cm.get("data") or {}):
        return failed(T("没有 kube-system/coredns ConfigMap 或其中没有 Corefile", "no kube-system/coredns ConfigMap with a Corefile"),
                      expected=expected)
    text = cm["data"]["Corefile"]
    try:
        blocks = corefile.parse(text)
    except corefile.CorefileError as e:
        return failed(T(f"Corefile 无法解析：{e}", f"the Corefile does not parse: {e}"), expected=expected,
                      evidence={"Corefile": text[:4000]})
    problems, per_block = [], []
    for b in blocks:
        key = " ".join(b.keys)
        hosts = b.plugin("hosts")
        info = {"server": key, "hosts_block": hosts is not None, "reload": b.plugin("reload") is not None}
        if hosts is None:
            problems.append((f"{key}: 没有 hosts 块", f"{key}: no hosts block"))
            info.update(missing=names, wrong={})
        else:
            entries, fall = corefile.hosts_entries(text, hosts)
            have: dict[str, set] = {}
            for e in entries:
                for n in e.names:
                    have.setdefault(n, set()).add(e.ip)
            missing = [n for n in names if n.lower() not in have]
            wrong = {n: sorted(have[n.lower()]) for n in names if n.lower() in have and have[n.lower()] != {ip}}
            info.update(missing=missing, wrong=wrong, fallthrough=fall)
            if missing:
                problems.append((f"{key}: 缺少 {', '.join(missing)}", f"{key}: missing {', '.join(missing)}"))
            if wrong:
                txt = ", ".join(f"{n} -> {'/'.join(v)}" for n, v in wrong.items())
                problems.append((f"{key}: 地址错误（应为 {ip}）：{txt}", f"{key}: wrong address (expected {ip}): {txt}"))
            if not fall:
                problems.append((f"{key}: hosts 块缺少 fallthrough，其他域名会解析失败",
                                 f"{key}: the hosts block lacks fallthrough, so every other name fails to resolve"))
        if b.plugin("reload") is None:
            problems.append((f"{key}: 没有 reload 插件，修改后需重启 CoreDNS", f"{key}: no reload plugin, edits need a CoreDNS restart"))
        per_block.append(info)
    observed = {"server_blocks": per_block}
    if problems:
        return failed(T("Corefile：" + "；".join(p[0] for p in problems), "Corefile: " + "; ".join(p[1] for p in problems)),
                      observed=observed, expected=expected, evidence={"Corefile": text[:4000]})
    return passed(T(f"{len(names)} 个蓝鲸域名在 {len(blocks)} 个 server block 中均指向 {ip}",
                    f"all {len(names)} BlueKing names point at {ip} in {len(blocks)} server block(s)"),
                  observed=observed, expected=expected)
