import shlex

from bkdoctor.fix.fixkit import SYSTEMD
from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(id="timezone", title=T("时区设为 Asia/Shanghai", "set the time zone to Asia/Shanghai"))


def plan(facts, ctx):
    want = ctx.thresholds["timezone"]
    tz = facts.timezone
    if tz["zone"] == want:
        return Fix()
    q = shlex.quote(want)
    old = tz["localtime_target"]
    return Fix(
        [
            CommandChange(
                f"test -e /usr/share/zoneinfo/{q} || exit 3; "
                f"if {SYSTEMD} && command -v timedatectl >/dev/null 2>&1; then timedatectl set-timezone {q}; "
                f"else ln -sfn ../usr/share/zoneinfo/{q} /etc/localtime.bkdoctor && mv -f /etc/localtime.bkdoctor /etc/localtime; fi",
                T(f"把时区设为 {want}", f"set the time zone to {want}"),
                # the link's old target is the host's own text: a value, never code nor an option (`--`)
                undo=f"ln -sfn -- {shlex.quote(old)} /etc/localtime" if old else None,
            )
        ]
    )
