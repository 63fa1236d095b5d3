"""Reading a fleet: findings grouped by rule and status (or by host), host lists folded, unreachable targets one
line each. Presentation only: the JSON and JUnit reports keep one finding per rule x target.

A group is (rule, status, message shape): messages that differ only in their values (numbers, addresses, sizes)
share a shape and a group; the values per host are listed with -v or `--group-by host`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from bkdoctor.guidetext import NOT_IN_GUIDE
from bkdoctor.model import SEVERITIES
from bkdoctor.safe.terminal import clean, clean_line

ORDER = ("fail", "error", "warn", "suppressed", "skip", "pass")
PROBLEMS = ("fail", "error", "warn", "suppressed")
SEV = {s: i for i, s in enumerate(SEVERITIES)}  # most severe first
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "magenta", "skip": "dim", "suppressed": "cyan"}
NO_CLUSTER = "no cluster configured"

TXT = {
    "zh": {
        "hosts": "台主机",
        "on": "涉及",
        "unreachable": "不可达",
        "not_run": "项检查未运行",
        "skipped": "项检查已跳过",
        "fix": "修复",
        "guide": "部署文档",
        "more": "另 {n} 台（--group-by host 展开）",
        "variants": "各主机的值不同（{n} 种；-v 或 --group-by host 列出）",
        "all_ok": "全部检查通过",
        "no_problem": "无问题的主机",
        "cluster": "集群",
    },
    "en": {
        "hosts": "hosts",
        "on": "on",
        "unreachable": "unreachable",
        "not_run": "checks not run",
        "skipped": "checks skipped",
        "fix": "Fix",
        "guide": "guide",
        "more": "+{n} more (--group-by host)",
        "variants": "values differ per host ({n} variants; -v or --group-by host lists them)",
        "all_ok": "All checks passed",
        "no_problem": "hosts with no problem",
        "cluster": "cluster",
    },
}

TOKEN = 64
_NUM = re.compile(r"\d+(?:[.:,]\d+)*")
_TAIL_NUM = re.compile(r"^(.*?)(\d+)\Z")


def _values(obj: Any, out: list[str], depth: int = 0) -> None:
    if len(out) > 64 or depth > 4:
        return
    if isinstance(obj, dict):
        for v in obj.values():
            _values(v, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _values(v, out, depth + 1)
    elif isinstance(obj, (str, int, float)) and not isinstance(obj, bool):
        s = str(obj)
        if 1 < len(s) <= 200:
            out.append(s)


def shape(message: str, observed: Any = None) -> str:
    """The message with its values blanked: the finding's observed values, then any number. 'time zone is UTC,
    expected Asia/Shanghai' and 'time zone is Europe/Berlin, expected Asia/Shanghai' share a shape, as do
    'swap is on: 4194300 kB' and 'swap is on: 2048 kB'."""
    msg = message or ""
    vals: list[str] = []
    _values(observed, vals)
    for v in sorted(set(vals), key=len, reverse=True):
        msg = msg.replace(v, "\0")
    return _NUM.sub("#", msg).replace("\0", "#")


def natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def compress_hosts(names: list[str]) -> list[tuple[str, int]]:
    """Host names as hostlist tokens with the number of hosts each stands for:
    node-001, node-002, node-003, node-007 -> ('node-[001-003,007]', 4). Names keep their zero padding."""
    groups: dict[tuple[str, int], list[tuple[int, str]]] = {}
    singles: list[str] = []
    for n in dict.fromkeys(names):
        m = _TAIL_NUM.match(n)
        if m:
            groups.setdefault((m.group(1), len(m.group(2))), []).append((int(m.group(2)), m.group(2)))
        else:
            singles.append(n)
    out: list[tuple[list[Any], str, int]] = []
    for (prefix, _w), nums in groups.items():
        nums.sort()
        if len(nums) == 1:
            out.append((natural_key(prefix + nums[0][1]), prefix + nums[0][1], 1))
            continue
        parts, i = [], 0
        while i < len(nums):
            j = i
            while j + 1 < len(nums) and nums[j + 1][0] == nums[j][0] + 1:
                j += 1
            parts.append(nums[i][1] if i == j else f"{nums[i][1]}-{nums[j][1]}")
            i = j + 1
        # tokens of at most ~TOKEN characters, so a long list wraps between tokens, never inside one
        chunk: list[str] = []
        for part in parts + [None]:
            if part is None or (chunk and len(prefix) + len(",".join(chunk + [part])) + 2 > TOKEN):
                n_chunk = sum(int(x.split("-")[1]) - int(x.split("-")[0]) + 1 if "-" in x else 1 for x in chunk)
                first = chunk[0].split("-")[0]
                tok = f"{prefix}[{','.join(chunk)}]" if n_chunk > 1 else prefix + chunk[0]
                out.append((natural_key(prefix + first), tok, n_chunk))
                chunk = []
            if part is not None:
                chunk.append(part)
    out += [(natural_key(n), n, 1) for n in singles]
    out.sort(key=lambda x: x[0])
    return [(tok, n) for _k, tok, n in out]


def expand_hostlist(text: str) -> list[str]:
    """Inverse of compress_hosts for one token (used by tests and by anyone pasting a token back)."""
    m = re.fullmatch(r"(.*)\[([0-9,\-]+)\]", text)
    if not m:
        return [text]
    out = []
    for part in m.group(2).split(","):
        a, _, b = part.partition("-")
        w = len(a)
        for k in range(int(a), int(b or a) + 1):
            out.append(f"{m.group(1)}{k:0{w}d}")
    return out


def fold_hosts(names: list[str], budget: int, lang: str = "en") -> str:
    """The compressed host list, cut at about `budget` characters: '+N more (--group-by host)'."""
    toks = compress_hosts(names)
    shown: list[str] = []
    used = 0
    for k, (tok, _n) in enumerate(toks):
        if shown and used + len(tok) + 2 > budget:
            rest = sum(n for _t, n in toks[k:])
            return ", ".join(shown) + ", " + TXT[lang]["more"].format(n=rest)
        shown.append(tok)
        used += len(tok) + 2
    return ", ".join(shown)


@dataclass
class Group:
    rule: str
    status: str
    severity: str
    kind: str  # host | cluster
    remediation: str | None
    guide: str | None
    reason: str | None  # suppression reason
    messages: dict[str, list[str]] = field(default_factory=dict)  # message -> targets
    evaluated: int = 0  # targets this rule ran on (the denominator)

    @property
    def targets(self) -> list[str]:
        return [t for ts in self.messages.values() for t in ts]

    def sort_key(self) -> tuple:
        return (ORDER.index(self.status), SEV.get(self.severity, 9), -len(self.targets), self.rule)


@dataclass
class Fleet:
    down: list[tuple[dict[str, Any], int]]  # unreachable target, checks not run
    no_cluster: list[tuple[dict[str, Any], int]]  # cluster not configured, checks skipped
    groups: list[Group]
    by_target: dict[str, list[dict[str, Any]]]  # findings shown per target (not the not-run errors)


def is_no_cluster(tg: dict[str, Any]) -> bool:
    return not tg.get("reachable", True) and (tg.get("error") or "").startswith(NO_CLUSTER)


def is_down(tg: dict[str, Any]) -> bool:
    return not tg.get("reachable", True) and not is_no_cluster(tg)


def _guide_ref(guide: dict[str, Any]) -> str | None:
    """The guide section, or for a site rule (--rules-dir) `site:<its reference>`."""
    if guide.get("section") == "site":
        return "site:" + str(guide.get("title") or "site")
    return guide.get("section")


def group(report: dict[str, Any], verbose: bool = False) -> Fleet:
    targets = {tg["name"]: tg for tg in report["targets"]}
    down_names = {n for n, tg in targets.items() if is_down(tg)}
    nocl_names = {n for n, tg in targets.items() if is_no_cluster(tg)}
    not_run: dict[str, int] = {}
    skipped: dict[str, int] = {}
    shown = ORDER if verbose else PROBLEMS
    evaluated: dict[str, set[str]] = {}
    groups: dict[tuple, Group] = {}
    by_target: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        tname = f["target"]
        if tname in down_names and f["status"] == "error":
            not_run[tname] = not_run.get(tname, 0) + 1
            continue
        if tname in nocl_names and f["status"] == "skip":
            skipped[tname] = skipped.get(tname, 0) + 1
            continue
        evaluated.setdefault(f["rule"], set()).add(tname)
        if f["status"] not in shown:
            continue
        by_target.setdefault(tname, []).append(f)
        reason = (f.get("suppression") or {}).get("reason")
        key = (f["rule"], f["status"], shape(f["message"], f.get("observed")), reason)
        g = groups.get(key)
        if g is None:
            kind = (targets.get(tname) or {}).get("kind", "host")
            rem = (f.get("remediation") or {}).get("id")
            g = groups[key] = Group(
                f["rule"],
                f["status"],
                f["severity"],
                "cluster" if kind == "cluster" else "host",
                rem,
                _guide_ref(f.get("guide") or {}),
                reason,
            )
        elif (targets.get(tname) or {}).get("kind", "host") != "cluster":
            g.kind = "host"
        g.messages.setdefault(f["message"], []).append(tname)
    for g in groups.values():
        g.evaluated = len(evaluated.get(g.rule, ()))
    return Fleet(
        down=[(targets[n], not_run.get(n, 0)) for n in targets if n in down_names],
        no_cluster=[(targets[n], skipped.get(n, 0)) for n in targets if n in nocl_names],
        groups=sorted(groups.values(), key=Group.sort_key),
        by_target=by_target,
    )


def target_line(tg: dict[str, Any], n: int, lang: str, skipped: bool = False) -> str:
    w = TXT[lang]
    addr = f" {tg['address']}" if tg.get("address") else ""
    if skipped:
        return clean_line(f"– {tg['name']}: {tg['error']}: {n} {w['skipped']}")
    return clean_line(f"✗ {tg['name']}{addr}: {w['unreachable']} ({tg['error']}): {n} {w['not_run']}")


def group_body(g: Group, lang: str, budget: int, verbose: bool) -> Any:
    from rich.text import Text

    w = TXT[lang]
    body = Text()
    body.append(clean_line(g.rule), style="bold")
    body.append(f" ({g.severity}) ")
    hosts = g.targets
    if g.kind == "cluster" and len(hosts) == 1:
        body.append(f"{w['on']} {clean_line(hosts[0])}")
    else:
        body.append(f"{w['on']} {len(hosts)}/{g.evaluated} {w['hosts']}: ")
        body.append(clean_line(fold_hosts(sorted(hosts, key=natural_key), budget, lang)))
    msgs = list(g.messages)
    body.append(" — " + clean(msgs[0]))
    if len(msgs) > 1 and not verbose:
        body.append(" (" + w["variants"].format(n=len(msgs)) + ")", style="dim")
    if g.reason:
        body.append(clean(f" [{g.reason}]"), style="cyan")
    fix_hint = bool(g.remediation and g.status in ("fail", "warn"))
    if fix_hint:
        body.append(f" — {w['fix']}: bkdoctor fix --rule {shlex.quote(g.rule)}", style="dim")
    if g.guide and g.status in ("fail", "warn"):
        # after the Fix: command, a shell comment: the command copy-pastes as it is; a site rule (--rules-dir)
        # names the site's own reference, not a section of the guide
        ref = (
            g.guide[5:]
            if g.guide.startswith("site:")
            else (g.guide if g.guide == NOT_IN_GUIDE else f"{w['guide']} §{g.guide}")
        )
        body.append(clean(f"  # {ref}" if fix_hint else f" ({ref})"), style="dim")
    if verbose and len(msgs) > 1:
        for m, ts in g.messages.items():
            body.append(
                "\n  "
                + clean_line(", ".join(t for t, _n in compress_hosts(sorted(ts, key=natural_key))))
                + ": "
                + clean(m),
                style="dim",
            )
    return body


def print_grouped(report: dict[str, Any], console: Any, verbose: bool = False, by: str = "rule") -> None:
    from rich.text import Text

    lang = report["lang"] if report.get("lang") in TXT else "en"
    w = TXT[lang]
    fl = group(report, verbose)
    for tg, n in fl.down:
        console.print(Text(target_line(tg, n, lang), style="magenta"))
    for tg, n in fl.no_cluster:
        console.print(Text(target_line(tg, n, lang, skipped=True), style="dim"))
    if by == "host":
        _print_by_host(report, fl, console, verbose, lang)
        return
    if not fl.groups:
        if not fl.down:
            console.print(Text(f"✓ {w['all_ok']}", style="green"))
        return
    width = console.width or 160
    budget = max(60, 2 * width - 60)  # about two lines of host names per problem
    label_w = max(len(g.status) for g in fl.groups)
    for g in fl.groups:
        hanging(
            console,
            Text(g.status.upper().ljust(label_w), style=STYLE.get(g.status, "")),
            group_body(g, lang, budget, verbose),
        )


def hanging(console: Any, label: Any, body: Any, indent: int = 0) -> None:
    """`label body`, the body wrapped at the console width with a hanging indent (no padding to the right)."""
    from rich.text import Text

    lead = indent + label.cell_len + 1
    width = max(20, (console.width or 160) - lead)
    lines = body.wrap(console, width, overflow="fold")
    for i, line in enumerate(lines):
        out = Text(" " * indent) + (label + Text(" ") if i == 0 else Text(" " * (lead - indent))) + line
        out.rstrip()
        console.print(out, soft_wrap=True)


def _print_by_host(report: dict[str, Any], fl: Fleet, console: Any, verbose: bool, lang: str) -> None:
    from rich.text import Text

    w = TXT[lang]
    down = {tg["name"] for tg, _n in fl.down}
    clean_hosts = []
    for tg in report["targets"]:
        name = tg["name"]
        fs = fl.by_target.get(name) or []
        if name in down:
            continue
        if not any(f["status"] in PROBLEMS for f in fs) and not verbose:
            if tg.get("kind", "host") == "host":
                clean_hosts.append(name)
            continue
        counts: dict[str, int] = {}
        for f in fs:
            counts[f["status"]] = counts.get(f["status"], 0) + 1
        head = Text(clean_line(name), style="bold")
        if tg.get("address"):
            head.append(clean_line(f" {tg['address']}"), style="dim")
        head.append(": " + " · ".join(f"{counts[s]} {s}" for s in ORDER if counts.get(s)))
        console.print(head)
        label_w = max(len(f["status"]) for f in fs) if fs else 4
        for f in sorted(fs, key=lambda f: (ORDER.index(f["status"]), SEV.get(f["severity"], 9), f["rule"])):
            body = Text(clean_line(f["rule"]), style="bold")
            body.append(f" ({f['severity']}) — " + clean(f["message"]))
            if f.get("suppression"):
                body.append(clean(f" [{f['suppression']['reason']}]"), style="cyan")
            if (f.get("remediation") or {}).get("id") and f["status"] in ("fail", "warn"):
                body.append(
                    f" — {w['fix']}: bkdoctor fix --rule {shlex.quote(f['rule'])} --host "
                    f"{clean_line(shlex.quote(name))}",
                    style="dim",
                )
            hanging(console, Text(f["status"].upper().ljust(label_w), style=STYLE.get(f["status"], "")), body, indent=2)
    if clean_hosts:
        console.print(
            Text(
                clean_line(
                    f"✓ {len(clean_hosts)} {w['no_problem']}: "
                    + ", ".join(t for t, _n in compress_hosts(sorted(clean_hosts, key=natural_key)))
                ),
                style="green",
            )
        )
