from bkdoctor.scan.rulekit import (
    G_CONTAINER,
    K8S_ROLES,
    Rule,
    T,
    errored,
    failed,
    passed,
    skipped,
    version_tuple,
    warned,
)

RULE = Rule(
    id="kubelet-version",
    title=T("kubelet 版本在 1.20–1.23 之间", "kubelet is between 1.20 and 1.23"),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("k8s",),
    group="k8s",
    facts=("kubelet",),
    guide=G_CONTAINER,
    doc=T(
        "BlueKing 7.1 在 K8s 1.20–1.23 上验证（bcs.sh 安装 1.20.11）；1.24+ 移除了 dockershim，需自行验证兼容性。",
        "BlueKing 7.1 is validated on K8s 1.20–1.23 (bcs.sh installs 1.20.11); 1.24+ drops dockershim and "
        "needs your own verification.",
    ),
    fix=("kubelet --version",),
)


def _since(k, res):
    """The version kept from an earlier scan (the binary unchanged since: the kubelet fact's `cached_at`) says so."""
    at = k.get("cached_at")
    if at:
        res.message = T(
            f"{res.message.zh}（二进制文件自 {at} 的扫描以来未变）",
            f"{res.message.en} (binary unchanged since the scan at {at})",
        )
    return res


def check(facts, ctx):
    k = facts.kubelet
    return _since(k, _check(k, ctx))


def _check(k, ctx):
    lo, hi = ctx.thresholds["kubelet_min"], ctx.thresholds["kubelet_max_tested"]
    expected = f"{lo} - {hi}"
    if not k["installed"]:
        return skipped(
            T("未安装 kubelet（bcs.sh 部署 K8s 时会安装）", "kubelet is not installed (bcs.sh installs it)"),
            expected=expected,
        )
    v = k["version"]
    try:
        mm = version_tuple(v)[:2]
    except ValueError:
        return errored(T(f"无法解析 kubelet 版本 {v!r}", f"cannot parse the kubelet version {v!r}"), observed=v)
    if mm < version_tuple(lo)[:2]:
        return failed(T(f"kubelet {v} 低于 {lo}", f"kubelet {v} is older than {lo}"), observed=v, expected=expected)
    if mm > version_tuple(hi)[:2]:
        return warned(
            T(
                f"kubelet {v} 高于已验证的 {hi}：1.24+ 需要验证兼容性（dockershim 已移除）",
                f"kubelet {v} is newer than the tested {hi}: 1.24+ needs verification (no dockershim)",
            ),
            observed=v,
            expected=expected,
        )
    return passed(T(f"kubelet {v}", f"kubelet {v}"), observed=v, expected=expected)
