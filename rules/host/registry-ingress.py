from bkdoctor.scan.rulekit import G_REGISTRY_VERIFY, K8S_ROLES, Rule, T, failed, passed, skipped

RULE = Rule(
    id="registry-ingress",
    title=T(
        "节点经 ingress 访问 docker.<域名>/v2/ 返回 401",
        "docker.<domain>/v2/ answers 401 from the node (through the ingress)",
    ),
    scope="host",
    severity="critical",
    roles=K8S_ROLES,
    tags=("registry", "network", "saas"),
    group="registry",
    facts=("registry_ingress",),
    needs_domain=True,
    guide=G_REGISTRY_VERIFY,
    doc=T(
        "§七.3：在所有 Node 上 curl -v docker.$BK_DOMAIN/v2/，应成功解析并建立连接，返回认证提示（401 Unauthorized）。"
        "解析失败查 /etc/hosts 或 DNS；无应答查 ingress-nginx；其他状态码说明该地址不是蓝鲸制品库。",
        "§七.3: on every node curl -v docker.$BK_DOMAIN/v2/ must resolve, connect and answer with an authentication "
        "prompt (401 Unauthorized). A name that does not resolve points at /etc/hosts or DNS; no answer at "
        "ingress-nginx; any other status means that address is not BlueKing's registry.",
    ),
    fix=("curl -v docker.$BK_DOMAIN/v2/", "kubectl get svc -n blueking ingress-nginx"),
)

CURL_DNS = 6


def check(facts, ctx):
    r = facts.registry_ingress
    url = f"http://docker.{ctx.domain}/v2/"
    if r is None:
        return skipped(T("未知 BK_DOMAIN", "BK_DOMAIN unknown"))
    observed = {"url": url, "http_code": r["code"], "remote_ip": r["remote_ip"], "curl_exit": r["curl_exit"]}
    expected = "HTTP 401 (authentication required)"
    if r["code"] == 401:
        return passed(
            T(f"{url} 返回 401（经 {r['remote_ip']}）", f"{url} answers 401 (via {r['remote_ip']})"),
            observed=observed,
            expected=expected,
        )
    if r["curl_exit"] == CURL_DNS:
        why = T(
            "无法解析域名：检查 /etc/hosts 或 DNS 记录（§七.2）",
            "the name does not resolve: check /etc/hosts or the DNS record (§七.2)",
        )
    elif r["code"] == 0:
        why = T(
            f"没有应答（curl 退出码 {r['curl_exit']}）：检查 ingress-nginx 服务",
            f"no answer (curl exit {r['curl_exit']}): check the ingress-nginx Service",
        )
    else:
        why = T(
            f"返回 HTTP {r['code']}，不是 401：该地址不是蓝鲸制品库的 Docker Registry",
            f"HTTP {r['code']}, not 401: that address is not BlueKing's Docker registry",
        )
    return failed(T(f"{url}：{why.zh}", f"{url}: {why.en}"), observed=observed, expected=expected)
