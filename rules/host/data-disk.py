from bkdoctor.scan.rulekit import G_NODE_SPEC, K8S_ROLES, Rule, T, cite, failed, fmt_gb, gb_si, passed, warned

RULE = Rule(
    id="data-disk",
    title=T("/data 空间满足本地存储要求", "/data has room for local storage"),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("preflight", "resources", "storage"),
    group="host",
    facts=("data_disk",),
    guide=cite(
        G_NODE_SPEC,
        "| Master | 4核/8GB/100GB | 8核/16GB/200GB | /data目录≥100GB（本地存储场景） |",
        ("一.3.2.2", "| Node | 8核/32GB/100GB | 16核/64GB/500GB | /data目录≥90GB（本地存储场景） |"),
    ),
    doc=T(
        "本地存储（LocalPV）与 Docker 数据都在 /data 下：Master ≥ 100GB，Node ≥ 90GB（按文档单位 GB = 10^9 字节精确比较）。"
        "空间不足时 PVC 无法绑定（didn't find available persistent volumes to bind）。",
        "Local storage (LocalPV) and Docker's data live under /data: master >= 100 GB, node >= 90 GB (the guide's "
        "unit, GB = 10^9 bytes, compared exactly). Without "
        "room, PVCs stay unbound (didn't find available persistent volumes to bind).",
    ),
    fix=("df -h /data",),
)


def check(facts, ctx):
    # §一.3.2.2: "/data目录≥100GB" (master) and "≥90GB" (node), compared exactly in the guide's unit: GB = 10^9 bytes
    need = max(ctx.thresholds["data_disk_gb"].get(r, 0) for r in ctx.roles)
    d = facts.data_disk
    expected = f">= {need} GB (10^9 bytes)"
    if d is None:
        return failed(T("/data 目录不存在", "/data does not exist"), observed=None, expected=expected)
    size, avail = gb_si(d["size_kb"]), gb_si(d["avail_kb"])
    observed = {
        "mount": d["mount"],
        "device": d["device"],
        "size_gb": float(fmt_gb(size)),
        "avail_gb": float(fmt_gb(avail)),
    }
    if size < need:
        return failed(
            T(
                f"/data 所在文件系统（{d['mount']}）只有 {fmt_gb(size)} GB（1 GB = 10^9 字节），需要 ≥ {need} GB",
                f"/data is on {d['mount']} with {fmt_gb(size)} GB (1 GB = 10^9 bytes); it needs >= {need} GB",
            ),
            observed=observed,
            expected=expected,
        )
    if avail < need:
        return warned(
            T(
                f"/data 容量 {fmt_gb(size)} GB，但只剩 {fmt_gb(avail)} GB 可用（需要 ≥ {need} GB，1 GB = 10^9 字节）",
                f"/data has {fmt_gb(size)} GB but only {fmt_gb(avail)} GB free (needs >= {need} GB; 1 GB = 10^9 bytes)",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"/data 可用 {fmt_gb(avail)} GB（{d['mount']}，1 GB = 10^9 字节）",
            f"/data has {fmt_gb(avail)} GB free (on {d['mount']}; 1 GB = 10^9 bytes)",
        ),
        observed=observed,
        expected=expected,
    )
