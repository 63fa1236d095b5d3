#!/usr/bin/env python3
"""Start-up cost of the CLI (issue 16): `bkdoctor --version`, `bkdoctor rules --json` and a one-host scan of this
machine, each against a bare interpreter (`python3 -c pass`, which pays for site-packages' .pth files too).

Wall time and CPU time (user+sys of the child) per command, median / min over -n runs, interleaved so that a
burst of load hits every command alike. CPU time is the number to trust on a busy machine.

    python3 bench/startup.py -n 11
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=11)
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also time a checkout of another revision (`git archive REV | tar -x -C DIR`), interleaved",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from benchutil import compile_tree

    compile_tree(ROOT)
    if args.baseline:
        compile_tree(
            args.baseline
        )  # as installed (pip writes the .pyc files): PYTHONDONTWRITEBYTECODE must not cost every run
    tmp = tempfile.mkdtemp(prefix="bkd-startup-")
    env = dict(os.environ, LANG="C.UTF-8", XDG_DATA_HOME=tmp)
    py = sys.executable
    cmds = {
        "python3 -c pass": [py, "-c", "pass"],
        "bkdoctor --version": [py, "-m", "bkdoctor.cli", "--version"],
        "bkdoctor rules --json": [py, "-m", "bkdoctor.cli", "rules", "--json"],
        "bkdoctor scan (this host, JSON report)": [
            py,
            "-m",
            "bkdoctor.cli",
            "scan",
            "--no-history",
            "--json",
            os.path.join(tmp, "r.json"),
        ],
    }
    where = {k: ROOT for k in cmds}
    if args.baseline:
        for k in list(cmds)[1:]:
            cmds[f"baseline: {k}"] = cmds[k]
            where[f"baseline: {k}"] = args.baseline
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    load0 = os.getloadavg()
    for k, c in cmds.items():  # warm the page cache once
        one(c, env, where[k])
    for _ in range(args.n):
        for k, c in cmds.items():
            res[k].append(one(c, env, where[k]))
    load1 = os.getloadavg()
    print(f"load average {load0[0]:.1f} -> {load1[0]:.1f}, {os.cpu_count()} CPUs, n={args.n}")
    print("| command | wall median | wall min | CPU median | CPU min |")
    print("|---|---|---|---|---|")
    for k, v in res.items():
        w = [x[0] for x in v]
        c = [x[1] for x in v]
        print(
            f"| `{k}` | {statistics.median(w):.0f} ms | {min(w):.0f} ms | {statistics.median(c):.0f} ms | "
            f"{min(c):.0f} ms |"
        )


if __name__ == "__main__":
    main()
