"""Every host remediation on real host states: fail fixture -> plan (golden diff) -> apply through the real
transport -> the rule passes -> a second fix changes nothing. Cases are the rule fixtures' `.fail` cases
(fixtures/host/<rule>/<case>.fail.yaml); a case's `fix:` says what the fix can do in a test host
(fixed, the default; manual; failed, with why; reboot: the changes stay and the operator's reboot completes it --
SELinux's Disabled --, which the test makes as a booted host has it, then the rule passes and a fix changes nothing)."""

from __future__ import annotations

import asyncio

import pytest
from hostcases import UPDATE_GOLDEN, load_cases, make_host, reboot_selinux, scan_host

from bkdoctor.fix.loop import run_fix
from bkdoctor.fix.plan import all_remediations
from bkdoctor.inputs import thresholds as th
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.scan import loader
from bkdoctor.store import History
from bkdoctor.transport import LocalTransport

REMEDIATED = {r.id for r in loader.all_rules() if r.remediation and r.scope == "host"}
CASES = [c for c in load_cases("host") if c.status in ("fail", "warn") and c.rule in REMEDIATED]


def _marks(c):
    return [pytest.mark.docker] if c.spec.get("docker") else []


def _inventory(case, host, tmp_path=None):
    inv = local_inventory(domain=case.spec.get("domain", "bkce7.bktencent.com"), install_dir="/nonexistent")
    if case.spec.get("site_files") and tmp_path is not None:  # custom.yaml etc. of the install dir
        for rel, content in case.spec["site_files"].items():
            (tmp_path / "site" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "site" / rel).write_text(content)
        inv.install_dir = str(tmp_path / "site")
    inv.hosts = [
        HostSpec(
            name="node-10-0-0-5",
            address="10.0.0.5",
            roles=tuple(case.spec.get("roles", ["node"])),
            docker_socket="/run/docker.sock",
            local=True,
        )
    ]
    for extra in case.spec.get("extra_hosts") or []:
        inv.hosts.append(
            HostSpec(
                name=extra["name"],
                address=extra["address"],
                roles=tuple(extra["roles"]),
                docker_socket="/run/docker.sock",
                local=True,
            )
        )
    for extra in case.spec.get("fix_extra_hosts") or []:  # hosts the fix needs to know about (a master)
        inv.hosts.append(HostSpec(name=extra["name"], address=extra["address"], roles=tuple(extra["roles"])))
    inv.thresholds = th.merge(case.spec.get("thresholds"))
    for k, v in {**(case.spec.get("inventory") or {}), **(case.spec.get("fix_inventory") or {})}.items():
        setattr(inv, k, v)
    return inv


def fix(case, host, tmp_path, dry_run=False):
    inv = _inventory(case, host, tmp_path)

    def factory(h, inv_):
        return LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address)

    said = []
    outcomes = asyncio.run(
        run_fix(
            inv,
            loader.select([case.rule], None),
            hosts={"node-10-0-0-5"},
            cluster=None,
            dry_run=dry_run,
            allow_disruptive=True,
            confirm=lambda plans: True,
            say=said.append,
            history=History(tmp_path / "h.db"),
            factory=factory,
        )
    )
    return [o for o in outcomes if o.target == "node-10-0-0-5"], "\n".join(said)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_fail_fix_pass_fix_again(case, nshost_factory, tmp_path):
    want = case.spec.get("fix", "fixed")
    if want.startswith("skip"):
        pytest.skip(want)
    host = make_host(nshost_factory, case)
    out, diff = fix(case, host, tmp_path, dry_run=True)
    assert len(out) == 1, out
    golden = case.path.with_name(case.path.name[: -len(".yaml")] + ".fix.diff")
    if want in ("fixed", "reboot") and diff:
        # the golden diff: what an operator sees before saying yes (timestamps and pids are not in it)
        if UPDATE_GOLDEN or not golden.exists():
            if not UPDATE_GOLDEN:
                pytest.fail(f"no golden diff {golden.name}: run with BKDOCTOR_UPDATE_GOLDEN=1 and review it")
            golden.write_text(diff + "\n")
        assert diff + "\n" == golden.read_text()
    before = {p: host.read(p) for p in ("/etc/fstab", "/etc/hosts") if _exists(host, p)}
    out, _ = fix(case, host, tmp_path)
    o = out[0]
    assert o.status == ("manual" if want == "reboot" else want.split(":")[0]), (o.status, o.message.en)
    if want == "reboot":
        assert "reboot" in o.message.en, o.message.en
        assert scan_host(host, case, [case.rule])[0]["findings"][0]["status"] == "fail"  # until the reboot
        reboot_selinux(host)
        rep, _ = scan_host(host, case, [case.rule])
        assert rep["findings"][0]["status"] == "pass", rep["findings"][0]
        again, _ = fix(case, host, tmp_path)
        assert again == [], [(x.status, x.message.en) for x in again]
    if want == "fixed":
        again, _ = fix(case, host, tmp_path)
        assert again == [] or again[0].status == "unchanged", [(x.status, x.message.en) for x in again]
        # backups next to each file the fix rewrote
        for w in o.applied["wrote"]:
            if w["backup"]:
                assert _exists(host, w["backup"]), w
    if want.startswith("failed"):
        # a failed verification puts the files back exactly
        for p, content in before.items():
            assert host.read(p) == content, p


def _exists(host, path):
    return host.run(f"test -e {path}", check=False).returncode == 0


def test_every_remediation_has_a_case():
    # reboot: the whole fail -> fix -> reboot -> pass cycle too
    covered = {c.rule for c in CASES if c.spec.get("fix", "fixed") in ("fixed", "reboot")}
    rems = {r.id for r in all_remediations().values() if r.scope == "host"}
    assert rems - covered == {"time-sync"}, rems - covered  # chronyd cannot be enabled without systemd here
    assert "swap" in covered and any(c.spec.get("real_swap") for c in CASES)


def test_kernel_params_names_the_line_that_wins_over_its_file(nshost_factory, tmp_path):
    """/etc/sysctl.conf is read after every sysctl.d file at boot: bkdoctor's 90-bkdoctor.conf cannot win over its
    ip_forward = 0, so the fix writes nothing and says which line to change (and why), in both languages."""
    case = next(c for c in CASES if c.id == "kernel-params/sysctl-conf-last.warn")
    host = make_host(nshost_factory, case)
    out, _ = fix(case, host, tmp_path)
    assert [o.status for o in out] == ["manual"]
    assert out[0].plan.changes == [] and out[0].plan.manual == ["vi /etc/sysctl.conf", "sysctl --system"]
    note = out[0].plan.note
    assert "/etc/sysctl.conf:2 net.ipv4.ip_forward = 0" in note.en and "/etc/sysctl.conf:2" in note.zh
    assert "/etc/sysctl.d/90-bkdoctor.conf" in note.en and not _exists(host, "/etc/sysctl.d/90-bkdoctor.conf")
    assert out[0].message.en.startswith(note.en + "; run by hand:") and out[0].message.zh.startswith(note.zh)
