"""The `bkdoctor` console script: `--version` answers before the command tree (click, rich, rules) is imported."""

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

    cli_main()
