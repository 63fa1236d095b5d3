from bkdoctor.scan.rulekit import G_OS, HOST_ROLES, K8S_ROLES, Rule, T, failed, passed, warned

RULE = Rule(
    id="os-version",
    title=T("操作系统为 CentOS 7.9 64 位", "Operating system is CentOS 7.9, 64-bit"),
    scope="host",
    severity="medium",
    roles=HOST_ROLES + ("registry-proxy",),
    tags=("preflight", "os"),
    group="host",
    facts=("os",),
    guide=G_OS,  # "CentOS 7.9 64位"
    doc=T(
        "§一.4.1：集群节点（master/node）为 CentOS 7.9 64 位，低于 7.9 为失败；中控机（§一.3.1）最低 CentOS 7.x、推荐 7.9，"
        "低于 7.9 为警告。其他发行版的软件包与内核参数可能不同。",
        "§一.4.1: cluster hosts (master/node) run CentOS 7.9 64-bit, older is a fail; the control machine (§一.3.1) "
        "needs CentOS 7.x, 7.9 recommended, older is a warning. Other distributions differ in packages and kernel "
        "settings.",
    ),
    fix=("cat /etc/centos-release",),
)


def check(facts, ctx):
    o = facts.os
    th = ctx.thresholds
    observed = {"id": o["id"], "version": o["version"], "name": o["name"], "arch": o.get("arch")}
    expected = f"{th['os_id']} {th['os_recommended']} {th['os_arch']}"
    if o.get("arch") != th["os_arch"]:
        # §一.4.1: CentOS 7.9 64位; `uname -m` says x86_64 on a 64-bit system (or the kernel release says what it
        # would: facts.host._UNAME_M)
        if o.get("arch_from") == "kernel release":
            said = T(f"内核版本号表明机器为 {o['arch']}", f"the kernel release names the machine {o['arch']}")
        else:
            said = T(f"uname -m 为 {o.get('arch') or '未知'}", f"uname -m says {o.get('arch') or 'nothing'}")
        return failed(
            T(
                f"{said.zh}，文档要求 64 位（{th['os_arch']}）",
                f"{said.en}; the guide requires 64-bit ({th['os_arch']})",
            ),
            observed=observed,
            expected=expected,
        )
    if o["id"] != th["os_id"] or not (o["version"] == th["os_major"] or o["version"].startswith(th["os_major"] + ".")):
        return failed(
            T(
                f"操作系统为 {o['name'] or o['id']}，文档只支持 CentOS {th['os_major']}.x",
                f"the OS is {o['name'] or o['id']}; the guide covers CentOS {th['os_major']}.x only",
            ),
            observed=observed,
            expected=expected,
        )
    rec = th["os_recommended"]
    if not (o["version"] == rec or o["version"].startswith(rec + ".")):
        if set(K8S_ROLES) & set(ctx.roles):
            # §一.4.1 for the cluster's hosts: 发行版：CentOS 7.9 64位 (no range); only the control machine's table
            # (§一.3.1) has a minimum of CentOS 7.x with 7.9 recommended
            return failed(
                T(
                    f"CentOS {o['version']}：文档要求集群节点为 CentOS {rec} 64位（§一.4.1）",
                    f"CentOS {o['version']}: the guide requires CentOS {rec} 64-bit on cluster hosts (§一.4.1)",
                ),
                observed=observed,
                expected=expected,
            )
        return warned(
            T(f"CentOS {o['version']} 可用，推荐 {rec}", f"CentOS {o['version']} works; {rec} is recommended"),
            observed=observed,
            expected=expected,
        )
    return passed(T(f"操作系统为 {o['name']}", f"the OS is {o['name']}"), observed=observed, expected=expected)
