"""Terminal output with rich: a summary table of the problems, progress while gathering."""

from __future__ import annotations

import shlex
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bkdoctor.guidetext import NOT_IN_GUIDE
from bkdoctor.model import STATUSES
from bkdoctor.safe.terminal import clean, clean_line

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "magenta", "skip": "dim", "suppressed": "cyan"}

L = {
    "zh": {
        "rule": "规则",
        "target": "目标",
        "status": "状态",
        "sev": "级别",
        "msg": "说明",
        "fix": "修复",
        "summary": "汇总",
        "targets": "目标主机",
        "unreachable": "不可达",
        "scan": "扫描",
        "all_ok": "全部检查通过",
        "dur": "耗时",
        "details": "完整报告：--json / --html",
        "guide": "部署文档",
        "new": "新增问题",
        "resolved": "已解决",
        "still": "仍未解决",
        "changed": "状态变化",
    },
    "en": {
        "rule": "Rule",
        "target": "Target",
        "status": "Status",
        "sev": "Severity",
        "msg": "Message",
        "fix": "Fix",
        "summary": "Summary",
        "targets": "targets",
        "unreachable": "unreachable",
        "scan": "Scan",
        "all_ok": "All checks passed",
        "dur": "took",
        "details": "full report: --json / --html",
        "guide": "guide",
        "new": "New problems",
        "resolved": "Resolved",
        "still": "Still failing",
        "changed": "Status changed",
    },
}


def print_report(report: dict[str, Any], console: Console, verbose: bool = False, group_by: str = "rule") -> None:
    """The terminal summary. `group_by`: rule (default: one line per problem with the hosts it touches), host
    (every host with its own problems: the folded host lists expanded), none (one row per rule x target)."""
    if group_by == "none":
        _print_flat(report, console, verbose)
        return
    from bkdoctor.report.grouping import print_grouped

    print_grouped(report, console, verbose=verbose, by=group_by)
    _summary_line(report, console)


def _is_down(tg: dict[str, Any]) -> bool:
    return not tg["reachable"] and not (tg["error"] or "").startswith("no cluster configured")


def _print_flat(report: dict[str, Any], console: Console, verbose: bool = False) -> None:
    """`--group-by none`: one row per rule x target (the table before grouping)."""
    lang = report["lang"]
    t = L[lang]
    problems = [f for f in report["findings"] if f["status"] in ("fail", "error", "warn", "suppressed")]
    if verbose:
        problems = report["findings"]
    for tg in report["targets"]:
        if not tg["reachable"] and not (tg["error"] or "").startswith("no cluster configured"):
            console.print(
                Text(
                    clean_line(f"✗ {tg['name']} ({tg['address']}): {t['unreachable']}: {tg['error']}"), style="magenta"
                )
            )
    if problems:
        table = Table(show_lines=False, header_style="bold", expand=False)
        table.add_column(t["status"], no_wrap=True)
        table.add_column(t["sev"], no_wrap=True)
        table.add_column(t["rule"], no_wrap=True)
        table.add_column(t["target"], overflow="fold")
        table.add_column(t["msg"], overflow="fold")
        for f in problems:
            msg = Text(clean(f["message"]))
            if f.get("suppression"):
                msg.append(clean(f"  [{f['suppression']['reason']}]"), style="cyan")
            fix_hint = bool(f.get("remediation") and f["remediation"].get("id") and f["status"] in ("fail", "warn"))
            if fix_hint:
                msg.append(
                    clean(
                        f"\n{t['fix']}: bkdoctor fix --rule {shlex.quote(f['rule'])} --host {shlex.quote(f['target'])}"
                    ),
                    style="dim",
                )
            if f.get("guide") and f["status"] in ("fail", "warn"):
                # after the Fix: command, a shell comment: the line copy-pastes as it is; a site rule names the
                # site's own reference
                g = f["guide"]
                ref = (
                    g.get("title")
                    if g.get("section") == "site"
                    else (NOT_IN_GUIDE if g.get("section") == NOT_IN_GUIDE else f"{t['guide']} §{g['section']}")
                )
                msg.append(clean(f"  # {ref}" if fix_hint else f"  ({ref})"), style="dim")
            table.add_row(
                Text(f["status"].upper(), style=STYLE[f["status"]]),
                f["severity"],
                f["rule"],
                Text(clean_line(f["target"])),
                msg,
            )
        console.print(table)
    else:
        console.print(Text(f"✓ {t['all_ok']}", style="green"))
    _summary_line(report, console)


def _summary_line(report: dict[str, Any], console: Console) -> None:
    t = L[report["lang"]]
    s = report["summary"]
    parts = [Text(f"{k} {s[k]}", style=STYLE[k]) for k in STATUSES if s[k]]
    line = Text(f"{t['scan']} {report['scan']['id']}: ")
    for i, p in enumerate(parts):
        if i:
            line.append(" · ")
        line.append(p)
    down = sum(1 for tg in report["targets"] if _is_down(tg))
    line.append(
        f"  ({len(report['targets'])} {t['targets']}"
        + (f", {down} {t['unreachable']}" if down else "")
        + f", {t['dur']} {report['scan']['duration_s']:.2f}s)"
    )
    console.print(line)


def print_diff(d: dict[str, Any], console: Console, lang: str) -> None:
    from bkdoctor.safe.secrets import mask_obj

    d = mask_obj(d)  # rows recorded by an older bkdoctor may predate value-shape masking
    t = L[lang]
    console.print(Text(clean_line(f"{d['from']} → {d['to']}")))
    for key, label, style in (
        ("new", t["new"], "bold red"),
        ("resolved", t["resolved"], "green"),
        ("changed", t["changed"], "yellow"),
        ("still_failing", t["still"], "red"),
    ):
        items = d[key]
        console.print(Text(f"{label}: {len(items)}", style=style))
        for it in items:
            console.print(
                Text(
                    clean_line(
                        f"  {it['rule']:<24} {it['target']:<24} {it['before'] or '-'} → "
                        f"{it['after'] or '-'}  {it['message'] or ''}"
                    )
                )
            )
