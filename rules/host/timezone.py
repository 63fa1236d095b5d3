from bkdoctor.scan.rulekit import G_TIME, HOST_ROLES, Rule, T, cite, failed, passed

RULE = Rule(
    id="timezone",
    title=T("时区为 Asia/Shanghai", "Time zone is Asia/Shanghai"),
    scope="host",
    severity="medium",
    roles=HOST_ROLES,
    tags=("preflight", "os", "time"),
    group="host",
    facts=("timezone",),
    guide=cite(G_TIME, "时区：统一设置为北京时间（Asia/Shanghai）"),
    doc=T(
        "文档要求所有主机统一为北京时间；时区不一致会让日志、定时任务与证书时间对不上。",
        "The guide asks for Beijing time on every host; mixed time zones make logs, cron jobs and certificate "
        "times disagree.",
    ),
    fix=("timedatectl set-timezone Asia/Shanghai",),
)


def check(facts, ctx):
    tz = facts.timezone
    want = ctx.thresholds["timezone"]
    observed = {"zone": tz["zone"], "utc_offset": tz["utc_offset"], "localtime": tz["localtime_target"]}
    if tz["zone"] == want or (tz["zone"] is None and tz["same_as_shanghai"] and want == "Asia/Shanghai"):
        return passed(T(f"时区为 {want}", f"time zone is {want}"), observed=observed, expected=want)
    if tz["zone"] is None and tz["same_as_shanghai"] is False and want == "Asia/Shanghai":
        zone = f"unknown (UTC{tz['utc_offset']})"
    else:
        zone = tz["zone"] or f"unknown (UTC{tz['utc_offset']})"
    return failed(
        T(f"时区为 {zone}，应为 {want}", f"time zone is {zone}, expected {want}"), observed=observed, expected=want
    )
