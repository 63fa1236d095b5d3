"""Every rule against real host states: each fixture case becomes a namespaced host, the real probe runs in
it through the real engine, and the finding must have the status in the case's file name and match its
golden file (BKDOCTOR_UPDATE_GOLDEN=1 rewrites the golden files; review the diff before committing)."""

from __future__ import annotations

import json

import pytest
import yaml
from hostcases import UPDATE_GOLDEN, golden_view, load_cases, make_host, scan_host

from bkdoctor.scan import loader
from bkdoctor.scan.loader import all_rules

CASES = load_cases("host")


def _marks(case):
    return [pytest.mark.docker] if case.spec.get("docker") else []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_rule_case(case, nshost_factory, report_validator):
    host = make_host(nshost_factory, case)
    report, _ = scan_host(host, case)
    report_validator(report)
    mine = [f for f in report["findings"] if f["rule"] == case.rule]
    assert len(mine) == 1, f"expected one {case.rule} finding, got {mine}"
    f = mine[0]
    assert f["status"] == case.status, f"{case.id}: {f['status']}: {f['message']}\nobserved={f['observed']}"
    for needle in case.spec.get("message_contains") or []:
        assert needle in f["message"], (needle, f["message"])
    got = golden_view(f, case.spec.get("golden_ignore") or [])
    if UPDATE_GOLDEN or not case.golden_path.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"no golden file {case.golden_path.name}: run with BKDOCTOR_UPDATE_GOLDEN=1 and review it")
        case.golden_path.write_text(json.dumps(got, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(case.golden_path.read_text())


def test_every_host_rule_has_pass_and_fail_cases():
    have: dict[str, set[str]] = {}
    for c in CASES:
        have.setdefault(c.rule, set()).add(c.status)
    missing = {
        r.id: sorted({"pass", "fail"} - have.get(r.id, set()))
        for r in all_rules()
        if r.scope == "host" and not {"pass", "fail"} <= have.get(r.id, set())
    }
    assert not missing, f"rules without a pass and a fail fixture: {missing}"


def test_fixture_dirs_name_real_rules():
    ids = {r.id for r in all_rules()}
    assert {c.rule for c in CASES} <= ids


def _whole_case(spec):
    from hostcases import FIXTURES, Case

    # the ingress as a node reaches it (§七.3): a real registry that asks for auth at the address docker.<domain>
    # resolves to, as in fixtures/host/registry-ingress/answers-401.pass.yaml
    ingress = yaml.safe_load((FIXTURES / "host" / "registry-ingress" / "answers-401.pass.yaml").read_text())
    spec = {
        **spec,
        "files": {**ingress["files"], **(spec.get("files") or {})},
        "setup": ingress["setup"] + (spec.get("setup") or ""),
    }
    return Case(rule="swap", name="whole-host", status="pass", path=FIXTURES / "hosts" / "centos79.yaml", spec=spec)


@pytest.mark.docker
def test_healthy_centos_node_passes_every_rule(nshost_factory, report_validator):
    """The whole default scan of a CentOS 7.9 node as bcs.sh leaves it: every applicable rule passes."""
    case = _whole_case(
        {
            "docker": True,
            "chronyd": "synced",
            "roles": ["node"],
            "files": {"/usr/local/bin/kubelet": {"content": "#!/bin/sh\necho 'Kubernetes v1.20.11'\n", "mode": 0o755}},
        }
    )
    host = make_host(nshost_factory, case)
    report, _ = scan_host(host, case, rules=["host"])
    report_validator(report)
    bad = {f["rule"]: f["message"] for f in report["findings"] if f["status"] not in ("pass", "skip")}
    assert not bad
    skipped = {f["rule"] for f in report["findings"] if f["status"] == "skip"}
    # no registry proxy, no $REGISTRY, no NFS, no custom.yaml in this inventory
    assert skipped == {"registry-mirrors", "registry-trusted", "nfs-storage", "containers-log-path"}
    assert not any("slow" in r.tags for r in loader.all_rules() if r.id in {f["rule"] for f in report["findings"]})


@pytest.mark.docker
def test_broken_node_reports_exactly_its_problems(nshost_factory, report_validator):
    """Four things broken on one node at once: the scan finds exactly those four, and nothing else moves."""
    case = _whole_case(
        {
            "docker": True,
            "chronyd": "synced",
            "roles": ["node"],
            "selinux_enforce": "1",
            "files": {
                "/etc/selinux/config": "SELINUX=enforcing\n",
                "/proc/swaps": "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition\t4194300\t0\t-2\n",
                "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", '
                '"exec-opts": ["native.cgroupdriver=systemd"]}\n',
                "/usr/local/bin/kubelet": {"content": "#!/bin/sh\necho 'Kubernetes v1.20.11'\n", "mode": 0o755},
            },
            "symlinks": {"/etc/localtime": "../usr/share/zoneinfo/UTC"},
        }
    )
    host = make_host(nshost_factory, case)
    report, _ = scan_host(host, case, rules=["host"])
    report_validator(report)
    problems = sorted((f["rule"], f["status"]) for f in report["findings"] if f["status"] not in ("pass", "skip"))
    assert problems == [("insecure-registries", "fail"), ("selinux", "fail"), ("swap", "fail"), ("timezone", "fail")]
