"""The shells the probe's tests run under besides this machine's dash and bash (CentOS 7.9's /bin/sh is bash 4.2,
which CI cannot install): BKDOCTOR_TEST_SH=name=/path[,name=/path...] (README, Performance: a bash 4.2 built from its
source, linked as `sh` so that it starts in POSIX mode). One parser for every test that reads it."""

from __future__ import annotations

import os
import re

import pytest

_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


def extra_shells() -> dict[str, str]:
    """name -> absolute path of an executable shell; a malformed entry ends the test session with its reason (exit 2)."""
    out: dict[str, str] = {}
    for item in filter(None, os.environ.get("BKDOCTOR_TEST_SH", "").split(",")):
        name, eq, path = item.partition("=")
        if not eq or not _NAME.match(name) or name in ("dash", "bash") or name in out:
            pytest.exit(
                returncode=2,
                reason=f"BKDOCTOR_TEST_SH: {item!r}: want name=/path, a new name of letters, digits, . _ -",
            )
        if not os.path.isabs(path) or not os.path.isfile(path) or not os.access(path, os.X_OK):
            pytest.exit(returncode=2, reason=f"BKDOCTOR_TEST_SH: {item!r}: {path!r} is not an executable file")
        out[name] = path
    return out
