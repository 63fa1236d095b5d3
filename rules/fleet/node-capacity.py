from bkdoctor.scan.rulekit import (
    G_SUITES,
    K8S_ROLES,
    Rule,
    T,
    collect,
    errored,
    failed,
    fmt_gb,
    gb,
    gb_si,
    passed,
    warned,
)

RULE = Rule(
    id="node-capacity",
    title=T(
        "节点总容量满足所选套餐，Master 为奇数台", "Node capacity fits the chosen suites; an odd number of masters"
    ),
    scope="fleet",
    severity="high",
    roles=K8S_ROLES,
    tags=("preflight", "resources", "fleet"),
    group="fleet",
    facts=("resources", "data_disk"),
    guide=G_SUITES,
    doc=T(
        "§一.5 资源评估表：基础套餐 2.5/3 个 Node、容器管理 0.7/1、监控 1.5/2（启用容器监控需 ≥ 500GB 存储）、持续集成 2/5"
        "（最低/推荐）。一个 Node 按 §一.3.2.2 的 8核/32GB 计：清单中 node 角色主机的 CPU 与内存之和低于最低值为失败，低于推荐值为警告"
        "（内存按 MemTotal，与 host-resources 一样允许内核保留的约 5%）。§三.1：Master 建议奇数台（1/3/5），偶数为失败。"
        "套餐取清单 suites（默认 base）。",
        "§一.5's table: base 2.5/3 nodes, container management 0.7/1, monitor 1.5/2 (>= 500 GB storage with container "
        "monitoring), CI 2/5 (minimum/recommended), a node being §一.3.2.2's 8 CPU / 32 GB: the inventory's node-role "
        "hosts' CPUs and memory summed below the minimum fail, below the recommendation warn (memory from MemTotal, "
        "with the ~5% the kernel keeps allowed, as in host-resources). §三.1: masters odd (1/3/5); an even count "
        "fails. Suites from the inventory's `suites` (default: base).",
    ),
    fix=("nproc; free -g", "kubectl get nodes"),
)


def check(fleet, ctx):
    th = ctx.thresholds
    suites = tuple(ctx.suites) or ("base",)
    table = th["suites_nodes"]
    min_n = sum(table[s][0] for s in suites if s in table)
    rec_n = sum(table[s][1] for s in suites if s in table)
    per_node = th["resources"]["node"]["min"]
    tol = th["size_tolerance"]
    nodes = [n for n, roles in ctx.roles.items() if "node" in roles]
    masters = [n for n, roles in ctx.roles.items() if "master" in roles]
    res, errs = collect({n: fleet[n] for n in nodes if n in fleet}, "resources")
    unknown = sorted(set(nodes) - set(res))
    cpu = sum(r["cpus"] for r in res.values())
    mem = round(sum(gb(r["mem_kb"]) for r in res.values()), 1)
    need = {"cpu": round(min_n * per_node["cpu"], 1), "mem_gb": round(min_n * per_node["mem_gb"], 1)}
    rec = {"cpu": round(rec_n * per_node["cpu"], 1), "mem_gb": round(rec_n * per_node["mem_gb"], 1)}
    min_n, rec_n = round(min_n, 1), round(rec_n, 1)
    observed = {"suites": list(suites), "nodes": len(nodes), "cpu": cpu, "mem_gb": mem, "masters": len(masters)}
    expected = {"min": need, "recommended": rec, "masters": "odd (1/3/5)"}
    problems, warns = [], []
    if len(masters) % 2 == 0 and masters:
        problems.append(
            T(
                f"Master 为 {len(masters)} 台，文档要求奇数台（1/3/5）",
                f"{len(masters)} masters; the guide asks for an odd number (1/3/5)",
            )
        )
    storage_need = th["monitor_container_storage_gb"]
    if "monitor" in suites and ctx.container_monitoring:
        disks, _ = collect({n: fleet[n] for n in nodes if n in fleet}, "data_disk")
        total = sum(gb_si(d["size_kb"]) for d in disks.values() if d)
        observed["data_gb"] = float(fmt_gb(total))
        expected["data_gb"] = f">= {storage_need} (container monitoring)"
        if total < storage_need:
            problems.append(
                T(
                    f"启用容器监控需 ≥ {storage_need}GB 存储，节点 /data 合计 {fmt_gb(total)} GB",
                    f"container monitoring needs >= {storage_need} GB of storage; the nodes' /data sum to {fmt_gb(total)} GB",
                )
            )
    short_min = cpu < need["cpu"] or mem < need["mem_gb"] * tol
    if short_min:
        txt = T(
            f"{len(nodes)} 个 Node 合计 {cpu} 核 / {mem} GB，{'+'.join(suites)} 最低需 {need['cpu']:g} 核 / {need['mem_gb']:g} GB（{min_n:g} 个 Node）",
            f"{len(nodes)} node(s) sum to {cpu} CPU / {mem} GB; {'+'.join(suites)} needs at least {need['cpu']:g} CPU / "
            f"{need['mem_gb']:g} GB ({min_n:g} nodes)",
        )
        if unknown:  # the sum lacks hosts whose facts could not be read: not a verdict
            msg = T(
                f"{txt.zh}；但 {', '.join(unknown)} 不可读，无法判断",
                f"{txt.en}; but {', '.join(unknown)} could not be read",
            )
            return {n: errored(msg, observed=observed, expected=expected) for n in fleet}
        problems.append(txt)
    elif cpu < rec["cpu"] or mem < rec["mem_gb"] * tol:
        warns.append(
            T(
                f"{len(nodes)} 个 Node 合计 {cpu} 核 / {mem} GB，满足最低值，低于推荐的 {rec['cpu']:g} 核 / {rec['mem_gb']:g} GB（{rec_n:g} 个 Node）",
                f"{len(nodes)} node(s) sum to {cpu} CPU / {mem} GB: the minimum, not the recommended {rec['cpu']:g} CPU / "
                f"{rec['mem_gb']:g} GB ({rec_n:g} nodes)",
            )
        )
    if problems:
        r = failed(
            T("；".join(p.zh for p in problems + warns), "; ".join(p.en for p in problems + warns)),
            observed=observed,
            expected=expected,
        )
    elif warns:
        r = warned(
            T("；".join(p.zh for p in warns), "; ".join(p.en for p in warns)), observed=observed, expected=expected
        )
    else:
        r = passed(
            T(
                f"{len(nodes)} 个 Node 合计 {cpu} 核 / {mem} GB，满足 {'+'.join(suites)} 的推荐值；Master {len(masters)} 台",
                f"{len(nodes)} node(s) sum to {cpu} CPU / {mem} GB, the recommendation for {'+'.join(suites)}; "
                f"{len(masters)} master(s)",
            ),
            observed=observed,
            expected=expected,
        )
    out = {n: r for n in fleet}
    for n, e in errs.items():
        out[n] = errored(e.reason)
    return out
