import shlex

from bkdoctor.facts.k8s import ingress_controller_pods, ingress_controller_service, md
from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="ingress-nginx", scope="cluster", title=T("重新同步 00-ingress-nginx", "sync 00-ingress-nginx again")
)


def plan(facts, ctx):
    svc = ingress_controller_service(facts.get("services"))
    pods = ingress_controller_pods(facts.get("pods"))
    if svc is not None and pods:
        # the release is there and its controller pods exist, none ready (crash-looping, pending, failing probes):
        # a sync re-applies the same chart and restarts nothing, so it cannot be the fix. Why they are not ready
        # is read by hand (not in the guide: kubectl's own diagnostics).
        steps = []
        for p in pods[:5]:
            ns, name = shlex.quote(md(p).get("namespace") or "default"), shlex.quote(md(p).get("name") or "?")
            steps += [f"kubectl -n {ns} describe pod {name}", f"kubectl -n {ns} logs {name} --previous"]
        return Fix(manual=steps + ["# then, once the cause is mended: helmfile -f 00-ingress-nginx.yaml.gotmpl sync"])
    return Fix(
        [
            CommandChange(
                "helmfile -f 00-ingress-nginx.yaml.gotmpl sync",
                T("在中控机上同步 00-ingress-nginx", "sync 00-ingress-nginx on the control machine"),
                where="control",
            )
        ]
    )
