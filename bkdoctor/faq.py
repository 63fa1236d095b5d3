"""FAQ failure signatures as data: `rules/faq/<id>.yaml` -> a cluster rule.

A signature says where to look and what to match; the matcher is generic, so a new signature is a few lines
of YAML. Where to look (`where`):
  waiting  a container's waiting state: `reason` (list) and/or `message` (regex)
  terminated  a container's last termination: `reason`, `message`, `exit_codes`
  event    an Event: `reason` (list), `message` (regex), optional `kind` of the involved object
  log      the tail of a failing pod's container log: `message` (regex); logs are read only for failing pods
  job      a Job that has not completed: `name` (regex); `failed: true` for Jobs with failed pods
  pod      a pod: `phase` (list), `ready: false`
Every matcher may narrow by `pod` (regex on the pod or object name) and `namespace` (regex).
Named groups in `message` regexes become details: `image` also yields `registry` (the image's host part).
`host_rules` names host rules whose failures on the matched pods' nodes are the root cause (cross-layer).
`grace_minutes`: matches on pods younger than that are expected (reported as pass with a note).
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from .k8s import container_statuses, md, pod_failing, ref
from .model import Guide, Result, Rule, T

WHERE_FACTS = {"waiting": ("pods",), "terminated": ("pods",), "event": ("events",), "log": ("pods", "logs"),
               "job": ("jobs", "pods"), "pod": ("pods",)}
MAX_MATCHES = 20


class SignatureError(ValueError):
    pass


def _t(d: Any, what: str, path: Path) -> T:
    if not isinstance(d, dict) or not d.get("zh") or not d.get("en"):
        raise SignatureError(f"{path}: {what} needs zh and en text")
    return T(str(d["zh"]).strip(), str(d["en"]).strip())


def load_signature(path: Path) -> Rule:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SignatureError(f"{path}: not a mapping")
    sid = data.get("id")
    if sid != path.stem:
        raise SignatureError(f"{path}: id {sid!r} does not equal the file name")
    matchers = data.get("match") or []
    if not matchers:
        raise SignatureError(f"{path}: no match entries")
    facts: list[str] = []
    for m in matchers:
        if m.get("where") not in WHERE_FACTS:
            raise SignatureError(f"{path}: unknown where {m.get('where')!r}")
        for k in ("message", "pod", "namespace", "name"):
            if k in m:
                try:
                    re.compile(m[k])
                except re.error as e:
                    raise SignatureError(f"{path}: bad regex in {k}: {e}") from None
        for f in WHERE_FACTS[m["where"]]:
            if f not in facts:
                facts.append(f)
    if data.get("host_rules"):
        facts.append("nodes")
    g = data.get("guide") or {}
    cause, fix = _t(data.get("cause"), "cause", path), _t(data.get("fix"), "fix", path)
    sig = {"matchers": matchers, "cause": cause, "fix": fix, "on_match": data.get("on_match", "fail"),
           "grace_minutes": data.get("grace_minutes"), "host_rules": list(data.get("host_rules") or []),
           "summary": data.get("summary")}

    def check(facts_: Any, ctx: Any) -> Result:
        return run_signature(sig, facts_, ctx)

    rule = Rule(id=sid, title=_t(data.get("title"), "title", path), scope="cluster",
                severity=data.get("severity", "high"), facts=tuple(facts),
                guide=Guide(str(g.get("section", "十三")), str(g.get("title", "FAQ")), g.get("line")),
                doc=T(f"{cause.zh}\n修复：{fix.zh}", f"{cause.en}\nFix: {fix.en}"), roles=(),
                tags=tuple(["faq"] + list(data.get("tags") or [])), group="faq",
                remediation=data.get("remediation"), fix=tuple(data.get("commands") or ()),
                host_rules=tuple(sig["host_rules"]), check=check)
    return rule


def _re(m: dict[str, Any], key: str) -> re.Pattern[str] | None:
    return re.compile(m[key]) if key in m else None


def _age_minutes(pod: dict[str, Any], now: dt.datetime) -> float | None:
    ts = (pod.get("status") or {}).get("startTime") or md(pod).get("creationTimestamp")
    if not ts:
        return None
    try:
        t = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - t).total_seconds() / 60


def _details(groups: dict[str, str]) -> dict[str, str]:
    d = {k: v for k, v in groups.items() if v}
    img = d.get("image")
    if img and "registry" not in d:
        first = img.split("/", 1)[0]
        d["registry"] = first if "/" in img and ("." in first or ":" in first or first == "localhost") else "docker.io"
    return d


def find_matches(sig: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pods_cache: list[dict[str, Any]] | None = None

    def pods() -> list[dict[str, Any]]:
        nonlocal pods_cache
        if pods_cache is None:
            pods_cache = facts.get("pods")
        return pods_cache

    def scoped(m: dict[str, Any], ns: str, name: str) -> bool:
        pr, nr = _re(m, "pod"), _re(m, "namespace")
        return (pr is None or bool(pr.search(name))) and (nr is None or bool(nr.search(ns)))

    for m in sig["matchers"]:
        where = m["where"]
        msg_re = _re(m, "message")
        reasons = set(m.get("reason") or [])
        if where in ("waiting", "terminated"):
            for p in pods():
                if not scoped(m, md(p).get("namespace", ""), md(p)["name"]):
                    continue
                for cs in container_statuses(p):
                    st = (cs.get("state") or {}).get(where) or ((cs.get("lastState") or {}).get("terminated")
                                                               if where == "terminated" else None)
                    if not st or (reasons and st.get("reason") not in reasons):
                        continue
                    if where == "terminated" and m.get("exit_codes") and st.get("exitCode") not in m["exit_codes"]:
                        continue
                    text = st.get("message", "") or ""
                    mm = msg_re.search(text) if msg_re else None
                    if msg_re and not mm:
                        continue
                    out.append({"where": where, "object": ref(p), "container": cs.get("name"),
                                "node": (p.get("spec") or {}).get("nodeName"), "reason": st.get("reason"),
                                "text": text[:300], "details": _details(mm.groupdict() if mm else {}), "_pod": p})
        elif where == "event":
            kind = m.get("kind")
            for e in facts.get("events"):
                io = e.get("involvedObject") or {}
                if kind and io.get("kind") != kind:
                    continue
                if reasons and e.get("reason") not in reasons:
                    continue
                if not scoped(m, io.get("namespace", ""), io.get("name", "")):
                    continue
                text = e.get("message", "") or ""
                mm = msg_re.search(text) if msg_re else None
                if msg_re and not mm:
                    continue
                node = None
                if io.get("kind") == "Pod":
                    p = next((p for p in pods() if md(p)["name"] == io.get("name")
                              and md(p).get("namespace") == io.get("namespace")), None)
                    node = ((p or {}).get("spec") or {}).get("nodeName")
                node = node or (e.get("source") or {}).get("host")
                out.append({"where": "event", "object": f"{io.get('kind')}/{io.get('namespace', '')}/{io.get('name')}".replace("//", "/"),
                            "node": node, "reason": e.get("reason"), "text": text[:300],
                            "details": _details(mm.groupdict() if mm else {}), "count": e.get("count")})
        elif where == "log":
            logs = facts.get("logs")
            for p in pods():
                ns, name = md(p).get("namespace", ""), md(p)["name"]
                if not scoped(m, ns, name):
                    continue
                for c in (p.get("spec") or {}).get("containers") or []:
                    for prev in (False, True):
                        text = logs.get(f"{ns}/{name}/{c['name']}/{int(prev)}")
                        if not text:
                            continue
                        mm = msg_re.search(text) if msg_re else None
                        if not mm:
                            continue
                        line = text[: mm.end()].rsplit("\n", 1)[-1] + text[mm.end():].split("\n", 1)[0]
                        out.append({"where": "log", "object": f"{ns}/{name}", "container": c["name"],
                                    "node": (p.get("spec") or {}).get("nodeName"), "reason": "log",
                                    "text": line.strip()[:300], "details": _details(mm.groupdict()), "_pod": p})
                        break
        elif where == "job":
            name_re = _re(m, "name")
            for j in facts.get("jobs"):
                ns, name = md(j).get("namespace", ""), md(j)["name"]
                if name_re and not name_re.search(name):
                    continue
                st = j.get("status") or {}
                done = any(c.get("type") == "Complete" and c.get("status") == "True" for c in st.get("conditions") or [])
                if done or (m.get("failed") and not st.get("failed")):
                    continue
                out.append({"where": "job", "object": f"{ns}/{name}", "node": None, "reason": "not complete",
                            "text": f"active={st.get('active', 0)} failed={st.get('failed', 0)} succeeded={st.get('succeeded', 0)}",
                            "details": {}})
        elif where == "pod":
            phases = set(m.get("phase") or [])
            for p in pods():
                if not scoped(m, md(p).get("namespace", ""), md(p)["name"]):
                    continue
                ph = (p.get("status") or {}).get("phase")
                if phases and ph not in phases:
                    continue
                if m.get("ready") is False and not pod_failing(p) and ph != "Pending":
                    continue
                out.append({"where": "pod", "object": ref(p), "node": (p.get("spec") or {}).get("nodeName"),
                            "reason": ph, "text": "", "details": {}, "_pod": p})
    # one entry per object and where; keep the order found
    seen, uniq = set(), []
    for x in out:
        k = (x["where"], x["object"], x.get("container"))
        if k not in seen:
            seen.add(k)
            uniq.append(x)
    return uniq


def run_signature(sig: dict[str, Any], facts: Any, ctx: Any) -> Result:
    matches = find_matches(sig, facts)
    now = dt.datetime.now(dt.timezone.utc)
    grace = sig.get("grace_minutes")
    young = []
    if grace is not None:
        keep = []
        for x in matches:
            age = _age_minutes(x["_pod"], now) if x.get("_pod") else None
            (young if age is not None and age < grace else keep).append(x)
        matches = keep
    public = [{k: v for k, v in x.items() if not k.startswith("_")} for x in matches]
    observed = {"matches": public[:MAX_MATCHES], "count": len(public)}
    if not matches:
        if young:
            return Result("pass", T(f"{len(young)} 个对象符合特征，但处于启动后 {grace} 分钟内，属正常现象",
                                    f"{len(young)} object(s) match, within the first {grace} minutes after start: expected"),
                          observed={"matches": [], "count": 0, "within_grace": len(young)}, expected="no match")
        return Result("pass", T("没有对象符合此故障特征", "nothing matches this failure signature"), observed=observed,
                      expected="no match")
    details: dict[str, set[str]] = {}
    for x in public:
        for k, v in x["details"].items():
            details.setdefault(k, set()).add(v)
    first = public[0]
    where_zh = f"{first['object']}" + (f"（节点 {first['node']}）" if first.get("node") else "")
    where_en = f"{first['object']}" + (f" (node {first['node']})" if first.get("node") else "")
    extra = ""
    if details.get("registry"):
        extra = f" [registry: {', '.join(sorted(details['registry']))}]"
    more_zh = f" 等 {len(public)} 处" if len(public) > 1 else ""
    more_en = f" and {len(public) - 1} more" if len(public) > 1 else ""
    excerpt = f": {first['text']}" if first.get("text") else ""
    msg = T(f"{where_zh}{more_zh}{extra}{excerpt}。原因：{sig['cause'].zh} 修复：{sig['fix'].zh}",
            f"{where_en}{more_en}{extra}{excerpt}. Cause: {sig['cause'].en} Fix: {sig['fix'].en}")
    observed["details"] = {k: sorted(v) for k, v in details.items()}
    return Result(sig["on_match"], msg, observed=observed, expected="no match")


def signatures_dir(rules_dir: Path) -> Path:
    return rules_dir / "faq"
