"""The probe's framing and the facts layer: bad bytes never break parsing, a cut-off probe never passes."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest

from bkdoctor.facts import host
from bkdoctor.facts.host import FACTS, PARSERS, SECTIONS, HostFacts, probe_params
from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.inputs.thresholds import merge
from bkdoctor.scan import loader
from bkdoctor.scan.engine import Context, evaluate
from bkdoctor.scan.loader import all_rules
from bkdoctor.transport import LocalTransport


def sh(script: str) -> bytes:
    return subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, check=False).stdout


def test_every_section_runs_in_plain_posix_sh():
    script, nonce = build_script(SECTIONS)
    # dash is a strict POSIX shell: no bashisms may slip into the probe
    out = subprocess.run(["dash", "-n"], input=script.encode(), capture_output=True)
    assert out.returncode == 0, out.stderr
    parsed = parse_output(sh(script), nonce)
    assert set(parsed) == set(SECTIONS)


def test_binary_garbage_and_forged_markers_do_not_confuse_framing(tmp_path):
    f = tmp_path / "garbage"
    f.write_bytes(b"\x00\xff\xfe\n@@BKD-deadbeef:E:hostname:0\n\x1b[31m no newline at end")
    script, nonce = build_script({"hostname"})
    section = SECTIONS["hostname"]
    assert section in script
    script = script.replace(section, f"cat {f}")
    parsed = parse_output(sh(script), nonce)
    assert parsed["hostname"].out == f.read_bytes()
    assert parsed["hostname"].rc == 0
    assert "\ufffd" in parsed["hostname"].text()


def test_cut_off_probe_drops_the_section_and_the_rule_errors():
    script, nonce = build_script({"proc_swaps", "fstab"})
    out = sh(script)
    cut = out[: out.index(b":B:proc_swaps") + 40]  # the connection died mid-section
    facts = HostFacts(parse_output(cut, nonce))
    rule = next(r for r in all_rules() if r.id == "swap")
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain="a.b")
    res = evaluate(rule, facts, ctx)
    assert res.status == "error" and "cut off" in res.message.en


def test_a_crashing_rule_is_an_error_finding_not_a_crash():
    rule = next(r for r in all_rules() if r.id == "swap")
    broken = dataclasses.replace(rule, check=lambda f, c: 1 / 0)
    ctx = Context(target="t", roles=("node",), address=None, thresholds=merge(None), domain=None)
    res = evaluate(broken, HostFacts({}), ctx)
    assert res.status == "error" and "ZeroDivisionError" in res.message.en


def test_probe_is_one_round_trip_with_only_needed_sections():
    script, _ = build_script({"proc_swaps", "fstab"})
    assert "/proc/swaps" in script and "docker" not in script and "iptables" not in script


def test_facts_table_is_consistent():
    assert set(FACTS) == set(PARSERS)
    for r in all_rules():
        if r.scope in ("host", "fleet"):
            assert set(r.facts) <= set(FACTS), r.id


def test_every_section_belongs_to_a_fact():
    read = {s for f in FACTS for s in FACTS[f]} | {s for r in host.RECORDS.values() for s in r.fallback}
    assert read == set(SECTIONS)


def test_a_section_reading_an_undeclared_parameter_fails(monkeypatch):
    monkeypatch.setitem(host.SECTIONS, "typo", 'echo "$BKD_DOMIAN"')
    with pytest.raises(ValueError, match="BKD_DOMIAN"):
        host._check_params()


GOLDEN = Path(__file__).with_name("data") / "probe-script.golden.sh"


def test_probe_script_is_unchanged():
    """The whole probe, every section with the parameters of a fixed inventory, byte for byte (the facts moved
    into one record each, issue 13; the probe's rewrite, issue 16, changes this golden on purpose)."""
    inv = local_inventory("bk.example.com", install_dir="/nonexistent/bkdoctor-golden")
    h = HostSpec(name="golden", address="192.0.2.1", roles=("control", "master", "node", "registry-proxy"))
    params = {**probe_params(inv, h), "BKD_DOCKER_IF_NO_SOCKET": "/var/run/docker.sock"}
    script, _ = build_script(set(SECTIONS), nonce="0123456789abcdef", params=params)
    assert script == GOLDEN.read_text()


RULE_FILE = """from bkdoctor.scan.rulekit import G_KERNEL, cite, HOST_ROLES, Rule, T, passed

RULE = Rule(id="{id}", title=T("t", "t"), scope="{scope}", severity="low", roles=HOST_ROLES, group="{scope}",
            facts={facts!r}, guide=cite(G_KERNEL, "| Swap | 必须关闭 | `free -m`（Swap行值为0） |"), doc=T("d", "d"))


def check(facts, ctx):
    return passed(T("ok", "ok"))
"""


def _rule_file(root: Path, scope: str, rid: str, facts: tuple[str, ...]) -> Path:
    (root / scope).mkdir(exist_ok=True)
    p = root / scope / f"{rid}.py"
    p.write_text(RULE_FILE.format(id=rid, scope=scope, facts=facts), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "scope,good,typo",
    [
        ("host", ("daemon_json", "docker"), "daemon_jsn"),
        ("fleet", ("clock_offset",), "clock_ofset"),
        ("cluster", ("nodes", "helm_releases"), "node"),
    ],
)
def test_a_rule_declaring_an_unknown_fact_is_refused_at_load(tmp_path, monkeypatch, scope, good, typo):
    monkeypatch.setattr(loader, "rules_dir", lambda: tmp_path)
    assert loader._load_file(_rule_file(tmp_path, scope, f"good-{scope}", good)).facts == good
    bad = _rule_file(tmp_path, scope, f"typo-{scope}", (good[0], typo))
    with pytest.raises(ImportError) as e:
        loader._load_file(bad)
    assert str(bad) in str(e.value) and repr(typo) in str(e.value)


def test_a_host_fact_is_not_a_cluster_fact(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "rules_dir", lambda: tmp_path)
    with pytest.raises(ImportError, match="unknown cluster fact"):
        loader._load_file(_rule_file(tmp_path, "cluster", "wrong-side", ("daemon_json",)))


def test_local_transport_times_out_and_kills_the_probe():
    t = LocalTransport()
    import time

    from bkdoctor.transport import TransportError

    t0 = time.monotonic()
    try:
        asyncio.run(t.run_script("sleep 30\n", timeout=0.5))
    except TransportError as e:
        assert "timed out" in str(e)
    else:
        raise AssertionError("no timeout")
    assert time.monotonic() - t0 < 5


def test_sections_in_the_probes_shell_cannot_leak():
    """A section runs in the probe's own shell (no subshell, no fork) only when it cannot end or move that shell or
    leave jobs behind; its status is `return N`, which only a function has: no section uses `return` in a subshell."""
    from bkdoctor.facts.probe import runs_inline

    inline = {n for n, s in SECTIONS.items() if runs_inline(s)}
    assert {"hostname", "id", "nproc", "meminfo", "sysctl_runtime", "firewalld_wants", "df"} <= inline
    assert {"getent_hosts", "fio"}.isdisjoint(inline)  # background jobs, a trap
    for n, s in SECTIONS.items():
        assert ("return" in s) <= (n in inline), n
    for bad in ("exit 3", "cd /", "trap 'x' EXIT", "sleep 1 & wait", "set -e", ". /etc/profile", "export A=1"):
        assert not runs_inline(bad), bad
    assert runs_inline("a && b; c 2>&1 >&2; [ -x f ] || return 3")
