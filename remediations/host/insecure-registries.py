from bkdoctor.fix.fixkit import check_domain, daemon_json_plan
from bkdoctor.fix.plan import Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="insecure-registries",
    title=T(
        "把 docker.<域名> 加入 insecure-registries 并 reload dockerd",
        "add docker.<domain> to insecure-registries and reload dockerd",
    ),
)


def plan(facts, ctx):
    return daemon_json_plan(facts, "insecure-registries", [f"docker.{check_domain(ctx.domain)}"])
