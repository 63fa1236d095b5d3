#!/usr/bin/env python3
"""The probe's own shell work on a node (issue 16), in instructions: `bkdoctor scan` of one real sshd test host in
bench/fleet.py's CentOS 7.9 base state, whose /bin/sh is a wrapper that runs the probe's `sh -s` under
`valgrind --tool=callgrind` (only that shell: not the login shell's `sh -c`, not the commands it starts, not the
bounded groups' `sh -c`). callgrind counts the instructions that shell executes: the same for the same script and
host state whatever else the machine does, where CPU time moves with the load. Each tree (this one and, with
`--baseline DIR`, an older one) scans twice, the first scan (it runs kubelet) not counted; `--repeat` more scans each,
interleaved. The shell is bash by default (CentOS 7.9's /bin/sh is bash 4.2: `--sh PATH` for one built from its
source, README "Performance").

Usage (as root; valgrind from Debian's package): python3 bench/shell_work.py [--sh PATH] [--baseline DIR]"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

_WRAPPER = """#!{bash}
# the probe's shell (`sh -s`, nothing else) under callgrind; every other use of /bin/sh is the shell itself
if [ "$#" = 1 ] && [ "$1" = -s ]; then
  exec {valgrind} --tool=callgrind --callgrind-out-file={out}/cg.%p {sh} {posix}-s
fi
exec -a sh {sh} "$@"
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sh", default="bash", metavar="SHELL", help="bash (default: this machine's), or a shell binary")
    ap.add_argument("--baseline", type=Path, default=None, metavar="DIR", help="an older tree, scanned interleaved")
    ap.add_argument("--repeat", type=int, choices=range(1, 21), metavar="1..20", default=2)
    a = ap.parse_args()
    import fleet as F
    from testbed.fixtures import SSHFleetFactory, ssh_unavailable

    why = ssh_unavailable()
    valgrind, bash = shutil.which("valgrind"), shutil.which("bash")
    if why or not valgrind or not bash:
        print(f"shell_work.py: cannot run here: {why or 'valgrind and bash are needed'}", file=sys.stderr)
        return 2
    sh = bash if a.sh == "bash" else os.path.realpath(a.sh)
    if not os.access(sh, os.X_OK):
        print(f"shell_work.py: --sh: no such shell: {a.sh}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, F._sigterm)  # as fleet.py: the host is torn down in `finally`
    from benchutil import compile_tree

    trees = {"this tree": ROOT, **({"baseline": a.baseline.resolve()} if a.baseline else {})}
    for t in trees.values():
        compile_tree(t)  # as installed: no scan pays for compiling the sources
    # under the repository (a directory the test host sees as this machine does: its /tmp is its own)
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="shell-work-", dir=ROOT / "bench" / "out"))
    out = work / "cg"
    out.mkdir()
    # a copy of the shell: the wrapper is bound over the file /bin/sh resolves to (dash's), which may be the shell
    copy = work / os.path.basename(sh)
    shutil.copy2(sh, copy)
    wrapper = work / "sh-wrapper"
    wrapper.write_text(
        _WRAPPER.format(
            bash=bash,
            valgrind=shlex.quote(valgrind),
            out=shlex.quote(str(out)),
            sh=shlex.quote(str(copy)),
            posix="--posix " if "bash" in os.path.basename(sh) else "",
        )
    )
    wrapper.chmod(0o755)
    fac = SSHFleetFactory(workdir=str(work))
    reg = dockerd = None
    counts: dict[str, list[int]] = {k: [] for k in trees}
    try:
        fl = F.start_fleet([fac], 1, False, False, str(wrapper))
        h = fl.hosts[0]
        h.start_chronyd(synced=True)  # CentOS 7.9's chronyd, as on fleet.py's cost host
        h.run(  # the stand-in kubelet past the kubelet cache's 1 MiB, as a real one (fleet.py)
            f"head -c {3 << 19} /dev/zero | tr '\\0' '#' >> /usr/local/bin/kubelet"
        )
        reg = F.Registry(fac.net.bridge, work)
        dockerd = F.FakeDockerd(str(work / "docker.sock"))
        inv = work / "inv.yaml"
        F.write_inventory(inv, fl, fl.hosts, dockerd.path)
        load0 = os.getloadavg()[0]
        print(f"# the probe's own shell ({sh}) on one node, in instructions (callgrind); load {load0:.2f}")
        for rnd in range(a.repeat + 1):  # round 0: each tree's first scan of the host runs kubelet: not counted
            for label, tree in trees.items():
                for f in out.iterdir():
                    f.unlink()
                F.bench_scan(inv, work / f"r-{rnd}.json", tree)
                # the probe's shell: the first pid (a subshell it forks and that does not exec has a profile too)
                files = sorted(out.iterdir(), key=lambda f: int(f.name.rsplit(".", 1)[1]))
                if not files:
                    raise RuntimeError("no profile of the probe's shell: was the host's /bin/sh the wrapper?")
                m = re.search(r"^summary: (\d+)$", files[0].read_text(), re.M)
                if not m:
                    raise RuntimeError(f"no summary line in {files[0]}")
                n = int(m.group(1))
                if rnd:
                    counts[label].append(n)
                print(f"#   round {rnd}{' (first scan: not counted)' if not rnd else ''} {label}: {n / 1e6:.1f} M")
        print()
        for label, ns in counts.items():
            print(f"{label:10} median {sorted(ns)[len(ns) // 2] / 1e6:6.1f} M instructions  (runs: {len(ns)})")
    finally:
        for x in (reg, dockerd):
            with contextlib.suppress(Exception):
                x and x.close()
        fac.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
