from bkdoctor.rulekit import G_MONITOR_GATES, Rule, T, failed, passed, skipped, warned
from bkdoctor.semver import semver_lt

RULE = Rule(
    id="component-versions",
    title=T("组件版本满足监控日志套餐的前置要求", "Component versions meet the monitor/log prerequisites"),
    scope="cluster", severity="high", roles=(), tags=("k8s", "helm", "versions"), group="cluster",
    facts=("helm_releases",),
    guide=G_MONITOR_GATES,
    doc=T("部署监控日志套餐前：bk-gse ≥ 2.1.2-beta.20、bk-apigateway ≥ 1.11.3（预发布版本按语义版本比较，2.1.2-beta.20 > 2.1.2-beta.9）。"
          "已部署监控/日志而前置版本不足为失败，尚未部署为警告。",
          "Before the monitor/log suite: bk-gse >= 2.1.2-beta.20 and bk-apigateway >= 1.11.3 (prereleases compare "
          "as semver: 2.1.2-beta.20 > 2.1.2-beta.9). Gates unmet with monitor/log already deployed fail; before it, warn."),
    fix=("helmfile -f base-blueking.yaml.gotmpl -l name=bk-gse sync",),
)

MONITOR = ("bk-monitor", "bk-log-search", "bk-log-collector", "bkmonitor-operator")


def check(facts, ctx):
    rels = {r["name"]: r for r in facts.get("helm_releases")}
    gates = ctx.thresholds["version_gates"]
    present = {n: rels[n]["chart_version"] for n in gates if n in rels}
    if not present:
        return skipped(T("尚未部署 bk-gse / bk-apigateway", "bk-gse / bk-apigateway are not deployed yet"))
    low = {n: v for n, v in present.items() if v is None or semver_lt(v, gates[n])}
    monitor = sorted(n for n in rels if n in MONITOR)
    observed = {"versions": present, "monitor_log_releases": monitor}
    expected = {n: f">= {v}" for n, v in gates.items()}
    if low:
        txt = ", ".join(f"{n} {v} < {gates[n]}" for n, v in low.items())
        if monitor:
            return failed(T(f"监控/日志已部署，但前置版本不足：{txt}", f"monitor/log is deployed but prerequisites are too old: {txt}"),
                          observed=observed, expected=expected)
        return warned(T(f"部署监控日志套餐前需升级：{txt}", f"upgrade before deploying monitor/log: {txt}"), observed=observed, expected=expected)
    return passed(T("前置组件版本满足要求：" + ", ".join(f"{n} {v}" for n, v in present.items()),
                    "prerequisites met: " + ", ".join(f"{n} {v}" for n, v in present.items())), observed=observed, expected=expected)
