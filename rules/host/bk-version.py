from bkdoctor.scan.rulekit import G_MONITOR_GATES, Rule, T, cite, errored, failed, passed, skipped, version_lt

RULE = Rule(
    id="bk-version",
    title=T("蓝鲸版本（安装目录 VERSION）≥ 7.1.3", "BlueKing VERSION in the install dir is 7.1.3 or newer"),
    scope="host",
    severity="high",
    roles=("control",),
    tags=("versions", "monitor"),
    group="host",
    facts=(),
    guide=cite(G_MONITOR_GATES, "# 检查蓝鲸版本（需≥7.1.3）"),
    doc=T(
        "§十二.2.1：部署监控日志套餐前，中控机上 cd ~/bkce7.1-install/blueking/ && cat VERSION 须 ≥ 7.1.3；不达标时重新执行基础套餐部署命令升级。"
        "清单 suites 不含 monitor 时不检查。",
        "§十二.2.1: before the monitor/log suite, `cat VERSION` in ~/bkce7.1-install/blueking/ on the control machine "
        "must be >= 7.1.3; if not, re-run the base suite's deployment to upgrade. Not checked when the inventory's "
        "suites leave out monitor.",
    ),
    fix=("cd ~/bkce7.1-install/blueking/ && cat VERSION",),
)


def check(facts, ctx):
    want = ctx.thresholds["bk_version_min"]
    suites = getattr(ctx, "suites", ()) or ()
    if suites and "monitor" not in suites:
        return skipped(T("清单 suites 不含 monitor：不部署监控日志套餐", "the inventory's suites leave out monitor"))
    site = ctx.site
    if site is None:
        return skipped(T("未读取安装目录", "the install dir was not read"))
    if "VERSION" in site.errors:
        return errored(
            T(f"无法读取 VERSION：{site.errors['VERSION']}", f"cannot read VERSION: {site.errors['VERSION']}")
        )
    v = site.data.get("VERSION")
    path = site.path("VERSION")
    if v is None:
        return skipped(T(f"没有 {path}（尚未下载安装文件）", f"no {path} (the install files are not downloaded yet)"))
    observed = {"VERSION": v[:80]}
    try:
        old = version_lt(v, want)
    except ValueError:
        return errored(T(f"无法解析 VERSION {v[:40]!r}", f"cannot parse VERSION {v[:40]!r}"), observed=observed)
    if old:
        return failed(
            T(
                f"VERSION 为 {v}，部署监控日志套餐需 ≥ {want}：重新执行基础套餐部署命令升级",
                f"VERSION is {v}; the monitor/log suite needs >= {want}: re-run the base suite's deployment",
            ),
            observed=observed,
            expected=f">= {want}",
        )
    return passed(T(f"VERSION {v}", f"VERSION {v}"), observed=observed, expected=f">= {want}")
