import shlex

from bkdoctor.fix.edits import add_fstab_lines
from bkdoctor.fix.fixkit import file_text, fstab_dir
from bkdoctor.fix.plan import CommandChange, FileChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="localpv-dirs",
    title=T("创建 vol01..vol20、写入 fstab bind 行并挂载", "create vol01..vol20, add the fstab bind lines, mount them"),
)


def plan(facts, ctx):
    th = ctx.thresholds
    n = th["localpv_count"]
    dst_dir = fstab_dir("localpv_mount_dir", th["localpv_mount_dir"])
    src_dir = fstab_dir("localpv_source_dir", th["localpv_source_dir"])
    dirs = facts.localpv
    mounted = {m["mount_point"].rstrip("/") for m in facts.mounts}
    vols = [f"vol{i:02d}" for i in range(1, n + 1)]
    mk = [f"{d}/{v}" for v in vols for d in (dst_dir, src_dir) if f"{d}/{v}" not in dirs]
    changes = []
    if mk:
        changes.append(
            CommandChange(
                "mkdir -p " + " ".join(shlex.quote(p) for p in mk),
                T(f"创建 {len(mk)} 个目录", f"create {len(mk)} directories"),
            )
        )
    raw, text = file_text(facts, "fstab", "/etc/fstab")
    lines = [f"{src_dir}/{v} {dst_dir}/{v} none defaults,bind 0 0" for v in vols]
    new = add_fstab_lines(text or "", lines)
    if new != (text or ""):
        changes.append(FileChange("/etc/fstab", raw, new.encode()))
    unmounted = [f"{dst_dir}/{v}" for v in vols if f"{dst_dir}/{v}" not in mounted]
    if unmounted:
        changes.append(
            CommandChange(
                "for d in "
                + " ".join(shlex.quote(p) for p in unmounted)
                + '; do mountpoint -q "$d" || mount "$d" || exit 1; done',
                T(f"挂载 {len(unmounted)} 个目录（按 fstab）", f"mount {len(unmounted)} directories (from fstab)"),
                undo=f"umount {shlex.quote(dst_dir)}/vol*",
            )
        )
    return Fix(changes)
