"""Inventory and configuration file (YAML), validated with a JSON Schema.

Errors name the key and the line: `hosts.1.roles.0: 'worker' is not one of [...] (hosts.yaml line 12)`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bkdoctor.inputs import thresholds as th
from bkdoctor.model import BadInput, T

DEFAULT_INSTALL_DIR = "~/bkce7.1-install/blueking"
SCHEMA_PATH = Path(__file__).with_name("inventory.schema.json")


@dataclass
class HostSpec:
    name: str
    address: str
    roles: tuple[str, ...]
    ssh: dict[str, Any] = field(default_factory=dict)
    docker_socket: str | None = None
    local: bool = False


@dataclass
class Suppression:
    rule: str
    target: str
    reason: str
    until: dt.date | None

    def active(self, today: dt.date) -> bool:
        return self.until is None or today <= self.until


@dataclass
class Inventory:
    path: str | None
    hosts: list[HostSpec]
    domain: str | None
    domain_source: str | None
    install_dir: str
    ssh: dict[str, Any]
    thresholds: dict[str, Any]
    suppress: list[Suppression]
    ingress_ip: str | None = None
    docker_socket: str | None = None
    download_base: str | None = None  # §三.2.1/§四.2.1: where bcs.sh and the install files come from (install)
    registry: str | None = None  # $REGISTRY (§四.5.2): the registry nodes pull from
    nfs_path: str | None = None  # where the NFS shared storage is mounted on the nodes (§一.3.2.2)
    suites: tuple[str, ...] = ()  # suites to deploy (§一.5): base, bcs, monitor, ci
    container_monitoring: bool = False  # monitor suite with container monitoring (§一.5: >= 500 GB)
    rules_dirs: list[str] = field(default_factory=list)  # site rules (bkdoctor/scan/siterules.py), resolved paths
    # run-time options from the CLI (never from the file): trust on first use, a prompted password
    accept_new_host_keys: bool = False
    ssh_password: str | None = field(default=None, repr=False)


def _schema() -> dict[str, Any]:
    from bkdoctor.safe.names import HOST_NAME_PATTERN

    schema = json.loads(SCHEMA_PATH.read_text())
    # one rule for host names everywhere (bkdoctor/safe/names.py), not a second copy in the schema
    schema["properties"]["hosts"]["items"]["properties"]["name"]["pattern"] = HOST_NAME_PATTERN
    return schema


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        from bkdoctor.safe.yamlfile import schema_validator

        _VALIDATOR = schema_validator(_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return _VALIDATOR


def load_domain_from_custom(install_dir: str) -> tuple[str | None, str | None]:
    """`domain.bkDomain` from `<install_dir>/environments/default/custom.yaml`; (None, None) if absent."""
    from bkdoctor.safe import yamlfile

    p = Path(os.path.expanduser(install_dir)) / "environments" / "default" / "custom.yaml"
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read(yamlfile.MAX_BYTES + 1)
        data = yamlfile.load(text, T(f"无法从 {p} 读取 BK_DOMAIN", f"cannot read BK_DOMAIN from {p}"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(
            T(
                f"无法从 {p} 读取 BK_DOMAIN: {str(e).splitlines()[0]}",
                f"cannot read BK_DOMAIN from {p}: {str(e).splitlines()[0]}",
            )
        ) from None
    if isinstance(data, dict) and isinstance(data.get("domain"), dict):
        d = data["domain"].get("bkDomain")
        if isinstance(d, str) and d.strip():
            from bkdoctor.safe.names import valid_domain

            # the inventory's `domain` rule: BK_DOMAIN reaches the probe's word list (`for n in $BKD_HOSTS_NAMES`),
            # getent, /etc/hosts and daemon.json; `* -i` was globbed there and became getent's option
            if not valid_domain(d.strip()):
                raise BadInput(
                    T(
                        f"{p}: domain.bkDomain {d.strip()[:80]!r} 不是域名（以点分隔的各段由字母、数字和 '-' 组成，"
                        f"例如 bkce7.bktencent.com）",
                        f"{p}: domain.bkDomain {d.strip()[:80]!r} is not a domain name (letters, digits and '-' in "
                        f"dot-separated labels, e.g. bkce7.bktencent.com)",
                    )
                )
            return d.strip(), str(p)
    return None, None


def local_inventory(domain: str | None = None, install_dir: str | None = None) -> Inventory:
    """No inventory file: this host through the local transport, role `control`."""
    install_dir = install_dir or DEFAULT_INSTALL_DIR
    src = "--domain" if domain else None
    if not domain:
        domain, src = load_domain_from_custom(install_dir)
    from bkdoctor.safe.names import valid_host_name

    name = os.uname().nodename
    name = name if valid_host_name(name) else "localhost"  # the one host-name rule (bkdoctor/safe/names.py)
    return Inventory(
        path=None,
        hosts=[HostSpec(name=name, address="localhost", roles=("control",), local=True)],
        domain=domain,
        domain_source=src,
        install_dir=install_dir,
        ssh={},
        thresholds=th.merge(None),
        suppress=[],
    )


def _nul_at(data: Any, at: tuple = ()) -> tuple | None:
    """The key path of the first string (a key or a value) holding a NUL byte, or None. Iterative: the loader has
    bounded the depth and size already."""
    stack = [(data, at)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, str):
            if "\0" in v:
                return where
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and "\0" in k:
                    return (*where, k.replace("\0", "\\0"))
                stack.append((x, (*where, k)))
        elif isinstance(v, list):
            stack.extend((x, (*where, i)) for i, x in enumerate(v))
    return None


def load_inventory(path: str) -> Inventory:
    from bkdoctor.safe import yamlfile

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(yamlfile.MAX_BYTES + 1)  # bounded: a larger file is refused by the loader
    except FileNotFoundError:
        raise BadInput(T(f"清单 {path}: 文件不存在", f"inventory {path}: no such file")) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(T(f"清单 {path}: 无法读取: {e}", f"inventory {path}: cannot read: {e}")) from None
    from bkdoctor.inputs.ansible import is_ansible_yaml, looks_like_ansible_ini, to_inventory_dict

    # YAML is parsed once here (a 300-host inventory took 290 ms when the Ansible check parsed it first: issue 16)
    if looks_like_ansible_ini(path, text):
        node, data = None, to_inventory_dict(text, path)
    else:
        data, node = yamlfile.load_with_node(text, T(f"清单 {path}", f"inventory {path}"))
        if is_ansible_yaml(data):
            node, data = None, to_inventory_dict(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(
            T(
                f"清单 {path}: 第 1 行: 顶层须为映射（mapping），而不是 {type(data).__name__}",
                f"inventory {path}: line 1: top level must be a mapping, not {type(data).__name__}",
            )
        )

    nul = _nul_at(data)
    if nul is not None:  # YAML's "\0" escape: no value the probe or a fix puts in a shell may hold one
        where = ".".join(map(str, nul))
        line = yamlfile.line_of(node, list(nul))
        raise BadInput(
            T(
                f"清单 {path}: 第 {line} 行: {where}: 值中含 NUL 字节（\\0）",
                f"inventory {path}: line {line}: {where}: a NUL byte (\\0) in the value",
            )
        )
    validator = _validator()
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        line, key = yamlfile.schema_error_at(e, node)
        msg = yamlfile.schema_message(e)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInput(
            T(
                f"清单 {path}: 第 {line} 行: {key}: {msg}{f'（另有 {len(errors) - 1} 处）' if len(errors) > 1 else ''}",
                f"inventory {path}: line {line}: {key}: {msg}{more}",
            )
        )

    from bkdoctor.safe.names import valid_address, valid_jump, why_not_address

    for where, ssh, keys in [("ssh", data.get("ssh") or {}, ["ssh", "proxy_jump"])] + [
        (f"hosts.{i}.ssh", h.get("ssh") or {}, ["hosts", i, "ssh", "proxy_jump"])
        for i, h in enumerate(data.get("hosts") or [])
    ]:
        if "proxy_jump" in ssh and not valid_jump(ssh["proxy_jump"]):  # never an ssh option (ProxyJump=-o...)
            line = yamlfile.line_of(node, keys)
            raise BadInput(
                T(
                    f"清单 {path}: 第 {line} 行: {where}.proxy_jump: {str(ssh['proxy_jump'])[:80]!r} 不是 "
                    "[用户@]主机[:端口]（多跳以逗号分隔）",
                    f"inventory {path}: line {line}: {where}.proxy_jump: {str(ssh['proxy_jump'])[:80]!r} is not "
                    "[user@]host[:port] (hops separated by commas)",
                )
            )

    hosts: list[HostSpec] = []
    seen: set[str] = set()
    for i, h in enumerate(data.get("hosts") or []):
        if h["name"] in seen:
            raise BadInput(
                T(
                    f"清单 {path}: 第 {yamlfile.line_of(node, ['hosts', i, 'name'])} 行: hosts.{i}.name: "
                    f"主机名 {h['name']!r} 重复",
                    f"inventory {path}: line {yamlfile.line_of(node, ['hosts', i, 'name'])}: hosts.{i}.name: duplicate host name {h['name']!r}",
                )
            )
        seen.add(h["name"])
        if not valid_address(h["address"]):  # the one address rule (bkdoctor/safe/names.py): never an ssh option
            w, line = why_not_address(h["address"]), yamlfile.line_of(node, ["hosts", i, "address"])
            raise BadInput(
                T(
                    f"清单 {path}: 第 {line} 行: hosts.{i}.address: {w.zh}",
                    f"inventory {path}: line {line}: hosts.{i}.address: {w.en}",
                )
            )
        hosts.append(
            HostSpec(
                name=h["name"],
                address=h["address"],
                roles=tuple(h["roles"]),
                ssh=h.get("ssh") or {},
                docker_socket=h.get("docker_socket"),
                local=bool(h.get("local", False)),
            )
        )
    try:
        thresholds = th.merge(data.get("thresholds"))
    except th.ThresholdError as e:
        raise BadInput(
            T(
                f"清单 {path}: 第 {yamlfile.line_of(node, e.path)} 行: {e.text.zh}",
                f"inventory {path}: line {yamlfile.line_of(node, e.path)}: {e}",
            )
        ) from None

    sup = []
    for s in data.get("suppress") or []:
        until = dt.date.fromisoformat(s["until"]) if s.get("until") else None
        sup.append(Suppression(rule=s["rule"], target=s.get("target", "*"), reason=s["reason"], until=until))

    install_dir = data.get("install_dir") or DEFAULT_INSTALL_DIR
    domain, src = data.get("domain"), ("inventory" if data.get("domain") else None)
    if not domain:
        domain, src = load_domain_from_custom(install_dir)
    # no hosts stays no hosts: an inventory file never means this machine (the commands refuse it, or take the
    # hosts from the cluster: bkdoctor/inputs/targets.py)
    return Inventory(
        path=path,
        hosts=hosts,
        domain=domain,
        domain_source=src,
        install_dir=install_dir,
        ssh=data.get("ssh") or {},
        thresholds=thresholds,
        suppress=sup,
        ingress_ip=data.get("ingress_ip"),
        docker_socket=data.get("docker_socket"),
        download_base=data.get("download_base"),
        registry=data.get("registry"),
        nfs_path=data.get("nfs_path"),
        suites=tuple(data.get("suites") or ()),
        container_monitoring=bool(data.get("container_monitoring")),
        rules_dirs=[str(Path(path).parent / os.path.expanduser(d)) for d in data.get("rules_dirs") or []],
    )
