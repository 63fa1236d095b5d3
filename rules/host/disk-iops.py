from bkdoctor.scan.rulekit import G_NODE_SPEC, K8S_ROLES, Rule, T, cite, failed, passed

RULE = Rule(
    id="disk-iops",
    title=T("数据盘 IOPS 达标（fio 实测）", "Data disk IOPS are enough (measured with fio)"),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("slow", "measure", "storage"),
    group="measure",
    facts=("disk_iops",),
    guide=cite(G_NODE_SPEC, "本地存储：磁盘IO≥100op/s", ("一.3.2.2", "动态存储（如NFS）：IOPS≥300op/s")),
    doc=T(
        "用 fio 在数据目录下做约 5 秒的 4k 随机读写（测试文件随后删除）：本地盘 ≥ 100 IOPS，NFS 等动态存储 ≥ 300 IOPS。"
        "IOPS 不足时 etcd、MySQL、ES 会超时。",
        "fio runs ~5 s of 4k random read/write in the data dir (its temp file is removed afterwards): local disks "
        "need >= 100 IOPS, NFS and other dynamic storage >= 300. Slower disks make etcd, MySQL and ES time out.",
    ),
    fix=(
        "fio --name=t --filename=/data/fio.tmp --size=64M --rw=randrw --bs=4k --direct=1 --runtime=10 --time_based; rm -f /data/fio.tmp",
    ),
)


def check(facts, ctx):
    d = facts.disk_iops
    th = ctx.thresholds
    need = th["iops_min_nfs"] if d["nfs"] else th["iops_min_local"]
    kind = "NFS" if d["nfs"] else "local"
    observed = {
        "iops": round(d["iops"]),
        "read_iops": round(d["read_iops"]),
        "write_iops": round(d["write_iops"]),
        "fstype": d["fstype"],
        "direct_io": not d["buffered"],
        "dir": th["iops_dir"],
    }
    note_zh = "（该文件系统不支持 O_DIRECT，结果含页缓存）" if d["buffered"] else ""
    note_en = " (no O_DIRECT on this filesystem: page cache included)" if d["buffered"] else ""
    # fio_fstype absent (its bounded group was stopped by a hang) or failed: the measurement is kept, the type unknown
    fs_zh, fs_en = (
        (d["fstype"], d["fstype"])
        if d["fstype"]
        else ("文件系统类型未知，按本地盘要求", "fs type unknown: local threshold")
    )
    if d["iops"] < need:
        return failed(
            T(
                f"{th['iops_dir']}（{fs_zh}）实测 {d['iops']:.0f} IOPS，{kind} 存储需要 ≥ {need}{note_zh}",
                f"{th['iops_dir']} ({fs_en}) measured {d['iops']:.0f} IOPS; {kind} storage needs >= {need}{note_en}",
            ),
            observed=observed,
            expected=f">= {need} IOPS",
        )
    return passed(
        T(
            f"{th['iops_dir']}（{fs_zh}）实测 {d['iops']:.0f} IOPS{note_zh}",
            f"{th['iops_dir']} ({fs_en}) measured {d['iops']:.0f} IOPS{note_en}",
        ),
        observed=observed,
        expected=f">= {need} IOPS",
    )
