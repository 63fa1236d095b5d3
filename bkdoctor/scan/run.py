"""The `scan` and `collect` commands: build the inputs, scan with live progress, write the reports (or the support
bundle), record the history; return the exit code. Imported only when one of them runs."""

from __future__ import annotations

import asyncio
import shlex
import sys
from typing import Any

from bkdoctor.model import STATUS_RANK, BadInput, T
from bkdoctor.safe.terminal import clean_line, safe_console


def run_scan(
    inventory: str | None,
    rules: tuple[str, ...],
    skips: tuple[str, ...],
    json_path: str | None,
    html_path: str | None,
    junit_path: str | None,
    lang: str,
    fail_on: str,
    no_history: bool,
    db: str | None,
    domain: str | None,
    install_dir: str | None,
    concurrency: int,
    kubeconfig: str | None,
    kube_context: str | None,
    no_cluster: bool,
    from_cluster: bool,
    from_daemonset: str | None,
    bundle_path: str | None,
    accept_new_host_keys: bool,
    ask_pass: bool,
    measure: bool,
    verbose: bool,
    group_by: str,
    rules_dirs: tuple[str, ...] = (),
    prom_path: str | None = None,
    history_cm: str | None = None,
    no_cache: bool = False,
) -> int:
    """`bkdoctor scan`: 1 when a finding is at or above --fail-on, else 0. Unless `no_cache`, the scan of live hosts
    keeps kubelet's identity and version per host (scan/kubeletcache.py) and does not run an unchanged one again."""
    from bkdoctor.inputs.targets import bundle_inventory, cluster_access, hosts_from_cluster, load_inventory_for
    from bkdoctor.report.jsonreport import build_report, dumps, iter_json
    from bkdoctor.report.terminal import print_report
    from bkdoctor.safe.outfiles import check_output_path, write_atomic
    from bkdoctor.scan import loader

    # Every output path and the history database's path are checked before anything else: a typo must not
    # cost a whole fleet scan, and a refused run creates nothing.
    for opt, p in (("--json", json_path), ("--html", html_path), ("--junit", junit_path), ("--prometheus", prom_path)):
        if p and not (opt == "--json" and p == "-"):
            check_output_path(p, opt)
    db_path = None
    if not no_history:
        from bkdoctor.store import check_db_path

        db_path = check_db_path(db)
    preloaded = None
    if bundle_path:
        inv, preloaded = bundle_inventory(bundle_path)
        no_cluster = True
        if domain:
            inv.domain, inv.domain_source = domain, "--domain"
        inv.accept_new_host_keys = accept_new_host_keys
    else:
        inv = load_inventory_for(
            inventory,
            domain=domain,
            install_dir=install_dir,
            accept_new_host_keys=accept_new_host_keys,
            hosts_from_nodes=bool(from_cluster or from_daemonset) and not no_cluster,
        )
    from bkdoctor.scan.siterules import load_dirs

    site = [s.rule for s in load_dirs(list(getattr(inv, "rules_dirs", None) or []) + list(rules_dirs))]
    selected = loader.select(list(rules), list(skips), measure=measure, extra=site)
    # a suppression of a rule that does not exist (a typo) would silently suppress nothing: refused. The site
    # rules' ids count (loaded just above, from the inventory's rules_dirs and --rules-dir)
    known_ids = {r.id for r in loader.all_rules()} | {r.id for r in site}
    for sup in getattr(inv, "suppress", None) or []:
        if sup.rule != "*" and sup.rule not in known_ids:
            raise BadInput(
                T(
                    f"清单 {inv.path}: suppress: 没有规则 {sup.rule[:80]!r}（见 `bkdoctor rules`；"
                    f"站点规则的 id 需要它所在的规则目录: --rules-dir 或清单中的 rules_dirs）",
                    f"inventory {inv.path}: suppress: no rule {sup.rule[:80]!r} (see `bkdoctor rules`; a site "
                    f"rule's id needs its rules dir: --rules-dir or rules_dirs in the inventory)",
                )
            )
    if ask_pass:
        import getpass

        try:
            inv.ssh_password = getpass.getpass("SSH password: ")  # never echoed, never stored
        except (EOFError, OSError):
            raise BadInput(
                T(
                    "--ask-pass 需要终端（或设置 ssh.password_env）",
                    "--ask-pass needs a terminal (or set ssh.password_env)",
                )
            ) from None
    want_cluster = not no_cluster and (
        any(r.scope == "cluster" for r in selected) or from_cluster or bool(from_daemonset)
    )
    cluster = cluster_access(kubeconfig, kube_context, want_cluster)
    if want_cluster and from_cluster:
        if cluster is None:
            raise BadInput(
                T(
                    "--from-cluster 需要集群（--kubeconfig 或 ~/.kube/config）",
                    "--from-cluster needs a cluster (--kubeconfig or ~/.kube/config)",
                )
            )
        inv.hosts = hosts_from_cluster(cluster, inv)
    if want_cluster and from_daemonset:
        from bkdoctor.incluster.job import daemonset_scan_inputs

        if cluster is None:
            raise BadInput(
                T(
                    "--from-daemonset 需要集群（--kubeconfig 或 ~/.kube/config）",
                    "--from-daemonset needs a cluster (--kubeconfig or ~/.kube/config)",
                )
            )
        selected, ds_hosts = daemonset_scan_inputs(cluster, inv, selected, from_daemonset)
        preloaded = (ds_hosts, None)
    console = safe_console(stderr=(json_path == "-"))
    if preloaded is not None:
        from bkdoctor.scan import engine

        result = asyncio.run(
            engine.scan(
                inv,
                selected,
                preloaded_hosts=preloaded[0],
                cluster_facts=preloaded[1],
                cluster=cluster,
                keep_facts=False,
            )
        )
    else:
        kubelet_cache = None
        if not no_cache:
            from bkdoctor.scan.kubeletcache import KubeletCache

            kubelet_cache = KubeletCache()
        from bkdoctor.launch import collect_less_during_the_scan

        collect_less_during_the_scan()
        # the reports are made from the findings: the hosts' facts go as soon as the rules ran (issue 16)
        result = asyncio.run(
            scan_with_progress(
                inv, selected, concurrency, console, cluster, keep_facts=False, kubelet_cache=kubelet_cache
            )
        )
    report = build_report(result, lang)
    if json_path == "-":
        from bkdoctor.safe.terminal import json_for_terminal

        sys.stdout.write(json_for_terminal(dumps(report)))
        sys.stdout.flush()
    elif json_path:
        write_atomic(json_path, iter_json(report))  # streamed: never the whole text at once
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
            raise BadInput(
                T(
                    "--history-configmap 需要集群（集群内配置、--kubeconfig 或 ~/.kube/config）",
                    "--history-configmap needs a cluster (in-cluster config, --kubeconfig or ~/.kube/config)",
                )
            )
        save_to_configmap(cluster, history_cm, report)
    print_report(report, console, verbose=verbose, group_by=group_by)
    if db_path is not None:
        # recorded last: a corrupted or locked database costs the history entry, never the report
        try:
            from bkdoctor.store import History

            History(db_path).save(report)
        except Exception as e:  # BadInput, sqlite3 errors (locked, not a database, disk full)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            sys.stderr.write(
                f"bkdoctor: warning: scan {report['scan']['id']} not recorded in the history: {clean_line(msg)}\n"
            )
    threshold = STATUS_RANK[fail_on]
    worst = max((STATUS_RANK[f["status"]] for f in report["findings"]), default=0)
    return 1 if worst >= threshold else 0


def run_collect(
    out: str,
    inventory: str | None,
    rules: tuple[str, ...],
    skips: tuple[str, ...],
    domain: str | None,
    install_dir: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    no_cluster: bool,
    accept_new_host_keys: bool,
    concurrency: int,
) -> None:
    """`bkdoctor collect`: scan, then write the support bundle (secrets removed)."""
    from bkdoctor.inputs.bundle import write_bundle
    from bkdoctor.inputs.targets import load_targets
    from bkdoctor.safe.outfiles import check_output_path
    from bkdoctor.scan import loader

    selected = loader.select(list(rules), list(skips))
    inv, cluster = load_targets(
        inventory,
        domain=domain,
        install_dir=install_dir,
        accept_new_host_keys=accept_new_host_keys,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        need_cluster=not no_cluster,
    )
    check_output_path(out, "-o")
    console = safe_console(stderr=True)
    result = asyncio.run(scan_with_progress(inv, selected, concurrency, console, cluster))
    manifest = write_bundle(result, out)
    console.print(
        f"bundle {clean_line(out)}: {len(manifest['hosts'])} host(s), cluster {manifest['cluster'] or '-'}, "
        f"{len(manifest['rules'])} rules; analyse with: bkdoctor scan --bundle {clean_line(shlex.quote(out))}"
    )


async def scan_with_progress(
    inv: Any,
    selected: list,
    concurrency: int,
    console: Any,
    cluster: Any = None,
    keep_facts: bool = True,
    kubelet_cache: Any = None,
) -> Any:
    """Live progress on a terminal (one line per host for small fleets, a bar with counts for big ones);
    nothing when the output is not a terminal (CI logs stay clean)."""
    from bkdoctor.scan import engine

    if not console.is_terminal:
        return await engine.scan(
            inv, selected, concurrency=concurrency, cluster=cluster, keep_facts=keep_facts, kubelet_cache=kubelet_cache
        )
    import time

    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    hosts = [h.name for h in inv.hosts] + (["cluster"] if cluster is not None else [])
    state = {h: ("queued", None) for h in hosts}
    started: dict[str, float] = {}
    style = {"queued": "dim", "gathering": "cyan", "done": "green", "unreachable": "magenta"}
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("gathering facts", total=len(hosts))

    def render() -> Any:
        if len(hosts) > 30:
            return progress
        t = Table.grid(padding=(0, 2))
        for h in hosts:
            st, secs = state[h]
            dur = (
                f"{secs:.1f}s"
                if secs is not None
                else (f"{time.monotonic() - started[h]:.1f}s" if h in started else "")
            )
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
            progress.update(
                task, description=f"gathering facts · {counts['done']} done · {counts['unreachable']} unreachable"
            )
            live.update(render())

        return await engine.scan(
            inv,
            selected,
            concurrency=concurrency,
            on_progress=on_progress,
            cluster=cluster,
            keep_facts=keep_facts,
            kubelet_cache=kubelet_cache,
        )
