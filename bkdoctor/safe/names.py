"""One rule for host names, used wherever a name enters bkdoctor: the inventory (its JSON Schema pattern is made
from this), Ansible inventories, `collect` (which loads the inventory) and bundles (the manifest's host names and
their member files). Dot-separated labels of letters, digits, `-` and `_`, each starting and ending with a letter
or digit, at most 63 characters a label and 253 in all: `bk..node1`, `-x`, `node-`, a trailing newline and `a/b`
are refused at load, so a name that loads is usable everywhere (file names in a bundle, the Ansible export, SSH)."""

from __future__ import annotations

import re

from bkdoctor.model import T

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOST_NAME_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*\Z"
_HOST_NAME = re.compile(HOST_NAME_PATTERN)
MAX_LEN = 253


def valid_host_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_LEN and _HOST_NAME.match(name) is not None


def why_not(name: object) -> T:
    return T(
        f"{name!r} 不是有效的主机名（以点分隔的各段由字母、数字、'-'、'_' 组成，每段以字母或数字开头和结尾；最多 "
        f"{MAX_LEN} 个字符）",
        f"{name!r} is not a valid host name (letters, digits, '-', '_' in dot-separated labels that start "
        f"and end with a letter or digit; at most {MAX_LEN} characters)",
    )


# A BK_DOMAIN: dot-separated DNS labels (it reaches shells, /etc/hosts and daemon.json). The inventory's JSON Schema
# spells the same pattern (tests/test_one_home.py holds them equal).
DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
_DOMAIN = re.compile(DOMAIN_PATTERN)


def valid_domain(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_LEN and _DOMAIN.match(name) is not None
