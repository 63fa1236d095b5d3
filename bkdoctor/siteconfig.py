"""Values `bkdoctor install` asks for once (BK_DOMAIN, REGISTRY, install dir), kept in
$XDG_CONFIG_HOME/bkdoctor/config.yaml (mode 0600) and never asked again. Nothing secret is asked or stored."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from .model import BadInput
from .report.jsonreport import write_atomic

DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
REGISTRY_RE = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._/-]+)?$")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bkdoctor" / "config.yaml"


def load() -> dict[str, Any]:
    p = config_path()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(f"{p}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{p}: not a mapping")
    return data


def save(data: dict[str, Any]) -> None:
    p = config_path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(str(p), yaml.safe_dump(data, sort_keys=True, allow_unicode=True), mode=0o600)


QUESTIONS = [
    ("domain", "BK_DOMAIN（蓝鲸访问域名）/ BlueKing domain, e.g. bkce7.bktencent.com", DOMAIN_RE, None),
    ("registry", "REGISTRY（镜像仓库，直连请回车）/ image registry host[:port], Enter for the default", REGISTRY_RE, ""),
    ("install_dir", "安装目录 / install dir", None, "~/bkce7.1-install/blueking"),
]


def settle(inv: Any, ask: Callable[[str, str | None], str] | None, required: bool = True) -> dict[str, Any]:
    """Fill the inventory's domain/registry/install_dir from the inventory, then the saved config, then a prompt
    (only for what is still missing; answers validated and saved). `ask` None: no terminal, never prompt."""
    saved = load()
    changed = False
    current = {"domain": inv.domain, "registry": getattr(inv, "registry", None),
               "install_dir": inv.install_dir if getattr(inv, "install_dir_set", False) else None}
    for key, question, pattern, default in QUESTIONS:
        if current.get(key):
            continue
        if saved.get(key) is not None:
            current[key] = saved[key]
            continue
        if ask is None:
            if key == "domain" and required:
                raise BadInput("BK_DOMAIN unknown: give --domain, set `domain:` in the inventory, or run install on a terminal")
            current[key] = default
            continue
        tried = 0
        while True:
            q = question if not tried else f"{question} [不合法，请重输 / not valid, again]"
            answer = ask(q, default).strip()
            tried += 1
            if not answer and default is not None:
                answer = default
            if pattern is None or (answer == "" and default == "") or pattern.match(answer):
                break
            if tried >= 5:
                raise BadInput(f"{key}: no valid answer")
        current[key] = answer
        saved[key] = answer
        changed = True
    if changed:
        save(saved)
    inv.domain = current["domain"]
    inv.registry = current["registry"] or None
    if current.get("install_dir"):
        inv.install_dir = current["install_dir"]
    return current
