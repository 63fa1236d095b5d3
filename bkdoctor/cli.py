"""Command line: `bkdoctor scan | rules | history | diff`.

Exit codes: 0 no finding at or above --fail-on; 1 there are; 2 bad usage or bad input (one line, no
traceback); 3 an internal error (one line; BKDOCTOR_DEBUG=1 shows the traceback).
"""
from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:] == ["--version"]:  # `python -m bkdoctor.cli --version`: no click
    from bkdoctor import __version__

    sys.stdout.write(f"bkdoctor, version {__version__}\n")
    sys.exit(0)

import json
import os
import shlex
from typing import Any

import click

from bkdoctor import __version__
from bkdoctor.model import BadInput, STATUS_RANK
from bkdoctor.safe.terminal import clean, clean_line


class _LazyAsyncio:
    """`asyncio`, imported on first use: `--version`, `rules`, `history` never pay for it (issue 16)."""

    def __getattr__(self, name: str) -> Any:
        import asyncio as mod

        return getattr(mod, name)


asyncio = _LazyAsyncio()


def default_lang() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        v = os.environ.get(var)
        if v:
            return "zh" if v.lower().startswith("zh") else "en"
    return "en"


def _console(stderr: bool):
    """Every command's terminal output: text from hosts is cleaned of control characters (termsafe)."""
    from bkdoctor.safe.terminal import safe_console

    return safe_console(stderr=stderr)


def _out_json(obj: Any, **kw: Any) -> None:
    """JSON on stdout (maybe a terminal): C1/bidi characters as \\u escapes (the same JSON value)."""
    from bkdoctor.safe.terminal import dumps_for_terminal

    sys.stdout.write(dumps_for_terminal(obj, **kw) + "\n")


def _check_domain_opt(ctx: Any, param: Any, value: str | None) -> str | None:
    """--domain is checked like an inventory's `domain:` (the schema's pattern): it reaches shells and /etc/hosts."""
    import re

    if value is None:
        return value
    if len(value) > 253 or not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+",
                                            value):
        raise BadInput(f"--domain {value[:80]!r} is not a domain name (letters, digits and '-' in dot-separated "
                       f"labels, e.g. bkce7.bktencent.com)")
    return value


def _check_install_dir_opt(ctx: Any, param: Any, value: str | None) -> str | None:
    """--install-dir is checked like an inventory's `install_dir:`."""
    if value is None:
        return value
    from bkdoctor.inputs.siteconfig import check_install_dir

    return check_install_dir(value, "--install-dir")


LANG_OPT = click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
                        help="Report language (default from LANG: zh_CN -> zh).")
DB_OPT = click.option("--db", type=click.Path(dir_okay=False), default=None,
                      help="History database (default $XDG_DATA_HOME/bkdoctor/history.db).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bkdoctor")
def cli() -> None:
    """bkdoctor: find (and fix) what breaks a BlueKing 7.1 deployment on Kubernetes."""


@cli.command()
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None,
              help="Inventory/config YAML. Without it: this host, role control.")
@click.option("--rule", "rules", multiple=True, metavar="SEL", help="Rule id, group or tag to run (repeatable).")
@click.option("--skip", "skips", multiple=True, metavar="SEL", help="Rule id, group or tag to leave out (repeatable).")
@click.option("--json", "json_path", metavar="PATH", default=None, help="Write the JSON report ('-' = stdout).")
@click.option("--html", "html_path", metavar="PATH", default=None, help="Write the self-contained HTML report.")
@click.option("--junit", "junit_path", metavar="PATH", default=None, help="Write JUnit XML (one testcase per rule x target).")
@LANG_OPT
@click.option("--fail-on", type=click.Choice(["warn", "fail"]), default="fail", show_default=True,
              help="Exit 1 when a finding is at or above this level (error counts as fail).")
@click.option("--no-history", is_flag=True, help="Do not record this scan in the history database.")
@DB_OPT
@click.option("--domain", default=None, callback=_check_domain_opt, help="BK_DOMAIN (overrides the inventory and custom.yaml).")
@click.option("--install-dir", default=None, callback=_check_install_dir_opt, help="BlueKing install dir (default ~/bkce7.1-install/blueking).")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="Cluster to check (default $KUBECONFIG, in-cluster, ~/.kube/config).")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@click.option("--no-cluster", is_flag=True, help="Do not check the cluster even if a kubeconfig is found.")
@click.option("--from-cluster", is_flag=True, help="Take the hosts from the cluster's Nodes (InternalIP; role from labels).")
@click.option("--from-daemonset", metavar="NAMESPACE", default=None,
              help="Host facts from the bkdoctor DaemonSet's pods (see `bkdoctor cluster-job --mode daemonset`): no SSH.")
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False), default=None,
              help="Analyse a support bundle (from `bkdoctor collect`) instead of live hosts and cluster.")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Trust unknown SSH host keys on first use and record them (a changed key is still refused).")
@click.option("--ask-pass", is_flag=True, help="Prompt once for the SSH password (or set ssh.password_env).")
@click.option("--measure", is_flag=True, help="Also run the measurements (fio IOPS, bandwidth, endpoint access).")
@click.option("-v", "--verbose", is_flag=True, help="List passing findings too (and each host's values in a group).")
@click.option("--group-by", type=click.Choice(["rule", "host", "none"]), default="rule", show_default=True,
              help="Terminal summary: one line per problem with its hosts (rule), each host with its problems "
                   "(host: folded host lists expanded), or one row per rule x target (none).")
@click.option("--rules-dir", "rules_dirs", multiple=True, metavar="DIR",
              help="Site rules: a directory of YAML checks (bkdoctor/site-rules.schema.json); repeatable.")
@click.option("--prometheus", "prom_path", metavar="PATH", default=None,
              help="Write the metrics (Prometheus text format; node_exporter textfile collector), atomically.")
@click.option("--history-configmap", "history_cm", metavar="NS/NAME", default=None,
              help="Also add this run's summary to a ConfigMap of the cluster (the CronJob's history).")
def scan(inventory: str | None, rules: tuple[str, ...], skips: tuple[str, ...], json_path: str | None,
         html_path: str | None, junit_path: str | None, lang: str | None, fail_on: str, no_history: bool,
         db: str | None, domain: str | None, install_dir: str | None, concurrency: int, kubeconfig: str | None,
         kube_context: str | None, no_cluster: bool, from_cluster: bool, from_daemonset: str | None,
         bundle_path: str | None,
         accept_new_host_keys: bool, ask_pass: bool, measure: bool, verbose: bool, group_by: str,
         rules_dirs: tuple[str, ...] = (), prom_path: str | None = None, history_cm: str | None = None) -> None:
    """Check every host of the inventory (or this host) and report."""
    from bkdoctor.scan import engine, loader as registry
    from bkdoctor.inputs.inventory import load_inventory, local_inventory
    from bkdoctor.report.jsonreport import build_report, dumps, write_atomic
    from bkdoctor.report.terminal import print_report

    lang = lang or default_lang()
    # Every output path and the history database's path are checked before anything else: a typo must not
    # cost a whole fleet scan, and a refused run creates nothing.
    from bkdoctor.safe.outfiles import check_output_path

    for opt, p in (("--json", json_path), ("--html", html_path), ("--junit", junit_path),
                   ("--prometheus", prom_path)):
        if p and not (opt == "--json" and p == "-"):
            check_output_path(p, opt)
    db_path = None
    if not no_history:
        from bkdoctor.store import check_db_path

        db_path = check_db_path(db)
    preloaded = None
    if bundle_path:
        from bkdoctor.inputs.bundle import read_bundle
        from bkdoctor.inputs.inventory import DEFAULT_INSTALL_DIR, Inventory

        manifest, preloaded_hosts, bundle_cluster = read_bundle(bundle_path)
        # everything from the bundle, nothing from this machine (no custom.yaml, no kubeconfig, no inventory):
        # the manifest's install_dir names a directory on the site's control machine, not here
        inv = Inventory(path=f"bundle:{bundle_path}", hosts=[], domain=manifest.get("domain"),
                        domain_source="bundle" if manifest.get("domain") else None,
                        install_dir=manifest.get("install_dir") or DEFAULT_INSTALL_DIR, ssh={},
                        thresholds=manifest["thresholds"], suppress=[], ingress_ip=manifest.get("ingress_ip"))
        inv.site_files = False  # custom.yaml, VERSION...: the site's, not this machine's (not in a bundle yet)
        preloaded = (preloaded_hosts, bundle_cluster)
        inventory, no_cluster = None, True
    if bundle_path:
        pass
    elif inventory:
        inv = load_inventory(inventory)
        if install_dir:
            inv.install_dir = install_dir
    else:
        inv = local_inventory(domain, install_dir)
    if domain:
        inv.domain, inv.domain_source = domain, "--domain"
    from bkdoctor.scan.siterules import load_dirs

    site = [s.rule for s in load_dirs(list(getattr(inv, "rules_dirs", None) or []) + list(rules_dirs))]
    selected = registry.select(list(rules), list(skips), measure=measure, extra=site)
    # a suppression of a rule that does not exist (a typo) would silently suppress nothing: refused. The site
    # rules' ids count (loaded just above, from the inventory's rules_dirs and --rules-dir)
    known_ids = {r.id for r in registry.all_rules()} | {r.id for r in site}
    for sup in getattr(inv, "suppress", None) or []:
        if sup.rule != "*" and sup.rule not in known_ids:
            raise BadInput(f"inventory {inv.path}: suppress: no rule {sup.rule[:80]!r} (see `bkdoctor rules`; a site "
                           f"rule's id needs its rules dir: --rules-dir or rules_dirs in the inventory)")
    inv.accept_new_host_keys = accept_new_host_keys
    if ask_pass:
        import getpass

        try:
            inv.ssh_password = getpass.getpass("SSH password: ")  # never echoed, never stored
        except (EOFError, OSError):
            raise BadInput("--ask-pass needs a terminal (or set ssh.password_env)") from None
    cluster = None
    if not no_cluster and (any(r.scope == "cluster" for r in selected) or from_cluster or from_daemonset):
        from bkdoctor.facts.cluster import configure

        cluster = configure(kubeconfig, kube_context)
        if from_cluster:
            from bkdoctor.facts.cluster import hosts_from_cluster

            if cluster is None:
                raise BadInput("--from-cluster needs a cluster (--kubeconfig or ~/.kube/config)")
            inv.hosts = hosts_from_cluster(cluster, inv)
        if from_daemonset:
            from bkdoctor.incluster.job import daemonset_scan_inputs

            if cluster is None:
                raise BadInput("--from-daemonset needs a cluster (--kubeconfig or ~/.kube/config)")
            selected, ds_hosts = daemonset_scan_inputs(cluster, inv, selected, from_daemonset)
            preloaded = (ds_hosts, None)
    console = _console(stderr=(json_path == "-"))
    if preloaded is not None:
        from bkdoctor.scan import engine

        result = asyncio.run(engine.scan(inv, selected, preloaded_hosts=preloaded[0], cluster_facts=preloaded[1],
                                         cluster=cluster))
    else:
        result = asyncio.run(_scan_with_progress(inv, selected, concurrency, console, cluster))
    report = build_report(result, lang)
    if json_path == "-":
        from bkdoctor.safe.terminal import json_for_terminal

        sys.stdout.write(json_for_terminal(dumps(report)))
        sys.stdout.flush()
    elif json_path:
        write_atomic(json_path, dumps(report))
    if html_path:
        from bkdoctor.report.html import render_html

        write_atomic(html_path, render_html(report))
    if junit_path:
        from bkdoctor.report.junit import render_junit

        write_atomic(junit_path, render_junit(report))
    if prom_path:
        from bkdoctor.report.prometheus import render_prometheus

        write_atomic(prom_path, render_prometheus(report))
    if history_cm:
        from bkdoctor.incluster.cronjob import save_to_configmap

        if cluster is None:
            raise BadInput("--history-configmap needs a cluster (in-cluster config, --kubeconfig or ~/.kube/config)")
        save_to_configmap(cluster, history_cm, report)
    print_report(report, console, verbose=verbose, group_by=group_by)
    if db_path is not None:
        # recorded last: a corrupted or locked database costs the history entry, never the report
        try:
            from bkdoctor.store import History

            History(db_path).save(report)
        except Exception as e:  # BadInput, sqlite3 errors (locked, not a database, disk full)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            sys.stderr.write(f"bkdoctor: warning: scan {report['scan']['id']} not recorded in the history: "
                             f"{clean_line(msg)}\n")
    threshold = STATUS_RANK[fail_on]
    worst = max((STATUS_RANK[f["status"]] for f in report["findings"]), default=0)
    sys.exit(1 if worst >= threshold else 0)


async def _scan_with_progress(inv: Any, selected: list, concurrency: int, console: Any, cluster: Any = None) -> Any:
    """Live progress on a terminal (one line per host for small fleets, a bar with counts for big ones);
    nothing when the output is not a terminal (CI logs stay clean)."""
    from bkdoctor.scan import engine

    if not console.is_terminal:
        return await engine.scan(inv, selected, concurrency=concurrency, cluster=cluster)
    import time

    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    hosts = [h.name for h in inv.hosts] + (["cluster"] if cluster is not None else [])
    state = {h: ("queued", None) for h in hosts}
    started: dict[str, float] = {}
    style = {"queued": "dim", "gathering": "cyan", "done": "green", "unreachable": "magenta"}
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    task = progress.add_task("gathering facts", total=len(hosts))

    def render() -> Any:
        if len(hosts) > 30:
            return progress
        t = Table.grid(padding=(0, 2))
        for h in hosts:
            st, secs = state[h]
            dur = f"{secs:.1f}s" if secs is not None else (f"{time.monotonic() - started[h]:.1f}s" if h in started else "")
            t.add_row(Text(clean_line(h)), Text(st, style=style[st]), Text(dur, style="dim"))
        g = Table.grid()
        g.add_row(progress)
        g.add_row(t)
        return g

    with Live(render(), console=console, transient=True, refresh_per_second=8) as live:
        def on_progress(host: str, st: str) -> None:
            if st == "gathering":
                started[host] = time.monotonic()
                state[host] = (st, None)
            else:
                state[host] = (st, time.monotonic() - started.get(host, time.monotonic()))
                progress.advance(task)
            counts = {k: sum(1 for v in state.values() if v[0] == k) for k in style}
            progress.update(task, description=f"gathering facts · {counts['done']} done · "
                                              f"{counts['unreachable']} unreachable")
            live.update(render())

        return await engine.scan(inv, selected, concurrency=concurrency, on_progress=on_progress, cluster=cluster)


@cli.command()
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="bundle.tar.gz to write.")
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None)
@click.option("--rule", "rules", multiple=True, metavar="SEL")
@click.option("--skip", "skips", multiple=True, metavar="SEL")
@click.option("--domain", default=None, callback=_check_domain_opt)
@click.option("--install-dir", default=None, callback=_check_install_dir_opt)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--context", "kube_context", default=None)
@click.option("--no-cluster", is_flag=True)
@click.option("--accept-new-host-keys", is_flag=True)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32)
def collect(out: str, inventory: str | None, rules: tuple[str, ...], skips: tuple[str, ...], domain: str | None,
            install_dir: str | None, kubeconfig: str | None, kube_context: str | None, no_cluster: bool,
            accept_new_host_keys: bool, concurrency: int) -> None:
    """Save the host facts and cluster objects the rules use (secrets removed) for offline analysis."""
    from bkdoctor.scan import loader as registry
    from bkdoctor.inputs.bundle import write_bundle
    from bkdoctor.inputs.inventory import load_inventory, local_inventory

    selected = registry.select(list(rules), list(skips))
    inv = load_inventory(inventory) if inventory else local_inventory(domain, install_dir)
    if domain:
        inv.domain = domain
    inv.accept_new_host_keys = accept_new_host_keys
    cluster = None
    if not no_cluster:
        from bkdoctor.facts.cluster import configure

        cluster = configure(kubeconfig, kube_context)
    from bkdoctor.safe.outfiles import check_output_path

    check_output_path(out, "-o")
    console = _console(stderr=True)
    result = asyncio.run(_scan_with_progress(inv, selected, concurrency, console, cluster))
    manifest = write_bundle(result, out)
    console.print(f"bundle {clean_line(out)}: {len(manifest['hosts'])} host(s), cluster {manifest['cluster'] or '-'}, "
                  f"{len(manifest['rules'])} rules; analyse with: bkdoctor scan --bundle {clean_line(shlex.quote(out))}")


# the values a remediation reads from `fix --set KEY=VALUE` (a typo must not be ignored; tests/test_limits.py
# holds this against every `params` key the remediations read)
SET_KEYS = {"image": "faq-paas-init-data: the PaaS app image (PAAS_APP_IMAGE)"}


def _inventory_has(path: str, key: str) -> bool:
    from bkdoctor.safe import yamlfile as safeyaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = safeyaml.load(fh.read(safeyaml.MAX_BYTES + 1), path)
    except (OSError, UnicodeDecodeError, BadInput):
        return False
    return isinstance(data, dict) and bool(data.get(key))


def _targets_and_cluster(inventory, domain, install_dir, kubeconfig, kube_context, no_cluster, accept_new_host_keys,
                         need_cluster):
    from bkdoctor.inputs.inventory import load_inventory, local_inventory

    inv = load_inventory(inventory) if inventory else local_inventory(domain, install_dir)
    if domain:
        inv.domain, inv.domain_source = domain, "--domain"
    inv.accept_new_host_keys = accept_new_host_keys
    cluster = None
    if need_cluster and not no_cluster:
        from bkdoctor.facts.cluster import configure

        cluster = configure(kubeconfig, kube_context)
    return inv, cluster


@cli.command()
@click.option("--rule", "rules", multiple=True, metavar="SEL", required=True, help="Rule id, group or tag to fix.")
@click.option("--host", "hosts", multiple=True, metavar="NAME", help="Only these targets (repeatable).")
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--context", "kube_context", default=None)
@click.option("--no-cluster", is_flag=True)
@click.option("--domain", default=None, callback=_check_domain_opt)
@click.option("--install-dir", default=None, callback=_check_install_dir_opt)
@click.option("--dry-run", is_flag=True, help="Show the plan and the diffs; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option("--allow-disruptive", is_flag=True, help="Also apply fixes that restart a daemon or delete a pod.")
@click.option("--accept-new-host-keys", is_flag=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A value a remediation needs, e.g. --set image=registry.local/blueking/slug-app:v1 (repeatable).")
@click.option("--json", "json_path", metavar="PATH", default=None, help="Write the outcome as JSON ('-' = stdout).")
@click.option("--export", nargs=2, metavar="ansible DIR", default=None,
              help="Apply nothing: write DIR/inventory.ini and DIR/site.yml (Ansible builtin modules) doing the same host fixes.")
@LANG_OPT
@DB_OPT
def fix(rules: tuple[str, ...], hosts: tuple[str, ...], inventory: str | None, kubeconfig: str | None,
        kube_context: str | None, no_cluster: bool, domain: str | None, install_dir: str | None, dry_run: bool, yes: bool,
        allow_disruptive: bool, accept_new_host_keys: bool, sets: tuple[str, ...], json_path: str | None,
        export: tuple[str, str] | None, lang: str | None, db: str | None) -> None:
    """Plan, show the diff, apply with backups, re-check, and journal the fix of the selected rules."""
    if export:
        from bkdoctor.export.ansible import export_cli

        sys.exit(export_cli(export, rules=rules, hosts=hosts, inventory=inventory, domain=domain,
                            install_dir=install_dir, accept_new_host_keys=accept_new_host_keys))
    from bkdoctor.scan import loader as registry
    from bkdoctor.fix.loop import run_fix
    from bkdoctor.report.jsonreport import write_atomic
    from bkdoctor.store import History

    lang = lang or default_lang()
    params = {}
    for kv in sets:
        if "=" not in kv or not kv.split("=", 1)[0]:
            raise BadInput(f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        if k not in SET_KEYS:
            raise BadInput(f"--set {k}: unknown key (known: {', '.join(sorted(SET_KEYS))})")
        params[k] = v
    selected = registry.select(list(rules), None)
    if json_path and json_path != "-":
        from bkdoctor.safe.outfiles import check_output_path

        check_output_path(json_path, "--json")  # before the scan and before any change
    inv, cluster = _targets_and_cluster(inventory, domain, install_dir, kubeconfig, kube_context, no_cluster,
                                        accept_new_host_keys, any(r.scope == "cluster" for r in selected))
    unknown = set(hosts) - {h.name for h in inv.hosts} - ({cluster.name} if cluster else set())
    if unknown:
        raise BadInput(f"--host {sorted(unknown)[0]!r} is not in the inventory")
    history = History(db)
    out_console = _console(stderr=(json_path == "-"))

    def say(text: str) -> None:
        from bkdoctor.safe.secrets import mask_text

        out_console.print(clean(mask_text(text)), markup=False, highlight=False)  # diffs and step output: masked too

    def confirm(plans: list) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BadInput("fix needs confirmation: run it on a terminal or add --yes (see the plan above)")
        return click.confirm(f"apply {len(plans)} fix(es)?", default=False)

    outcomes = asyncio.run(run_fix(inv, selected, hosts=set(hosts) or None, cluster=cluster, dry_run=dry_run,
                                   allow_disruptive=allow_disruptive, confirm=confirm, say=say, history=history, lang=lang,
                                   params=params))
    style = {"fixed": "green", "unchanged": "dim", "failed": "bold red", "manual": "yellow", "skipped": "cyan",
             "planned": "cyan"}
    from rich.text import Text

    from bkdoctor.report.plans import fold_outcomes, host_list

    for o, targets, ids in fold_outcomes(outcomes, lang):  # the same outcome on many hosts: one line
        line = Text(f"{o.status.upper():<9} ", style=style[o.status])
        where = targets[0] if len(targets) == 1 else f"{len(targets)} hosts ({host_list(targets)})"
        from bkdoctor.safe.secrets import mask_text

        line.append(clean(mask_text(f"{o.rule} @ {where}: {o.message.get(lang)}")))
        if ids:
            line.append(f"  [{ids[0]}]" if len(ids) == 1 else f"  [{len(ids)} fixes: bkdoctor journal]", style="dim")
        out_console.print(line)
    if json_path:
        from bkdoctor.safe.secrets import mask_obj

        doc = {"schema": "bkdoctor/fix/v1", "outcomes": mask_obj([o.to_dict(lang) for o in outcomes])}
        text = json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n"
        if json_path == "-":
            from bkdoctor.safe.terminal import json_for_terminal

            sys.stdout.write(json_for_terminal(text))
        else:
            write_atomic(json_path, text)
    sys.exit(1 if any(o.status == "failed" for o in outcomes) else 0)


@cli.command()
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@DB_OPT
def journal(limit: int, as_json: bool, db: str | None) -> None:
    """Past fixes, newest first (ids for `bkdoctor rollback`)."""
    from bkdoctor.store import History

    rows = History(db).fixes(limit)
    if as_json:
        _out_json(rows, ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("fix", "when", "target", "rule", "status", "rolled back"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(clean_line(x) for x in (r["id"], r["created_at"], r["target"], r["rule"], r["status"],
                                                 r["rolled_back_at"] or "")))
    _console(stderr=False).print(table)


@cli.command()
@click.argument("fix_id")
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--context", "kube_context", default=None)
@click.option("--accept-new-host-keys", is_flag=True)
@DB_OPT
def rollback(fix_id: str, inventory: str | None, kubeconfig: str | None, kube_context: str | None,
             accept_new_host_keys: bool, db: str | None) -> None:
    """Restore what a fix changed (only what nobody changed since)."""
    from bkdoctor.fix.loop import rollback as do_rollback
    from bkdoctor.store import History

    h = History(db)
    rec = h.fix(fix_id)
    if rec.get("rolled_back_at"):
        raise BadInput(f"{rec['id']} was already rolled back at {rec['rolled_back_at']}")
    inv, cluster = _targets_and_cluster(inventory, None, None, kubeconfig, kube_context, False, accept_new_host_keys,
                                        bool(rec["applied"].get("k8s")))
    ok, lines = asyncio.run(do_rollback(rec, inv, cluster))
    for line in lines:
        _console(stderr=False).print(clean(line), markup=False)
    if ok:
        h.mark_rolled_back(rec["id"])
    sys.exit(0 if ok else 1)


@cli.command()
@click.option("--plan", "show_plan", is_flag=True, help="Show the phases in order with their gate status; change nothing.")
@click.option("--phase", "only", default=None, metavar="ID", help="Run only this phase.")
@click.option("--from", "start", default=None, metavar="ID", help="Start at this phase.")
@click.option("--until", default=None, metavar="ID", help="Stop after this phase.")
@click.option("--with", "with_optional", multiple=True, metavar="ID",
              help="Also run an optional suite: registry-proxy, bcs, monitor-log (repeatable).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before each phase.")
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--context", "kube_context", default=None)
@click.option("--domain", default=None, callback=_check_domain_opt)
@click.option("--install-dir", default=None, callback=_check_install_dir_opt)
@click.option("--accept-new-host-keys", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Print the plan or the outcome as JSON.")
@LANG_OPT
@DB_OPT
def install(show_plan: bool, only: str | None, start: str | None, until: str | None, with_optional: tuple[str, ...],
            yes: bool, inventory: str | None, kubeconfig: str | None, kube_context: str | None, domain: str | None,
            install_dir: str | None, accept_new_host_keys: bool, as_json: bool, lang: str | None, db: str | None) -> None:
    """The guided deployment, phase by phase, each gated by checks; resumable."""
    from bkdoctor.install.phases import Installer, load_phases, select_phases
    from bkdoctor.store import History

    lang = lang or default_lang()
    inv, _ = _targets_and_cluster(inventory, domain, install_dir, kubeconfig, kube_context, True, accept_new_host_keys,
                                  False)
    from bkdoctor.inputs import siteconfig

    if install_dir:
        inv.install_dir = siteconfig.check_install_dir(install_dir, "--install-dir")
    inv.install_dir_set = bool(install_dir) or bool(inventory and _inventory_has(inventory, "install_dir"))

    def ask(question: str, default: str | None) -> str:
        # the default may come from a file (custom.yaml): shown cleaned, like everything else on the terminal
        return click.prompt(clean_line(question) + (f" [{clean_line(default)}]" if default else ""),
                            default=default or "", show_default=False)

    siteconfig.settle(inv, ask if sys.stdin.isatty() and not show_plan else None, required=not show_plan)
    phases = select_phases(load_phases(), only, start, until, set(with_optional))
    out_console = _console(stderr=as_json)

    def cluster_factory():
        from bkdoctor.facts.cluster import configure

        return configure(kubeconfig, kube_context)

    def say(text: str) -> None:
        from bkdoctor.safe.secrets import mask_text

        out_console.print(clean(mask_text(text)), markup=False, highlight=False)  # diffs and step output: masked too

    def confirm(question: str) -> bool:
        if yes or show_plan:
            return True
        if not sys.stdin.isatty():
            raise BadInput("install asks before each phase: run it on a terminal or add --yes")
        return click.confirm(clean_line(question), default=True)

    def show_secret(text: str) -> None:  # §六.4.3: the admin credentials, shown once, unmasked, never logged
        out_console.print(clean(text), markup=False, highlight=False)

    inst = Installer(inv, history=History(db), say=say, confirm=confirm, cluster_factory=cluster_factory, lang=lang,
                     kubeconfig=kubeconfig, interactive=sys.stdin.isatty() and not yes, show_secret=show_secret)
    if show_plan:
        rows = asyncio.run(inst.plan(phases))
        errors = [(r["phase"], s) for r in rows for s in r["steps"] if s["error"]]
        if as_json:
            _out_json(rows, ensure_ascii=False, indent=2)
        else:
            con = _console(stderr=False)
            for r in rows:
                gate = r["gate"] + (" (" + ", ".join(r["gate_failing"][:4]) + ")" if r["gate_failing"] else "")
                con.print(f"== {r['phase']}: {r['title']} (§{r['guide']})  gate: {gate}  verify: {r['verify']}"
                          + (f"  state: {r['state']}" if r["state"] else "") + ("  [optional]" if r["optional"] else ""),
                          markup=False, highlight=False, soft_wrap=True)
                for s in r["steps"]:
                    where = ", ".join(s["hosts"]) or s["on"]
                    env = f"  env: {' '.join(s['env'])}" if s["env"] else ""
                    con.print(f"  {s['n']}. §{s['guide']}  on: {where}  dir: {s['dir']}{env}"
                              + (f"  unless: {s['unless']}" if s["unless"] else ""), markup=False, highlight=False,
                              soft_wrap=True)
                    for line in s["command"].splitlines():
                        con.print(f"       {line}", markup=False, highlight=False, soft_wrap=True)
                    if s["error"]:
                        con.print(f"     ERROR: {s['error']}", markup=False, highlight=False, soft_wrap=True)
        if errors:
            p, s = errors[0]
            raise BadInput(f"plan error: {p} step {s['n']} (§{s['guide']}): {s['error']}"
                           + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
        return
    errors = asyncio.run(inst.plan_errors(phases))
    if errors:
        e = errors[0]
        raise BadInput(f"plan error: {e['phase']} step {e['step']}: {e['error']} (see bkdoctor install --plan)")
    reports = asyncio.run(inst.run(phases))
    if as_json:
        _out_json([r.__dict__ for r in reports], ensure_ascii=False, indent=2, default=str)
    bad = [r for r in reports if r.status in ("failed", "blocked")]
    for r in reports:
        say(f"{r.status.upper():<8} {r.phase} {r.message}")
    sys.exit(1 if bad else 0)


@cli.command("cluster-job")
@click.option("--namespace", "-n", default="bkdoctor", show_default=True, help="Namespace to run bkdoctor in.")
@click.option("--image", default=None, help="bkdoctor image the nodes can pull (default bkdoctor/bkdoctor:<version>).")
@click.option("--mode", type=click.Choice(["job", "daemonset"]), default="job", show_default=True,
              help="job: `scan --rule cluster` in a Job; daemonset: the host probe on every node, read from the pods' "
                   "logs.")
@click.option("--helm-secrets", is_flag=True,
              help="Grant cluster-wide `list` on Secrets so the helm rules run in the Job (the ServiceAccount can then "
                   "read EVERY Secret: RBAC cannot filter by label). Default: no Secret access, helm rules skipped.")
@click.option("--domain", default=None, callback=_check_domain_opt, help="BK_DOMAIN passed to the Job's scan.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Create the objects through the API (server-side dry run first).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Cluster for --apply.")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the YAML here (default: stdout, unless --apply).")
@click.option("--schedule", default=None, metavar="CRON",
              help="Run the cluster scan as a CronJob on this schedule (e.g. '0 */6 * * *'), keeping its history.")
@click.option("--history", "history_kind", type=click.Choice(["configmap", "pvc"]), default="configmap",
              show_default=True, help="With --schedule: where the runs' history is kept.")
@click.option("--storage-class", default=None, help="With --history pvc: the claim's StorageClass.")
def cluster_job(namespace: str, image: str | None, mode: str, helm_secrets: bool, domain: str | None, do_apply: bool,
                kubeconfig: str | None, kube_context: str | None, out: str | None, schedule: str | None = None,
                history_kind: str = "configmap", storage_class: str | None = None) -> None:
    """Render (and with --apply create) the manifests that run bkdoctor inside the cluster."""
    from bkdoctor.incluster import job as incluster
    from bkdoctor.report.jsonreport import write_atomic

    access = None
    if schedule is not None:
        from bkdoctor.incluster import cronjob

        if mode != "job":
            raise BadInput("--schedule runs the cluster scan (--mode job), not the DaemonSet")
        api_version = "batch/v1beta1"
        if do_apply:
            from bkdoctor.facts.cluster import configure

            access = configure(kubeconfig, kube_context)
            if access is None:
                raise BadInput("--apply needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
            api_version = cronjob.served_cronjob_api(access)
        objs = cronjob.render(namespace, image or incluster.DEFAULT_IMAGE, schedule, history=history_kind,
                              helm_secrets=helm_secrets, domain=domain, storage_class=storage_class,
                              api_version=api_version)
        text = cronjob.to_yaml(objs, schedule, history_kind, helm_secrets=helm_secrets)
    else:
        objs = incluster.render(namespace, image or incluster.DEFAULT_IMAGE, mode, helm_secrets=helm_secrets,
                                domain=domain)
        text = incluster.to_yaml(objs, helm_secrets=helm_secrets)
    if out:
        from bkdoctor.safe.outfiles import check_output_path

        check_output_path(out, "-o")
        write_atomic(out, text)
    elif not do_apply:
        sys.stdout.write(text)
    if not do_apply:
        return
    from bkdoctor.facts.cluster import configure

    access = access or configure(kubeconfig, kube_context)
    if access is None:
        raise BadInput("--apply needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
    err = _console(stderr=True)
    try:
        incluster.apply(access, objs, say=lambda s: err.print(clean(s), markup=False, highlight=False))
    finally:
        access.close()
    if schedule is not None:
        ns = shlex.quote(namespace)
        err.print(clean(f"CronJob {namespace}/bkdoctor-scan scheduled ({schedule}); compare its runs: "
                        f"bkdoctor diff --cluster-history {ns}" if history_kind == "configmap" else
                        f"CronJob {namespace}/bkdoctor-scan scheduled ({schedule}); history on the PVC "
                        f"bkdoctor-history"), markup=False, highlight=False)
    elif mode == "job":
        err.print(clean(f"report: kubectl -n {shlex.quote(namespace)} logs job/{incluster.JOB_NAME}"), markup=False,
                  highlight=False)
    else:
        err.print(f"probe pods: kubectl -n {shlex.quote(namespace)} get pods -l app.kubernetes.io/component=probe -o wide; "
                  f"their facts are read by bkdoctor from the pods' logs", markup=False, highlight=False)


@cli.group("rules", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
@click.option("--rules-dir", "rules_dirs", multiple=True, metavar="DIR", help="Also list these site rules.")
@LANG_OPT
@click.pass_context
def rules_cmd(ctx: click.Context, as_json: bool, lang: str | None, rules_dirs: tuple[str, ...] = ()) -> None:
    """List every rule: id, title, scope, severity, tags, remediation, guide section (`rules test DIR`: run the
    examples of site rules)."""
    if ctx.invoked_subcommand is not None:
        return
    from bkdoctor.scan.loader import all_rules

    lang = lang or default_lang()
    rules = list(all_rules())
    if rules_dirs:
        from bkdoctor.scan.siterules import load_dirs

        rules += [s.rule for s in load_dirs(list(rules_dirs))]
    if as_json:
        _out_json([r.meta() for r in rules], ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    from bkdoctor.guidetext import NOT_IN_GUIDE

    table = Table(header_style="bold")
    for col in ("id", "scope", "severity", "tags", "remediation", "guide", "title"):
        table.add_column(col)
    for r in rules:
        table.add_row(clean_line(r.id), r.scope, r.severity, clean_line(",".join(r.tags)), r.remediation or "-",
                      clean_line(r.guide.title if r.guide.section == "site" else
                                 r.guide.section if r.guide.section == NOT_IN_GUIDE else f"§{r.guide.section}"),
                      clean_line(r.title.get(lang)))
    _console(stderr=False).print(table)


@rules_cmd.command("test")
@click.argument("dirs", nargs=-1, required=True, metavar="DIR...")
@click.option("--json", "as_json", is_flag=True, help="One row per example, as JSON.")
def rules_test(dirs: tuple[str, ...], as_json: bool) -> None:
    """Run every site rule's own pass/fail examples; exit 1 if one gives another status."""
    from bkdoctor.scan.siterules import load_dirs, run_examples

    site = load_dirs(list(dirs))
    rows = run_examples(site)
    bad = [r for r in rows if not r["ok"]]
    if as_json:
        _out_json(rows, ensure_ascii=False, indent=2)
    else:
        out = _console(stderr=False)
        by_rule: dict[str, list] = {}
        for r in rows:
            by_rule.setdefault(r["rule"], []).append(r)
        for rid, rs in by_rule.items():
            wrong = [r for r in rs if not r["ok"]]
            line = (f"{'ok  ' if not wrong else 'FAIL'} {rid}: {len(rs) - len(wrong)}/{len(rs)} examples as expected")
            out.print(clean(line), markup=False, highlight=False)
            for r in wrong:
                out.print(clean(f"     {r['example']}: expected {r['expected']}, got {r['got']}: {r['message']}"),
                          markup=False, highlight=False)
        out.print(clean(f"{len(site)} site rule(s), {len(rows)} example(s), {len(bad)} wrong"), markup=False,
                  highlight=False)
    sys.exit(1 if bad else 0)


@cli.command()
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@DB_OPT
def history(limit: int, as_json: bool, db: str | None) -> None:
    """List past scans, newest first."""
    from bkdoctor.store import History

    rows = History(db).scans(limit)
    if as_json:
        _out_json(rows, ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("scan", "started", "duration", "inventory", "pass", "warn", "fail", "error"):
        table.add_column(col)
    for r in rows:
        s = r["summary"]
        table.add_row(r["id"], r["started_at"], f"{r['duration_s']:.2f}s", clean_line(r["inventory"] or "(this host)"),
                      *(str(s.get(k, 0)) for k in ("pass", "warn", "fail", "error")))
    _console(stderr=False).print(table)


@cli.command()
@click.argument("scan_a", required=False)
@click.argument("scan_b", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--html", "html_path", metavar="PATH", default=None,
              help="Also write the comparison as a self-contained HTML page.")
@click.option("--cluster-history", "cluster_history", metavar="NS[/NAME]", default=None,
              help="Import the CronJob's runs (ConfigMap bkdoctor-history in NS) first; default: its newest two.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Cluster for --cluster-history.")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@LANG_OPT
@DB_OPT
def diff(scan_a: str | None, scan_b: str | None, as_json: bool, lang: str | None, db: str | None,
         html_path: str | None = None, cluster_history: str | None = None, kubeconfig: str | None = None,
         kube_context: str | None = None) -> None:
    """Compare two scans (default: the last two): new problems, resolved, still failing."""
    from bkdoctor.report.terminal import print_diff
    from bkdoctor.store import History

    if html_path:
        parent = os.path.dirname(os.path.abspath(html_path))
        if not os.path.isdir(parent):
            raise BadInput(f"cannot write {html_path}: directory {parent} does not exist")
    h = History(db)
    if cluster_history:
        from bkdoctor.incluster.cronjob import import_history, read_configmap_history
        from bkdoctor.facts.cluster import configure

        access = configure(kubeconfig, kube_context)
        if access is None:
            raise BadInput("--cluster-history needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
        try:
            ids = import_history(h, read_configmap_history(access, cluster_history))
        finally:
            access.close()
        if scan_a is None and scan_b is None:
            if len(ids) < 2:
                raise BadInput(f"--cluster-history {cluster_history}: {len(ids)} run(s) kept; diff needs two")
            scan_a, scan_b = ids[-2], ids[-1]
    d = h.diff(scan_a, scan_b)
    if html_path:
        from bkdoctor.report.diffhtml import render_diff_html
        from bkdoctor.report.jsonreport import write_atomic

        write_atomic(html_path, render_diff_html(d, lang or default_lang()))
    if as_json:
        _out_json(d, ensure_ascii=False, indent=2)
        return
    print_diff(d, _console(stderr=False), lang or default_lang())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if list(args) == ["--version"]:  # the fast path: no command tree built, click's own wording
        sys.stdout.write(f"bkdoctor, version {__version__}\n")
        sys.exit(0)
    try:
        cli.main(args=argv, prog_name="bkdoctor", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:  # usage errors: click prints them, exit 2
        import io

        from bkdoctor.safe.terminal import clean

        buf = io.StringIO()
        e.show(file=buf)
        sys.stderr.write(clean(buf.getvalue()))
        sys.exit(2)
    except click.exceptions.Abort:
        sys.stderr.write("bkdoctor: aborted\n")
        sys.exit(130)
    except BadInput as e:
        from bkdoctor.safe.secrets import mask_text
        from bkdoctor.safe.terminal import clean_line

        sys.stderr.write(f"bkdoctor: error: {clean_line(mask_text(str(e)))}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("bkdoctor: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(1)
    except Exception as e:
        if os.environ.get("BKDOCTOR_DEBUG"):
            raise
        from bkdoctor.safe.secrets import mask_text
        from bkdoctor.safe.terminal import clean_line

        sys.stderr.write(f"bkdoctor: internal error: {type(e).__name__}: {clean_line(mask_text(str(e)))} "
                         f"(BKDOCTOR_DEBUG=1 shows the traceback)\n")
        sys.exit(3)


if __name__ == "__main__":
    main()
