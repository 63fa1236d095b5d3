"""`bkdoctor install`: the guided BlueKing 7.1 deployment, phase by phase (bkdoctor/phases.yaml), each gated by
checks, with its progress in the history database so that an interrupted run resumes where it stopped.

A phase starts only when its `gate` rules pass; its steps are bkdoctor's own remediations (`fix:`), commands on
the control machine in install_dir (`run:`, through the same transport as every other command; output saved to a
log file per step and shown live) or checks; then its `verify` rules must pass. A finished phase whose verify
rules still pass is skipped on a re-run; when they no longer pass, it runs again. When a step fails, the cluster
is scanned for the known failure signatures and the phase's rules, and the cause and fix are shown.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import engine, registry
from .inventory import HostSpec, Inventory
from .model import BadInput, T

PHASES_FILE = Path(__file__).with_name("phases.yaml")


@dataclass
class Step:
    kind: str  # fix | run | check
    value: Any  # rule ids (fix) or a command (run/check)
    on: str = "control"  # control | first-master | registry-proxy
    timeout: float = 600

    def describe(self) -> str:
        if self.kind == "fix":
            return "bkdoctor fix --rule " + " --rule ".join(self.value)
        return self.value


@dataclass
class Phase:
    id: str
    title: T
    guide: str
    steps: list[Step]
    requires: list[str] = field(default_factory=list)
    gate: list[str] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)
    optional: bool = False


def load_phases(path: Path = PHASES_FILE) -> list[Phase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Phase] = []
    seen: set[str] = set()
    known = {r.id for r in registry.all_rules()} | {r.group for r in registry.all_rules()}
    for p in data["phases"]:
        steps = []
        for s in p.get("steps") or []:
            kind = next(k for k in ("fix", "run", "check") if k in s)
            steps.append(Step(kind, s[kind], s.get("on", "control"), float(s.get("timeout", 600))))
        ph = Phase(p["id"], T(p["title"]["zh"], p["title"]["en"]), str(p.get("guide", "")), steps,
                   list(p.get("requires") or []), list(p.get("gate") or []), list(p.get("verify") or []),
                   bool(p.get("optional", False)))
        if ph.id in seen:
            raise ValueError(f"phases: duplicate id {ph.id}")
        for r in ph.requires:
            if r not in seen:
                raise ValueError(f"phases: {ph.id} requires {r}, which is not an earlier phase")
        for sel in ph.gate + ph.verify + [x for s in ph.steps if s.kind == "fix" for x in s.value]:
            if sel not in known:
                raise ValueError(f"phases: {ph.id}: unknown rule {sel}")
        seen.add(ph.id)
        out.append(ph)
    return out


def select_phases(phases: list[Phase], only: str | None, start: str | None, until: str | None,
                  with_optional: set[str]) -> list[Phase]:
    ids = [p.id for p in phases]
    for x in (only, start, until):
        if x and x not in ids:
            raise BadInput(f"unknown phase {x!r} (phases: {', '.join(ids)})")
    for x in with_optional:
        if x not in ids:
            raise BadInput(f"unknown phase {x!r} in --with")
    out = [p for p in phases if not p.optional or p.id in with_optional or p.id == only]
    if only:
        return [p for p in out if p.id == only]
    if start:
        out = out[[p.id for p in out].index(start):] if start in [p.id for p in out] else out
    if until:
        ids2 = [p.id for p in out]
        if until in ids2:
            out = out[: ids2.index(until) + 1]
    return out


# -- state -------------------------------------------------------------------------------------------
class InstallState:
    """Progress in the history database: one row per phase step, and per phase."""

    def __init__(self, history: Any) -> None:
        self.db = history.db
        if "install_steps" not in self.db.table_names():
            self.db["install_steps"].create({"key": str, "phase": str, "step": int, "status": str, "updated_at": str,
                                             "log": str, "detail": str}, pk="key")

    def get(self, phase: str, step: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from install_steps where key = ?", [f"{phase}#{step}"]))
        return rows[0] if rows else None

    def set(self, phase: str, step: int, status: str, log: str = "", detail: str = "") -> None:
        with self.db.conn:
            self.db["install_steps"].upsert({"key": f"{phase}#{step}", "phase": phase, "step": step, "status": status,
                                             "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(), "log": log,
                                             "detail": detail}, pk="key")

    def phase_done(self, phase: str) -> bool:
        r = self.get(phase, -1)
        return bool(r and r["status"] == "done")

    def reset_phase(self, phase: str) -> None:
        with self.db.conn:
            self.db.execute("delete from install_steps where phase = ?", [phase])


# -- the runner --------------------------------------------------------------------------------------
@dataclass
class PhaseReport:
    phase: str
    status: str  # done | skipped (already done) | blocked (gate) | failed | planned
    message: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)


class Installer:
    def __init__(self, inv: Inventory, *, history: Any, say: Callable[[str], None],
                 confirm: Callable[[str], bool], cluster_factory: Callable[[], Any],
                 factory: Any = engine.default_transport, log_dir: str | None = None, lang: str = "en",
                 kubeconfig: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.inv, self.history, self.say, self.confirm = inv, history, say, confirm
        self.cluster_factory, self.factory, self.lang = cluster_factory, factory, lang
        self.state = InstallState(history)
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        self.log_dir = Path(log_dir or os.path.join(base, "bkdoctor", "install-logs"))

    # statuses of a set of rules, by rule id: the worst over its findings
    async def statuses(self, sels: list[str]) -> dict[str, tuple[str, list[Any]]]:
        if not sels:
            return {}
        rules = registry.select(sorted(set(sels)), None)
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in rules) else None
        res = await engine.scan(self.inv, rules, factory=self.factory, cluster=cluster)
        out: dict[str, tuple[str, list[Any]]] = {}
        rank = {"pass": 0, "skip": 0, "suppressed": 0, "warn": 1, "fail": 2, "error": 2}
        for f in res.findings:
            st, fs = out.get(f.rule.id, ("pass", []))
            if rank[f.status] > rank[st] or (rank[f.status] == rank[st] and f.status != "pass" and st == "skip"):
                st = f.status
            out[f.rule.id] = (st, fs + [f])
        return out

    @staticmethod
    def verdict(statuses: dict[str, tuple[str, list[Any]]], sels: list[str], strict: bool = False) -> tuple[bool, list[Any]]:
        """(ok, failing findings): warnings do not block; errors and failures do. `strict` (verify rules): a
        check that was skipped (no cluster yet, Docker not installed) does not prove the phase is done."""
        bad = []
        ids = {r.id for r in registry.select(sels, None)} if sels else set()
        for rid in ids:
            st, fs = statuses.get(rid, ("pass", []))
            if st in ("fail", "error"):
                bad += [f for f in fs if f.status in ("fail", "error")]
            elif strict and any(f.status == "skip" for f in fs) and not rid.startswith("faq-"):
                bad += [f for f in fs if f.status == "skip"]
        return not bad, bad

    async def plan(self, phases: list[Phase]) -> list[dict[str, Any]]:
        sels = sorted({s for p in phases for s in p.gate + p.verify})
        st = await self.statuses(sels)
        rows = []
        for p in phases:
            gate_ok, gate_bad = self.verdict(st, p.gate)
            ver_ok, _ = self.verdict(st, p.verify, strict=True) if p.verify else (False, [])
            rows.append({"phase": p.id, "title": p.title.get(self.lang), "guide": p.guide, "optional": p.optional,
                         "gate": "pass" if gate_ok else "fail", "gate_failing": sorted({f"{f.rule.id}@{f.target}" for f in gate_bad}),
                         "verify": "pass" if ver_ok else "not yet", "state": "done" if self.state.phase_done(p.id) else "",
                         "steps": [s.describe() for s in p.steps]})
        return rows

    def _host(self, on: str) -> HostSpec:
        hosts = self.inv.hosts
        pick = {"control": [h for h in hosts if "control" in h.roles],
                "first-master": [h for h in hosts if "master" in h.roles],
                "registry-proxy": [h for h in hosts if "registry-proxy" in h.roles]}.get(on, [])
        if not pick:
            if on == "control":
                return HostSpec(name="control", address="localhost", roles=("control",), local=True)
            raise BadInput(f"no host with role {on} in the inventory")
        return pick[0]

    async def run_command(self, phase: Phase, idx: int, step: Step) -> tuple[bool, str]:
        host = self._host(step.on)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = self.log_dir / f"{phase.id}-{idx + 1}.log"
        env = ""
        if self.kubeconfig and host.name == self._host("control").name:
            # commands on the control machine use the cluster bkdoctor checks (install --kubeconfig)
            env += f"KUBECONFIG={shlex.quote(os.path.abspath(self.kubeconfig))}; export KUBECONFIG; "
        if getattr(self.inv, "registry", None):
            env = f"export REGISTRY={shlex.quote(self.inv.registry)}; "
        install_dir = self.inv.install_dir
        script = (f"cd {shlex.quote(os.path.expanduser(install_dir)) if host.local else install_dir} || exit 97\n"
                  f"PATH=\"$PWD/bin:$PATH\"; export PATH; {env}\n{step.value}\n")
        transport = self.factory(host, self.inv)
        try:
            with open(log, "wb") as fh:
                fh.write(f"# {dt.datetime.now().isoformat()} on {host.name}: {step.value}\n".encode())

                def on_out(chunk: bytes) -> None:
                    fh.write(chunk)
                    fh.flush()
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        self.say(f"    | {line}")

                rc = await run_streaming(transport, script, step.timeout, on_out)
        finally:
            await transport.close()
        return rc == 0, str(log)

    async def _step(self, p: Phase, i: int, step: Step) -> tuple[bool, str, str]:
        if step.kind == "fix":
            ok, detail = await self.run_fix_step(step)
            return ok, "", detail
        ok, log = await self.run_command(p, i, step)
        return ok, log, ""

    async def run_fix_step(self, step: Step) -> tuple[bool, str]:
        from .fixmode import run_fix

        rules = registry.select(list(step.value), None)
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in rules) else None
        outcomes = await run_fix(self.inv, rules, hosts=None, cluster=cluster, dry_run=False, allow_disruptive=True,
                                 confirm=lambda plans: True, say=lambda s: self.say("    " + s), history=self.history,
                                 factory=self.factory, lang=self.lang)
        bad = [o for o in outcomes if o.status in ("failed", "skipped")]
        lines = [f"{o.status} {o.rule}@{o.target}: {o.message.get(self.lang)}" for o in outcomes]
        return not bad, "\n".join(lines)

    async def diagnose(self, phase: Phase) -> list[Any]:
        """After a failure: the failure signatures and the phase's own rules, failing ones first."""
        # the host rules behind the signatures too, so that a symptom is linked to its cause on the node
        host_rules = sorted({h for r in registry.select(["faq"], None) for h in r.host_rules})
        sels = ["faq"] + phase.verify + host_rules
        try:
            st = await self.statuses(sels)
        except BadInput:
            return []
        found = [f for rid, (s, fs) in st.items() for f in fs if f.status in ("fail", "error", "warn")
                 and (rid.startswith("faq-") or rid in phase.verify or f.related)]
        found.sort(key=lambda f: (f.status != "fail", f.rule.id))
        for f in found[:10]:
            self.say(f"  ! {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
            for rel in f.related:
                if rel.get("fix"):
                    self.say(f"    -> {rel['fix']}")
            if f.rule.remediation:
                self.say(f"    -> bkdoctor fix --rule {f.rule.id} --host {f.target}")
        return found

    async def offer_fixes(self, found: list[Any]) -> bool:
        """Offer bkdoctor's own fixes for what the diagnosis found; True when at least one was fixed."""
        from .fixer import all_remediations
        from .fixmode import run_fix

        rems = all_remediations()
        rules = sorted({f.rule.id for f in found if f.rule.remediation in rems and f.status in ("fail", "warn")})
        rules += sorted({r["rule"] for f in found for r in f.related if r.get("fix") and r["rule"] not in rules})
        if not rules:
            return False
        question = f"apply bkdoctor's fixes for {', '.join(rules)} and retry?"
        self.say(f"  {question}")
        if not self.confirm(question):
            return False
        sel = registry.select(rules, None)
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in sel) else None
        outcomes = await run_fix(self.inv, sel, hosts=None, cluster=cluster, dry_run=False, allow_disruptive=False,
                                 confirm=lambda plans: True, say=lambda s: self.say("    " + s), history=self.history,
                                 factory=self.factory, lang=self.lang)
        for o in outcomes:
            self.say(f"    {o.status} {o.rule}@{o.target}: {o.message.get(self.lang)}")
        return any(o.status == "fixed" for o in outcomes)

    async def run(self, phases: list[Phase]) -> list[PhaseReport]:
        reports: list[PhaseReport] = []
        for p in phases:
            self.say(f"== {p.id}: {p.title.get(self.lang)} (§{p.guide})")
            for r in p.requires:
                if not self.state.phase_done(r) and r in {x.id for x in phases}:
                    reports.append(PhaseReport(p.id, "blocked", f"requires {r}, not finished"))
                    return reports
            if self.state.phase_done(p.id) and p.verify:
                st = await self.statuses(p.verify)
                ok, _ = self.verdict(st, p.verify, strict=True)
                if ok:
                    self.say("   already done, and its checks still pass: skipped")
                    reports.append(PhaseReport(p.id, "skipped", "already done"))
                    continue
                self.say("   was done, but its checks fail now: running it again")
                self.state.reset_phase(p.id)
            if p.gate:
                st = await self.statuses(p.gate)
                ok, bad = self.verdict(st, p.gate)
                if not ok:
                    for f in bad[:10]:
                        self.say(f"  gate: {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
                        if f.rule.remediation:
                            self.say(f"    -> bkdoctor fix --rule {f.rule.id} --host {f.target}")
                    reports.append(PhaseReport(p.id, "blocked", "gate rules fail",
                                               [{"rule": f.rule.id, "target": f.target} for f in bad]))
                    return reports
            if not self.confirm(f"run phase {p.id} ({len(p.steps)} step(s))?"):
                reports.append(PhaseReport(p.id, "blocked", "not confirmed"))
                return reports
            for i, step in enumerate(p.steps):
                prev = self.state.get(p.id, i)
                if prev and prev["status"] == "done":
                    self.say(f"  [{i + 1}/{len(p.steps)}] {step.describe()}: done before, not repeated")
                    continue
                self.say(f"  [{i + 1}/{len(p.steps)}] {step.describe()}")
                self.state.set(p.id, i, "running")
                ok, log, detail = await self._step(p, i, step)
                if not ok:
                    found = await self.diagnose(p)
                    if await self.offer_fixes(found):
                        self.say(f"  [{i + 1}/{len(p.steps)}] retrying after the fixes")
                        ok, log, detail = await self._step(p, i, step)
                if not ok:
                    self.state.set(p.id, i, "failed", log, detail)
                    self.say(f"  step {i + 1} failed" + (f" (log: {log})" if log else "") + (f"\n{detail}" if detail else ""))
                    reports.append(PhaseReport(p.id, "failed", f"step {i + 1} failed",
                                               [{"rule": f.rule.id, "target": f.target, "status": f.status,
                                                 "related": f.related} for f in found]))
                    return reports
                self.state.set(p.id, i, "done", log, detail)
            if p.verify:
                st = await self.statuses(p.verify)
                ok, bad = self.verdict(st, p.verify, strict=True)
                if not ok:
                    for f in bad[:10]:
                        self.say(f"  verify: {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
                    found = await self.diagnose(p)
                    if await self.offer_fixes(found or bad):
                        st = await self.statuses(p.verify)
                        ok, bad = self.verdict(st, p.verify, strict=True)
                if not ok:
                    reports.append(PhaseReport(p.id, "failed", "verify rules fail",
                                               [{"rule": f.rule.id, "target": f.target, "status": f.status,
                                                 "related": f.related} for f in found or bad]))
                    return reports
            self.state.set(p.id, -1, "done")
            self.say(f"   {p.id} done")
            reports.append(PhaseReport(p.id, "done"))
        return reports


async def run_streaming(transport: Any, script: str, timeout: float, on_out: Callable[[bytes], None]) -> int:
    """Run a script, handing output to `on_out` as it comes when the transport can stream, else at the end."""
    stream = getattr(transport, "run_streaming", None)
    if stream is not None:
        return await stream(script, timeout, on_out)
    res = await transport.run_script(script, timeout)
    on_out(res.stdout + res.stderr)
    return res.rc
