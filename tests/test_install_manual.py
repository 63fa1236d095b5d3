"""Manual steps without a terminal (--yes): one whose checks cannot prove the operator's work stops the install
(unless confirmed explicitly by its id); it is never recorded done silently."""
from __future__ import annotations

import asyncio
import dataclasses

from bkdoctor.install import Installer, load_phases
from bkdoctor.inventory import local_inventory
from bkdoctor.store import History


def _phase(pid, pred):
    p = next(p for p in load_phases() if p.id == pid)
    return dataclasses.replace(p, steps=[s for s in p.steps if pred(s)], requires=[], gate=[], verify=[], checks=[])


def _run(tmp_path, phase, confirmed=None):
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    said = []
    inst = Installer(inv, history=History(str(tmp_path / "h.db")), say=said.append, confirm=lambda q: True,
                     cluster_factory=lambda: None, interactive=False, confirmed_manual=confirmed)
    return inst, asyncio.run(inst.run([phase])), "\n".join(said)


def test_unprovable_manual_steps_wait_for_the_operator_without_a_terminal(tmp_path):
    gse = _phase("agents", lambda s: s.kind == "manual")  # §十.3.2: nothing bkdoctor can check
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
    assert len(proven) == 2 and all(any(b.startswith("pods:") for b in s.verify_builtin)
                                    for p in load_phases() for s in p.steps if s.args.get("proven_by_verify"))
