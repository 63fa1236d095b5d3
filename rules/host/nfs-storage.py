from bkdoctor.scan.rulekit import G_NODE_SPEC, K8S_ROLES, Rule, T, cite, failed, fmt_gb, gb_si, passed, skipped

RULE = Rule(
    id="nfs-storage",
    title=T("NFS 共享存储可用空间 ≥ 230GB", "NFS shared storage has >= 230 GB free"),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("preflight", "storage"),
    group="storage",
    facts=("nfs",),
    guide=cite(G_NODE_SPEC, "动态存储（如NFS）：IOPS≥300op/s，可用空间≥230GB"),
    doc=T(
        "清单设置 nfs_path（NFS 共享存储在节点上的挂载目录）时，检查它存在、可用空间 ≥ 230GB（1 GB = 10^9 字节）。"
        "IOPS ≥ 300 由 disk-iops（--measure）测量。",
        "With `nfs_path` in the inventory (where the NFS shared storage is mounted on the nodes): it exists and "
        "has >= 230 GB free (1 GB = 10^9 bytes). IOPS >= 300 is measured by disk-iops (--measure).",
    ),
    fix=("df -h <nfs_path>", "mount | grep nfs"),
)


def check(facts, ctx):
    n = facts.nfs
    need = ctx.thresholds["nfs_min_free_gb"]
    expected = f">= {need} GB (10^9 bytes) free on an NFS mount"
    if n is None or not ctx.nfs_path:
        return skipped(
            T("清单未设置 nfs_path（不使用 NFS 动态存储）", "no nfs_path in the inventory (no NFS dynamic storage)")
        )
    path = ctx.nfs_path
    if n["missing"]:
        return failed(
            T(f"NFS 目录 {path} 不存在", f"the NFS path {path} does not exist"),
            observed={"path": path},
            expected=expected,
        )
    avail = gb_si(n["avail_kb"])
    observed = {"path": path, "fstype": n["fstype"], "mount": n["mount"], "avail_gb": float(fmt_gb(avail))}
    if avail < need:
        return failed(
            T(
                f"{path} 只有 {fmt_gb(avail)} GB 可用，文档要求 ≥ {need} GB（1 GB = 10^9 字节）",
                f"{path} has {fmt_gb(avail)} GB free; the guide requires >= {need} GB (1 GB = 10^9 bytes)",
            ),
            observed=observed,
            expected=expected,
        )
    # the filesystem type is reported, not judged: a site may give the NFS share's server-side path here
    return passed(
        T(f"{path}（{n['fstype']}）可用 {fmt_gb(avail)} GB", f"{path} ({n['fstype']}) has {fmt_gb(avail)} GB free"),
        observed=observed,
        expected=expected,
    )
