from bkdoctor.facts.host import SYSCTL_KEYS
from bkdoctor.scan.rulekit import K8S_ROLES, NOT_IN_GUIDE, Rule, T, failed, passed, warned

RULE = Rule(
    id="kernel-params",
    title=T(
        "内核参数：ip_forward、bridge-nf-call、br_netfilter",
        "Kernel settings: ip_forward, bridge-nf-call, br_netfilter",
    ),
    scope="host",
    severity="high",
    roles=K8S_ROLES,
    tags=("preflight", "os", "network", "k8s"),
    group="host",
    facts=("sysctl", "modules"),
    guide=NOT_IN_GUIDE,
    doc=T(
        "K8s 网络需要 net.ipv4.ip_forward=1、net.bridge.bridge-nf-call-iptables/ip6tables=1，并加载 br_netfilter。"
        "bcs.sh 只做了 modprobe 没有持久化：重启后丢失，需写入 /etc/sysctl.d 与 /etc/modules-load.d。"
        "“已持久化”按 CentOS 7.9 开机时 systemd-sysctl 的顺序判断：/etc、/run、/usr/local/lib、/usr/lib 下的 sysctl.d "
        "文件按文件名排序读取（同名文件以前面的目录为准），/etc/sysctl.conf 最后读取，同一参数以最后一次赋值为准"
        "（/usr/lib/sysctl.d/00-system.conf 把 bridge-nf-call-* 设为 0）。",
        "K8s networking needs net.ipv4.ip_forward=1, net.bridge.bridge-nf-call-iptables/ip6tables=1 and br_netfilter "
        "loaded. bcs.sh runs modprobe without persisting it: after a reboot it is gone unless it is in "
        "/etc/sysctl.d and /etc/modules-load.d. Persisted means what systemd-sysctl applies at boot on CentOS 7.9: "
        "the sysctl.d files of /etc, /run, /usr/local/lib and /usr/lib read in file-name order (of two files with "
        "one name, the earlier directory's), /etc/sysctl.conf last; a key's last assignment wins "
        "(/usr/lib/sysctl.d/00-system.conf sets bridge-nf-call-* = 0).",
    ),
    fix=(
        "modprobe br_netfilter",
        "echo br_netfilter > /etc/modules-load.d/bkdoctor.conf",
        "printf 'net.ipv4.ip_forward = 1\\nnet.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\n' "
        "> /etc/sysctl.d/90-bkdoctor.conf",
        "sysctl --system",
    ),
)


def check(facts, ctx):
    s = facts.sysctl
    m = facts.modules
    # the bridge-nf-call sysctls exist only while br_netfilter is active: that also covers a built-in
    # br_netfilter, which /proc/modules does not list
    br_loaded = "br_netfilter" in m["loaded"] or s["runtime"].get("net.bridge.bridge-nf-call-iptables") is not None
    br_persisted = "br_netfilter" in m["persisted"]
    observed = {
        "runtime": {k: s["runtime"].get(k) for k in SYSCTL_KEYS},
        "br_netfilter_loaded": br_loaded,
        "persisted": {k: (s["persisted"].get(k) or {}).get("value") for k in SYSCTL_KEYS},
        # the line that wins at boot (facts/host.py: sysctl_at_boot)
        "persisted_by": {k: _where(s["persisted"].get(k)) for k in SYSCTL_KEYS},
        "br_netfilter_persisted": br_persisted,
    }
    expected = {k: "1" for k in SYSCTL_KEYS} | {"br_netfilter": "loaded and in modules-load.d"}
    wrong = [f"{k}={s['runtime'].get(k) or 'absent'}" for k in SYSCTL_KEYS if s["runtime"].get(k) != "1"]
    if not br_loaded:
        wrong.append("br_netfilter not loaded")
    if wrong:
        txt = ", ".join(wrong)
        return failed(
            T(f"运行时内核参数不正确：{txt}", f"runtime kernel settings are wrong: {txt}"),
            observed=observed,
            expected=expected,
            evidence={"sysctl": facts.raw("sysctl").get("sysctl_runtime", "")},
        )
    unpersisted = [
        k if not w else f"{k} = {w['value']} ({_where(w)})"
        for k in SYSCTL_KEYS
        if (w := s["persisted"].get(k) or {}).get("value") != "1"
    ]
    if not br_persisted:
        unpersisted.append("br_netfilter (modules-load.d)")
    if unpersisted:
        txt = ", ".join(unpersisted)
        return warned(
            T(f"当前生效，但未持久化，重启后会丢失：{txt}", f"correct now but not persisted, lost at reboot: {txt}"),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            "ip_forward、bridge-nf-call-iptables/ip6tables 为 1，br_netfilter 已加载并持久化",
            "ip_forward and bridge-nf-call-iptables/ip6tables are 1, br_netfilter is loaded and persisted",
        ),
        observed=observed,
        expected=expected,
    )


def _where(w):
    return f"{w['file']}:{w['line']}" if w else None
