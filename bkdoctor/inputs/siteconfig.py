"""Values `bkdoctor install` asks for once (BK_DOMAIN, REGISTRY, install dir), kept in
$XDG_CONFIG_HOME/bkdoctor/config.yaml (mode 0600) and never asked again. Nothing secret is asked or stored."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from bkdoctor.model import BadInput, T
from bkdoctor.safe.outfiles import write_atomic

DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+\Z")
REGISTRY_RE = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._/-]+)?\Z")
# an absolute path or one under ~ (expanded on the host that uses it), conservative characters, no `..`; the value
# is shlex-quoted wherever it enters a shell, this only keeps typos and tricks out of the config (issue 10 item 5)
INSTALL_DIR_RE = re.compile(r"(~|~?(/[A-Za-z0-9._+@-]+)+)/?")
# §三.2.1 / §四.2.1: where bcs.sh (<base>/ce7/bcs.sh) and the install files are downloaded from; an intranet mirror
# of it for offline sites
DOWNLOAD_BASE_DEFAULT = "https://bkopen-1252002024.file.myqcloud.com"
DOWNLOAD_BASE_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%+-]+)*/?")


def valid_install_dir(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= 1024
        and INSTALL_DIR_RE.fullmatch(value) is not None
        and ".." not in value.split("/")
    )


def valid_download_base(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 1024 and DOWNLOAD_BASE_RE.fullmatch(value) is not None


def check_install_dir(value: str, where: str) -> str:
    if not valid_install_dir(value):
        raise BadInput(
            T(
                f"{where}: install_dir {value[:80]!r} 不是绝对路径或 ~/路径（只能含字母、数字和 ._+@-，不能含 ..）",
                f"{where}: install_dir {value[:80]!r} is not an absolute path or ~/path of letters, digits "
                "and ._+@- (no ..)",
            )
        )
    return value


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bkdoctor" / "config.yaml"


def load() -> dict[str, Any]:
    p = config_path()
    from bkdoctor.safe import yamlfile

    try:
        with open(p, "rb") as fh:  # bounded, and through the one YAML loader (alias bombs, depth, duplicate keys)
            raw = fh.read(yamlfile.MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BadInput(T(f"{p}: 无法读取: {e.strerror or e}", f"{p}: {e.strerror or e}")) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(
            T(f"{p}: 不是 UTF-8 文本（第 {e.start} 字节）", f"{p}: not UTF-8 text (byte {e.start})")
        ) from None
    data = yamlfile.load(text, str(p)) or {}
    if not isinstance(data, dict):
        raise BadInput(T(f"{p}: 不是映射（mapping）", f"{p}: not a mapping"))
    return data


def save(data: dict[str, Any]) -> None:
    p = config_path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(str(p), yaml.safe_dump(data, sort_keys=True, allow_unicode=True), mode=0o600)


QUESTIONS = [
    ("domain", "BK_DOMAIN（蓝鲸访问域名）/ BlueKing domain, e.g. bkce7.bktencent.com", DOMAIN_RE, None),
    (
        "registry",
        "REGISTRY（镜像仓库，直连请回车）/ image registry host[:port], Enter for the default",
        REGISTRY_RE,
        "",
    ),
    ("install_dir", "安装目录 / install dir", INSTALL_DIR_RE, "~/bkce7.1-install/blueking"),
    (
        "download_base",
        "下载地址（bcs.sh 与安装文件；离线环境填内网镜像）/ download base of bcs.sh and the install files "
        "(an intranet mirror for offline sites)",
        DOWNLOAD_BASE_RE,
        DOWNLOAD_BASE_DEFAULT,
    ),
]
VALIDATE = {
    "domain": lambda v: isinstance(v, str) and DOMAIN_RE.match(v) is not None and "\n" not in v,
    "registry": lambda v: v in ("", None) or (isinstance(v, str) and REGISTRY_RE.fullmatch(v) is not None),
    "install_dir": valid_install_dir,
    "download_base": valid_download_base,
}


def settle(inv: Any, ask: Callable[[str, str | None], str] | None, required: bool = True) -> dict[str, Any]:
    """Fill the inventory's domain/registry/install_dir from the inventory, then the saved config, then a prompt
    (only for what is still missing; answers validated and saved). `ask` None: no terminal, never prompt."""
    saved = load()
    changed = False
    current = {
        "domain": inv.domain,
        "registry": getattr(inv, "registry", None),
        "install_dir": inv.install_dir if getattr(inv, "install_dir_set", False) else None,
        "download_base": getattr(inv, "download_base", None),
    }
    for key, value in list(current.items()) + [(k, v) for k, v in saved.items() if k in VALIDATE]:
        if value and not VALIDATE[key](value):
            # a hand-edited config or an inventory value that would otherwise reach a shell
            raise BadInput(
                T(
                    f"{key}: {str(value)[:80]!r} 无效"
                    f"（来自{'清单或命令行' if value == current.get(key) else ' ' + str(config_path())}）",
                    f"{key}: {str(value)[:80]!r} is not valid (from {'the inventory or the command line' if value == current.get(key) else config_path()})",
                )
            )
    for key, question, pattern, default in QUESTIONS:
        if current.get(key):
            continue
        if saved.get(key) is not None:
            current[key] = saved[key]
            continue
        if ask is None:
            if key == "domain" and required:
                raise BadInput(
                    T(
                        "BK_DOMAIN 未知: 请指定 --domain、在清单中设置 `domain:`，或在终端上运行 install",
                        "BK_DOMAIN unknown: give --domain, set `domain:` in the inventory, or run install on a terminal",
                    )
                )
            current[key] = default
            continue
        tried = 0
        while True:
            q = question if not tried else f"{question} [不合法，请重输 / not valid, again]"
            answer = ask(q, default).strip()
            tried += 1
            if not answer and default is not None:
                answer = default
            if (
                pattern is None
                or (answer == "" and default == "")
                or (pattern.fullmatch(answer) and VALIDATE[key](answer))
            ):
                break
            if tried >= 5:
                raise BadInput(T(f"{key}: 没有得到有效的回答", f"{key}: no valid answer"))
        current[key] = answer
        saved[key] = answer
        changed = True
    if changed:
        save(saved)
    inv.domain = current["domain"]
    inv.registry = current["registry"] or None
    if current.get("install_dir"):
        inv.install_dir = current["install_dir"]
    inv.download_base = (current.get("download_base") or DOWNLOAD_BASE_DEFAULT).rstrip("/")
    return current
