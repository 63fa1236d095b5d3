from bkdoctor.facts.host import SYSCTL_KEYS
from bkdoctor.fix.edits import modules_file, sysctl_file
from bkdoctor.fix.plan import CommandChange, FileChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="kernel-params",
    title=T(
        "持久化并应用 ip_forward、bridge-nf-call 与 br_netfilter",
        "persist and apply ip_forward, bridge-nf-call and br_netfilter",
    ),
)
SYSCTL_PATH = "/etc/sysctl.d/90-bkdoctor.conf"
MODULES_PATH = "/etc/modules-load.d/bkdoctor.conf"


def plan(facts, ctx):
    s = facts.sysctl
    m = facts.modules
    changes = []
    want = {k: "1" for k in SYSCTL_KEYS}
    # bkdoctor owns these two files: written whole, only when they differ from what they must hold
    for path, section, content in (
        (SYSCTL_PATH, None, sysctl_file(want)),
        (MODULES_PATH, None, modules_file(["br_netfilter"])),
    ):
        cur = _read(facts, path)
        needed = (
            path == SYSCTL_PATH and any((s["persisted"].get(k) or {}).get("value") != "1" for k in SYSCTL_KEYS)
        ) or (path == MODULES_PATH and "br_netfilter" not in m["persisted"])
        if needed and (cur is None or cur != content.encode()):
            changes.append(FileChange(path, cur, content.encode()))
    if any(s["runtime"].get(k) != "1" for k in SYSCTL_KEYS):
        changes.append(
            CommandChange(
                "modprobe br_netfilter 2>/dev/null || test -e /proc/sys/net/bridge/bridge-nf-call-iptables; "
                + "; ".join(f"sysctl -qw {k}=1" for k in SYSCTL_KEYS),
                T("立即加载 br_netfilter 并设置参数", "load br_netfilter and set the values now"),
            )
        )
    return Fix(changes)


def _read(facts, path):
    """Current content of a bkdoctor-owned file, from the probe's sysctl/modules-load listings."""
    section = "sysctl_files" if path.startswith("/etc/sysctl.d") else "modules_load"
    text = facts.sec(section).out.decode("utf-8", "replace")
    marker = f"### {path}\n"
    if marker not in text:
        return None
    body = text.split(marker, 1)[1]
    nxt = body.find("\n### ")
    body = body if nxt < 0 else body[: nxt + 1]
    return body[:-1].encode() if body.endswith("\n\n") else body.encode()
