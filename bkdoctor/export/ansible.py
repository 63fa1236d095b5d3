"""`bkdoctor fix --rule SEL --export ansible DIR`: the same host fixes, as an Ansible inventory and playbook.

The scan and the plans are bkdoctor's own (`engine.scan` + `fix.loop.make_plans`, the same selection and
inventory as `fix`). Instead of applying them, this writes:

- DIR/inventory.ini: every host with its connection settings (from the bkdoctor inventory's `ssh:`), grouped
  by role, and per host a `bkdoctor_fix_<remediation>=True` for each remediation bkdoctor planned a change
  for there: only those tasks run on that host.
- DIR/site.yml: one play assembled (`playbook.py`) from the Ansible each host remediation carries beside it,
  `remediations/host/<id>.ansible.yml`: ansible-core's builtin modules only (`ansible.builtin.*`: no collection
  to install), each task idempotent by itself (a second run reports `changed=0`), files edited with `backup: true`.
- DIR/README.md: how to run it (zh and en), and what was not exported (manual steps, cluster fixes).

A planned fix whose remediation has no .ansible.yml is listed as not exported, like manual steps.

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

from bkdoctor.export import playbook
from bkdoctor.fix.plan import FileChange
from bkdoctor.model import BadInput, T

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
        raise BadInput(
            T(
                f"拒绝导出 {what} {v!r}: Ansible 会把它当作模板展开，或其中含有换行符",
                f"refusing to export {what} {v!r}: Ansible would template it or it breaks a line",
            )
        )
    return v


def connection_vars(host: Any, inv: Any) -> dict[str, Any]:
    """ansible_* variables for one host, from the bkdoctor inventory's ssh settings (host's over inventory's)."""
    from bkdoctor.transport.ssh import SSHSettings

    if not _NAME.match(host.name):
        raise BadInput(
            T(
                f"拒绝导出主机名 {host.name!r}: 不是普通的主机名",
                f"refusing to export host name {host.name!r}: not a plain name",
            )
        )
    if host.local or host.address in ("localhost", "127.0.0.1", "::1"):
        return {"ansible_connection": "local"}
    try:
        s = SSHSettings.merged(inv.ssh, host.ssh)
    except (ValueError, TypeError) as e:
        raise BadInput(T(f"主机 {host.name}: SSH 设置有误: {e}", f"host {host.name}: ssh settings: {e}")) from None
    from bkdoctor.safe.names import valid_address, why_not_address

    if not valid_address(host.address):  # ansible_host reaches ssh's command line: never an option
        w = why_not_address(host.address)
        raise BadInput(
            T(f"拒绝导出 {host.name} 的 ansible_host: {w.zh}", f"refusing to export {host.name} ansible_host: {w.en}")
        )
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


def build(
    inv: Any,
    findings: list[Any],
    planned: list[tuple[Any, Any, str | None]],
    selected: list[Any],
    hosts_filter: set[str] | None,
) -> Export:
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
            not_exported.append(
                (
                    r.id,
                    "-",
                    f"cluster rule: apply with `bkdoctor fix --rule {r.id}`"
                    if r.remediation
                    else "cluster rule: no automatic fix",
                )
            )
    for f in findings:  # a check that could not run (unreachable host...): nothing known to fix there
        if f.result.status == "error" and f.target in by_name and not f.suppression:
            not_exported.append((f.rule.id, f.target, f"cannot plan a fix: {f.result.message.en}"))
    pieces = playbook.exportable()
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
        if plan.remediation not in pieces:
            not_exported.append(
                (
                    f.rule.id,
                    f.target,
                    f"remediation {plan.remediation} is not exported (only host "
                    "remediations with a <id>.ansible.yml beside them are)",
                )
            )
            continue
        if not plan.changes:
            cmds = plan.manual or list(f.rule.fix)
            not_exported.append((f.rule.id, f.target, "manual: " + "; ".join(cmds)))
            continue
        he.flags[flag(plan.remediation)] = True
        he.fixes.append(plan.remediation)
        used.add(plan.remediation)
        paths = {c.path for c in plan.changes if isinstance(c, FileChange)}
        for var, path in pieces[plan.remediation].host_flags.items():
            if path in paths:
                he.flags[var] = True
    ctx = playbook.context(inv, used)
    order = [r for r in pieces if r in used]
    return Export(list(by_name.values()), order, [_said(x) for x in not_exported], ctx)


def _said(item: tuple[str, str, str]) -> tuple[str, str, str]:
    """A not-exported line as README.md and the terminal show it: a host's message (an error, a manual step with
    its values) masked like every report, on one line (a newline in it cannot start a Markdown code block)."""
    from bkdoctor.safe.secrets import mask_text
    from bkdoctor.safe.terminal import clean_line

    rule, target, why = item
    return rule, target, clean_line(mask_text(why))


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


# -- README.md ---------------------------------------------------------------------------------------
def render_readme(exp: Export, source: str, outdir: str = "<this directory>", rules: tuple[str, ...] = ()) -> str:
    rows = "\n".join(
        f"| `{h.name}` | {', '.join(h.roles)} | {', '.join(f'`{r}`' for r in h.fixes) or '-'} |" for h in exp.hosts
    )
    one = exp.hosts[0].name if exp.hosts else "HOST"
    recheck = (
        "bkdoctor scan"
        + (f" -i {shlex.quote(source)}" if source else "")
        + "".join(f" --rule {shlex.quote(r)}" for r in rules)
    )
    skipped = "\n".join(f"- `{rule}` @ `{target}`: {why}" for rule, target, why in exp.not_exported) or "- (none / 无)"
    return f"""# bkdoctor → Ansible

Written by `bkdoctor fix --export ansible` from `{source or "this host"}` on {dt.date.today().isoformat()}.
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
        raise BadInput(T(f"--export ansible {outdir}: 不是目录", f"--export ansible {outdir}: not a directory"))
    d.mkdir(parents=True, exist_ok=True)
    source = "".join(c if c.isprintable() else "?" for c in source)  # it lands in a comment line
    files = {
        "inventory.ini": render_inventory(exp, source),
        "site.yml": playbook.render(exp.remediations, exp.context),
        "README.md": render_readme(exp, source, outdir, rules),
    }
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
        raise BadInput(T(f"--export ansible {outdir}: 不是目录", f"--export ansible {outdir}: not a directory"))
    if d.is_dir():
        check_output_path(str(d / "site.yml"), "--export ansible")
    else:
        check_output_path(str(d), "--export ansible")  # its parent must take a new directory


def export_cli(
    export: tuple[str, str],
    *,
    rules: tuple[str, ...],
    hosts: tuple[str, ...],
    inventory: str | None,
    domain: str | None,
    install_dir: str | None,
    accept_new_host_keys: bool,
) -> int:
    """Scan like `fix`, then write DIR/inventory.ini, DIR/site.yml and DIR/README.md. Exit code: 0 written,
    1 written but some finding could not be planned (an unreachable host...), 2 bad input."""
    from bkdoctor.fix.loop import make_plans
    from bkdoctor.inputs.targets import load_inventory_for
    from bkdoctor.scan import engine, loader

    fmt, outdir = export
    if fmt != "ansible":
        raise BadInput(
            T(
                f"--export {fmt!r}: 只支持 `--export ansible DIR`",
                f"--export {fmt!r}: only `--export ansible DIR` is supported",
            )
        )
    selected = loader.select(list(rules), None)
    inv = load_inventory_for(
        inventory, domain=domain, install_dir=install_dir, accept_new_host_keys=accept_new_host_keys
    )
    unknown = set(hosts) - {h.name for h in inv.hosts}
    if unknown:
        raise BadInput(
            T(f"--host {sorted(unknown)[0]!r} 不在清单中", f"--host {sorted(unknown)[0]!r} is not in the inventory")
        )
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
    print(
        clean(
            f"run: ansible-playbook -i {shlex.quote(os.path.join(outdir, 'inventory.ini'))} "
            f"{shlex.quote(os.path.join(outdir, 'site.yml'))}"
        )
    )
    return 1 if any(why.startswith("cannot plan") for _, _, why in exp.not_exported) else 0
