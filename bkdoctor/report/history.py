"""The `history` and `diff` commands: past scans from the history database (bkdoctor.store), newest first, and the
comparison of two of them (terminal, JSON or HTML), optionally after importing the CronJob's runs from the cluster."""

from __future__ import annotations

import os

from bkdoctor.model import BadInput, T
from bkdoctor.safe.terminal import clean_line, print_json, safe_console


def show_history(limit: int, as_json: bool, db: str | None) -> None:
    """`bkdoctor history`."""
    from bkdoctor.store import History

    rows = History(db).scans(limit)
    if as_json:
        print_json(rows, ensure_ascii=False, indent=2)
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("scan", "started", "duration", "inventory", "pass", "warn", "fail", "error"):
        table.add_column(col)
    for r in rows:
        s = r["summary"]
        table.add_row(
            r["id"],
            r["started_at"],
            f"{r['duration_s']:.2f}s",
            clean_line(r["inventory"] or "(this host)"),
            *(str(s.get(k, 0)) for k in ("pass", "warn", "fail", "error")),
        )
    safe_console(stderr=False).print(table)


def show_diff(
    scan_a: str | None,
    scan_b: str | None,
    as_json: bool,
    lang: str,
    db: str | None,
    html_path: str | None = None,
    cluster_history: str | None = None,
    kubeconfig: str | None = None,
    kube_context: str | None = None,
) -> None:
    """`bkdoctor diff`: new problems, resolved, still failing between two scans (default: the last two)."""
    from bkdoctor.report.terminal import print_diff
    from bkdoctor.store import History

    if html_path:
        parent = os.path.dirname(os.path.abspath(html_path))
        if not os.path.isdir(parent):
            raise BadInput(
                T(
                    f"无法写入 {html_path}: 目录 {parent} 不存在",
                    f"cannot write {html_path}: directory {parent} does not exist",
                )
            )
    h = History(db)
    if cluster_history:
        from bkdoctor.incluster.cronjob import import_history, read_configmap_history
        from bkdoctor.inputs.targets import cluster_access

        access = cluster_access(kubeconfig, kube_context, True)
        if access is None:
            raise BadInput(
                T(
                    "--cluster-history 需要集群（--kubeconfig、$KUBECONFIG 或 ~/.kube/config）",
                    "--cluster-history needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)",
                )
            )
        try:
            ids = import_history(h, read_configmap_history(access, cluster_history))
        finally:
            access.close()
        if scan_a is None and scan_b is None:
            if len(ids) < 2:
                raise BadInput(
                    T(
                        f"--cluster-history {cluster_history}: 只保留了 {len(ids)} 次运行；diff 需要两次",
                        f"--cluster-history {cluster_history}: {len(ids)} run(s) kept; diff needs two",
                    )
                )
            scan_a, scan_b = ids[-2], ids[-1]
    from bkdoctor.safe.secrets import mask_obj

    # masked for every output, not only the terminal's: a row an older version wrote may predate the masking
    d = mask_obj(h.diff(scan_a, scan_b))
    if html_path:
        from bkdoctor.report.diffhtml import render_diff_html
        from bkdoctor.safe.outfiles import write_atomic

        write_atomic(html_path, render_diff_html(d, lang))
    if as_json:
        print_json(d, ensure_ascii=False, indent=2)
        return
    print_diff(d, safe_console(stderr=False), lang)
