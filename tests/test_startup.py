"""Start-up cost (issue 16): the commands that need no host, cluster or report library never import one.

Behavioural, not timed: each command runs in a fresh interpreter through the real entry point (`bkdoctor.cli.main`)
and the test reads which modules that interpreter loaded. A module import at the top of cli.py, scan/loader.py or a
rule file would put the library back on every start and fails this test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# the libraries the issue names, plus the cluster client's own dependencies and asyncio for --version
HEAVY = ("kubernetes", "asyncssh", "sqlite_utils", "jinja2", "docker", "urllib3", "cryptography")

RUNNER = r"""
import json, sys
out = sys.argv[1]
sys.argv = ["bkdoctor", *sys.argv[2:]]
from bkdoctor.launch import main  # the console script's entry point (pyproject)
code = 0
try:
    main()
except SystemExit as e:
    code = e.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def loaded(tmp_path, *args: str) -> tuple[int, set[str], str]:
    out = tmp_path / "mods.json"
    env = dict(os.environ, LANG="C.UTF-8", COLUMNS="300", XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path))
    env.pop("KUBECONFIG", None)
    p = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    data = json.loads(out.read_text())
    return data["code"], {m.split(".")[0] for m in data["modules"]}, p.stdout


def test_version_imports_nothing_heavy(tmp_path):
    code, mods, stdout = loaded(tmp_path, "--version")
    assert code == 0 and stdout == "bkdoctor, version " + __import__("bkdoctor").__version__ + "\n"
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    assert "asyncio" not in mods and "rich" not in mods and "yaml" not in mods


@pytest.mark.parametrize("args", [("rules",), ("rules", "--json")])
def test_rules_never_imports_the_cluster_or_ssh_client(tmp_path, args):
    code, mods, stdout = loaded(tmp_path, *args)
    assert code == 0 and "insecure-registries" in stdout and "faq-" in stdout
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    assert "asyncio" not in mods


def test_the_runner_sees_a_heavy_import(tmp_path):
    """The check can fail: a command that does use the SSH client is seen importing it."""
    (tmp_path / "inv.yaml").write_text(
        "hosts:\n  - {name: n1, address: 198.18.255.254, roles: [node]}\nssh: {connect_timeout: 1}\n"
    )
    code, mods, _ = loaded(tmp_path, "scan", "-i", str(tmp_path / "inv.yaml"), "--no-history", "--rule", "swap")
    assert "asyncssh" in mods and "asyncio" in mods


def test_module_version_does_not_build_the_command_tree():
    """`python -m bkdoctor.cli --version` (how the tests and the image call it) answers before click is imported."""
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bkdoctor.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and p.stdout.startswith("bkdoctor, version ")
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "bkdoctor" in imported  # the canary: the test reads the imports of the right interpreter
    assert not {"click", "asyncio", "rich", "yaml", *HEAVY} & imported, sorted(imported)


@pytest.mark.parametrize("entry", ["launch", "module"])
def test_the_process_entry_points_freeze_before_exit_and_their_output_is_whole(tmp_path, entry):
    """Issue 16: the console script and `python -m bkdoctor.cli` freeze every object (gc.freeze) as the process
    ends, so the interpreter's final collections do not walk every module a scan imported; what they printed is all
    there. `cli.main`, which library callers and tests run in their own process, does not."""
    hook = "import atexit, gc, sys; atexit.register(lambda: sys.stderr.write(f'frozen={gc.get_freeze_count()}'))"
    if entry == "launch":
        code = hook + "; sys.argv = ['bkdoctor', 'rules', '--json']; from bkdoctor.launch import main; main()"
    else:
        code = hook + "; import runpy; sys.argv = ['bkdoctor', 'rules', '--json']; runpy.run_module('bkdoctor.cli', "
        code += "run_name='__main__', alter_sys=True)"
    env = dict(os.environ, LANG="C.UTF-8", XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)) > 50  # every rule, the JSON whole
    assert int(p.stderr.rsplit("frozen=", 1)[1]) > 10000

    lib = hook + "; from bkdoctor.cli import main\ntry:\n    main(['rules', '--json'])\nexcept SystemExit:\n    pass"
    p = subprocess.run([sys.executable, "-c", lib], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr.rsplit("frozen=", 1)[1] == "0"


def test_a_one_shot_process_collects_less_often_during_the_scan():
    """Issue 16: `bkdoctor scan` (the console script, `python -m bkdoctor.cli`) collects its youngest generation every
    10,000 allocations, not 700, while it scans; a library caller's process (cli.main, run_scan) is left alone."""
    code = (
        "import gc, bkdoctor.launch as L\n"
        "print(gc.get_threshold()[0]); L.collect_less_during_the_scan(); print(gc.get_threshold()[0])\n"
        "L.ONE_SHOT = True; L.collect_less_during_the_scan(); print(gc.get_threshold()[0])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    default, lib, one_shot = p.stdout.split()
    assert lib == default and one_shot == "10000", p.stdout  # the interpreter's own default (700 up to 3.13)
    # run_scan calls it once, before the hosts are scanned (before the asyncio.run of its host scan)
    run_py = (ROOT / "bkdoctor" / "scan" / "run.py").read_text()
    at = run_py.index("collect_less_during_the_scan()")
    assert run_py.count("collect_less_during_the_scan()") == 1 and at < run_py.index("scan_with_progress(", at)
