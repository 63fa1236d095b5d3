"""FAQ failure signatures as data: `rules/cluster/faq-<id>.yaml` -> a cluster rule.

A signature says where to look and what to match; the matchers are generic, so a new signature is a few lines
of YAML. Its shape is checked by `faq-signature.schema.json` (one-line errors in the words of its `x-message`s);
regexes and the guide quote are checked here. Where to look (`where`; `WHERES` holds each one's keys, facts and
matcher):
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
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

import yaml

from bkdoctor.facts.k8s import container_statuses, md, pod_failing, ref
from bkdoctor.guidetext import NOT_IN_GUIDE
from bkdoctor.model import SEVERITIES, Guide, Result, Rule, T

SCHEMA_PATH = Path(__file__).with_name("faq-signature.schema.json")
COMMON_KEYS = ("where", "pod", "namespace")
MAX_MATCHES = 20


class SignatureError(ValueError):
    pass


def _t(d: dict[str, Any]) -> T:
    return T(str(d["zh"]).strip(), str(d["en"]).strip())


def load_signature(path: Path, validate: bool = True) -> Rule:
    """A signature file as a cluster rule. `validate=False` skips the JSON Schema for the signatures shipped in the
    package: they are validated by the tests (tests/test_faq.py), and building the validator costs ~100 ms at every
    start (issue #16's start-up goals); anything else is validated. A shipped file that still fails to load
    (edited in place) is loaded again with the schema, so the error names the file and the key, never a bare
    KeyError."""
    if not validate:
        try:
            return _load_signature(path, False)
        except SignatureError:
            raise
        except Exception:
            return _load_signature(path, True)
    return _load_signature(path, True)


def _load_signature(path: Path, validate: bool) -> Rule:
    try:
        # libyaml when present: 15 signatures load at every start, the pure-Python parser made that ~100 ms
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise SignatureError(f"{path}: not valid YAML: {e}") from None
    errors = (
        sorted(_validator().iter_errors(data), key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path))))
        if validate
        else []
    )
    if errors:  # the deepest names the key that is wrong
        raise SignatureError(f"{path}: {_say(errors[0], data)}")
    sid = data.get("id")
    if sid != path.stem:
        raise SignatureError(f"{path}: id {sid!r} does not equal the file name")
    matchers = data["match"]
    facts: list[str] = []
    for i, m in enumerate(matchers):
        for k in ("message", "pod", "namespace", "name"):
            if k in m:
                try:
                    rx = re.compile(m[k])
                except re.error as e:
                    raise SignatureError(f"{path}: match[{i}]: bad regex in {k}: {e}") from None
                if k == "message" and "node_ip" in rx.groupindex and "nodes" not in facts:
                    facts.append("nodes")
        for f in WHERES[m["where"]].facts:
            if f not in facts:
                facts.append(f)
    if data.get("host_rules") and "nodes" not in facts:
        facts.append("nodes")
    g = data.get("guide") or {}
    if g.get("section") != NOT_IN_GUIDE and not g.get("quote"):
        raise SignatureError(f"{path}: guide needs a quote from its section (or section: {NOT_IN_GUIDE!r})")
    cause, fix = _t(data["cause"]), _t(data["fix"])
    sig = {
        "matchers": matchers,
        "cause": cause,
        "fix": fix,
        "on_match": data.get("on_match", "fail"),
        "grace_minutes": data.get("grace_minutes"),
        "host_rules": list(data.get("host_rules") or []),
        "summary": list(data.get("summary") or ["registry"]),
    }

    def check(facts_: Any, ctx: Any) -> Result:
        return run_signature(sig, facts_, ctx)

    rule = Rule(
        id=sid,
        title=_t(data["title"]),
        scope="cluster",
        severity=data.get("severity", "high"),
        facts=tuple(facts),
        guide=_guide(g),
        doc=T(f"{cause.zh}\n修复：{fix.zh}", f"{cause.en}\nFix: {fix.en}"),
        roles=(),
        tags=tuple(["faq"] + list(data.get("tags") or [])),
        group="faq",
        fix=tuple(data.get("commands") or ()),
        host_rules=tuple(sig["host_rules"]),
        check=check,
    )
    return rule


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    """The signature schema with what has its home in code filled in: severities, and each `where` with its keys."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema["properties"]["severity"]["enum"] = list(SEVERITIES)
    matcher = schema["$defs"]["matcher"]
    matcher["properties"]["where"]["enum"] = list(WHERES)
    matcher["allOf"] = [
        {
            "if": {"properties": {"where": {"const": name}}, "required": ["where"]},
            "then": {
                "properties": {k: matcher["properties"][k] for k in COMMON_KEYS + w.keys},
                "additionalProperties": False,
                "required": list(w.needs),
            },
        }
        for name, w in WHERES.items()
    ]
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    from bkdoctor.safe.yamlfile import schema_validator

    return schema_validator(_schema())


def _x(schema: dict[str, Any], what: str = "x-message") -> str | None:
    """A schema node's message (`x-required` falls back to `x-message`), through one local $ref."""
    if what not in schema and "x-message" not in schema and "$ref" in schema:
        schema = _schema()["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get(what) or schema.get("x-message")


def _say(e: Any, data: Any) -> str:
    """One line for a schema error, in the words of the schema's x-message (`match[0]: reason must be a list`)."""
    loc, value, template = list(e.absolute_path), e.instance, _x(e.schema)
    enum = e.validator_value if e.validator == "enum" else ()
    entry = data["match"][loc[1]] if loc[:1] == ["match"] and len(loc) > 1 else None
    where = entry.get("where") if isinstance(entry, dict) and len(loc) == 2 else None
    if e.validator == "required":  # said as an error on the missing key
        missing = next(k for k in e.validator_value if k not in e.instance)
        prop = e.schema["properties"][missing]
        value, template, enum = None, _x(prop, "x-required"), prop.get("enum", ())
        if where is None:
            loc.append(missing)
    if entry is not None:
        at, loc = f"match[{loc[1]}]", loc[2:]
        at += f" (where: {where})" if where is not None else ""
        at += ": " if loc or e.validator == "additionalProperties" else " "
    else:
        at = f"{loc[0]}: " if loc and e.validator == "additionalProperties" else ""
    if e.validator == "additionalProperties":
        return f"{at}unknown keys {sorted(set(e.instance) - set(e.schema.get('properties', {})))}"
    if not template:
        from bkdoctor.safe import yamlfile

        return f"{at}{'.'.join(map(str, loc)) or '(top level)'}: {yamlfile.schema_message(e)}"
    return at + template.format(
        key=loc[0] if loc else None, value=value, enum=list(enum), one_of=", ".join(map(str, enum))
    )


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


def _message(m: dict[str, Any], text: str) -> dict[str, str] | None:
    """The entry's `message` regex on `text`: its named groups ({} without a regex), or None when it does not match."""
    rx = _re(m, "message")
    if rx is None:
        return {}
    mm = rx.search(text)
    return mm.groupdict() if mm else None


def _scoped(m: dict[str, Any], ns: str, name: str) -> bool:
    pr, nr = _re(m, "pod"), _re(m, "namespace")
    return (pr is None or bool(pr.search(name))) and (nr is None or bool(nr.search(ns)))


def _state(cs: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A container's `where` state (waiting, terminated), or for terminated its last termination."""
    return (cs.get("state") or {}).get(where) or (
        (cs.get("lastState") or {}).get("terminated") if where == "terminated" else None
    )


# Per-scan indexes live on the facts (`facts.index(key, build)`), shared by every signature: 15 signatures must not
# each walk 20,000 events.
def _pod_named(facts: Any, ns: Any, name: Any) -> dict[str, Any] | None:
    by = facts.index("faq:pod-by-name", lambda: {(md(p).get("namespace"), md(p)["name"]): p for p in facts.get("pods")})
    return by.get((ns, name))


def _event_rows(facts: Any) -> dict[Any, list[tuple[Any, ...]]]:
    """Every event as a row `(position, kind, namespace, name, message, event)` (the involvedObject's kind,
    namespace and name, and the message, read as the matcher reads them), in the API's order: all of them under
    `None`, and each under its reason. The event matcher walks these rows for each of its entries (11 entries over
    20,000 events in the cluster bench) instead of looking the same five keys up in every event each time."""

    def build() -> dict[Any, list[tuple[Any, ...]]]:
        rows: list[tuple[Any, ...]] = []
        by: dict[Any, list[tuple[Any, ...]]] = {None: rows}
        for i, e in enumerate(facts.get("events")):
            io = e.get("involvedObject") or {}
            row = (i, io.get("kind"), io.get("namespace", ""), io.get("name", ""), e.get("message", "") or "", e)
            rows.append(row)
            r = e.get("reason")
            if r is not None:
                by.setdefault(r, []).append(row)
        return by

    return facts.index("faq:event-rows", build)


def _pods_with_state(facts: Any, where: str, reasons: set[str]) -> list[dict[str, Any]]:
    """Pods (in list order) with a container whose `where` state (or last termination) has one of `reasons`."""

    def build() -> dict[str, list[dict[str, Any]]]:
        by: dict[str, list[dict[str, Any]]] = {}
        for p in facts.get("pods"):
            seen = set()
            for cs in container_statuses(p):
                st = _state(cs, where)
                r = (st or {}).get("reason")
                if st and r not in seen:
                    seen.add(r)
                    by.setdefault(r or "", []).append(p)
        return by

    by_reason = facts.index(f"faq:state:{where}", build)
    out, seen_ids = [], set()
    for r in sorted(reasons):
        for p in by_reason.get(r, ()):
            if id(p) not in seen_ids:
                seen_ids.add(id(p))
                out.append(p)
    order = {id(p): i for i, p in enumerate(facts.get("pods"))} if len(reasons) > 1 else None
    return sorted(out, key=lambda p: order[id(p)]) if order else out


# -- one matcher per `where`: (the signature's entry, the facts) -> matches, in the facts' order -----------------------
def _match_state(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    where, reasons, out = m["where"], set(m.get("reason") or []), []
    for p in facts.get("pods") if not reasons else _pods_with_state(facts, where, reasons):
        if not _scoped(m, md(p).get("namespace", ""), md(p)["name"]):
            continue
        for cs in container_statuses(p):
            st = _state(cs, where)
            if not st or (reasons and st.get("reason") not in reasons):
                continue
            if m.get("exit_codes") and st.get("exitCode") not in m["exit_codes"]:  # terminated only
                continue
            text = st.get("message", "") or ""
            groups = _message(m, text)
            if groups is None:
                continue
            out.append(
                {
                    "where": where,
                    "object": ref(p),
                    "container": cs.get("name"),
                    "node": (p.get("spec") or {}).get("nodeName"),
                    "reason": st.get("reason"),
                    "text": text[:300],
                    "details": _details(groups),
                    "_pod": p,
                }
            )
    return out


def _match_event(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    kind, reasons, out = m.get("kind"), set(m.get("reason") or []), []
    rows = _event_rows(facts)
    candidates = rows[None] if not reasons else [row for r in sorted(reasons) for row in rows.get(r, ())]
    if reasons and len(reasons) > 1:  # keep the API's order, as without the index
        candidates.sort(key=itemgetter(0))
    # the entry's patterns looked up once, each event's fields read once per scan (`_event_rows`): this loop runs
    # over every event for each entry without a reason (20,000 events x 11 entries in the cluster bench; issue 16)
    pod_rx, ns_rx, msg_rx = _re(m, "pod"), _re(m, "namespace"), _re(m, "message")
    for _, ikind, ns, name, text, e in candidates:
        if kind and ikind != kind:
            continue
        if (pod_rx is not None and not pod_rx.search(name)) or (ns_rx is not None and not ns_rx.search(ns)):
            continue
        if msg_rx is None:
            groups: dict[str, str] = {}
        else:
            found = msg_rx.search(text)
            if found is None:
                continue
            groups = found.groupdict()
        out.append(_event_match(e, text, groups, facts))
    return out


def _event_match(e: dict[str, Any], text: str, groups: dict[str, str], facts: Any) -> dict[str, Any]:
    """The match of event `e` (its `message` is `text`, the entry's named groups `groups`)."""
    io = e.get("involvedObject") or {}
    p = _pod_named(facts, io.get("namespace"), io.get("name")) if io.get("kind") == "Pod" else None
    node = ((p or {}).get("spec") or {}).get("nodeName") or (e.get("source") or {}).get("host")
    return {
        "where": "event",
        "object": f"{io.get('kind')}/{io.get('namespace', '')}/{io.get('name')}".replace("//", "/"),
        "node": node,
        "reason": e.get("reason"),
        "text": text[:300],
        "details": _details(groups),
        "count": e.get("count"),
        "_pod": p,
    }


def _match_log(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    logs, msg_re, out = facts.get("logs"), _re(m, "message"), []
    assert msg_re is not None  # the schema: a log entry needs its message regex

    def build() -> list[dict[str, Any]]:  # the pods with logs (failing pods only), in list order: once per scan
        with_logs = {tuple(k.split("/", 2)[:2]) for k in logs}
        return [x for x in facts.get("pods") if (md(x).get("namespace", ""), md(x)["name"]) in with_logs]

    for p in facts.index("faq:pods-with-logs", build):
        ns, name = md(p).get("namespace", ""), md(p)["name"]
        if not _scoped(m, ns, name):
            continue
        for c in (p.get("spec") or {}).get("containers") or []:
            for prev in (False, True):
                text = logs.get(f"{ns}/{name}/{c['name']}/{int(prev)}")
                mm = msg_re.search(text) if text else None
                if not mm:
                    continue
                line = text[: mm.end()].rsplit("\n", 1)[-1] + text[mm.end() :].split("\n", 1)[0]
                out.append(
                    {
                        "where": "log",
                        "object": f"{ns}/{name}",
                        "container": c["name"],
                        "node": (p.get("spec") or {}).get("nodeName"),
                        "reason": "log",
                        "text": line.strip()[:300],
                        "details": _details(mm.groupdict()),
                        "_pod": p,
                    }
                )
                break
    return out


def _match_job(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    name_re, out = _re(m, "name"), []
    for j in facts.get("jobs"):
        ns, name = md(j).get("namespace", ""), md(j)["name"]
        if (name_re and not name_re.search(name)) or not _scoped(m, ns, name):
            continue
        st = j.get("status") or {}
        done = any(c.get("type") == "Complete" and c.get("status") == "True" for c in st.get("conditions") or [])
        if done or (m.get("failed") and not st.get("failed")):
            continue
        out.append(
            {
                "where": "job",
                "object": f"{ns}/{name}",
                "node": None,
                "reason": "not complete",
                "text": f"active={st.get('active', 0)} failed={st.get('failed', 0)} succeeded={st.get('succeeded', 0)}",
                "details": {},
            }
        )
    return out


def _match_pod(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    phases, out = set(m.get("phase") or []), []
    for p in facts.get("pods"):
        if not _scoped(m, md(p).get("namespace", ""), md(p)["name"]):
            continue
        ph = (p.get("status") or {}).get("phase")
        if phases and ph not in phases:
            continue
        if m.get("ready") is False and not pod_failing(p) and ph != "Pending":
            continue
        out.append(
            {
                "where": "pod",
                "object": ref(p),
                "node": (p.get("spec") or {}).get("nodeName"),
                "reason": ph,
                "text": "",
                "details": {},
                "_pod": p,
            }
        )
    return out


def _match_helm(m: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    name_re, statuses, out = _re(m, "name"), set(m.get("status") or []), []
    for r in facts.get("helm_releases"):
        ns, name = r.get("namespace") or "", r.get("name") or ""
        if (name_re and not name_re.search(name)) or not _scoped(m, ns, name):
            continue
        if statuses and r.get("status") not in statuses:
            continue
        chart = f"{r.get('chart')}-{r.get('chart_version')}" if r.get("chart") else "chart unreadable"
        out.append(
            {
                "where": "helm",
                "object": f"{ns}/{name}",
                "node": None,
                "reason": r.get("status"),
                "text": f"release {name} revision {r.get('revision')} ({chart}) is {r.get('status')}",
                "details": {"release": f"{ns}/{name}", "status": str(r.get("status"))},
            }
        )
    return out


@dataclass(frozen=True)
class Where:
    """One place a signature can look: the keys its entries take besides where/pod/namespace (and those they need),
    the facts it reads, and its matcher."""

    keys: tuple[str, ...]
    facts: tuple[str, ...]
    find: Callable[[dict[str, Any], Any], list[dict[str, Any]]]
    needs: tuple[str, ...] = ()


WHERES: dict[str, Where] = {
    "waiting": Where(("reason", "message"), ("pods",), _match_state),
    "terminated": Where(("reason", "message", "exit_codes"), ("pods",), _match_state),
    "event": Where(("reason", "message", "kind"), ("events", "pods"), _match_event),
    "log": Where(("message",), ("pods", "logs"), _match_log, needs=("message",)),
    "job": Where(("name", "failed"), ("jobs",), _match_job),
    "pod": Where(("phase", "ready"), ("pods",), _match_pod),
    "helm": Where(("status", "name"), ("helm_releases",), _match_helm),
}


def find_matches(sig: dict[str, Any], facts: Any) -> list[dict[str, Any]]:
    out = [x for m in sig["matchers"] for x in WHERES[m["where"]].find(m, facts)]
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
            return Result(
                "pass",
                T(
                    f"{names} 符合特征，但处于启动后 {grace} 分钟内，属正常现象",
                    f"{names} matches, but within the first {grace} minutes after start: expected",
                ),
                observed={
                    "matches": [],
                    "count": 0,
                    "within_grace": len(young),
                    "within_grace_objects": objs[:MAX_MATCHES],
                },
                expected="no match",
            )
        return Result(
            "pass",
            T("没有对象符合此故障特征", "nothing matches this failure signature"),
            observed=observed,
            expected="no match",
        )
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
    msg = T(
        f"{where_zh}{more_zh}{extra}{excerpt}。原因：{sig['cause'].zh} 修复：{sig['fix'].zh}",
        f"{where_en}{more_en}{extra}{excerpt}. Cause: {sig['cause'].en} Fix: {sig['fix'].en}",
    )
    observed["details"] = {k: sorted(v) for k, v in details.items()}
    return Result(sig["on_match"], msg, observed=observed, expected="no match")
