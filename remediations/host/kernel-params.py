from bkdoctor.facts.host import SYSCTL_KEYS, sysctl_at_boot, sysctl_listing
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
# At boot systemd-sysctl reads the sysctl.d files in name order, whatever their directory, and /etc/sysctl.conf last
# (bkdoctor/facts/host.py, SYSCTL_DIRS): the last assignment of a key wins. "90-" sorts after what CentOS 7's packages
# put in /usr/lib/sysctl.d (00-system.conf sets bridge-nf-call-ip6tables/iptables = 0); a file that sorts after it,
# or /etc/sysctl.conf, is the operator's: where one of those sets another value, bkdoctor does not race it with a
# later name nor edit it, it says which line to change (plan() checks the boot order with its file in it).
SYSCTL_PATH = "/etc/sysctl.d/90-bkdoctor.conf"
MODULES_PATH = "/etc/modules-load.d/bkdoctor.conf"


def plan(facts, ctx):
    s = facts.sysctl
    m = facts.modules
    changes = []
    want = {k: "1" for k in SYSCTL_KEYS}
    manual, note = _overridden(facts, sysctl_file(want))
    if manual:
        return Fix(manual=manual, note=note)
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


def _overridden(facts, content):
    """Manual steps and a note when bkdoctor's file would not decide the values at boot: the boot order with the
    file as plan() writes it, and a key whose last assignment is still another file's line (or the file's own name
    is a symlink, a mask)."""
    listing = sysctl_listing(facts.sec("sysctl_files").out.decode("utf-8", "replace"))
    if any(p == SYSCTL_PATH and t is None for p, t in listing):
        return [f"ls -l {SYSCTL_PATH}"], T(
            f"{SYSCTL_PATH} 不是普通文件（符号链接，屏蔽了该文件名）：bkdoctor 不替换它",
            f"{SYSCTL_PATH} is not a regular file (a symlink masks the name): bkdoctor does not replace it",
        )
    boot = sysctl_at_boot([(SYSCTL_PATH, content)] + [(p, t) for p, t in listing if p != SYSCTL_PATH])
    late = {k: w for k in SYSCTL_KEYS if (w := boot["persisted"][k])["value"] != "1"}
    if not late:
        return [], None
    lines = ", ".join(f"{w['file']}:{w['line']} {k} = {w['value']}" for k, w in late.items())
    files = sorted({w["file"] for w in late.values()})
    return [f"vi {f}" for f in files] + ["sysctl --system"], T(
        f"开机时这些行在 {SYSCTL_PATH} 之后读取（sysctl.d 文件按文件名排序，/etc/sysctl.conf 最后读取），"
        f"会覆盖它：{lines}。bkdoctor 不修改非自己的文件，请改为 1 或删除这些行",
        f"at boot these lines are read after {SYSCTL_PATH} (sysctl.d files in name order, /etc/sysctl.conf last) "
        f"and override it: {lines}. bkdoctor does not edit files it does not own: set them to 1 or remove them",
    )
