"""Semantic version ordering with prereleases, as helm charts use it (2.1.2-beta.20 > 2.1.2-beta.9 > 2.1.1)."""

from __future__ import annotations

import re

_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z")


def semver_key(v: str) -> tuple:
    m = _RE.match(v.strip())
    if not m:
        raise ValueError(f"not a version: {v!r}")
    core = tuple(int(x or 0) for x in m.group(1, 2, 3))
    pre = m.group(4)
    if pre is None:
        return core + ((1,),)  # a release sorts after all of its prereleases
    ids = []
    for part in pre.split("."):
        ids.append((0, int(part), "") if part.isdigit() else (1, 0, part))  # numeric ids sort before alphanumeric
    return core + ((0, *ids),)


def semver_lt(a: str, b: str) -> bool:
    return semver_key(a) < semver_key(b)
