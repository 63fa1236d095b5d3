from bkdoctor.scan.rulekit import G_LOG_DIR, K8S_ROLES, Rule, T, collect, errored, failed, majority, passed, skipped

RULE = Rule(
    id="fleet-docker-root",
    title=T("所有节点的 Docker Root Dir 一致", "One Docker Root Dir on every node"),
    scope="fleet",
    severity="high",
    roles=K8S_ROLES,
    tags=("docker", "fleet", "logs"),
    group="fleet",
    facts=("docker", "daemon_json"),
    guide=G_LOG_DIR,
    doc=T(
        "custom.yaml 的 apps.bkappFilebeat.containersLogPath 只能填一个值（<Docker Root Dir>/containers），"
        "Docker 数据目录不一致的节点上 SaaS 日志采集不到。",
        "apps.bkappFilebeat.containersLogPath in custom.yaml takes one value (<Docker Root Dir>/containers): on "
        "nodes with another Docker root, SaaS logs are not collected.",
    ),
    fix=("docker info --format '{{.DockerRootDir}}'",),
)


def _root(d, dj):
    if d.get("info") and d["info"].get("DockerRootDir"):
        return d["info"]["DockerRootDir"].rstrip("/")
    cfg = dj.get("config") or {}
    if dj.get("exists") and cfg:
        return (cfg.get("data-root") or cfg.get("graph") or "/var/lib/docker").rstrip("/")
    return None


def check(fleet, ctx):
    dockers, errors = collect(fleet, "docker")
    djs, dj_errors = collect(fleet, "daemon_json")
    out = {n: errored(e.reason) for n, e in {**dj_errors, **errors}.items()}
    roots = {}
    for name, d in dockers.items():
        if name in out:
            continue
        if not d["installed"]:
            out[name] = skipped(T("未安装 Docker", "Docker is not installed"))
            continue
        r = _root(d, djs.get(name) or {})
        if r is None:
            out[name] = errored(T("无法确定 Docker Root Dir", "cannot tell the Docker Root Dir"))
        else:
            roots[name] = r
    common, count = majority(roots.values())
    for name, r in roots.items():
        observed = {"docker_root_dir": r, "fleet": dict(sorted(roots.items()))}
        if r == common:
            out[name] = passed(
                T(
                    f"Docker Root Dir 为 {r}（{count}/{len(roots)} 台一致）",
                    f"Docker Root Dir {r} ({count} of {len(roots)} nodes agree)",
                ),
                observed=observed,
                expected=common,
            )
        else:
            out[name] = failed(
                T(
                    f"Docker Root Dir 为 {r}，而多数节点为 {common}：containersLogPath 只能有一个值",
                    f"Docker Root Dir is {r} while most nodes use {common}: containersLogPath takes one value",
                ),
                observed=observed,
                expected=common,
            )
    return out
