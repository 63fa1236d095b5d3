from bkdoctor.fix.fixkit import SYSTEMD
from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(id="time-sync", title=T("启用并启动 chronyd", "enable and start chronyd"))

MANUAL = ["yum install -y chrony", "systemctl enable --now chronyd", "chronyc makestep", "chronyc tracking"]


def plan(facts, ctx):
    ts = facts.time_sync
    if ts["daemons"] and ts["synced"]:
        return Fix()
    systemd = facts.text("systemd_running").strip() == "yes"
    if "chronyd" not in ts["daemons"] and systemd:
        # chronyd installed but not running: enable and start it (whether it is installed is checked on the host)
        return Fix(
            [
                CommandChange(
                    "command -v chronyd >/dev/null 2>&1 || { echo 'chrony is not installed'; exit 3; }; "
                    f"{SYSTEMD} && systemctl enable --now chronyd",
                    T("启用并启动 chronyd", "enable and start chronyd"),
                    undo="systemctl disable --now chronyd",
                )
            ]
        )
    return Fix(manual=MANUAL)
