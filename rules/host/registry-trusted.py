from bkdoctor.scan.rulekit import (
    DOCKER_RELOAD_CMD,
    G_DOCKERD,
    K8S_ROLES,
    Rule,
    T,
    cite,
    errored,
    failed,
    insecure_registries,
    passed,
    skipped,
    warned,
)

RULE = Rule(
    id="registry-trusted",
    title=T(
        "节点信任 $REGISTRY（insecure-registries 或 CA 证书）", "Nodes trust $REGISTRY (insecure-registries or a CA)"
    ),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("registry", "docker"),
    group="registry",
    facts=("daemon_json", "docker", "registry_certs"),
    guide=cite(G_DOCKERD, G_DOCKERD.quote, ("四.5.2", "配置TLS证书或设置 `insecure-registries`")),
    doc=T(
        "使用内网镜像仓库（$REGISTRY，§四.5.2）时，每个 Node 的 dockerd 须把它列入 insecure-registries（HTTP，并已生效），"
        "或在 /etc/docker/certs.d/<REGISTRY>/ 安装 CA 证书（HTTPS，§三.4.1）。清单或 install 设置了 registry 时检查。",
        "With an intranet registry ($REGISTRY, §四.5.2), every node's dockerd lists it in insecure-registries (HTTP, "
        "live), or has a CA in /etc/docker/certs.d/<REGISTRY>/ (HTTPS, §三.4.1). Checked when the inventory or "
        "the install settings name a registry.",
    ),
    fix=(
        'jq --arg r "$REGISTRY" \'."insecure-registries" += [$r]\' /etc/docker/daemon.json  # review, then write back',
        DOCKER_RELOAD_CMD,
        "ls /etc/docker/certs.d/$REGISTRY/",
    ),
)


def check(facts, ctx):
    reg = ctx.registry
    if not reg:
        return skipped(
            T(
                "未设置 $REGISTRY（直连 hub.bktencent.com）",
                "no $REGISTRY set (pulling from hub.bktencent.com directly)",
            )
        )
    host = reg.split("/", 1)[0]
    certs = facts.registry_certs or {"files": []}
    cas = [f for f in certs["files"] if f.endswith(".crt")]
    dj = facts.daemon_json
    in_file, daemon = insecure_registries(dj, facts.docker)
    live = daemon[0] if daemon else None
    observed = {"registry": host, "ca_files": cas, "insecure_registries": in_file, "live": live}
    expected = f"{host} in insecure-registries (live), or /etc/docker/certs.d/{host}/ca.crt"
    if cas:
        return passed(
            T(f"已为 {host} 安装 CA 证书：{', '.join(cas)}", f"a CA is installed for {host}: {', '.join(cas)}"),
            observed=observed,
            expected=expected,
        )
    if dj["error"]:
        return errored(
            T(f"daemon.json 无法解析（{dj['error']}）", f"daemon.json does not parse ({dj['error']})"),
            observed=observed,
            expected=expected,
        )
    if host not in in_file:
        return failed(
            T(
                f"{host} 既不在 insecure-registries 中，也没有 /etc/docker/certs.d/{host}/ 的 CA 证书：拉取会失败",
                f"{host} is neither in insecure-registries nor has a CA in /etc/docker/certs.d/{host}/: pulls will fail",
            ),
            observed=observed,
            expected=expected,
        )
    if live is None:
        return warned(
            T(
                f"daemon.json 已包含 {host}，但无法访问 dockerd 确认已生效",
                f"daemon.json lists {host}, but dockerd cannot confirm it is live",
            ),
            observed=observed,
            expected=expected,
        )
    if host not in live:
        return failed(
            T(
                f"daemon.json 已包含 {host}，但 dockerd 尚未生效：执行 {DOCKER_RELOAD_CMD}",
                f"daemon.json lists {host} but the running dockerd does not: run {DOCKER_RELOAD_CMD}",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(f"{host} 在 insecure-registries 中并已生效", f"{host} is in insecure-registries and live"),
        observed=observed,
        expected=expected,
    )
