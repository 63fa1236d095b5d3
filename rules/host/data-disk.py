from bkdoctor.rulekit import G_NODE_SPEC, cite, K8S_ROLES, Rule, T, failed, gb, passed, warned

RULE = Rule(
    id="data-disk",
    title=T("/data 空间满足本地存储要求", "/data has room for local storage"),
    scope="host", severity="high", roles=K8S_ROLES, tags=("preflight", "resources", "storage"), group="host",
    facts=("data_disk",),
    guide=cite(G_NODE_SPEC, "| Master | 4核/8GB/100GB | 8核/16GB/200GB | /data目录≥100GB（本地存储场景） |"),
    doc=T("本地存储（LocalPV）与 Docker 数据都在 /data 下：Master ≥ 100GB，Node ≥ 90GB。"
          "空间不足时 PVC 无法绑定（didn't find available persistent volumes to bind）。",
          "Local storage (LocalPV) and Docker's data live under /data: master >= 100 GB, node >= 90 GB. Without "
          "room, PVCs stay unbound (didn't find available persistent volumes to bind)."),
    fix=("df -h /data",),
)


def check(facts, ctx):
    need = max(ctx.thresholds["data_disk_gb"].get(r, 0) for r in ctx.roles)
    tol = ctx.thresholds["size_tolerance"]
    d = facts.data_disk
    if d is None:
        return failed(T("/data 目录不存在", "/data does not exist"), observed=None, expected=f">= {need} GB")
    size, avail = gb(d["size_kb"]), gb(d["avail_kb"])
    observed = {"mount": d["mount"], "device": d["device"], "size_gb": size, "avail_gb": avail}
    expected = f">= {need} GB"
    if size < need * tol:
        return failed(T(f"/data 所在文件系统（{d['mount']}）只有 {size} GB，需要 ≥ {need} GB",
                        f"/data is on {d['mount']} with {size} GB; it needs >= {need} GB"),
                      observed=observed, expected=expected)
    if avail < need * tol:
        return warned(T(f"/data 容量 {size} GB，但只剩 {avail} GB 可用（需要 ≥ {need} GB）",
                        f"/data has {size} GB but only {avail} GB free (needs >= {need} GB)"),
                      observed=observed, expected=expected)
    return passed(T(f"/data 可用 {avail} GB（{d['mount']}）", f"/data has {avail} GB free (on {d['mount']})"),
                  observed=observed, expected=expected)
