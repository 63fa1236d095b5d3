"""Pieces of `bkdoctor install` that are pure (no host, no cluster): the shape of a step and how it becomes a
shell script, the guide's section text for the quotes, the `bcs.sh -i k8sctrl` output parser, and the
`custom.yaml` edit that adds what is missing and keeps every line the operator wrote.

Every value that enters a script goes through `shlex.quote` (a path under `~` becomes `"$HOME"/'rest'`, so it is
expanded on the host that runs it and still quoted)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from bkdoctor.model import T

DIRS = ("none", "root", "blueking")
ON = ("control", "first-master", "other-masters", "nodes", "k8s-nodes", "node-role", "registry-proxy")
ENV = ("BK_DOMAIN", "REGISTRY", "INSTALL_DIR", "RELEASE_BASEURL")
KINDS = ("run", "check", "fix", "rules", "manual", "builtin")
PLACEHOLDER = re.compile(r"@\{([a-z_]+)\}")


class StepFailed(Exception):
    """A step cannot go on (one line for the operator)."""


@dataclass
class Step:
    kind: str  # run | check | fix | rules | manual | builtin
    value: Any  # command (run/check), rule ids (fix/rules), text {zh,en} (manual), name (builtin)
    guide: str  # section, e.g. "三.2.1"
    quote: str  # a short quote of that section (tests hold it against the guide text)
    on: str = "control"
    dir: str = "none"
    env: tuple[str, ...] = ()
    timeout: float = 600
    creates: tuple[str, ...] = ()
    unless: str | None = None  # a named predicate (install.PREDICATES): when true, the step is not needed
    verify_rules: tuple[str, ...] = ()
    verify_run: str | None = None  # a read-only command on the step's host(s), in its directory
    verify_builtin: tuple[str, ...] = ()
    args: dict[str, Any] = field(default_factory=dict)  # builtin arguments, thresholds overrides
    note: str = ""  # where bkdoctor departs from the guide's text, and why
    # a run step's failure the guide says to ignore, by the text it prints (§六.4.2: user(admin) not exists)
    tolerate: str | None = None

    def describe(self, values: dict[str, str] | None = None) -> str:
        if self.kind in ("fix", "rules"):
            return ("bkdoctor fix --rule " if self.kind == "fix" else "bkdoctor scan --rule ") + " --rule ".join(
                self.value
            )
        if self.kind == "manual":
            return "manual: " + self.value["en"].splitlines()[0]
        if self.kind == "builtin":
            return f"bkdoctor: {self.value}"
        return render(self.value, values) if values is not None else self.value


def shell_path(p: str) -> str:
    """A path for a shell on the host that uses it: `~/x` becomes `"$HOME"/'x'` (expanded there), quoted."""
    from bkdoctor.safe.shell import target_path

    return target_path(p.rstrip("/") or p)


def root_of(install_dir: str) -> str:
    """The install root: the directory that holds `bin/` beside `blueking/` (§四.2.2)."""
    d = install_dir.rstrip("/") or "/"
    parent = d.rsplit("/", 1)[0]
    return parent or "/"


def render(cmd: str, values: dict[str, str]) -> str:
    """Replace `@{name}` by the shlex-quoted value; an unknown name is an error (never left for the shell)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"no value for @{{{m.group(1)}}}")
        return shlex.quote(str(values[m.group(1)]))

    return PLACEHOLDER.sub(sub, cmd)


def script(step: Step, command: str, *, install_dir: str, env: dict[str, str], on_control: bool) -> str:
    """The script a run/check step sends to its host: directory, PATH (the install root's bin/ on the control
    machine), the step's environment, the command. Everything variable is quoted."""
    lines = []
    if step.dir != "none":
        d = install_dir if step.dir == "blueking" else root_of(install_dir)
        q = shell_path(d)
        lines.append(f"cd {q} || {{ echo {shlex.quote(f'bkdoctor: {d} does not exist on this host')} >&2; exit 97; }}")
    if on_control:
        lines.append(f'PATH={shell_path(root_of(install_dir))}/bin:"$PATH"; export PATH')
    for k in step.env:
        if k in env and env[k] not in (None, ""):
            lines.append(f"{k}={shlex.quote(env[k])}; export {k}")
    lines.append(command)
    return "\n".join(lines) + "\n"


# -- bcs.sh -i k8sctrl -------------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_B64 = r"[A-Za-z0-9+/=]*"
_JOIN_LINE = [
    re.compile(r"set -a"),
    re.compile(rf"cluster_env={_B64}"),
    re.compile(rf"(master_join_cmd_b64|join_cmd_b64)={_B64}"),
    re.compile(r"set \+a"),
    re.compile(
        r"curl -fsSL https?://[A-Za-z0-9.:-]+(/[A-Za-z0-9._~%+-]+)*/bcs\.sh \| "
        r"bash -s -- (install|-i) (k8s-control-plane|k8s-node)"
    ),
]
HEADERS = {"master": "扩容控制平面执行以下命令", "node": "扩容节点执行以下命令"}


def parse_join_commands(output: str) -> dict[str, str]:
    """The two join commands `bcs.sh -i k8sctrl` prints (§三.3.1/§三.3.2): {"master": ..., "node": ...}. Each is
    5 lines of a fixed shape (set -a, cluster_env=<b64>, *join_cmd_b64=<b64>, set +a, curl … | bash -s -- install
    k8s-…); anything else is refused, so that nothing but those lines is ever run on a host."""
    lines = [ANSI.sub("", l).strip() for l in output.splitlines()]
    out: dict[str, str] = {}
    for role, header in HEADERS.items():
        idx = next((i for i, l in enumerate(lines) if header in l), None)
        if idx is None:
            continue
        block = [l for l in lines[idx + 1 : idx + 1 + 8] if l][:5]
        if len(block) != 5 or not all(p.fullmatch(l) for p, l in zip(_JOIN_LINE, block)):
            raise ValueError(f"bcs.sh -i k8sctrl: the {role} join command is not in the expected shape")
        want_var = "master_join_cmd_b64" if role == "master" else "join_cmd_b64"
        want_mod = "k8s-control-plane" if role == "master" else "k8s-node"
        if not block[2].startswith(want_var + "=") or not block[4].endswith(want_mod):
            raise ValueError(f"bcs.sh -i k8sctrl: the {role} join command is for the wrong role")
        out[role] = "\n".join(block)
    return out


# -- custom.yaml: add what is missing, keep everything else ------------------------------------------------
def _key_line(line: str) -> tuple[int, str] | None:
    m = re.match(r"^( *)([A-Za-z0-9_.-]+|\"[^\"]*\"|'[^']*'):(\s.*|)$", line)
    if not m or line.lstrip().startswith("#"):
        return None
    return len(m.group(1)), m.group(2).strip("\"'")


def yaml_get(data: Any, path: list[str]) -> Any:
    for k in path:
        if not isinstance(data, dict) or k not in data:
            return None
        data = data[k]
    return data


def yaml_set_missing(text: str, path: list[str], value: str) -> str:
    """Add `path: value` to a YAML document as text, below the deepest ancestor key that exists, keeping every
    line of the file (comments, order, other keys) byte for byte. The caller checks first that the key is absent
    (a present key with another value is the operator's decision, never overwritten)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # walk down the existing ancestors: (line index of the key, its indentation)
    pos, indent, depth = -1, -2, 0
    lo, hi = 0, len(lines)
    for k in path[:-1]:
        found = None
        child_indent = None
        for i in range(lo, hi):
            kl = _key_line(lines[i].rstrip("\n"))
            if kl is None:
                continue
            if kl[0] <= indent:
                break
            if child_indent is None:
                child_indent = kl[0]
            if kl[0] == child_indent and kl[1] == k:
                found = (i, kl[0])
                break
        if found is None:
            break
        pos, indent = found
        depth += 1
        # the block of this key: the following lines indented deeper (or blank/comment)
        lo = pos + 1
        hi = lo
        while hi < len(lines):
            kl = _key_line(lines[hi].rstrip("\n"))
            s = lines[hi].strip()
            if kl is not None and kl[0] <= indent:
                break
            if s and not s.startswith("#") and kl is None and (len(lines[hi]) - len(lines[hi].lstrip(" "))) <= indent:
                break
            hi += 1
    rest = path[depth:]
    if depth == 0:
        base = ""
        at = len(lines)
        step = "  "
    else:
        # the indentation of the existing children, or two more than the parent
        child = next(
            (_key_line(lines[i].rstrip("\n")) for i in range(lo, hi) if _key_line(lines[i].rstrip("\n"))), None
        )
        base = " " * (child[0] if child else indent + 2)
        step = "  "
        at = lo  # right below the parent key: never inside another child's block
    new = []
    for n, k in enumerate(rest):
        pad = base + step * n
        if n == len(rest) - 1:
            new.append(f"{pad}{k}: {value}\n")
        else:
            new.append(f"{pad}{k}:\n")
    return "".join(lines[:at] + new + lines[at:])


def yaml_scalar(v: Any) -> str:
    """A YAML scalar for a value bkdoctor writes (strings double-quoted, JSON-style escaping)."""
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, ensure_ascii=False)


def t(zh: str, en: str) -> T:
    return T(zh, en)
