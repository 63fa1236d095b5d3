"""The `install` command: build the inventory, settle the site's settings (asking on a terminal), then show the
plan (--plan) or run the phases (bkdoctor.install.phases); return the exit code. Imported only when it runs."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bkdoctor.model import BadInput, T
from bkdoctor.safe.terminal import clean, clean_line, print_json, safe_console


def _inventory_has(path: str, key: str) -> bool:
    from bkdoctor.safe import yamlfile

    try:
        with open(path, encoding="utf-8") as fh:
            data = yamlfile.load(fh.read(yamlfile.MAX_BYTES + 1), path)
    except (OSError, UnicodeDecodeError, BadInput):
        return False
    return isinstance(data, dict) and bool(data.get(key))


def run_install(
    show_plan: bool,
    only: str | None,
    start: str | None,
    until: str | None,
    with_optional: tuple[str, ...],
    yes: bool,
    inventory: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    domain: str | None,
    install_dir: str | None,
    accept_new_host_keys: bool,
    as_json: bool,
    lang: str,
    db: str | None,
) -> int | None:
    """`bkdoctor install`: 1 when a phase failed or was blocked, else 0; None after --plan."""
    import click

    from bkdoctor.inputs import siteconfig
    from bkdoctor.inputs.targets import cluster_access, load_inventory_for
    from bkdoctor.install.phases import Installer, load_phases, select_phases
    from bkdoctor.store import History

    inv = load_inventory_for(
        inventory, domain=domain, install_dir=install_dir, accept_new_host_keys=accept_new_host_keys
    )
    inv.install_dir_set = bool(install_dir) or bool(inventory and _inventory_has(inventory, "install_dir"))

    def ask(question: str, default: str | None) -> str:
        # the default may come from a file (custom.yaml): shown cleaned, like everything else on the terminal
        return click.prompt(
            clean_line(question) + (f" [{clean_line(default)}]" if default else ""),
            default=default or "",
            show_default=False,
        )

    siteconfig.settle(inv, ask if sys.stdin.isatty() and not show_plan else None, required=not show_plan)
    phases = select_phases(load_phases(), only, start, until, set(with_optional))
    out_console = safe_console(stderr=as_json)

    def cluster_factory() -> Any:
        return cluster_access(kubeconfig, kube_context, True)

    def say(text: str) -> None:
        from bkdoctor.safe.secrets import mask_text

        out_console.print(clean(mask_text(text)), markup=False, highlight=False)  # diffs and step output: masked too

    def confirm(question: str) -> bool:
        if yes or show_plan:
            return True
        if not sys.stdin.isatty():
            raise BadInput(
                T(
                    "install 在每个阶段前都要确认: 请在终端上运行，或加 --yes",
                    "install asks before each phase: run it on a terminal or add --yes",
                )
            )
        return click.confirm(clean_line(question), default=True)

    def show_secret(text: str) -> None:  # §六.4.3: the admin credentials, shown once, unmasked, never logged
        out_console.print(clean(text), markup=False, highlight=False)

    inst = Installer(
        inv,
        history=History(db),
        say=say,
        confirm=confirm,
        cluster_factory=cluster_factory,
        lang=lang,
        kubeconfig=kubeconfig,
        interactive=sys.stdin.isatty() and not yes,
        show_secret=show_secret,
    )
    if show_plan:
        rows = asyncio.run(inst.plan(phases))
        errors = [(r["phase"], s) for r in rows for s in r["steps"] if s["error"]]
        if as_json:
            print_json(rows, ensure_ascii=False, indent=2)
        else:
            con = safe_console(stderr=False)
            for r in rows:
                gate = r["gate"] + (" (" + ", ".join(r["gate_failing"][:4]) + ")" if r["gate_failing"] else "")
                con.print(
                    f"== {r['phase']}: {r['title']} (§{r['guide']})  gate: {gate}  verify: {r['verify']}"
                    + (f"  state: {r['state']}" if r["state"] else "")
                    + ("  [optional]" if r["optional"] else ""),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
                for s in r["steps"]:
                    where = ", ".join(s["hosts"]) or s["on"]
                    env = f"  env: {' '.join(s['env'])}" if s["env"] else ""
                    con.print(
                        f"  {s['n']}. §{s['guide']}  on: {where}  dir: {s['dir']}{env}"
                        + (f"  unless: {s['unless']}" if s["unless"] else ""),
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                    for line in s["command"].splitlines():
                        con.print(f"       {line}", markup=False, highlight=False, soft_wrap=True)
                    if s["error"]:
                        con.print(f"     ERROR: {s['error']}", markup=False, highlight=False, soft_wrap=True)
        if errors:
            p, s = errors[0]
            raise BadInput(
                T(
                    f"计划有误: {p} 第 {s['n']} 步（§{s['guide']}）: {s['error']}"
                    + (f"（另有 {len(errors) - 1} 处）" if len(errors) > 1 else ""),
                    f"plan error: {p} step {s['n']} (§{s['guide']}): {s['error']}"
                    + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
                )
            )
        return None
    errors = asyncio.run(inst.plan_errors(phases))
    if errors:
        e = errors[0]
        raise BadInput(
            T(
                f"计划有误: {e['phase']} 第 {e['step']} 步: {e['error']}（见 bkdoctor install --plan）",
                f"plan error: {e['phase']} step {e['step']}: {e['error']} (see bkdoctor install --plan)",
            )
        )
    reports = asyncio.run(inst.run(phases))
    if as_json:
        print_json([r.__dict__ for r in reports], ensure_ascii=False, indent=2, default=str)
    bad = [r for r in reports if r.status in ("failed", "blocked")]
    for r in reports:
        say(f"{r.status.upper():<8} {r.phase} {r.message}")
    return 1 if bad else 0
