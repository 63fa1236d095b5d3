from bkdoctor.scan import rulekit
from bkdoctor.scan.rulekit import G_REGISTRY_MIRRORS, Rule, T, errored, failed, mirror_key, passed, skipped, warned

DOCKER_RELOAD_CMD = rulekit.DOCKER_RELOAD_CMD

RULE = Rule(
    id="registry-mirrors",
    title=T("节点的 registry-mirrors 指向镜像缓存代理", "Nodes use the registry proxy as a mirror"),
    scope="host",
    severity="medium",
    roles=("node",),  # §二.4.2: 在K8s集群的各Node节点上配置Docker Daemon (a master that is also a node is a Node)
    tags=("registry", "docker"),
    group="registry",
    facts=("daemon_json", "docker"),
    guide=G_REGISTRY_MIRRORS,
    doc=T(
        "清单中有 registry-proxy 角色的主机时，每个节点的 daemon.json 都应在 registry-mirrors 中列出 http://<代理IP>:5500，"
        "并且 dockerd 已生效（docker info 的 Registry Mirrors）。否则节点仍直接从公网拉取镜像。",
        "When the inventory has a registry-proxy host, every node's daemon.json should list http://<proxy IP>:5500 "
        "in registry-mirrors, live in dockerd (docker info, Registry Mirrors). Otherwise nodes still pull from "
        "the internet.",
    ),
    fix=(
        'jq \'."registry-mirrors" = ["http://<proxy IP>:5500"]\' /etc/docker/daemon.json  # review, then write back',
        DOCKER_RELOAD_CMD,
    ),
)


def check(facts, ctx):
    if not ctx.registry_proxies:
        return skipped(T("清单中没有 registry-proxy 主机", "no registry-proxy host in the inventory"))
    want = {mirror_key(u) for u in ctx.registry_proxies}
    dj = facts.daemon_json
    d = facts.docker
    if not dj["exists"] and not d["installed"]:
        return skipped(T("未安装 Docker", "Docker is not installed"))
    if dj["error"]:
        return errored(T(f"daemon.json 无法解析（{dj['error']}）", f"daemon.json does not parse ({dj['error']})"))
    in_file = [m for m in ((dj["config"] or {}).get("registry-mirrors") or []) if isinstance(m, str)]
    live = None
    if d.get("info"):
        live = list((d["info"].get("RegistryConfig") or {}).get("Mirrors") or [])
    observed = {"daemon.json": in_file, "live": live}
    expected = sorted(ctx.registry_proxies)
    if not want & {mirror_key(m) for m in in_file}:
        return failed(
            T(
                f"daemon.json 的 registry-mirrors 中没有代理 {', '.join(expected)}",
                f"registry-mirrors in daemon.json lacks the proxy {', '.join(expected)}",
            ),
            observed=observed,
            expected=expected,
        )
    if live is None:
        return warned(
            T(
                "daemon.json 已配置代理，但无法访问 dockerd 确认已生效",
                "daemon.json lists the proxy, but dockerd cannot confirm it is live",
            ),
            observed=observed,
            expected=expected,
        )
    if not want & {mirror_key(m) for m in live}:
        return failed(
            T(
                f"daemon.json 已配置代理，但 dockerd 尚未生效：执行 {DOCKER_RELOAD_CMD}",
                f"daemon.json lists the proxy but the running dockerd does not: run {DOCKER_RELOAD_CMD}",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T("registry-mirrors 已指向代理并已生效", "registry-mirrors points at the proxy, live"),
        observed=observed,
        expected=expected,
    )
