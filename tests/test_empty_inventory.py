"""An inventory that yields no host never means this machine. Before, `hosts: []`, an empty file or an Ansible
inventory whose groups are empty fell back to this host as `control`: `scan -i` scanned the analyst's machine and
`fix`, `rollback`, `install`, `collect` and `fix --export` targeted it. Now every command given such a file stops
with one line (exit 2, in Chinese and English, naming the file) before it writes or runs anything. Without -i the
commands still work on this host (README: `bkdoctor scan`). `scan --from-cluster`/`--from-daemonset` take the hosts
from the cluster's Nodes, so there the file may hold only settings (and then adds no host of its own).

The CLI runs through its console-script entry point (bkdoctor.launch:main) in a child process whose audit hook
records every process started and every file opened for writing."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bkdoctor.inputs.targets import load_inventory_for
from bkdoctor.model import BadInput

ROOT = Path(__file__).resolve().parent.parent

EMPTY = {
    "hosts-empty.yaml": "domain: bkce7.bktencent.com\nhosts: []\n",
    "empty.yaml": "",
    "settings-only.yaml": "domain: bkce7.bktencent.com\nthresholds: {timezone: Asia/Shanghai}\n",
    "groups.ini": "[master]\n\n[node]\n\n[all:vars]\nansible_user=root\n",
    "groups.yaml": "all:\n  children:\n    master:\n      hosts: {}\n    node: {}\n",
}

# the child's audit hook: processes started (the local transport runs `sh`) and files opened for writing
HOOK = """\
import atexit, json, os, sys
events = []
W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def hook(ev, a):
    if ev in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "pty.spawn"):
        events.append([ev, str(a[0])])
    elif ev == "open" and isinstance(a[0], (str, bytes)) and not str(a[0]).startswith("/dev/"):
        mode, flags = a[1], a[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & W):
            events.append([ev, str(a[0])])
    elif ev == "sqlite3.connect":
        events.append([ev, str(a[0])])
def dump(log=sys.argv[1], ev=events):
    data = json.dumps(ev)
    with open(log, "w") as fh:
        fh.write(data)
sys.addaudithook(hook)
atexit.register(dump)
sys.argv = ["bkdoctor"] + sys.argv[2:]
from bkdoctor.launch import main
main()
"""


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env.update(LANG="C.UTF-8", HOME=str(home), XDG_DATA_HOME=str(home / "share"), PYTHONDONTWRITEBYTECODE="1")
    log = tmp_path / "events.json"
    r = subprocess.run(
        [sys.executable, "-c", HOOK, str(log), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r, json.loads(log.read_text())


def assert_refused(r: subprocess.CompletedProcess, events: list, inv: Path) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bkdoctor: error: "), r.stderr
    assert f"inventory {inv}: no host" in lines[0] and f"清单 {inv} " in lines[0] and "没有主机" in lines[0], lines[0]
    assert r.stdout == ""
    assert events == [], events  # nothing run, nothing written (not even the history database)


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_an_inventory_without_hosts_is_refused(tmp_path, name):
    inv = tmp_path / name
    inv.write_text(EMPTY[name])
    with pytest.raises(BadInput) as e:
        load_inventory_for(str(inv))
    assert str(e.value).startswith(f"inventory {inv}: no host") and "\n" not in str(e.value)
    assert f"清单 {inv} " in e.value.text.zh  # the Chinese half (the CLI prints both: assert_refused)
    if name.startswith("groups."):  # Ansible: refused by its reader, which names the groups it found
        assert "(found groups: all, master, node)" in str(e.value)
        return
    # the hosts come from the cluster's Nodes: the file gives the settings, and no host of its own
    assert load_inventory_for(str(inv), hosts_from_nodes=True).hosts == []
    # no inventory: this host, as before
    assert [h.local for h in load_inventory_for(None, install_dir="/nonexistent").hosts] == [True]


def _commands(tmp_path: Path, inv: Path) -> dict[str, list[str]]:
    out = tmp_path / "out"
    return {
        "scan": ["scan", "-i", str(inv), "--rule", "swap", "--no-cluster", "--json", str(out / "r.json")],
        "scan --from-cluster --no-cluster": ["scan", "-i", str(inv), "--from-cluster", "--no-cluster"],
        "collect": ["collect", "-o", str(out / "b.tar.gz"), "-i", str(inv), "--rule", "swap", "--no-cluster"],
        "fix": ["fix", "-i", str(inv), "--rule", "swap", "--yes", "--no-cluster", "--json", str(out / "f.json")],
        "fix --export": ["fix", "-i", str(inv), "--rule", "swap", "--export", "ansible", str(out / "ansible")],
        "install --plan": ["install", "-i", str(inv), "--plan", "--domain", "bkce7.bktencent.com"],
        "install": ["install", "-i", str(inv), "--yes", "--phase", "preflight", "--domain", "bkce7.bktencent.com"],
    }


COMMANDS = sorted(_commands(Path("/"), Path("/")))


@pytest.mark.parametrize("inv_name", ["hosts-empty.yaml", "empty.yaml"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_an_inventory_without_hosts(tmp_path, command, inv_name):
    inv = tmp_path / inv_name
    inv.write_text(EMPTY[inv_name])
    (tmp_path / "out").mkdir()
    r, events = run(tmp_path, *_commands(tmp_path, inv)[command])
    # an output path's writability probe (bkdoctor/safe/outfiles.py: a temporary file, removed at once) may come
    # first; the directory is left empty
    probe = f"{tmp_path / 'out'}/."
    assert_refused(r, [e for e in events if not (e[1].startswith(probe) and e[1].endswith(".check"))], inv)
    assert list((tmp_path / "out").iterdir()) == []


def test_rollback_with_an_empty_inventory_does_not_restore_on_this_machine(tmp_path):
    """A journaled fix of a host named like this machine: with an empty inventory the rollback restored the
    file here (the empty inventory became this host, under its node name)."""
    from bkdoctor.inputs.inventory import local_inventory
    from bkdoctor.store import History

    here = local_inventory(install_dir="/nonexistent").hosts[0].name
    victim, backup = tmp_path / "victim.conf", tmp_path / "victim.conf.bak"
    victim.write_text("what the operator has now\n")
    backup.write_text("what the fix replaced\n")
    db = tmp_path / "history.db"
    History(str(db))
    changes = [{"type": "file", "path": str(victim), "after_sha256": hashlib.sha256(victim.read_bytes()).hexdigest()}]
    applied = {"wrote": [{"path": str(victim), "backup": str(backup)}]}
    with sqlite3.connect(db) as c:
        c.execute(
            "insert into fixes (id, created_at, target, rule, status, message, changes, applied) "
            "values ('fix-1', '2026-01-01', ?, 'swap', 'fixed', 'm', ?, ?)",
            [here, json.dumps(changes), json.dumps(applied)],
        )
    rows = "select * from fixes"
    with sqlite3.connect(db) as c:
        before = c.execute(rows).fetchall()
    inv = tmp_path / "hosts-empty.yaml"
    inv.write_text(EMPTY["hosts-empty.yaml"])
    r, events = run(tmp_path, "rollback", "fix-1", "-i", str(inv), "--db", str(db))
    events = [e for e in events if e[1] != str(db)]  # the journal is opened to find the fix (its rows: below)
    assert_refused(r, events, inv)
    assert victim.read_text() == "what the operator has now\n"
    with sqlite3.connect(db) as c:
        assert c.execute(rows).fetchall() == before  # not marked rolled back
