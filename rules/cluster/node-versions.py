import re

from bkdoctor.facts.k8s import md
from bkdoctor.scan.rulekit import G_CONTAINER, Rule, T, failed, passed, version_tuple, warned

RULE = Rule(
    id="node-versions",
    title=T("各 Node 的 kubelet 1.20–1.23、Docker ≥ 19.03", "Every Node runs kubelet 1.20-1.23 and Docker >= 19.03"),
    scope="cluster",
    severity="high",
    roles=(),
    tags=("k8s", "docker"),
    group="cluster",
    facts=("nodes",),
    guide=G_CONTAINER,
    doc=T(
        "从 Node 的 status.nodeInfo 读取 kubelet 与容器运行时版本：kubelet 1.20–1.23（1.24+ 需验证，已移除 dockershim），"
        "运行时 docker ≥ 19.03。",
        "Reads kubelet and container runtime versions from each Node's status.nodeInfo: kubelet 1.20–1.23 "
        "(1.24+ needs verification, no dockershim), runtime docker >= 19.03.",
    ),
    fix=("kubectl get nodes -o wide",),
)


def check(facts, ctx):
    th = ctx.thresholds
    lo, hi = version_tuple(th["kubelet_min"])[:2], version_tuple(th["kubelet_max_tested"])[:2]
    dmin = version_tuple(th["docker_min"])
    old, new, bad_rt, seen = [], [], [], {}
    for n in facts.get("nodes"):
        info = (n.get("status") or {}).get("nodeInfo") or {}
        name = md(n)["name"]
        kv, rt = info.get("kubeletVersion", ""), info.get("containerRuntimeVersion", "")
        seen[name] = {"kubelet": kv, "runtime": rt}
        try:
            mm = version_tuple(kv)[:2]
            if mm < lo:
                old.append(f"{name} {kv}")
            elif mm > hi:
                new.append(f"{name} {kv}")
        except ValueError:
            old.append(f"{name} {kv or '?'}")
        m = re.match(r"docker://(.+)", rt)
        if not m:
            bad_rt.append(f"{name} {rt or '?'}")
        else:
            try:
                if version_tuple(m.group(1)) < dmin:
                    bad_rt.append(f"{name} {rt}")
            except ValueError:
                bad_rt.append(f"{name} {rt}")
    observed = {"nodes": seen}
    expected = {
        "kubelet": f"{th['kubelet_min']} - {th['kubelet_max_tested']}",
        "runtime": f"docker >= {th['docker_min']}",
    }
    if old or bad_rt:
        parts = ([f"kubelet 过旧：{', '.join(old)}"] if old else []) + (
            [f"运行时不符：{', '.join(bad_rt)}"] if bad_rt else []
        )
        parts_en = ([f"kubelet too old: {', '.join(old)}"] if old else []) + (
            [f"runtime not docker >= {th['docker_min']}: {', '.join(bad_rt)}"] if bad_rt else []
        )
        return failed(T("；".join(parts), "; ".join(parts_en)), observed=observed, expected=expected)
    if new:
        return warned(
            T(
                f"kubelet 高于已验证版本（1.24+ 需验证）：{', '.join(new)}",
                f"kubelet newer than tested (1.24+ needs verification): {', '.join(new)}",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(f"{len(seen)} 个 Node 版本均符合", f"all {len(seen)} Nodes run supported versions"),
        observed=observed,
        expected=expected,
    )
