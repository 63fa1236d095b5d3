from bkdoctor.scan.rulekit import K8S_ROLES, NOT_IN_GUIDE, Rule, T, failed, passed, skipped, warned

RULE = Rule(
    id="docker-daemon-config",
    title=T(
        "dockerd 配置正确（daemon.json、cgroup 驱动、数据目录）",
        "dockerd is configured right (daemon.json, cgroup driver, data root)",
    ),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("docker", "k8s"),
    group="docker",
    facts=("daemon_json", "docker"),
    guide=NOT_IN_GUIDE,
    doc=T(
        "bcs.sh 写入的 /etc/docker/daemon.json 使用 systemd cgroup 驱动、数据目录 /data/bcs/lib/docker。"
        "无法解析的 daemon.json 会让 dockerd 无法启动，任何工具都不应覆盖它；cgroup 驱动与 kubelet 不一致会导致 kubelet 启动失败。",
        "bcs.sh writes /etc/docker/daemon.json with the systemd cgroup driver and data-root /data/bcs/lib/docker. "
        "A daemon.json that does not parse stops dockerd from starting and must never be overwritten by a tool; a "
        "cgroup driver that differs from kubelet's stops kubelet.",
    ),
    fix=("python -m json.tool /etc/docker/daemon.json", "docker info | grep -Ei 'cgroup driver|docker root dir'"),
)


def _cfg_driver(cfg):
    for opt in cfg.get("exec-opts") or []:
        if isinstance(opt, str) and opt.replace(" ", "").startswith("native.cgroupdriver="):
            return opt.split("=", 1)[1].strip()
    return None


def check(facts, ctx):
    dj = facts.daemon_json
    d = facts.docker
    want_driver = ctx.thresholds["docker_cgroup_driver"]
    want_root = ctx.thresholds["docker_data_root"]
    if not dj["exists"]:
        if not d["installed"]:
            return skipped(
                T(
                    "未安装 Docker，也没有 /etc/docker/daemon.json",
                    "Docker is not installed and there is no daemon.json",
                )
            )
        return warned(
            T(
                "没有 /etc/docker/daemon.json：dockerd 使用默认值（cgroupfs 驱动、/var/lib/docker）",
                "/etc/docker/daemon.json is missing: dockerd runs on defaults (cgroupfs, /var/lib/docker)",
            ),
            expected={"cgroup_driver": want_driver, "data_root": want_root},
        )
    if dj["error"]:
        return failed(
            T(
                f"/etc/docker/daemon.json 不是合法 JSON（{dj['error']}）：dockerd 重启时会失败；请手工修正，bkdoctor 不会改写它",
                f"/etc/docker/daemon.json is not valid JSON ({dj['error']}): dockerd will fail on restart; "
                "fix it by hand, bkdoctor never rewrites it",
            ),
            observed={"error": dj["error"]},
            expected="valid JSON (no comments, no trailing commas)",
            evidence={"daemon.json": (dj["text"] or "")[:4000]},
        )
    cfg = dj["config"]
    info = d.get("info") or {}
    live_driver = info.get("CgroupDriver")
    live_root = info.get("DockerRootDir")
    cfg_driver = _cfg_driver(cfg) or "cgroupfs"
    cfg_root = cfg.get("data-root") or cfg.get("graph") or "/var/lib/docker"
    observed = {
        "config": {"cgroup_driver": cfg_driver, "data_root": cfg_root},
        "live": {"cgroup_driver": live_driver, "data_root": live_root} if info else None,
    }
    expected = {"cgroup_driver": want_driver, "data_root": want_root}
    problems, warnings = [], []
    if cfg_driver != want_driver:
        problems.append(
            T(
                f"cgroup 驱动为 {cfg_driver}，应为 {want_driver}",
                f"cgroup driver is {cfg_driver}, expected {want_driver}",
            )
        )
    elif live_driver and live_driver != cfg_driver:
        warnings.append(
            T(
                f"daemon.json 设置了 {cfg_driver}，但 dockerd 仍以 {live_driver} 运行：需要重启 docker",
                f"daemon.json sets {cfg_driver} but dockerd still runs with {live_driver}: restart docker",
            )
        )
    if cfg_root.rstrip("/") != want_root.rstrip("/"):
        if not cfg_root.startswith("/data/"):
            warnings.append(
                T(
                    f"Docker 数据目录 {cfg_root} 不在 /data 下（bcs.sh 默认 {want_root}），会占满系统盘",
                    f"Docker data root {cfg_root} is not under /data (bcs.sh uses {want_root}): it fills the system disk",
                )
            )
        else:
            warnings.append(
                T(
                    f"Docker 数据目录为 {cfg_root}（bcs.sh 默认 {want_root}）：custom.yaml 的 containersLogPath 须与之一致",
                    f"Docker data root is {cfg_root} (bcs.sh uses {want_root}): containersLogPath in custom.yaml must match",
                )
            )
    if live_root and live_root.rstrip("/") != cfg_root.rstrip("/"):
        warnings.append(
            T(
                f"daemon.json 的 data-root 为 {cfg_root}，但 dockerd 正在使用 {live_root}：需要重启 docker",
                f"daemon.json sets data-root {cfg_root} but dockerd uses {live_root}: restart docker",
            )
        )
    if problems:
        msg = problems + warnings
        return failed(
            T("；".join(m.zh for m in msg), "; ".join(m.en for m in msg)), observed=observed, expected=expected
        )
    if warnings:
        return warned(
            T("；".join(m.zh for m in warnings), "; ".join(m.en for m in warnings)),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"daemon.json 合法，cgroup 驱动 {cfg_driver}，数据目录 {cfg_root}",
            f"daemon.json parses, cgroup driver {cfg_driver}, data root {cfg_root}",
        ),
        observed=observed,
        expected=expected,
    )
