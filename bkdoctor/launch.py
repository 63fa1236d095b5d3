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


def main() -> None:
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
