from bkdoctor.scan.rulekit import (
    G_CONTAINER,
    K8S_ROLES,
    Rule,
    T,
    cite,
    errored,
    failed,
    passed,
    skipped,
    version_lt,
    warned,
)

RULE = Rule(
    id="docker-version",
    title=T("Docker ≥ 19.03", "Docker is 19.03 or newer"),
    scope="host",
    severity="high",
    roles=K8S_ROLES + ("registry-proxy",),
    tags=("docker", "k8s"),
    group="docker",
    facts=("docker",),
    guide=cite(G_CONTAINER, "| Docker | ≥19.03 |"),
    doc=T(
        "BlueKing 7.1 需要 Docker ≥ 19.03（bcs.sh 安装 19.03.9）。版本来自 Docker Engine API，失败时退回 docker 命令。",
        "BlueKing 7.1 needs Docker >= 19.03 (bcs.sh installs 19.03.9). The version comes from the Engine API, "
        "falling back to the docker CLI.",
    ),
    fix=("docker version",),
)


def check(facts, ctx):
    d = facts.docker
    want = ctx.thresholds["docker_min"]
    if not d["installed"]:
        return skipped(
            T("未安装 Docker（bcs.sh 部署 K8s 时会安装）", "Docker is not installed (bcs.sh installs it with K8s)"),
            expected=f">= {want}",
        )
    v = d["server_version"]
    note = None
    if v is None and d.get("client_version"):
        v, note = d["client_version"], d["daemon_error"]
    if v is None:
        return errored(
            T(
                f"已安装 Docker，但无法读取版本：{d['daemon_error']}",
                f"Docker is installed but its version cannot be read: {d['daemon_error']}",
            ),
            expected=f">= {want}",
        )
    observed = {"version": v, "source": d["source"] or "docker --version"}
    try:
        old = version_lt(v, want)
    except ValueError:
        return errored(T(f"无法解析 Docker 版本 {v!r}", f"cannot parse the Docker version {v!r}"), observed=observed)
    if old:
        return failed(
            T(f"Docker {v} 低于 {want}", f"Docker {v} is older than {want}"), observed=observed, expected=f">= {want}"
        )
    if note:
        return warned(
            T(
                f"Docker 客户端 {v}，但 dockerd 无法访问：{note}",
                f"Docker client {v}, but dockerd is not reachable: {note}",
            ),
            observed=observed,
            expected=f">= {want}",
        )
    return passed(T(f"Docker {v}", f"Docker {v}"), observed=observed, expected=f">= {want}")
