from bkdoctor.scan.rulekit import G_TIME, HOST_ROLES, Rule, T, failed, passed, warned

RULE = Rule(
    id="time-sync",
    title=T("时间同步服务运行且已同步", "Time sync is running and synchronised"),
    scope="host",
    severity="high",
    roles=HOST_ROLES,
    tags=("preflight", "os", "time"),
    group="host",
    facts=("time_sync",),
    guide=G_TIME,
    doc=T(
        "主机间时钟偏差超过约 60 秒会导致 bk-repo 报 Expired token（RequestError: Service call failed）；目标是 1 秒以内。"
        "文档只要求部署 Chrony 或 NTP：偏差阈值与 Expired token 不在文档中（现场经验）。",
        "Clock skew over ~60 s between hosts makes bk-repo answer 'Expired token' (RequestError: Service call "
        "failed); aim for under 1 s. The guide asks for Chrony or NTP only: the offset threshold and the Expired "
        "token symptom are not in the guide (field knowledge).",
    ),
    fix=("yum install -y chrony", "systemctl enable --now chronyd", "chronyc tracking"),
)


def check(facts, ctx):
    ts = facts.time_sync
    observed = {"daemons": ts["daemons"], "synced": ts["synced"], "offset_s": ts["offset_s"], "source": ts["source"]}
    expected = "chronyd or ntpd running and synchronised"
    if not ts["daemons"]:
        return failed(
            T("没有运行 chronyd 或 ntpd", "neither chronyd nor ntpd is running"), observed=observed, expected=expected
        )
    names = ", ".join(ts["daemons"])
    if ts["synced"] is False:
        return failed(
            T(
                f"{names} 在运行，但时钟尚未同步（{ts['source']}）",
                f"{names} is running but the clock is not synchronised ({ts['source']})",
            ),
            observed=observed,
            expected=expected,
        )
    if ts["synced"] is None:
        return warned(
            T(
                f"{names} 在运行，但无法确认是否已同步（没有 chronyc/ntpstat/timedatectl 输出）",
                f"{names} is running, but synchronisation cannot be confirmed (no chronyc/ntpstat/timedatectl)",
            ),
            observed=observed,
            expected=expected,
        )
    limit = ctx.thresholds["time_offset_warn_s"]
    if ts["offset_s"] is not None and abs(ts["offset_s"]) > limit:
        return warned(
            T(
                f"已同步，但本机时钟偏差 {ts['offset_s']:.3f} 秒，超过 {limit} 秒",
                f"synchronised, but the clock is off by {ts['offset_s']:.3f} s (more than {limit} s)",
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(f"{names} 在运行，时钟已同步", f"{names} is running and the clock is synchronised"),
        observed=observed,
        expected=expected,
    )
