"""The fix loop: scan -> plan -> (confirm) -> apply -> re-scan the touched rule on the touched target -> journal."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from bkdoctor.facts.cluster import ClusterFacts
from bkdoctor.fix.edits import EditError
from bkdoctor.fix.hostscript import host_apply_script, parse_apply_output, restore_script, written_script
from bkdoctor.fix.plan import (
    CommandChange,
    FileChange,
    K8sChange,
    Plan,
    Remediation,
    all_remediations,
    plan_to_dict,
    sha256_of,
)
from bkdoctor.inputs.inventory import Inventory
from bkdoctor.model import FactUnavailable, Finding, Rule, T
from bkdoctor.safe.secrets import mask_text
from bkdoctor.scan import engine
from bkdoctor.transport import TransportError


@dataclass
class FixOutcome:
    rule: str
    target: str
    status: str  # fixed | unchanged | failed | manual | refused | skipped | planned
    message: T
    plan: Plan | None = None
    fix_id: str | None = None
    applied: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "target": self.target,
            "status": self.status,
            "message": self.message.get(lang),
            "fix_id": self.fix_id,
            "plan": plan_to_dict(self.plan) if self.plan else None,
            "applied": self.applied,
        }


def _awaits(finding: Any) -> str | None:
    """What a host finding that still fails after its fix waits for, as its rule says (`observed["awaits"]`: SELinux's
    Disabled comes with a reboot, which bkdoctor never does): then the changes stay and the rest is the operator's."""
    obs = finding.result.observed if finding is not None else None
    return obs.get("awaits") if isinstance(obs, dict) else None


def _steps(cmds: list[str]) -> str:
    """Manual steps, one command per line (joined with `;` a step's trailing `# comment` would swallow the next
    command when copied)."""
    return "".join(f"\n    {c}" for c in cmds)


def new_fix_id() -> str:
    return "fix-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def make_plans(
    result: engine.ScanResult, inv: Inventory, hosts: set[str] | None, params: dict[str, str] | None = None
) -> list[tuple[Finding, Plan | None, str | None]]:
    """A plan for each failing finding that has a remediation (pure: no I/O)."""
    rems = all_remediations()
    by_target = {t.name: t for t in result.targets}
    cfacts = result.extra.get("cluster_facts")
    out = []
    for f in result.findings:
        if f.result.status not in ("fail", "warn") or f.suppression:
            continue
        if hosts and f.target not in hosts:
            continue
        rem_id = f.rule.remediation
        if not rem_id or rem_id not in rems:
            out.append((f, None, "no-remediation"))
            continue
        rem = rems[rem_id]
        t = by_target.get(f.target)
        try:
            if rem.scope == "cluster":
                ctx = engine.make_context(
                    "cluster",
                    inv,
                    f.target,
                    params=params,
                    hosts={x.name: x for x in result.targets if x.kind == "host"},
                )
                fix = rem.plan(cfacts, ctx)
            else:
                if t is None or t.facts is None:
                    out.append((f, None, "unreachable"))
                    continue
                # the context the rule judged with (the site's files, the cluster's ingress): a fix must aim at
                # the same answer the rule expects
                ctx = engine.make_context(
                    "host", inv, t, site=result.extra.get("site"), ingress=result.extra.get("ingress")
                )
                fix = rem.plan(t.facts, ctx)
        except FactUnavailable as e:
            out.append((f, None, f"facts: {e.reason.en}"))
            continue
        except EditError as e:  # the operator's file cannot be edited safely (bad input): nothing is planned
            out.append((f, None, f"{REFUSED}{e}"))
            continue
        out.append((f, Plan.of(fix, f.rule.id, f.target, rem_id), None))
    return out


REFUSED = "refused: "  # make_plans' reason for a finding whose file is bad input (EditError)


def refused_outcomes(result: engine.ScanResult, hosts: set[str] | None) -> list[FixOutcome]:
    """A fix asked for a rule whose check could not run on a target (`error`: a daemon.json that does not parse, an
    unreachable host): one `refused` line each, with the rule's own reason; nothing is planned or written there."""
    out = []
    rems = all_remediations()
    for f in result.findings:
        if f.result.status != "error" or f.suppression or (hosts and f.target not in hosts):
            continue
        if f.rule.remediation not in rems:  # a rule bkdoctor has no fix for: nothing was asked to be fixed there
            continue
        m = f.result.message
        out.append(
            FixOutcome(
                f.rule.id,
                f.target,
                "refused",
                T(f"{m.zh}；未修改任何文件", f"{m.en}; file left untouched")
                if f.rule.scope != "cluster"
                else T(f"{m.zh}；未做任何修改", f"{m.en}; nothing changed"),
            )
        )
    return out


APPLY_TIMEOUT = 120.0  # seconds for a host's apply script (a hung `mount` or reload ends it)


def apply_stamp() -> str:
    """The stamp an apply's backups are named with (`<file>.bak-<ts>`): to the microsecond, so that two fixes of one
    file in one run (swap and localpv-dirs on /etc/fstab) never name the same backup (the second overwrote the first's,
    and rollback lost the original); the apply script also refuses a backup name that exists."""
    return dt.datetime.now().strftime("%Y%m%d%H%M%S%f")


async def apply_host_plan(plan: Plan, transport: Any, ts: str | None = None) -> dict[str, Any]:
    script = host_apply_script(plan, ts or apply_stamp())
    res = await transport.run_script(script, APPLY_TIMEOUT)
    out = parse_apply_output(res.stdout + res.stderr)
    out["rc"] = res.rc
    return out


async def restore_host(plan: Plan, applied: dict[str, Any], transport: Any) -> list[str]:
    """Undo the file changes of a plan (after a failed verification)."""
    restored = []
    after = {c.path: c for c in plan.changes if isinstance(c, FileChange)}
    for w in applied.get("wrote", []):
        ch = after.get(w["path"])
        script = restore_script(w["path"], w["backup"], sha256_of(ch.after) if ch else None)
        res = await transport.run_script(script, 60)
        r = parse_apply_output(res.stdout)
        restored += r["restored"]
    return restored


def apply_k8s_change(
    cluster: Any,
    ch: K8sChange,
    replan: Callable[[dict[str, str]], dict[str, str] | None],
    before_write: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Update the ConfigMap keys with its resourceVersion, after a server-side dry run; on a conflict (someone
    changed it since the plan), re-read and re-plan from the new content, so their change is kept."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(cluster.api_client)
    after = dict(ch.after)
    attempts = []
    for attempt in range(5):
        cm = core.read_namespaced_config_map(ch.name, ch.namespace)
        data = dict(cm.data or {})
        current = {k: data.get(k) for k in ch.before}
        if current != ch.before or attempt:
            try:
                new_after = replan(current)
            except EditError as e:  # theirs can no longer be edited (does not parse, an import): nothing written
                return {"ok": False, "error": f"re-planning on the current object: {e}", "attempts": attempts}
            if new_after is None:
                return {"ok": True, "unchanged": True, "attempts": attempts}
            after = new_after
        data.update(after)
        cm.data = data
        try:
            core.replace_namespaced_config_map(ch.name, ch.namespace, cm, dry_run="All")
            if before_write is not None:
                before_write(attempt)  # tests: another writer acts between our read and our write
            core.replace_namespaced_config_map(ch.name, ch.namespace, cm)
            return {
                "ok": True,
                "resource_version": cm.metadata.resource_version,
                "attempts": attempts + ["ok"],
                "before": current,
                "after": after,
            }
        except ApiException as e:
            if e.status == 409:
                attempts.append("conflict")
                continue
            return {"ok": False, "error": f"HTTP {e.status}: {e.reason}", "attempts": attempts}
    return {"ok": False, "error": "kept conflicting with other writers", "attempts": attempts}


async def _replan(
    inv: Inventory, f: Finding, factory: Any, params: dict[str, str] | None
) -> tuple[Finding, Plan | None, FixOutcome | None]:
    """The finding's host gathered again and its plan made again (the file as it is now). (finding, plan, None); or
    (finding, None, the outcome to report) when no plan came: refused (the file as the earlier fix left it cannot be
    edited safely), failed (the host could not be read, the check errs now); (finding, None, None) when it passes."""
    res = await engine.scan(inv, [f.rule], factory=factory, only_hosts={f.target})
    for o in refused_outcomes(res, {f.target}):
        if o.rule == f.rule.id:
            return f, None, o
    for f2, p2, why in make_plans(res, inv, {f.target}, params):
        if f2.rule.id != f.rule.id:
            continue
        if p2 is not None:
            return f2, p2, None
        if why and why.startswith(REFUSED):
            return f2, None, FixOutcome(f2.rule.id, f2.target, "refused", T(why[len(REFUSED) :], why[len(REFUSED) :]))
        return (
            f2,
            None,
            FixOutcome(f2.rule.id, f2.target, "failed", T(f"无法重新规划：{why}", f"cannot plan again: {why}")),
        )
    return f, None, None


async def verify(inv: Inventory, rule: Rule, target: str, factory: Any, cluster: Any) -> Finding | None:
    """Re-gather the touched facts (only this rule's, only this target) and re-run the rule."""
    # the whole inventory stays the context (registry proxies, the first master); only the target is gathered
    res = await engine.scan(
        inv,
        [rule],
        factory=factory,
        cluster=cluster if rule.scope == "cluster" else None,
        only_hosts={target} if rule.scope != "cluster" else set(),
    )
    return next((f for f in res.findings if f.rule.id == rule.id), None)


async def run_fix(
    inv: Inventory,
    rules: list[Rule],
    *,
    hosts: set[str] | None,
    cluster: Any,
    dry_run: bool,
    allow_disruptive: bool,
    confirm: Callable[[list[Plan]], bool],
    say: Callable[[str], None],
    history: Any = None,
    factory: Any = engine.default_transport,
    lang: str = "en",
    params: dict[str, str] | None = None,
) -> list[FixOutcome]:
    result = await engine.scan(inv, rules, factory=factory, cluster=cluster)
    planned = make_plans(result, inv, hosts, params)
    outcomes: list[FixOutcome] = refused_outcomes(result, hosts)
    todo: list[tuple[Finding, Plan]] = []
    for f, plan, why in planned:
        if plan is None:
            if why and why.startswith(REFUSED):
                outcomes.append(
                    FixOutcome(
                        f.rule.id,
                        f.target,
                        "refused",
                        T(f"输入无法安全修改，未修改任何文件：{why[len(REFUSED) :]}", why[len(REFUSED) :]),
                    )
                )
            elif why == "no-remediation":
                cmds = list(f.rule.fix)
                outcomes.append(
                    FixOutcome(
                        f.rule.id,
                        f.target,
                        "manual",
                        T(
                            "没有安全的自动修复，请手工执行：" + _steps(cmds),
                            "no safe automatic fix; run:" + _steps(cmds),
                        ),
                    )
                )
            else:
                outcomes.append(
                    FixOutcome(
                        f.rule.id, f.target, "failed", T(f"无法制定修复计划：{why}", f"cannot plan a fix: {why}")
                    )
                )
            continue
        rem = all_remediations()[plan.remediation]
        if plan.empty and rem.verify is not None and result.extra.get("cluster_facts") is not None:
            # a fix verified by its cause (the symptom, a log line or an event, lingers until pods restart):
            # the cause is already right, so there is nothing to do again
            vctx = engine.make_context("cluster", inv, f.target, params=params)
            if rem.verify(result.extra["cluster_facts"], vctx):
                outcomes.append(
                    FixOutcome(
                        f.rule.id,
                        f.target,
                        "unchanged",
                        T(
                            "原因已修复，无需再改；相关 Pod 重启后症状消失",
                            "the cause is already fixed, nothing to change; the symptom clears as the pods restart",
                        ),
                        plan=plan,
                    )
                )
                continue
        if plan.empty:
            # nothing the remediation can change, yet the rule fails: what is left is for a person to do
            cmds = list(f.rule.fix)
            outcomes.append(
                FixOutcome(
                    f.rule.id,
                    f.target,
                    "manual",
                    T(
                        "没有可自动修改的内容，请手工处理：" + _steps(cmds),
                        "nothing bkdoctor can change safely; by hand:" + _steps(cmds),
                    ),
                    plan=plan,
                )
            )
            continue
        if not plan.changes and plan.manual:
            why = plan.note  # why bkdoctor leaves it to a person: such a plan never reaches show_plans
            outcomes.append(
                FixOutcome(
                    f.rule.id,
                    f.target,
                    "refused" if plan.refused else "manual",
                    T(
                        "未修改任何内容；请手工处理：" + _steps(plan.manual),
                        "left untouched; by hand:" + _steps(plan.manual),
                    )
                    if plan.refused
                    else T(
                        (f"{why.zh}。" if why else "") + "需要手工执行：" + _steps(plan.manual),
                        (f"{why.en}; " if why else "") + "run by hand:" + _steps(plan.manual),
                    ),
                    plan=plan,
                )
            )
            continue
        if plan.disruptive and not allow_disruptive:
            outcomes.append(
                FixOutcome(
                    f.rule.id,
                    f.target,
                    "skipped",
                    T(
                        "该修复会中断服务（重启守护进程或删除 Pod），需要 --allow-disruptive",
                        "this fix is disruptive (restarts a daemon or deletes a pod): add --allow-disruptive",
                    ),
                    plan=plan,
                )
            )
            continue
        todo.append((f, plan))
    from bkdoctor.report.plans import show_plans

    show_plans([p for _, p in todo], say, lang)  # identical plans on many hosts are shown once, with the hosts
    if dry_run or not todo:
        outcomes += (
            [
                FixOutcome(p.rule, p.target, "planned", T("仅预览（--dry-run）", "planned only (--dry-run)"), plan=p)
                for _, p in todo
            ]
            if dry_run
            else []
        )
        return outcomes
    if not confirm([p for _, p in todo]):
        outcomes += [FixOutcome(p.rule, p.target, "skipped", T("未确认", "not confirmed"), plan=p) for _, p in todo]
        return outcomes
    host_by_name = {h.name: h for h in inv.hosts}
    rems = all_remediations()
    written: dict[tuple[str, str], str] = {}  # (host, file) -> the rule whose fix wrote it in this run
    for f, plan in todo:
        earlier = sorted(
            {
                written[(plan.target, c.path)]
                for c in plan.changes
                if isinstance(c, FileChange) and (plan.target, c.path) in written
            }
        )
        if earlier:
            # a file an earlier fix of this run changed (swap and localpv-dirs both edit /etc/fstab): planned again
            # from the file as it is now, the same remediation; the change the operator saw stays the change made
            f, plan, said = await _replan(inv, f, factory, params)
            if said is not None:
                outcomes.append(said)
                continue
            status = ""
            if plan is not None and plan.refused:
                status, msg = (
                    "refused",
                    T("未修改任何内容：" + _steps(plan.manual), "left untouched:" + _steps(plan.manual)),
                )
            elif plan is None or not plan.changes:
                steps = _steps(plan.manual) if plan else ""
                status = "manual" if plan is not None and plan.manual else "unchanged"
                msg = T(
                    f"{', '.join(earlier)} 的修复之后已无需自动修改" + steps,
                    f"nothing left to change after the fix of {', '.join(earlier)}" + steps,
                )
            if status:
                outcomes.append(FixOutcome(f.rule.id, f.target, status, msg, plan=plan))
                continue
            say(f"{plan.rule} @ {plan.target}: planned again after {', '.join(earlier)} changed the same file:")
            from bkdoctor.report.plans import show_plans

            show_plans([plan], say, lang)  # the change made now, shown as the first plans were
            if plan.disruptive and not allow_disruptive:
                outcomes.append(
                    FixOutcome(
                        plan.rule,
                        plan.target,
                        "skipped",
                        T(
                            "重新规划后的修复会中断服务，需要 --allow-disruptive",
                            "planned again, the fix is disruptive: add --allow-disruptive",
                        ),
                        plan=plan,
                    )
                )
                continue
        fix_id = new_fix_id()
        applied: dict[str, Any] = {}
        status, msg = "failed", T("未知错误", "unknown error")
        try:
            rem = rems[plan.remediation]
            if rem.scope == "cluster":
                applied = await asyncio.to_thread(_apply_cluster_plan, plan, cluster, rem, inv)
                ok = applied.get("ok", False)
                if not ok:
                    msg = T(f"应用失败：{applied.get('error')}", f"apply failed: {applied.get('error')}")
            else:
                transport = factory(host_by_name[plan.target], inv)
                ts = apply_stamp()
                try:
                    applied = await apply_host_plan(plan, transport, ts)
                except (TransportError, OSError) as e:
                    # the script's end was not seen: it may have written files (and be running still); ask the
                    # host what it holds now, so that what was written is journaled and can be rolled back
                    applied = await _written_anyway(plan, ts, host_by_name[plan.target], inv, factory, e)
                    if not applied:
                        raise
                finally:
                    await transport.close()
                ok = applied["done"] and not applied["fail"]
                if applied.get("interrupted"):
                    files = ", ".join(f"{w['path']} (backup {w['backup'] or '-'})" for w in applied["wrote"])
                    msg = T(
                        f"应用未完成（{applied['fail']}），但已写入：{files}；已记入日志：bkdoctor rollback {fix_id} 可恢复",
                        f"the apply did not finish ({applied['fail']}) but it wrote: {files}; journaled: "
                        f"bkdoctor rollback {fix_id} puts them back",
                    )
                elif not ok:
                    restored = f" (restored: {', '.join(applied['restored'])})" if applied["restored"] else ""
                    if applied.get("unrestored"):  # the script could not put these back: say where the backups are
                        restored += f" (NOT restored, put back by hand: {'; '.join(applied['unrestored'])})"
                    msg = T(f"应用失败：{applied['fail']}{restored}", f"apply failed: {applied['fail']}{restored}")
            if ok and rem.verify is not None:
                # the symptom (a log line, an event) outlives the fix until pods restart: check the cause instead
                fresh = ClusterFacts(cluster)
                vctx = engine.make_context("cluster", inv, plan.target, params=params)
                good = await asyncio.to_thread(rem.verify, fresh, vctx)
                if good:
                    status, msg = (
                        "fixed",
                        T(
                            "配置已修改并复查；相关 Pod 重启后症状消失",
                            "configuration changed and re-read; the symptom clears as the pods restart",
                        ),
                    )
                else:
                    msg = T("修改后复查未通过", "the change did not hold on re-check")
            elif ok:
                after = await verify(inv, f.rule, plan.target, factory, cluster)
                if after is not None and after.result.status == "pass":
                    status, msg = (
                        "fixed",
                        T(
                            f"已修复，复查通过：{after.result.message.zh}",
                            f"fixed and re-checked: {after.result.message.en}",
                        ),
                    )
                elif plan.manual and (rem.scope == "cluster" or _awaits(after) == "reboot"):
                    # the changes are made; what the rule still wants is the plan's part for a person
                    why = after.result.message if after else T("复查没有结果", "no result on re-check")
                    status, msg = (
                        "manual",
                        T(
                            f"已应用自动修改；仍未通过（{why.zh}），请手工执行：" + _steps(plan.manual),
                            f"changes applied; still failing ({why.en}) until you run by hand:" + _steps(plan.manual),
                        ),
                    )
                else:
                    why = after.result.message if after else T("复查没有结果", "no result on re-check")
                    restored = []
                    if rem.scope != "cluster":
                        transport = factory(host_by_name[plan.target], inv)
                        try:
                            restored = await restore_host(plan, applied, transport)
                        finally:
                            await transport.close()
                    applied["restored"] = restored
                    msg = (
                        T(
                            f"修改后复查仍未通过（{why.zh}），已从备份恢复：{', '.join(restored) or '无文件'}",
                            f"still failing after the change ({why.en}); restored from backup: {', '.join(restored) or 'no file'}",
                        )
                        if rem.scope != "cluster"
                        # a command or a cluster change has no backup to put back: say so, not "no file"
                        else T(
                            f"修改后复查仍未通过（{why.zh}）；已执行的修改未撤销（bkdoctor journal 中有记录）",
                            f"still failing after the change ({why.en}); what ran is not undone (it is in "
                            "bkdoctor journal)",
                        )
                    )
        except (TransportError, OSError) as e:
            msg = T(f"无法应用：{e}", f"cannot apply: {e}")
        outcome = FixOutcome(plan.rule, plan.target, status, msg, plan=plan, fix_id=fix_id, applied=applied)
        outcomes.append(outcome)
        for w in applied.get("wrote") or []:
            written[(plan.target, w["path"])] = plan.rule
        if history is not None and applied:
            try:
                history.save_fix(fix_id, outcome)
            except Exception as e:  # a locked or broken journal: the change is made, say how to undo it by hand
                backups = ", ".join(
                    f"{w['path']} <- {w['backup']}" for w in applied.get("wrote") or [] if w.get("backup")
                )
                say(
                    f"warning: {fix_id} is not in the journal ({getattr(history, 'path', '?')}: "
                    f"{str(e).splitlines()[0] if str(e) else type(e).__name__}); `bkdoctor rollback` cannot undo it"
                    + (f"; backups: {backups}" if backups else "")
                )
    return outcomes


async def _written_anyway(
    plan: Plan, ts: str, host: Any, inv: Inventory, factory: Any, why: BaseException
) -> dict[str, Any]:
    """An apply that ended without its last word (`why`): the files of the plan that hold the fix's content now,
    with this run's backups, read on a new connection; {} when none (or the host cannot be asked)."""
    if not any(isinstance(c, FileChange) for c in plan.changes):
        return {}
    transport = factory(host, inv)
    try:
        res = await transport.run_script(written_script(plan, ts), 30)
    except (TransportError, OSError):
        return {}
    finally:
        await transport.close()
    wrote = parse_apply_output(res.stdout)["wrote"]
    if not wrote:
        return {}
    return {"wrote": wrote, "ran": [], "restored": [], "fail": str(why), "done": False, "interrupted": True}


def _apply_cluster_plan(plan: Plan, cluster: Any, rem: Remediation, inv: Inventory) -> dict[str, Any]:
    if cluster is None:
        return {"ok": False, "error": "no cluster configured"}
    out: dict[str, Any] = {"ok": True, "k8s": []}
    for ch in plan.changes:
        if isinstance(ch, K8sChange):
            replan = rem.replan
            ctx = engine.make_context("cluster", inv, plan.target)
            r = apply_k8s_change(
                cluster, ch, (lambda cur, ch=ch: replan(cur, ch, ctx)) if replan else (lambda cur: None)
            )
            out["k8s"].append(
                {
                    **ch.to_dict(),
                    **{k: v for k, v in r.items() if k not in ("before", "after")},
                    "applied_before": r.get("before"),
                    "applied_after": r.get("after"),
                }
            )
            if not r["ok"]:
                return {**out, "ok": False, "error": r.get("error")}
        elif isinstance(ch, CommandChange) and ch.where == "control":
            rc, tail = asyncio.run(run_on_control(inv, ch.script))
            out.setdefault("commands", []).append({"script": ch.script, "rc": rc, "output": tail})
            if rc == NO_INSTALL_DIR:
                ran = len(out["commands"]) - 1
                return {
                    **out,
                    "ok": False,
                    "error": f"install_dir {inv.install_dir} is not a directory on the control machine: set "
                    f"install_dir in the inventory (§四.2.2: ~/bkce7.1-install/blueking); "
                    + (f"{ran} command(s) ran before this one" if ran else "nothing was run"),
                }
            if rc != 0:
                return {**out, "ok": False, "error": f"`{ch.script}` exited {rc}: {tail[-300:]}"}
        elif isinstance(ch, CommandChange) and rem.run_command is not None:
            err = rem.run_command(cluster, ch)
            if err:
                return {**out, "ok": False, "error": err}
    return out


async def rollback(
    rec: dict[str, Any], inv: Inventory, cluster: Any, factory: Any = engine.default_transport
) -> tuple[bool, list[str]]:
    """Undo a journaled fix: files from their backups and K8s keys to their previous content, each only if it
    still has what the fix wrote (a later manual edit is never clobbered)."""
    lines: list[str] = []
    ok = True
    applied = rec["applied"] or {}
    after_sha = {c["path"]: c.get("after_sha256") for c in rec["changes"] if c.get("type") == "file"}
    wrote = applied.get("wrote") or []
    if wrote:
        host = next((h for h in inv.hosts if h.name == rec["target"]), None)
        if host is None:
            return False, [f"host {rec['target']} is not in this inventory (use the same -i as the fix)"]
        transport = factory(host, inv)
        try:
            put_back = set(applied.get("restored") or [])  # by the fix itself, when its re-check failed
            for w in reversed(wrote):
                if w.get("path") in put_back:
                    lines.append(f"{w['path']}: put back when the fix's re-check failed: nothing to undo")
                    continue
                # the host printed it (@@WROTE <path> <backup>): a file the plan had (its hash checks it), a backup
                if not isinstance(w.get("backup"), str) or w.get("path") not in after_sha:
                    ok = False
                    lines.append(f"refused: {w.get('path')} is not a file the fix planned to write: not restoring")
                    continue
                res = await transport.run_script(restore_script(w["path"], w["backup"], after_sha.get(w["path"])), 60)
                r = parse_apply_output(res.stdout)
                if r["restored"]:
                    lines.append(f"restored {w['path']} from {w['backup'] or '(created by the fix: removed)'}")
                else:
                    ok = False
                    lines.append(f"refused: {r['fail'] or res.stderr.decode('utf-8', 'replace')[-200:]}")
        finally:
            await transport.close()
    for k in applied.get("k8s") or []:
        if cluster is None:
            return False, lines + ["the fix changed the cluster: give --kubeconfig"]
        from kubernetes import client

        core = client.CoreV1Api(cluster.api_client)
        cm = core.read_namespaced_config_map(k["name"], k["namespace"])
        data = dict(cm.data or {})
        now = {key: data.get(key) for key in (k.get("applied_after") or {})}
        if now != (k.get("applied_after") or {}):
            ok = False
            lines.append(f"refused: {k['kind']} {k['namespace']}/{k['name']} changed since the fix: not restoring")
            continue
        for key, val in (k.get("applied_before") or {}).items():
            if val is None:
                data.pop(key, None)
            else:
                data[key] = val
        cm.data = data
        core.replace_namespaced_config_map(k["name"], k["namespace"], cm)
        lines.append(f"restored {k['kind']} {k['namespace']}/{k['name']} ({', '.join(k.get('applied_before') or {})})")
    commands = [c for c in rec["changes"] if c.get("type") == "command"]
    for c in commands:
        first = c["script"].strip().splitlines()[0]
        if c.get("undo"):
            lines.append(f"not undone automatically: {first} (to undo: {c['undo']})")
        else:
            where = "on the control machine, in install_dir" if c.get("where") == "control" else f"on {rec['target']}"
            lines.append(f"not undone: `{first}` ran {where}; bkdoctor cannot undo a command")
    if commands and not wrote and not applied.get("k8s"):
        # nothing restorable: saying "rolled back" (exit 0, marked in the journal) would be untrue
        ok = False
        ran = [f"{x['script'].strip()} (exit {x['rc']})" for x in applied.get("commands") or []]
        lines.append(
            "nothing to restore: this fix only ran commands"
            + (f" ({'; '.join(ran)})" if ran else "")
            + "; undo them by hand (for a helm release: helm history, then helm rollback to the revision you want)"
        )
    return ok, lines


NO_INSTALL_DIR = 97  # the control script's exit status when install_dir is not there (nothing else has run)


async def run_on_control(inv: Inventory, command: str, timeout: float = 3600) -> tuple[int, str]:
    """A deployment command (helmfile, helm) on the control machine, in install_dir, through the usual transport."""
    from bkdoctor.inputs.inventory import HostSpec

    host = next((h for h in inv.hosts if "control" in h.roles), None) or HostSpec(
        name="control", address="localhost", roles=("control",), local=True
    )
    script = control_script(inv.install_dir, host.local, command)
    transport = engine.default_transport(host, inv)
    try:
        res = await transport.run_script(script, timeout)
    finally:
        await transport.close()
    # masked whole, then cut: a cut before `--set x.password=…` would leave the value without its key
    return res.rc, mask_text((res.stdout + res.stderr).decode("utf-8", "replace"))[-2000:]


def control_script(install_dir: str, local: bool, command: str) -> str:
    """The script run on the control machine: cd to install_dir (`~` expanded where the script runs: here, or by
    the target's shell as "$HOME"; every other character quoted), its bin/ first on PATH, then `command`."""
    import os
    import shlex

    from bkdoctor.safe.shell import target_path

    d = shlex.quote(os.path.expanduser(install_dir)) if local else target_path(install_dir)
    env = ""
    if os.environ.get("KUBECONFIG") and local:
        env = f"KUBECONFIG={shlex.quote(os.environ['KUBECONFIG'])}; export KUBECONFIG; "
    # helm/helmfile live in the install root's bin/, beside blueking/ (§四.2.2)
    return f'cd {d} || exit {NO_INSTALL_DIR}\nPATH="$PWD/../bin:$PWD/bin:$PATH"; export PATH; {env}\n{command}\n'
