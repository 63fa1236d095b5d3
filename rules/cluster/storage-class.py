from bkdoctor.facts.k8s import DEFAULT_SC_ANNOTATIONS, md, ref
from bkdoctor.scan.rulekit import G_STORAGE, Rule, T, failed, passed, warned

RULE = Rule(
    id="storage-class",
    title=T("有默认 StorageClass，PV/PVC 正常", "A default StorageClass; PVs and PVCs healthy"),
    scope="cluster",
    severity="critical",
    roles=(),
    tags=("k8s", "storage"),
    group="cluster",
    facts=("storageclasses", "pvs", "pvcs", "events"),
    guide=G_STORAGE,
    doc=T(
        "基础套餐的 MySQL、bkrepo、ES 等都用默认 StorageClass 申请 PVC（00-localpv 提供 local-storage）。"
        "没有默认类时 PVC 一直 Pending（no storage class is set）；PV 不足时报 didn't find available persistent volumes to bind。",
        "The base suite's MySQL, bkrepo, ES and others claim PVCs from the default StorageClass (00-localpv provides "
        "local-storage). Without one, PVCs stay Pending (no storage class is set); without enough PVs: didn't find "
        "available persistent volumes to bind.",
    ),
    fix=("helmfile -f 00-localpv.yaml.gotmpl sync", "kubectl get sc,pv,pvc -A"),
)

DEFAULT = DEFAULT_SC_ANNOTATIONS  # either annotation makes a default


def check(facts, ctx):
    scs = facts.get("storageclasses")
    pvs = facts.get("pvs")
    pvcs = facts.get("pvcs")
    events = facts.get("events")
    defaults = [md(s)["name"] for s in scs if any((md(s).get("annotations") or {}).get(a) == "true" for a in DEFAULT)]
    pv_states: dict[str, int] = {}
    for pv in pvs:
        ph = (pv.get("status") or {}).get("phase", "Unknown")
        pv_states[ph] = pv_states.get(ph, 0) + 1
    pending = [p for p in pvcs if (p.get("status") or {}).get("phase") == "Pending"]
    reasons = {}
    by_claim: dict = {}
    if pending:  # one pass over the events, not one per pending claim
        for e in events:
            io = e.get("involvedObject") or {}
            if io.get("kind") == "PersistentVolumeClaim":
                by_claim.setdefault((io.get("namespace"), io.get("name")), []).append(e)
    for p in pending:
        evs = sorted(
            by_claim.get((md(p).get("namespace"), md(p)["name"]), []),
            key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
        )
        reasons[ref(p)] = evs[-1].get("message", "") if evs else ""
    bad_pvs = {k: v for k, v in pv_states.items() if k not in ("Available", "Bound")}
    observed = {
        "storageclasses": [md(s)["name"] for s in scs],
        "default": defaults,
        "pvs": pv_states,
        "pending_pvcs": reasons,
    }
    expected = {"default_storageclass": 1, "pvs": "Available or Bound", "pvcs": "Bound"}
    problems = []
    if not defaults:
        problems.append(
            (
                "没有默认 StorageClass（kubectl get sc 为空或无 default）：同步 00-localpv",
                "no default StorageClass (kubectl get sc is empty or has no default): sync 00-localpv",
            )
        )
    elif len(defaults) > 1:
        problems.append(
            (
                f"有多个默认 StorageClass：{', '.join(defaults)}",
                f"several default StorageClasses: {', '.join(defaults)}",
            )
        )
    if pending:
        txt = "; ".join(f"{k}: {v}" if v else k for k, v in list(reasons.items())[:5])
        problems.append((f"{len(pending)} 个 PVC 处于 Pending：{txt}", f"{len(pending)} PVC(s) Pending: {txt}"))
    if problems:
        return failed(
            T("；".join(p[0] for p in problems), "; ".join(p[1] for p in problems)),
            observed=observed,
            expected=expected,
        )
    if bad_pvs:
        txt = ", ".join(f"{v} {k}" for k, v in bad_pvs.items())
        return warned(
            T(f"有异常状态的 PV：{txt}", f"PVs in unusual states: {txt}"), observed=observed, expected=expected
        )
    return passed(
        T(
            f"默认 StorageClass {defaults[0]}；{len(pvs)} 个 PV 正常；无 Pending 的 PVC",
            f"default StorageClass {defaults[0]}; {len(pvs)} PV(s) fine; no Pending PVC",
        ),
        observed=observed,
        expected=expected,
    )
