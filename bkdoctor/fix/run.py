"""The `fix`, `journal` and `rollback` commands: build the inputs, run the fix loop (bkdoctor.fix.loop) with the
terminal's confirmation, print and journal the outcomes; return the exit code. Imported only when one of them runs."""

from __future__ import annotations

import asyncio
import json
import sys

from bkdoctor.model import BadInput, T
from bkdoctor.safe.terminal import clean, clean_line, print_json, safe_console

# the values a remediation reads from `fix --set KEY=VALUE` (a typo must not be ignored; tests/test_limits.py
# holds this against every `params` key the remediations read)
SET_KEYS = {"image": "faq-paas-init-data: the PaaS app image (PAAS_APP_IMAGE)"}


def parse_sets(sets: tuple[str, ...]) -> dict[str, str]:
    """`--set KEY=VALUE`s as a dict; a malformed pair or an unknown key is bad input."""
    params = {}
    for kv in sets:
        if "=" not in kv or not kv.split("=", 1)[0]:
            raise BadInput(T(f"--set {kv!r}: 格式应为 KEY=VALUE", f"--set {kv!r}: expected KEY=VALUE"))
        k, v = kv.split("=", 1)
        if k not in SET_KEYS:
            raise BadInput(
                T(
                    f"--set {k}: 未知的键（可用: {', '.join(sorted(SET_KEYS))}）",
                    f"--set {k}: unknown key (known: {', '.join(sorted(SET_KEYS))})",
                )
            )
        params[k] = v
    return params


def run_fix(
    rules: tuple[str, ...],
    hosts: tuple[str, ...],
    inventory: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    no_cluster: bool,
    domain: str | None,
    install_dir: str | None,
    dry_run: bool,
    yes: bool,
    allow_disruptive: bool,
    accept_new_host_keys: bool,
    sets: tuple[str, ...],
    json_path: str | None,
    export: tuple[str, str] | None,
    lang: str,
    db: str | None,
) -> int:
    """`bkdoctor fix`: `fix_exit_code` (1 failed, 2 refused, else 0; `--export ansible DIR`: the export's code)."""
    if export:
        from bkdoctor.export.ansible import export_cli

        return export_cli(
            export,
            rules=rules,
            hosts=hosts,
            inventory=inventory,
            domain=domain,
            install_dir=install_dir,
            accept_new_host_keys=accept_new_host_keys,
        )
    import click

    from bkdoctor.fix import loop
    from bkdoctor.inputs.targets import load_targets
    from bkdoctor.safe.outfiles import write_atomic
    from bkdoctor.scan import loader
    from bkdoctor.store import History

    params = parse_sets(sets)
    selected = loader.select(list(rules), None)
    if json_path and json_path != "-":
        from bkdoctor.safe.outfiles import check_output_path

        check_output_path(json_path, "--json")  # before the scan and before any change
    inv, cluster = load_targets(
        inventory,
        domain=domain,
        install_dir=install_dir,
        accept_new_host_keys=accept_new_host_keys,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        need_cluster=not no_cluster and any(r.scope == "cluster" for r in selected),
    )
    unknown = set(hosts) - {h.name for h in inv.hosts} - ({cluster.name} if cluster else set())
    if unknown:
        raise BadInput(
            T(f"--host {sorted(unknown)[0]!r} 不在清单中", f"--host {sorted(unknown)[0]!r} is not in the inventory")
        )
    history = History(db)
    out_console = safe_console(stderr=(json_path == "-"))

    def say(text: str) -> None:
        from bkdoctor.safe.secrets import mask_text

        out_console.print(clean(mask_text(text)), markup=False, highlight=False)  # diffs and step output: masked too

    def confirm(plans: list) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BadInput(
                T(
                    "修复需要确认: 请在终端上运行，或加 --yes（见上方的修复计划）",
                    "fix needs confirmation: run it on a terminal or add --yes (see the plan above)",
                )
            )
        return click.confirm(f"apply {len(plans)} fix(es)?", default=False)

    outcomes = asyncio.run(
        loop.run_fix(
            inv,
            selected,
            hosts=set(hosts) or None,
            cluster=cluster,
            dry_run=dry_run,
            allow_disruptive=allow_disruptive,
            confirm=confirm,
            say=say,
            history=history,
            lang=lang,
            params=params,
        )
    )
    style = {
        "fixed": "green",
        "unchanged": "dim",
        "failed": "bold red",
        "manual": "yellow",
        "refused": "bold yellow",
        "skipped": "cyan",
        "planned": "cyan",
    }
    from rich.text import Text

    from bkdoctor.report.plans import fold_outcomes, host_list
    from bkdoctor.safe.secrets import mask_obj, mask_text

    for o, targets, ids in fold_outcomes(outcomes, lang):  # the same outcome on many hosts: one line
        line = Text(f"{o.status.upper():<9} ", style=style[o.status])
        where = targets[0] if len(targets) == 1 else f"{len(targets)} hosts ({host_list(targets)})"
        line.append(clean(mask_text(f"{o.rule} @ {where}: {o.message.get(lang)}")))
        if ids:
            line.append(f"  [{ids[0]}]" if len(ids) == 1 else f"  [{len(ids)} fixes: bkdoctor journal]", style="dim")
        out_console.print(line)
    if json_path:
        doc = {"schema": "bkdoctor/fix/v1", "outcomes": mask_obj([o.to_dict(lang) for o in outcomes])}
        text = json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n"
        if json_path == "-":
            from bkdoctor.safe.terminal import json_for_terminal

            sys.stdout.write(json_for_terminal(text))
        else:
            write_atomic(json_path, text)
    return fix_exit_code(outcomes)


def fix_exit_code(outcomes: list) -> int:
    """1 when a fix failed (something was tried and did not hold: that wins); else 2 when a requested fix was
    refused because of bad input on a target (a file that does not parse or cannot be edited safely, a check that
    could not run there), nothing written there; else 0 (fixed, unchanged, manual steps, skipped, planned)."""
    if any(o.status == "failed" for o in outcomes):
        return 1
    return 2 if any(o.status == "refused" for o in outcomes) else 0


def show_journal(limit: int, as_json: bool, db: str | None) -> None:
    """`bkdoctor journal`: past fixes, newest first."""
    from bkdoctor.store import History

    rows = History(db).fixes(limit)
    if as_json:
        print_json(rows, ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("fix", "when", "target", "rule", "status", "rolled back"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(
                clean_line(x)
                for x in (r["id"], r["created_at"], r["target"], r["rule"], r["status"], r["rolled_back_at"] or "")
            )
        )
    safe_console(stderr=False).print(table)


def run_rollback(
    fix_id: str,
    inventory: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    accept_new_host_keys: bool,
    db: str | None,
) -> int:
    """`bkdoctor rollback`: 0 when everything the fix changed is restored, else 1."""
    from bkdoctor.fix.loop import rollback
    from bkdoctor.inputs.targets import load_targets
    from bkdoctor.store import History

    h = History(db)
    rec = h.fix(fix_id)
    if rec.get("rolled_back_at"):
        raise BadInput(
            T(
                f"{rec['id']} 已于 {rec['rolled_back_at']} 回滚过",
                f"{rec['id']} was already rolled back at {rec['rolled_back_at']}",
            )
        )
    inv, cluster = load_targets(
        inventory,
        accept_new_host_keys=accept_new_host_keys,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        need_cluster=bool(rec["applied"].get("k8s")),
    )
    ok, lines = asyncio.run(rollback(rec, inv, cluster))
    for line in lines:
        safe_console(stderr=False).print(clean(line), markup=False)
    if ok:
        h.mark_rolled_back(rec["id"])
    return 0 if ok else 1
