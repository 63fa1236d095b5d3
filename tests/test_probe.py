"""The probe's framing and the facts layer: bad bytes never break parsing, a cut-off probe never passes."""
from __future__ import annotations

import asyncio
import dataclasses
import subprocess

from bkdoctor.scan.engine import Context, evaluate
from bkdoctor.facts.host import FACTS, HostFacts, PARSERS
from bkdoctor.facts.probe import SECTIONS, build_script, parse_output
from bkdoctor.model import T
from bkdoctor.scan.loader import all_rules
from bkdoctor.inputs.thresholds import merge
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
    script = script.replace("( uname -n )", f"( cat {f} )")
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


def test_local_transport_times_out_and_kills_the_probe():
    t = LocalTransport()
    from bkdoctor.transport import TransportError
    import time

    t0 = time.monotonic()
    try:
        asyncio.run(t.run_script("sleep 30\n", timeout=0.5))
    except TransportError as e:
        assert "timed out" in str(e)
    else:
        raise AssertionError("no timeout")
    assert time.monotonic() - t0 < 5
