"""Support bundle: `bkdoctor collect -o bundle.tar.gz`, then `bkdoctor scan --bundle bundle.tar.gz` elsewhere.

The bundle holds what the rules read: each host's raw probe sections, its Docker Engine answers and clock
sample, and the cluster objects and failing-pod log tails. Secrets are removed before anything is written:
Secret objects are never listed except helm release Secrets, which are reduced to chart, version and status;
everything else goes through bkdoctor/secrets.py (masked by key name and by value shape: URL userinfo, auth
headers, -p/--password flags, password= options, ...): host files, Docker answers, cluster objects, logs and the
manifest. Replaying the bundle runs the same rules on the same facts, so it gives the same findings.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import re
import tarfile
from typing import Any

from . import __version__
from .engine import TargetState
from .facts.cluster import ClusterFacts
from .facts.host import HostFacts
from .facts.probe import Section
from .model import BadInput
from .secrets import MASK, mask_bytes, mask_obj, mask_text

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
    doc: dict[str, Any] = {"name": t.name, "kind": t.kind, "address": mask_text(t.address or "") or t.address,
                           "roles": list(t.roles), "reachable": t.reachable,
                           "error": mask_text(t.error) if t.error else t.error, "gather_s": t.gather_s}
    if f is not None:
        doc["sections"] = {n: {"rc": s.rc, "out": base64.b64encode(_section_out(n, s.out)).decode()}
                           for n, s in f.sections.items()}
        doc["docker_api"] = mask_obj(f.docker_api) if f.docker_api is not None else None
        doc["docker_api_error"] = mask_text(f.docker_api_error) if f.docker_api_error else f.docker_api_error
        doc["extra"] = mask_obj({k: (v if isinstance(v, dict) else {"__error__": {"zh": v.reason.zh, "en": v.reason.en}})
                                 for k, v in f.extra.items()})
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
    # every kind (ConfigMaps, pod specs and their args, events, logs, ...) by key and by value shape
    return mask_obj({"name": st.name, "server": st.address, "reachable": st.reachable, "error": st.error,
                     "kinds": kinds})


def write_bundle(result: Any, path: str) -> dict[str, Any]:
    """Write the bundle of a finished scan (its targets keep their facts). Atomic: temp file + rename."""
    inv = result.inventory
    hosts = [t for t in result.targets if t.kind == "host"]
    cst = next((t for t in result.targets if t.kind == "cluster"), None)
    manifest = mask_obj({"schema": SCHEMA, "tool": {"name": "bkdoctor", "version": __version__},
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(), "scan_id": result.id,
                "domain": inv.domain, "install_dir": inv.install_dir, "ingress_ip": inv.ingress_ip,
                "thresholds": inv.thresholds, "rules": [r.id for r in result.rules],
                "hosts": [h.name for h in hosts], "cluster": cst.name if cst else None})
    files = {"manifest.json": manifest, "cluster.json": _cluster_doc(cst, result.extra.get("cluster_facts"))}
    for h in hosts:
        files[f"hosts/{h.name}.json"] = _host_doc(h)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, "w:gz") as tar:
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


def read_bundle(path: str) -> tuple[dict[str, Any], list[TargetState], ClusterFacts | None]:
    """(manifest, host targets with facts, preloaded cluster facts or None)."""
    from .facts.host import FactUnavailable
    from .model import T

    try:
        tar = tarfile.open(path, "r:gz")
    except FileNotFoundError:
        raise BadInput(f"bundle {path}: no such file") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadInput(f"bundle {path}: not a bkdoctor bundle ({e})") from None
    docs: dict[str, Any] = {}
    with tar:
        for m in tar.getmembers():
            if not m.isfile() or not m.name.startswith("bkdoctor-bundle/") or ".." in m.name:
                continue
            fh = tar.extractfile(m)
            try:
                docs[m.name[len("bkdoctor-bundle/"):]] = json.loads(fh.read()) if fh else None
            except ValueError as e:
                raise BadInput(f"bundle {path}: {m.name}: {e}") from None
    manifest = docs.get("manifest.json")
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BadInput(f"bundle {path}: no {SCHEMA} manifest")
    hosts = []
    for name in manifest.get("hosts") or []:
        d = docs.get(f"hosts/{name}.json")
        if not isinstance(d, dict):
            raise BadInput(f"bundle {path}: hosts/{name}.json missing")
        facts = None
        if d.get("sections") is not None:
            secs = {n: Section(n, v["rc"], base64.b64decode(v["out"])) for n, v in d["sections"].items()}
            extra = {k: (FactUnavailable(T(v["__error__"]["zh"], v["__error__"]["en"])) if "__error__" in v else v)
                     for k, v in (d.get("extra") or {}).items()}
            facts = HostFacts(secs, docker_api=d.get("docker_api"), docker_api_error=d.get("docker_api_error"), extra=extra)
        hosts.append(TargetState(name=d["name"], kind="host", address=d.get("address"), roles=tuple(d.get("roles") or ()),
                                 reachable=bool(d.get("reachable")), error=d.get("error"), gather_s=d.get("gather_s"),
                                 facts=facts))
    c = docs.get("cluster.json")
    cf = None
    if isinstance(c, dict):
        kinds = dict(c.get("kinds") or {})
        if not c.get("reachable"):
            kinds["version"] = {"__error__": {"zh": c.get("error") or "不可达", "en": c.get("error") or "unreachable"}}
        cf = ClusterFacts(None, preloaded=kinds)
    return manifest, hosts, cf
