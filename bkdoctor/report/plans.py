"""Fix mode on a fleet: identical plans shown once with their hosts, outcomes folded the same way.
Presentation only: each host still gets its own plan, apply, re-check and journal entry."""

from __future__ import annotations

from typing import Any, Callable

from bkdoctor.report.grouping import compress_hosts, natural_key, shape


def host_list(names: list[str]) -> str:
    return ", ".join(t for t, _n in compress_hosts(sorted(names, key=natural_key)))


def show_plans(plans: list[Any], say: Callable[[str], None], lang: str) -> None:
    """`--- RULE on HOST`, the diff and the steps left to a person for each plan, except that plans with the same rule, diff and note are
    shown once: `--- RULE: the same change on 40 hosts: node-[001-040]`."""
    groups: dict[tuple, list[Any]] = {}
    for p in plans:
        key = (p.rule, p.disruptive, p.diff(), p.note.get(lang) if p.note else None, tuple(p.manual))
        groups.setdefault(key, []).append(p)
    for (rule, disruptive, diff, note, manual), ps in groups.items():
        flag = " [disruptive]" if disruptive else ""
        if len(ps) == 1:
            say(f"--- {rule} on {ps[0].target}{flag}")
        else:
            say(
                f"--- {rule}: the same change on {len(ps)} hosts: {host_list([p.target for p in ps])}{flag}"
                if lang != "zh"
                else f"--- {rule}：{len(ps)} 台主机上的相同修改：{host_list([p.target for p in ps])}{flag}"
            )
        say(diff or "(no file change)")
        if note:
            say(note)
        if manual:  # what the changes cannot do, shown before the operator says yes
            say(
                ("此外需手工执行：" if lang == "zh" else "and by hand (bkdoctor cannot do these):")
                + "".join(f"\n    {m}" for m in manual)
            )


def fold_outcomes(outcomes: list[Any], lang: str) -> list[tuple[Any, list[str], list[str]]]:
    """Outcomes with the same status, rule and message shape: (first outcome, targets, fix ids), in order."""
    groups: dict[tuple, tuple[Any, list[str], list[str]]] = {}
    for o in outcomes:
        key = (o.status, o.rule, shape(o.message.get(lang)))
        g = groups.setdefault(key, (o, [], []))
        g[1].append(o.target)
        if o.fix_id:
            g[2].append(o.fix_id)
    return list(groups.values())
