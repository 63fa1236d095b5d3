"""Defects an adversarial tester found after issues 10-15 were merged (one test per class; each failed before
its fix). Real subprocesses of `python -m bkdoctor.cli`, real files, real SQLite databases."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from safetykit import bundle_docs, write_bundle

ROOT = Path(__file__).resolve().parent.parent
LOCAL = """\
domain: bkce7.bktencent.com
hosts:
  - name: ctl
    address: localhost
    roles: [control]
"""


def run(*args, env=None, timeout=120, input=None):
    e = dict(os.environ)
    e.pop("BKDOCTOR_DEBUG", None)
    e.setdefault("LANG", "C.UTF-8")
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def home(tmp_path):
    return {
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "HOME": str(tmp_path / "home"),
    }


def one_line_error(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bkdoctor: error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# -- 1: our own report's counts are never masked ------------------------------------------------------------------
def test_history_shows_the_real_pass_count(tmp_path, home):
    # two hosts pass (a count of 1 compares equal to True and slipped through the masking)
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        LOCAL.replace("  - name: ctl", "  - name: ctl2\n    address: 127.0.0.1\n    roles: [control]\n  - name: ctl")
        + "thresholds: {kernel_min: '0.1'}\n"
    )
    db = tmp_path / "h.db"
    r = run("scan", "-i", str(inv), "--rule", "kernel-version", "--db", str(db), env=home)
    assert r.returncode == 0, r.stderr
    r = run("history", "--json", "--db", str(db), env=home)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0]["summary"]["pass"] == 2 and rows[0]["summary"]["total"] == 2, rows
    r = run("history", "--db", str(db), env=home)
    assert r.returncode == 0 and "***" not in r.stdout, r.stdout
    # a real secret under a `pass` key of host data is still masked on its way to the database
    from bkdoctor.safe.secrets import mask_obj

    assert mask_obj({"observed": {"pass": "hunter2", "password": 1234}}) == {
        "observed": {"pass": "***", "password": "***"}
    }


# -- 2: a control character in any YAML input is bad input, not a crash ---------------------------------------------
CONTROL = ["\x07", "\x00", "\x1b[31m"]


@pytest.mark.parametrize("ch", CONTROL, ids=["bel", "nul", "esc"])
@pytest.mark.parametrize("kind", ["inventory", "ansible", "kubeconfig"])
def test_control_character_in_yaml_is_one_line(tmp_path, home, kind, ch):
    if kind == "inventory":
        p = tmp_path / "inv.yaml"
        p.write_text(LOCAL.replace("ctl", f"ctl{ch}", 1))
        r = run("scan", "-i", str(p), "--rule", "swap", "--no-history", env=home)
    elif kind == "ansible":
        p = tmp_path / "hosts.yaml"
        p.write_text(f"all:\n  hosts:\n    n1{ch}:\n      ansible_host: 127.0.0.1\n")
        r = run("scan", "-i", str(p), "--rule", "swap", "--no-history", env=home)
    else:
        p = tmp_path / "kc.yaml"
        p.write_text(f"apiVersion: v1\nkind: Config\nclusters: []\ncurrent-context: x{ch}\n")
        r = run("scan", "--kubeconfig", str(p), "--rule", "coredns", "--no-history", env=home)
    line = one_line_error(r)
    assert str(p) in line and "\x1b" not in line and "\x07" not in line, line


def test_control_character_in_custom_yaml_is_a_site_file_error(tmp_path, home):
    inst = tmp_path / "inst"
    f = inst / "environments/default/custom.yaml"
    f.parent.mkdir(parents=True)
    f.write_text("localpv:\n  hostDir: /mnt/\x07blueking\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text(LOCAL.replace("[control]", "[control, node]") + f"install_dir: {inst}\n")
    out = tmp_path / "r.json"
    r = run("scan", "-i", str(inv), "--rule", "containers-log-path", "--no-history", "--json", str(out), env=home)
    assert r.returncode != 3 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-3000:])
    (f,) = json.loads(out.read_text())["findings"]
    assert f["status"] == "error" and "custom.yaml" in f["message"] and "control characters" in f["message"], f


# -- 3: every YAML the operator hands bkdoctor goes through the bounded loader ----------------------------------------
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize("case", ["bomb", "deep", "utf8", "control", "dupkey"])
def test_site_config_yaml_is_bounded(tmp_path, home, case):
    cfg = Path(home["XDG_CONFIG_HOME"]) / "bkdoctor" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    data = {
        "bomb": BOMB.encode(),
        "deep": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "utf8": b"domain: \xff\xfe\n",
        "control": b"domain: a\x07b\n",
        "dupkey": b"domain: a.com\ndomain: b.com\n",
    }[case]
    cfg.write_bytes(data)
    inv = tmp_path / "inv.yaml"
    inv.write_text(LOCAL)
    r = run("install", "--plan", "-i", str(inv), env=home, timeout=60)
    line = one_line_error(r)
    assert str(cfg) in line, line
    assert cfg.read_bytes() == data


def test_values_file_check_uses_the_bounded_loader():
    import inspect
    import re

    from bkdoctor.inputs import siteconfig
    from bkdoctor.install import builtin as installsteps_builtin

    for mod in (installsteps_builtin, siteconfig):
        assert not re.search(r"(?<!safe)yaml\.(safe_)?load\(", inspect.getsource(mod)), mod.__name__


# -- 5: host ranges expand without recursion; the limit named is the real one ----------------------------------------
def test_many_ranges_in_one_host_pattern(tmp_path, home):
    inv = tmp_path / "hosts.ini"
    inv.write_text("[control]\nn" + "[0:0]" * 1500 + " ansible_host=127.0.0.1\n")
    # expanded (no RecursionError), then refused like any other over-long host name: one line
    assert "host 'n000" in one_line_error(run("scan", "-i", str(inv), "--rule", "swap", "--no-history", env=home))


def test_range_limit_names_the_inventory_limit(tmp_path, home):
    from bkdoctor.inputs.ansible import MAX_HOSTS

    inv = tmp_path / "hosts.ini"
    inv.write_text("[node]\na[0:99999]\nb[0:9]\n")
    line = one_line_error(run("scan", "-i", str(inv), "--rule", "swap", "--no-history", env=home))
    assert f"{MAX_HOSTS:,}" in line and "more than 0 " not in line, line


# -- 6: a damaged history database is bad input naming the scan or fix -----------------------------------------------
@pytest.fixture
def scanned_db(tmp_path, home):
    inv = tmp_path / "inv.yaml"
    inv.write_text(LOCAL + "thresholds: {kernel_min: '0.1'}\n")
    db = tmp_path / "h.db"
    for _ in range(2):
        r = run("scan", "-i", str(inv), "--rule", "kernel-version", "--db", str(db), env=home)
        assert r.returncode == 0, r.stderr
    return db


@pytest.mark.parametrize(
    "col,value", [("summary", "not json"), ("summary", "[1,2]"), ("summary", '{"pass": [1]}'), ("duration_s", "abc")]
)
def test_damaged_scan_row(scanned_db, home, col, value):
    with sqlite3.connect(scanned_db) as c:
        c.execute(f"update scans set {col} = ?", [value])
        (sid,) = c.execute("select id from scans order by started_at desc limit 1").fetchone()
    for cmd in (["history"], ["history", "--json"], ["diff"]):
        line = one_line_error(run(*cmd, "--db", str(scanned_db), env=home))
        assert sid in line and col in line, line


@pytest.mark.parametrize(
    "col,value",
    [("changes", "not json"), ("changes", '[{"path": 1}]'), ("applied", "[]"), ("applied", '{"wrote": "x"}')],
)
def test_damaged_fix_row(tmp_path, home, col, value):
    from bkdoctor.store import History

    db = tmp_path / "h.db"
    History(str(db))
    with sqlite3.connect(db) as c:
        c.execute(
            "insert into fixes (id, created_at, target, rule, status, message, changes, applied) "
            "values ('fix-77', '2026-01-01', 'ctl', 'swap', 'fixed', 'm', '[]', '{}')"
        )
        c.execute(f"update fixes set {col} = ?", [value])
    line = one_line_error(run("rollback", "fix-77", "--db", str(db), env=home))
    assert "fix-77" in line, line


# -- 7, 9: bundles: lone surrogates, kinds and extra of the wrong types ----------------------------------------------
def test_bundle_with_a_lone_surrogate_is_refused(tmp_path, home):
    docs = bundle_docs()
    raw = json.dumps(docs["hosts/node-1.json"]).replace('"error": null', '"error": "x\\ud800y"').encode()
    assert b"\\ud800" in raw
    b = write_bundle(tmp_path / "b.tar.gz", docs, {"hosts/node-1.json": raw})
    out = tmp_path / "r.json"
    line = one_line_error(run("scan", "--bundle", b, "--no-history", "--json", str(out), env=home))
    assert "surrogate" in line and "hosts/node-1.json" in line, line
    assert not out.exists()


def test_report_writer_survives_a_lone_surrogate(tmp_path):
    from bkdoctor.safe.outfiles import write_atomic

    p = tmp_path / "r.txt"
    write_atomic(str(p), "a\ud800b")
    assert p.read_bytes() == b"a?b"


@pytest.mark.parametrize(
    "case",
    [
        "nodes-str",
        "pods-items",
        "version-int",
        "logs-list",
        "configmaps-list",
        "helm-dict",
        "status-str",
        "offset-str",
        "offset-nan",
        "gather-inf",
    ],
)
def test_bundle_types_are_checked_at_load(tmp_path, home, case):
    docs = bundle_docs()
    kinds = docs["cluster.json"]["kinds"]
    host = docs["hosts/node-1.json"]
    raw = None
    if case == "nodes-str":
        kinds["nodes"] = "x"
    elif case == "pods-items":
        kinds["pods"] = [1, 2]
    elif case == "version-int":
        kinds["version"] = 5
    elif case == "logs-list":
        kinds["logs"] = [1]
    elif case == "configmaps-list":
        kinds["configmaps"] = []
    elif case == "helm-dict":
        kinds["helm_releases"] = {"a": 1}
    elif case == "status-str":
        kinds["nodes"] = [{"metadata": {"name": "n1"}, "status": "x"}]
    elif case == "offset-str":
        host["extra"] = {"clock_offset": {"offset_s": "NaN", "rtt_s": [1]}}
    elif case == "offset-nan":
        host["extra"] = {"clock_offset": {"offset_s": float("nan"), "rtt_s": 0.01}}
        raw = {"hosts/node-1.json": json.dumps(host).encode()}
    else:
        host["gather_s"] = float("inf")
        raw = {"hosts/node-1.json": json.dumps(host).encode()}
    b = write_bundle(tmp_path / "b.tar.gz", docs, raw)
    line = one_line_error(run("scan", "--bundle", b, "--no-history", env=home))
    assert "must be" in line or "not a JSON number" in line, line


def test_well_typed_bundle_still_scans(tmp_path, home):
    b = write_bundle(tmp_path / "b.tar.gz", bundle_docs())
    r = run("scan", "--bundle", b, "--no-history", env=home)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr[-2000:]


# -- 10: CLI values checked like the inventory's; a suppression of an unknown rule is refused -------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["--domain", "a;b"],
        ["--domain", "x\x1b[31m.com"],
        ["--install-dir", "../x"],
        ["--install-dir", "/opt/$(reboot)"],
    ],
)
def test_cli_domain_and_install_dir_are_checked(home, args):
    line = one_line_error(run("scan", "--rule", "swap", "--no-history", *args, env=home))
    assert args[0] in line and "\x1b" not in line, line


def test_suppress_names_a_known_rule(tmp_path, home):
    inv = tmp_path / "inv.yaml"
    inv.write_text(LOCAL + "suppress:\n  - {rule: swapp, reason: typo}\n")
    line = one_line_error(run("scan", "-i", str(inv), "--rule", "swap", "--no-history", env=home))
    assert "swapp" in line, line
    # a real rule id, the `*` wildcard and a site rule's id (with its rules dir) are fine
    site = ROOT / "examples" / "site-rules"
    inv.write_text(
        LOCAL + "suppress:\n  - {rule: swap, reason: r}\n  - {rule: '*', target: nope, reason: r}\n"
        "  - {rule: site-ntp-intranet-server, reason: r}\n"
    )
    r = run("scan", "-i", str(inv), "--rule", "swap", "--rules-dir", str(site), "--no-history", env=home)
    assert r.returncode in (0, 1), r.stderr
    r = run("scan", "-i", str(inv), "--rule", "swap", "--no-history", env=home)  # without its rules dir: unknown
    assert "site-ntp-intranet-server" in one_line_error(r)


@pytest.mark.parametrize(
    "text",
    [BOMB, "a: " + "[" * 5000 + "]" * 5000 + "\n", "a: 1\na: 2\n", "a: \x07\n"],
    ids=["bomb", "deep", "dupkey", "control"],
)
def test_values_file_edit_refuses_hostile_yaml(monkeypatch, text):
    """install's yaml-keys step reads a values file of the site: an alias bomb, deep nesting, a duplicate key or a
    control character is reported and the file not touched (no 1.6 GB expansion, no RecursionError)."""
    import asyncio

    from bkdoctor.install import builtin as ib
    from bkdoctor.install.steps import Step

    async def read(inst, rel):
        return text

    async def write(*a, **k):
        raise AssertionError("must not write")

    monkeypatch.setattr(ib, "_read_control", read)
    monkeypatch.setattr(ib, "_write_control", write)
    step = Step(
        kind="builtin", value="yaml-keys", guide="四.4.2", quote="", args={"file": "values.yaml", "set": {"a.b": "c"}}
    )
    ok, msg = asyncio.run(ib.b_yaml_keys(object(), step))
    assert not ok and "not touched" in msg, msg


def test_db_in_a_symlinked_directory_is_refused(tmp_path, home):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    for cmd in (["scan", "--rule", "swap"], ["history"]):
        line = one_line_error(run(*cmd, "--db", str(link / "h.db"), env=home))
        assert "symbolic link" in line, line
    assert list(real.iterdir()) == []
