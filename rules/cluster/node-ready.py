from bkdoctor.facts.k8s import condition, is_master, md
from bkdoctor.scan.rulekit import G_K8S, Rule, T, failed, passed, warned

RULE = Rule(
    id="node-ready",
    title=T("所有 Node 就绪且可调度", "Every Node is Ready and schedulable"),
    scope="cluster",
    severity="critical",
    roles=(),
    tags=("k8s",),
    group="cluster",
    facts=("nodes",),
    guide=G_K8S,
    doc=T(
        "NotReady 的 Node 上的 Pod 会被驱逐；非 Master 节点上的 NoSchedule/NoExecute 污点或 cordon 会让蓝鲸 Pod 无处调度"
        "（文档只看 kubectl get nodes 的 Ready：污点与 cordon 的检查不在文档中）。",
        "Pods on a NotReady Node get evicted; a NoSchedule/NoExecute taint or a cordon on a non-master Node "
        "leaves BlueKing pods nowhere to go (the guide looks at Ready in kubectl get nodes: the taint and cordon "
        "checks are not in the guide).",
    ),
    fix=("kubectl get nodes", "kubectl describe node <name>", "kubectl uncordon <name>"),
)

BLOCKING = ("NoSchedule", "NoExecute")


def check(facts, ctx):
    not_ready, blocked, seen = [], [], {}
    nodes = facts.get("nodes")
    for n in nodes:
        name = md(n)["name"]
        c = condition(n, "Ready")
        status = c.get("status") if c else "Unknown"
        taints = [
            f"{t.get('key')}:{t.get('effect')}"
            for t in (n.get("spec") or {}).get("taints") or []
            if t.get("effect") in BLOCKING
        ]
        cordoned = bool((n.get("spec") or {}).get("unschedulable"))
        seen[name] = {"ready": status, "taints": taints, "cordoned": cordoned}
        if status != "True":
            why = (c or {}).get("message") or (c or {}).get("reason") or "no Ready condition"
            not_ready.append(f"{name} ({why})")
        elif not is_master(n) and (taints or cordoned):
            blocked.append(f"{name} ({', '.join(taints + (['cordoned'] if cordoned else []))})")
    observed = {"nodes": seen}
    if not nodes:
        return failed(T("集群中没有 Node", "the cluster has no Node"), observed=observed, expected="Ready nodes")
    if not_ready:
        return failed(
            T(f"未就绪：{', '.join(not_ready)}", f"not Ready: {', '.join(not_ready)}"),
            observed=observed,
            expected="Ready",
        )
    workers = [n for n in nodes if not is_master(n)]
    if blocked and len(blocked) >= max(1, len(workers)):
        return failed(
            T(f"所有工作节点都不可调度：{', '.join(blocked)}", f"no worker Node is schedulable: {', '.join(blocked)}"),
            observed=observed,
            expected="schedulable workers",
        )
    if blocked:
        return warned(
            T(f"不可调度：{', '.join(blocked)}", f"not schedulable: {', '.join(blocked)}"),
            observed=observed,
            expected="schedulable",
        )
    return passed(
        T(f"{len(nodes)} 个 Node 均就绪", f"all {len(nodes)} Nodes are Ready"), observed=observed, expected="Ready"
    )
