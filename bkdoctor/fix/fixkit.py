"""What remediation files import besides the change types: small shared plan helpers (as `rulekit` is for rules).

`check_domain` refuses a domain that is not a plain DNS name; `file_text` reads a probed file for editing;
`daemon_json_plan` adds values to a list key of /etc/docker/daemon.json and reloads dockerd; `configmap_named`
finds a ConfigMap by name in any namespace; SYSTEMD and DOCKER_RELOAD are shell snippets of host commands.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from bkdoctor.fix.edits import EditError, daemon_json_add
from bkdoctor.fix.plan import CommandChange, FileChange, Fix
from bkdoctor.model import BadInput, FactUnavailable, T
from bkdoctor.safe.names import valid_domain
from bkdoctor.scan.rulekit import DOCKER_RELOAD_CMD, mirror_key

SYSTEMD = "test -d /run/systemd/system"
DOCKER_RELOAD = (
    f"if {SYSTEMD}; then {DOCKER_RELOAD_CMD}; "
    "else p=$(cat /var/run/docker.pid 2>/dev/null || cat /run/docker.pid 2>/dev/null); "
    '[ -n "$p" ] || { echo "dockerd is not running: nothing to reload"; exit 1; }; kill -HUP "$p"; fi'
)


def check_domain(domain: str) -> str:
    """Names go into files and commands: only a plain DNS name is accepted (no shell, no newline)."""
    if not valid_domain(domain or ""):
        raise BadInput(T(f"拒绝把 {domain!r} 用作域名", f"refusing to use {domain!r} as a domain name"))
    return domain


def fstab_dir(key: str, path: Any) -> str:
    """A directory from the inventory (`thresholds.<key>`) that becomes an /etc/fstab field: absolute, without its
    trailing /, and nothing fstab reads otherwise (a blank splits the line into other fields, a # starts a comment, a
    newline starts a line of its own, a backslash starts an octal escape; a broken fstab can stop the host at its
    next boot), nor a glob character (the exported Ansible task splits the list of them into words)."""
    d = str(path).rstrip("/")
    if not d.startswith("/") or any(c.isspace() or c in "#*?[]\\" or not c.isprintable() for c in d):
        raise BadInput(
            T(
                f"thresholds.{key} {str(path)[:200]!r}: 须为不含空白、#、*?[]\\ 或控制字符的绝对路径（它会写入 /etc/fstab）",
                f"thresholds.{key} {str(path)[:200]!r}: an absolute path without blanks, #, *?[]\\ or control "
                "characters is needed (it is written into /etc/fstab)",
            )
        )
    return d


def file_text(facts: Any, section: str, path: str) -> tuple[bytes | None, str | None]:
    """(raw bytes, text) of a probed file; (None, None) when it does not exist. A file that is not UTF-8 is
    not edited (its bytes could not be written back exactly)."""
    s = facts.sec(section)
    if s.rc == 3 or (s.rc != 0 and "No such file" in s.text()):
        return None, None
    if s.rc != 0:
        raise FactUnavailable(
            T(f"无法读取 {path}：{s.text().strip()[:200]}", f"cannot read {path}: {s.text().strip()[:200]}")
        )
    try:
        return s.out, s.out.decode("utf-8")
    except UnicodeDecodeError:
        raise FactUnavailable(
            T(f"{path} 不是 UTF-8 文本，不修改", f"{path} is not UTF-8 text: not editing it")
        ) from None


def configmap_named(facts: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The ConfigMap `name` (in `namespace`, or in whichever namespace it is: the first by namespace), or None. Only
    the names of `facts/cluster.py: CONFIGMAPS` are read (others are refused: nobody fetches them)."""
    from bkdoctor.facts.cluster import configmap

    return configmap(facts, name, namespace)


def daemon_json_plan(facts: Any, key: str, values: list[str]) -> Fix:
    """`values` added to the list `key` of /etc/docker/daemon.json (insecure-registries, registry-mirrors), then a
    reload of dockerd unless the running daemon has them already; manual steps when dockerd is not running."""
    if not (facts.docker or {}).get("info"):
        # without a running daemon the change can be neither applied live nor verified
        # a jq program and every value in it as shell words (values from the inventory: quoted, JSON-encoded)
        program = f".[{json.dumps(key)}] = ((.[{json.dumps(key)}] // []) as $have | $have + ({json.dumps(list(values))} - $have))"
        return Fix(
            manual=[
                f"jq {shlex.quote(program)} /etc/docker/daemon.json > /tmp/daemon.json.new  # review, then copy back",
                "systemctl start docker",
                f"docker info | grep -iA3 {shlex.quote(key.replace('-', ' '))}",
            ]
        )
    raw, text = file_text(facts, "daemon_json", "/etc/docker/daemon.json")
    changes: list[Any] = []
    try:
        new = daemon_json_add(text or "", key, values, same=mirror_key if key == "registry-mirrors" else str)
    except EditError as e:  # bad input: the fix loop reports it `refused` (exit 2), the file untouched
        raise EditError(f"/etc/docker/daemon.json: {e}") from None
    if new != (text or ""):
        changes.append(FileChange("/etc/docker/daemon.json", raw, new.encode()))
    info = (facts.docker or {}).get("info") or {}
    live = set()
    rc = info.get("RegistryConfig") or {}
    if key == "insecure-registries":
        live = {
            n for n, ic in (rc.get("IndexConfigs") or {}).items() if isinstance(ic, dict) and ic.get("Secure") is False
        }
    else:
        live = {mirror_key(m) for m in rc.get("Mirrors") or []}
    if changes or not all((mirror_key(v) if key == "registry-mirrors" else v) in live for v in values):
        # SIGHUP: insecure-registries and registry-mirrors apply live, no restart (containers keep running)
        changes.append(
            CommandChange(
                DOCKER_RELOAD,
                T("reload dockerd（SIGHUP，不重启容器）", "reload dockerd (SIGHUP, containers keep running)"),
            )
        )
    return Fix(changes)
