from bkdoctor.fix.fixkit import SYSTEMD
from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="firewall",
    title=T(
        "停止并禁用 firewalld（不动 K8s 的 iptables 规则）",
        "stop and disable firewalld (iptables rules K8s owns are never flushed)",
    ),
)


def plan(facts, ctx):
    fw = facts.firewalld
    changes, manual = [], []
    if fw["active"] or fw["enabled"]:
        changes.append(
            CommandChange(
                f"if {SYSTEMD}; then systemctl stop firewalld; systemctl disable firewalld; "
                'else p=$(cat /var/run/firewalld.pid 2>/dev/null); [ -n "$p" ] && kill "$p" && '
                'for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done; '
                # what `systemctl disable` removes: the links systemd counts as enabling it (the WantedBy links in
                # any target's directory, the Alias); links only, as systemctl: a file copied into a .wants directory
                # (it starts firewalld at boot too) is the operator's, and the re-check still says enabled
                "for l in /etc/systemd/system/*/firewalld.service "
                '/etc/systemd/system/dbus-org.fedoraproject.FirewallD1.service; do [ -h "$l" ] && rm -f "$l"; done; '
                "true; fi",
                T("停止并禁用 firewalld", "stop and disable firewalld"),
                undo="systemctl enable --now firewalld",
            )
        )
    try:
        ipt = facts.iptables
        if ipt["filtering_rules"] or ipt["drop_policies"]:
            manual.append(
                "iptables -S  # review the operator's own DROP/REJECT rules and remove them by hand; "
                "bkdoctor never flushes iptables"
            )
    except Exception:
        pass
    return Fix(changes, manual=manual if not changes else [])
