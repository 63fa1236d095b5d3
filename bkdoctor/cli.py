"""Command line: the click declarations of every command (scan, collect, fix, journal, rollback, install,
cluster-job, rules, history, diff); each parses its options and calls its mode, imported inside the command so that
`--version` and `rules` stay light (tests/test_startup.py): scan/run.py, fix/run.py, install/run.py, incluster/run.py,
scan/rulelist.py, report/history.py.

Exit codes: 0 no finding at or above --fail-on; 1 there are; 2 bad usage or bad input (one line, no
traceback; ours in English and Chinese, `bad_input_line`; click's own usage errors in click's English); 3 an
internal error (one line; BKDOCTOR_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # `python -m bkdoctor.cli --version`: answered before click is imported
    from bkdoctor.launch import answer_version

    answer_version(sys.argv[1:])

import gc  # noqa: F401  (launch.exiting() uses it without importing at exit, when memory may have run out)
import os
import re
from typing import Any

import click

from bkdoctor import __version__
from bkdoctor.model import BadInput, T


def default_lang() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        v = os.environ.get(var)
        if v:
            return "zh" if v.lower().startswith("zh") else "en"
    return "en"


def _check_domain_opt(ctx: Any, param: Any, value: str | None) -> str | None:
    """--domain is checked like an inventory's `domain:` (the schema's pattern): it reaches shells and /etc/hosts."""
    from bkdoctor.safe.names import valid_domain

    if value is None:
        return value
    if not valid_domain(value):
        raise BadInput(
            T(
                f"--domain {value[:80]!r} 不是域名（以点分隔的各段由字母、数字和 '-' 组成，例如 bkce7.bktencent.com）",
                f"--domain {value[:80]!r} is not a domain name (letters, digits and '-' in dot-separated "
                f"labels, e.g. bkce7.bktencent.com)",
            )
        )
    return value


def _check_install_dir_opt(ctx: Any, param: Any, value: str | None) -> str | None:
    """--install-dir is checked like an inventory's `install_dir:`."""
    if value is None:
        return value
    from bkdoctor.inputs.siteconfig import check_install_dir

    return check_install_dir(value, "--install-dir")


def _check_from_daemonset_opt(ctx: Any, param: Any, value: str | None) -> str | None:
    """--from-daemonset NAMESPACE goes into the API's paths: a DNS label, checked before any cluster is asked."""
    if value is None:
        return value
    from bkdoctor.incluster.job import check_namespace

    return check_namespace(value, "--from-daemonset")


# --lang as given on this command line (None: not given): a refusal is then printed in that language only
_explicit_lang: list[str | None] = [None]


def _note_lang(ctx: Any, param: Any, value: str | None) -> str | None:
    """Eager, so that it is known before any other option's check can refuse the command line."""
    _explicit_lang[0] = value
    return value


LANG_OPT = click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    is_eager=True,
    callback=_note_lang,
    help="Report language (default from LANG: zh_CN -> zh).",
)
DB_OPT = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="History database (default $XDG_DATA_HOME/bkdoctor/history.db).",
)


def _with_lang(opts: dict[str, Any]) -> dict[str, Any]:
    """The options with --lang resolved: given, else from the environment."""
    return {**opts, "lang": opts["lang"] or default_lang()}


# The Chinese half repeats the values the English half shows in full (paths, names, a library's message): a run of
# non-Chinese text in it longer than ZH_RUN is cut in the middle, and the half itself to ZH_MAX, so that a long or
# hostile value makes the line at most ZH_MAX longer than the English line alone, never twice as long.
ZH_RUN, ZH_MAX = 100, 400
_ZH_CHARS = re.compile("([\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+)")


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n // 2] + "…" + s[-(n - n // 2 - 1) :]


def _mask_zh(zh: str) -> str:
    """Masked like the English half: the masking's `key: value` shapes know the ASCII colon, so a value after a
    full-width one (`密码：…`) is also masked when the ASCII form of the text shows a secret there."""
    from bkdoctor.safe.secrets import mask_text

    ascii_colon = zh.replace("\uff1a", ":")
    masked = mask_text(ascii_colon)
    return mask_text(zh) if masked == ascii_colon else masked


def bad_input_line(e: BadInput, lang: str | None = None) -> str:
    """A refusal as the one line the CLI prints (without the `bkdoctor: error: ` prefix): "English / 中文", or
    one language when `lang` is given; secrets masked and terminal controls made visible in both halves."""
    from bkdoctor.safe.secrets import mask_text
    from bkdoctor.safe.terminal import clean_line

    en, zh = e.text.en, e.text.zh
    if not zh or lang == "en":
        return _bounded(clean_line(mask_text(en)))
    if lang == "zh":
        return _bounded(clean_line(_mask_zh(zh)))
    zh = "".join(p if i % 2 else _cut(p, ZH_RUN) for i, p in enumerate(_ZH_CHARS.split(_mask_zh(zh))))
    # the English half bounded as every error line is (_bounded), the Chinese half by its own cut (ZH_MAX)
    return f"{_bounded(clean_line(mask_text(en)))} / {clean_line(_cut(zh, ZH_MAX))}"


def _exit(code: int | None) -> None:
    """A command's exit code (None: it returned without one, as a listing does)."""
    if code is not None:
        sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bkdoctor")
def cli() -> None:
    """bkdoctor: find (and fix) what breaks a BlueKing 7.1 deployment on Kubernetes."""


@cli.command()
@click.option(
    "-i",
    "--inventory",
    type=click.Path(dir_okay=False),
    default=None,
    help="Inventory/config YAML. Without it: this host, role control.",
)
@click.option("--rule", "rules", multiple=True, metavar="SEL", help="Rule id, group or tag to run (repeatable).")
@click.option("--skip", "skips", multiple=True, metavar="SEL", help="Rule id, group or tag to leave out (repeatable).")
@click.option("--json", "json_path", metavar="PATH", default=None, help="Write the JSON report ('-' = stdout).")
@click.option("--html", "html_path", metavar="PATH", default=None, help="Write the self-contained HTML report.")
@click.option(
    "--junit", "junit_path", metavar="PATH", default=None, help="Write JUnit XML (one testcase per rule x target)."
)
@LANG_OPT
@click.option(
    "--fail-on",
    type=click.Choice(["warn", "fail"]),
    default="fail",
    show_default=True,
    help="Exit 1 when a finding is at or above this level (error counts as fail).",
)
@click.option("--no-history", is_flag=True, help="Do not record this scan in the history database.")
@DB_OPT
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run `kubelet --version` on every node, even where the binary is unchanged since the last scan "
    "(default: its output then comes from $XDG_CACHE_HOME/bkdoctor/kubelet.json).",
)
@click.option(
    "--domain", default=None, callback=_check_domain_opt, help="BK_DOMAIN (overrides the inventory and custom.yaml)."
)
@click.option(
    "--install-dir",
    default=None,
    callback=_check_install_dir_opt,
    help="BlueKing install dir (default ~/bkce7.1-install/blueking).",
)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Cluster to check (default $KUBECONFIG, in-cluster, ~/.kube/config).",
)
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@click.option("--no-cluster", is_flag=True, help="Do not check the cluster even if a kubeconfig is found.")
@click.option(
    "--from-cluster", is_flag=True, help="Take the hosts from the cluster's Nodes (InternalIP; role from labels)."
)
@click.option(
    "--from-daemonset",
    metavar="NAMESPACE",
    default=None,
    callback=_check_from_daemonset_opt,
    help="Host facts from the bkdoctor DaemonSet's pods (see `bkdoctor cluster-job --mode daemonset`): no SSH.",
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Analyse a support bundle (from `bkdoctor collect`) instead of live hosts and cluster.",
)
@click.option(
    "--accept-new-host-keys",
    is_flag=True,
    help="Trust unknown SSH host keys on first use and record them (a changed key is still refused).",
)
@click.option("--ask-pass", is_flag=True, help="Prompt once for the SSH password (or set ssh.password_env).")
@click.option("--measure", is_flag=True, help="Also run the measurements (fio IOPS, bandwidth, endpoint access).")
@click.option("-v", "--verbose", is_flag=True, help="List passing findings too (and each host's values in a group).")
@click.option(
    "--group-by",
    type=click.Choice(["rule", "host", "none"]),
    default="rule",
    show_default=True,
    help="Terminal summary: one line per problem with its hosts (rule), each host with its problems "
    "(host: folded host lists expanded), or one row per rule x target (none).",
)
@click.option(
    "--rules-dir",
    "rules_dirs",
    multiple=True,
    metavar="DIR",
    help="Site rules: a directory of YAML checks (bkdoctor/scan/site-rules.schema.json); repeatable.",
)
@click.option(
    "--prometheus",
    "prom_path",
    metavar="PATH",
    default=None,
    help="Write the metrics (Prometheus text format; node_exporter textfile collector), atomically.",
)
@click.option(
    "--history-configmap",
    "history_cm",
    metavar="NS/NAME",
    default=None,
    help="Also add this run's summary to a ConfigMap of the cluster (the CronJob's history).",
)
def scan(**opts: Any) -> None:
    """Check every host of the inventory (or this host) and report."""
    from bkdoctor.scan.run import run_scan

    _exit(run_scan(**_with_lang(opts)))


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
def collect(**opts: Any) -> None:
    """Save the host facts and cluster objects the rules use (secrets removed) for offline analysis."""
    from bkdoctor.scan.run import run_collect

    run_collect(**opts)


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
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="A value a remediation needs, e.g. --set image=registry.local/blueking/slug-app:v1 (repeatable).",
)
@click.option("--json", "json_path", metavar="PATH", default=None, help="Write the outcome as JSON ('-' = stdout).")
@click.option(
    "--export",
    nargs=2,
    metavar="ansible DIR",
    default=None,
    help="Apply nothing: write DIR/inventory.ini and DIR/site.yml (Ansible builtin modules) doing the same host fixes.",
)
@LANG_OPT
@DB_OPT
def fix(**opts: Any) -> None:
    """Plan, show the diff, apply with backups, re-check, and journal the fix of the selected rules.

    \b
    Exit: 1 when a fix failed (tried and did not hold; this wins over 2),
    2 when a requested fix was refused for bad input on a target (a file that
    does not parse or cannot be edited safely, a check that could not run;
    nothing written there), else 0 (fixed, unchanged, manual, skipped, planned).
    """
    from bkdoctor.fix.run import run_fix

    _exit(run_fix(**_with_lang(opts)))


@cli.command()
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@DB_OPT
def journal(**opts: Any) -> None:
    """Past fixes, newest first (ids for `bkdoctor rollback`)."""
    from bkdoctor.fix.run import show_journal

    show_journal(**opts)


@cli.command()
@click.argument("fix_id")
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--context", "kube_context", default=None)
@click.option("--accept-new-host-keys", is_flag=True)
@DB_OPT
def rollback(**opts: Any) -> None:
    """Restore what a fix changed (only what nobody changed since)."""
    from bkdoctor.fix.run import run_rollback

    _exit(run_rollback(**opts))


@cli.command()
@click.option(
    "--plan", "show_plan", is_flag=True, help="Show the phases in order with their gate status; change nothing."
)
@click.option("--phase", "only", default=None, metavar="ID", help="Run only this phase.")
@click.option("--from", "start", default=None, metavar="ID", help="Start at this phase.")
@click.option("--until", default=None, metavar="ID", help="Stop after this phase.")
@click.option(
    "--with",
    "with_optional",
    multiple=True,
    metavar="ID",
    help="Also run an optional suite: registry-proxy, bcs, monitor-log (repeatable).",
)
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
def install(**opts: Any) -> None:
    """The guided deployment, phase by phase, each gated by checks; resumable."""
    from bkdoctor.install.run import run_install

    _exit(run_install(**_with_lang(opts)))


@cli.command("cluster-job")
@click.option("--namespace", "-n", default="bkdoctor", show_default=True, help="Namespace to run bkdoctor in.")
@click.option("--image", default=None, help="bkdoctor image the nodes can pull (default bkdoctor/bkdoctor:<version>).")
@click.option(
    "--mode",
    type=click.Choice(["job", "daemonset"]),
    default="job",
    show_default=True,
    help="job: `scan --rule cluster` in a Job; daemonset: the host probe on every node, read from the pods' logs.",
)
@click.option(
    "--helm-secrets",
    is_flag=True,
    help="Grant cluster-wide `list` on Secrets so the helm rules run in the Job (the ServiceAccount can then "
    "read EVERY Secret: RBAC cannot filter by label). Default: no Secret access, helm rules skipped.",
)
@click.option("--domain", default=None, callback=_check_domain_opt, help="BK_DOMAIN passed to the Job's scan.")
@click.option(
    "--apply", "do_apply", is_flag=True, help="Create the objects through the API (server-side dry run first)."
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Cluster for --apply.")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the YAML here (default: stdout, unless --apply).",
)
@click.option(
    "--schedule",
    default=None,
    metavar="CRON",
    help="Run the cluster scan as a CronJob on this schedule (e.g. '0 */6 * * *'), keeping its history.",
)
@click.option(
    "--history",
    "history_kind",
    type=click.Choice(["configmap", "pvc"]),
    default="configmap",
    show_default=True,
    help="With --schedule: where the runs' history is kept.",
)
@click.option("--storage-class", default=None, help="With --history pvc: the claim's StorageClass.")
def cluster_job(**opts: Any) -> None:
    """Render (and with --apply create) the manifests that run bkdoctor inside the cluster."""
    from bkdoctor.incluster.run import run_cluster_job

    run_cluster_job(**opts)


@cli.group("rules", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
@click.option("--rules-dir", "rules_dirs", multiple=True, metavar="DIR", help="Also list these site rules.")
@LANG_OPT
@click.pass_context
def rules_cmd(ctx: click.Context, **opts: Any) -> None:
    """List every rule: id, title, scope, severity, tags, remediation, guide section (`rules test DIR`: run the
    examples of site rules)."""
    if ctx.invoked_subcommand is not None:
        return
    from bkdoctor.scan.rulelist import list_rules

    list_rules(**_with_lang(opts))


@rules_cmd.command("test")
@click.argument("dirs", nargs=-1, required=True, metavar="DIR...")
@click.option("--json", "as_json", is_flag=True, help="One row per example, as JSON.")
def rules_test(**opts: Any) -> None:
    """Run every site rule's own pass/fail examples; exit 1 if one gives another status."""
    from bkdoctor.scan.rulelist import run_examples

    _exit(run_examples(**opts))


@cli.command()
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@DB_OPT
def history(**opts: Any) -> None:
    """List past scans, newest first."""
    from bkdoctor.report.history import show_history

    show_history(**opts)


@cli.command()
@click.argument("scan_a", required=False)
@click.argument("scan_b", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--html", "html_path", metavar="PATH", default=None, help="Also write the comparison as a self-contained HTML page."
)
@click.option(
    "--cluster-history",
    "cluster_history",
    metavar="NS[/NAME]",
    default=None,
    help="Import the CronJob's runs (ConfigMap bkdoctor-history in NS) first; default: its newest two.",
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Cluster for --cluster-history.")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@LANG_OPT
@DB_OPT
def diff(**opts: Any) -> None:
    """Compare two scans (default: the last two): new problems, resolved, still failing."""
    from bkdoctor.report.history import show_diff

    show_diff(**_with_lang(opts))


def main(argv: list[str] | None = None) -> None:
    from bkdoctor.launch import answer_version

    answer_version(sys.argv[1:] if argv is None else argv)  # the fast path: no command tree built
    _quiet_library_logs()
    _explicit_lang[0] = None
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
        sys.stderr.write(f"bkdoctor: error: {bad_input_line(e, _explicit_lang[0])}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("bkdoctor: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(1)
    except MemoryError:
        if os.environ.get("BKDOCTOR_DEBUG"):
            raise
        # below: this handler first lets go of the error, its traceback and the frames that held the memory
    except Exception as e:
        if os.environ.get("BKDOCTOR_DEBUG"):
            raise
        from bkdoctor.safe.secrets import mask_text
        from bkdoctor.safe.terminal import clean_line

        sys.stderr.write(
            f"bkdoctor: internal error: {type(e).__name__}: {_bounded(clean_line(mask_text(str(e))))} "
            f"(BKDOCTOR_DEBUG=1 shows the traceback)\n"
        )
        sys.exit(3)
    else:
        return
    # out of memory outside an input's reader (those refuse the input: exit 2). Nothing is formatted or imported
    # here: a fixed line, then exit, so that a process at its memory limit ends at once
    sys.stderr.write(OUT_OF_MEMORY)
    sys.exit(3)


OUT_OF_MEMORY = (
    "bkdoctor: internal error: out of memory (MemoryError); BKDOCTOR_DEBUG=1 shows the traceback / "
    "bkdoctor: 内部错误: 内存不足（MemoryError）\n"
)


def _quiet_library_logs() -> None:
    """Libraries log through the root logger: the kubernetes client `logging.error`s an exec plugin's own text,
    urllib3 warns of each retry with the server's reply. With no handler there, Python's logging.basicConfig (which a
    module-level logging.error() calls) or its last-resort handler print that text raw on stderr: a cluster's or a
    plugin's bytes, terminal escapes included. One handler on the root logger instead: nothing printed; with
    BKDOCTOR_DEBUG set, each record as one masked, filtered line."""
    import logging

    class LibraryLogs(logging.Handler):
        bkdoctor = True

        def emit(self, record: logging.LogRecord) -> None:
            if not os.environ.get("BKDOCTOR_DEBUG"):
                return
            from bkdoctor.safe.secrets import mask_text
            from bkdoctor.safe.terminal import clean_line

            try:
                msg = record.getMessage()
            except Exception:  # a library's bad format arguments: its message as given
                msg = str(record.msg)
            sys.stderr.write(
                f"bkdoctor: log: {record.levelname} {record.name}: {_bounded(clean_line(mask_text(msg)))}\n"
            )

    if not any(getattr(h, "bkdoctor", False) for h in logging.root.handlers):
        logging.root.addHandler(LibraryLogs())


def _bounded(line: str, head: int = 700, tail: int = 300) -> str:
    """An error line of bounded length: a value quoted in it (a bundle's key, a file's line) may be megabytes. Its
    start (what was read) and its end (why it is refused) stay."""
    if len(line) <= head + tail + 40:
        return line
    return f"{line[:head]} … ({len(line) - head - tail:,} characters left out) … {line[-tail:]}"


if __name__ == "__main__":
    import bkdoctor.launch
    from bkdoctor.launch import exiting

    bkdoctor.launch.ONE_SHOT = True
    try:
        main()
    finally:
        exiting()
