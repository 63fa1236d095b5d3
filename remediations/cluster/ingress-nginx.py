from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="ingress-nginx", scope="cluster", title=T("重新同步 00-ingress-nginx", "sync 00-ingress-nginx again")
)


def plan(facts, ctx):
    return Fix(
        [
            CommandChange(
                "helmfile -f 00-ingress-nginx.yaml.gotmpl sync",
                T("在中控机上同步 00-ingress-nginx", "sync 00-ingress-nginx on the control machine"),
                where="control",
            )
        ]
    )
