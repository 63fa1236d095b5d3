#!/usr/bin/env python3
"""Benchmark: how long `bkdoctor scan` of this host takes (the README quotes its output).

Times, over N runs each (median, p90, min):
  cli      the whole command as an operator runs it: `bkdoctor scan --no-history --json <tmp>` (process start,
           imports, probe, Docker Engine API, rules, report)
  engine   the scan inside one process (probe + Docker API + rules), no interpreter start
  probe    the batched probe alone through the local transport (one `sh -s`)
  naive    the same facts gathered the way an operator does by hand: one process per check command
           (the guide's verification commands, one after another)
Usage: python3 bench/scan_local.py [-n 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NAIVE = [
    "cat /etc/centos-release",
    "uname -r",
    "free -m",
    "cat /proc/swaps",
    "getenforce || true",
    "systemctl is-active firewalld || true",
    "iptables -vnL",
    "timedatectl || true",
    "chronyc tracking || true",
    "nproc",
    "df -h /data || true",
    "docker version",
    "docker info",
    "cat /etc/docker/daemon.json || true",
    "kubelet --version || true",
    "sysctl net.ipv4.ip_forward",
    "cat /etc/hosts",
    "ls /mnt/blueking || true",
]


def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "p90": xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))], "min": xs[0]}


def bench_cli(n):
    out = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(n):
            t0 = time.perf_counter()
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bkdoctor.cli",
                    "scan",
                    "--no-history",
                    "--no-cluster",
                    "--json",
                    os.path.join(d, "r.json"),
                ],
                cwd=ROOT,
                capture_output=True,
            )
            out.append(time.perf_counter() - t0)
            assert r.returncode in (0, 1), r.stderr
    return out


def bench_engine(n):
    from bkdoctor.inputs.inventory import local_inventory
    from bkdoctor.scan import engine, loader

    inv, rules = local_inventory(), [r for r in loader.select(None, None) if r.scope != "cluster"]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        asyncio.run(engine.scan(inv, rules))
        out.append(time.perf_counter() - t0)
    return out


def bench_probe(n):
    from bkdoctor.facts.host import sections_for
    from bkdoctor.facts.probe import build_script, parse_output
    from bkdoctor.scan import loader
    from bkdoctor.transport import LocalTransport

    facts = {
        f
        for r in loader.select(None, None)
        if r.scope in ("host", "fleet") and r.applies_to(("control",))
        for f in r.facts
    }
    out = []
    for _ in range(n):
        script, nonce = build_script(sections_for(facts))
        t0 = time.perf_counter()
        res = asyncio.run(LocalTransport().run_script(script, 60))
        parse_output(res.stdout, nonce)
        out.append(time.perf_counter() - t0)
    return out


def bench_naive(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        for c in NAIVE:
            subprocess.run(["sh", "-c", c], capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    a = ap.parse_args()
    from bkdoctor.scan import loader

    print(
        f"# bkdoctor scan of this host: {len(loader.select(None, None))} rules, n={a.n}, "
        f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'what':<8} {'median':>9} {'p90':>9} {'min':>9}")
    for name, fn in (("cli", bench_cli), ("engine", bench_engine), ("probe", bench_probe), ("naive", bench_naive)):
        s = stats(fn(a.n))
        print(f"{name:<8} {s['median'] * 1000:>7.0f}ms {s['p90'] * 1000:>7.0f}ms {s['min'] * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()
