import importlib.util
from pathlib import Path

from bkdoctor.fix.plan import Plan, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(id="registry-mirrors", rule="registry-mirrors",
                          title=T("在 registry-mirrors 中加入镜像缓存代理并 reload dockerd",
                                  "add the registry proxy to registry-mirrors and reload dockerd"))

_spec = importlib.util.spec_from_file_location("bkdoctor_remediations._ir", Path(__file__).with_name("insecure-registries.py"))
_ir = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ir)


def plan(facts, ctx):
    if not ctx.registry_proxies:
        return Plan("registry-mirrors", ctx.target, "registry-mirrors", [])
    return _ir.daemon_json_plan(facts, ctx, "registry-mirrors", sorted(ctx.registry_proxies), "registry-mirrors")
