#!/usr/bin/env python3
"""The cyclic garbage collector's share of a fleet scan (issue 16): `bkdoctor scan` of N real sshd test hosts run
in this process (cli.main), alternating the youngest generation's threshold between Python's default (700) and the
one a one-shot `bkdoctor scan` sets (launch.SCAN_GC_THRESHOLD): each run's CPU (this process's user+sys), wall time,
and the collector's own time and collections (gc.callbacks). The peak RSS of the CLI is bench/fleet.py's.

The hosts are bench/fleet.py's (the CentOS 7.9 base state, a stand-in Docker API, the site's registry); starting
them is not measured. Every setting runs `--repeat` times, interleaved; medians are printed.

Usage (as root): python3 bench/gc_scan.py [--hosts 300] [--repeat 3]"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, choices=range(1, 501), metavar="1..500", default=300)
    ap.add_argument(
        "--repeat",
        type=int,
        choices=range(1, 101),
        metavar="1..100",
        default=3,
        help="runs of each setting (default 3)",
    )
    a = ap.parse_args()
    import fleet as F
    from testbed.fixtures import SSHFleetFactory, ssh_unavailable

    from bkdoctor import cli, launch

    why = ssh_unavailable()
    if why:
        print(f"gc_scan.py: cannot start test hosts here: {why}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, F._sigterm)  # as fleet.py: the hosts are torn down in `finally`

    settings = [("default", 700), ("scan", launch.SCAN_GC_THRESHOLD)]
    load0 = os.getloadavg()[0]
    print(f"# gc during a scan of {a.hosts} hosts, repeat {a.repeat}, load {load0:.2f}, {os.cpu_count()} CPUs")
    if load0 > 0.5 * (os.cpu_count() or 1):
        print(f"# WARNING: the machine is busy (load {load0:.2f}): numbers are noisy")
    work = Path(tempfile.mkdtemp(prefix="bkdbench-gc-"))
    facs = [SSHFleetFactory(workdir=str(work))] + [
        SSHFleetFactory(workdir=str(work), prefix=f"net{i + 2}-node") for i in range((a.hosts - 1) // F.PER_NET)
    ]
    reg = dockerd = None
    spent = {"s": 0.0, "n": 0, "t": 0.0}

    def cb(phase: str, info: dict) -> None:
        if phase == "start":
            spent["t"] = time.process_time()
        else:
            spent["s"] += time.process_time() - spent["t"]
            spent["n"] += 1

    rows: dict[str, list[tuple[float, float, float, int]]] = {label: [] for label, _ in settings}
    try:
        fl = F.start_fleet(facs, a.hosts, False, False)
        reg = F.Registry(facs[0].net.bridge, work)
        dockerd = F.FakeDockerd(str(work / "docker.sock"))
        inv = work / "inv.yaml"
        F.write_inventory(inv, fl, fl.hosts, dockerd.path)
        argv = ["scan", "-i", str(inv), "--no-history", "--no-cluster", "--json", str(work / "r.json")]
        gc.callbacks.append(cb)
        for rnd in range(a.repeat + 1):  # the first round warms up (imports, caches): not counted
            for label, t0_threshold in settings:
                gc.set_threshold(t0_threshold, *gc.get_threshold()[1:])
                gc.collect()
                spent.update(s=0.0, n=0)
                c0, w0 = time.process_time(), time.perf_counter()
                with open(os.devnull, "w") as dn, contextlib.redirect_stdout(dn):
                    try:
                        cli.main(argv)
                    except SystemExit as e:
                        if e.code == 130:  # cli.main turned a Ctrl-C (or our SIGTERM) into exit 130: stop here
                            raise KeyboardInterrupt from None
                        if e.code not in (0, 1):  # 1: findings failed; anything else: not a scan to count
                            raise RuntimeError(f"bkdoctor scan exited {e.code}") from None
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                if rnd:
                    rows[label].append((cpu, wall, spent["s"], spent["n"]))
                print(
                    f"#   round {rnd}{' (warm-up)' if not rnd else ''} {label:8} threshold {t0_threshold:6}: "
                    f"CPU {cpu:.2f}s wall {wall:.2f}s gc {spent['s']:.2f}s in {spent['n']} collections",
                    flush=True,
                )
    finally:
        if cb in gc.callbacks:
            gc.callbacks.remove(cb)
        for x in (reg, dockerd):
            with contextlib.suppress(Exception):
                x and x.close()
        for f in reversed(facs):
            f.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.hosts} hosts, medians of {a.repeat} (this process's CPU; the hosts' sshd share the same CPUs)")
    print(f"  {'setting':10} {'threshold':>9} {'CPU':>7} {'wall':>7} {'gc':>6} {'collections':>11}")
    med = {}
    for label, t0_threshold in settings:
        cols = list(zip(*rows[label]))
        med[label] = [statistics.median(c) for c in cols]
        cpu, wall, g, n = med[label]
        print(f"  {label:10} {t0_threshold:9} {cpu:6.2f}s {wall:6.2f}s {g:5.2f}s {n:11.0f}")
    d = (med["default"][0] - med["scan"][0]) / a.hosts * 1000
    print(f"  CPU per host saved by the scan's threshold: {d:.1f} ms")
    print(f"# load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
