from bkdoctor.rulekit import G_LOCALPV, K8S_ROLES, Rule, T, failed, passed

RULE = Rule(
    id="localpv-dirs",
    title=T("LocalPV 目录 vol01..vol20 已创建并挂载", "LocalPV dirs vol01..vol20 exist and are mounted"),
    scope="host", severity="high", roles=K8S_ROLES, tags=("storage", "k8s"), group="storage",
    facts=("localpv", "fstab", "mounts"),
    guide=G_LOCALPV,
    doc=T("00-localpv 为每个 /mnt/blueking/volNN 创建一个 PV，源目录为 /data/bcs/localpv/volNN，通过 fstab 的 bind 行挂载。"
          "缺目录或未挂载时 PV 不可用，PVC 一直 Pending。",
          "00-localpv makes one PV per /mnt/blueking/volNN, bind-mounted from /data/bcs/localpv/volNN through fstab "
          "lines. A missing dir or mount leaves PVs unusable and PVCs Pending."),
    remediation="localpv-dirs",
    fix=("for i in $(seq -w 1 20); do mkdir -p /mnt/blueking/vol$i /data/bcs/localpv/vol$i; "
         "grep -qw /mnt/blueking/vol$i /etc/fstab || echo \"/data/bcs/localpv/vol$i /mnt/blueking/vol$i none defaults,bind 0 0\" >> /etc/fstab; done",
         "mount -va"),
)


def check(facts, ctx):
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
    observed = {"missing_dirs": missing_dir, "missing_sources": missing_src, "missing_fstab": missing_fstab,
                "not_mounted": not_mounted}
    expected = f"{dst_dir}/vol01..vol{n:02d} bind-mounted from {src_dir}/volNN via /etc/fstab"

    def rng(v):
        return v[0] if len(v) == 1 else f"{v[0]}..{v[-1]} ({len(v)})"

    parts = []
    for label_zh, label_en, v in (("缺少目录", "missing dirs", missing_dir), ("缺少源目录", "missing sources", missing_src),
                                  ("fstab 缺少 bind 行", "no fstab bind line", missing_fstab), ("未挂载", "not mounted", not_mounted)):
        if v:
            parts.append((f"{label_zh} {rng(v)}", f"{label_en} {rng(v)}"))
    if parts:
        return failed(T("LocalPV：" + "；".join(p[0] for p in parts), "LocalPV: " + "; ".join(p[1] for p in parts)),
                      observed=observed, expected=expected)
    return passed(T(f"{n} 个 LocalPV 目录均已创建、写入 fstab 并挂载", f"all {n} LocalPV dirs exist, are in fstab and mounted"),
                  observed=observed, expected=expected)
