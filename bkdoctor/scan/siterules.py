"""Site rules: the operator's own checks, as YAML (`bkdoctor scan --rules-dir DIR`, `rules_dirs:` in the inventory).

A rules dir holds YAML files with `rules:`, validated by `bkdoctor/scan/site-rules.schema.json`. Every check is one
`kind` over facts the host probe gathers read-only, or objects read from the Kubernetes API:

  host:    file_exists, file_contains, file_not_contains (regex), sysctl, systemd_unit, process, mount,
           port_listening, package (version / banned), http_status, command (read-only argv, under `timeout`)
  cluster: k8s_object (exists / absent), k8s_field (a dotted path equals / matches), k8s_pods (running / ready)

Each host check becomes one extra section of the host's single probe: its shell snippet is built here from the
check's parameters, every value `shlex.quote`d (a path, a URL, every argv word), and registered with the probe
(`facts.probe.EXTRA_SECTIONS`) under a name derived from the snippet (`site_<sha>`), so two rules reading the same
file share the section. A cluster check becomes one extra list of the cluster side (`site:<path>?<query>`).
The rules then go through the same engine as the built-in ones: suppressions, reports, history, JUnit, HTML.

Every rule carries its own `examples: {pass: [...], fail: [...]}`: fact snippets in the check's own terms
(`{content: "..."}` for a file, `{rc: 0, stdout: "..."}` for a command, `{objects: [...]}` for the cluster).
`encode()` turns a snippet into the raw probe output (or API list) the live check would see, and the same
`evaluate` runs on it: `bkdoctor rules test DIR` runs them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bkdoctor.facts import cluster as cluster_facts
from bkdoctor.model import HOST_ROLES, BadInput, FactUnavailable, Guide, Result, Rule, T
from bkdoctor.safe.secrets import MASK, is_secret_key, mask_obj, mask_text

SCHEMA_PATH = Path(__file__).with_name("site-rules.schema.json")
HOST_KINDS = (
    "file_exists",
    "file_contains",
    "file_not_contains",
    "sysctl",
    "systemd_unit",
    "process",
    "mount",
    "port_listening",
    "package",
    "http_status",
    "command",
)
CLUSTER_KINDS = ("k8s_object", "k8s_field", "k8s_pods")
MAX_FILE = 1048576  # bytes of a file a check reads
MAX_OUT = 65536  # bytes of a command's output kept
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "busybox", "env", "eval", "exec", "xargs", "sudo", "su"}
DEFAULT_ROLES = HOST_ROLES
SITE_PREFIX = "site_"
CLUSTER_PREFIX = "site:"


# -- probe snippets ---------------------------------------------------------------------------------------------
def _q(v: Any) -> str:
    return shlex.quote(str(v))


def snippet(chk: dict[str, Any]) -> str:
    """The read-only shell snippet of a host check; every value from the rule is shlex.quote'd."""
    k = chk["kind"]
    if k == "file_exists":
        p = _q(chk["path"])
        return f"if [ -e {p} ] || [ -L {p} ]; then echo present; else echo absent; fi"
    if k in ("file_contains", "file_not_contains"):
        p = _q(chk["path"])
        return f"[ -e {p} ] || exit 3; head -c {MAX_FILE} {p}"
    if k == "sysctl":
        p = _q("/proc/sys/" + chk["key"].replace(".", "/"))
        return f"[ -e {p} ] || exit 3; cat {p}"
    if k == "systemd_unit":
        u = _q(chk["unit"])
        return (
            "command -v systemctl >/dev/null 2>&1 || exit 127; [ -d /run/systemd/system ] || exit 125; "
            f"printf 'active %s\\n' \"$(t systemctl is-active {u} 2>/dev/null)\"; "
            f"printf 'enabled %s\\n' \"$(t systemctl is-enabled {u} 2>/dev/null)\""
        )
    if k == "process":
        from bkdoctor.facts.host import SECTIONS

        return SECTIONS["processes"]  # the built-in section's one `cat` (was ps | awk | sort: 3 processes a check)
    if k == "mount":
        return "cat /proc/self/mountinfo"
    if k == "port_listening":
        return (
            "cat /proc/net/udp /proc/net/udp6 2>/dev/null; true"
            if chk.get("proto") == "udp"
            else "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true"
        )
    if k == "package":
        n = _q(chk["name"])
        return (
            f"if command -v rpm >/dev/null 2>&1 && rpm -q {n} >/dev/null 2>&1; then "
            f"printf 'version %s\\n' \"$(rpm -q --qf '%{{VERSION}}-%{{RELEASE}}\\n' {n} | head -n 1)\"; "
            f"elif command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${{Status}}' {n} 2>/dev/null "
            f"| grep -q ' installed$'; then printf 'version %s\\n' \"$(dpkg-query -W -f='${{Version}}' {n})\"; "
            "elif command -v rpm >/dev/null 2>&1 || command -v dpkg-query >/dev/null 2>&1; then echo absent; "
            "else exit 127; fi"
        )
    if k == "http_status":
        t = int(chk.get("timeout", 5))
        return (
            f"command -v curl >/dev/null 2>&1 || exit 127; "
            f"curl -s -o /dev/null --connect-timeout {t} --max-time {t} -w '%{{http_code}}' {_q(chk['url'])}; true"
        )
    if k == "command":
        t = int(chk.get("timeout", 10))
        argv = " ".join(_q(a) for a in chk["argv"])
        return (
            "command -v timeout >/dev/null 2>&1 || exit 126; "
            f"o=$(timeout {t} {argv} 2>&1 </dev/null); r=$?; printf 'rc=%s\\n' \"$r\"; "
            f"printf '%s' \"$o\" | head -c {MAX_OUT}"
        )
    raise KeyError(k)


def section_name(chk: dict[str, Any]) -> str:
    return SITE_PREFIX + hashlib.sha256(snippet(chk).encode()).hexdigest()[:12]


def budget(chk: dict[str, Any]) -> float:
    """Seconds a section may add to the probe's time limit."""
    if chk["kind"] == "command":
        return float(chk.get("timeout", 10)) + 2
    if chk["kind"] == "http_status":
        return float(chk.get("timeout", 5)) + 2
    return 1.0


# -- cluster lists ----------------------------------------------------------------------------------------------
def cluster_kind(chk: dict[str, Any]) -> str:
    """The cluster fact key of a cluster check: `site:<list path>?<query>`."""
    if chk["kind"] == "k8s_pods":
        api, res = "v1", "pods"
    else:
        api, res = chk["apiVersion"], chk["resource"]
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    ns = chk.get("namespace")
    path = f"{base}/namespaces/{ns}/{res}" if ns else f"{base}/{res}"
    q = {}
    if chk.get("name"):
        q["fieldSelector"] = f"metadata.name={chk['name']}"
    if chk.get("label_selector"):
        q["labelSelector"] = chk["label_selector"]
    return CLUSTER_PREFIX + path + ("?" + json.dumps(q, sort_keys=True) if q else "")


def load_cluster_kind(cfacts: Any, kind: str) -> list[dict[str, Any]]:
    """The cluster side's reader of the `site:` kinds: list the objects of a site cluster check (paginated)."""
    rest = kind[len(CLUSTER_PREFIX) :]
    path, _, q = rest.partition("?")
    query = json.loads(q) if q else None
    return cfacts._list(path, query)


# the cluster side reads the `site:` kinds through this module (facts/cluster.py does not know the site rules)
cluster_facts.family(CLUSTER_PREFIX, load_cluster_kind)


# -- evaluation -------------------------------------------------------------------------------------------------
@dataclass
class Raw:
    """What a live host check sees: the probe section's exit code and output."""

    rc: int
    out: str


def _raw_from_facts(facts: Any, name: str) -> Raw:
    s = facts.sec(name)
    return Raw(s.rc, s.text())


def _shown(text: str, start: int, end: int, n: int) -> str:
    """What a message may show of host text[start:end] (a regex match): the match as it is when the lines it is on
    hold no secret, else those lines masked. mask_text runs on the raw lines (with the line before them: a YAML key
    whose value is on the next line), before any repr() or prefix: its line-anchored shapes (`requirepass x`, a
    .netrc line, `password:\\n  x`) see the line's start."""
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    le = len(text) if le < 0 else le
    prev = text.rfind("\n", 0, ls - 1) + 1 if ls else 0
    lines = text[ls:le]
    parts = mask_text(text[prev:le]).split("\n")
    if prev < ls and len(parts) == text.count("\n", prev, le) + 1:
        masked = "\n".join(parts[1:])
    else:
        masked = mask_text(lines) if prev < ls else "\n".join(parts)
    return text[start:end][:n] if masked == lines else masked[:n]


def _file_text(raw: Raw, path: str) -> str | None:
    if raw.rc == 0:
        return raw.out
    if raw.rc == 3:
        return None
    msg = _shown(raw.out.strip(), 0, 300, 300)
    raise FactUnavailable(T(f"无法读取 {path}（退出码 {raw.rc}）：{msg}", f"cannot read {path} (exit {raw.rc}): {msg}"))


def _no_tool(raw: Raw, tool: str) -> None:
    if raw.rc == 127:
        raise FactUnavailable(T(f"主机上没有 {tool}", f"{tool} is not installed on the host"))


def _vkey(v: str) -> list[tuple[int, Any]]:
    """rpm/dpkg-like version order: digit runs numerically, letter runs as text."""
    out: list[tuple[int, Any]] = []
    for part in re.findall(r"\d+|[A-Za-z]+", v.split(":", 1)[-1]):
        out.append((1, int(part)) if part.isdigit() else (0, part))
    return out


def _ports(text: str) -> set[int]:
    out = set()
    for line in text.splitlines()[0:]:
        f = line.split()
        if len(f) < 4 or ":" not in f[1]:
            continue
        if f[3] in ("0A", "07"):  # TCP LISTEN, UDP unconnected (bound)
            try:
                out.add(int(f[1].rsplit(":", 1)[1], 16))
            except ValueError:
                pass
    return out


def _unoct(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _mounts(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if not sep or len(f) < 5 or len(r) < 2:
            continue
        out.append({"mountpoint": _unoct(f[4]), "fstype": r[0], "source": _unoct(r[1])})
    return out


def eval_host(chk: dict[str, Any], raw: Raw) -> tuple[bool, T, Any, Any]:
    """(ok, message, observed, expected) of a host check on its section's output."""
    k = chk["kind"]
    if k == "file_exists":
        present = raw.out.strip() == "present"
        want = not chk.get("absent", False)
        word = ("存在", "exists") if present else ("不存在", "does not exist")
        return present == want, T(f"{chk['path']} {word[0]}", f"{chk['path']} {word[1]}"), present, want
    if k in ("file_contains", "file_not_contains"):
        text = _file_text(raw, chk["path"])
        rx = re.compile(chk["regex"], re.M)
        if text is None:
            ok = chk.get("missing", "fail" if k == "file_contains" else "pass") == "pass"
            return ok, T(f"{chk['path']} 不存在", f"{chk['path']} does not exist"), None, chk["regex"]
        m = rx.search(text)
        line = _shown(text, m.start(), m.end(), 200) if m else None
        if k == "file_contains":
            return (
                bool(m),
                T(f"{chk['path']} 含有 {line!r}", f"{chk['path']} has {line!r}")
                if m
                else T(
                    f"{chk['path']} 中没有匹配 /{chk['regex']}/ 的内容",
                    f"{chk['path']} has nothing matching /{chk['regex']}/",
                ),
                line,
                chk["regex"],
            )
        return (
            not m,
            T(f"{chk['path']} 含有禁止的内容 {line!r}", f"{chk['path']} has the forbidden {line!r}")
            if m
            else T(
                f"{chk['path']} 中没有匹配 /{chk['regex']}/ 的内容",
                f"{chk['path']} has nothing matching /{chk['regex']}/",
            ),
            line,
            {"not": chk["regex"]},
        )
    if k == "sysctl":
        text = _file_text(raw, chk["key"])
        want = " ".join(str(chk["value"]).split())
        if text is None:
            return (
                False,
                T(f"内核参数 {chk['key']} 不存在", f"kernel parameter {chk['key']} does not exist"),
                None,
                want,
            )
        got = " ".join(text.split())
        return got == want, T(f"{chk['key']} = {got}", f"{chk['key']} = {got}"), got, want
    if k == "systemd_unit":
        _no_tool(raw, "systemctl")
        if raw.rc == 125:
            raise FactUnavailable(T("主机未运行 systemd", "systemd is not running on the host"))
        st = dict(line.split(" ", 1) if " " in line else (line, "") for line in raw.out.splitlines() if line)
        active, enabled = st.get("active", "").strip(), st.get("enabled", "").strip()
        want_a = chk.get("active", ["active"])
        want_e = chk.get("enabled")
        ok = active in want_a and (want_e is None or enabled in want_e)
        return (
            ok,
            T(f"{chk['unit']}：{active or '?'}，{enabled or '?'}", f"{chk['unit']}: {active or '?'}, {enabled or '?'}"),
            {"active": active, "enabled": enabled},
            {"active": want_a, "enabled": want_e},
        )
    if k == "process":
        from bkdoctor.facts.host import process_names

        names = process_names(raw.out)
        running = chk["name"] in names
        want = not chk.get("absent", False)
        return (
            running == want,
            (
                T(f"进程 {chk['name']} 在运行", f"process {chk['name']} is running")
                if running
                else T(f"进程 {chk['name']} 未运行", f"process {chk['name']} is not running")
            ),
            running,
            want,
        )
    if k == "mount":
        ms = [m for m in _mounts(raw.out) if m["mountpoint"] == chk["mountpoint"]]
        if not ms:
            return (
                False,
                T(f"{chk['mountpoint']} 未挂载", f"{chk['mountpoint']} is not mounted"),
                None,
                chk["mountpoint"],
            )
        m = ms[-1]  # the last mount on a point is the visible one
        ok = (not chk.get("fstype") or m["fstype"] == chk["fstype"]) and (
            not chk.get("source") or re.search(chk["source"], m["source"]) is not None
        )
        return (
            ok,
            T(
                f"{chk['mountpoint']} 挂载自 {m['source']}（{m['fstype']}）",
                f"{chk['mountpoint']} is mounted from {m['source']} ({m['fstype']})",
            ),
            m,
            {"fstype": chk.get("fstype"), "source": chk.get("source")},
        )
    if k == "port_listening":
        proto = chk.get("proto", "tcp")
        listening = chk["port"] in _ports(raw.out)
        want = not chk.get("absent", False)
        return (
            listening == want,
            (
                T(f"{proto}/{chk['port']} 在监听", f"{proto}/{chk['port']} is listening")
                if listening
                else T(f"{proto}/{chk['port']} 未监听", f"nothing listens on {proto}/{chk['port']}")
            ),
            listening,
            want,
        )
    if k == "package":
        _no_tool(raw, "rpm / dpkg-query")
        line = raw.out.strip().splitlines()[-1] if raw.out.strip() else ""
        version = line[len("version ") :].strip() if line.startswith("version ") else None
        name = chk["name"]
        if chk.get("absent"):
            return (
                version is None,
                (
                    T(f"禁止的软件包 {name} 已安装（{version}）", f"banned package {name} is installed ({version})")
                    if version
                    else T(f"未安装 {name}", f"{name} is not installed")
                ),
                version,
                "absent",
            )
        if version is None:
            return (
                False,
                T(f"未安装 {name}", f"{name} is not installed"),
                None,
                {"min": chk.get("min_version"), "max": chk.get("max_version")},
            )
        ok = (not chk.get("min_version") or _vkey(version) >= _vkey(chk["min_version"])) and (
            not chk.get("max_version") or _vkey(version) <= _vkey(chk["max_version"])
        )
        return (
            ok,
            T(f"{name} {version}", f"{name} {version}"),
            version,
            {"min": chk.get("min_version"), "max": chk.get("max_version")},
        )
    if k == "http_status":
        _no_tool(raw, "curl")
        try:
            code = int(raw.out.strip()[-3:] or 0)
        except ValueError:
            code = 0
        want = chk.get("status", [200])
        return (
            code in want,
            (
                T(f"{chk['url']} 返回 HTTP {code}", f"{chk['url']} answered HTTP {code}")
                if code
                else T(f"{chk['url']} 无应答", f"{chk['url']} did not answer")
            ),
            code,
            want,
        )
    if k == "command":
        if raw.rc == 126:
            raise FactUnavailable(T("主机上没有 timeout 命令", "the host has no `timeout` command"))
        head, _, out = raw.out.partition("\n")
        if not head.startswith("rc="):
            raise FactUnavailable(
                T(
                    f"命令输出无法解析：{_shown(raw.out, 0, 200, 200)!r}",
                    f"cannot parse the command's output: {_shown(raw.out, 0, 200, 200)!r}",
                )
            )
        rc = int(head[3:])
        cmd = " ".join(shlex.quote(a) for a in chk["argv"])
        if rc == 124:
            raise FactUnavailable(
                T(f"`{cmd}` 超时（{chk.get('timeout', 10)} 秒）", f"`{cmd}` timed out ({chk.get('timeout', 10)} s)")
            )
        if rc == 127 and not out.strip():
            raise FactUnavailable(
                T(f"主机上没有 {chk['argv'][0]}", f"{chk['argv'][0]} is not on the host"), status="error"
            )
        want = chk.get("exit_codes", [0])
        problems_zh, problems_en = [], []
        if rc not in want:
            problems_zh.append(f"退出码 {rc}（期望 {want}）")
            problems_en.append(f"exit {rc} (expected {want})")
        if chk.get("stdout") and not re.search(chk["stdout"], out, re.M):
            problems_zh.append(f"输出中没有 /{chk['stdout']}/")
            problems_en.append(f"output lacks /{chk['stdout']}/")
        if chk.get("stdout_not"):
            m = re.search(chk["stdout_not"], out, re.M)
            if m:
                shown = _shown(out, m.start(), m.end(), 120)
                problems_zh.append(f"输出含有 {shown!r}")
                problems_en.append(f"output has {shown!r}")
        first = _shown(out.strip(), 0, 160, 160).split("\n")[0] if out.strip() else ""
        obs = {"exit": rc, "output": out[:2000]}
        exp = {"exit": want, "stdout": chk.get("stdout"), "stdout_not": chk.get("stdout_not")}
        if problems_en:
            return False, T(f"`{cmd}`：" + "；".join(problems_zh), f"`{cmd}`: " + "; ".join(problems_en)), obs, exp
        return True, T(f"`{cmd}`：退出码 {rc} {first}".strip(), f"`{cmd}`: exit {rc} {first}".strip()), obs, exp
    raise KeyError(k)


def _shown_value(v: Any, secret: bool) -> str:
    return MASK if secret else mask_text(str(v))[:120]


def _field(obj: Any, path: str) -> tuple[bool, Any]:
    cur = obj
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)(?:\[(\d+)\])?", part)
        if not m or not isinstance(cur, dict) or m.group(1) not in cur:
            return False, None
        cur = cur[m.group(1)]
        if m.group(2) is not None:
            i = int(m.group(2))
            if not isinstance(cur, list) or i >= len(cur):
                return False, None
            cur = cur[i]
    return True, cur


def _oname(o: dict[str, Any]) -> str:
    md = o.get("metadata") or {}
    return f"{md['namespace']}/{md.get('name')}" if md.get("namespace") else str(md.get("name"))


def _pod_state(p: dict[str, Any]) -> tuple[bool, bool]:
    st = p.get("status") or {}
    running = st.get("phase") == "Running"
    cs = st.get("containerStatuses") or []
    ready = running and bool(cs) and all(c.get("ready") for c in cs)
    return running, ready


def eval_cluster(chk: dict[str, Any], objs: list[dict[str, Any]]) -> tuple[bool, T, Any, Any]:
    k = chk["kind"]
    what = chk.get("resource", "pods")
    where = (
        (f" in {chk['namespace']}" if chk.get("namespace") else "")
        + (f" named {chk['name']}" if chk.get("name") else "")
        + (f" with labels {chk['label_selector']}" if chk.get("label_selector") else "")
    )
    names = [_oname(o) for o in objs]
    if k == "k8s_object":
        n = len(objs)
        if chk.get("absent"):
            return (
                n == 0,
                (
                    T(
                        f"存在不应有的 {what}{where}：{', '.join(names[:5])}",
                        f"unwanted {what}{where}: {', '.join(names[:5])}",
                    )
                    if n
                    else T(f"没有 {what}{where}", f"no {what}{where}")
                ),
                names[:20],
                "absent",
            )
        want = int(chk.get("min_count", 1))
        return n >= want, T(f"{what}{where}：{n} 个", f"{n} {what}{where}"), names[:20], {"min_count": want}
    if k == "k8s_field":
        if not objs:
            return False, T(f"没有 {what}{where}", f"no {what}{where}"), None, chk.get("equals", chk.get("regex"))
        bad, seen = [], {}
        secret = is_secret_key(chk["field"].rsplit(".", 1)[-1].split("[")[0])  # data.password: its value is one
        for o in objs:
            found, v = _field(o, chk["field"])
            seen[_oname(o)] = mask_obj(v, secret)
            if not found:
                bad.append((_oname(o), "<absent>"))
            elif "equals" in chk:
                if v != chk["equals"] and str(v) != str(chk["equals"]):
                    bad.append((_oname(o), v))
            elif not isinstance(v, (str, int, float, bool)) or not re.search(chk["regex"], str(v)):
                bad.append((_oname(o), v))
        exp = {"field": chk["field"], **({"equals": chk["equals"]} if "equals" in chk else {"regex": chk["regex"]})}
        if bad:
            # masked before repr(): a value's own lines (`password:\\n  x` in a ConfigMap's data) keep their starts
            txt = "; ".join(
                f"{n}: {chk['field']} = {v if v == '<absent>' else _shown_value(v, secret)!r}" for n, v in bad[:5]
            )
            return False, T(txt, txt), dict(list(seen.items())[:20]), exp
        txt = f"{len(objs)} × {chk['field']} ok"
        return True, T(txt, txt), dict(list(seen.items())[:20]), exp
    if k == "k8s_pods":
        pods = objs
        if chk.get("name_regex"):
            pods = [p for p in pods if re.search(chk["name_regex"], (p.get("metadata") or {}).get("name", ""))]
        want_state = chk.get("state", "ready")
        good = [p for p in pods if _pod_state(p)[1 if want_state == "ready" else 0]]
        bad = [p for p in pods if p not in good]
        want = int(chk.get("min_count", 1))
        obs = {"pods": len(pods), want_state: len(good), "not_" + want_state: [_oname(p) for p in bad][:20]}
        exp = {"min_count": want, "state": want_state}
        if bad or len(good) < want:
            txt_en = f"{len(good)}/{len(pods)} pods{where} {want_state} (at least {want}, all)"
            if bad:
                txt_en += ": not " + want_state + ": " + ", ".join(_oname(p) for p in bad[:5])
            return (
                False,
                T(f"{where} 中 {len(good)}/{len(pods)} 个 Pod 为 {want_state}（至少 {want} 个且全部）", txt_en),
                obs,
                exp,
            )
        return True, T(f"{len(good)} 个 Pod 为 {want_state}", f"{len(good)} pods{where} {want_state}"), obs, exp
    raise KeyError(k)


# -- examples ---------------------------------------------------------------------------------------------------
def _hex_port_line(port: int, state: str) -> str:
    return f"   0: 00000000:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1"


def encode(chk: dict[str, Any], ex: dict[str, Any]) -> Raw | list[dict[str, Any]]:
    """A rule's example (facts in the check's own terms) -> what the live check would read."""
    k = chk["kind"]

    def need(key: str, types: tuple[type, ...]) -> Any:
        if key not in ex:
            raise ValueError(f"a {k} example needs `{key}`")
        v = ex[key]
        if not isinstance(v, types):
            raise ValueError(f"a {k} example's `{key}` must be {' or '.join(t.__name__ for t in types)}")
        return v

    if k in CLUSTER_KINDS:
        objs = need("objects", (list,))
        if not all(isinstance(o, dict) for o in objs):
            raise ValueError("`objects` must be a list of Kubernetes objects (mappings)")
        return objs
    if k == "file_exists":
        return Raw(0, "present\n" if need("exists", (bool,)) else "absent\n")
    if k in ("file_contains", "file_not_contains"):
        c = need("content", (str, type(None)))
        return Raw(3, "") if c is None else Raw(0, c)
    if k == "sysctl":
        v = need("value", (str, int, type(None)))
        return Raw(3, "") if v is None else Raw(0, f"{v}\n")
    if k == "systemd_unit":
        return Raw(0, f"active {need('active', (str,))}\nenabled {ex.get('enabled', 'enabled')}\n")
    if k == "process":
        return Raw(0, "\n".join(sorted(need("processes", (list,)))) + "\n")
    if k == "mount":
        lines = [
            f"{20 + i} 1 0:{i} / {m['mountpoint']} rw - {m.get('fstype', 'ext4')} {m.get('source', 'none')} rw"
            for i, m in enumerate(need("mounts", (list,)))
        ]
        return Raw(0, "\n".join(lines) + "\n")
    if k == "port_listening":
        st = "07" if chk.get("proto") == "udp" else "0A"
        head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
        return Raw(0, "\n".join([head] + [_hex_port_line(int(p), st) for p in need("listening", (list,))]) + "\n")
    if k == "package":
        v = need("version", (str, type(None)))
        return Raw(0, "absent\n" if v is None else f"version {v}\n")
    if k == "http_status":
        return Raw(0, f"{int(need('status', (int,))):03d}")
    if k == "command":
        return Raw(0, f"rc={int(need('rc', (int,)))}\n{ex.get('stdout', '')}")
    raise KeyError(k)


# -- loading ----------------------------------------------------------------------------------------------------
@dataclass
class SiteRule:
    rule: Rule
    spec: dict[str, Any]
    path: Path


def _validator() -> Any:
    from bkdoctor.safe.yamlfile import schema_validator

    return schema_validator(json.loads(SCHEMA_PATH.read_text()))


def _bad_at(path: Path, node: Any, keypath: list[Any], what: T) -> BadInput:
    """A refusal naming the file, the line and the key path of what is wrong."""
    from bkdoctor.safe.yamlfile import line_of

    line, key = line_of(node, keypath), ".".join(map(str, keypath))
    return BadInput(
        T(f"站点规则 {path}: 第 {line} 行: {key}: {what.zh}", f"site rules {path}: line {line}: {key}: {what.en}")
    )


def _make_rule(spec: dict[str, Any]) -> Rule:
    chk = spec["check"]
    cluster = chk["kind"] in CLUSTER_KINDS
    ref = spec["reference"]
    guide = Guide("site", ref["site"] + (f" <{ref['url']}>" if ref.get("url") else ""), None)
    on_fail = spec.get("on_fail", "fail")
    doc = spec.get("doc") or {
        "zh": "站点规则（非部署文档要求）：" + spec["title"]["zh"],
        "en": "site rule (not in the guide): " + spec["title"]["en"],
    }
    fact = cluster_kind(chk) if cluster else section_name(chk)

    def check(facts: Any, ctx: Any) -> Result:
        if cluster:
            ok, msg, obs, exp = eval_cluster(chk, facts.get(fact))
        else:
            ok, msg, obs, exp = eval_host(chk, _raw_from_facts(facts, fact))
        return Result("pass" if ok else on_fail, msg, observed=obs, expected=exp)

    return Rule(
        id=spec["id"],
        title=T(spec["title"]["zh"], spec["title"]["en"]),
        scope="cluster" if cluster else "host",
        severity=spec["severity"],
        facts=(fact,),
        guide=guide,
        doc=T(doc["zh"], doc["en"]),
        roles=() if cluster else tuple(spec.get("roles") or DEFAULT_ROLES),
        tags=tuple(["site"] + [t for t in spec.get("tags") or [] if t != "site"]),
        group="site",
        fix=tuple(spec.get("fix") or ()),
        check=check,
    )


def load_file(path: Path) -> list[SiteRule]:
    try:
        raw = path.read_bytes()
        if len(raw) > 4 * 1024 * 1024:
            raise BadInput(T(f"站点规则 {path}: 超过 4 MiB", f"site rules {path}: larger than 4 MiB"))
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(T(f"站点规则 {path}: 不是 UTF-8 文本", f"site rules {path}: not UTF-8 text")) from None
    except OSError as e:
        raise BadInput(
            T(f"站点规则 {path}: 无法读取: {e.strerror or e}", f"site rules {path}: cannot read: {e.strerror or e}")
        ) from None
    from bkdoctor.safe import yamlfile

    try:
        data, node = yamlfile.load_with_node(text, T(f"站点规则 {path}", f"site rules {path}"))
    except BadInput:  # YAML errors among them, with their line (bkdoctor/safe/yamlfile.py)
        raise
    except Exception as e:  # the swapped-in loader's own refusals (duplicate keys, ...)
        raise BadInput(
            T(
                f"站点规则 {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                f"site rules {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            )
        ) from None
    if not isinstance(data, dict):
        raise BadInput(
            T(
                f"站点规则 {path}: 第 1 行: 顶层须为含 `rules:` 的映射",
                f"site rules {path}: line 1: top level must be a mapping with `rules:`",
            )
        )
    errors = sorted(
        _validator().iter_errors(data), key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        # the deepest error names the key that is wrong (an if/then branch's error, not the allOf around it)
        line, key = yamlfile.schema_error_at(errors[0], node)
        raise BadInput(
            T(
                f"站点规则 {path}: 第 {line} 行: {key}: {yamlfile.schema_message(errors[0])}",
                f"site rules {path}: line {line}: {key}: {yamlfile.schema_message(errors[0])}",
            )
        )
    out = []
    for i, spec in enumerate(data["rules"]):
        chk = spec["check"]
        for key in ("regex", "stdout", "stdout_not", "source", "name_regex"):
            if key in chk:
                try:
                    re.compile(chk[key])
                except re.error as err:
                    raise _bad_at(
                        path, node, ["rules", i, "check", key], T(f"正则表达式有误: {err}", f"bad regex: {err}")
                    ) from None
        if chk["kind"] == "command" and Path(chk["argv"][0]).name in SHELLS:
            raise _bad_at(
                path,
                node,
                ["rules", i, "check", "argv"],
                T(
                    f"{chk['argv'][0]!r} 会运行其他命令；请直接给出只读的命令本身",
                    f"{chk['argv'][0]!r} runs other commands; give the read-only command itself",
                ),
            )
        if "roles" in spec and chk["kind"] in CLUSTER_KINDS:
            raise _bad_at(
                path, node, ["rules", i, "roles"], T("集群检查没有角色（roles）", "a cluster check has no roles")
            )
        for st in ("pass", "fail"):
            for j, ex in enumerate(spec["examples"][st]):
                try:
                    encode(chk, ex)
                except (ValueError, TypeError, KeyError) as err:
                    raise _bad_at(
                        path, node, ["rules", i, "examples", st, j], T(f"示例无法编码: {err}", str(err))
                    ) from None
        out.append(SiteRule(rule=_make_rule(spec), spec=spec, path=path))
    return out


def load_dirs(dirs: list[str] | tuple[str, ...], builtin_ids: set[str] | None = None) -> list[SiteRule]:
    """Every `*.yaml`/`*.yml` of each dir (sorted); ids unique and never a built-in id."""
    if builtin_ids is None:
        from bkdoctor.scan.loader import all_rules

        builtin_ids = {r.id for r in all_rules()}
    out: list[SiteRule] = []
    seen: dict[str, Path] = {}
    for d in dirs:
        p = Path(d).expanduser()
        if not p.is_dir():
            raise BadInput(T(f"规则目录 {d}: 不是目录", f"rules dir {d}: not a directory"))
        files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
        if not files:
            raise BadInput(T(f"规则目录 {d}: 没有 *.yaml 文件", f"rules dir {d}: no *.yaml files"))
        for f in files:
            for sr in load_file(f):
                rid = sr.rule.id
                if rid in builtin_ids:
                    raise BadInput(
                        T(
                            f"站点规则 {f}: id {rid!r} 与内置规则的 id 相同；请为站点规则另取 id",
                            f"site rules {f}: id {rid!r} is a built-in rule's id; give the site rule its own id",
                        )
                    )
                if rid in seen:
                    raise BadInput(
                        T(
                            f"站点规则 {f}: id {rid!r} 已在 {seen[rid]} 中定义",
                            f"site rules {f}: id {rid!r} is already defined in {seen[rid]}",
                        )
                    )
                seen[rid] = f
                out.append(sr)
    register(out)
    return out


def register(site: list[SiteRule]) -> None:
    """Give the probe the snippets of these rules' sections (and their time budget)."""
    from bkdoctor.facts import probe

    for sr in site:
        chk = sr.spec["check"]
        if chk["kind"] in HOST_KINDS:
            name = section_name(chk)
            probe.EXTRA_SECTIONS[name] = snippet(chk)
            SECTION_BUDGET[name] = budget(chk)


SECTION_BUDGET: dict[str, float] = {}


def split_facts(facts: set[str]) -> tuple[set[str], set[str]]:
    """(built-in facts, site sections) of a host's probe."""
    site = {f for f in facts if f.startswith(SITE_PREFIX)}
    return facts - site, site


def extra_timeout(sections: set[str]) -> float:
    return sum(SECTION_BUDGET.get(s, 0.0) for s in sections)


# -- `bkdoctor rules test` ----------------------------------------------------------------------------------------
def run_examples(site: list[SiteRule]) -> list[dict[str, Any]]:
    """Run every rule's examples through its evaluator; one row per example."""
    rows = []
    for sr in site:
        chk = sr.spec["check"]
        on_fail = sr.spec.get("on_fail", "fail")
        for want in ("pass", "fail"):
            for j, ex in enumerate(sr.spec["examples"][want]):
                enc = encode(chk, ex)
                try:
                    if chk["kind"] in CLUSTER_KINDS:
                        ok, msg, _, _ = eval_cluster(chk, enc)  # type: ignore[arg-type]
                    else:
                        ok, msg, _, _ = eval_host(chk, enc)  # type: ignore[arg-type]
                    got = "pass" if ok else on_fail
                    text = msg
                except FactUnavailable as e:
                    got, text = e.status, e.reason
                expected = "pass" if want == "pass" else on_fail
                rows.append(
                    {
                        "rule": sr.rule.id,
                        "file": str(sr.path),
                        "example": f"{want}[{j}]",
                        "expected": expected,
                        "got": got,
                        "ok": got == expected,
                        "message": text.en,
                    }
                )
    return rows
