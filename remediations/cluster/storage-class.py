from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="storage-class",
    scope="cluster",
    title=T("重新同步 00-localpv（默认 StorageClass 与 PV）", "sync 00-localpv again (default StorageClass and PVs)"),
)
DEFAULT = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def plan(facts, ctx):
    scs = facts.get("storageclasses")
    has_default = any((s.get("metadata", {}).get("annotations") or {}).get(a) == "true" for s in scs for a in DEFAULT)
    if has_default:
        # PVCs pending for want of PVs: more LocalPV directories are needed on the nodes, a host-side job
        return Fix(
            manual=[
                "bkdoctor fix --rule localpv-dirs",
                "kubectl get pv,pvc -A",
                "helmfile -f 00-localpv.yaml.gotmpl sync",
            ]
        )
    return Fix(
        [
            CommandChange(
                "helmfile -f 00-localpv.yaml.gotmpl sync",
                T("在中控机上同步 00-localpv", "sync 00-localpv on the control machine"),
                where="control",
            )
        ]
    )
