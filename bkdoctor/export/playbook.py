"""site.yml for `bkdoctor fix --export ansible`, assembled from the Ansible each host remediation carries beside it.

A host remediation is exported when `remediations/host/<id>.ansible.yml` stands beside its `<id>.py` (`exportable`).
That file is a mapping whose sections are copied into the play as they are written (comments and all):

- `order`: where its tasks stand in the play (lower first);
- `tasks`: its tasks, each guarded by `bkdoctor_fix_<id> | default(false) | bool` (set per host in inventory.ini);
- `vars` (optional): play vars, lazy Jinja templated per host (e.g. a file's new text from what a task read);
- `handlers`, `defaults` (play vars defined when nothing else set them), `host_flags` (`{variable: path}`: True on
  a host whose plan writes that file);
- `uses: _<name>` instead of `tasks`: a shared `_<name>.ansible.yml` beside it, emitted once for every remediation
  that uses it, its tasks after all the remediations' own (insecure-registries and registry-mirrors share the
  daemon.json edit: one read, one write, one reload).

`@NAME@` inside single quotes is one of bkdoctor's own commands (`FILLED`). The values the tasks read (domain,
registries, thresholds) are play vars from `context`, tagged `!unsafe`: Ansible never templates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bkdoctor.facts.host import SYSCTL_KEYS
from bkdoctor.fix.edits import BEGIN, END, modules_file, sysctl_file
from bkdoctor.fix.fixkit import DOCKER_RELOAD, check_domain, fstab_dir
from bkdoctor.model import BadInput, T

# -- the remediations' Ansible: remediations/host/<id>.ansible.yml -------------------------------------
FILLED = {"DOCKER_RELOAD": DOCKER_RELOAD}  # @NAME@ in a .ansible.yml: bkdoctor's own command, the same as `fix` runs
_KEYS = {"order", "uses", "host_flags", "defaults", "vars", "handlers", "tasks"}
_SECTIONS = {"vars": dict, "handlers": list, "tasks": list}  # copied as text, indented for the play


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@dataclass
class Piece:
    """One .ansible.yml: a remediation's Ansible (or a shared `_<name>`'s), its sections as site.yml text."""

    name: str
    order: int
    text: dict[str, str]  # vars / handlers / tasks -> its lines, indented as in site.yml, FILLED filled
    host_flags: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    shared: Piece | None = None


def _sections(raw: str) -> dict[str, str]:
    """A section: its key alone at column 0, its body the lines below up to the next at column 0."""
    lines, text = raw.split("\n"), {}
    for i, line in enumerate(lines):
        if line.endswith(":") and line[:-1] in _SECTIONS:
            body = []
            for b in lines[i + 1 :]:
                if b and not b[0].isspace():
                    break
                body.append(b)
            t = "".join("  " + b + "\n" if b else "\n" for b in "\n".join(body).rstrip("\n").split("\n"))
            for name, value in FILLED.items():
                t = t.replace(f"@{name}@", value.replace("'", "''"))
            text[line[:-1]] = t
    return text


def load_piece(path: Path) -> Piece:
    try:
        raw = path.read_text(encoding="utf-8")
        doc = yaml.load(raw, Loader=_Loader)
    except (OSError, yaml.YAMLError) as e:
        raise ImportError(f"{path}: {e}") from None
    shared = path.name.startswith("_")
    if (
        not isinstance(doc, dict)
        or set(doc) - _KEYS
        or ("tasks" in doc) == ("uses" in doc)
        or isinstance(doc.get("order"), int) == shared
        or not str(doc.get("uses", "_")).startswith("_")
    ):
        raise ImportError(f"{path}: a mapping of {sorted(_KEYS)}: `tasks` or `uses: _<shared>`; `order` unless shared")
    text = _sections(raw)
    if (
        set(text) != set(doc) & set(_SECTIONS)
        or any(not isinstance(doc[k], _SECTIONS[k]) for k in text)
        or re.search(r"@[A-Z_]+@", "".join(text.values()))
    ):
        raise ImportError(f"{path}: {', '.join(_SECTIONS)} must be blocks below their keys; an unknown @NAME@")
    return Piece(
        path.name.removesuffix(".ansible.yml"),
        doc.get("order", 0),
        text,
        dict(doc.get("host_flags") or {}),
        dict(doc.get("defaults") or {}),
        load_piece(path.with_name(f"{doc['uses']}.ansible.yml")) if "uses" in doc else None,
    )


def exportable() -> dict[str, Piece]:
    """{remediation id: its Ansible} for the host remediations with a <id>.ansible.yml beside them, in play order."""
    from bkdoctor.fix.plan import all_remediations
    from bkdoctor.scan.loader import remediations_dir

    out = {}
    for rid, rem in all_remediations().items():
        path = remediations_dir() / rem.scope / f"{rid}.ansible.yml"
        if rem.scope == "host" and path.is_file():
            out[rid] = load_piece(path)
    return dict(sorted(out.items(), key=lambda kv: kv[1].order))


# -- the values the tasks read ----------------------------------------------------------------------
def context(inv: Any, used: set[str]) -> dict[str, Any]:
    """The values the exported tasks read (the same the remediations' plans were made from)."""
    from bkdoctor.scan import engine

    th = inv.thresholds
    c: dict[str, Any] = {}
    if used & {"insecure-registries", "hosts-file"}:
        check_domain(inv.domain or "")
    if "insecure-registries" in used:
        c["bkdoctor_insecure_registries"] = [f"docker.{inv.domain}"]
    if "registry-mirrors" in used:
        port = int(th["registry_port"])
        c["bkdoctor_registry_mirrors"] = sorted(
            f"http://{h.address}:{port}" for h in inv.hosts if "registry-proxy" in h.roles
        )
    if "hosts-file" in used:
        from types import SimpleNamespace

        from bkdoctor.scan.rulekit import hosts_names

        api = engine.first_master(inv)
        for key, roles in (("bkdoctor_hosts_entries", ("node",)), ("bkdoctor_hosts_entries_control", ("control",))):
            # the names the rule asks of a host with these roles (the control machine: the 20 names of §六.4.1)
            names, extra = hosts_names(SimpleNamespace(thresholds=th, roles=roles, domain=inv.domain))
            entries = ([{"ip": inv.ingress_ip, "names": names}] if inv.ingress_ip else []) + (
                [{"ip": api, "names": extra}] if api else []
            )
            for e in entries:
                for v in [e["ip"], *e["names"]]:
                    if not v or any(ch.isspace() or ch == "#" for ch in v):
                        raise BadInput(T(f"拒绝把 {v!r} 写入 /etc/hosts", f"refusing to write {v!r} into /etc/hosts"))
            c[key] = entries
        c["bkdoctor_hosts_marker_begin"] = BEGIN[2:]
        c["bkdoctor_hosts_marker_end"] = END[2:]
    if "timezone" in used:
        tz = str(th["timezone"])
        if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", tz):
            raise BadInput(T(f"拒绝导出时区 {tz!r}", f"refusing to export time zone {tz!r}"))
        c["bkdoctor_timezone"] = tz
    if "kernel-params" in used:
        c["bkdoctor_sysctl_keys"] = list(SYSCTL_KEYS)
        c["bkdoctor_sysctl_conf"] = sysctl_file({k: "1" for k in SYSCTL_KEYS})
        c["bkdoctor_modules_conf"] = modules_file(["br_netfilter"])
    if "localpv-dirs" in used:
        c["bkdoctor_localpv_mount_dir"] = fstab_dir("localpv_mount_dir", th["localpv_mount_dir"])
        c["bkdoctor_localpv_source_dir"] = fstab_dir("localpv_source_dir", th["localpv_source_dir"])
        c["bkdoctor_localpv_vols"] = [f"vol{i:02d}" for i in range(1, int(th["localpv_count"]) + 1)]
    return c


# -- site.yml ----------------------------------------------------------------------------------------
class _Unsafe(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _repr_unsafe(d: yaml.SafeDumper, v: _Unsafe) -> yaml.Node:
    style = "|" if "\n" in v else "'"
    return d.represent_scalar("!unsafe", str(v), style=style)


_Dumper.add_representer(_Unsafe, _repr_unsafe)


def _unsafe(x: Any) -> Any:
    if isinstance(x, str):
        return _Unsafe(x)
    if isinstance(x, list):
        return [_unsafe(i) for i in x]
    if isinstance(x, dict):
        return {k: _unsafe(v) for k, v in x.items()}
    return x


HEAD = """\
# Written by `bkdoctor fix --export ansible`: bkdoctor's host remediations with ansible-core's builtin modules.
# Run: ansible-playbook -i inventory.ini site.yml  (see README.md). Every task is idempotent: a second run
# reports changed=0. Edited files keep a backup next to them (Ansible's <file>.<pid>.<date>~).
# 由 bkdoctor 导出：与 `bkdoctor fix` 相同的主机修复，只用 ansible-core 内置模块，可重复执行。
- name: bkdoctor host remediations
  hosts: all
  gather_facts: false
  # the same PATH and locale as bkdoctor's own apply script (sysctl, modprobe, swapoff live in sbin)
  environment:
    PATH: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    LC_ALL: C
"""

PRELUDE = """\
  tasks:
    - name: "bkdoctor | is systemd the init system"
      ansible.builtin.stat:
        path: /run/systemd/system
      register: bkdoctor_systemd_dir
      check_mode: false

    - name: "bkdoctor | remember it"
      ansible.builtin.set_fact:
        bkdoctor_systemd: "{{ bkdoctor_systemd_dir.stat.isdir | default(false) | bool }}"
"""


def render(remediations: list[str], context: dict[str, Any]) -> str:
    """The play: the exported remediations' sections (and the shared files they use, once each) in play order."""
    pieces = exportable()
    seen: dict[str, Piece] = {}
    for p in (pieces[r] for r in remediations):
        for q in (p, p.shared):
            if q:
                seen.setdefault(q.name, q)
    everyone = list(seen.values())  # vars, defaults, handlers: in the order they are first used
    vars_ = {k: _unsafe(v) for k, v in context.items()}
    for q in everyone:
        for k, v in q.defaults.items():
            vars_.setdefault(k, _unsafe(v))
    var_text = ""
    if vars_:
        dumped = yaml.dump(
            vars_, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
        )
        var_text += "".join("    " + line + "\n" for line in dumped.splitlines())
    var_text += "".join(q.text.get("vars", "") for q in everyone)
    # Jinja in a playbook reads '\\n' as a backslash and an n (Ansible escapes backslashes): a newline is a variable
    out = [HEAD, '  vars:\n    bkdoctor_nl: "\\n"\n' + var_text]
    handlers = "".join(q.text.get("handlers", "") for q in everyone)
    if handlers:
        out.append("  handlers:\n" + handlers)
    out.append(PRELUDE)
    shared_last = sorted(everyone, key=lambda q: q.name.startswith("_"))  # a shared file's tasks after all others
    out += ["\n" + q.text["tasks"] for q in shared_last if "tasks" in q.text]
    return "".join(out)
