from bkdoctor.scan.rulekit import G_STORAGE, K8S_ROLES, Rule, T, cite, failed, fmt_gb, gb_si, passed, skipped

RULE = Rule(
    id="localpv-dirs",
    title=T("LocalPV 目录 vol01..vol20 已创建并挂载", "LocalPV dirs vol01..vol20 exist and are mounted"),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("storage", "k8s"),
    group="storage",
    facts=("localpv", "localpv_space", "fstab", "mounts"),
    guide=cite(
        G_STORAGE,
        "确保所有Node节点为LocalPV源目录预留≥100GB可用空间",
        ("五.2.3", 'echo "$vol_src $vol_dir none defaults,bind 0 0" | tee -a /etc/fstab'),
        ("五.5", "hostDir: /data/custom_pv/  # 自定义PV目录"),
    ),
    doc=T(
        "00-localpv 为 PV 目录（custom.yaml 的 localpv.hostDir，默认 /mnt/blueking）下每个 volNN 创建一个 PV，源目录为 "
        "/data/bcs/localpv/volNN，通过 fstab 的 bind 行挂载；源目录所在文件系统需 ≥ 100GB 可用（§五.2.2，1 GB = 10^9 字节）。"
        "缺目录或未挂载时 PV 不可用，PVC 一直 Pending。读到集群且已有非 local-storage 的默认存储类时跳过（§五.2.1：可跳过本章节）。",
        "00-localpv makes one PV per volNN under the PV dir (localpv.hostDir in custom.yaml, /mnt/blueking by "
        "default), bind-mounted from /data/bcs/localpv/volNN through fstab lines; the source needs >= 100 GB free "
        "(§五.2.2, 1 GB = 10^9 bytes). A missing dir or mount leaves PVs unusable and PVCs Pending. Skipped where the "
        "cluster, when read, has a default StorageClass other than local-storage (§五.2.1: 可跳过本章节).",
    ),
    fix=(
        "for i in $(seq -w 1 20); do mkdir -p /mnt/blueking/vol$i /data/bcs/localpv/vol$i; "
        'grep -qw /mnt/blueking/vol$i /etc/fstab || echo "/data/bcs/localpv/vol$i /mnt/blueking/vol$i none defaults,bind 0 0" >> /etc/fstab; done',
        "mount -va",
    ),
)


# 00-localpv's own StorageClass: when it is the default, the LocalPV dirs are what it serves
LOCALPV_CLASS = "local-storage"


def check(facts, ctx):
    sc = getattr(ctx, "default_storage_class", None)
    if getattr(ctx, "storage_classes_read", False) and sc not in (None, LOCALPV_CLASS):
        # §五.2.1: 若存在`xxx (default)`：已配置默认存储类，可跳过本章节
        return skipped(
            T(
                f"集群已有默认存储类 {sc}：按文档（§五.2.1）跳过 LocalPV",
                f"the cluster has a default StorageClass {sc}: LocalPV is skipped, as §五.2.1 says",
            ),
            observed={"default_storage_class": sc},
        )
    th = ctx.thresholds
    n = th["localpv_count"]
    dst_dir, src_dir = th["localpv_mount_dir"].rstrip("/"), th["localpv_source_dir"].rstrip("/")
    dirs = facts.localpv
    fstab = {e["target"].rstrip("/"): e for e in facts.fstab}
    mounted = {m["mount_point"].rstrip("/") for m in facts.mounts}
    missing_dir, missing_src, missing_fstab, not_mounted = [], [], [], []
    for i in range(1, n + 1):
        vol = f"vol{i:02d}"
        dst, src = f"{dst_dir}/{vol}", f"{src_dir}/{vol}"
        if dst not in dirs:
            missing_dir.append(vol)
        if src not in dirs:
            missing_src.append(vol)
        e = fstab.get(dst)
        if e is None or "bind" not in e["options"].split(","):
            missing_fstab.append(vol)
        if dst not in mounted:
            not_mounted.append(vol)
    space = facts.localpv_space
    need = th["localpv_source_min_gb"]
    avail = gb_si(space["avail_kb"]) if space else None
    observed = {
        "missing_dirs": missing_dir,
        "missing_sources": missing_src,
        "missing_fstab": missing_fstab,
        "not_mounted": not_mounted,
        "source_free_gb": float(fmt_gb(avail)) if avail is not None else None,
    }
    expected = (
        f"{dst_dir}/vol01..vol{n:02d} bind-mounted from {src_dir}/volNN via /etc/fstab; "
        f">= {need} GB (10^9 bytes) free for {src_dir}"
    )

    def rng(v):
        return v[0] if len(v) == 1 else f"{v[0]}..{v[-1]} ({len(v)})"

    parts = []
    for label_zh, label_en, v in (
        ("缺少目录", "missing dirs", missing_dir),
        ("缺少源目录", "missing sources", missing_src),
        ("fstab 缺少 bind 行", "no fstab bind line", missing_fstab),
        ("未挂载", "not mounted", not_mounted),
    ):
        if v:
            parts.append((f"{label_zh} {rng(v)}", f"{label_en} {rng(v)}"))
    if avail is not None and avail < need:  # §五.2.2: 为LocalPV源目录预留≥100GB可用空间
        parts.append(
            (
                f"{src_dir} 只有 {fmt_gb(avail)} GB 可用，需要 ≥ {need} GB（1 GB = 10^9 字节）",
                f"{src_dir} has {fmt_gb(avail)} GB free, it needs >= {need} GB (1 GB = 10^9 bytes)",
            )
        )
    if parts:
        return failed(
            T("LocalPV：" + "；".join(p[0] for p in parts), "LocalPV: " + "; ".join(p[1] for p in parts)),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"{dst_dir} 下 {n} 个 LocalPV 目录均已创建、写入 fstab 并挂载；源目录可用 {fmt_gb(avail)} GB",
            f"all {n} LocalPV dirs under {dst_dir} exist, are in fstab and mounted; {fmt_gb(avail)} GB free for the sources",
        ),
        observed=observed,
        expected=expected,
    )
