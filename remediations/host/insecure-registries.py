import json
import shlex

from bkdoctor.fix.edits import EditError, daemon_json_add
from bkdoctor.fix.plan import DOCKER_RELOAD, CommandChange, FileChange, Plan, Remediation, check_domain, file_text
from bkdoctor.model import FactUnavailable, T

REMEDIATION = Remediation(id="insecure-registries", rule="insecure-registries",
                          title=T("把 docker.<域名> 加入 insecure-registries 并 reload dockerd",
                                  "add docker.<domain> to insecure-registries and reload dockerd"))


def plan(facts, ctx):
    want = f"docker.{check_domain(ctx.domain)}"
    return daemon_json_plan(facts, ctx, "insecure-registries", [want], "insecure-registries")


def daemon_json_plan(facts, ctx, key, values, rule):
    if not (facts.docker or {}).get("info"):
        # without a running daemon the change can be neither applied live nor verified
        # a jq program and every value in it as shell words (values from the inventory: quoted, JSON-encoded)
        program = f".[{json.dumps(key)}] = ((.[{json.dumps(key)}] // []) as $have | $have + ({json.dumps(list(values))} - $have))"
        return Plan(rule, ctx.target, rule, [], manual=[
            f"jq {shlex.quote(program)} /etc/docker/daemon.json > /tmp/daemon.json.new  # review, then copy back",
            "systemctl start docker", f"docker info | grep -iA3 {shlex.quote(key.replace('-', ' '))}"])
    raw, text = file_text(facts, "daemon_json", "/etc/docker/daemon.json")
    changes = []
    try:
        new = daemon_json_add(text or "", key, values)
    except EditError as e:
        raise FactUnavailable(T(f"不修改 /etc/docker/daemon.json：{e}", f"not touching /etc/docker/daemon.json: {e}"))
    if new != (text or ""):
        changes.append(FileChange("/etc/docker/daemon.json", raw, new.encode()))
    info = (facts.docker or {}).get("info") or {}
    live = set()
    rc = info.get("RegistryConfig") or {}
    if key == "insecure-registries":
        live = {n for n, ic in (rc.get("IndexConfigs") or {}).items() if isinstance(ic, dict) and ic.get("Secure") is False}
    else:
        live = {m.rstrip("/") for m in rc.get("Mirrors") or []}
    if changes or not all(v.rstrip("/") in live for v in values):
        # SIGHUP: insecure-registries and registry-mirrors apply live, no restart (containers keep running)
        changes.append(CommandChange(DOCKER_RELOAD, T("reload dockerd（SIGHUP，不重启容器）", "reload dockerd (SIGHUP, containers keep running)")))
    return Plan(rule, ctx.target, rule, changes)
