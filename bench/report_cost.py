#!/usr/bin/env python3
"""The control machine's CPU for a fleet's report and inventory (issue 16), no hosts needed: writing the JSON report
of N findings (`jsonreport.iter_json` through `outfiles.write_atomic`, as `bkdoctor scan --json` writes it) and
loading an inventory of H hosts (`inventory.load_inventory`). The findings are made up (the shape and sizes of a
fleet scan's: 27 a host), the same for every tree.

Each tree runs in its own interpreter (PYTHONPATH=the tree), -n runs each, CPU time (process_time) median / min:

    python3 bench/report_cost.py -n 5 --baseline DIR     # DIR: git archive <rev> | tar -x -C DIR
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _findings(n: int) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "rule": f"rule-{i % 27}",
                "target": f"node-{i // 27}",
                "status": ("pass", "fail", "skip", "warn")[i % 4],
                "severity": "high",
                "title": "内核参数 net.ipv4.ip_forward = 1 / kernel parameter",
                "message": f"net.ipv4.ip_forward = {i % 2} (guide §一.4.4)",
                "observed": {"value": str(i % 2), "files": ["/etc/sysctl.conf", "/etc/sysctl.d/bcs.conf"]},
                "expected": "1",
                "guide": {"section": "一.4.4", "quote": "net.ipv4.ip_forward = 1"},
                "fix": ["sysctl -w net.ipv4.ip_forward=1"],
                "evidence": {"sysctl_runtime": "net/ipv4/ip_forward=1\n" * 3},
            }
        )
    return out


def child(findings: int, hosts: int, runs: int) -> dict:
    import time

    from bkdoctor.inputs.inventory import load_inventory
    from bkdoctor.report.jsonreport import iter_json
    from bkdoctor.safe.outfiles import write_atomic

    work = Path(tempfile.mkdtemp(prefix="bkdbench-report-"))
    key, kh = work / "id", work / "known_hosts"
    key.write_text("not a key: the inventory only checks that it exists\n")
    kh.write_text("")
    os.chmod(key, 0o600)
    os.chmod(kh, 0o600)
    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": {"user": "root", "identity_file": str(key), "known_hosts": str(kh)},
        "hosts": [
            {"name": f"node-{i}", "address": f"10.1.{i // 250}.{i % 250 + 2}", "roles": ["master" if i < 3 else "node"]}
            for i in range(hosts)
        ],
    }
    inv_path = work / "hosts.yaml"
    inv_path.write_text(json.dumps(inv))  # JSON is YAML: the same text for every tree
    report = {
        "schema": "bkdoctor/report/v1",
        "scan": {"id": "bench", "rules": [f"rule-{i}" for i in range(27)]},
        "targets": [{"name": f"node-{i}", "kind": "host", "reachable": True} for i in range(hosts)],
        "findings": _findings(findings),
        "summary": {"total": findings},
    }
    out: dict[str, list[float]] = {"json": [], "inventory": []}
    for _ in range(runs):
        c = time.process_time()
        write_atomic(str(work / "r.json"), iter_json(report))
        out["json"].append(time.process_time() - c)
        c = time.process_time()
        load_inventory(str(inv_path))
        out["inventory"].append(time.process_time() - c)
    size = (work / "r.json").stat().st_size
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    return {**out, "json_bytes": size}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--findings", type=int, default=8100, help="findings in the report (default 8100: 300 hosts)")
    ap.add_argument("--hosts", type=int, default=300)
    ap.add_argument("--baseline", type=Path, default=None, metavar="DIR")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.findings, a.hosts, a.n)))
        return 0
    trees = [("now", ROOT)] + ([("baseline", a.baseline.resolve())] if a.baseline else [])
    print(f"# load {os.getloadavg()[0]:.2f}, {a.findings} findings, {a.hosts} hosts, n={a.n}")
    print(
        "| tree | JSON report write (median / min) | inventory load (median / min) | report bytes |\n|---|---|---|---|"
    )
    for name, root in trees:
        env = {**os.environ, "PYTHONPATH": str(root)}
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", "-n", str(a.n)]
        argv += ["--findings", str(a.findings), "--hosts", str(a.hosts)]
        r = json.loads(subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, check=True).stdout)

        def ms(xs: list[float]) -> str:
            return f"{statistics.median(xs) * 1000:.0f} / {min(xs) * 1000:.0f} ms"

        print(f"| {name} ({root}) | {ms(r['json'])} | {ms(r['inventory'])} | {r['json_bytes']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
