"""`bkdoctor install` asks for BK_DOMAIN, REGISTRY and the install dir once, on a real terminal (a pty), validates the
answers, stores them (0600) and never asks again."""

from __future__ import annotations

import os
import pty
import select
import stat
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_on_tty(args, answers, env, timeout=60):
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvpe(sys.executable, [sys.executable, "-m", "bkdoctor.cli", *args], env)
    out, pending, deadline = b"", list(answers), time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            # answer each prompt as it appears (prompts end with ": ")
            if pending and out.rstrip().endswith(b":"):
                os.write(fd, (pending.pop(0) + "\n").encode())
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_asked_once_validated_stored(tmp_path):
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    env.pop("KUBECONFIG", None)
    inst = tmp_path / "blueking"
    # "Not A Domain!" is refused and asked again; the registry keeps its default (Enter)
    # (no master in the inventory: the phase is a plan error after the questions, nothing runs on this machine)
    code, out = run_on_tty(
        ["install", "--phase", "control-sync", "--yes", "--install-dir", str(inst)],
        ["Not A Domain!", "bkce7.bktencent.com", "", "ftp://not-a-mirror", ""],
        env,
    )
    assert "BK_DOMAIN" in out and "not valid" in out, out
    assert "download base" in out and code == 2 and "plan error: control-sync" in out, out
    cfg = tmp_path / "cfg" / "bkdoctor" / "config.yaml"
    assert yaml.safe_load(cfg.read_text()) == {
        "domain": "bkce7.bktencent.com",
        "registry": "",
        "download_base": "https://bkopen-1252002024.file.myqcloud.com",
    }
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    # never asked again
    code2, out2 = run_on_tty(["install", "--phase", "control-sync", "--yes", "--install-dir", str(inst)], [], env)
    assert "BK_DOMAIN" not in out2, out2
