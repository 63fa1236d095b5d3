"""The `rules` and `rules test` commands: list every rule (built-in and site rules) as a table or JSON, and run the
site rules' own pass/fail examples. Light imports only: `bkdoctor rules` never loads the cluster or SSH client
(tests/test_startup.py)."""

from __future__ import annotations

from bkdoctor.safe.terminal import clean, clean_line, print_json, safe_console


def list_rules(as_json: bool, lang: str, rules_dirs: tuple[str, ...] = ()) -> None:
    """`bkdoctor rules`: id, title, scope, severity, tags, remediation, guide section of every rule."""
    from bkdoctor.scan.loader import all_rules

    rules = list(all_rules())
    if rules_dirs:
        from bkdoctor.scan.siterules import load_dirs

        rules += [s.rule for s in load_dirs(list(rules_dirs))]
    if as_json:
        print_json([r.meta() for r in rules], ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    from bkdoctor.guidetext import NOT_IN_GUIDE

    table = Table(header_style="bold")
    for col in ("id", "scope", "severity", "tags", "remediation", "guide", "title"):
        table.add_column(col)
    for r in rules:
        table.add_row(
            clean_line(r.id),
            r.scope,
            r.severity,
            clean_line(",".join(r.tags)),
            r.remediation or "-",
            clean_line(
                r.guide.title
                if r.guide.section == "site"
                else r.guide.section
                if r.guide.section == NOT_IN_GUIDE
                else f"§{r.guide.section}"
            ),
            clean_line(r.title.get(lang)),
        )
    safe_console(stderr=False).print(table)


def run_examples(dirs: tuple[str, ...], as_json: bool) -> int:
    """`bkdoctor rules test DIR...`: 1 when an example gives another status than it expects, else 0."""
    from bkdoctor.scan import siterules

    site = siterules.load_dirs(list(dirs))
    rows = siterules.run_examples(site)
    bad = [r for r in rows if not r["ok"]]
    if as_json:
        print_json(rows, ensure_ascii=False, indent=2)
    else:
        out = safe_console(stderr=False)
        by_rule: dict[str, list] = {}
        for r in rows:
            by_rule.setdefault(r["rule"], []).append(r)
        for rid, rs in by_rule.items():
            wrong = [r for r in rs if not r["ok"]]
            line = f"{'ok  ' if not wrong else 'FAIL'} {rid}: {len(rs) - len(wrong)}/{len(rs)} examples as expected"
            out.print(clean(line), markup=False, highlight=False)
            for r in wrong:
                out.print(
                    clean(f"     {r['example']}: expected {r['expected']}, got {r['got']}: {r['message']}"),
                    markup=False,
                    highlight=False,
                )
        out.print(
            clean(f"{len(site)} site rule(s), {len(rows)} example(s), {len(bad)} wrong"), markup=False, highlight=False
        )
    return 1 if bad else 0
