from bkdoctor.fix.fixkit import daemon_json_plan
from bkdoctor.fix.plan import Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="registry-mirrors",
    title=T(
        "在 registry-mirrors 中加入镜像缓存代理并 reload dockerd",
        "add the registry proxy to registry-mirrors and reload dockerd",
    ),
)


def plan(facts, ctx):
    if not ctx.registry_proxies:
        return Fix()
    return daemon_json_plan(facts, "registry-mirrors", sorted(ctx.registry_proxies))
