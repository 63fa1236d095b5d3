from bkdoctor.scan.rulekit import ALL_ROLES, G_HARDWARE, Rule, T, failed, fmt_gb, gb, gb_si, passed, warned

RULE = Rule(
    id="host-resources",
    title=T("CPU、内存、磁盘满足角色要求", "CPU, memory and disk meet the role's requirements"),
    scope="host",
    severity="high",
    roles=ALL_ROLES,
    tags=("preflight", "resources"),
    group="host",
    facts=("resources",),
    guide=G_HARDWARE,
    doc=T(
        "资源低于最低要求时，基础套餐的 Pod 会因资源不足无法调度（Pending / OOMKilled）。磁盘按文档单位 GB = 10^9 字节精确比较；"
        "内存按 MemTotal，允许内核保留的约 5%。"
        "中控机 2核/2G/100G，Master 4核/8G/100G，Node 8核/32G/100G；低于推荐值给出警告。",
        "Below the minimum, the base suite's pods cannot be scheduled (Pending / OOMKilled). Minimum: control "
        "2C/2G/100G, master 4C/8G/100G, node 8C/32G/100G; below the recommended size is a warning. Disk in the "
        "guide's unit (GB = 10^9 bytes), exactly; memory from MemTotal, allowing the ~5% the kernel keeps.",
    ),
    fix=("nproc", "free -g", "df -h / /data"),
)


def _need(ctx, level):
    """The strictest requirement over the host's roles (a control machine that is also a master needs a master's)."""
    res = ctx.thresholds["resources"]
    need = {"cpu": 0, "mem_gb": 0, "disk_gb": 0}
    for role in ctx.roles:
        if role in res:
            for k in need:
                need[k] = max(need[k], res[role][level][k])
    return need


def check(facts, ctx):
    r = facts.resources
    tol = ctx.thresholds["size_tolerance"]
    # disk in the guide's unit, GB = 10^9 bytes, compared exactly; memory from MemTotal (GiB), which the kernel keeps
    # ~2-4% of on every machine, so it is compared against the nominal size times size_tolerance (0.95)
    disk = gb_si(r["disk_kb"])
    have = {"cpu": r["cpus"], "mem_gb": gb(r["mem_kb"]), "disk_gb": float(fmt_gb(disk)) if disk is not None else None}
    mins, recs = _need(ctx, "min"), _need(ctx, "rec")
    observed = dict(have)
    expected = {"min": mins, "recommended": recs, "roles": list(ctx.roles)}
    # §二.2.1 gives the registry proxy's disk (≥100GB), bandwidth and Docker version, not its CPU or memory
    proxy_only = set(ctx.roles) <= {"registry-proxy"}
    if proxy_only:
        expected["note"] = "registry-proxy CPU/memory: not in the guide (§二.2.1 gives disk >= 100 GB only)"
    nig = T("（registry-proxy 的 CPU/内存要求不在文档中）", " (registry-proxy CPU/memory: not in the guide)")

    def short(need):
        out = []
        if have["cpu"] < need["cpu"]:
            out.append(("CPU", f"{have['cpu']}", f"{need['cpu']}"))
        if have["mem_gb"] < need["mem_gb"] * tol:
            out.append(("memory", f"{have['mem_gb']} GB", f"{need['mem_gb']} GB"))
        if disk is None or disk < need["disk_gb"]:
            out.append(("disk", f"{have['disk_gb']} GB", f"{need['disk_gb']} GB"))
        return out

    below_min = short(mins)
    if below_min:
        txt = "; ".join(f"{k} {h} < {n}" for k, h, n in below_min)
        extra = nig if proxy_only and any(k != "disk" for k, _, _ in below_min) else T("", "")
        return failed(
            T(
                f"低于{'/'.join(ctx.roles)}的最低配置：{txt}{extra.zh}",
                f"below the minimum for {'/'.join(ctx.roles)}: {txt}{extra.en}",
            ),
            observed=observed,
            expected=expected,
        )
    below_rec = short(recs)
    if below_rec:
        txt = "; ".join(f"{k} {h} < {n}" for k, h, n in below_rec)
        extra = nig if proxy_only and any(k != "disk" for k, _, _ in below_rec) else T("", "")
        return warned(
            T(
                f"满足最低配置，但低于推荐配置：{txt}{extra.zh}",
                f"meets the minimum but not the recommended size: {txt}{extra.en}",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"{have['cpu']} 核 / {have['mem_gb']} GB / {have['disk_gb']} GB，满足推荐配置",
            f"{have['cpu']} CPU / {have['mem_gb']} GB / {have['disk_gb']} GB meets the recommended size",
        ),
        observed=observed,
        expected=expected,
    )
