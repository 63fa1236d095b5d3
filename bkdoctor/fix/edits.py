"""Pure text transformations used by the remediations. Each one is idempotent (applying it twice equals
applying it once) and leaves every line it does not own byte-identical. Property tests check both."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any, Callable

from bkdoctor.facts import corefile


class EditError(ValueError):
    """The input cannot be edited safely (it does not parse): the file is left untouched."""


def _split_keep(text: str) -> list[str]:
    """Lines as the programs that read these files see them: ended by "\n" only. str.splitlines() also splits at
    \r, \x85, U+2028…, which would turn the tail of an operator's comment into a live line of ours."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _lines(text: str) -> list[str]:
    """_split_keep without the line ends."""
    return [line[:-1] if line.endswith("\n") else line for line in _split_keep(text)]


_FIELD_SEP = re.compile(r"[ \t\r\v\f]+")


def _fields(s: str) -> list[str]:
    """Fields as glibc splits a hosts/fstab line (ASCII white space only, not \x85 or U+2028)."""
    return [f for f in _FIELD_SEP.split(s) if f]


# -- /etc/fstab --------------------------------------------------------------------------------------
def comment_swap_lines(text: str) -> str:
    """Comment out active swap lines (`#` prepended); UUID=, LABEL=, /dev/mapper, tabs and comments kept."""
    out = []
    for line in _split_keep(text):
        s = line.strip()
        if s and not s.startswith("#"):
            parts = s.split()
            if len(parts) >= 3 and parts[2] == "swap":
                line = "#" + line
        out.append(line)
    return "".join(out)


def add_fstab_lines(text: str, lines: list[str]) -> str:
    """Append lines whose mount point is not in fstab yet (mount point compared, not the whole line)."""
    have = set()
    for line in _lines(text):
        p = _fields(line.split("#", 1)[0])
        if len(p) >= 2:
            have.add(p[1].rstrip("/"))
    add = [l for l in lines if l.split()[1].rstrip("/") not in have]
    if not add:
        return text
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + "".join(l + "\n" for l in add)


# -- /etc/selinux/config -----------------------------------------------------------------------------
def set_selinux_disabled(text: str) -> str:
    """`SELINUX=disabled`. The line it replaces stays, commented out (`# bkdoctor: <line>`, as in /etc/hosts and the
    Corefile: the operator's inline comment with it), and the new line ends as that one did (a CR kept)."""
    lines = _split_keep(text)
    found = False
    for i, line in enumerate(lines):
        if re.match(r"^\s*SELINUX\s*=", line):
            nl = "\n" if line.endswith("\n") else ""
            if not found:
                value = line.split("=", 1)[1].split("#", 1)[0].strip().strip('"').strip("'").lower()
                if value != "disabled":
                    cr = "\r" if line[: len(line) - len(nl)].endswith("\r") else ""
                    lines[i] = "# bkdoctor: " + line + ("" if nl else "\n") + "SELINUX=disabled" + cr + nl
                found = True
            else:
                lines[i] = "#" + line  # a second SELINUX= line would win: neutralise it
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append("SELINUX=disabled\n")
    return "".join(lines)


# -- /etc/docker/daemon.json -------------------------------------------------------------------------
def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> OrderedDict:
    seen = OrderedDict()
    for k, v in pairs:
        if k in seen:
            # dockerd refuses such a file, and rewriting it would keep one of the two: the other would be lost
            raise EditError(f"daemon.json: the key {k[:80]!r} appears twice; fix it by hand, not touching it")
        seen[k] = v
    return seen


def _float_kept(s: str) -> float:
    v = float(s)
    if v != v or v in (float("inf"), float("-inf")) or repr(v) != s:
        # 1e400 would be written as Infinity (not JSON); 1e5 as 100000.0: the operator's text would change
        raise EditError(
            f"daemon.json: the number {s[:40]} would not be written back as it is; fix it by hand, not touching it"
        )
    return v


def _int_kept(s: str) -> int:
    v = int(s)
    if str(v) != s:  # -0
        raise EditError(f"daemon.json: the number {s[:40]} would not be written back as it is; not touching it")
    return v


def _no_constant(s: str) -> Any:
    raise EditError(f"daemon.json: {s} is not JSON (dockerd refuses it); fix it by hand, not touching it")


def daemon_json_add(text: str, key: str, values: list[str], same: Callable[[str], str] = lambda v: v) -> str:
    """Add missing values to a list key of daemon.json, keeping every other key, their order and values. A value is
    there when an entry equals it by `same` (registry-mirrors: `http://x:5500/` is `http://x:5500`).

    A file that does not parse as JSON (comments, trailing commas) raises EditError: it is never touched."""
    if text.strip() == "":
        data: Any = OrderedDict()
    else:
        try:
            data = json.loads(
                text,
                object_pairs_hook=_pairs_no_duplicates,
                parse_float=_float_kept,
                parse_int=_int_kept,
                parse_constant=_no_constant,
            )
        except json.JSONDecodeError as e:
            raise EditError(
                f"daemon.json is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); not touching it"
            ) from None
        except EditError:
            raise
        except (ValueError, RecursionError) as e:  # an int of more digits than Python converts; too deep
            raise EditError(f"daemon.json: {str(e)[:200] or 'cannot be read'}; not touching it") from None
    if not isinstance(data, dict):
        raise EditError("daemon.json: the top level is not a JSON object; not touching it")
    cur = data.get(key)
    if cur is None:
        cur = []
    if not isinstance(cur, list):
        raise EditError(f"daemon.json: {key!r} is not a list; not touching it")
    have = {same(c) for c in cur if isinstance(c, str)}
    missing = [v for v in values if same(v) not in have]
    if not missing:
        return text
    data[key] = list(cur) + missing
    if text.strip() and "\n" not in text.strip():
        out = json.dumps(data, ensure_ascii=False) + "\n"  # a one-line file stays one line
    else:
        indent = 4
        m = re.search(r'\n([ \t]+)"', text)
        if m:
            indent = len(m.group(1).expandtabs(4))
        out = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" without its pair: dockerd reads it, but written back unescaped it is no UTF-8 (and escaping every
        # other non-ASCII character to keep it would change the operator's text)
        raise EditError(
            "daemon.json: a \\uD800-\\uDFFF escape without its pair (a lone surrogate) cannot be written back as "
            "it is; fix it by hand, not touching it"
        ) from None
    return out


# -- /etc/hosts --------------------------------------------------------------------------------------
BEGIN = "# BEGIN bkdoctor: BlueKing names"
END = "# END bkdoctor"


def hosts_set(text: str, entries: list[tuple[str, list[str]]]) -> str:
    """Point each (ip, names) entry's names at its ip. Our lines live in a marked block (rewritten as a whole);
    every other line that names one of these names is commented out (kept, visibly: `# bkdoctor: <line>`), with
    its other names moved to a line of its own; every other line stays byte-identical. No line the operator
    wrote is ever dropped: a block that starts and never ends (a half-edited file) is refused (EditError)."""
    for ip, _names in entries:
        _only_ip(ip, "hosts file")
    want = {n.lower(): ip for ip, names in entries for n in names}
    out: list[str] = []
    in_block = False
    begin_at = 0
    for n, line in enumerate(_split_keep(text), 1):
        s = line.strip()
        if s == BEGIN:
            if in_block:
                raise EditError(
                    f"line {n}: a second '{BEGIN}' before the '{END}' of the one on line {begin_at}; "
                    "/etc/hosts was edited by hand: fix the markers, not touching it"
                )
            in_block, begin_at = True, n
            continue
        if in_block:
            if s == END:
                in_block = False
            continue
        body = _fields(line.split("#", 1)[0].rstrip("\n"))
        if len(body) >= 2 and not s.startswith("#"):
            lip = body[0]
            rest = [x for x in body[1:] if x.lower() not in want]
            if len(rest) < len(body) - 1:
                # our names live in the block from now on: the line stays, commented out
                out.append("# bkdoctor: " + (line if line.endswith("\n") else line + "\n"))
                if rest:
                    out.append(f"{lip} {' '.join(rest)}\n")
                continue
        out.append(line)
    if in_block:
        raise EditError(
            f"line {begin_at}: '{BEGIN}' has no '{END}' after it (a half-edited /etc/hosts?): "
            "the lines after it could be the operator's; add the end marker or remove the begin "
            "marker by hand, not touching it"
        )
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    block = [BEGIN + "\n"] + [f"{ip} {' '.join(names)}\n" for ip, names in entries] + [END + "\n"]
    return "".join(out + block)


# -- sysctl / modules-load (files bkdoctor owns) ------------------------------------------------------
def sysctl_file(values: dict[str, str]) -> str:
    return "# written by bkdoctor (kernel-params): settings Kubernetes needs, kept across reboots\n" + "".join(
        f"{k} = {v}\n" for k, v in values.items()
    )


def modules_file(mods: list[str]) -> str:
    return "# written by bkdoctor (kernel-params)\n" + "".join(m + "\n" for m in mods)


# -- CoreDNS Corefile --------------------------------------------------------------------------------
def _only_ip(ip: object, where: str) -> None:
    """The address an edit writes comes from the cluster's API or the inventory: only an IP address goes in (a
    newline or a blank would add a line or a name of its own)."""
    import ipaddress

    try:
        ipaddress.ip_address(str(ip))
    except ValueError:
        raise EditError(f"not an IP address, not written into the {where}: {str(ip)[:60]!r}") from None


def _corefile_blocks(text: str) -> list[corefile.ServerBlock]:
    """The server blocks to edit, or EditError: a Corefile that does not parse, or one with a snippet `(name) {...}`
    or an `import`. CoreDNS pastes what is imported into the importing block and refuses a block with two `hosts`
    (or two `reload`): "can only be used once per Server Block". What an import brings (a snippet, a file on the
    pods) decides where a hosts block may go, so such a Corefile is the operator's to edit."""
    try:
        blocks = corefile.parse(text)
    except corefile.CorefileError as e:
        raise EditError(f"Corefile does not parse ({e}); not touching it") from None
    for b in blocks:
        if b.keys[:1] and b.keys[0].startswith("("):
            raise EditError(f"line {b.line + 1}: the Corefile defines a snippet to import; edit it by hand")
        imp = b.plugin("import")
        if imp is not None:
            raise EditError(f"line {imp.line + 1}: the Corefile uses import; edit it by hand")
    return blocks


def corefile_set_hosts(text: str, ip: str, names: list[str]) -> str:
    """In every server block: a hosts block where each name points at `ip` (wrong entries for these names
    corrected, foreign entries kept, `fallthrough` added when missing); a block is created when missing,
    before `forward` (or before the block's closing brace), whatever plugins the block has. A Corefile with
    snippets or `import` is refused (`_corefile_blocks`)."""
    _only_ip(ip, "Corefile")
    blocks = _corefile_blocks(text)
    lines = text.split("\n")  # CoreDNS ends a line (and a comment) at "\n" only; a last "" keeps the final newline
    want = [n.lower() for n in names]
    # edit from the last block upwards so earlier line numbers stay valid
    for b in reversed(blocks):
        hosts = b.plugin("hosts")
        indent = _plugin_indent(lines, b)
        if hosts is None:
            entry_indent = indent + " " * 4
            new = (
                [f"{indent}hosts {{"]
                + [f"{entry_indent}{ip} {n}" for n in names]
                + [f"{entry_indent}fallthrough", f"{indent}}}"]
            )
            fwd = b.plugin("forward")
            at = fwd.line if fwd is not None else b.end
            lines[at:at] = new
            continue
        if hosts.line == hosts.end:
            raise EditError(f"line {hosts.line + 1}: a hosts plugin with a file argument and no block; edit it by hand")
        entries, fall = corefile.hosts_entries(text if False else "\n".join(lines), hosts)
        entry_indent = _entry_indent(lines, hosts, indent)
        have_ok = set()
        new_body: list[tuple[int, list[str]]] = []  # (line index, the lines that replace it)
        for e in entries:
            ours = [n for n in e.names if n in want]
            if not ours:
                continue
            if e.ip == ip:
                have_ok.update(ours)
                continue
            keep = [n for n in e.names if n not in want]
            orig = lines[e.line]
            lead = orig[: len(orig) - len(orig.lstrip())]
            # the operator's line stays, commented out; its other names keep their address on a line of their own
            new_body.append(
                (e.line, [f"{lead}# bkdoctor: {orig.lstrip()}"] + ([f"{lead}{e.ip} {' '.join(keep)}"] if keep else []))
            )
        for idx, repl in sorted(new_body, reverse=True):
            lines[idx : idx + 1] = repl
        # re-read the hosts block (lines moved)
        b2 = [x for x in corefile.parse("\n".join(lines) + "\n") if x.line == b.line][0]
        hosts = b2.plugin("hosts")
        missing = [n for n, w in zip(names, want) if w not in have_ok]
        add = [f"{entry_indent}{ip} {n}" for n in missing]
        _, fall = corefile.hosts_entries("\n".join(lines), hosts)
        if not fall:
            add.append(f"{entry_indent}fallthrough")
        if add:
            # before an existing fallthrough line, else before the closing brace
            at = hosts.end
            for i in range(hosts.line + 1, hosts.end):
                if lines[i].split("#", 1)[0].split()[:1] == ["fallthrough"]:
                    at = i
                    break
            if not fall:
                at = hosts.end
            lines[at:at] = [a for a in add if not a.strip() == "fallthrough"] + (
                [f"{entry_indent}fallthrough"] if not fall else []
            )
    return "\n".join(lines)


def _plugin_indent(lines: list[str], b: corefile.ServerBlock) -> str:
    for p in b.plugins:
        line = lines[p.line]
        return line[: len(line) - len(line.lstrip())]
    return "    "


def _entry_indent(lines: list[str], hosts: corefile.Plugin, indent: str) -> str:
    for i in range(hosts.line + 1, hosts.end):
        line = lines[i]
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return indent + " " * 4


def corefile_add_reload(text: str) -> str:
    """Add the `reload` plugin to every server block that lacks it (so later edits apply by themselves)."""
    blocks = _corefile_blocks(text)
    lines = text.split("\n")  # see corefile_set_hosts
    for b in reversed(blocks):
        if b.plugin("reload") is None:
            lines[b.end : b.end] = [f"{_plugin_indent(lines, b)}reload"]
    return "\n".join(lines)


def corefile_has_reload(text: str) -> bool:
    try:
        return all(b.plugin("reload") is not None for b in corefile.parse(text))
    except corefile.CorefileError:
        return False
