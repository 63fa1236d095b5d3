"""Helpers the benchmark scripts share."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time


def run_child(argv, *, env=None, cwd=None, stdout=subprocess.DEVNULL, timeout=1800):
    """Run a command; returns wall s, CPU s (user+sys of it and its reaped descendants) and peak RSS MB,
    all from wait4() of that one child."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
    except BaseException:
        p.kill()
        os.wait4(p.pid, 0)
        p.returncode = -9
        raise
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    tail = err.read()[-2000:].decode("utf-8", "replace")
    err.close()
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "maxrss_mb": ru.ru_maxrss / 1024,
        "rc": p.returncode,
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
