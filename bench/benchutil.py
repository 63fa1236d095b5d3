"""Helpers the benchmark scripts share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

# Runs the measured command and reports its own wait4(). Why a separate small process: the benches spawn from
# a big process (the cluster bench holds a loaded cluster and runs engine.scan in-process), and subprocess spawns
# with vfork: at exec, Linux folds the high-water RSS of the mm the child leaves (the parent's, with vfork; a copy
# of it, with fork) into the child's ru_maxrss. A child of a process that once reached 400 MB reports a peak RSS
# of >= 400 MB, `python -c pass` included. From this ~10 MB wrapper the command's peak is its own.
_WRAPPER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as fh:
    json.dump([wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status)], fh)
"""


def run_child(argv, *, env=None, cwd=None, stdout=subprocess.DEVNULL, timeout=1800):
    """Run a command; returns wall s, CPU s (user+sys of it and its reaped descendants) and peak RSS MB,
    all from wait4() of that one command (by a small wrapper process: see _WRAPPER)."""
    err = tempfile.TemporaryFile()
    fd, res_path = tempfile.mkstemp(prefix="benchutil-", suffix=".json")
    os.close(fd)
    wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, res_path]
    p = subprocess.Popen(
        wrapper + list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=err,
        start_new_session=True,  # the wrapper and the command: one group, killed together on a timeout
    )
    try:
        p.wait(timeout=timeout)
        with open(res_path) as fh:
            wall, cpu, maxrss_kb, rc = json.load(fh)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise
        wall, cpu, maxrss_kb, rc = float(timeout), 0.0, 0, -9
    finally:
        os.unlink(res_path)
    err.seek(0)
    tail = err.read()[-2000:].decode("utf-8", "replace")
    err.close()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "maxrss_mb": maxrss_kb / 1024,
        "rc": rc,
        "stderr": tail,
    }


def compile_tree(root) -> None:
    """Write the .pyc files an installed bkdoctor has (pip compiles at install time). With
    PYTHONDONTWRITEBYTECODE set, as in some CI and sandbox shells, every run would otherwise compile bkdoctor and
    its rule files from source again: ~0.3-0.5 s of CPU per command that no operator pays."""
    import compileall
    from pathlib import Path

    for d in ("bkdoctor", "rules", "remediations"):
        if (Path(root) / d).is_dir():
            compileall.compile_dir(str(Path(root) / d), quiet=1)
