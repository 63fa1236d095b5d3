"""Manual steps without a terminal (--yes): one whose checks cannot prove the operator's work stops the install
(unless confirmed explicitly by its id); it is never recorded done silently."""

from __future__ import annotations

import asyncio
import dataclasses

from bkdoctor.inputs.inventory import local_inventory
from bkdoctor.install.phases import Installer, load_phases
from bkdoctor.store import History


def _phase(pid, pred):
    p = next(p for p in load_phases() if p.id == pid)
    return dataclasses.replace(p, steps=[s for s in p.steps if pred(s)], requires=[], gate=[], verify=[], checks=[])


def _run(tmp_path, phase, confirmed=None):
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    said = []
    inst = Installer(
        inv,
        history=History(str(tmp_path / "h.db")),
        say=said.append,
        confirm=lambda q: True,
        cluster_factory=lambda: None,
        interactive=False,
        confirmed_manual=confirmed,
    )
    return inst, asyncio.run(inst.run([phase])), "\n".join(said)


def test_unprovable_manual_steps_wait_for_the_operator_without_a_terminal(tmp_path):
    gse = _phase("agents", lambda s: s.kind == "manual" and "32181" in s.value["en"])  # §十.3.2: nothing to check
    inst, rep, out = _run(tmp_path, gse)
    assert rep[-1].status == "failed" and "waits for the operator" in rep[-1].message, rep
    assert "BKDOCTOR_CONFIRM_MANUAL=agents.1" in out, out
    assert inst.state.get("agents", 0)["status"] != "done" and not inst.state.phase_done("agents")
    # the explicit opt-in
    inst, rep, out = _run(tmp_path, gse, confirmed=["agents.1"])
    assert rep[-1].status == "done", (rep, out)
    # §九.3.1 Redis pool: bk-redis exists since §五.3, so its check proves nothing: it waits too
    redis = _phase("saas", lambda s: s.kind == "manual" and "0shared" in s.value["en"])
    inst, rep, out = _run(tmp_path, redis)
    assert rep[-1].status == "failed" and "waits for the operator" in rep[-1].message
    assert inst.state.get("saas", 0)["status"] == "failed"


def test_smart_steps_are_proven_by_their_pods():
    """bk_itsm / bk_sops: their pods prove the upload; those (and only those) may go on without a terminal."""
    proven = [s.quote for p in load_phases() for s in p.steps if s.kind == "manual" and s.args.get("proven_by_verify")]
    assert len(proven) == 2 and all(
        any(b.startswith("pods:") for b in s.verify_builtin)
        for p in load_phases()
        for s in p.steps
        if s.args.get("proven_by_verify")
    )


import subprocess  # noqa: E402

import pytest  # noqa: E402

from bkdoctor.install.steps import render  # noqa: E402


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize(
    "before,after",
    [
        ("2.3.5", "2.4.4"),
        ("2.4.4-beta.1", "2.4.4"),
        ("2.4.4", "2.4.4"),
        ("2.4.10", "2.4.10"),
        ("2.5.0-rc.1", "2.5.0-rc.1"),
        ("3.0.0", "3.0.0"),
    ],
)
def test_nodeman_version_is_raised_to_2_4_4_never_lowered(tmp_path, shell, before, after):
    """§九.5.3's sed replaces 2.3.5 by 2.4.4; bkdoctor raises any older version, keeps a newer one, and its check
    accepts >= 2.4.4 like the nodeman-version rule."""
    step = next(
        s for p in load_phases() if p.id == "saas" for s in p.steps if s.kind == "run" and "version.yaml" in s.value
    )
    f = tmp_path / "environments" / "default" / "version.yaml"
    f.parent.mkdir(parents=True)
    f.write_text(f'# versions\nreleases:\n  bk-gse-ce: "2.1.2-beta.20"\n  bk-nodeman: "{before}"\n')
    r = subprocess.run([shell, "-c", render(step.value, {})], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f'  bk-nodeman: "{after}"' in f.read_text().splitlines() and 'bk-gse-ce: "2.1.2-beta.20"' in f.read_text()
    assert subprocess.run([shell, "-c", step.verify_run], cwd=tmp_path).returncode == 0
    f.write_text('releases:\n  bk-nodeman: "2.4.3"\n')
    assert subprocess.run([shell, "-c", step.verify_run], cwd=tmp_path).returncode != 0


def test_release_check_at_least():
    import asyncio as aio
    from types import SimpleNamespace

    from bkdoctor.install.builtin import c_release

    def inst(v):
        return SimpleNamespace(_releases=lambda: {"bk-nodeman": {"status": "deployed", "chart_version": v}})

    assert aio.run(c_release(inst("2.4.4"), "bk-nodeman>=2.4.4"))[0]
    assert aio.run(c_release(inst("2.5.0"), "bk-nodeman>=2.4.4"))[0]
    assert not aio.run(c_release(inst("2.4.4-beta.1"), "bk-nodeman>=2.4.4"))[0]
    assert not aio.run(c_release(inst("2.3.5"), "bk-nodeman>=2.4.4"))[0]
    assert not aio.run(c_release(inst("2.5.0"), "bk-nodeman=2.4.4"))[0]


def test_strict_gate_blocks_on_a_check_that_could_not_judge():
    """§十二.2.1: the monitor-log gate (component-versions, gate_strict) with no bk-gse / bk-apigateway at all is a
    skip; it must not let monitor/log start."""
    from types import SimpleNamespace

    f = SimpleNamespace(status="skip", rule=SimpleNamespace(id="component-versions"), target="cluster")
    st = {"component-versions": ("skip", [f])}
    assert Installer.verdict(st, ["component-versions"], warn_blocks=True) == (False, [f])
    assert Installer.verdict(st, ["component-versions"])[0] is True  # a non-strict gate: as before
