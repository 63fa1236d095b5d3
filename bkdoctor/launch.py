"""The `bkdoctor` console script: `--version` answers before the command tree (click, rich, rules) is imported, and
the process's objects are frozen out of the garbage collector as it exits (`exiting`)."""

from __future__ import annotations

import sys


def answer_version(args: list[str]) -> None:
    """`bkdoctor --version` alone: answered here, in click's version_option wording, and exit."""
    if list(args) == ["--version"]:
        from bkdoctor import __version__

        sys.stdout.write(f"bkdoctor, version {__version__}\n")
        sys.exit(0)


# True in a process that runs one command and ends (the console script, `python -m bkdoctor.cli`), never for a
# library caller or a test that calls cli.main in its own process
ONE_SHOT = False


def main() -> None:
    global ONE_SHOT
    ONE_SHOT = True
    answer_version(sys.argv[1:])
    from bkdoctor.cli import main as cli_main

    try:
        cli_main()
    finally:
        exiting()


def exiting() -> None:
    """The process ends next (the console script and `python -m bkdoctor.cli` call this, never a library caller):
    every object is moved out of the cyclic garbage collector's sight (`gc.freeze()`), so the interpreter's final
    collections do not walk all the functions, classes and data of the ~600 modules a scan imported, several times
    over (issue 16: a cluster scan's exit took 60-100 ms on the development machine, 25 ms with this). Reference
    counting frees what it freed before, with its finalizers, and the standard streams are flushed as before; only
    garbage in reference cycles is left to the operating system, whose finalizers Python never promised at exit."""
    import gc

    gc.freeze()


def freeze_before_the_scan() -> None:
    """In a one-shot process (ONE_SHOT), just before the hosts are scanned: the objects made so far (the modules
    imported, the rules, the inventory: they live until the process ends) are moved out of the cyclic garbage
    collector's sight (`gc.freeze()`), so its full collections during the scan walk only what the scan makes (issue
    16: at 300 hosts, ~310 collections walked the ~600 imported modules' objects again and again). asyncssh, which
    the first SSH session would import, is imported first, to be frozen with the rest. Reference counting frees
    what it freed before; the cluster listing still freezes its pages (facts.cluster.out_of_collector_sight)."""
    import gc

    if not ONE_SHOT or not gc.isenabled():
        return
    try:
        import asyncssh  # noqa: F401
    except ImportError:  # pragma: no cover - a local scan without the SSH transport installed
        pass
    gc.freeze()
