from bkdoctor.scan.rulekit import ALL_ROLES, G_NETWORK, Rule, T, cite, failed, passed, skipped

RULE = Rule(
    id="endpoint-access",
    title=T("能访问部署所需的外部站点", "The endpoints the deployment needs are reachable"),
    scope="host",
    severity="high",
    roles=ALL_ROLES,
    tags=("slow", "measure", "network"),
    group="measure",
    facts=("endpoints",),
    guide=cite(G_NETWORK, "蓝鲸静态文件分发站点：`https://bkopen-1252002024.file.myqcloud.com`"),
    doc=T(
        "中控机需访问 bkopen-1252002024.file.myqcloud.com 与 hub.bktencent.com，K8s 节点需访问 docker.io 与 hub.bktencent.com。"
        "任何 HTTP 应答都算可达；使用内网镜像的站点请在 thresholds.endpoints 中按角色改为自己的地址。文档写的是 https://docker.io；"
        "检查的是 dockerd 实际拉取镜像的 registry-1.docker.io/v2/（这一替换不在文档中）。",
        "The control machine needs bkopen-1252002024.file.myqcloud.com and hub.bktencent.com; K8s nodes need "
        "docker.io and hub.bktencent.com. Any HTTP answer counts as reachable; sites with internal mirrors set "
        "their own per role in thresholds.endpoints. The guide names https://docker.io; what is checked is "
        "registry-1.docker.io/v2/, where dockerd pulls from (that substitution is not in the guide).",
    ),
    fix=("curl -sS -o /dev/null -w '%{http_code}\\n' --connect-timeout 5 <URL>",),
)


def check(facts, ctx):
    eps = facts.endpoints
    if not eps:
        return skipped(T("该角色没有配置需要检查的地址", "no endpoints are configured for this host's roles"))
    bad = [e for e in eps if not e["ok"]]
    observed = {
        e["url"]: (e["http_code"] if e["ok"] else f"curl exit {e['curl_exit']}: {e['detail']}".strip()) for e in eps
    }
    if bad:
        txt = ", ".join(f"{e['url']} (curl exit {e['curl_exit']})" for e in bad)
        return failed(
            T(f"无法访问：{txt}", f"unreachable: {txt}"), observed=observed, expected="an HTTP answer from each"
        )
    return passed(
        T(f"{len(eps)} 个地址均可访问", f"all {len(eps)} endpoints answer"),
        observed=observed,
        expected="an HTTP answer from each",
    )
