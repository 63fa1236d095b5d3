from bkdoctor.scan.rulekit import G_MONITOR_GATES, Rule, T, failed, passed, semver_lt, skipped, warned

RULE = Rule(
    id="component-versions",
    title=T("组件版本满足监控日志套餐的前置要求", "Component versions meet the monitor/log prerequisites"),
    scope="cluster",
    severity="high",
    roles=(),
    tags=("k8s", "helm", "versions"),
    group="cluster",
    facts=("helm_releases",),
    guide=G_MONITOR_GATES,
    doc=T(
        "部署监控日志套餐前：bk-gse ≥ 2.1.2-beta.20、bk-apigateway ≥ 1.11.3（预发布版本按语义版本比较，2.1.2-beta.20 > 2.1.2-beta.9）。"
        "已部署监控/日志（或清单 suites 含 monitor）而前置组件版本不足或未部署为失败，此前为警告（安装的监控日志闸门视警告为阻断）。",
        "Before the monitor/log suite: bk-gse >= 2.1.2-beta.20 and bk-apigateway >= 1.11.3 (prereleases compare "
        "as semver: 2.1.2-beta.20 > 2.1.2-beta.9). A gated release too old or missing fails once monitor/log is deployed "
        "(or the inventory's suites include monitor); before that it warns (the install's monitor-log gate blocks on it).",
    ),
    fix=("helmfile -f base-blueking.yaml.gotmpl -l name=bk-gse sync",),
)

MONITOR = ("bk-monitor", "bk-log-search", "bk-log-collector", "bkmonitor-operator")


def check(facts, ctx):
    rels = {r["name"]: r for r in facts.get("helm_releases")}
    gates = ctx.thresholds["version_gates"]
    monitor = sorted(n for n in rels if n in MONITOR)
    suites = tuple(getattr(ctx, "suites", ()) or ())
    if suites and "monitor" not in suites and not monitor:
        return skipped(T("清单 suites 不含 monitor：不部署监控日志套餐", "the inventory's suites leave out monitor"))
    # the gate applies once monitor/log is deployed or is to be (suites: monitor): then a missing release blocks
    applies = bool(monitor) or "monitor" in suites
    present = {n: rels[n]["chart_version"] for n in gates if n in rels}
    missing = [n for n in gates if n not in rels]
    if not present and not applies:
        return skipped(T("尚未部署 bk-gse / bk-apigateway", "bk-gse / bk-apigateway are not deployed yet"))
    low = {n: v for n, v in present.items() if v is None or semver_lt(v, gates[n])}
    observed = {"versions": present, "monitor_log_releases": monitor}
    if missing:
        observed["missing"] = missing
    expected = {n: f">= {v}" for n, v in gates.items()}
    txt = ", ".join(f"{n} {v} < {gates[n]}" for n, v in low.items())
    if missing:
        txt_en = ", ".join(([txt] if txt else []) + [f"{n} not deployed (>= {gates[n]} needed)" for n in missing])
        txt_zh = ", ".join(([txt] if txt else []) + [f"{n} 未部署（需要 ≥ {gates[n]}）" for n in missing])
        if applies:
            what = T(
                "监控/日志已部署" if monitor else "清单 suites 含 monitor",
                "monitor/log is deployed" if monitor else "the inventory's suites include monitor",
            )
            return failed(
                T(f"{what.zh}，但前置组件不满足：{txt_zh}", f"{what.en} but the prerequisites are not met: {txt_en}"),
                observed=observed,
                expected=expected,
            )
        # before monitor/log: a warning, which blocks the install's monitor-log gate (gate_strict, §十二.2.1)
        return warned(
            T(f"部署监控日志套餐前需部署或升级：{txt_zh}", f"deploy or upgrade before monitor/log: {txt_en}"),
            observed=observed,
            expected=expected,
        )
    if low:
        if applies:
            return failed(
                T(
                    f"监控/日志已部署，但前置版本不足：{txt}",
                    f"monitor/log is deployed but prerequisites are too old: {txt}",
                ),
                observed=observed,
                expected=expected,
            )
        return warned(
            T(f"部署监控日志套餐前需升级：{txt}", f"upgrade before deploying monitor/log: {txt}"),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            "前置组件版本满足要求：" + ", ".join(f"{n} {v}" for n, v in present.items()),
            "prerequisites met: " + ", ".join(f"{n} {v}" for n, v in present.items()),
        ),
        observed=observed,
        expected=expected,
    )
