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


# §二.4.2 says 生效方式：重启Docker服务或Node节点; the fix reloads instead (§七.4.1.1's command, the same dockerd
# SIGHUP): registry-mirrors is one of dockerd's reloadable keys, so no container stops. Not in the guide for this key:
# the re-check (docker info's Registry Mirrors) shows it live, and a restart stays the operator's choice.
def plan(facts, ctx):
    if not ctx.registry_proxies:
        return Fix()
    return daemon_json_plan(facts, "registry-mirrors", sorted(ctx.registry_proxies))
