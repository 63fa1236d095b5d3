from bkdoctor.rulekit import G_OS, HOST_ROLES, Rule, T, failed, passed, warned

RULE = Rule(
    id="os-version",
    title=T("操作系统为 CentOS 7.9 64 位", "Operating system is CentOS 7.9, 64-bit"),
    scope="host", severity="medium", roles=HOST_ROLES + ("registry-proxy",), tags=("preflight", "os"), group="host",
    facts=("os",),
    guide=G_OS,  # "CentOS 7.9 64位"
    doc=T("部署文档与 bcs.sh 只覆盖 CentOS 7.x（推荐 7.9，64 位）；其他发行版的软件包与内核参数可能不同。",
          "The guide and bcs.sh cover CentOS 7.x only (7.9 recommended, 64-bit); other distributions differ in "
          "packages and kernel settings."),
    fix=("cat /etc/centos-release",),
)


def check(facts, ctx):
    o = facts.os
    th = ctx.thresholds
    observed = {"id": o["id"], "version": o["version"], "name": o["name"], "arch": o.get("arch")}
    expected = f"{th['os_id']} {th['os_recommended']} {th['os_arch']}"
    if o.get("arch") != th["os_arch"]:
        # §一.4.1: CentOS 7.9 64位; `uname -m` says x86_64 on a 64-bit system
        return failed(T(f"uname -m 为 {o.get('arch') or '未知'}，文档要求 64 位（{th['os_arch']}）",
                        f"uname -m says {o.get('arch') or 'nothing'}; the guide requires 64-bit ({th['os_arch']})"),
                      observed=observed, expected=expected)
    if o["id"] != th["os_id"] or not (o["version"] == th["os_major"] or o["version"].startswith(th["os_major"] + ".")):
        return failed(T(f"操作系统为 {o['name'] or o['id']}，文档只支持 CentOS {th['os_major']}.x",
                        f"the OS is {o['name'] or o['id']}; the guide covers CentOS {th['os_major']}.x only"),
                      observed=observed, expected=expected)
    rec = th["os_recommended"]
    if not (o["version"] == rec or o["version"].startswith(rec + ".")):
        return warned(T(f"CentOS {o['version']} 可用，推荐 {rec}", f"CentOS {o['version']} works; {rec} is recommended"),
                      observed=observed, expected=expected)
    return passed(T(f"操作系统为 {o['name']}", f"the OS is {o['name']}"), observed=observed, expected=expected)
