"""Grouping for the terminal (issue 15), pure parts: host lists fold and expand losslessly, messages that differ
only in their values share a group (the values per host listed on request), and the grouping is presentation
only. The fleet itself is tested on 100 real hosts in test_fleet_view.py."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bkdoctor.report.grouping import compress_hosts, expand_hostlist, group, shape
from bkdoctor.report.terminal import print_report

SAMPLE = Path(__file__).resolve().parent / "data" / "sample-report.json"


@settings(max_examples=300, deadline=None)
@given(
    st.sets(
        st.one_of(
            st.builds(
                lambda p, n, w: f"{p}{n:0{w}d}",
                st.sampled_from(["node-", "n", "bk-master-", "x.y-"]),
                st.integers(0, 400),
                st.integers(1, 4),
            ),
            st.from_regex(r"[a-z][a-z0-9.-]{0,8}", fullmatch=True),
        ),
        max_size=120,
    )
)
def test_host_lists_expand_to_exactly_the_hosts(names):
    toks = compress_hosts(sorted(names))
    back = [h for tok, _n in toks for h in expand_hostlist(tok)]
    assert sorted(back) == sorted(names)
    assert sum(n for _t, n in toks) == len(names)
    assert all(len(t) <= 80 for t, _n in toks)


def _report(n_hosts: int) -> dict:
    """A report of n hosts, cloned from the schema-checked sample report (presentation test only)."""
    r = json.loads(SAMPLE.read_text())
    proto = next(f for f in r["findings"] if f["rule"] == "swap" and f["status"] == "fail")
    r["targets"] = [
        {
            "name": f"node-{i}",
            "kind": "host",
            "address": f"10.0.0.{i}",
            "roles": ["node"],
            "reachable": i != 6,
            "error": "no route to host" if i == 6 else None,
            "gather_s": 0.1,
        }
        for i in range(1, n_hosts + 1)
    ]
    r["findings"] = []
    for i in range(1, n_hosts + 1):
        f = copy.deepcopy(proto)
        f["target"] = f"node-{i}"
        if i == 6:
            f.update(status="error", message="Host unreachable: no route to host")
        elif i in (1, 2, 3, 4):
            dev = f"/dev/sd{'abcd'[i - 1]}{i}"
            f.update(message=f"Swap is active: {dev}", observed={"active": [dev]})
        else:
            f.update(status="pass", message="No active swap")
        r["findings"].append(f)
    return r


def render(report, **kw) -> str:
    con = Console(file=io.StringIO(), width=160, highlight=False)
    print_report(report, con, **kw)
    return con.file.getvalue()


def test_same_problem_with_different_values_is_one_line_and_values_on_request():
    r = _report(6)
    assert len({shape(f["message"], f["observed"]) for f in r["findings"] if f["status"] == "fail"}) == 1
    out = render(r)
    lines = out.splitlines()
    assert lines[0] == "✗ node-6 10.0.0.6: unreachable (no route to host): 1 checks not run"
    fail = [l for l in lines if l.startswith("FAIL")]
    assert len(fail) == 1 and "swap (high) on 4/5 hosts: node-[1-4] — Swap is active: /dev/sda1" in fail[0]
    joined = " ".join(out.split())  # lines wrap at the terminal width
    assert "values differ per host (4 variants" in joined and "Fix: bkdoctor fix --rule swap" in joined
    verbose = render(r, verbose=True)
    for i, dev in ((1, "sda1"), (2, "sdb2"), (3, "sdc3"), (4, "sdd4")):
        assert f"node-{i}: Swap is active: /dev/{dev}" in verbose
    assert "PASS swap (high) on 1/5 hosts: node-5" in verbose
    by_host = render(r, group_by="host")
    assert "node-2 10.0.0.2: 1 fail" in by_host and "--host node-2" in by_host
    flat = render(r, group_by="none")
    assert flat.count("node-") >= 6 and "Host unreachable" in flat  # the table of before: a row per finding


def test_grouping_is_presentation_only():
    r = _report(6)
    before = json.dumps(r, sort_keys=True)
    fl = group(r)
    render(r)
    render(r, group_by="host")
    assert json.dumps(r, sort_keys=True) == before
    assert sum(len(g.targets) for g in fl.groups) == 4 and [n for _t, n in fl.down] == [1]


def test_chinese_labels():
    r = _report(6)
    r["lang"] = "zh"
    out = render(r)
    assert "✗ node-6 10.0.0.6: 不可达 (no route to host): 1 项检查未运行" in out
    assert "swap (high) 涉及 4/5 台主机: node-[1-4]" in out and "修复: bkdoctor fix --rule swap" in out


def test_a_check_beyond_the_guide_never_shows_a_section_sign():
    """A rule from field knowledge cites no section: every view says "not in the guide", never "§not in the guide"."""
    import io

    from rich.console import Console

    from bkdoctor.guidetext import NOT_IN_GUIDE
    from bkdoctor.report.terminal import print_report

    f = {
        "rule": "kernel-params",
        "target": "node-1",
        "status": "fail",
        "severity": "high",
        "message": "net.ipv4.ip_forward is 0",
        "remediation": {"id": "kernel-params"},
        "guide": {"section": NOT_IN_GUIDE, "title": "field knowledge, not in the guide"},
    }
    report = {
        "lang": "en",
        "summary": {"pass": 0, "warn": 0, "fail": 1, "error": 0, "skip": 0, "suppressed": 0},
        "findings": [f],
        "targets": [{"name": "node-1", "address": "10.0.0.5", "reachable": True, "error": None}],
        "scan": {"id": "s1", "duration_s": 0.1},
    }
    for group_by in ("rule", "host", "none"):
        buf = io.StringIO()
        print_report(report, Console(file=buf, width=300, color_system=None), verbose=False, group_by=group_by)
        out = buf.getvalue()
        assert "kernel-params" in out and "§" + NOT_IN_GUIDE not in out, (group_by, out)
        if group_by != "host":
            assert NOT_IN_GUIDE in out, (group_by, out)
