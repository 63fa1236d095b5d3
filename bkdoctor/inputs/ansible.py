"""Read an Ansible inventory (INI or YAML) as bkdoctor hosts.

Groups map to roles: master/masters/kube_control_plane/kube-master -> master; node/nodes/kube_node/kube-node/
worker(s) -> node; control/controller/deploy -> control; registry-proxy/registry_proxy -> registry-proxy;
child groups inherit. Host variables: ansible_host -> address, ansible_port -> ssh.port, ansible_user ->
ssh.user, ansible_ssh_private_key_file -> ssh.identity_file, ansible_become -> ssh.become,
ansible_ssh_common_args with -J/ProxyJump -> ssh.proxy_jump. Passwords in an inventory are not read (they would
be secrets in a file); use `ssh.password_env` or `--ask-pass`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from bkdoctor.model import ROLES, BadInput, T
from bkdoctor.safe.names import valid_address, valid_host_name, valid_jump, why_not, why_not_address

ROLE_OF_GROUP = {
    "master": "master",
    "masters": "master",
    "kube_control_plane": "master",
    "kube-master": "master",
    "kube_master": "master",
    "control_plane": "master",
    "control-plane": "master",
    "node": "node",
    "nodes": "node",
    "kube_node": "node",
    "kube-node": "node",
    "worker": "node",
    "workers": "node",
    "control": "control",
    "controller": "control",
    "deploy": "control",
    "registry-proxy": "registry-proxy",
    "registry_proxy": "registry-proxy",
}

_TRUE = {"true", "yes", "1", "on"}
MAX_HOSTS = 100_000  # hosts one inventory may expand to (ranges included)
MAX_GROUP_DEPTH = 50  # child groups nested deeper than this are refused (Ansible inventories use a handful)


def looks_like_ansible_ini(path: str, text: str) -> bool:
    """An INI inventory (by its name or a `[group]` line): not YAML at all."""
    return path.endswith((".ini", ".cfg")) or re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M) is not None


def is_ansible_yaml(data: Any) -> bool:
    """A parsed YAML inventory in Ansible's shape (`all:` and no bkdoctor `hosts:` list)."""
    return (
        isinstance(data, dict) and "all" in data and isinstance(data["all"], (dict, type(None))) and "hosts" not in data
    )


def looks_like_ansible(path: str, text: str) -> bool:
    if looks_like_ansible_ini(path, text):
        return True
    from bkdoctor.safe import yamlfile

    try:
        data = yamlfile.load(text, path)
    except BadInput:
        return False  # the inventory loader reports it, with its line
    return is_ansible_yaml(data)


def _range_count(pattern: str) -> int:
    """How many names a pattern expands to, without expanding it."""
    n = 1
    for m in re.finditer(r"\[([0-9a-z]+):([0-9a-z]+)(?::(\d+))?\]", pattern):
        a, b, step = m.group(1), m.group(2), int(m.group(3) or 1) if len(m.group(3) or "1") < 10 else 0
        if step <= 0:
            raise BadInput(
                T(
                    f"主机范围 {pattern!r} 有误: 步长须为正数",
                    f"bad host range {pattern!r}: the step must be a positive number",
                )
            )
        if a.isdigit() and b.isdigit() and len(a) < 20 and len(b) < 20:
            lo, hi = int(a), int(b)
        elif len(a) == 1 and len(b) == 1 and a.isalpha() and b.isalpha():
            lo, hi = ord(a), ord(b)
        else:
            raise BadInput(T(f"主机范围 {pattern!r} 有误", f"bad host range {pattern!r}"))
        if hi < lo:
            raise BadInput(
                T(
                    f"主机范围 {pattern!r} 有误: 结束值小于起始值",
                    f"bad host range {pattern!r}: it ends before it starts",
                )
            )
        n *= (hi - lo) // step + 1
        if n > MAX_HOSTS:
            break
    return n


def _expand(pattern: str, budget: int = MAX_HOSTS) -> list[str]:
    """node[01:03] -> node01 node02 node03 (Ansible's numeric and alphabetic ranges), at most `budget` names (what is
    left of MAX_HOSTS for this inventory). Iterative: a pattern with a thousand ranges is no recursion."""
    import itertools

    count = _range_count(pattern)
    if count > budget:
        if budget >= MAX_HOSTS:
            raise BadInput(
                T(
                    f"主机范围 {pattern[:80]!r} 展开后超过 {MAX_HOSTS:,} 台主机（单个清单的上限）",
                    f"host range {pattern[:80]!r} expands to more than {MAX_HOSTS:,} hosts (the limit of one inventory)",
                )
            )
        raise BadInput(
            T(
                f"主机范围 {pattern[:80]!r}: 加上它之前列出的 {MAX_HOSTS - budget:,} 台主机，清单超过 {MAX_HOSTS:,} 台主机（单个清单的上限）",
                f"host range {pattern[:80]!r}: with the {MAX_HOSTS - budget:,} hosts listed before it, the "
                f"inventory has more than {MAX_HOSTS:,} hosts (the limit of one inventory)",
            )
        )
    parts: list[list[str]] = []
    pos = 0
    for m in re.finditer(r"\[([0-9a-z]+):([0-9a-z]+)(?::(\d+))?\]", pattern):
        a, b, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if a.isdigit() and b.isdigit():
            width = len(a) if a.startswith("0") else 0
            items = [str(i).zfill(width) for i in range(int(a), int(b) + 1, step)]
        else:
            items = [chr(c) for c in range(ord(a), ord(b) + 1, step)]
        parts.append([pattern[pos : m.start()]])
        parts.append(items)
        pos = m.end()
    parts.append([pattern[pos:]])
    return ["".join(p) for p in itertools.product(*parts)]


def _parse_kv(s: str) -> dict[str, str]:
    out = {}
    for tok in shlex.split(s, comments=True):
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


_KEY_AT = re.compile(r"[A-Za-z_][\w.-]{0,63}(?==)")


def _keys_before_quote(s: str) -> list[str]:
    """The variable names (`name=` at the start of a word, outside quotes) of a host line shlex cannot split: what an
    error may show of the line. No value: a value may be a password, and inside an unclosed quote even a `x=` is
    part of one."""
    keys, quote, i = [], "", 0
    while i < len(s):
        c = s[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "#" and (i == 0 or s[i - 1].isspace()):
            break
        elif i == 0 or s[i - 1].isspace():
            m = _KEY_AT.match(s, i)
            if m:
                keys.append(m.group(0))
        i += 1
    return keys


def parse_ini(text: str, path: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """-> (hosts {name: vars}, groups {name: {hosts: set, children: set, vars: {}}})."""
    hosts: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    section, kind = "ungrouped", "hosts"

    def group(name: str) -> dict:
        return groups.setdefault(name, {"hosts": set(), "children": set(), "vars": {}})

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.match(r"^\[([^\]:]+)(?::(vars|children))?\]\Z", line)
        if m:
            section, kind = m.group(1), m.group(2) or "hosts"
            group(section)
            continue
        if line.startswith("["):
            raise BadInput(
                T(
                    f"清单 {path}: 第 {n} 行: 节标题有误（应为 [组]、[组:vars] 或 [组:children]）",
                    f"inventory {path}: line {n}: bad section header (expected [group], [group:vars] or "
                    f"[group:children])",
                )
            )
        if kind == "vars":
            if "=" not in line:
                raise BadInput(
                    T(
                        f"清单 {path}: 第 {n} 行: 应为 键=值（该行不显示: 它可能含有密码）",
                        f"inventory {path}: line {n}: expected key=value (the line is not shown: it may hold a "
                        f"password)",
                    )
                )
            k, v = line.split("=", 1)
            group(section)["vars"][k.strip()] = v.strip().strip("'\"")
        elif kind == "children":
            group(section)["children"].add(line.split()[0])
        else:
            first, _, rest = line.partition(" ")
            try:
                hv = _parse_kv(rest)
            except ValueError:  # shlex: an unclosed quote
                keys = ", ".join(_keys_before_quote(rest)) or "-"
                raise BadInput(
                    T(
                        f"清单 {path}: 第 {n} 行: 引号未闭合（该行不显示: 它可能含有密码；其中的变量: {keys}）",
                        f"inventory {path}: line {n}: a quote is not closed (the line is not shown: it may hold a "
                        f"password; its variables: {keys})",
                    )
                ) from None
            for h in _expand(first, MAX_HOSTS - len(hosts)):
                hosts.setdefault(h, {}).update(hv)
                group(section)["hosts"].add(h)
    return hosts, groups


def _mapping(value: Any, path: str, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(
            T(
                f"清单 {path}: {what} 须为映射（mapping），而不是 {type(value).__name__}",
                f"inventory {path}: {what} must be a mapping, not a {type(value).__name__}",
            )
        )
    return value


def parse_yaml(data: Any, path: str) -> tuple[dict[str, dict], dict[str, dict]]:
    hosts: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    if not isinstance(data, dict):
        raise BadInput(
            T(
                f"清单 {path}: 顶层须为含 `all:` 的映射",
                f"inventory {path}: the top level must be a mapping with `all:`",
            )
        )
    stack: list[tuple[str, Any, int]] = [("all", data.get("all"), 0)]  # iterative: nesting cannot exhaust the stack
    while stack:
        name, node, depth = stack.pop()
        if depth > MAX_GROUP_DEPTH:
            raise BadInput(
                T(
                    f"清单 {path}: 组嵌套超过 {MAX_GROUP_DEPTH} 层（在 {name!r} 处）",
                    f"inventory {path}: groups nested deeper than {MAX_GROUP_DEPTH} levels (at {name!r})",
                )
            )
        g = groups.setdefault(name, {"hosts": set(), "children": set(), "vars": {}})
        node = _mapping(node, path, f"group {name!r}")
        for hname, hv in _mapping(node.get("hosts"), path, f"group {name!r}: hosts").items():
            hv = _mapping(hv, path, f"host {hname!r}")
            for h in _expand(str(hname), MAX_HOSTS - len(hosts)):
                hosts.setdefault(h, {}).update({str(k): str(v) for k, v in hv.items()})
                g["hosts"].add(h)
        g["vars"].update({str(k): str(v) for k, v in _mapping(node.get("vars"), path, f"group {name!r}: vars").items()})
        for cname, cnode in _mapping(node.get("children"), path, f"group {name!r}: children").items():
            g["children"].add(str(cname))
            stack.append((str(cname), cnode, depth + 1))
    return hosts, groups


def to_inventory_dict(text: str, path: str) -> dict[str, Any]:
    """Ansible inventory text -> a bkdoctor inventory mapping (validated afterwards like any other)."""
    if path.endswith((".yaml", ".yml")) or not re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M):
        from bkdoctor.safe import yamlfile

        hosts, groups = parse_yaml(yamlfile.load(text, T(f"清单 {path}", f"inventory {path}")), path)
    else:
        hosts, groups = parse_ini(text, path)

    # roles and group vars flow down through children
    roles: dict[str, set[str]] = {h: set() for h in hosts}
    hvars: dict[str, dict[str, str]] = {h: {} for h in hosts}

    memo: dict[str, set[str]] = {}

    def members(gname: str) -> set[str]:
        """Hosts of a group and of its descendants: iterative (3,000 nested groups cannot exhaust the stack),
        a cycle or more than MAX_GROUP_DEPTH levels is bad input."""
        if gname in memo:
            return memo[gname]
        on_path: list[str] = []
        stack: list[tuple[str, bool]] = [(gname, False)]
        while stack:
            name, done = stack.pop()
            g = groups.get(name) or {"hosts": set(), "children": set()}
            if done:
                on_path.pop()
                out = set(g["hosts"])
                for c in g["children"]:
                    out |= memo[c]
                memo[name] = out
                continue
            if name in memo:
                continue
            if name in on_path:
                raise BadInput(
                    T(f"清单 {path}: 组 {name!r} 是它自己的子组", f"inventory {path}: group {name!r} is its own child")
                )
            on_path.append(name)
            if len(on_path) > MAX_GROUP_DEPTH:
                raise BadInput(
                    T(
                        f"清单 {path}: 组嵌套超过 {MAX_GROUP_DEPTH} 层（在 {name!r} 处）",
                        f"inventory {path}: groups nested deeper than {MAX_GROUP_DEPTH} levels (at {name!r})",
                    )
                )
            stack.append((name, True))
            for c in g["children"]:
                if c in on_path:
                    raise BadInput(
                        T(f"清单 {path}: 组 {c!r} 是它自己的子组", f"inventory {path}: group {c!r} is its own child")
                    )
                if c not in memo:
                    stack.append((c, False))
        return memo[gname]

    # apply group vars from the most general group to the most specific (all first)
    order = ["all"] + sorted(g for g in groups if g != "all")
    for gname in order:
        mem = set(hosts) if gname == "all" else members(gname)
        role = ROLE_OF_GROUP.get(gname)
        for h in mem:
            if role:
                roles[h].add(role)
            for k, v in (groups.get(gname) or {}).get("vars", {}).items():
                hvars[h].setdefault(k, v) if gname == "all" else hvars[h].update({k: v})
    out_hosts = []
    for h in sorted(hosts):
        v = {**hvars[h], **hosts[h]}
        if not roles[h]:
            continue  # a host in none of the mapped groups is not part of the BlueKing deployment
        ssh: dict[str, Any] = {}
        if "ansible_port" in v:
            try:
                ssh["port"] = int(v["ansible_port"])
            except ValueError:
                raise BadInput(
                    T(
                        f"清单 {path}: 主机 {h}: ansible_port {v['ansible_port']!r} 不是数字",
                        f"inventory {path}: host {h}: ansible_port {v['ansible_port']!r} is not a number",
                    )
                ) from None
        if "ansible_user" in v:
            ssh["user"] = v["ansible_user"]
        if "ansible_ssh_private_key_file" in v:
            ssh["identity_file"] = v["ansible_ssh_private_key_file"]
        if v.get("ansible_become", "").lower() in _TRUE:
            ssh["become"] = True
        m = re.search(r"(?:-J\s*|ProxyJump=)(\S+)", v.get("ansible_ssh_common_args", ""))
        if m:
            ssh["proxy_jump"] = m.group(1).strip("'\"")
            if not valid_jump(ssh["proxy_jump"]):  # never an ssh option: bkdoctor/safe/names.py
                raise BadInput(
                    T(
                        f"清单 {path}: 主机 {h}: ansible_ssh_common_args 中的跳板机不是 [用户@]主机[:端口]",
                        f"inventory {path}: host {h}: the jump host in ansible_ssh_common_args is not "
                        "[user@]host[:port]",
                    )
                )
        if not valid_host_name(h):
            raise BadInput(T(f"清单 {path}: 主机 {why_not(h).zh}", f"inventory {path}: host {why_not(h).en}"))
        name, address = h, v.get("ansible_host", h)
        if not valid_address(address):  # never an ssh option (`-oProxyCommand=...`): bkdoctor/safe/names.py
            w = why_not_address(address)
            raise BadInput(
                T(f"清单 {path}: 主机 {h}: ansible_host {w.zh}", f"inventory {path}: host {h}: ansible_host {w.en}")
            )
        entry: dict[str, Any] = {
            "name": name,
            "address": address,
            "roles": sorted(roles[h], key=ROLES.index),
        }
        if ssh:
            entry["ssh"] = ssh
        out_hosts.append(entry)
    if not out_hosts:
        raise BadInput(
            T(
                f"清单 {path} 的 master/node/control/registry-proxy 组中没有主机（现有的组: {', '.join(sorted(groups)) or '无'}）",
                f"inventory {path}: no host in a group named master/node/control/registry-proxy "
                f"(found groups: {', '.join(sorted(groups)) or 'none'})",
            )
        )
    return {"hosts": out_hosts}
