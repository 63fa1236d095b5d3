from bkdoctor.scan.rulekit import G_KERNEL, HOST_ROLES, Rule, T, errored, failed, passed, version_lt

RULE = Rule(
    id="kernel-version",
    title=T("内核版本 ≥ 3.10.0", "Kernel is 3.10.0 or newer"),
    scope="host",
    severity="high",
    roles=HOST_ROLES,
    tags=("preflight", "os"),
    group="host",
    facts=("kernel",),
    guide=G_KERNEL,
    doc=T(
        "Docker 与 K8s 需要 3.10 及以上内核（overlay2、cgroup、命名空间特性）。",
        "Docker and Kubernetes need kernel 3.10 or newer (overlay2, cgroups, namespaces).",
    ),
    fix=("uname -r",),
)


def check(facts, ctx):
    k = facts.kernel
    want = ctx.thresholds["kernel_min"]
    try:
        old = version_lt(k, want)
    except ValueError:
        return errored(T(f"无法解析内核版本 {k!r}", f"cannot parse the kernel version {k!r}"), observed=k)
    if old:
        return failed(T(f"内核 {k} 低于 {want}", f"kernel {k} is older than {want}"), observed=k, expected=f">= {want}")
    return passed(T(f"内核 {k}", f"kernel {k}"), observed=k, expected=f">= {want}")
