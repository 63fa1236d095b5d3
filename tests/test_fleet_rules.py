"""Fleet rules on recorded facts of several hosts (fixtures/fleet/<rule>/<case>.<status>.yaml).

The testbed's hosts share this machine's kernel clock, so clock skew cannot be made real there: the
fleet-clock-skew cases are the offsets the engine's timed round trip records on a real fleet. The other fleet
rules also run on the real multi-host testbed in the SSH tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hostcases import UPDATE_GOLDEN, golden_view

from bkdoctor.facts.host import HostFacts
from bkdoctor.facts.probe import Section
from bkdoctor.inputs import thresholds as th
from bkdoctor.inputs.inventory import local_inventory
from bkdoctor.scan.engine import TargetState, evaluate_fleet
from bkdoctor.scan.loader import all_rules

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "fleet"
CASES = sorted(FIX.glob("*/*.yaml"))  # <case>.<status>.yaml; <case>.<status>.golden.json beside it


def _facts(spec):
    secs = {}
    for name, v in (spec.get("sections") or {}).items():
        if isinstance(v, dict):
            secs[name] = Section(name, v["rc"], v["out"].encode())
        else:
            secs[name] = Section(name, 0, v.encode())
    # sections a case does not give are absent from the host, as on a host where the file does not exist
    for name in ("daemon_json",):
        secs.setdefault(name, Section(name, 3, b""))
    for name in ("docker_bins", "kubelet_version"):
        secs.setdefault(name, Section(name, 127 if name == "kubelet_version" else 0, b""))
    api = None
    if "docker_info" in spec or "docker_version" in spec:
        api = {"info": spec.get("docker_info") or {}, "version": spec.get("docker_version") or {}}
    return HostFacts(secs, docker_api=api, extra=dict(spec.get("extra") or {}))


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_fleet_case(path, report_validator):
    spec = yaml.safe_load(path.read_text())
    rule = next(r for r in all_rules() if r.id == path.parent.name)
    targets = [
        TargetState(name=n, kind="host", address=None, roles=tuple(h["roles"]), reachable=True, facts=_facts(h))
        for n, h in spec["hosts"].items()
    ]
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.thresholds = th.merge(spec.get("thresholds"))
    for k, v in (spec.get("inventory") or {}).items():  # e.g. suites, container_monitoring
        setattr(inv, k, v)
    findings = evaluate_fleet([rule], targets, inv)
    got = {f.target: f.status for f in findings}
    assert got == spec["expect"], {f.target: f.result.message.en for f in findings}
    for f in findings:
        d = f.to_dict("zh")
        assert d["message"] and d["i18n"]["en"]["message"]
    # golden findings, as host cases have: every member's message, observed and expected values
    # (BKDOCTOR_UPDATE_GOLDEN=1 rewrites them; review the diff before committing)
    got_view = {f.target: golden_view(f.to_dict("zh"), spec.get("golden_ignore") or []) for f in findings}
    golden = path.with_name(path.name[: -len(".yaml")] + ".golden.json")
    if UPDATE_GOLDEN or not golden.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"no golden file {golden.name}: run with BKDOCTOR_UPDATE_GOLDEN=1 and review it")
        golden.write_text(json.dumps(got_view, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    assert got_view == json.loads(golden.read_text())
    status = path.stem.rsplit(".", 1)[1]
    worst = {"error": 3, "fail": 2, "warn": 1}
    assert max((worst.get(s, 0) for s in got.values()), default=0) == worst.get(status, 0)


def test_every_fleet_rule_has_pass_and_fail_cases():
    have = {}
    for p in CASES:
        have.setdefault(p.parent.name, set()).add(p.stem.rsplit(".", 1)[1])
    for r in all_rules():
        if r.scope == "fleet":
            assert "pass" in have.get(r.id, set()) and have[r.id] & {"fail", "error"}, r.id


def test_unreachable_member_is_an_error_for_that_host_only():
    rule = next(r for r in all_rules() if r.id == "fleet-hostname")
    ok = TargetState(
        name="a",
        kind="host",
        address=None,
        roles=("node",),
        reachable=True,
        facts=HostFacts({"hostname": Section("hostname", 0, b"a\n")}),
    )
    down = TargetState(
        name="b", kind="host", address=None, roles=("node",), reachable=False, error="connection refused"
    )
    got = {f.target: (f.status, f.result.message.en) for f in evaluate_fleet([rule], [ok, down], local_inventory())}
    assert got["a"][0] == "pass" and got["b"] == ("error", "host unreachable: connection refused")


def _targets(spec):
    return [
        TargetState(name=n, kind="host", address=None, roles=tuple(h["roles"]), reachable=True, facts=_facts(h))
        for n, h in spec["hosts"].items()
    ]


def test_a_scan_that_keeps_no_facts_finds_the_same():
    """`bkdoctor scan` lets each host's parsed facts go once its host rules ran, and every host's facts once the fleet
    rules ran (issue 16: what 300 hosts held until the report was written). The findings are the same as a scan that
    keeps them (fix and collect), on every fleet case with every host and fleet rule; nothing is kept after."""
    import asyncio

    from bkdoctor.scan.engine import scan

    rules = [r for r in all_rules() if r.scope in ("host", "fleet")]
    for path in CASES:
        spec = yaml.safe_load(path.read_text())
        inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
        inv.thresholds = th.merge(spec.get("thresholds"))
        for k, v in (spec.get("inventory") or {}).items():
            setattr(inv, k, v)
        got = {}
        for keep in (True, False):
            res = asyncio.run(scan(inv, rules, preloaded_hosts=_targets(spec), keep_facts=keep))
            got[keep] = [(f.rule.id, f.target, f.status, f.result.message.en, f.result.observed) for f in res.findings]
            kept = [t.facts is not None for t in res.targets if t.kind == "host"]
            assert kept == [keep] * len(spec["hosts"]), path.name
        assert got[True] == got[False], path.name
