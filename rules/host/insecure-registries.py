from bkdoctor.scan.rulekit import (
    DOCKER_RELOAD_CMD,
    G_INSECURE,
    K8S_ROLES,
    Rule,
    T,
    errored,
    failed,
    insecure_registries,
    passed,
    skipped,
    warned,
)

RULE = Rule(
    id="insecure-registries",
    title=T(
        "dockerd 以 HTTP 访问 docker.<域名>（insecure-registries）",
        "dockerd reaches docker.<domain> over HTTP (insecure-registries)",
    ),
    scope="host",
    severity="critical",
    roles=K8S_ROLES,
    tags=("docker", "registry", "saas"),
    group="docker",
    facts=("daemon_json", "docker"),
    needs_domain=True,
    guide=G_INSECURE,
    doc=T(
        "SaaS 镜像从 docker.$BK_DOMAIN 以 HTTP 拉取，每个 Node 的 daemon.json 都要在 insecure-registries 中包含它，"
        "并且已 reload 生效（docker info 的 Insecure Registries）。缺失时拉取报 x509: certificate is valid for ingress.local。",
        "SaaS images are pulled from docker.$BK_DOMAIN over HTTP: every node's daemon.json must list it in "
        "insecure-registries, and the daemon must have reloaded it (docker info, Insecure Registries). Without it "
        "pulls fail with x509: certificate is valid for ingress.local.",
    ),
    fix=(
        'jq \'."insecure-registries" += ["docker.$BK_DOMAIN"]\' /etc/docker/daemon.json  # review, then write back',
        DOCKER_RELOAD_CMD,
        "docker info | grep -A3 'Insecure Registries'",
    ),
)


def check(facts, ctx):
    want = f"docker.{ctx.domain}"
    dj = facts.daemon_json
    d = facts.docker
    if not dj["exists"] and not d["installed"]:
        return skipped(T("未安装 Docker", "Docker is not installed"), expected=want)
    if dj["error"]:
        return errored(
            T(
                f"daemon.json 无法解析（{dj['error']}），无法检查 insecure-registries",
                f"daemon.json does not parse ({dj['error']}): cannot check insecure-registries",
            ),
            expected=want,
        )
    in_file, daemon = insecure_registries(dj, d)
    live = daemon[0] + daemon[1] if daemon else None
    observed = {"daemon.json": in_file, "live": live}
    if want not in in_file:
        return failed(
            T(
                f"daemon.json 的 insecure-registries 中没有 {want}，拉取 SaaS 镜像会失败",
                f"{want} is missing from insecure-registries in daemon.json: SaaS image pulls will fail",
            ),
            observed=observed,
            expected=want,
        )
    if live is None:
        return warned(
            T(
                f"daemon.json 已包含 {want}，但无法访问 dockerd 确认已生效：{d.get('daemon_error')}",
                f"daemon.json lists {want}, but dockerd cannot be asked whether it is live: {d.get('daemon_error')}",
            ),
            observed=observed,
            expected=want,
        )
    if want not in live:
        return failed(
            T(
                f"daemon.json 已包含 {want}，但 dockerd 尚未生效：执行 {DOCKER_RELOAD_CMD}",
                f"daemon.json lists {want} but the running dockerd does not: run {DOCKER_RELOAD_CMD}",
            ),
            observed=observed,
            expected=want,
        )
    return passed(
        T(f"{want} 已在 insecure-registries 中并已生效", f"{want} is in insecure-registries and live"),
        observed=observed,
        expected=want,
    )
