"""FAQ failure signatures (rules/cluster/faq-<id>.yaml) without an API server: every file loads, broken files give a clear
SignatureError, and each `where` kind matches on hand-built facts."""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import pytest
import yaml

from bkdoctor.model import FactUnavailable, T
from bkdoctor.scan import faq
from bkdoctor.scan.faq import SignatureError, load_signature
from bkdoctor.scan.loader import rules_dir

FAQ_FILES = sorted(rules_dir().glob("*/faq-*.yaml"))


# --------------------------------------------------------------------------- the shipped signatures


def test_there_are_signatures():
    assert len(FAQ_FILES) >= 15


@pytest.mark.parametrize("path", FAQ_FILES, ids=[p.stem for p in FAQ_FILES])
def test_signature_file_is_complete(path):
    rule = load_signature(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert rule.id == path.stem == data["id"]
    assert rule.scope == "cluster" and rule.group == "faq" and "faq" in rule.tags
    for key in ("title", "cause", "fix"):
        assert data[key]["zh"].strip() and data[key]["en"].strip(), key
        assert data[key]["zh"] != data[key]["en"], key
        assert re.search(r"[\u4e00-\u9fff]", data[key]["zh"]), f"{key}.zh has no Chinese text"
    assert rule.guide.section and rule.guide.title
    # a quote from the cited section (held against the guide in test_guide_citations), or "not in the guide"
    assert (isinstance(rule.guide.line, int) and rule.guide.quote) or rule.guide.section == "not in the guide"
    assert rule.fix, "commands from the guide"
    for m in data["match"]:
        for k in ("message", "pod", "namespace", "name"):
            if k in m:
                re.compile(m[k])
    assert rule.check is not None


# --------------------------------------------------------------------------- broken files

GOOD = """
id: {id}
title: {{zh: "标题", en: "Title"}}
guide: {{section: "十三", title: "FAQ", line: 2461, quote: "持续更新"}}
match:
  - where: event
    message: 'boom (?P<what>\\w+)'
cause: {{zh: "原因", en: "cause"}}
fix: {{zh: "修复", en: "fix"}}
"""


def write(tmp_path, text, name="faq-x"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_a_minimal_signature_loads(tmp_path):
    rule = load_signature(write(tmp_path, GOOD.format(id="faq-x")))
    assert rule.id == "faq-x" and rule.facts == ("events", "pods") and rule.severity == "high"


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda s: s.replace("'boom (?P<what>\\w+)'", "'boom (?P<what>'"), "bad regex in message"),
        (lambda s: s.replace("where: event", "where: syslog"), "unknown where 'syslog'"),
        (lambda s: s.replace('en: "cause"', 'en: ""'), "cause needs zh and en text"),
        (lambda s: s.replace('{zh: "修复", en: "fix"}', '{zh: "修复"}'), "fix needs zh and en text"),
        (lambda s: s.replace("id: faq-x", "id: faq-y"), "id 'faq-y' does not equal the file name"),
        (lambda s: s.replace("    message:", "    mesage:"), "unknown keys ['mesage']"),
        (
            lambda s: s.replace("where: event\n    message: 'boom (?P<what>\\w+)'", "where: log"),
            "needs a message regex",
        ),
        (lambda s: s.replace("where: event", "where: event\n    reason: Failed"), "reason must be a list"),
        (lambda s: s + "on_match: explode\n", "on_match must be fail or warn"),
        (lambda s: s + "grace_minutes: soon\n", "grace_minutes must be a number"),
        (lambda s: s + "severity: urgent\n", "severity 'urgent'"),
        (lambda s: s + "hostrules: [firewall]\n", "unknown keys ['hostrules']"),
        (
            lambda s: s.replace("match:\n  - where: event\n    message: 'boom (?P<what>\\w+)'\n", "match: []\n"),
            "no match entries",
        ),
        (lambda s: "- just a list\n", "not a mapping"),
    ],
)
def test_broken_signature_is_a_clear_error(tmp_path, edit, why):
    path = write(tmp_path, edit(GOOD.format(id="faq-x")))
    with pytest.raises(SignatureError) as e:
        load_signature(path)
    assert why in str(e.value)
    assert str(path) in str(e.value)  # names the file


# --------------------------------------------------------------------------- each `where` on hand-built facts


class Facts:
    def __init__(self, **kinds):
        self.kinds = kinds

    def get(self, kind):
        if kind not in self.kinds:
            raise FactUnavailable(T(f"没有 {kind}", f"no {kind}"))
        return self.kinds[kind]

    def index(self, key, build):  # ClusterFacts keeps these for the scan; here each signature builds its own
        return build()


def pod(
    name,
    ns="blueking",
    node="node-10-0-0-5",
    *,
    phase="Running",
    ready=True,
    restarts=0,
    waiting=None,
    terminated=None,
    last=None,
    start="2026-11-26T08:00:00Z",
    container="main",
):
    state = {"waiting": waiting} if waiting else ({"terminated": terminated} if terminated else {"running": {}})
    cs = {"name": container, "ready": ready, "restartCount": restarts, "state": state}
    if last:
        cs["lastState"] = {"terminated": last}
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "containers": [{"name": container}]},
        "status": {
            "phase": phase,
            "startTime": start,
            "containerStatuses": [cs],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def node(name, ip):
    return {"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def sig(tmp_path, match, **top):
    data = {
        "id": "faq-t",
        "title": {"zh": "标题", "en": "Title"},
        "guide": {"section": "十三", "title": "FAQ", "line": 2461, "quote": "持续更新"},
        "match": match,
        "cause": {"zh": "原因", "en": "the cause"},
        "fix": {"zh": "修复", "en": "the fix"},
        **top,
    }
    p = tmp_path / "faq-t.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_signature(p)


def run(rule, facts):
    return rule.check(facts, None)


def test_where_waiting(tmp_path):
    rule = sig(
        tmp_path, [{"where": "waiting", "reason": ["ImagePullBackOff"], "message": 'pulling image "(?P<image>[^"]+)"'}]
    )
    bad = pod(
        "web-1",
        ready=False,
        phase="Pending",
        waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "docker.bk.com/a/b:1"'},
    )
    other = pod("web-2", ready=False, phase="Pending", waiting={"reason": "ContainerCreating", "message": ""})
    r = run(rule, Facts(pods=[other, bad]))
    assert r.status == "fail"
    assert r.observed["matches"][0]["object"] == "blueking/web-1"
    assert r.observed["details"] == {"image": ["docker.bk.com/a/b:1"], "registry": ["docker.bk.com"]}
    assert "[registry: docker.bk.com]" in r.message.en and "the cause" in r.message.en and "修复" in r.message.zh
    assert run(rule, Facts(pods=[other])).status == "pass"


def test_where_terminated_reason_exit_code_and_last_state(tmp_path):
    rule = sig(tmp_path, [{"where": "terminated", "reason": ["OOMKilled"], "exit_codes": [137]}])
    oom = pod("es-0", restarts=3, last={"reason": "OOMKilled", "exitCode": 137})
    err = pod("es-1", restarts=1, last={"reason": "Error", "exitCode": 1})
    r = run(rule, Facts(pods=[oom, err]))
    assert r.status == "fail" and [m["object"] for m in r.observed["matches"]] == ["blueking/es-0"]
    assert run(rule, Facts(pods=[err])).status == "pass"


def test_where_event_kind_reason_and_pod_scope(tmp_path):
    rule = sig(
        tmp_path,
        [
            {
                "where": "event",
                "kind": "Pod",
                "reason": ["Failed"],
                "pod": "^bkapp-",
                "message": "lookup (?P<registry>docker\\.[a-z0-9.]+).*no such host",
            }
        ],
    )
    ev = {
        "involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "bkapp-web"},
        "reason": "Failed",
        "count": 3,
        "message": "dial tcp: lookup docker.bk.com on 10.0.0.1:53: no such host",
    }
    other_pod = dict(ev, involvedObject={"kind": "Pod", "namespace": "ns1", "name": "nginx"})
    other_kind = dict(ev, involvedObject={"kind": "Job", "namespace": "ns1", "name": "bkapp-job"})
    p = pod("bkapp-web", ns="ns1", node="node-10-0-0-6")
    r = run(rule, Facts(events=[other_pod, other_kind, ev], pods=[p]))
    assert r.status == "fail"
    (m,) = r.observed["matches"]
    assert m["object"] == "Pod/ns1/bkapp-web" and m["node"] == "node-10-0-0-6" and m["count"] == 3
    assert m["details"] == {"registry": "docker.bk.com"}
    assert run(rule, Facts(events=[other_pod, other_kind], pods=[p])).status == "pass"


def _match_event_before(m, facts):
    """The event matcher before its rows index (issue 16): each event's fields read for each entry. Which events
    match, in which order and with which groups is what changed; a match is then made by the same `_event_match`."""
    kind, reasons, out = m.get("kind"), set(m.get("reason") or []), []
    by = {}
    for e in facts.get("events"):
        by.setdefault(e.get("reason") or "", []).append(e)
    candidates = facts.get("events") if not reasons else [e for r in sorted(reasons) for e in by.get(r, ())]
    if reasons and len(reasons) > 1:
        pos = {id(e): i for i, e in enumerate(facts.get("events"))}
        candidates.sort(key=lambda e: pos[id(e)])
    for e in candidates:
        io = e.get("involvedObject") or {}
        if kind and io.get("kind") != kind:
            continue
        if reasons and e.get("reason") not in reasons:
            continue
        pod_rx, ns_rx = faq._re(m, "pod"), faq._re(m, "namespace")
        if (pod_rx is not None and not pod_rx.search(io.get("name", ""))) or (
            ns_rx is not None and not ns_rx.search(io.get("namespace", ""))
        ):
            continue
        text = e.get("message", "") or ""
        groups = faq._message(m, text)
        if groups is None:
            continue
        out.append(faq._event_match(e, text, groups, facts))
    return out


@pytest.mark.parametrize(
    "entry",
    [
        {"where": "event"},
        {"where": "event", "message": "pull (?P<image>[^ ]+)"},
        {"where": "event", "kind": "Pod", "reason": ["Failed"], "message": "pull"},
        {"where": "event", "reason": ["Failed", "BackOff", ""], "pod": "^web-"},
        {"where": "event", "reason": ["BackOff", "Failed"], "namespace": "^ns1$", "kind": "Pod"},
        {"where": "event", "kind": "Node", "message": "(?P<node_ip>10\\.[0-9.]+)"},
    ],
)
def test_where_event_rows_match_as_the_events_did(entry):
    """The event matcher reads each event's fields once per scan (`_event_rows`, issue 16): its matches, in the
    same order, are those of reading them from every event for each entry, on odd events too (no involvedObject,
    no or a null message, no or an empty reason, other kinds, a source host, several reasons out of order)."""
    events = [
        {
            "involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-1"},
            "reason": "Failed",
            "count": 2,
            "message": "pull docker.bk.com/a:1 failed",
        },
        {"involvedObject": {"kind": "Pod", "namespace": "ns2", "name": "web-2"}, "reason": "BackOff", "message": None},
        {"reason": "Failed", "message": "pull x"},
        {
            "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "NodeNotReady",
            "message": "node 10.0.0.5 not ready",
            "source": {"host": "node-1"},
        },
        {"involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-3"}, "reason": "", "message": "pull y"},
        {"involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "db-1"}, "message": "pull z"},
        {
            "involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-1"},
            "reason": "BackOff",
            "message": "pull again",
        },
        {"involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "web-4"}, "reason": "Failed"},
    ]
    facts = Facts(events=events, pods=[pod("web-1", ns="ns1", node="node-9")])
    before = _match_event_before(entry, facts)
    assert faq._match_event(entry, facts) == before
    assert before  # each entry here matches some of the events (and not others)


def test_where_log_reads_current_and_previous_of_failing_pods(tmp_path):
    rule = sig(
        tmp_path,
        [
            {
                "where": "log",
                "pod": "^bcs-services-stack-mariadb-",
                "message": "Can't connect to local MySQL server through socket '(?P<socket>[^']+)'",
            }
        ],
    )
    p = pod("bcs-services-stack-mariadb-0", ns="bcs-system", ready=False, restarts=1)
    text = "starting\nerror: 'Can't connect to local MySQL server through socket '/tmp/mysql.sock' (2)'\nbye\n"
    r = run(rule, Facts(pods=[p], logs={"bcs-system/bcs-services-stack-mariadb-0/main/1": text}))
    assert r.status == "fail"
    (m,) = r.observed["matches"]
    assert m["where"] == "log" and m["container"] == "main" and m["details"] == {"socket": "/tmp/mysql.sock"}
    assert m["text"] == "error: 'Can't connect to local MySQL server through socket '/tmp/mysql.sock' (2)'"  # the line
    assert (
        run(rule, Facts(pods=[p], logs={"bcs-system/bcs-services-stack-mariadb-0/main/0": "all good\n"})).status
        == "pass"
    )


def test_where_job_not_complete_and_failed(tmp_path):
    rule = sig(tmp_path, [{"where": "job", "name": "^bkpaas3-apiserver-init-data", "failed": True}])

    def job(name, **st):
        return {"metadata": {"name": name, "namespace": "blueking"}, "status": st}

    failing = job("bkpaas3-apiserver-init-data", active=1, failed=2)
    running = job("bkpaas3-apiserver-init-data", active=1)
    done = job(
        "bkpaas3-apiserver-init-data", succeeded=1, failed=1, conditions=[{"type": "Complete", "status": "True"}]
    )
    r = run(rule, Facts(jobs=[failing]))
    assert r.status == "fail" and "active=1 failed=2" in r.message.en
    assert run(rule, Facts(jobs=[running, done, job("other", failed=3)])).status == "pass"


def test_where_pod_phase_and_not_ready(tmp_path):
    rule = sig(tmp_path, [{"where": "pod", "pod": "^bk-mongodb-", "phase": ["Pending", "Running"], "ready": False}])
    stuck = pod("bk-mongodb-0", phase="Pending", ready=False)
    ok = pod("bk-mongodb-1")
    r = run(rule, Facts(pods=[ok, stuck]))
    assert r.status == "fail" and [m["object"] for m in r.observed["matches"]] == ["blueking/bk-mongodb-0"]
    assert run(rule, Facts(pods=[ok])).status == "pass"


def test_where_helm_pending_statuses(tmp_path):
    rule = sig(tmp_path, [{"where": "helm", "status": ["pending-install", "pending-upgrade", "pending-rollback"]}])
    assert rule.facts == ("helm_releases",)

    def rel(name, status, rev=2):
        return {
            "namespace": "blueking",
            "name": name,
            "status": status,
            "revision": rev,
            "chart": name,
            "chart_version": "1.0.0",
        }

    r = run(rule, Facts(helm_releases=[rel("bk-cmdb", "deployed"), rel("bk-paas", "pending-upgrade")]))
    assert r.status == "fail"
    (m,) = r.observed["matches"]
    assert m["object"] == "blueking/bk-paas" and m["reason"] == "pending-upgrade" and m["node"] is None
    assert "revision 2" in m["text"]
    assert run(rule, Facts(helm_releases=[rel("bk-cmdb", "deployed"), rel("bk-job", "failed")])).status == "pass"


def test_grace_minutes_then_on_match(tmp_path):
    rule = sig(
        tmp_path,
        [{"where": "waiting", "pod": "^bk-monitor-consul", "reason": ["CrashLoopBackOff"]}],
        grace_minutes=10,
        on_match="warn",
        severity="info",
    )
    assert rule.severity == "info"
    now = dt.datetime.now(dt.timezone.utc)

    def consul(minutes):
        start = (now - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return pod(
            "bk-monitor-consul-server-0",
            ready=False,
            restarts=2,
            start=start,
            waiting={"reason": "CrashLoopBackOff", "message": "back-off 20s"},
        )

    young = run(rule, Facts(pods=[consul(3)]))
    assert young.status == "pass" and young.observed["within_grace"] == 1
    assert "within the first 10 minutes" in young.message.en and "bk-monitor-consul-server-0" in young.message.en
    old = run(rule, Facts(pods=[consul(45)]))
    assert old.status == "warn" and "started 45 min ago" in old.message.en


def test_node_ip_group_retargets_to_the_named_node(tmp_path):
    rule = sig(
        tmp_path,
        [{"where": "log", "message": r"dial tcp (?P<node_ip>[\d.]+):10250: connect: no route to host"}],
        host_rules=["firewall"],
    )
    assert "nodes" in rule.facts
    ms = pod("metrics-server-1", ns="kube-system", node="master-10-0-0-2", ready=False)
    logs = {"kube-system/metrics-server-1/main/0": 'err="dial tcp 10.0.0.6:10250: connect: no route to host"\n'}
    nodes = [node("master-10-0-0-2", "10.0.0.2"), node("node-10-0-0-6", "10.0.0.6")]
    r = run(rule, Facts(pods=[ms], logs=logs, nodes=nodes))
    (m,) = r.observed["matches"]
    assert r.status == "fail" and m["node"] == "node-10-0-0-6" and m["reported_by"] == "master-10-0-0-2"
    assert "reports node node-10-0-0-6" in r.message.en
    # nodes unreadable: the match stays on the reporting pod's node
    r = run(rule, Facts(pods=[ms], logs=logs))
    assert r.observed["matches"][0]["node"] == "master-10-0-0-2"


def test_every_where_kind_has_a_test():
    tested = {"waiting", "terminated", "event", "log", "job", "pod", "helm"}
    assert set(faq.WHERES) == tested


def test_a_broken_shipped_signature_still_names_its_file(tmp_path):
    """Shipped signatures skip the schema at start-up (validate=False); one edited in place that no longer loads is
    read again with the schema: a one-line error with the file, never a bare KeyError from every command."""
    good = GOOD.format(id="faq-x")
    broken = good.replace("match:\n  - where: event\n    message: 'boom (?P<what>\\w+)'\n", "")
    assert broken != good and "match" not in broken
    p = write(tmp_path, broken)
    with pytest.raises(SignatureError) as e:
        load_signature(p, validate=False)
    assert str(e.value).startswith(str(p)) and "\n" not in str(e.value)
