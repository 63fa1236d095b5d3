"""The `bkdoctor` console script: `--version` answers before the command tree (click, rich, rules) is imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from bkdoctor import __version__

        sys.stdout.write(f"bkdoctor, version {__version__}\n")  # click's version_option wording
        sys.exit(0)
    from bkdoctor.cli import main as cli_main

    cli_main()
