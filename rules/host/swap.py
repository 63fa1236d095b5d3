from bkdoctor.scan.rulekit import G_KERNEL, HOST_ROLES, Rule, T, cite, failed, passed

RULE = Rule(
    id="swap",
    title=T("已关闭 swap", "Swap is off"),
    scope="host",
    severity="high",
    roles=HOST_ROLES,
    tags=("preflight", "os"),
    group="host",
    facts=("swaps", "fstab"),
    guide=cite(G_KERNEL, "| Swap | 必须关闭 | `free -m`（Swap行值为0） |"),
    doc=T(
        "kubelet 在开启 swap 的主机上拒绝启动；/etc/fstab 中的 swap 行会在重启后重新启用 swap。",
        "kubelet refuses to run with swap on; a swap line in /etc/fstab turns swap back on at the next reboot.",
    ),
    fix=("swapoff -a", "sed -ri.bak-$(date +%Y%m%d%H%M%S) '/^[^#]\\S*\\s+\\S+\\s+swap\\s/s/^/#/' /etc/fstab"),
)


def check(facts, ctx):
    active = [s["device"] for s in facts.swaps]
    lines = [e["text"].strip() for e in facts.fstab if e["fstype"] == "swap"]
    observed = {"active": active, "fstab": lines}
    expected = "no active swap, no swap line in /etc/fstab"
    if active:
        return failed(
            T(f"swap 正在使用：{', '.join(active)}", f"swap is active: {', '.join(active)}"),
            observed=observed,
            expected=expected,
            evidence=facts.raw("swaps"),
        )
    if lines:
        return failed(
            T(
                f"当前未使用 swap，但 /etc/fstab 有 swap 行，重启后会再次启用：{lines[0]}",
                f"swap is off now, but /etc/fstab has a swap line that turns it on at reboot: {lines[0]}",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T("没有启用的 swap，/etc/fstab 中也没有 swap 行", "no active swap and no swap line in /etc/fstab"),
        observed=observed,
        expected=expected,
    )
