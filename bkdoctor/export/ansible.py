"""`bkdoctor fix --rule SEL --export ansible DIR`: the same host fixes, as an Ansible inventory and playbook.

The scan and the plans are bkdoctor's own (`engine.scan` + `fixmode.make_plans`, the same selection and
inventory as `fix`). Instead of applying them, this writes:

- DIR/inventory.ini: every host with its connection settings (from the bkdoctor inventory's `ssh:`), grouped
  by role, and per host a `bkdoctor_fix_<remediation>=True` for each remediation bkdoctor planned a change
  for there: only those tasks run on that host.
- DIR/site.yml: one play with the host remediations written with ansible-core's builtin modules only
  (`ansible.builtin.*`: no collection to install), each task idempotent by itself (a second run reports
  `changed=0`), files edited with `backup: true`.
- DIR/README.md: how to run it (zh and en), and what was not exported (manual steps, cluster fixes).

Values never reach a shell or a template unquoted: data in site.yml is tagged `!unsafe` (never templated),
shell snippets read it from environment variables, and a value that would be templated in the INI inventory
(`{{`, `{%`, `{#`) or that breaks a line is refused.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bkdoctor.fix.edits import BEGIN, END, modules_file, sysctl_file
from bkdoctor.fix.fixkit import DOCKER_RELOAD, check_domain
from bkdoctor.fix.plan import FileChange
from bkdoctor.model import BadInput

# remediation id -> inventory flag. Everything else (cluster remediations, rules without one) is not exported.
HOST_REMEDIATIONS = ("swap", "selinux", "firewall", "timezone", "time-sync", "kernel-params", "insecure-registries",
                     "registry-mirrors", "hosts-file", "localpv-dirs")
SYSCTL_PATH = "/etc/sysctl.d/90-bkdoctor.conf"
MODULES_PATH = "/etc/modules-load.d/bkdoctor.conf"
SYSCTL_KEYS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")


def flag(rem_id: str) -> str:
    return "bkdoctor_fix_" + rem_id.replace("-", "_")


def group_name(role: str) -> str:
    return role.replace("-", "_")  # Ansible group names: letters, digits, underscores


@dataclass
class HostExport:
    name: str
    roles: tuple[str, ...]
    conn: dict[str, Any]
    flags: dict[str, bool] = field(default_factory=dict)  # extra per-host variables (all booleans)
    fixes: list[str] = field(default_factory=list)  # remediation ids exported for this host


@dataclass
class Export:
    hosts: list[HostExport]
    remediations: list[str]  # ids with at least one host
    not_exported: list[tuple[str, str, str]]  # (rule, target, why)
    context: dict[str, Any]  # values the tasks need


# -- building ----------------------------------------------------------------------------------------
def _check_value(what: str, v: Any) -> Any:
    if isinstance(v, str) and (_TEMPLATE.search(v) or any(c in v for c in "\n\r\0")):
        raise BadInput(f"refusing to export {what} {v!r}: Ansible would template it or it breaks a line")
    return v


def connection_vars(host: Any, inv: Any) -> dict[str, Any]:
    """ansible_* variables for one host, from the bkdoctor inventory's ssh settings (host's over inventory's)."""
    from bkdoctor.transport.ssh import SSHSettings

    if not _NAME.match(host.name):
        raise BadInput(f"refusing to export host name {host.name!r}: not a plain name")
    if host.local or host.address in ("localhost", "127.0.0.1", "::1"):
        return {"ansible_connection": "local"}
    try:
        s = SSHSettings.merged(inv.ssh, host.ssh)
    except (ValueError, TypeError) as e:
        raise BadInput(f"host {host.name}: ssh settings: {e}") from None
    out: dict[str, Any] = {"ansible_host": host.address, "ansible_port": int(s.port), "ansible_user": s.user}
    if s.identity_file:
        out["ansible_ssh_private_key_file"] = s.identity_file
    args = []
    if s.known_hosts:
        args.append("-o UserKnownHostsFile=" + shlex.quote(s.known_hosts_path))
    if inv.accept_new_host_keys:
        args.append("-o StrictHostKeyChecking=accept-new")
    if s.proxy_jump:
        args.append("-o ProxyJump=" + shlex.quote(s.proxy_jump))
    if args:
        out["ansible_ssh_common_args"] = " ".join(args)
    out["ansible_ssh_timeout"] = int(max(1, round(float(s.connect_timeout))))
    if s.become and s.user != "root":
        out["ansible_become"] = True
        out["ansible_become_method"] = "sudo"
    for k, v in out.items():
        _check_value(f"{host.name} {k}", v)
    return out


def build(inv: Any, findings: list[Any], planned: list[tuple[Any, Any, str | None]], selected: list[Any],
          hosts_filter: set[str] | None) -> Export:
    """From a scan (its findings) and its plans (`make_plans`), what to export: per host, the remediations bkdoctor
    would apply."""
    by_name: dict[str, HostExport] = {}
    for h in inv.hosts:
        if hosts_filter and h.name not in hosts_filter:
            continue
        conn = connection_vars(h, inv)
        sock = h.docker_socket or inv.docker_socket
        if sock:  # the docker CLI that checks the live registries talks to the same socket as the scan
            conn["bkdoctor_docker_host"] = _check_value(f"{h.name} docker_socket", "unix://" + sock)
        by_name[h.name] = HostExport(h.name, tuple(h.roles), conn)
    not_exported: list[tuple[str, str, str]] = []
    for r in selected:
        if r.scope == "cluster":  # not scanned here: the cluster is bkdoctor's to fix
            not_exported.append((r.id, "-", f"cluster rule: apply with `bkdoctor fix --rule {r.id}`"
                                 if r.remediation else "cluster rule: no automatic fix"))
    for f in findings:  # a check that could not run (unreachable host...): nothing known to fix there
        if f.result.status == "error" and f.target in by_name and not f.suppression:
            not_exported.append((f.rule.id, f.target, f"cannot plan a fix: {f.result.message.en}"))
    used: set[str] = set()
    for f, plan, why in planned:
        he = by_name.get(f.target)
        if he is None:
            continue
        if plan is None:
            if why == "no-remediation":
                not_exported.append((f.rule.id, f.target, "manual: " + "; ".join(f.rule.fix)))
            else:
                not_exported.append((f.rule.id, f.target, f"cannot plan a fix: {why}"))
            continue
        if plan.remediation not in HOST_REMEDIATIONS:
            not_exported.append((f.rule.id, f.target, f"remediation {plan.remediation} is not exported"))
            continue
        if not plan.changes:
            cmds = plan.manual or list(f.rule.fix)
            not_exported.append((f.rule.id, f.target, "manual: " + "; ".join(cmds)))
            continue
        he.flags[flag(plan.remediation)] = True
        he.fixes.append(plan.remediation)
        used.add(plan.remediation)
        if plan.remediation == "kernel-params":
            paths = {c.path for c in plan.changes if isinstance(c, FileChange)}
            if SYSCTL_PATH in paths:
                he.flags["bkdoctor_kernel_params_sysctl_file"] = True
            if MODULES_PATH in paths:
                he.flags["bkdoctor_kernel_params_modules_file"] = True
    ctx = _context(inv, used)
    order = [r for r in HOST_REMEDIATIONS if r in used]
    return Export(list(by_name.values()), order, not_exported, ctx)


def _context(inv: Any, used: set[str]) -> dict[str, Any]:
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
        c["bkdoctor_registry_mirrors"] = sorted(f"http://{h.address}:{port}" for h in inv.hosts
                                                if "registry-proxy" in h.roles)
    if "hosts-file" in used:
        entries = []
        if inv.ingress_ip:
            entries.append({"ip": inv.ingress_ip,
                            "names": [f"{p}.{inv.domain}" if p else inv.domain for p in th["hosts_names"]]})
        api = engine.first_master(inv)
        if api:
            entries.append({"ip": api, "names": list(th["hosts_extra_names"])})
        for e in entries:
            for v in [e["ip"], *e["names"]]:
                if not v or any(ch.isspace() or ch == "#" for ch in v):
                    raise BadInput(f"refusing to write {v!r} into /etc/hosts")
        c["bkdoctor_hosts_entries"] = entries
        c["bkdoctor_hosts_marker_begin"] = BEGIN[2:]
        c["bkdoctor_hosts_marker_end"] = END[2:]
    if "timezone" in used:
        tz = str(th["timezone"])
        if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", tz):
            raise BadInput(f"refusing to export time zone {tz!r}")
        c["bkdoctor_timezone"] = tz
    if "kernel-params" in used:
        c["bkdoctor_sysctl_keys"] = list(SYSCTL_KEYS)
        c["bkdoctor_sysctl_conf"] = sysctl_file({k: "1" for k in SYSCTL_KEYS})
        c["bkdoctor_modules_conf"] = modules_file(["br_netfilter"])
    if "localpv-dirs" in used:
        c["bkdoctor_localpv_mount_dir"] = str(th["localpv_mount_dir"]).rstrip("/")
        c["bkdoctor_localpv_source_dir"] = str(th["localpv_source_dir"]).rstrip("/")
        c["bkdoctor_localpv_vols"] = [f"vol{i:02d}" for i in range(1, int(th["localpv_count"]) + 1)]
        for k in ("bkdoctor_localpv_mount_dir", "bkdoctor_localpv_source_dir"):
            if not c[k].startswith("/") or any(ch.isspace() for ch in c[k]):
                raise BadInput(f"refusing to export {k} {c[k]!r}: an absolute path without blanks is needed")
    return c


# -- inventory.ini -----------------------------------------------------------------------------------
def _ini_value(v: Any) -> str:
    """One `key=value` value as Ansible's INI parser reads it back exactly: it shlex-splits the line, then
    `ast.literal_eval`s each value. A string is written as a quoted Python literal inside double quotes, so
    that it stays a string ('22' is not an int, 'True' not a bool) whatever it contains."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    lit = repr(str(v))
    return '"' + lit.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_inventory(exp: Export, source: str) -> str:
    lines = [
        "# Written by `bkdoctor fix --export ansible` from " + (source or "this host") + ".",
        "# Connection settings come from the bkdoctor inventory's ssh settings. bkdoctor_fix_<remediation>=True marks",
        "# what bkdoctor's scan found to fix on that host: only those tasks of site.yml run there.",
        "# 由 bkdoctor fix --export ansible 生成；bkdoctor_fix_*=True 表示该主机需要的修复，",
        "# site.yml 只在这些主机上执行对应任务。",
        "# Strings are quoted Python literals (\"'22'\"): Ansible's INI parser reads them back exactly, as strings.",
        "",
        "[bkdoctor]",
    ]
    for h in exp.hosts:
        vars_ = {**h.conn, **h.flags}
        lines.append(" ".join([h.name] + [f"{k}={_ini_value(v)}" for k, v in vars_.items()]))
    roles: dict[str, list[str]] = {}
    for h in exp.hosts:
        for r in h.roles:
            roles.setdefault(group_name(r), []).append(h.name)
    for g in sorted(roles):
        lines += ["", f"[{g}]", *roles[g]]
    return "\n".join(lines) + "\n"


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


def _on(rem: str) -> str:
    return f"{flag(rem)} | default(false) | bool"


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

HANDLERS = """\
  handlers:
    # SIGHUP: insecure-registries and registry-mirrors apply live, containers keep running
    - name: reload dockerd
      ansible.builtin.shell: !unsafe '@RELOAD@'
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

TASKS: dict[str, str] = {}

TASKS["swap"] = """
    # --- swap: swapoff -a, comment out the swap lines of /etc/fstab (UUID=, LABEL=, /dev/mapper, tabs kept)
    - name: "swap | active swap areas, /etc/fstab"
      ansible.builtin.shell: echo "active=$(tail -n +2 /proc/swaps | grep -c .)"; if [ -f /etc/fstab ]; then echo fstab; fi
      register: bkdoctor_swap_now
      changed_when: false
      failed_when: false
      check_mode: false
      when: @ON@

    - name: "swap | swapoff -a"
      ansible.builtin.command: swapoff -a
      changed_when: true
      when:
        - @ON@
        - "'active=0' not in bkdoctor_swap_now.stdout_lines"

    - name: "swap | comment out the swap lines of /etc/fstab"
      ansible.builtin.replace:
        path: /etc/fstab
        # a line that is not a comment and whose third field is `swap`
        regexp: '^([ \\t]*[^#\\s][^ \\t\\n]*[ \\t]+[^ \\t\\n]+[ \\t]+swap(?:[ \\t][^\\n]*)?)$'
        replace: '#\\1'
        backup: true
      when:
        - @ON@
        - "'fstab' in bkdoctor_swap_now.stdout_lines"
"""

TASKS["selinux"] = """
    # --- selinux: permissive now, SELINUX=disabled in the config (a reboot completes it). No `selinux` module:
    # it needs the libselinux Python bindings on the host.
    - name: "selinux | runtime mode, /etc/selinux/config"
      ansible.builtin.shell: echo "enforce=$(cat /sys/fs/selinux/enforce 2>/dev/null)"; if [ -f /etc/selinux/config ]; then echo config; fi
      register: bkdoctor_selinux_now
      changed_when: false
      failed_when: false
      check_mode: false
      when: @ON@

    - name: "selinux | setenforce 0"
      ansible.builtin.shell: if command -v setenforce >/dev/null 2>&1; then setenforce 0; else echo 0 > /sys/fs/selinux/enforce; fi
      changed_when: true
      when:
        - @ON@
        - "'enforce=1' in bkdoctor_selinux_now.stdout_lines"

    - name: "selinux | every SELINUX= line that is not disabled"
      ansible.builtin.replace:
        path: /etc/selinux/config
        regexp: '^[ \\t]*SELINUX[ \\t]*=(?![ \\t]*["'']?disabled["'']?[ \\t]*(?:#[^\\n]*)?$)[^\\n]*$'
        replace: SELINUX=disabled
        backup: true
      when:
        - @ON@
        - "'config' in bkdoctor_selinux_now.stdout_lines"

    - name: "selinux | SELINUX=disabled in /etc/selinux/config"
      ansible.builtin.lineinfile:
        path: /etc/selinux/config
        regexp: '^[ \\t]*SELINUX[ \\t]*='
        line: SELINUX=disabled
        backup: true
      when:
        - @ON@
        - "'config' in bkdoctor_selinux_now.stdout_lines"
"""

TASKS["firewall"] = """
    # --- firewall: stop and disable firewalld only; iptables rules are never flushed (review them by hand)
    - name: "firewall | firewalld unit"
      ansible.builtin.command: systemctl list-unit-files --no-legend --no-pager firewalld.service
      register: bkdoctor_firewalld_unit
      changed_when: false
      failed_when: false
      check_mode: false
      when:
        - @ON@
        - bkdoctor_systemd

    - name: "firewall | stop and disable firewalld"
      ansible.builtin.systemd:
        name: firewalld
        state: stopped
        enabled: false
      when:
        - @ON@
        - bkdoctor_systemd
        - "'firewalld' in bkdoctor_firewalld_unit.stdout | default('')"

    - name: "firewall | stop firewalld, not started at boot (no systemd: by its pid file)"
      ansible.builtin.shell: |
        p=$(cat /var/run/firewalld.pid 2>/dev/null)
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
          kill "$p" || exit 1
          for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
          echo stopped
        fi
        for l in /etc/systemd/system/multi-user.target.wants/firewalld.service /etc/systemd/system/basic.target.wants/firewalld.service; do
          if [ -e "$l" ] || [ -L "$l" ]; then rm -f "$l" && echo "removed $l"; fi
        done
        true
      register: bkdoctor_firewalld_kill
      changed_when: bkdoctor_firewalld_kill.stdout | length > 0
      when:
        - @ON@
        - not bkdoctor_systemd
"""

TASKS["timezone"] = """
    # --- timezone: /etc/localtime -> the zone (what timedatectl set-timezone does; no community.general needed)
    - name: "timezone | zone file present"
      ansible.builtin.stat:
        path: "/usr/share/zoneinfo/{{ bkdoctor_timezone }}"
      register: bkdoctor_zoneinfo
      check_mode: false
      when: @ON@

    - name: "timezone | zone file missing"
      ansible.builtin.fail:
        msg: "/usr/share/zoneinfo/{{ bkdoctor_timezone }} does not exist (yum install tzdata)"
      when:
        - @ON@
        - not bkdoctor_zoneinfo.stat.exists

    - name: "timezone | /etc/localtime -> {{ bkdoctor_timezone }}"
      ansible.builtin.file:
        src: "../usr/share/zoneinfo/{{ bkdoctor_timezone }}"
        dest: /etc/localtime
        state: link
        force: true
      when: @ON@
"""

TASKS["time-sync"] = """
    # --- time-sync: enable and start an installed chronyd (systemd hosts; elsewhere bkdoctor says `manual`)
    - name: "time-sync | enable and start chronyd"
      ansible.builtin.systemd:
        name: chronyd
        state: started
        enabled: true
      when:
        - @ON@
        - bkdoctor_systemd
"""

TASKS["kernel-params"] = """
    # --- kernel-params: bkdoctor-owned sysctl.d and modules-load.d files, applied live
    - name: "kernel-params | persist the sysctls"
      ansible.builtin.copy:
        dest: /etc/sysctl.d/90-bkdoctor.conf
        content: "{{ bkdoctor_sysctl_conf }}"
        mode: "0644"
        backup: true
      when:
        - @ON@
        - bkdoctor_kernel_params_sysctl_file | default(false) | bool

    - name: "kernel-params | load br_netfilter at boot"
      ansible.builtin.copy:
        dest: /etc/modules-load.d/bkdoctor.conf
        content: "{{ bkdoctor_modules_conf }}"
        mode: "0644"
        backup: true
      when:
        - @ON@
        - bkdoctor_kernel_params_modules_file | default(false) | bool

    - name: "kernel-params | runtime values"
      ansible.builtin.shell: |
        for k in $BKD_KEYS; do
          f=/proc/sys/$(echo "$k" | tr . /)
          if [ -r "$f" ]; then echo "$k=$(cat "$f")"; else echo "$k=absent"; fi
        done
      environment:
        BKD_KEYS: "{{ bkdoctor_sysctl_keys | join(' ') }}"
      register: bkdoctor_sysctl_now
      changed_when: false
      check_mode: false
      when: @ON@

    - name: "kernel-params | modprobe br_netfilter"
      ansible.builtin.command: modprobe br_netfilter
      changed_when: true
      when:
        - @ON@
        - "'net.bridge.bridge-nf-call-iptables=absent' in bkdoctor_sysctl_now.stdout_lines"

    - name: "kernel-params | apply the values now"
      ansible.builtin.command:
        argv: "{{ ['sysctl', '-w'] + (bkdoctor_sysctl_keys | map('regex_replace', '$', '=1') | list) }}"
      changed_when: true
      when:
        - @ON@
        - bkdoctor_sysctl_now.stdout_lines | reject('match', '.*=1$') | list | length > 0
"""

# insecure-registries and registry-mirrors edit the same file: one read, one write, one reload for both.
DOCKER = """
    # --- insecure-registries / registry-mirrors: add the entries to /etc/docker/daemon.json (every other key
    # and its order kept; a file that does not parse is never touched), reload dockerd (SIGHUP), verify live
    - name: "docker | read /etc/docker/daemon.json"
      ansible.builtin.slurp:
        src: /etc/docker/daemon.json
      register: bkdoctor_daemon_json_raw
      failed_when: false
      when: bkdoctor_docker_add | length > 0

    # (the text is never stored in a variable: Ansible would turn a string that looks like JSON into a dict)
    - name: "docker | parse it"
      ansible.builtin.set_fact:
        bkdoctor_daemon_json_old: "{{ {} if ((bkdoctor_daemon_json_raw.content | default('') | b64decode) | trim) == '' else ((bkdoctor_daemon_json_raw.content | default('') | b64decode) | from_json) }}"
      when: bkdoctor_docker_add | length > 0

    - name: "docker | daemon.json can be edited safely"
      ansible.builtin.assert:
        that:
          - bkdoctor_daemon_json_old is mapping
          - bkdoctor_daemon_json_bad | length == 0
        fail_msg: "/etc/docker/daemon.json: not a JSON object, or {{ bkdoctor_daemon_json_bad | join(', ') }} not a list; not touching it"
        quiet: true
      when: bkdoctor_docker_add | length > 0

    - name: "docker | what is missing"
      ansible.builtin.set_fact:
        bkdoctor_daemon_json_new: "{{ bkdoctor_daemon_json_added }}"
      when: bkdoctor_docker_add | length > 0

    - name: "docker | write /etc/docker/daemon.json"
      ansible.builtin.copy:
        dest: /etc/docker/daemon.json
        # a one-line file stays one line; otherwise the file's own indentation (4 when it has none). One
        # expression ending in `| string`, here and not in a variable: Ansible turns a text that looks like JSON
        # into a dict otherwise (and would write it back compact).
        content: >-
          {%- set text = bkdoctor_daemon_json_raw.content | default('') | b64decode -%}
          {%- set ind = ((text | regex_findall('\\n([ \\t]+)"')) + ['    '])[0] | regex_replace('\\t', '    ') -%}
          {{ (((bkdoctor_daemon_json_new | to_json(ensure_ascii=False))
               if ((text | trim) != '' and bkdoctor_nl not in (text | trim))
               else (bkdoctor_daemon_json_new | to_nice_json(indent=(ind | length), sort_keys=False, ensure_ascii=False)))
              ~ bkdoctor_nl) | string }}
        mode: "0644"
        backup: true
        # the host's own Python (the one running this module) checks the JSON before it replaces the file
        validate: "{{ bkdoctor_python }} -m json.tool %s"
      when:
        - bkdoctor_docker_add | length > 0
        - bkdoctor_daemon_json_new | length > 0
      notify: reload dockerd

    - name: "docker | registries the running daemon uses"
      ansible.builtin.command:
        argv: [docker, info, --format, !unsafe '{{json .RegistryConfig}}']
      environment: "{{ {'DOCKER_HOST': bkdoctor_docker_host} if bkdoctor_docker_host is defined else {} }}"
      register: bkdoctor_docker_live
      changed_when: false
      failed_when: false
      check_mode: false
      when: bkdoctor_docker_add | length > 0

    - name: "docker | the running daemon lacks them: reload it"
      ansible.builtin.debug:
        msg: "dockerd will be reloaded (SIGHUP, containers keep running)"
      changed_when: true
      notify: reload dockerd
      when:
        - bkdoctor_docker_add | length > 0
        - bkdoctor_docker_live.rc | default(1) == 0
        - bkdoctor_docker_missing_live | length > 0

    - name: "docker | reload now"
      ansible.builtin.meta: flush_handlers

    - name: "docker | the running daemon uses them"
      ansible.builtin.command:
        argv: [docker, info, --format, !unsafe '{{json .RegistryConfig}}']
      environment: "{{ {'DOCKER_HOST': bkdoctor_docker_host} if bkdoctor_docker_host is defined else {} }}"
      register: bkdoctor_docker_live
      changed_when: false
      until: bkdoctor_docker_missing_live | length == 0
      retries: 10
      delay: 1
      when:
        - bkdoctor_docker_add | length > 0
        - not ansible_check_mode
        - bkdoctor_docker_live.rc | default(1) == 0
"""

# what bkdoctor_docker_add / bkdoctor_docker_missing_live evaluate to (play vars: templated per host, lazily)
DOCKER_VARS = """\
    bkdoctor_docker_add: >-
      {{ ({'insecure-registries': bkdoctor_insecure_registries} if (@ON_IR@) else {})
         | combine({'registry-mirrors': bkdoctor_registry_mirrors} if (@ON_RM@) else {}) }}
    bkdoctor_docker_missing_live: >-
      {%- set rc = (bkdoctor_docker_live.stdout | default('{}', true) | from_json) or {} -%}
      {%- set insecure = (rc.IndexConfigs | default({}, true) | dict2items | selectattr('value.Secure', 'defined')
                          | rejectattr('value.Secure') | map(attribute='key') | list) -%}
      {%- set mirrors = (rc.Mirrors | default([], true) | map('regex_replace', '/+$', '') | list) -%}
      {%- set ns = namespace(missing=[]) -%}
      {%- for v in bkdoctor_docker_add['insecure-registries'] | default([]) -%}
      {%-   if v not in insecure %}{% set ns.missing = ns.missing + [v] %}{% endif -%}
      {%- endfor -%}
      {%- for v in bkdoctor_docker_add['registry-mirrors'] | default([]) -%}
      {%-   if (v | regex_replace('/+$', '')) not in mirrors %}{% set ns.missing = ns.missing + [v] %}{% endif -%}
      {%- endfor -%}
      {{ ns.missing }}
    bkdoctor_python: >-
      {{ ansible_python_interpreter if (ansible_python_interpreter is defined and not ansible_python_interpreter.startswith('auto'))
         else (discovered_interpreter_python | default('python')) }}
    # entries of daemon.json to extend that are there and are not lists (then the file is not touched)
    bkdoctor_daemon_json_bad: >-
      {%- set ns = namespace(bad=[]) -%}
      {%- for key in bkdoctor_docker_add -%}
      {%-   set v = bkdoctor_daemon_json_old[key] if (bkdoctor_daemon_json_old is mapping and key in bkdoctor_daemon_json_old) else none -%}
      {%-   if v is not none and (v is string or v is mapping or v is not sequence) %}{% set ns.bad = ns.bad + [key] %}{% endif -%}
      {%- endfor -%}
      {{ ns.bad }}
    # daemon.json with the missing entries appended to their lists (every other key and the order kept); {} when
    # nothing is missing (edits.daemon_json_add, in Jinja)
    bkdoctor_daemon_json_added: >-
      {%- set ns = namespace(d=bkdoctor_daemon_json_old, missing=0) -%}
      {%- for key, want in bkdoctor_docker_add.items() -%}
      {%-   set cur = ns.d[key] if (key in ns.d and ns.d[key] is not none) else [] -%}
      {%-   set add = want | reject('in', cur) | list -%}
      {%-   set ns.missing = ns.missing + (add | length) -%}
      {%-   set ns.d = ns.d | combine({key: cur + add}) -%}
      {%- endfor -%}
      {{ ns.d if ns.missing else {} }}
"""

TASKS["hosts-file"] = """
    # --- hosts-file: the BlueKing names in bkdoctor's marked block of /etc/hosts; a line that points one of
    # these names elsewhere is commented out (its other names kept on a line of their own), others untouched
    - name: "hosts-file | read /etc/hosts"
      ansible.builtin.slurp:
        src: /etc/hosts
      register: bkdoctor_etc_hosts_raw
      failed_when: false
      when: @ON@

    - name: "hosts-file | comment out the lines that point these names elsewhere"
      ansible.builtin.copy:
        dest: /etc/hosts
        content: "{{ bkdoctor_etc_hosts_cleaned | string }}"
        backup: true
      when:
        - @ON@
        - "'content' in bkdoctor_etc_hosts_raw"
        - bkdoctor_etc_hosts_cleaned != (bkdoctor_etc_hosts_raw.content | b64decode)

    - name: "hosts-file | the BlueKing names in the marked block"
      ansible.builtin.blockinfile:
        path: /etc/hosts
        create: true
        mode: "0644"
        marker: "# {mark}"
        marker_begin: "{{ bkdoctor_hosts_marker_begin }}"
        marker_end: "{{ bkdoctor_hosts_marker_end }}"
        block: "{{ bkdoctor_hosts_block }}"
        backup: true
      when: @ON@
"""

HOSTS_VARS = """\
    bkdoctor_hosts_block: >-
      {%- for e in bkdoctor_hosts_entries -%}
      {{ e.ip ~ ' ' ~ (e.names | join(' ')) ~ ('' if loop.last else bkdoctor_nl) }}
      {%- endfor -%}
    bkdoctor_hosts_want: >-
      {%- set ns = namespace(d={}) -%}
      {%- for e in bkdoctor_hosts_entries -%}{%- for n in e.names -%}
      {%-   set ns.d = ns.d | combine({n | lower: e.ip}) -%}
      {%- endfor -%}{%- endfor -%}
      {{ ns.d }}
    # /etc/hosts with every line outside bkdoctor's block that names one of ours commented out (`# bkdoctor: `;
    # the block has them now), its other names moved to a line of their own; no line dropped; every other line
    # byte-identical (edits.hosts_set, in Jinja)
    bkdoctor_etc_hosts_cleaned: >-
      {%- set ns = namespace(out=[], inblock=false) -%}
      {%- for line in (bkdoctor_etc_hosts_raw.content | b64decode).split(bkdoctor_nl) -%}
      {%-   set s = line | trim -%}
      {%-   set body = line.split('#', 1)[0].split() -%}
      {%-   if s == '# ' ~ bkdoctor_hosts_marker_begin -%}
      {%-     set ns.inblock = true -%}{%- set ns.out = ns.out + [line] -%}
      {%-   elif ns.inblock -%}
      {%-     if s == '# ' ~ bkdoctor_hosts_marker_end %}{% set ns.inblock = false %}{% endif -%}
      {%-     set ns.out = ns.out + [line] -%}
      {%-   elif body | length >= 2 and not s.startswith('#') -%}
      {%-     set lk = namespace(ours=[], rest=[], conflict=false) -%}
      {%-     for n in body[1:] -%}
      {%-       if (n | lower) in bkdoctor_hosts_want -%}
      {%-         set lk.ours = lk.ours + [n] -%}
      {%-         if bkdoctor_hosts_want[n | lower] != body[0] %}{% set lk.conflict = true %}{% endif -%}
      {%-       else -%}{%- set lk.rest = lk.rest + [n] -%}{%- endif -%}
      {%-     endfor -%}
      {%-     if lk.ours | length == 0 -%}{%- set ns.out = ns.out + [line] -%}
      {%-     else -%}
      {%-       set ns.out = ns.out + ['# bkdoctor: ' ~ line] -%}
      {%-       if lk.rest | length > 0 %}{% set ns.out = ns.out + [body[0] ~ ' ' ~ (lk.rest | join(' '))] %}{% endif -%}
      {%-     endif -%}
      {%-   else -%}{%- set ns.out = ns.out + [line] -%}
      {%-   endif -%}
      {%- endfor -%}
      {{ ns.out | join(bkdoctor_nl) }}
"""

TASKS["localpv-dirs"] = """
    # --- localpv-dirs: vol01..volNN and their sources, the fstab bind lines, mounted
    - name: "localpv-dirs | what is missing"
      ansible.builtin.shell: |
        for v in $BKD_VOLS; do
          for d in "$BKD_DST/$v" "$BKD_SRC/$v"; do [ -d "$d" ] || echo "dir $d"; done
        done
        [ -f /etc/fstab ] && awk '{ sub(/#.*/, "") } NF >= 2 { m = $2; sub(/\\/+$/, "", m); print "fstab " m }' /etc/fstab
        for v in $BKD_VOLS; do mountpoint -q "$BKD_DST/$v" || echo "unmounted $BKD_DST/$v"; done
        true
      environment:
        BKD_VOLS: "{{ bkdoctor_localpv_vols | join(' ') }}"
        BKD_DST: "{{ bkdoctor_localpv_mount_dir }}"
        BKD_SRC: "{{ bkdoctor_localpv_source_dir }}"
      register: bkdoctor_localpv
      changed_when: false
      check_mode: false
      when: @ON@

    - name: "localpv-dirs | directories"
      ansible.builtin.command:
        argv: "{{ ['mkdir', '-p', '--'] + (bkdoctor_localpv.stdout_lines | select('match', 'dir ') | map('regex_replace', '^dir ', '') | list) }}"
      changed_when: true
      when:
        - @ON@
        - bkdoctor_localpv.stdout_lines | select('match', 'dir ') | list | length > 0

    - name: "localpv-dirs | read /etc/fstab"
      ansible.builtin.slurp:
        src: /etc/fstab
      register: bkdoctor_localpv_fstab
      failed_when: false
      when:
        - @ON@
        - bkdoctor_localpv_fstab_add | length > 0

    - name: "localpv-dirs | fstab bind lines (appended; a mount point already in fstab is left as it is)"
      ansible.builtin.copy:
        dest: /etc/fstab
        content: >-
          {%- set text = bkdoctor_localpv_fstab.content | default('') | b64decode -%}
          {{ (text ~ ('' if (text == '' or text.endswith(bkdoctor_nl)) else bkdoctor_nl)
              ~ (bkdoctor_localpv_fstab_add | join(bkdoctor_nl)) ~ bkdoctor_nl) | string }}
        mode: "0644"
        backup: true
      when:
        - @ON@
        - bkdoctor_localpv_fstab_add | length > 0

    - name: "localpv-dirs | mounted (from fstab)"
      ansible.builtin.shell: |
        for d in $BKD_UNMOUNTED; do mountpoint -q "$d" || mount "$d" || exit 1; done
      environment:
        BKD_UNMOUNTED: "{{ bkdoctor_localpv.stdout_lines | select('match', 'unmounted ') | map('regex_replace', '^unmounted ', '') | join(' ') }}"
      changed_when: true
      when:
        - @ON@
        - bkdoctor_localpv.stdout_lines | select('match', 'unmounted ') | list | length > 0
"""


LOCALPV_VARS = """\
    # the bind lines whose mount point is not in /etc/fstab yet (edits.add_fstab_lines)
    bkdoctor_localpv_fstab_add: >-
      {%- set ns = namespace(add=[]) -%}
      {%- for v in bkdoctor_localpv_vols -%}
      {%-   if ('fstab ' ~ bkdoctor_localpv_mount_dir ~ '/' ~ v) not in bkdoctor_localpv.stdout_lines -%}
      {%-     set ns.add = ns.add + [bkdoctor_localpv_source_dir ~ '/' ~ v ~ ' ' ~ bkdoctor_localpv_mount_dir ~ '/' ~ v ~ ' none defaults,bind 0 0'] -%}
      {%-   endif -%}
      {%- endfor -%}
      {{ ns.add }}
"""


def render_site(exp: Export) -> str:
    used = set(exp.remediations)
    docker = bool(used & {"insecure-registries", "registry-mirrors"})
    vars_ = {k: _unsafe(v) for k, v in exp.context.items()}
    # registries a role-less host would need are still defined (empty) so the Jinja below is total
    if docker:
        vars_.setdefault("bkdoctor_insecure_registries", [])
        vars_.setdefault("bkdoctor_registry_mirrors", [])
    var_text = ""
    if vars_:
        dumped = yaml.dump(vars_, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                           width=1000)
        var_text += "".join("    " + line + "\n" for line in dumped.splitlines())
    if docker:
        var_text += DOCKER_VARS.replace("@ON_IR@", _on("insecure-registries")).replace("@ON_RM@", _on("registry-mirrors"))
    if "hosts-file" in used:
        var_text += HOSTS_VARS
    if "localpv-dirs" in used:
        var_text += LOCALPV_VARS
    # Jinja in a playbook reads '\\n' as a backslash and an n (Ansible escapes backslashes): a newline is a variable
    var_text = '    bkdoctor_nl: "\\n"\n' + var_text
    out = [HEAD, "  vars:\n" + var_text]
    if docker:
        out.append(HANDLERS.replace("@RELOAD@", DOCKER_RELOAD.replace("'", "''")))
    out.append(PRELUDE)
    for rem in exp.remediations:
        if rem in ("insecure-registries", "registry-mirrors"):
            continue
        out.append(TASKS[rem].replace("@ON@", _on(rem)))
    if docker:
        out.append(DOCKER)
    return "".join(out)


# -- README.md ---------------------------------------------------------------------------------------
def render_readme(exp: Export, source: str, outdir: str = "<this directory>", rules: tuple[str, ...] = ()) -> str:
    rows = "\n".join(f"| `{h.name}` | {', '.join(h.roles)} | {', '.join(f'`{r}`' for r in h.fixes) or '-'} |"
                     for h in exp.hosts)
    one = exp.hosts[0].name if exp.hosts else "HOST"
    recheck = "bkdoctor scan" + (f" -i {shlex.quote(source)}" if source else "") + "".join(
        f" --rule {shlex.quote(r)}" for r in rules)
    skipped = "\n".join(f"- `{rule}` @ `{target}`: {why}" for rule, target, why in exp.not_exported) or "- (none / 无)"
    return f"""# bkdoctor → Ansible

Written by `bkdoctor fix --export ansible` from `{source or 'this host'}` on {dt.date.today().isoformat()}.
由 `bkdoctor fix --export ansible` 生成。

## What it does / 内容

| host | roles | remediations |
|---|---|---|
{rows}

`site.yml` applies the same host remediations as `bkdoctor fix`, with ansible-core's builtin modules only
(`ansible.builtin.*`, no collection to install). A task runs on a host only when `inventory.ini` sets its
`bkdoctor_fix_<remediation>=True` there, i.e. when bkdoctor's scan found it needed. Every task is idempotent:
run it twice, the second run reports `changed=0`. Edited files are backed up next to themselves
(`<file>.<pid>.<date>~`).

`site.yml` 只使用 ansible-core 内置模块（`ansible.builtin.*`），执行与 `bkdoctor fix` 相同的主机修复。
只有 `inventory.ini` 中标记了 `bkdoctor_fix_<修复项>=True` 的主机才会执行对应任务（即 bkdoctor 扫描发现需要修复）。
所有任务幂等：第二次执行应为 `changed=0`；被修改的文件会在同目录留下备份（`<文件>.<pid>.<日期>~`）。

## Run it / 执行

Needs ansible-core >= 2.15 on the control machine; on the hosts, Python (CentOS 7 has only Python 2.7:
use ansible-core 2.16 or older there, 2.17 needs Python >= 3.7 on the hosts).
控制机需要 ansible-core >= 2.15；目标主机需要 Python（CentOS 7 只有 Python 2.7，请使用 ansible-core 2.16 及以下）。

```sh
pip install 'ansible-core>=2.15,<2.17'
cd {shlex.quote(os.path.abspath(outdir)) if outdir != "<this directory>" else outdir}
export ANSIBLE_PIPELINING=True                               # faster (needs sudo without requiretty when become)
ansible-playbook -i inventory.ini site.yml --check --diff   # preview / 预览（只读检查）
ansible-playbook -i inventory.ini site.yml                  # apply / 执行
ansible-playbook -i inventory.ini site.yml --limit {one}   # one host / 单台主机
{recheck}   # re-check / 复查
```

Host keys are checked like bkdoctor does: against the `known_hosts` of the bkdoctor inventory
(`ansible_ssh_common_args`), so keep Ansible's `host_key_checking` on. A password (`ssh.password_env`) is not
exported: use keys, or `--ask-pass`. Hosts reached through `ssh.become` get `ansible_become=True` (sudo).
主机密钥按 bkdoctor 清单中的 `known_hosts` 校验（请保持 `host_key_checking` 开启）；密码不会导出，请使用密钥或 `--ask-pass`。

Notes / 说明:
- `selinux`: a reboot completes it (`getenforce` then says Disabled). 重启后 SELinux 才完全禁用。
- `insecure-registries` / `registry-mirrors`: dockerd is reloaded with SIGHUP (containers keep running), then
  checked with `docker info`; a daemon.json that does not parse is never touched.
  dockerd 通过 SIGHUP 重新加载（容器不重启）；无法解析的 daemon.json 不会被修改。
- `firewall`: firewalld only; iptables rules are never flushed. 只停止并禁用 firewalld，不清空 iptables。

## Not exported / 未导出

{skipped}
"""


# -- CLI -----------------------------------------------------------------------------------------------
def write(exp: Export, outdir: str, source: str, rules: tuple[str, ...] = ()) -> list[str]:
    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise BadInput(f"--export ansible {outdir}: not a directory")
    d.mkdir(parents=True, exist_ok=True)
    source = "".join(c if c.isprintable() else "?" for c in source)  # it lands in a comment line
    files = {"inventory.ini": render_inventory(exp, source), "site.yml": render_site(exp),
             "README.md": render_readme(exp, source, outdir, rules)}
    from bkdoctor.safe.outfiles import write_atomic

    written = []
    for name, text in files.items():
        p = d / name
        write_atomic(str(p), text)  # umask for a new file, an existing one keeps its mode
        written.append(str(p))
    return written


def _check_outdir(outdir: str) -> None:
    from bkdoctor.safe.outfiles import check_output_path

    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise BadInput(f"--export ansible {outdir}: not a directory")
    if d.is_dir():
        check_output_path(str(d / "site.yml"), "--export ansible")
    else:
        check_output_path(str(d), "--export ansible")  # its parent must take a new directory


def export_cli(export: tuple[str, str], *, rules: tuple[str, ...], hosts: tuple[str, ...], inventory: str | None,
               domain: str | None, install_dir: str | None, accept_new_host_keys: bool) -> int:
    """Scan like `fix`, then write DIR/inventory.ini, DIR/site.yml and DIR/README.md. Exit code: 0 written,
    1 written but some finding could not be planned (an unreachable host...), 2 bad input."""
    from bkdoctor.scan import engine, loader as registry
    from bkdoctor.fix.loop import make_plans
    from bkdoctor.inputs.inventory import load_inventory, local_inventory

    fmt, outdir = export
    if fmt != "ansible":
        raise BadInput(f"--export {fmt!r}: only `--export ansible DIR` is supported")
    selected = registry.select(list(rules), None)
    inv = load_inventory(inventory) if inventory else local_inventory(domain, install_dir)
    if domain:
        inv.domain, inv.domain_source = domain, "--domain"
    inv.accept_new_host_keys = accept_new_host_keys
    unknown = set(hosts) - {h.name for h in inv.hosts}
    if unknown:
        raise BadInput(f"--host {sorted(unknown)[0]!r} is not in the inventory")
    for h in inv.hosts:  # refuse what cannot be exported before spending a scan on it
        if not hosts or h.name in hosts:
            connection_vars(h, inv)
    _check_outdir(outdir)  # before the scan: a typo must not cost one
    host_rules = [r for r in selected if r.scope in ("host", "fleet")]
    result = asyncio.run(engine.scan(inv, host_rules))
    planned = make_plans(result, inv, set(hosts) or None)
    exp = build(inv, result.findings, planned, selected, set(hosts) or None)
    source = os.path.abspath(inv.path) if inv.path else ""
    written = write(exp, outdir, source, tuple(rules))
    from bkdoctor.safe.terminal import clean

    for h in exp.hosts:
        print(clean(f"{h.name}: {', '.join(h.fixes) if h.fixes else 'nothing to fix'}"))
    for rule, target, why in exp.not_exported:
        print(clean(f"not exported: {rule} @ {target}: {why}"))
    print(clean("wrote " + ", ".join(written)))
    print(clean(f"run: ansible-playbook -i {shlex.quote(os.path.join(outdir, 'inventory.ini'))} "
          f"{shlex.quote(os.path.join(outdir, 'site.yml'))}"))
    return 1 if any(why.startswith("cannot plan") for _, _, why in exp.not_exported) else 0
