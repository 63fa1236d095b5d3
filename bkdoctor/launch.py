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
    garbage in reference cycles is left to the operating system, whose finalizers Python never promised at exit.

    Nothing is imported here: `gc` was imported with the command tree (bkdoctor.cli), and a process that is out of
    memory (a MemoryError) could not import it now; without it (`--version`'s early exit), nothing is frozen."""
    gc = sys.modules.get("gc")
    if gc is not None:
        gc.freeze()


def collect_less_during_the_scan() -> None:
    """In a one-shot process (ONE_SHOT), just before the hosts are scanned: the cyclic garbage collector's youngest
    generation is collected every 10,000 allocations net, not every 700 (issue 16: a 300-host scan made ~310
    collections, each older one walking again what the scan keeps, its findings and sessions; with 10,000, ~20:
    `python3 bench/gc_scan.py`, README "Performance"). Garbage in reference cycles waits a little longer;
    reference counting frees the rest as always. A library caller's or a test's process is left as it is."""
    import gc

    if ONE_SHOT and gc.isenabled():
        gc.set_threshold(SCAN_GC_THRESHOLD, *gc.get_threshold()[1:])


SCAN_GC_THRESHOLD = 10_000
