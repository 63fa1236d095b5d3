from bkdoctor.fix.edits import set_selinux_disabled
from bkdoctor.fix.fixkit import file_text
from bkdoctor.fix.plan import CommandChange, FileChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="selinux",
    title=T("setenforce 0，并在配置中禁用 SELinux", "setenforce 0 and SELINUX=disabled in /etc/selinux/config"),
)


def plan(facts, ctx):
    s = facts.selinux
    changes = []
    if s["runtime"] == "enforcing":
        # what setenforce does; selinuxfs is the same interface where the command is missing
        changes.append(
            CommandChange(
                "if command -v setenforce >/dev/null 2>&1; then setenforce 0; "
                "else echo 0 > /sys/fs/selinux/enforce; fi",
                T("运行时切换为 permissive", "switch to permissive now"),
                undo="setenforce 1",
            )
        )
    raw, text = file_text(facts, "selinux_config", "/etc/selinux/config")
    if text is not None:
        new = set_selinux_disabled(text)
        if new != text:
            changes.append(FileChange("/etc/selinux/config", raw, new.encode()))
    # getenforce says Disabled (§一.4.2) only after a reboot: bkdoctor never reboots a host, the operator does
    reboot = ["reboot  # then getenforce says Disabled (§一.4.2)"] if s["runtime"] != "disabled" else []
    note = (
        T(
            "重启后 SELinux 才会完全禁用（getenforce 显示 Disabled）",
            "a reboot completes it (getenforce then says Disabled)",
        )
        if changes and reboot
        else None
    )
    return Fix(changes, manual=reboot, note=note)
