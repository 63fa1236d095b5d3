"""Helpers the safety tests share (test_fuzz_parsers, test_safety_adv, test_safety_fix, test_fix_safety,
test_bundle): one well-formed support bundle to mutate and the tar writer for it, and a fix run against a
namespaced test host (tests/testbed) through the real fix loop."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import tarfile
from pathlib import Path
from typing import Any

DOMAIN = "bkce7.bktencent.com"


def _b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


_BUNDLE = {
    "manifest.json": {
        "schema": "bkdoctor/bundle/v1",
        "tool": {"name": "bkdoctor", "version": "0"},
        "scan_id": "s",
        "domain": DOMAIN,
        "install_dir": "/x",
        "ingress_ip": None,
        "thresholds": {},
        "rules": [],
        "hosts": ["node-1"],
        "cluster": "c",
    },
    "hosts/node-1.json": {
        "name": "node-1",
        "kind": "host",
        "address": "10.0.0.5",
        "roles": ["node"],
        "reachable": True,
        "error": None,
        "gather_s": 0.1,
        "sections": {
            "hostname": {"rc": 0, "out": _b64(b"node-1\n")},
            "fstab": {"rc": 0, "out": _b64(b"/dev/vdb1 /data xfs defaults 0 0\n")},
            "daemon_json": {"rc": 0, "out": _b64(b'{"insecure-registries": []}')},
            "etc_hosts": {"rc": 0, "out": _b64(f"10.0.0.1 {DOMAIN}\n".encode())},
        },
        "docker_api": {"version": {"Version": "20.10.5"}, "info": {"DockerRootDir": "/data"}},
        "docker_api_error": None,
        "extra": {"clock": {"t": 1}},
    },
    "cluster.json": {
        "name": "c",
        "server": "https://x",
        "reachable": True,
        "error": None,
        "kinds": {
            "version": {"gitVersion": "v1.20.2"},
            "nodes": [],
            "pods": [],
            "events": [],
            "configmaps": {},
            "helm_releases": [],
            "logs": {},
        },
    },
}


def bundle_docs() -> dict[str, Any]:
    """The members of a small well-formed bundle (one host, one cluster), a fresh copy to change."""
    return copy.deepcopy(_BUNDLE)


def bundle_tar(members: dict[str, bytes]) -> bytes:
    """A bundle file's bytes: each member under bkdoctor-bundle/, gzipped."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"bkdoctor-bundle/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_bundle(path: Path, docs: dict[str, Any], raw: dict[str, bytes] | None = None) -> str:
    """`docs` as JSON members (a member of `raw` as the bytes given instead) into the bundle file `path`."""
    import json

    path.write_bytes(bundle_tar({n: (raw or {}).get(n) or json.dumps(d).encode() for n, d in docs.items()}))
    return str(path)


def node_inventory(*hosts: Any, docker_socket: str | None = None) -> Any:
    """An inventory of the namespaced test host as `node-10-0-0-5` (local transport), or of `hosts`; default
    thresholds, no site files."""
    from bkdoctor.inputs.inventory import HostSpec, local_inventory

    inv = local_inventory(domain=DOMAIN, install_dir="/nonexistent")
    inv.hosts = list(hosts) or [
        HostSpec(name="node-10-0-0-5", address="10.0.0.5", roles=("node",), local=True, docker_socket=docker_socket)
    ]
    return inv


def fix_on(
    host: Any,
    inv: Any,
    rules: list[str],
    *,
    dry_run: bool = False,
    allow_disruptive: bool = False,
    hosts: set[str] | None = None,
    history: Any = None,
) -> list[Any]:
    """`bkdoctor fix --rule ... --yes` of `rules` through the real fix loop, every host of `inv` being the
    namespaced test `host`: the outcomes."""
    from bkdoctor.fix.loop import run_fix
    from bkdoctor.scan import loader
    from bkdoctor.transport import LocalTransport

    return asyncio.run(
        run_fix(
            inv,
            loader.select(rules, None),
            hosts=hosts,
            cluster=None,
            dry_run=dry_run,
            allow_disruptive=allow_disruptive,
            confirm=lambda plans: True,
            say=lambda text: None,
            history=history,
            factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root),
        )
    )


def journal_with_fix(db: Path, fix_id: str, target: str, changes: str = "[]", applied: str = "{}") -> Path:
    """A history database (bkdoctor.store.History) holding one fix journal entry of `changes`/`applied` (JSON text)."""
    import sqlite3

    from bkdoctor.store import History

    History(str(db))
    with sqlite3.connect(db) as c:
        c.execute(
            "insert into fixes (id, created_at, target, rule, status, message, changes, applied) "
            "values (?, '2026-01-01', ?, 'swap', 'fixed', 'm', ?, ?)",
            [fix_id, target, changes, applied],
        )
    return db
