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


# A host's address (inventory `address`, Ansible `ansible_host`, a Node's InternalIP): what bkdoctor gives to SSH,
# `scp`/`ssh` in the install's steps and `ansible_host`. A host name by the rule above (an IPv4 literal is one), or an
# IPv6 literal without brackets or a zone (`fd00::5`, not `[fd00::5]` or `fe80::1%eth0`). Nothing else: a leading
# `-` made `ssh "$master_ip"` read `-oProxyCommand=...` as an option; whitespace, quotes, `%`, `@`, `[`, `/`, `:`
# (but in an IPv6 literal) never reach a command line.
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+\Z")


def valid_address(address: object) -> bool:
    if not isinstance(address, str) or not 0 < len(address) <= MAX_LEN:
        return False
    if _HOST_NAME.match(address):
        return True
    if ":" not in address or not _IPV6_CHARS.match(address):
        return False
    import ipaddress

    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


_JUMP_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}\Z")


def valid_jump(spec: object) -> bool:
    """ssh.proxy_jump: `[user@]host[:port]` hops, comma-separated (IPv6 as `[addr]:port`). It reaches ssh's command
    line in the Ansible export (`-o ProxyJump=...`) and asyncssh here: a hop is never an option."""
    if not isinstance(spec, str) or not 0 < len(spec) <= MAX_LEN:
        return False
    for hop in spec.split(","):
        user, at, rest = hop.strip().rpartition("@")
        if at and not _JUMP_USER.match(user):
            return False
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([^:\[\]]+)(?::(\d{1,5}))?", rest)
        if not m:
            return False
        host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if not valid_address(host) or (port is not None and not 0 < int(port) < 65536):
            return False
    return True


def why_not_address(address: object) -> T:
    a = str(address)[:80]
    return T(
        f"{a!r} 不是有效的地址（须为主机名或 IP 地址: 以点分隔的各段由字母、数字、'-'、'_' 组成，每段以字母或数字开头和结尾，"
        f"或不带方括号和区域的 IPv6 地址）",
        f"{a!r} is not a valid address (a host name or an IP address: letters, digits, '-', '_' in dot-separated "
        f"labels that start and end with a letter or digit, or an IPv6 address without brackets or zone)",
    )


# A BK_DOMAIN: dot-separated DNS labels (it reaches shells, /etc/hosts and daemon.json). The inventory's JSON Schema
# spells the same pattern (tests/test_one_home.py holds them equal).
DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
_DOMAIN = re.compile(DOMAIN_PATTERN)


def valid_domain(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_LEN and _DOMAIN.match(name) is not None
