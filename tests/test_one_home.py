"""Constants with one home (bkdoctor/model.py): the JSON schemas spell their enums out for readers of the schema,
and this holds them to the constants the code uses."""

from __future__ import annotations

import json
from pathlib import Path

from bkdoctor.model import PROBLEM_STATUSES, ROLES, SEVERITIES, STATUS_RANK, STATUSES
from bkdoctor.scan import rulekit

ROOT = Path(__file__).resolve().parent.parent


def schema(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text(encoding="utf-8"))


def test_inventory_schema_roles():
    s = schema("bkdoctor/inputs/inventory.schema.json")
    assert s["properties"]["hosts"]["items"]["properties"]["roles"]["items"]["enum"] == list(ROLES)


def test_site_rules_schema_severities_and_roles():
    text = (ROOT / "bkdoctor/scan/site-rules.schema.json").read_text(encoding="utf-8")
    assert json.dumps(list(SEVERITIES)) in text and json.dumps(list(ROLES)) in text
    assert text.count('"critical"') == 1 and text.count('"registry-proxy"') == 1  # no second, different list


def test_report_schema_statuses_and_severities():
    finding = schema("reports/report-v1.schema.json")["properties"]["findings"]["items"]["properties"]
    assert finding["status"]["enum"] == list(STATUSES)
    assert finding["severity"]["enum"] == list(SEVERITIES)
    assert finding["suppression"]["properties"]["original_status"]["enum"] == list(PROBLEM_STATUSES)


def test_every_status_has_a_rank_and_rulekit_roles_are_the_model_roles():
    assert set(STATUS_RANK) == set(STATUSES)
    assert rulekit.ALL_ROLES == ROLES and set(rulekit.HOST_ROLES + rulekit.K8S_ROLES) <= set(ROLES)


def test_domain_pattern_one_home():
    from bkdoctor.safe.names import DOMAIN_PATTERN, valid_domain

    assert schema("bkdoctor/inputs/inventory.schema.json")["properties"]["domain"]["pattern"] == DOMAIN_PATTERN
    assert valid_domain("bkce7.bktencent.com") and not valid_domain("bk;rm") and not valid_domain("a.b\n")
    assert not valid_domain("a." * 130 + "com")  # longer than a DNS name can be
