"""FAQ failure signatures as data: `rules/cluster/faq-<id>.yaml` -> a cluster rule.

A signature says where to look and what to match; the matcher is generic, so a new signature is a few lines
of YAML. Where to look (`where`):
  waiting  a container's waiting state: `reason` (list) and/or `message` (regex)
  terminated  a container's last termination: `reason`, `message`, `exit_codes`
  event    an Event: `reason` (list), `message` (regex), optional `kind` of the involved object
  log      the tail of a failing pod's container log: `message` (regex, required); logs are read only for
           failing pods (crash-looping, restarted, not ready, failed), current and previous container
  job      a Job that has not completed: `name` (regex); `failed: true` for Jobs with failed pods
  pod      a pod: `phase` (list), `ready: false`
  helm     a helm release (its newest revision, from the helm.sh/release.v1 Secrets): `status` (list, e.g.
           pending-install, pending-upgrade, pending-rollback), `name` (regex on the release name)
Every matcher may narrow by `pod` (regex on the pod, involved object, Job or release name) and `namespace`
(regex). Matchers are alternatives: the signature matches when any of them does. Unknown keys are errors.
Named groups in `message` regexes become details: `image` also yields `registry` (the image's host part);
`node_ip` re-targets the match to the Node with that InternalIP (an error that names another node, like
`dial tcp 10.0.0.6:10250: no route to host`), so cross-layer links look at the right host.
`summary`: detail keys shown in brackets in the message (default: [registry]).
`host_rules` names host rules whose failures on the matched pods' nodes are the root cause (cross-layer).
`grace_minutes`: matches on pods younger than that (status.startTime) are expected (reported as pass with a
note); `on_match` (fail|warn, default fail) is the status once a match is older.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from bkdoctor.guidetext import NOT_IN_GUIDE
from bkdoctor.facts.k8s import container_statuses, md, pod_failing, ref
from bkdoctor.model import Guide, Result, Rule, T

WHERE_FACTS = {"waiting": ("pods",), "terminated": ("pods",), "event": ("events", "pods"), "log": ("pods", "logs"),
               "job": ("jobs",), "pod": ("pods",), "helm": ("helm_releases",)}
COMMON_KEYS = {"where", "pod", "namespace"}
WHERE_KEYS = {"waiting": {"reason", "message"}, "terminated": {"reason", "message", "exit_codes"},
              "event": {"reason", "message", "kind"}, "log": {"message"}, "job": {"name", "failed"},
              "pod": {"phase", "ready"}, "helm": {"status", "name"}}
LIST_KEYS = ("reason", "exit_codes", "phase", "status")
TOP_KEYS = {"id", "title", "severity", "tags", "guide", "match", "cause", "fix", "commands", "host_rules",
            "grace_minutes", "on_match", "summary", "remediation"}
SEVERITIES = ("critical", "high", "medium", "low", "info")
MAX_MATCHES = 20


class SignatureError(ValueError):
    pass


def _t(d: Any, what: str, path: Path) -> T:
    if not isinstance(d, dict) or not d.get("zh") or not d.get("en"):
        raise SignatureError(f"{path}: {what} needs zh and en text")
    return T(str(d["zh"]).strip(), str(d["en"]).strip())


def load_signature(path: Path) -> Rule:
    try:
        # libyaml when present: 15 signatures load at every start, the pure-Python parser made that ~100 ms
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise SignatureError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SignatureError(f"{path}: not a mapping")
    sid = data.get("id")
    if sid != path.stem:
        raise SignatureError(f"{path}: id {sid!r} does not equal the file name")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SignatureError(f"{path}: unknown keys {unknown}")
    if data.get("severity", "high") not in SEVERITIES:
        raise SignatureError(f"{path}: severity {data.get('severity')!r} is not one of {list(SEVERITIES)}")
    if data.get("on_match", "fail") not in ("fail", "warn"):
        raise SignatureError(f"{path}: on_match must be fail or warn, not {data.get('on_match')!r}")
    grace = data.get("grace_minutes")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0):
        raise SignatureError(f"{path}: grace_minutes must be a number of minutes")
    for k in ("host_rules", "tags", "commands", "summary"):
        v = data.get(k)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise SignatureError(f"{path}: {k} must be a list of strings")
    matchers = data.get("match") or []
    if not matchers or not isinstance(matchers, list):
        raise SignatureError(f"{path}: no match entries")
    facts: list[str] = []
    for i, m in enumerate(matchers):
        if not isinstance(m, dict):
            raise SignatureError(f"{path}: match[{i}] is not a mapping")
        where = m.get("where")
        if where not in WHERE_FACTS:
            raise SignatureError(f"{path}: match[{i}]: unknown where {where!r} (one of {', '.join(WHERE_FACTS)})")
        extra = sorted(set(m) - COMMON_KEYS - WHERE_KEYS[where])
        if extra:
            raise SignatureError(f"{path}: match[{i}] (where: {where}): unknown keys {extra}")
        if where == "log" and not m.get("message"):
            raise SignatureError(f"{path}: match[{i}] (where: log) needs a message regex")
        for k in LIST_KEYS:
            if k in m and not isinstance(m[k], list):
                raise SignatureError(f"{path}: match[{i}]: {k} must be a list")
        for k in ("message", "pod", "namespace", "name"):
            if k in m:
                try:
                    rx = re.compile(m[k])
                except (re.error, TypeError) as e:
                    raise SignatureError(f"{path}: match[{i}]: bad regex in {k}: {e}") from None
                if k == "message" and "node_ip" in rx.groupindex and "nodes" not in facts:
                    facts.append("nodes")
        for f in WHERE_FACTS[where]:
            if f not in facts:
                facts.append(f)
    if data.get("host_rules") and "nodes" not in facts:
        facts.append("nodes")
    g = data.get("guide") or {}
    if not isinstance(g, dict) or (g.get("line") is not None and not isinstance(g.get("line"), int)):
        raise SignatureError(f"{path}: guide must be {{section, title, line, quote}} with an integer line")
    if set(g) - {"section", "title", "line", "quote"}:
        raise SignatureError(f"{path}: guide: unknown keys {sorted(set(g) - {'section', 'title', 'line', 'quote'})}")
    if g.get("section") != NOT_IN_GUIDE and not g.get("quote"):
        raise SignatureError(f"{path}: guide needs a quote from its section (or section: {NOT_IN_GUIDE!r})")
    cause, fix = _t(data.get("cause"), "cause", path), _t(data.get("fix"), "fix", path)
    sig = {"matchers": matchers, "cause": cause, "fix": fix, "on_match": data.get("on_match", "fail"),
           "grace_minutes": data.get("grace_minutes"), "host_rules": list(data.get("host_rules") or []),
           "summary": list(data.get("summary") or ["registry"])}

    def check(facts_: Any, ctx: Any) -> Result:
        return run_signature(sig, facts_, ctx)

    rule = Rule(id=sid, title=_t(data.get("title"), "title", path), scope="cluster",
                severity=data.get("severity", "high"), facts=tuple(facts),
                guide=_guide(g),
                doc=T(f"{cause.zh}\n修复：{fix.zh}", f"{cause.en}\nFix: {fix.en}"), roles=(),
                tags=tuple(["faq"] + list(data.get("tags") or [])), group="faq",
                remediation=data.get("remediation"), fix=tuple(data.get("commands") or ()),
                host_rules=tuple(sig["host_rules"]), check=check)
    return rule


def _guide(g: dict[str, Any]) -> Guide:
    if g.get("section") == NOT_IN_GUIDE:
        return Guide(NOT_IN_GUIDE, "文档未覆盖（现场经验）/ field knowledge, not in the guide", None, None)
    return Guide(str(g.get("section", "十三")), str(g.get("title", "FAQ")), g.get("line"), str(g["quote"]))


_COMPILED: dict[str, re.Pattern[str]] = {}


def _re(m: dict[str, Any], key: str) -> re.Pattern[str] | None:
    if key not in m:
        return None
    pat = m[key]
    c = _COMPILED.get(pat)
    if c is None:
        c = _COMPILED[pat] = re.compile(pat)
    return c


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


def _index(facts: Any) -> dict[str, Any]:
    """Per-scan indexes shared by every signature (15 signatures must not each walk 20,000 events)."""
    idx = getattr(facts, "_faq_index", None)
    if idx is None:
        idx = {}
        try:
            facts._faq_index = idx
        except AttributeError:  # a facts object that takes no attributes: no caching
            pass
    return idx


def _events_by_reason(facts: Any) -> dict[str, list[dict[str, Any]]]:
    idx = _index(facts)
    if "events" not in idx:
        by: dict[str, list[dict[str, Any]]] = {}
        for e in facts.get("events"):
            by.setdefault(e.get("reason") or "", []).append(e)
        idx["events"] = by
    return idx["events"]


def _pods_with_state(facts: Any, where: str, reasons: set[str]) -> list[dict[str, Any]]:
    """Pods (in list order) with a container whose `where` state (or last termination) has one of `reasons`."""
    idx = _index(facts)
    key = f"state:{where}"
    if key not in idx:
        by: dict[str, list[dict[str, Any]]] = {}
        for p in facts.get("pods"):
            seen = set()
            for cs in container_statuses(p):
                st = (cs.get("state") or {}).get(where) or ((cs.get("lastState") or {}).get("terminated")
                                                           if where == "terminated" else None)
                r = (st or {}).get("reason")
                if st and r not in seen:
                    seen.add(r)
                    by.setdefault(r or "", []).append(p)
        idx[key] = by
    out, seen_ids = [], set()
    for r in sorted(reasons):
        for p in idx[key].get(r, ()):
            if id(p) not in seen_ids:
                seen_ids.add(id(p))
                out.append(p)
    order = {id(p): i for i, p in enumerate(facts.get("pods"))} if len(reasons) > 1 else None
    return sorted(out, key=lambda p: order[id(p)]) if order else out


def find_matches(sig: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pods_cache: list[dict[str, Any]] | None = None

    def pods() -> list[dict[str, Any]]:
        nonlocal pods_cache
        if pods_cache is None:
            pods_cache = facts.get("pods")
        return pods_cache

    index: dict[tuple[Any, Any], dict[str, Any]] | None = None

    def pod_index() -> dict[tuple[Any, Any], dict[str, Any]]:
        nonlocal index
        if index is None:
            index = {(md(p).get("namespace"), md(p)["name"]): p for p in pods()}
        return index

    def scoped(m: dict[str, Any], ns: str, name: str) -> bool:
        pr, nr = _re(m, "pod"), _re(m, "namespace")
        return (pr is None or bool(pr.search(name))) and (nr is None or bool(nr.search(ns)))

    for m in sig["matchers"]:
        where = m["where"]
        msg_re = _re(m, "message")
        reasons = set(m.get("reason") or [])
        if where in ("waiting", "terminated"):
            candidates = pods() if not reasons else _pods_with_state(facts, where, reasons)
            for p in candidates:
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
            candidates = facts.get("events") if not reasons else \
                [e for r in sorted(reasons) for e in _events_by_reason(facts).get(r, ())]
            if reasons and len(reasons) > 1:  # keep the API's order, as without the index
                pos = _index(facts).setdefault("event_pos", {id(e): i for i, e in enumerate(facts.get("events"))})
                candidates.sort(key=lambda e: pos[id(e)])
            for e in candidates:
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
                node, p = None, None
                if io.get("kind") == "Pod":
                    p = pod_index().get((io.get("namespace"), io.get("name")))
                    node = ((p or {}).get("spec") or {}).get("nodeName")
                node = node or (e.get("source") or {}).get("host")
                out.append({"where": "event", "object": f"{io.get('kind')}/{io.get('namespace', '')}/{io.get('name')}".replace("//", "/"),
                            "node": node, "reason": e.get("reason"), "text": text[:300],
                            "details": _details(mm.groupdict() if mm else {}), "count": e.get("count"), "_pod": p})
        elif where == "log":
            logs = facts.get("logs")
            with_logs = {tuple(k.split("/", 2)[:2]) for k in logs}  # logs exist for failing pods only
            for p in (x for x in pods() if (md(x).get("namespace", ""), md(x)["name"]) in with_logs):
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
                if (name_re and not name_re.search(name)) or not scoped(m, ns, name):
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
        elif where == "helm":
            name_re, statuses = _re(m, "name"), set(m.get("status") or [])
            for r in facts.get("helm_releases"):
                ns, name = r.get("namespace") or "", r.get("name") or ""
                if (name_re and not name_re.search(name)) or not scoped(m, ns, name):
                    continue
                if statuses and r.get("status") not in statuses:
                    continue
                chart = f"{r.get('chart')}-{r.get('chart_version')}" if r.get("chart") else "chart unreadable"
                out.append({"where": "helm", "object": f"{ns}/{name}", "node": None, "reason": r.get("status"),
                            "text": f"release {name} revision {r.get('revision')} ({chart}) is {r.get('status')}",
                            "details": {"release": f"{ns}/{name}", "status": str(r.get("status"))}})
    _retarget(out, facts)
    # one entry per object and where; keep the order found
    seen, uniq = set(), []
    for x in out:
        k = (x["where"], x["object"], x.get("container"))
        if k not in seen:
            seen.add(k)
            uniq.append(x)
    return uniq


def _retarget(matches: list[dict[str, Any]], facts: Any) -> None:
    """A `node_ip` detail names the node the error is about (not the one the reporting pod runs on)."""
    if not any(x["details"].get("node_ip") for x in matches):
        return
    from bkdoctor.facts.k8s import node_internal_ip
    from bkdoctor.model import FactUnavailable

    try:
        by_ip = {node_internal_ip(n): md(n)["name"] for n in facts.get("nodes")}
    except FactUnavailable:
        return
    for x in matches:
        name = by_ip.get(x["details"].get("node_ip"))
        if name:
            x["reported_by"] = x.get("node")
            x["node"] = name


def run_signature(sig: dict[str, Any], facts: Any, ctx: Any) -> Result:
    matches = find_matches(sig, facts)
    now = dt.datetime.now(dt.timezone.utc)
    grace = sig.get("grace_minutes")
    young = []
    if grace is not None:
        keep = []
        for x in matches:
            age = _age_minutes(x["_pod"], now) if x.get("_pod") else None
            if age is not None and age >= grace:
                x["age_minutes"] = int(age)
            (young if age is not None and age < grace else keep).append(x)
        matches = keep
    public = [{k: v for k, v in x.items() if not k.startswith("_")} for x in matches]
    observed = {"matches": public[:MAX_MATCHES], "count": len(public)}
    if not matches:
        if young:
            objs = sorted({x["object"] for x in young})
            names = ", ".join(objs[:3]) + (f" (+{len(objs) - 3})" if len(objs) > 3 else "")
            return Result("pass", T(f"{names} 符合特征，但处于启动后 {grace} 分钟内，属正常现象",
                                    f"{names} matches, but within the first {grace} minutes after start: expected"),
                          observed={"matches": [], "count": 0, "within_grace": len(young), "within_grace_objects": objs[:MAX_MATCHES]},
                          expected="no match")
        return Result("pass", T("没有对象符合此故障特征", "nothing matches this failure signature"), observed=observed,
                      expected="no match")
    details: dict[str, set[str]] = {}
    for x in public:
        for k, v in x["details"].items():
            details.setdefault(k, set()).add(v)
    first = public[0]
    if first.get("reported_by"):  # re-targeted by node_ip: the pod reports about another node
        where_zh = f"{first['object']}（位于 {first['reported_by']}）报告节点 {first['node']}"
        where_en = f"{first['object']} (on {first['reported_by']}) reports node {first['node']}"
    else:
        where_zh = f"{first['object']}" + (f"（节点 {first['node']}）" if first.get("node") else "")
        where_en = f"{first['object']}" + (f" (node {first['node']})" if first.get("node") else "")
    if first.get("age_minutes") is not None:
        where_zh += f"（启动 {first['age_minutes']} 分钟，已超过 {grace} 分钟的正常期）"
        where_en += f" (started {first['age_minutes']} min ago, past the {grace}-minute settling time)"
    extra = "".join(f" [{k}: {', '.join(sorted(details[k]))}]" for k in sig["summary"] if details.get(k))
    more_zh = f" 等 {len(public)} 处" if len(public) > 1 else ""
    more_en = f" and {len(public) - 1} more" if len(public) > 1 else ""
    excerpt = f": {first['text'].rstrip('.。')}" if first.get("text") else ""
    msg = T(f"{where_zh}{more_zh}{extra}{excerpt}。原因：{sig['cause'].zh} 修复：{sig['fix'].zh}",
            f"{where_en}{more_en}{extra}{excerpt}. Cause: {sig['cause'].en} Fix: {sig['fix'].en}")
    observed["details"] = {k: sorted(v) for k, v in details.items()}
    return Result(sig["on_match"], msg, observed=observed, expected="no match")

