"""What `bkdoctor install` does itself inside a phase (builtins), the checks it verifies with (beyond the rules),
and the predicates that make a step not needed (§五.2.1: a default StorageClass means no LocalPV).

Builtins: async (installer, step) -> (ok, detail). Checks: async (installer, arg) -> (ok, message).
Predicates: async (installer) -> bool."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from typing import Any

from bkdoctor.install.steps import (
    Step,
    StepFailed,
    parse_join_commands,
    render,
    shell_path,
    yaml_get,
    yaml_scalar,
    yaml_set_missing,
)
from bkdoctor.model import BadInput
from bkdoctor.safe import yamlfile
from bkdoctor.semver import semver_lt

B64_BLOB = re.compile(r"=([A-Za-z0-9+/]{16,}={0,2})")


def _mask(text: str) -> str:
    return B64_BLOB.sub("=***", text)


def _nodes(inst: Any) -> list[dict[str, Any]]:
    def f(core: Any, access: Any) -> list[dict[str, Any]]:
        return [access.api_client.sanitize_for_serialization(n) for n in core.list_node().items]

    return inst._cluster(f)


def _match_node(host: Any, nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    for n in nodes:
        ips = [
            a.get("address") for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"
        ]
        if n["metadata"]["name"] == host.name or host.address in ips:
            return n
    return None


def _ready(n: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status") or {}).get("conditions") or []
    )


# -- builtins ----------------------------------------------------------------------------------------
async def b_join(inst: Any, step: Step) -> tuple[bool, str]:
    """§三.3: `bcs.sh -i k8sctrl` on the first master prints the join commands (tokens: never logged, never
    stored); each inventory master after the first runs the control-plane one, each node the node one. Hosts
    that are already Nodes are left alone, so a resumed run joins only the missing ones."""
    masters = [h for h in inst.inv.hosts if "master" in h.roles]
    if len(masters) % 2 == 0:
        return False, f"{len(masters)} masters in the inventory: §三.3.2 wants an odd number (1/3/5)"
    nodes = _nodes(inst)
    todo = [(h, "master") for h in masters[1:]] + [(h, "node") for h in inst.hosts_for("nodes", True)]
    todo = [(h, r) for h, r in todo if _match_node(h, nodes) is None]
    if not todo:
        inst.say("    every inventory master and node is a Node already")
        return True, ""
    first = masters[0]
    cmd = render("curl -fsSL @{base}/ce7/bcs.sh | bash -s -- -i k8sctrl", inst.values())
    inst.say(f"    {first.name}: {cmd}  (output not shown: it holds the join tokens)")
    rc, out = await inst.run_on(first, cmd + "\n", 600, None, False)
    if rc != 0:
        tail = "\n".join(_mask(l) for l in out.splitlines()[-5:])
        return False, f"bcs.sh -i k8sctrl failed on {first.name} (exit {rc}):\n{tail}"
    try:
        cmds = parse_join_commands(out)
    except ValueError as e:
        return False, str(e)
    for h, role in todo:
        if role not in cmds:
            return False, f"bcs.sh -i k8sctrl printed no {role} join command"
        inst.say(
            f"    {h.name}: join as {'control plane' if role == 'master' else 'node'} "
            f"(bcs.sh install k8s-{'control-plane' if role == 'master' else 'node'})"
        )
        log = inst.log_dir / f"join-{h.name}.log"
        rc, _ = await inst.run_on(
            h,
            cmds[role] + "\n",
            step.timeout,
            log,
            True,
            f"join as {role} (command from bcs.sh -i k8sctrl, not logged)",
        )
        if rc != 0:
            return False, f"the {role} join command failed on {h.name} (exit {rc}, log {log})"
    return True, ""


async def _read_control(inst: Any, rel: str) -> str | None:
    """A file under blueking/ on the control machine (None when absent)."""
    d = shell_path(inst.inv.install_dir)
    text = f"cd {d} || exit 97\nif [ -e {shlex.quote(rel)} ]; then cat {shlex.quote(rel)}; else exit 3; fi\n"
    rc, out = await inst.run_on(inst.control(), text, 60, None, False)
    if rc == 3:
        return None
    if rc != 0:
        raise StepFailed(f"cannot read {rel} on the control machine (exit {rc})")
    return out


async def _write_control(inst: Any, rel: str, old: str | None, new: str) -> None:
    """Replace a file under blueking/ atomically, only if it still holds what was read (sha256), keeping a
    backup and the mode."""
    import datetime as dt

    d = shell_path(inst.inv.install_dir)
    f = shlex.quote(rel)
    b64 = base64.b64encode(new.encode()).decode()
    ts = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    lines = [f"cd {d} || exit 97", "set -e"]
    if old is None:
        lines.append(f"[ ! -e {f} ] || {{ echo 'bkdoctor: {rel} appeared meanwhile' >&2; exit 4; }}")
    else:
        sha = hashlib.sha256(old.encode()).hexdigest()
        lines.append(
            f"[ \"$(sha256sum < {f} | cut -d' ' -f1)\" = {sha} ] || "
            f"{{ echo 'bkdoctor: {rel} changed meanwhile' >&2; exit 4; }}"
        )
        lines.append(f"cp -p {f} {shlex.quote(rel + '.bak-' + ts)}")
    lines += [
        f'mkdir -p "$(dirname {f})"',
        f"tmp=$(mktemp {shlex.quote(rel + '.bkdoctor.XXXXXX')})",
        f'printf %s {shlex.quote(b64)} | base64 -d > "$tmp"',
    ]
    if old is not None:
        lines.append(f'chmod --reference={f} "$tmp" 2>/dev/null || true')
    else:
        lines.append('chmod 0644 "$tmp"')
    lines.append(f'mv -f "$tmp" {f}')
    rc, out = await inst.run_on(inst.control(), "\n".join(lines) + "\n", 60, None, False)
    if rc != 0:
        raise StepFailed(f"cannot write {rel} on the control machine (exit {rc}): {out.strip()[-200:]}")


async def _docker_root(inst: Any) -> str:
    roots = {}
    for h in inst.hosts_for("k8s-nodes"):
        rc, out = await inst.run_on(h, "docker info --format '{{.DockerRootDir}}'\n", 60, None, False)
        if rc != 0 or not out.strip().startswith("/"):
            raise StepFailed(f"Docker Root Dir of {h.name}: docker info failed (exit {rc})")
        roots[h.name] = out.strip().splitlines()[-1]
    if len(set(roots.values())) != 1:
        raise StepFailed(
            "the nodes' Docker Root Dir differ (§四.4.2 wants one containersLogPath): "
            + ", ".join(f"{k}={v}" for k, v in sorted(roots.items()))
        )
    return next(iter(roots.values())).rstrip("/") + "/containers"


async def _value(inst: Any, spec: Any) -> Any:
    if spec == "@domain":
        if not inst.inv.domain:
            raise StepFailed("BK_DOMAIN unknown")
        return inst.inv.domain
    if spec == "@containers_log_path":
        return await _docker_root(inst)
    if spec == "@default_storage_class":
        sc = inst.default_storage_class()
        if not sc:
            raise StepFailed("no default StorageClass")
        return sc
    return spec


def _same_plus(old: Any, new: Any, added: list[list[str]]) -> bool:
    """`new` is `old` with only the `added` paths more."""
    import copy

    probe = copy.deepcopy(new)
    for path in added:
        cur = probe
        for k in path[:-1]:
            cur = cur[k]
        cur.pop(path[-1])

    # drop the maps that existed only for the added keys
    def prune(a: Any, b: Any) -> Any:  # bottom up: a map left empty that the old file did not have goes
        if not isinstance(a, dict):
            return a
        out = {}
        for k, v in a.items():
            pv = prune(v, b.get(k) if isinstance(b, dict) else None)
            if isinstance(pv, dict) and not pv and not (isinstance(b, dict) and k in b):
                continue
            out[k] = pv
        return out

    return prune(probe, old or {}) == (old or {})


async def b_yaml_keys(inst: Any, step: Step) -> tuple[bool, str]:
    """§四.4.2 / §十一.2.2 / §十一.3: keys a values file under blueking/ must have. Missing keys are added (and
    nothing else changes: the operator's lines, comments and order stay byte for byte); a key the operator set to
    another value is reported and kept (his decision)."""
    rel = step.args["file"]
    text = await _read_control(inst, rel)
    try:  # the one YAML loader: bounded (alias bombs, depth), duplicate keys refused
        data = yamlfile.load(text, rel) if text else {}
    except BadInput as e:
        return False, f"{rel} is not valid YAML ({str(e).splitlines()[0]}): not touched"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return False, f"{rel}: not a mapping: not touched"
    new_text, added, conflicts = text or "", [], []
    for dotted, spec in step.args["set"].items():
        path = dotted.split("/") if "/" in dotted else dotted.split(".")
        want = await _value(inst, spec)
        have = yaml_get(data, path)
        if have is None:
            if any(not isinstance(yaml_get(data, path[:i]), (dict, type(None))) for i in range(1, len(path))):
                conflicts.append(f"{'.'.join(path)}: a parent is not a mapping")
                continue
            new_text = yaml_set_missing(new_text, path, yaml_scalar(want))
            added.append(path)
        elif have != want:
            conflicts.append(f"{'.'.join(path)} is {have!r}, the guide wants {want!r}")
        else:
            inst.say(f"    {'.'.join(path)}: {want} (already)")
    if conflicts:
        return False, f"{rel}: " + "; ".join(conflicts) + " (the file is kept as it is: change it, or the setting)"
    if not added:
        return True, ""
    try:
        check = yamlfile.load(new_text, rel)
    except BadInput:
        check = None
    if (
        not isinstance(check, dict)
        or not _same_plus(data, check, added)
        or any(yaml_get(check, p) is None for p in added)
    ):
        return (
            False,
            f"{rel}: cannot add {', '.join('.'.join(p) for p in added)} without touching other lines "
            "(flow-style YAML?): add them by hand",
        )
    await _write_control(inst, rel, text, new_text)
    for p in added:
        inst.say(f"    {rel}: added {'.'.join(p)}: {yaml_get(check, p)}")
    return True, ""


def ingress_lookup(core: Any, access: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The one ingress lookup the rules use (k8s.find_ingress: the controller Service of §四.6.3's label and its
    controller pods' hostIPs, §六.4.1), and the controller pods; never the admission webhook job's pods, which carry
    app.kubernetes.io/name=ingress-nginx too."""
    from bkdoctor.facts.k8s import INGRESS_POD_LABEL, INGRESS_SVC_LABEL, find_ingress, labels

    ser = access.api_client.sanitize_for_serialization
    svcs = [ser(x) for x in core.list_service_for_all_namespaces(label_selector="=".join(INGRESS_SVC_LABEL)).items]
    pods = [ser(x) for x in core.list_pod_for_all_namespaces(label_selector="=".join(INGRESS_POD_LABEL)).items]
    controllers = [p for p in pods if labels(p).get("app.kubernetes.io/component", "controller") == "controller"]
    return find_ingress(svcs, pods), controllers


async def b_access(inst: Any, step: Step) -> tuple[bool, str]:
    """§六.4.1 / §六.4.3: the hosts entries the operator's own computer needs, and the admin credentials read
    from bk-user-api-general-envs, shown once on the terminal: never logged, never stored."""

    def f(core: Any, access: Any) -> tuple[str | None, dict[str, str]]:
        ing, controllers = ingress_lookup(core, access)
        ip = ing["host_ips"][0] if ing and ing["host_ips"] else None
        for p in controllers if ing and not ip else []:  # no hostIP yet: the controller's Node's InternalIP
            node_name = (p.get("spec") or {}).get("nodeName")
            if node_name:
                node = core.read_node(node_name)
                ip = next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), None)
            if ip:
                break
        cm = core.read_namespaced_config_map("bk-user-api-general-envs", "blueking")
        return ip, dict(cm.data or {})

    ip, data = inst._cluster(f)
    if not ip:
        return False, "no ingress-nginx pod with a node address (§六.4.1)"
    dom = inst.inv.domain
    inst.say("    hosts entries for your computer (or DNS) / 访问蓝鲸所需的 hosts 记录：")
    # §六.4.1's 20 names: the list the hosts-file rule asks of the control machine (one home: thresholds)
    for p in inst.inv.thresholds["hosts_guide_names"]:
        inst.say(f"      {ip} {p + '.' if p else ''}{dom}")
    user, pw = data.get("INITIAL_ADMIN_USERNAME"), data.get("INITIAL_ADMIN_PASSWORD")
    if not user or not pw:
        return False, "bk-user-api-general-envs has no INITIAL_ADMIN_USERNAME/PASSWORD (§六.4.3)"
    inst.show_secret(f"    http://{dom}  user={user}  password={pw}")
    inst.say("    (shown once: bkdoctor neither logs nor stores it / 仅显示一次，不记录)")
    return True, ""


BUILTINS = {"join": b_join, "yaml-keys": b_yaml_keys, "access-info": b_access}


# -- checks ------------------------------------------------------------------------------------------
async def c_nodes_ready(inst: Any, arg: str) -> tuple[bool, str]:
    nodes = _nodes(inst)
    bad = []
    for h in inst.hosts_for("k8s-nodes"):
        n = _match_node(h, nodes)
        if n is None:
            bad.append(f"{h.name} is not a Node")
        elif not _ready(n):
            bad.append(f"{h.name} (Node {n['metadata']['name']}) is not Ready")
    if bad:
        return False, "inventory nodes: " + "; ".join(bad) + " (§三.3)"
    return True, ""


async def c_release(inst: Any, arg: str) -> tuple[bool, str]:
    name, _, version = arg.partition("=")
    at_least = name.endswith(">")  # release:NAME>=VERSION: that chart version or newer (semver, prereleases older)
    name = name.rstrip(">")
    rel = inst._releases().get(name)
    if rel is None:
        return False, f"release {name} is not installed"
    if rel.get("status") != "deployed":
        return False, f"release {name} is {rel.get('status')}"
    if version and at_least:
        from bkdoctor.semver import semver_lt

        try:
            if semver_lt(str(rel.get("chart_version") or ""), version):
                return False, f"release {name} is chart {rel.get('chart_version')}, older than {version}"
        except ValueError:
            return False, f"release {name} has chart version {rel.get('chart_version')!r}, not a version"
    elif version and rel.get("chart_version") != version:
        return False, f"release {name} is chart {rel.get('chart_version')}, not {version}"
    return True, ""


async def c_pods(inst: Any, arg: str) -> tuple[bool, str]:
    def f(core: Any, access: Any) -> list[Any]:
        return core.list_namespaced_pod(arg).items

    pods = inst._cluster(f)
    running = [p for p in pods if p.status and p.status.phase == "Running"]
    if not running:
        return False, f"no running pod in namespace {arg} yet"
    return True, ""


async def c_version_file(inst: Any, arg: str) -> tuple[bool, str]:
    text = await _read_control(inst, "VERSION")
    if text is None:
        return False, "VERSION is missing in the install dir (§十二.2.1)"
    v = text.strip().splitlines()[0].strip() if text.strip() else ""
    try:
        low = semver_lt(v, arg)
    except ValueError:
        return False, f"VERSION {v[:40]!r} is not a version (§十二.2.1)"
    if low:
        return False, f"VERSION {v} < {arg}: upgrade the base suite first (§十二.2.1)"
    return True, ""


CHECKS = {"inventory-nodes-ready": c_nodes_ready, "release": c_release, "pods": c_pods, "version-file": c_version_file}


# -- predicates (true: the step is not needed) -----------------------------------------------------------
async def p_default_sc(inst: Any) -> bool:
    return inst.default_storage_class() is not None


async def p_sc_local(inst: Any) -> bool:
    return inst.default_storage_class() in (None, "local-storage")


async def p_control_is_master(inst: Any) -> bool:
    m = inst.hosts_for("first-master", True)
    return bool(m) and inst.is_control(m[0])


async def p_ingress(inst: Any) -> bool:
    def f(core: Any, access: Any) -> bool:
        ing, controllers = ingress_lookup(core, access)
        return ing is not None and bool(controllers)

    return inst._cluster(f)


async def p_no_registry(inst: Any) -> bool:
    return not getattr(inst.inv, "registry", None)


async def p_bcs_absent(inst: Any) -> bool:
    return "bcs-services-stack" not in inst._releases()


async def p_bcs_new(inst: Any) -> bool:
    text = await _read_control(inst, "environments/default/version.yaml")
    try:
        v = str(
            yaml_get(
                yamlfile.load(text or "", "environments/default/version.yaml") or {}, ["version", "bcs-services-stack"]
            )
            or ""
        )
        return bool(v) and semver_lt("1.28.2", v)
    except (BadInput, ValueError):
        return False


PREDICATES = {
    "default-storageclass": p_default_sc,
    "storageclass-is-local": p_sc_local,
    "control-is-first-master": p_control_is_master,
    "ingress-deployed": p_ingress,
    "no-registry": p_no_registry,
    "bcs-absent": p_bcs_absent,
    "bcs-newer-than-1.28.2": p_bcs_new,
}
PREDICATE_TEXT = {
    "default-storageclass": "a default StorageClass exists (§五.2.1)",
    "storageclass-is-local": "the StorageClass is local-storage (§十一.2.2)",
    "control-is-first-master": "the control machine is the first master (§三.4.2)",
    "ingress-deployed": "ingress-nginx is deployed (§四.6.1)",
    "no-registry": "no REGISTRY set",
    "bcs-absent": "container management is not deployed",
    "bcs-newer-than-1.28.2": "BCS is newer than 1.28.2 (§十一.3)",
}
