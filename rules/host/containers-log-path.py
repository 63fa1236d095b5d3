from bkdoctor.scan.rulekit import G_LOG_DIR, K8S_ROLES, Rule, T, errored, failed, passed, skipped

RULE = Rule(
    id="containers-log-path",
    title=T(
        "custom.yaml 的 containersLogPath 与本节点 Docker 日志目录一致",
        "containersLogPath in custom.yaml matches this node's Docker log dir",
    ),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("docker", "logs"),
    group="docker",
    facts=("docker", "daemon_json"),
    guide=G_LOG_DIR,
    doc=T(
        "§四.4.2.2：custom.yaml 中 apps.bkappFilebeat.containersLogPath 须等于每个 Node 的 Docker 日志路径"
        "（<Docker Root Dir>/containers，文档示例 /var/lib/docker/containers）；不一致的节点上 SaaS 日志采集不到。"
        "custom.yaml 与 values.yaml 都没有该项时为失败（文档要求声明）。",
        "§四.4.2.2: apps.bkappFilebeat.containersLogPath in custom.yaml must equal every node's Docker log path "
        "(<Docker Root Dir>/containers; the guide's example is /var/lib/docker/containers); on a node that differs "
        "SaaS logs are not collected. Absent from custom.yaml and values.yaml is a failure (the guide asks to declare it).",
    ),
    fix=(
        "docker info --format '{{.DockerRootDir}}'",
        "yq e '.apps.bkappFilebeat.containersLogPath' environments/default/custom.yaml",
    ),
)


def _root(d, dj):
    if d.get("info") and d["info"].get("DockerRootDir"):
        return d["info"]["DockerRootDir"].rstrip("/"), "docker info"
    cfg = dj.get("config") or {}
    if dj.get("exists") and not dj.get("error"):
        return (cfg.get("data-root") or cfg.get("graph") or "/var/lib/docker").rstrip("/"), "daemon.json"
    return None, None


def check(facts, ctx):
    site = ctx.site
    if site is None or site.data.get("custom") is None:
        err = site.errors.get("custom") if site else None
        if err:
            return errored(T(f"无法读取 custom.yaml：{err}", f"cannot read custom.yaml: {err}"))
        return skipped(
            T(
                "没有 environments/default/custom.yaml（在中控机安装目录中运行）",
                "no environments/default/custom.yaml (run on the control machine, in the install dir)",
            )
        )
    d, dj = facts.docker, facts.daemon_json
    if not d["installed"] and not dj["exists"]:
        return skipped(T("未安装 Docker", "Docker is not installed"))
    root, source = _root(d, dj)
    if root is None:
        return errored(T("无法确定 Docker Root Dir", "cannot tell the Docker Root Dir"))
    want = f"{root}/containers"
    value = site.get("custom", "apps", "bkappFilebeat", "containersLogPath")
    observed = {"containersLogPath": value, "docker_root_dir": root, "source": source}
    if not isinstance(value, str) or not value.strip():
        return failed(
            T(
                f"custom.yaml 未声明 apps.bkappFilebeat.containersLogPath（本节点应为 {want}）",
                f"custom.yaml does not declare apps.bkappFilebeat.containersLogPath (this node needs {want})",
            ),
            observed=observed,
            expected=want,
        )
    if value.strip().rstrip("/") != want:
        return failed(
            T(
                f"containersLogPath 为 {value}，但本节点 Docker 日志在 {want}：SaaS 日志采集不到",
                f"containersLogPath is {value} but this node's Docker logs are in {want}: SaaS logs go uncollected",
            ),
            observed=observed,
            expected=want,
        )
    return passed(
        T(
            f"containersLogPath {value} 与本节点 Docker 日志目录一致",
            f"containersLogPath {value} matches this node's Docker log dir",
        ),
        observed=observed,
        expected=want,
    )
