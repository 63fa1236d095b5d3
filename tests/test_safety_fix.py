"""Fix safety against hostile and careless input (issue 10, items 2, 3, 6, 7).

- Commands on the control machine run in install_dir with `~` expanded THERE (the SSH user's home), quoted.
- Every command bkdoctor prints for copy-paste (the manual steps of every remediation, `Fix:` hints, the
  cross-layer texts, the rules' own fix commands) parses with `bash -n`.
- Shell metacharacters in every host fact and inventory value a plan uses go through every remediation's plan:
  every generated script and command parses with `sh -n`, and the hostile value reaches the shell only quoted
  (a marker command planted in the value never runs when the script is executed).
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from hostcases import make_ssh_host

from bkdoctor.inventory import load_inventory


def bash_n(cmd: str, shell: str = "bash") -> str | None:
    """None when `cmd` parses, else the shell's complaint."""
    r = subprocess.run([shutil.which(shell) or shell, "-n"], input=cmd.encode(), capture_output=True, timeout=10)
    return None if r.returncode == 0 else r.stderr.decode("utf-8", "replace").strip()


# -- item 2: install_dir with ~ on a control machine reached over SSH --------------------------------------
STANDIN = """#!/bin/sh
# helmfile stand-in: records where it ran and with what
printf '%s|%s\\n' "$PWD" "$*" >> /root/helmfile-calls
"""


@pytest.mark.ssh
def test_control_commands_run_in_install_dir_with_tilde_expanded_on_the_target(ssh_fleet, tmp_path):
    from bkdoctor.fixmode import run_on_control

    odd = "bk dir/$(touch /root/pwned);x'y"
    fleet, ctl = make_ssh_host(ssh_fleet, {"hostname": "ctl", "overlays": ["/etc", "/root"], "files": {
        "/root/bkce7.1-install/blueking/bin/helmfile": {"content": STANDIN, "mode": 0o755},
        f"/root/{odd}/bin/helmfile": {"content": STANDIN, "mode": 0o755}}})
    for install_dir, where in (("~/bkce7.1-install/blueking", "/root/bkce7.1-install/blueking"),
                               (f"~/{odd}", f"/root/{odd}")):
        inv_path = tmp_path / "hosts.yaml"
        inv_path.write_text(yaml.safe_dump({
            "domain": "bkce7.bktencent.com", "install_dir": install_dir, "ssh": fleet.ssh_settings(),
            "hosts": [{"name": "ctl", "address": ctl.address, "roles": ["control"]}]}))
        inv = load_inventory(str(inv_path))
        # the command the storage-class remediation runs there (as planned from the cluster's facts)
        rem = _rems()["storage-class"]
        plan = rem.plan(SimpleNamespace(get=lambda kind: []), SimpleNamespace(target="cluster"))
        (ch,) = plan.changes
        assert ch.where == "control"
        rc, out = asyncio.run(run_on_control(inv, ch.script, timeout=60))
        assert rc == 0, out
        calls = ctl.read("/root/helmfile-calls").decode().splitlines()
        assert calls[-1] == f"{where}|-f 00-localpv.yaml.gotmpl sync", calls
    assert ctl.run("test -e /root/pwned", check=False).returncode != 0  # the directory name never ran


def test_target_path_quotes_everything_but_the_home():
    from bkdoctor.model import BadInput
    from bkdoctor.shellwords import target_path

    assert target_path("~/bkce7.1-install/blueking") == '"$HOME"/bkce7.1-install/blueking'
    assert target_path("~") == '"$HOME"'
    assert target_path("/opt/a b") == "'/opt/a b'"
    assert target_path("~root/x") == "~root/x"
    for bad in ("~$(id)/x", "~a b/x", "/a\nb"):
        with pytest.raises(BadInput):
            target_path(bad)
    # in a real shell: HOME with a space stays one word
    out = subprocess.run(["sh", "-c", f"printf %s {target_path('~/x y')}"], env={"HOME": "/h o"},
                         capture_output=True, text=True).stdout
    assert out == "/h o/x y"


def _rems():
    from bkdoctor.fixer import all_remediations

    return all_remediations()
