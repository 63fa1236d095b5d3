from bkdoctor.scan.rulekit import ALL_ROLES, G_TIME, Rule, T, collect, errored, failed, passed, warned

RULE = Rule(
    id="fleet-clock-skew",
    title=T("各主机与中控机时钟偏差小", "Clocks agree with the control machine"),
    scope="fleet",
    severity="high",
    roles=ALL_ROLES,
    tags=("time", "fleet"),
    group="fleet",
    facts=("clock_offset",),
    guide=G_TIME,
    doc=T(
        "每台主机的时钟与中控机比较（按往返时间修正）：偏差 > 1 秒警告，> 60 秒失败——bk-repo 的令牌会报 Expired token。"
        "文档只要求时间同步（部署 Chrony 或 NTP）：这两个阈值不在文档中（现场经验）。",
        "Each host's clock against the control machine's, corrected for the round-trip time: > 1 s warns, > 60 s "
        "fails, where bk-repo tokens start failing with 'Expired token'. The guide asks for time sync (Chrony or "
        "NTP) only: both thresholds are not in the guide (field knowledge).",
    ),
    fix=("systemctl enable --now chronyd", "chronyc makestep"),
)


def check(fleet, ctx):
    offsets, errors = collect(fleet, "clock_offset")
    ref_name = ctx.control if ctx.control in offsets else None
    ref = offsets[ref_name]["offset_s"] if ref_name else 0.0
    ref_label = ref_name or "bkdoctor"
    warn_s, fail_s = ctx.thresholds["clock_skew_warn_s"], ctx.thresholds["clock_skew_fail_s"]
    out = {name: errored(e.reason) for name, e in errors.items()}
    for name, o in offsets.items():
        skew = o["offset_s"] - ref
        # the reading is uncertain by half of both round trips: do not blame a host for network latency
        uncertainty = o["rtt_s"] / 2 + (offsets[ref_name]["rtt_s"] / 2 if ref_name else 0.0)
        observed = {"skew_s": round(skew, 3), "uncertainty_s": round(uncertainty, 3), "reference": ref_label}
        expected = f"|skew| <= {warn_s} s"
        if name == ref_name:
            out[name] = passed(
                T("中控机：作为时钟基准", "control machine: the reference clock"), observed=observed, expected=expected
            )
            continue
        sure = abs(skew) - uncertainty
        if sure > fail_s:
            out[name] = failed(
                T(
                    f"时钟比 {ref_label} {'快' if skew > 0 else '慢'} {abs(skew):.1f} 秒（> {fail_s:g} 秒，bk-repo 会报 Expired token）",
                    f"clock is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} {ref_label} "
                    f"(> {fail_s:g} s: bk-repo answers Expired token)",
                ),
                observed=observed,
                expected=expected,
            )
        elif sure > warn_s:
            out[name] = warned(
                T(
                    f"时钟与 {ref_label} 相差 {abs(skew):.2f} 秒（> {warn_s:g} 秒）",
                    f"clock differs from {ref_label} by {abs(skew):.2f} s (> {warn_s:g} s)",
                ),
                observed=observed,
                expected=expected,
            )
        else:
            out[name] = passed(
                T(f"与 {ref_label} 相差 {abs(skew):.3f} 秒", f"within {abs(skew):.3f} s of {ref_label}"),
                observed=observed,
                expected=expected,
            )
    return out
