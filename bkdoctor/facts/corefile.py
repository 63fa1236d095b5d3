"""A small, lossless Corefile reader (CoreDNS configuration).

It finds server blocks (`.:53 { ... }`), their plugins, and the `hosts` block inside each, with line numbers, so
that the `coredns` rule can say exactly what is missing and where, and the remediation can edit only the lines
it owns (every other byte stays as it was).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class CorefileError(ValueError):
    pass


@dataclass
class Plugin:
    name: str
    args: list[str]
    line: int  # 0-based index of the plugin's first line
    end: int  # 0-based index of its last line (== line for one-liners, the closing brace for blocks)
    body: list[str] = field(default_factory=list)  # lines inside its braces, stripped of comments


@dataclass
class ServerBlock:
    keys: list[str]
    line: int
    end: int
    plugins: list[Plugin]

    def plugin(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)


@dataclass
class HostsEntry:
    ip: str
    names: list[str]
    line: int


def _tokens(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def parse(text: str) -> list[ServerBlock]:
    """Server blocks of a Corefile. Raises CorefileError on unbalanced braces or text outside a block."""
    lines = text.split("\n")  # CoreDNS ends lines (and comments) at "\n" only
    blocks: list[ServerBlock] = []
    i = 0
    while i < len(lines):
        toks = _tokens(lines[i])
        if not toks:
            i += 1
            continue
        if toks[-1] != "{":
            raise CorefileError(f"line {i + 1}: expected a server block ('zone:port {{'), got {lines[i].strip()!r}")
        keys, start = toks[:-1], i
        plugins: list[Plugin] = []
        i += 1
        while True:
            if i >= len(lines):
                raise CorefileError(f"line {start + 1}: server block {' '.join(keys)} is not closed")
            toks = _tokens(lines[i])
            if not toks:
                i += 1
                continue
            if toks == ["}"]:
                break
            if toks[-1] == "{":
                pstart, body, depth = i, [], 1
                i += 1
                while depth:
                    if i >= len(lines):
                        raise CorefileError(f"line {pstart + 1}: block {toks[0]} is not closed")
                    t = _tokens(lines[i])
                    if t and t[-1] == "{":
                        depth += 1
                    if t == ["}"]:
                        depth -= 1
                        if depth == 0:
                            break
                    if t:
                        body.append(" ".join(t))
                    i += 1
                plugins.append(Plugin(toks[0], toks[1:-1], pstart, i, body))
            elif "}" in toks:
                raise CorefileError(f"line {i + 1}: unexpected '}}' in {lines[i].strip()!r}")
            else:
                plugins.append(Plugin(toks[0], toks[1:], i, i))
            i += 1
        blocks.append(ServerBlock(keys, start, i, plugins))
        i += 1
    if not blocks:
        raise CorefileError("no server block")
    return blocks


_IP = re.compile(r"^(\d{1,3}\.){3}\d{1,3}\Z|^[0-9a-fA-F:]+:[0-9a-fA-F:.]*\Z")


def hosts_entries(text: str, plugin: Plugin) -> tuple[list[HostsEntry], bool]:
    """(entries, fallthrough?) of a hosts plugin block."""
    lines = text.split("\n")  # CoreDNS ends lines (and comments) at "\n" only
    entries, fall = [], False
    for n in range(plugin.line + 1, plugin.end):
        t = _tokens(lines[n])
        if not t:
            continue
        if t[0] == "fallthrough":
            fall = True
        elif _IP.match(t[0]) and len(t) > 1:
            entries.append(HostsEntry(t[0], [x.lower().rstrip(".") for x in t[1:]], n))
    return entries, fall
