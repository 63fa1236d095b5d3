from bkdoctor.scan.rulekit import G_NETWORK, HOST_ROLES, Rule, T, cite, failed, passed, warned

RULE = Rule(
    id="bandwidth",
    title=T("公网带宽 ≥ 50 Mbps（实测下载）", "Internet bandwidth >= 50 Mbps (timed download)"),
    scope="host",
    severity="medium",
    roles=HOST_ROLES + ("registry-proxy",),
    tags=("slow", "measure", "network"),
    group="measure",
    facts=("bandwidth",),
    guide=cite(G_NETWORK, "最小公网带宽：50Mbps（建议100Mbps以上以加速镜像下载）", ("二.2.1", "| 最小带宽 | 1Gbps |")),
    doc=T(
        "在限定时间内（默认 10 秒）下载 thresholds.bandwidth_url（默认为文档中的下载站点）并计算速率："
        "≥ 50 Mbps 通过，建议 100 Mbps 以上；镜像缓存代理主机需 ≥ 1 Gbps（§二.2.1）。带宽低会导致镜像拉取超时。内网镜像站点请改 bandwidth_url。",
        "Downloads thresholds.bandwidth_url (default: the guide's download site) for a bounded time (10 s by "
        "default) and computes the rate: >= 50 Mbps passes, 100+ is recommended; the registry proxy host needs "
        ">= 1 Gbps (§二.2.1). Low bandwidth makes image pulls "
        "time out. Point bandwidth_url at your mirror on an intranet.",
    ),
    fix=("curl -o /dev/null -w '%{speed_download}\\n' --max-time 10 <URL>",),
)


def check(facts, ctx):
    b = facts.bandwidth
    th = ctx.thresholds
    mbps = b["mbps"]
    observed = {
        "mbps": round(mbps, 1),
        "bytes": int(b["bytes"]),
        "seconds": round(b["seconds"], 2),
        "url": th["bandwidth_url"],
    }
    low, rec = th["bandwidth_min_mbps"], th["bandwidth_rec_mbps"]
    expected = f">= {low} Mbps ({rec}+ recommended)"
    if "registry-proxy" in ctx.roles:  # §二.2.1: the proxy host needs 1Gbps (最小带宽 1Gbps)
        low = rec = max(low, th["bandwidth_proxy_min_mbps"])
        expected = f">= {low} Mbps (registry proxy host)"
    if mbps < low:
        return failed(
            T(f"下载速率 {mbps:.1f} Mbps，低于 {low} Mbps", f"download rate {mbps:.1f} Mbps is below {low} Mbps"),
            observed=observed,
            expected=expected,
        )
    if mbps < rec:
        return warned(
            T(f"下载速率 {mbps:.1f} Mbps，建议 ≥ {rec} Mbps", f"download rate {mbps:.1f} Mbps; {rec}+ is recommended"),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(f"下载速率 {mbps:.1f} Mbps", f"download rate {mbps:.1f} Mbps"), observed=observed, expected=expected
    )
