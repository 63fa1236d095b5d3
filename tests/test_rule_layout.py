"""From a rule id to everything about it by path alone: every rule has its fixtures,
fixtures/<scope>/<id>/ with a pass case and a fail-or-warn case; a rule that declares a remediation has it at
remediations/<scope>/<id>.py, with a fix case (a fail-or-warn fixture the fix tests plan, whose plan diff is a
golden `.fix.diff`); and every remediation file fixes a rule of its name and scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from bkdoctor.fix.plan import all_remediations
from bkdoctor.scan.loader import all_rules, remediations_dir

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# a fix that cannot run in a test host: its cases end `manual` (tests/test_fix_host.py says why)
NO_GOLDEN_DIFF = {"time-sync": "chronyd cannot be enabled without systemd in a test host"}


def _statuses(scope: str, rule_id: str, fixtures: Path = FIXTURES) -> set[str]:
    return {p.name[: -len(".yaml")].rpartition(".")[2] for p in (fixtures / scope / rule_id).glob("*.yaml")}


def layout_problems(fixtures: Path = FIXTURES) -> list[str]:
    problems = []
    rems = all_remediations()
    for r in all_rules():
        have = _statuses(r.scope, r.id, fixtures)
        if "pass" not in have or not have & {"fail", "warn"}:
            problems.append(
                f"{r.id}: fixtures/{r.scope}/{r.id}/ needs a pass and a fail-or-warn case (has {sorted(have)})"
            )
        if not r.remediation:
            continue
        if not (remediations_dir() / r.scope / f"{r.id}.py").exists() or r.id not in rems:
            problems.append(f"{r.id}: no remediations/{r.scope}/{r.id}.py")
        if not have & {"fail", "warn"}:
            problems.append(f"{r.id}: its remediation has no fail-or-warn case to fix")
        elif r.id not in NO_GOLDEN_DIFF and not list((fixtures / r.scope / r.id).glob("*.fix.diff")):
            problems.append(f"{r.id}: no fix case with a golden plan diff (fixtures/{r.scope}/{r.id}/<case>.fix.diff)")
    declared = {(r.scope, r.id) for r in all_rules() if r.remediation}
    for rid, rem in rems.items():
        if (rem.scope, rid) not in declared:
            problems.append(
                f"remediations/{rem.scope}/{rid}.py: no {rem.scope} rule {rid!r} names it as its remediation"
            )
    return problems


def test_every_rule_has_fixtures_and_its_remediation_a_fix_case():
    assert layout_problems() == []


def test_a_missing_fixture_is_found(tmp_path):
    """The check can fail: with one fixture of swap gone (a copy of fixtures/ without it), it says so."""
    import shutil

    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy, ignore=shutil.ignore_patterns("*.golden.json"))
    for p in (copy / "host" / "swap").glob("*.pass.yaml"):
        p.unlink()
    for p in (copy / "cluster" / "coredns").glob("*.fix.diff"):
        p.unlink()
    got = layout_problems(copy)
    assert any(x.startswith("swap: fixtures/host/swap/ needs a pass") for x in got), got
    assert any(x.startswith("coredns: no fix case with a golden plan diff") for x in got), got
    assert len(got) == 2, got


@pytest.mark.parametrize("rule_id", sorted(NO_GOLDEN_DIFF))
def test_exemptions_are_still_needed(rule_id):
    assert not list(FIXTURES.glob(f"*/{rule_id}/*.fix.diff")), f"{rule_id} has a golden diff now: drop its exemption"
