"""Ansible inventories (INI and YAML) read as bkdoctor hosts, through the same loader and schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from bkdoctor.inputs.inventory import load_inventory
from bkdoctor.model import BadInput

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "inventory"


def test_ini_groups_ranges_children_vars():
    inv = load_inventory(str(FIX / "ansible-hosts.ini"))
    hosts = {h.name: h for h in inv.hosts}
    assert sorted(hosts) == ["master-10-0-0-2", "node-10-0-0-5", "node-10-0-0-6", "node-10-0-0-7", "node-x"]
    assert hosts["master-10-0-0-2"].roles == ("control", "master")
    assert hosts["master-10-0-0-2"].address == "10.0.0.2"
    assert hosts["node-10-0-0-6"].ssh == {"user": "ops", "become": True, "proxy_jump": "jump@10.0.0.1:22"}
    assert hosts["node-x"].ssh["port"] == 2222 and hosts["node-x"].address == "10.0.0.9"
    assert "db-1" not in hosts  # not in a BlueKing group


def test_yaml_inventory():
    inv = load_inventory(str(FIX / "ansible-hosts.yaml"))
    hosts = {h.name: h for h in inv.hosts}
    assert sorted(hosts) == ["master-10-0-0-2", "node-10-0-0-5", "node-10-0-0-6", "node-10-0-0-9"]
    assert hosts["master-10-0-0-2"].roles == ("control", "master")
    assert hosts["node-10-0-0-9"].ssh == {"port": 2222, "user": "ops"}
    assert hosts["node-10-0-0-5"].ssh == {"user": "root"}


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[master]\nm1\n[node\nn1\n", "line 3"),
        ("[web]\nw1\n", "no host in a group named"),
        ("[node]\nn1 ansible_port=abc\n", "not a number"),
        ("[a:children]\nb\n[b:children]\na\n[node:children]\na\n", "its own child"),
        ("[node]\nn[1:x]\n", "bad host range"),
    ],
)
def test_bad_ansible_inventory(tmp_path, text, needle):
    p = tmp_path / "hosts.ini"
    p.write_text(text)
    with pytest.raises(BadInput) as e:
        load_inventory(str(p))
    assert needle in str(e.value)
