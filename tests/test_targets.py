"""One way to build what a command works on (bkdoctor/inputs/targets.py): the inventory with the command line's
overrides, and the cluster access. `scan`, `collect`, `fix`, `rollback` and `install` all use it, so an override
means the same in each (before, `collect` kept the inventory's install_dir over --install-dir and did not record
where the domain came from)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bkdoctor.inputs.targets import load_inventory_for, load_targets
from bkdoctor.model import BadInput

ROOT = Path(__file__).resolve().parent.parent
INV = """\
domain: inventory.example.com
install_dir: /opt/from-inventory
hosts:
  - name: ctl
    address: localhost
    roles: [control]
"""


@pytest.mark.parametrize("with_file", [True, False])
def test_overrides_mean_the_same_with_or_without_an_inventory(tmp_path, with_file):
    path = None
    if with_file:
        path = tmp_path / "inv.yaml"
        path.write_text(INV)
    inv = load_inventory_for(
        str(path) if path else None, domain="cli.example.com", install_dir="/opt/from-cli", accept_new_host_keys=True
    )
    assert (inv.domain, inv.domain_source, inv.install_dir) == ("cli.example.com", "--domain", "/opt/from-cli")
    assert inv.accept_new_host_keys is True


def test_without_overrides_the_inventory_decides(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(INV)
    inv, cluster = load_targets(str(path))
    assert (inv.domain, inv.install_dir, cluster) == ("inventory.example.com", "/opt/from-inventory", None)
    assert inv.domain_source != "--domain" and inv.accept_new_host_keys is False


def test_the_kubeconfig_is_read_only_when_a_cluster_is_wanted(tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("clusters: [unclosed\n")
    _, cluster = load_targets(None, kubeconfig=str(kc), need_cluster=False)
    assert cluster is None
    with pytest.raises(BadInput, match="kubeconfig"):
        load_targets(None, kubeconfig=str(kc), need_cluster=True)


def test_collect_records_the_install_dir_and_domain_given_on_the_command_line(tmp_path):
    """A bug fix: `collect -i INV --install-dir DIR` wrote the inventory's install_dir into the bundle, unlike
    `scan`, `fix` and `install`."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(INV)
    out = tmp_path / "b.tar.gz"
    env = dict(os.environ, LANG="C.UTF-8", XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("BKDOCTOR_DEBUG", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bkdoctor.cli",
            "collect",
            "-o",
            str(out),
            "-i",
            str(inv),
            "--rule",
            "swap",
            "--no-cluster",
            "--install-dir",
            "/opt/from-cli",
            "--domain",
            "cli.example.com",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("bkdoctor-bundle/manifest.json").read())
    assert (manifest["install_dir"], manifest["domain"]) == ("/opt/from-cli", "cli.example.com")
