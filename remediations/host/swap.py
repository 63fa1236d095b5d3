from bkdoctor.fix.edits import comment_swap_lines
from bkdoctor.fix.fixkit import file_text
from bkdoctor.fix.plan import CommandChange, FileChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="swap", title=T("关闭 swap 并注释 fstab 中的 swap 行", "swapoff -a and comment out the swap lines in /etc/fstab")
)


def plan(facts, ctx):
    changes = []
    if facts.swaps:
        changes.append(CommandChange("swapoff -a", T("立即关闭所有 swap", "turn every swap off now")))
    raw, text = file_text(facts, "fstab", "/etc/fstab")
    if text is not None:
        new = comment_swap_lines(text)
        if new != text:
            changes.append(FileChange("/etc/fstab", raw, new.encode()))
    return Fix(changes)
