"""Support bundle: `bkdoctor collect -o bundle.tar.gz`, then `bkdoctor scan --bundle bundle.tar.gz` elsewhere.

The bundle holds what the rules read: each host's raw probe sections, its Docker Engine answers and clock
sample, and the cluster objects and failing-pod log tails, with the ConfigMaps the API refused by name (so a
refused one reads as an error offline too, not as absent). Secrets are removed before anything is written:
Secret objects are never listed except helm release Secrets, which are reduced to chart, version and status;
everything else goes through bkdoctor/safe/secrets.py (masked by key name and by value shape: URL userinfo, auth
headers, -p/--password flags, password= options, ...): host files, Docker answers, cluster objects, logs and the
manifest. Replaying the bundle runs the same rules on the same facts, so it gives the same findings.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import tarfile
import tempfile
import zlib
from typing import Any

from bkdoctor import __version__
from bkdoctor.facts.cluster import ClusterFacts
from bkdoctor.facts.host import HostFacts
from bkdoctor.facts.probe import Section
from bkdoctor.model import BadInput, T
from bkdoctor.safe.secrets import mask_bytes, mask_obj, mask_text
from bkdoctor.scan.engine import TargetState

SCHEMA = "bkdoctor/bundle/v1"


def _section_out(name: str, out: bytes) -> bytes:
    if name == "daemon_json":
        try:
            return (json.dumps(mask_obj(json.loads(out)), indent=2) + "\n").encode()
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
    return mask_bytes(out)


def _host_doc(t: TargetState) -> dict[str, Any]:
    f = t.facts
    doc: dict[str, Any] = {
        "name": t.name,
        "kind": t.kind,
        "address": mask_text(t.address or "") or t.address,
        "roles": list(t.roles),
        "reachable": t.reachable,
        "error": mask_text(t.error) if t.error else t.error,
        "gather_s": t.gather_s,
    }
    if f is not None:
        doc["sections"] = {
            n: {"rc": s.rc, "out": base64.b64encode(_section_out(n, s.out)).decode()} for n, s in f.sections.items()
        }
        doc["docker_api"] = mask_obj(f.docker_api) if f.docker_api is not None else None
        doc["docker_api_error"] = mask_text(f.docker_api_error) if f.docker_api_error else f.docker_api_error
        doc["extra"] = mask_obj(
            {
                k: (v if isinstance(v, dict) else {"__error__": {"zh": v.reason.zh, "en": v.reason.en}})
                for k, v in f.extra.items()
            }
        )
    return doc


def _cluster_doc(st: TargetState | None, cf: ClusterFacts | None) -> dict[str, Any] | None:
    if st is None or cf is None:
        return None
    kinds: dict[str, Any] = {"__name__": st.name, "__server__": st.address}
    for k, v in cf._cache.items():
        if k.startswith("log:"):
            continue
        if hasattr(v, "reason"):
            kinds[k] = {"__error__": {"zh": v.reason.zh, "en": v.reason.en}}
        elif k == "configmaps":
            kinds[k] = {name: {**cm, "data": cm.get("data") or {}} for name, cm in v.items()}
            for cm in kinds[k].values():
                cm.pop("binaryData", None)
        elif k == "helm_secrets":
            continue  # never: payloads are reduced into helm_releases
        else:
            kinds[k] = v
    # the ConfigMap names refused alone (RBAC granting others): without them a refused name would look absent
    # offline, and its reader fail where the live scan says error. Absent from older bundles: none refused
    cm_errors = {
        name: {"zh": e.reason.zh, "en": e.reason.en, "status": e.status} for name, e in cf.configmap_errors.items()
    }
    doc = {"name": st.name, "server": st.address, "reachable": st.reachable, "error": st.error, "kinds": kinds}
    if cm_errors:
        doc["configmap_errors"] = cm_errors
    # every kind (ConfigMaps, pod specs and their args, events, logs, ...) by key and by value shape
    return mask_obj(doc)


def write_bundle(result: Any, path: str) -> dict[str, Any]:
    """Write the bundle of a finished scan (its targets keep their facts). Atomic: temp file + rename."""
    inv = result.inventory
    hosts = [t for t in result.targets if t.kind == "host"]
    cst = next((t for t in result.targets if t.kind == "cluster"), None)
    manifest = mask_obj(
        {
            "schema": SCHEMA,
            "tool": {"name": "bkdoctor", "version": __version__},
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "scan_id": result.id,
            "domain": inv.domain,
            "install_dir": inv.install_dir,
            "ingress_ip": inv.ingress_ip,
            "thresholds": inv.thresholds,
            "rules": [r.id for r in result.rules],
            "hosts": [h.name for h in hosts],
            "cluster": cst.name if cst else None,
        }
    )
    files = {"manifest.json": manifest, "cluster.json": _cluster_doc(cst, result.extra.get("cluster_facts"))}
    for h in hosts:
        files[f"hosts/{h.name}.json"] = _host_doc(h)
    # a new file of our own (O_EXCL, 0600) beside the bundle: a name known in advance could be a link planted in a
    # shared directory, and the bundle written over its target
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for name, doc in files.items():
                data = json.dumps(doc, ensure_ascii=False, indent=1, default=str).encode()
                info = tarfile.TarInfo(f"bkdoctor-bundle/{name}")
                info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now().timestamp())
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return manifest


# Sized from the cluster bench (bench/cluster.py: 200 nodes, 5,000 pods, 20,000 events, 300 releases, 500 services,
# 400 PVs, 292 failing-pod log tails), its objects written as write_bundle does (json indent=1): cluster.json is
# ~50 MB and opens ~446,000 containers ('[' and '{', those inside strings counted: a pod ~55, a node ~67, an event
# ~5, the log tails ~51,000); a host's member (sections as base64, Docker /version and /info) is a few hundred.
MAX_MEMBER = 256 * 1024 * 1024  # one member: ~5x the bench's cluster.json
MAX_TOTAL = 512 * 1024 * 1024  # all members together, read or skipped
MAX_MEMBERS = 100_000
# containers opened in all the JSON members together, counted on the bytes before any is parsed: ~5x the bench
# bundle (~0.5 M). Parsed, an empty list or mapping costs ~90 bytes: 20 MiB of `[[],[],...]` (7 M) peaked at
# 612 MB RSS; at this bound a hostile bundle holds ~250 MB of them at most
MAX_CONTAINERS = 2_500_000


def _bad(path: str, what: T) -> BadInput:
    return BadInput(T(f"支持包 {path}: {what.zh}", f"bundle {path}: {what.en}"))


def _read_members(path: str) -> dict[str, Any]:
    """The bundle's JSON members, read as a stream (never a member larger than MAX_MEMBER, never more than
    MAX_TOTAL in all, the members it does not read too: a 500 KB file may hold a 512 MiB member). Only the names a
    bundle has are read."""
    from bkdoctor.safe.names import valid_host_name

    try:
        tar = tarfile.open(path, "r|gz")
    except FileNotFoundError:
        raise _bad(path, T("文件不存在", "no such file")) from None
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise _bad(path, T(f"不是 bkdoctor 支持包（{e}）", f"not a bkdoctor bundle ({e})")) from None
    docs: dict[str, Any] = {}
    data = b""
    total = containers = 0
    try:
        with tar:
            for n, m in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise _bad(path, T(f"成员超过 {MAX_MEMBERS:,} 个", f"more than {MAX_MEMBERS:,} members"))
                # every member counts, read or not: skipping one in a gzip stream inflates it all the same
                total += max(m.size, 0)
                if total > MAX_TOTAL:
                    raise _bad(
                        path,
                        T(f"成员合计超过 {MAX_TOTAL // 2**20} MiB", f"more than {MAX_TOTAL // 2**20} MiB of members"),
                    )
                if not m.isfile() or not m.name.startswith("bkdoctor-bundle/"):
                    continue
                name = m.name[len("bkdoctor-bundle/") :]
                if name not in ("manifest.json", "cluster.json") and not (
                    name.startswith("hosts/") and name.endswith(".json") and valid_host_name(name[6:-5])
                ):
                    continue
                if m.size > MAX_MEMBER:
                    raise _bad(
                        path,
                        T(
                            f"{m.name}: {m.size:,} 字节，超过单个成员允许的 {MAX_MEMBER // 2**20} MiB",
                            f"{m.name}: {m.size:,} bytes, more than the {MAX_MEMBER // 2**20} MiB a member may have",
                        ),
                    )
                fh = tar.extractfile(m)
                data = fh.read(MAX_MEMBER + 1) if fh else b""
                # counted before parsing (a bracket inside a string counts too: the bound errs on the safe side)
                containers += data.count(b"[") + data.count(b"{")
                if containers > MAX_CONTAINERS:
                    raise _bad(
                        path,
                        T(
                            f"{m.name}: 成员合计超过 {MAX_CONTAINERS:,} 个列表/映射（'[' 与 '{{'）",
                            f"{m.name}: more than {MAX_CONTAINERS:,} lists and mappings ('[' and '{{') in all members",
                        ),
                    )
                try:
                    docs[name] = json.loads(data, parse_constant=_no_constant)
                    # a "\ud800" escape decodes to a lone surrogate: not text, and no report could be written with it
                    json.dumps(docs[name], ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError:
                    raise _bad(
                        path,
                        T(
                            f"{m.name}: 字符串中有孤立的代理字符（\\ud800-\\udfff）: 不是文本",
                            f"{m.name}: a string holds a lone surrogate (\\ud800-\\udfff): not text",
                        ),
                    ) from None
                except RecursionError:
                    raise _bad(path, T(f"{m.name}: 嵌套过深", f"{m.name}: nested too deep")) from None
                except (ValueError, UnicodeDecodeError) as e:
                    raise _bad(
                        path, T(f"{m.name}: 不是有效的 JSON: {str(e)[:200]}", f"{m.name}: {str(e)[:200]}")
                    ) from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise _bad(path, T(f"支持包无法读取（{str(e)[:200]}）", f"not a readable bundle ({str(e)[:200]})")) from None
    except MemoryError:
        pass  # refused below, once this handler has let go of the error and of the frames that held the memory
    else:
        return docs
    del docs, data  # what was read goes before the line is formatted
    raise _bad(
        path, T("可用内存不足以读取此支持包（MemoryError）", "too large to read in the memory available (MemoryError)")
    )


def _no_constant(s: str) -> Any:
    raise ValueError(f"{s} is not a JSON number (a bundle never holds one)")


_LIST_KINDS = ("nodes", "pods", "services", "events", "pvs", "pvcs", "storageclasses", "jobs")


def _check_kinds(path: str, kinds: dict[str, Any]) -> None:
    """The types the cluster rules rely on, checked at load: a rule must not crash on `nodes: "x"`."""
    for k, v in kinds.items():
        where = f"cluster.json: kinds.{str(k)[:60]}"
        if k in ("__name__", "__server__"):
            _typed(path, where, v, (str, type(None)), "a string or null")
            continue
        if isinstance(v, dict) and "__error__" in v:
            err = v["__error__"]
            if not isinstance(err, dict) or not isinstance(err.get("zh"), str) or not isinstance(err.get("en"), str):
                raise _bad(
                    path, T(f"{where}.__error__: 需要 zh 和 en 两种文本", f"{where}.__error__: needs zh and en texts")
                )
            continue
        if k in _LIST_KINDS or k == "helm_releases":
            for i, item in enumerate(_typed(path, where, v, list, "a list")):
                _typed(path, f"{where}[{i}]", item, dict, "a mapping")
                if k == "helm_releases":
                    for f in ("namespace", "name", "status", "chart", "chart_version", "app_version", "error"):
                        _typed(path, f"{where}[{i}].{f}", item.get(f), (str, type(None)), "a string or null")
                    for f in ("revision", "revisions"):
                        _typed(path, f"{where}[{i}].{f}", item.get(f, 0), int, "a number")
                    _typed(
                        path, f"{where}[{i}].last_good", item.get("last_good"), (int, type(None)), "a number or null"
                    )
                    continue
                for f in ("metadata", "spec", "status"):
                    sub = _typed(path, f"{where}[{i}].{f}", item.get(f), (dict, type(None)), "a mapping")
                    if f == "metadata" and sub:
                        for g in ("name", "namespace"):
                            _typed(
                                path, f"{where}[{i}].metadata.{g}", sub.get(g), (str, type(None)), "a string or null"
                            )
                        for g in ("labels", "annotations"):
                            _typed(path, f"{where}[{i}].metadata.{g}", sub.get(g), (dict, type(None)), "a mapping")
        elif k == "version":
            _typed(path, where, v, dict, "a mapping")
            for f in ("gitVersion", "major", "minor"):
                _typed(path, f"{where}.{f}", v.get(f), (str, type(None)), "a string or null")
        elif k == "configmaps":
            for name, cm in _typed(path, where, v, dict, "a mapping").items():
                _typed(path, f"{where}.{str(name)[:60]}", cm, dict, "a mapping")
                data = _typed(path, f"{where}.{str(name)[:60]}.data", cm.get("data"), (dict, type(None)), "a mapping")
                for dk, dv in (data or {}).items():
                    _typed(path, f"{where}.{str(name)[:60]}.data.{str(dk)[:60]}", dv, str, "a string")
        elif k == "logs":
            for name, text in _typed(path, where, v, dict, "a mapping").items():
                _typed(path, f"{where}.{str(name)[:60]}", text, str, "a string")
        else:
            _typed(path, where, v, (list, dict), "a list or a mapping")


def _check_extra(path: str, where: str, k: str, v: dict[str, Any]) -> None:
    if k == "clock_offset":
        for f in ("offset_s", "rtt_s"):
            _typed(path, f"{where}: extra.{k}.{f}", v.get(f), (int, float), "a number")


# what _typed says a value must be, in Chinese
_WHAT_ZH = {
    "a string": "字符串",
    "a string or null": "字符串或 null",
    "a number": "数字",
    "a number or null": "数字或 null",
    "a mapping": "映射（mapping）",
    "a mapping or null": "映射（mapping）或 null",
    "a list": "列表",
    "a list or a mapping": "列表或映射（mapping）",
    "a list of host names": "主机名列表",
    "a list of roles": "角色列表",
}


def _typed(path: str, where: str, value: Any, types: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, types):
        raise _bad(path, T(f"{where}: 须为{_WHAT_ZH[what]}", f"{where}: must be {what}"))
    return value


def _check_manifest(path: str, manifest: Any) -> dict[str, Any]:
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.safe.names import valid_host_name, why_not

    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise _bad(path, T(f"没有 {SCHEMA} manifest", f"no {SCHEMA} manifest"))
    for key in ("domain", "install_dir", "ingress_ip", "cluster"):
        _typed(path, f"manifest.{key}", manifest.get(key), (str, type(None)), "a string or null")
    hosts = _typed(path, "manifest.hosts", manifest.get("hosts") or [], list, "a list of host names")
    for h in hosts:
        if not valid_host_name(h):
            raise _bad(path, T(f"manifest.hosts 有误: {why_not(h).zh}", f"manifest.hosts: {why_not(h).en}"))
    if len(set(hosts)) != len(hosts):
        raise _bad(path, T("manifest.hosts: 有主机重复列出", "manifest.hosts: a host is listed twice"))
    try:
        manifest["thresholds"] = th.merge(manifest.get("thresholds"))  # validated like an inventory's
    except th.ThresholdError as e:
        raise _bad(path, T(f"manifest: {e.text.zh}", f"manifest: {e}")) from None
    return manifest


def _host_target(path: str, name: str, d: Any) -> TargetState:
    from bkdoctor.facts.host import FactUnavailable
    from bkdoctor.model import ROLES, T

    where = f"hosts/{name}.json"
    if not isinstance(d, dict):
        raise _bad(path, T(f"缺少 {where}", f"{where} missing"))
    if d.get("name") != name:
        raise _bad(path, T(f"{where}: name 须为 {name!r}", f"{where}: name must be {name!r}"))
    roles = _typed(path, f"{where}: roles", d.get("roles") or [], list, "a list of roles")
    if not all(r in ROLES for r in roles):
        raise _bad(
            path,
            T(
                f"{where}: roles: 每一项须为 {', '.join(ROLES)} 之一",
                f"{where}: roles: each must be one of {', '.join(ROLES)}",
            ),
        )
    for key in ("address", "error", "docker_api_error"):
        _typed(path, f"{where}: {key}", d.get(key), (str, type(None)), "a string or null")
    gather_s = _typed(path, f"{where}: gather_s", d.get("gather_s"), (int, float, type(None)), "a number or null")
    facts = None
    sections = d.get("sections")
    if sections is not None:
        _typed(path, f"{where}: sections", sections, dict, "a mapping")
        secs = {}
        for n, v in sections.items():
            if not isinstance(v, dict) or not isinstance(v.get("out"), str):
                raise _bad(
                    path,
                    T(
                        f"{where}: sections.{n}: 需要 `out`（base64 文本）",
                        f"{where}: sections.{n}: needs `out` (base64 text)",
                    ),
                )
            rc = v.get("rc")
            if rc is not None and (not isinstance(rc, int) or isinstance(rc, bool)):
                raise _bad(
                    path,
                    T(
                        f"{where}: sections.{n}.rc: 须为数字或 null",
                        f"{where}: sections.{n}.rc: must be a number or null",
                    ),
                )
            try:
                out = base64.b64decode(v["out"], validate=True)
            except ValueError:
                raise _bad(
                    path, T(f"{where}: sections.{n}.out: 不是 base64", f"{where}: sections.{n}.out: not base64")
                ) from None
            secs[n] = Section(n, rc, out)
        extra = {}
        for k, v in _typed(path, f"{where}: extra", d.get("extra") or {}, dict, "a mapping").items():
            _typed(path, f"{where}: extra.{k}", v, dict, "a mapping")
            if "__error__" in v:
                err = v["__error__"]
                if (
                    not isinstance(err, dict)
                    or not isinstance(err.get("zh"), str)
                    or not isinstance(err.get("en"), str)
                ):
                    raise _bad(
                        path,
                        T(
                            f"{where}: extra.{k}.__error__: 需要 zh 和 en 两种文本",
                            f"{where}: extra.{k}.__error__: needs zh and en texts",
                        ),
                    )
                extra[k] = FactUnavailable(T(err["zh"], err["en"]))
            else:
                _check_extra(path, where, k, v)
                extra[k] = v
        docker_api = _typed(path, f"{where}: docker_api", d.get("docker_api"), (dict, type(None)), "a mapping or null")
        facts = HostFacts(secs, docker_api=docker_api, docker_api_error=d.get("docker_api_error"), extra=extra)
    return TargetState(
        name=name,
        kind="host",
        address=d.get("address"),
        roles=tuple(roles),
        reachable=bool(d.get("reachable")),
        error=d.get("error"),
        gather_s=gather_s,
        facts=facts,
    )


def read_bundle(path: str) -> tuple[dict[str, Any], list[TargetState], ClusterFacts | None]:
    """(manifest, host targets with facts, preloaded cluster facts or None). Anything malformed is BadInput."""
    docs = _read_members(path)
    manifest = _check_manifest(path, docs.get("manifest.json"))
    hosts = [_host_target(path, name, docs.get(f"hosts/{name}.json")) for name in manifest.get("hosts") or []]
    c = docs.get("cluster.json")
    cf = None
    if c is not None:
        _typed(path, "cluster.json", c, dict, "a mapping or null")
        kinds = dict(
            _typed(path, "cluster.json: kinds", {} if c.get("kinds") is None else c["kinds"], dict, "a mapping")
        )
        _check_kinds(path, kinds)
        for key in ("error", "name", "server"):
            _typed(path, f"cluster.json: {key}", c.get(key), (str, type(None)), "a string or null")
        if not c.get("reachable"):
            kinds["version"] = {"__error__": {"zh": c.get("error") or "不可达", "en": c.get("error") or "unreachable"}}
        cf = ClusterFacts(None, preloaded=kinds)
        cf.configmap_errors = _configmap_errors(path, c.get("configmap_errors"))
    return manifest, hosts, cf


def _configmap_errors(path: str, v: Any) -> dict[str, Any]:
    """cluster.json's `configmap_errors` (name -> why the API refused that ConfigMap alone) as `configmap()` raises
    them; a bundle without the key (written before it existed, or nothing refused) has none."""
    from bkdoctor.model import FactUnavailable, T

    out: dict[str, Any] = {}
    for name, err in _typed(path, "cluster.json: configmap_errors", {} if v is None else v, dict, "a mapping").items():
        where = f"cluster.json: configmap_errors.{str(name)[:60]}"
        _typed(path, where, err, dict, "a mapping")
        for f in ("zh", "en"):
            _typed(path, f"{where}.{f}", err.get(f), str, "a string")
        status = err.get("status", "error")
        if status not in ("error", "skip"):
            raise _bad(path, T(f"{where}.status: 须为 error 或 skip", f"{where}.status: must be error or skip"))
        out[name] = FactUnavailable(T(err["zh"], err["en"]), status=status)
    return out
