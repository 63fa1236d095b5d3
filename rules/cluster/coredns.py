import re

from bkdoctor.facts import corefile
from bkdoctor.facts.k8s import ref
from bkdoctor.scan.rulekit import (
    G_COREDNS,
    Rule,
    T,
    cite,
    configmap,
    coredns_expected,
    errored,
    failed,
    passed,
    warned,
)

RULE = Rule(
    id="coredns",
    title=T("CoreDNS 解析蓝鲸域名到 ingress-nginx", "CoreDNS resolves the BlueKing names to ingress-nginx"),
    scope="cluster",
    severity="critical",
    roles=(),
    tags=("dns", "k8s"),
    group="cluster",
    facts=("configmaps", "services"),
    needs_domain=True,
    guide=cite(
        G_COREDNS,
        G_COREDNS.quote,
        (
            "十一.4",
            './scripts/control_coredns.sh update "$IP1" bcs.$BK_DOMAIN bcs-api.$BK_DOMAIN docker.$BK_DOMAIN helm.$BK_DOMAIN',
        ),
    ),
    doc=T(
        "kube-system/coredns 的 Corefile 中，每个负责蓝鲸域名的 server block 都要有 hosts 块（含 fallthrough），把蓝鲸域名指向 "
        "ingress-nginx 控制器服务的 ClusterIP（文档的查询：-l app.kubernetes.io/instance=ingress-nginx）；部署容器管理（BCS）时还有 "
        "bcs.、bcs-api.、helm.（§十一.4；清单 suites 含 bcs 或 bcs-system 命名空间有服务）；还要有 reload 插件，修改才能自动生效。与蓝鲸域名无关的 zone 不要求。"
        "找不到 ingress 服务时无法检查（error）。否则 Pod 内解析 bkrepo/bkapi 等失败。"
        "文档的命令只写出 $BK_DOMAIN、bkrepo.、docker.（其余为“...”，示例输出另有 apps.）：其余域名（bkapi.、bkpaas.、bkiam-api.、"
        "bkiam.、bknodeman.、job.、jobapi.，来自 domain.md）、fallthrough 与 reload 的要求都不在文档中。",
        "The Corefile in kube-system/coredns needs, in every server block that serves the BlueKing names, a hosts "
        "block (with fallthrough) pointing them at the ClusterIP of the ingress-nginx controller Service (the guide's "
        "lookup: -l app.kubernetes.io/instance=ingress-nginx); with container management (BCS: suites has bcs, or a "
        "Service in bcs-system) also bcs., bcs-api. and helm. (§十一.4); and the reload plugin so that edits apply. Server blocks of unrelated zones are not "
        "judged. Without an ingress Service there is nothing to check against (error). Otherwise pods cannot "
        "resolve bkrepo, bkapi and the rest. The guide's command spells out $BK_DOMAIN, bkrepo. and docker. only (the "
        "rest is '...'; its sample output adds apps.): the other names (bkapi., bkpaas., bkiam-api., bkiam., "
        "bknodeman., job., jobapi., from domain.md) and the fallthrough and reload requirements are not in the guide.",
    ),
    fix=(
        './scripts/control_coredns.sh update "$IP1" $BK_DOMAIN bkrepo.$BK_DOMAIN docker.$BK_DOMAIN ...',
        "./scripts/control_coredns.sh list",
    ),
)


def _zone(key):
    """'.:53' -> '.', 'dns://bkce7.bktencent.com:53' -> 'bkce7.bktencent.com'."""
    k = re.sub(r"^[a-z]+://", "", key.strip().lower())
    k = re.sub(r":\d+$", "", k)
    return k.rstrip(".") or "."


def _serves(keys, names):
    zones = [_zone(k) for k in keys]
    return any(z == "." or n.lower() == z or n.lower().endswith("." + z) for z in zones for n in names)


def check(facts, ctx):
    cm = configmap(facts, "coredns", namespace="kube-system")
    svc, names = coredns_expected(facts, ctx)
    if svc is None:
        return errored(
            T(
                "找不到 ingress-nginx 控制器服务（kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx 为空）："
                "无法确定 CoreDNS 应指向的地址；先部署 ingress-nginx（§四.6.2）",
                "no ingress-nginx controller Service (kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx "
                "finds none): nothing to check CoreDNS against; deploy ingress-nginx first (§四.6.2)",
            )
        )
    ip = (svc.get("spec") or {}).get("clusterIP")
    expected = {"ip": ip, "service": ref(svc), "names": names, "fallthrough": True, "reload": True}
    if cm is None or "Corefile" not in (cm.get("data") or {}):
        return failed(
            T(
                "没有 kube-system/coredns ConfigMap 或其中没有 Corefile",
                "no kube-system/coredns ConfigMap with a Corefile",
            ),
            expected=expected,
        )
    text = cm["data"]["Corefile"]
    try:
        blocks = corefile.parse(text)
    except corefile.CorefileError as e:
        return failed(
            T(f"Corefile 无法解析：{e}", f"the Corefile does not parse: {e}"),
            expected=expected,
            evidence={"Corefile": text[:4000]},
        )
    problems, per_block, notes = [], [], []
    serving = [b for b in blocks if _serves(b.keys, names)]
    for b in blocks:
        key = " ".join(b.keys)
        if b not in serving:  # a server block for another zone (consul, an intranet domain): not ours to judge
            per_block.append({"server": key, "serves_bk_names": False})
            continue
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
                problems.append(
                    (f"{key}: 地址错误（应为 {ip}）：{txt}", f"{key}: wrong address (expected {ip}): {txt}")
                )
            if not fall:
                problems.append(
                    (
                        f"{key}: hosts 块缺少 fallthrough，其他域名会解析失败",
                        f"{key}: the hosts block lacks fallthrough, so every other name fails to resolve",
                    )
                )
        if b.plugin("reload") is None:  # not in the guide (§四.6.3 does not ask for it): a warning only
            notes.append(
                (
                    f"{key}: 没有 reload 插件，修改后需重启 CoreDNS（不在文档中）",
                    f"{key}: no reload plugin, edits need a CoreDNS restart (not in the guide)",
                )
            )
        per_block.append(info)
    observed = {"server_blocks": per_block}
    if problems:
        problems += notes
        return failed(
            T("Corefile：" + "；".join(p[0] for p in problems), "Corefile: " + "; ".join(p[1] for p in problems)),
            observed=observed,
            expected=expected,
            evidence={"Corefile": text[:4000]},
        )
    if not serving:
        return failed(
            T("Corefile 中没有负责蓝鲸域名的 server block", "no Corefile server block serves the BlueKing names"),
            observed=observed,
            expected=expected,
            evidence={"Corefile": text[:4000]},
        )
    if notes:
        return warned(
            T("Corefile：" + "；".join(p[0] for p in notes), "Corefile: " + "; ".join(p[1] for p in notes)),
            observed=observed,
            expected=expected,
            evidence={"Corefile": text[:4000]},
        )
    return passed(
        T(
            f"{len(names)} 个蓝鲸域名在 {len(serving)} 个 server block 中均指向 {ip}",
            f"all {len(names)} BlueKing names point at {ip} in {len(serving)} server block(s)",
        ),
        observed=observed,
        expected=expected,
    )
