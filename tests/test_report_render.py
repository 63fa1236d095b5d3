"""Tests for bkdoctor.report.html / bkdoctor.report.junit.

The browser test drives Debian's /usr/bin/chromium (headless) over the Chrome
DevTools Protocol with the `websocket-client` package.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from bkdoctor.report import reports_dir
from bkdoctor.report.html import render_html
from bkdoctor.report.junit import render_junit

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "tests" / "data" / "sample-report.json"
CHROMIUM = "/usr/bin/chromium"

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "onerror=alert(2)"


def load_sample() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def zh_report() -> dict:
    r = load_sample()
    r["lang"] = "zh"
    for f in r["findings"]:
        zh = (f.get("i18n") or {}).get("zh")
        if zh:
            f["title"], f["message"] = zh["title"], zh["message"]
    return r


def hostile_report() -> dict:
    """Sample plus payloads that set window.__xss if they ever execute."""
    r = load_sample()
    p_img = "<img src=x onerror=\"window.__xss='img'\">"
    p_scr = "<script>window.__xss='script'</script>"
    p_attr = '" onmouseover="window.__xss=\'attr\'" x="'
    p_close = "</script><script>window.__xss='island'</script>"
    r["scan"]["id"] += p_scr
    r["scan"]["domain"] = p_img
    r["scan"]["inventory"] = p_attr
    r["tool"]["version"] = p_close
    r["targets"][0]["error"] = p_img
    r["targets"][2]["error"] = p_scr + p_attr
    r["targets"][1]["roles"].append(p_img)
    f = r["findings"][2]
    f["message"] += p_img
    f["i18n"] = {"zh": {"title": p_scr, "message": p_img}, "en": {"title": p_attr, "message": p_close}}
    f["observed"] = {p_close: [p_img]}
    f["expected"] = p_scr
    f["evidence"] = {p_attr: p_img + "\x00\x1b[31m"}
    f["remediation"] = {"id": "x", "commands": [p_scr, p_img], "disruptive": True}
    f["guide"] = {"section": p_img, "title": p_attr, "line": 1}
    r["findings"][4]["suppression"]["reason"] = p_img
    r["findings"][4]["suppression"]["until"] = p_scr
    return r


# --------------------------------------------------------------------------- schema


def test_sample_report_matches_schema():
    schema = json.loads((reports_dir() / "report-v1.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(load_sample()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # the derived reports used below are valid too
    for r in (zh_report(), hostile_report()):
        assert not list(validator.iter_errors(r))


# --------------------------------------------------------------------------- static HTML

EXTERNAL_REF = [
    re.compile(
        r"""\b(?:src|href|action|poster|data|formaction|srcset|background)\s*=\s*["']?\s*(?:https?:)?//""", re.I
    ),
    re.compile(r"""@import""", re.I),
    re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.I),
    re.compile(r"""<link\b""", re.I),
    re.compile(r"""<(?:iframe|object|embed|img|video|audio|source)\b""", re.I),
]


def _strip_data_island(html: str) -> str:
    return re.sub(r'<script type="application/json" id="report-data">.*?</script>', "", html, flags=re.S)


@pytest.mark.parametrize("report", [load_sample(), zh_report()], ids=["en", "zh"])
def test_html_is_self_contained_and_escaped(report):
    html = render_html(report)
    assert html.lstrip().lower().startswith("<!doctype html>")
    body = _strip_data_island(html)
    for rx in EXTERNAL_REF:
        assert not rx.search(body), rx.pattern
    # no http(s) URL anywhere in the markup outside the data island
    assert not re.search(r"https?://", body)
    # the hostile target name is only ever present escaped
    assert XSS_SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    # exactly the two scripts we own: the inert data island and the app script
    assert len(re.findall(r"<script\b", html)) == 2
    assert html.count('<script type="application/json" id="report-data">') == 1
    # data island: JSON with <, >, & escaped; parses back to the report
    island = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in island and ">" not in island and "&" not in island
    assert json.loads(island) == report
    # hooks
    assert html.count('class="finding ') == len(report["findings"])
    assert 'id="visible-count"' in html and 'id="filter-host"' in html
    for st in ("pass", "warn", "fail", "error", "skip", "suppressed"):
        assert f'name="status" value="{st}"' in html
    assert f'data-lang="{report["lang"]}"' in html
    # CSP forbids every fetch
    assert "default-src 'none'" in html


def test_html_content_details():
    r = load_sample()
    html = render_html(r)
    # worst first: error (the unreachable target's checks, folded into one entry), fail, warn, suppressed, skip, pass
    statuses = re.findall(r'<details class="finding [^"]*" id="[fu]-\d+" data-status="(\w+)"', html)
    assert statuses == ["error", "fail", "warn", "suppressed", "skip", "pass"]
    # fix command present for remediation.id, shell-quoted target, escaped
    assert "bkdoctor fix --rule swap --host master-10-0-0-2" in html
    assert "bkdoctor fix --rule swap --host &#39;node-&lt;script&gt;alert(1)&lt;/script&gt;&#39;" in html
    assert "swapoff -a" in html
    # both languages embedded
    assert "已关闭 swap" in html and "Swap is off" in html
    assert "检查结果" in html and "Findings" in html
    # unreachable target marked with its error
    assert re.search(r'class="mrow unreach" data-target="node-10-0-0-6"', html)
    assert "connection refused" in html
    # suppression shown
    assert "DNS served by the intranet resolver" in html and "2027-01-01" in html
    # matrix has one row per target and one column per rule
    assert html.count('<tr class="mrow') == len(r["targets"])
    assert html.count('<th class="rule"') == len(r["scan"]["rules"])


def test_html_hostile_report_everywhere_escaped():
    html = render_html(hostile_report())
    body = _strip_data_island(html)
    assert "<img" not in html
    assert "window.__xss='script'</script>" not in html
    assert len(re.findall(r"<script\b", html)) == 2
    assert len(re.findall(r"</script>", html)) == 2
    assert 'onmouseover="' not in body
    assert "\x00" not in html and "\x1b" not in html


def test_html_related_cross_layer_links_render_escaped():
    r = load_sample()
    pull = copy.deepcopy(r["findings"][2])
    pull.pop("i18n", None)
    pull.update(
        {
            "rule": "faq-image-pull",
            "target": "cluster",
            "status": "fail",
            "related": [
                {
                    "rule": "swap",
                    "target": "node-<script>alert(1)</script>",
                    "status": "fail",
                    "relation": "caused-by",
                    "node": "node-10-0-0-5",
                    "message": "<b>daemon.json</b> lacks it",
                    "fix": "bkdoctor fix --rule swap --host 'n<5>'",
                }
            ],
        }
    )
    r["findings"].append(pull)
    r["findings"][1]["related"] = [
        {
            "rule": "faq-image-pull",
            "target": "cluster",
            "status": "fail",
            "relation": "causes",
            "node": "node-10-0-0-5",
            "message": "pod cannot pull",
            "fix": None,
        }
    ]
    schema = json.loads((reports_dir() / "report-v1.schema.json").read_text(encoding="utf-8"))
    assert not list(Draft202012Validator(schema).iter_errors(r))
    html = render_html(r)
    assert html.count('class="full related"') == 2
    assert "Root cause" in html and "根因" in html and "Causes" in html and "导致" in html
    # the fix is a copyable <pre>, escaped; the message and target are escaped too
    m = re.search(
        r'<pre id="(rel-f-\d+-1)">bkdoctor fix --rule swap --host &#39;n&lt;5&gt;&#39;</pre>'
        r'<button type="button" class="btn" data-copy="(rel-f-\d+-1)">',
        html,
    )
    assert m and m.group(1) == m.group(2)
    assert "&lt;b&gt;daemon.json&lt;/b&gt; lacks it" in html and "<b>daemon.json" not in html
    assert "<script>alert(1)</script>" not in _strip_data_island(html)
    # each link points at the linked finding
    for a in re.findall(r'<a class="rel-link mono" href="#(f-\d+)">', html):
        assert f'id="{a}"' in html
    assert len(re.findall(r'<a class="rel-link mono" href="#f-\d+">faq-image-pull</a>', html)) == 1


def test_html_minimal_report():
    r = {
        "schema": "bkdoctor/report/v1",
        "tool": {"name": "bkdoctor", "version": "0"},
        "lang": "zh",
        "scan": {
            "id": "x",
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:00Z",
            "duration_s": 0,
        },
        "targets": [],
        "findings": [],
        "summary": {"pass": 0, "warn": 0, "fail": 0, "error": 0, "skip": 0, "suppressed": 0, "total": 0},
    }
    html = render_html(r)
    assert 'id="visible-count">0<' in html


# --------------------------------------------------------------------------- JUnit


def _junit(report: dict) -> ET.Element:
    xml = render_junit(report)
    return ET.fromstring(xml.encode("utf-8"))


def test_junit_counts_match_sample():
    r = load_sample()
    root = _junit(r)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [t["name"] for t in r["targets"]]
    cases = root.findall("testsuite/testcase")
    assert len(cases) == len(r["findings"])
    assert {(c.get("classname"), c.get("name")) for c in cases} == {
        (f"bkdoctor.{f['target']}", f["rule"]) for f in r["findings"]
    }
    s = r["summary"]
    assert root.get("tests") == str(s["total"])
    assert root.get("failures") == str(s["fail"])
    assert root.get("errors") == str(s["error"])
    assert root.get("skipped") == str(s["skip"] + s["suppressed"])
    assert float(root.get("time")) == pytest.approx(r["scan"]["duration_s"])
    for suite in suites:
        own = [f for f in r["findings"] if f["target"] == suite.get("name")]
        assert suite.get("tests") == str(len(own))
        assert suite.get("failures") == str(sum(f["status"] == "fail" for f in own))
        assert suite.get("errors") == str(sum(f["status"] == "error" for f in own))
        assert suite.get("skipped") == str(sum(f["status"] in ("skip", "suppressed") for f in own))
        assert suite.get("time") is not None
    assert len(root.findall(".//failure")) == s["fail"]
    assert len(root.findall(".//error")) == s["error"]
    assert len(root.findall(".//skipped")) == s["skip"] + s["suppressed"]
    fail = root.find(".//failure")
    assert fail.get("type") == "fail" and "/dev/sda2" in fail.get("message")
    assert "observed" in fail.text and "expected" in fail.text
    sup = [c for c in cases if c.get("name") == "hosts-file" and c.get("classname") == "bkdoctor.master-10-0-0-2"][0]
    assert "DNS served by the intranet resolver" in sup.find("skipped").get("message")
    warn = [c for c in cases if c.get("name") == "selinux" and c.get("classname") == "bkdoctor.master-10-0-0-2"][0]
    assert warn.find("failure") is None and warn.find("system-out").text.startswith("WARN: ")
    passed = [c for c in cases if c.get("name") == "swap" and c.get("classname") == "bkdoctor.master-10-0-0-2"][0]
    assert len(passed) == 0


def test_junit_text_follows_report_lang():
    en = ET.tostring(_junit(load_sample()), encoding="unicode")
    zh = ET.tostring(_junit(zh_report()), encoding="unicode")
    assert "Swap is active" in en and "observed" in en
    assert "swap 已启用" in zh and "实际值" in zh


def test_junit_survives_control_characters():
    r = load_sample()
    bad = "garbage \x00\x1b[31mred\x1b[0m \x07\x0b\x0c\x7f \ud800 \ufffe\uffff end"
    r["findings"][1]["message"] = bad
    r["findings"][1]["i18n"]["en"]["message"] = bad
    r["findings"][1]["observed"] = {"raw": bad}
    r["findings"][1]["evidence"] = {"/etc/fstab": bad}
    r["findings"][2]["message"] = bad  # warn -> system-out
    r["findings"][4]["suppression"]["reason"] = bad
    r["targets"][2]["error"] = bad
    r["findings"][3]["target"] = r["targets"][2]["name"]
    xml = render_junit(r)
    xml.encode("utf-8")  # no lone surrogates left
    root = ET.fromstring(xml.encode("utf-8"))
    msg = root.find(".//failure").get("message")
    assert "garbage" in msg and "red" in msg and "end" in msg
    assert "\x00" not in xml and "\x1b" not in xml


def test_html_survives_control_characters():
    r = load_sample()
    r["findings"][1]["evidence"] = {"/bin/ls": "\x00\x01ELF\x1b[31m\ud800"}
    html = render_html(r)
    html.encode("utf-8")
    assert "\x00" not in html and "\x1b" not in html


# --------------------------------------------------------------------------- browser (CDP)


class CDP:
    """Minimal Chrome DevTools Protocol client over one browser websocket (flat sessions)."""

    def __init__(self, ws_url: str, timeout: float = 10.0):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def send(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 10.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = json.loads(self.ws.recv())
            if data.get("id") == self.next_id:
                if "error" in data:
                    raise RuntimeError(f"CDP {method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self._on_event(data)
        raise TimeoutError(method)

    def _on_event(self, ev: dict):
        self.events.append(ev)
        if ev["method"] == "Page.javascriptDialogOpening":  # never block on a dialog: record and dismiss
            self.ws.send(
                json.dumps(
                    {
                        "id": 10**9 + len(self.events),
                        "sessionId": ev.get("sessionId"),
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                    }
                )
            )

    def wait_event(self, method: str, since: int = 0, timeout: float = 10.0) -> dict:
        """Wait for `method`, considering only events recorded at index >= `since`."""
        deadline = time.monotonic() + timeout
        for ev in self.events[since:]:
            if ev["method"] == method:
                return ev
        while time.monotonic() < deadline:
            data = json.loads(self.ws.recv())
            if "method" in data:
                self._on_event(data)
                if data["method"] == method:
                    return data
        raise TimeoutError(method)

    def eval(self, expr: str):
        res = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS exception in {expr!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, selector: str):
        """A real mouse click in the middle of the element (scrolled into view)."""
        box = self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for typ in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": typ, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}
            )


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of process group `pgid` exists (Linux /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            stat = Path("/proc", pid, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


class Browser:
    """Headless Debian chromium with a throw-away profile; use as a context manager."""

    FLAGS = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--mute-audio",
        "--remote-debugging-port=0",
    ]

    def __init__(self, width: int = 1366, height: int = 900):
        self.width, self.height = width, height
        self.tmp = tempfile.mkdtemp(prefix="bkdoctor-chromium-")
        self.proc: subprocess.Popen | None = None
        self.cdp: CDP | None = None

    def __enter__(self) -> CDP:
        try:
            return self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _start(self) -> CDP:
        profile = os.path.join(self.tmp, "profile")
        os.mkdir(profile)
        self.proc = subprocess.Popen(
            [CHROMIUM, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.tmp, "stderr"), "wb"),
            start_new_session=True,
            env={**os.environ, "HOME": self.tmp},
        )
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 10
        lines: list[str] = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "chromium exited early: " + Path(self.tmp, "stderr").read_text(errors="replace")[-2000:]
                )
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    break
            time.sleep(0.05)
        else:
            raise TimeoutError("DevToolsActivePort not written")
        self.cdp = cdp = CDP(f"ws://127.0.0.1:{lines[0]}{lines[1]}")
        target = cdp.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        cdp.session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        cdp.send("Page.enable")
        cdp.send("Runtime.enable")
        cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        # record any network request the page attempts (there must be none besides the file itself)
        cdp.send("Network.enable")
        return cdp

    def __exit__(self, *exc):
        if self.cdp is not None:
            self.cdp.close()
        if self.proc is not None:
            if self.proc.poll() is None:
                try:  # the process group we created with start_new_session (chromium + its helpers)
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(timeout=5)
            try:  # helpers that outlived the main process
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and _group_alive(self.proc.pid):  # wait for the helpers to die
                time.sleep(0.05)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def open_report(cdp: CDP, html_path: Path):
    mark = len(cdp.events)
    cdp.send("Page.navigate", {"url": html_path.as_uri()})
    cdp.wait_event("Page.loadEventFired", since=mark)
    assert cdp.eval("location.href") == html_path.as_uri()


VISIBLE_FINDINGS = "[...document.querySelectorAll('.finding')].filter(e => e.getClientRects().length > 0)"


needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"
)


@pytest.mark.browser
@needs_chromium
def test_browser_render_filter_and_no_xss(tmp_path):
    pytest.importorskip("websocket", reason="websocket-client not installed (pip install websocket-client)")
    r = load_sample()
    page = tmp_path / "report.html"
    page.write_text(render_html(r), encoding="utf-8")
    hostile = tmp_path / "hostile.html"
    hostile.write_text(render_html(hostile_report()), encoding="utf-8")
    n_total = len(r["findings"])
    n_fail = sum(f["status"] == "fail" for f in r["findings"])

    with Browser() as cdp:
        open_report(cdp, page)
        # (a) it renders: JS ran, matrix and findings are there
        assert cdp.eval("document.documentElement.classList.contains('js')") is True
        assert cdp.eval("document.querySelectorAll('table.matrix tr.mrow').length") == len(r["targets"])
        assert cdp.eval("document.querySelectorAll('table.matrix td.cell a').length") == n_total
        assert cdp.eval(f"{VISIBLE_FINDINGS}.length") == n_total
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_total)
        # the hostile target name is text, not markup
        names = cdp.eval("[...document.querySelectorAll('tr.mrow .hname')].map(e => e.textContent)")
        assert "node-<script>alert(1)</script>" in names
        msgs = cdp.eval("[...document.querySelectorAll('.finding .f-msg')].map(e => e.textContent)")
        assert any("<img src=x onerror=alert(2)>" in m for m in msgs)
        assert cdp.eval("document.querySelectorAll('img').length") == 0
        assert cdp.eval("document.scripts.length") == 2
        # unreachable target visibly marked
        assert "connection refused" in cdp.eval("document.querySelector('tr.mrow.unreach .uerr').textContent")

        # (b) status filter: uncheck "fail" with a real click
        cdp.click('input[name="status"][value="fail"]')
        assert cdp.eval('document.querySelector(\'input[name="status"][value="fail"]\').checked') is False
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_total - n_fail)
        visible = cdp.eval(f"{VISIBLE_FINDINGS}.map(e => e.dataset.status)")
        assert "fail" not in visible and len(visible) == n_total - n_fail
        assert (
            cdp.eval(
                "[...document.querySelectorAll('.finding[data-status=fail]')]"
                ".every(e => e.getClientRects().length === 0)"
            )
            is True
        )
        assert cdp.eval("document.querySelector('td.cell.s-fail').classList.contains('dim')") is True
        cdp.click('input[name="status"][value="fail"]')
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_total)

        # host filter (text box): matrix rows and findings follow
        cdp.click("#filter-host")
        cdp.send("Input.insertText", {"text": "master"})
        n_master = sum(f["target"].startswith("master") for f in r["findings"])
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_master)
        assert cdp.eval(
            "[...document.querySelectorAll('tr.mrow')].filter(e => e.getClientRects().length)"
            ".map(e => e.dataset.target)"
        ) == ["master-10-0-0-2"]
        cdp.click("#filter-reset")
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_total)

        # severity filter
        cdp.click('input[name="severity"][value="high"]')
        n_high = sum(f["severity"] == "high" for f in r["findings"])
        assert cdp.eval("document.getElementById('visible-count').textContent.trim()") == str(n_total - n_high)
        cdp.click("#filter-reset")

        # matrix cell opens the finding detail
        cdp.click("td.cell.s-fail a")
        assert cdp.eval("document.querySelector('.finding[data-status=fail]').open") is True

        # language toggle: en by default, zh after a click
        assert cdp.eval("getComputedStyle(document.querySelector('#findings h2 .l-en')).display") != "none"
        cdp.click('[data-set-lang="zh"]')
        assert cdp.eval("document.documentElement.dataset.lang") == "zh"
        assert cdp.eval("getComputedStyle(document.querySelector('#findings h2 .l-en')).display") == "none"
        assert cdp.eval("document.querySelector('#findings h2 .l-zh').textContent") == "检查结果"

        # (c) no injected code ran: no dialog, no marker; then the all-fields hostile page
        cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": "window.__xss = undefined;"})
        open_report(cdp, hostile)
        cdp.click("#expand-all")
        cdp.eval(
            "document.querySelectorAll('.hname, .f-msg, pre, .uerr').forEach(e => {"
            " e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); })"
        )
        cdp.eval("new Promise(r => setTimeout(r, 300))")
        assert cdp.eval("typeof window.__xss") == "undefined"
        assert cdp.eval("document.querySelectorAll('img').length") == 0
        assert cdp.eval("document.scripts.length") == 2
        assert (
            cdp.eval(
                "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                ".some(a => a.name.startsWith('on'))).length"
            )
            == 0
        )
        assert (
            cdp.eval("JSON.parse(document.getElementById('report-data').textContent).tool.version")
            == hostile_report()["tool"]["version"]
        )

    dialogs = [e for e in cdp.events if e["method"] == "Page.javascriptDialogOpening"]
    assert dialogs == []
    requests = [e["params"]["request"]["url"] for e in cdp.events if e["method"] == "Network.requestWillBeSent"]
    assert all(u.startswith("file://") for u in requests), requests


def screenshot(
    report: dict,
    out: str,
    lang: str | None = None,
    width: int = 1366,
    height: int = 900,
    full: bool = False,
    expand: int = 0,
):
    """Helper for manual inspection: python -c 'from tests.test_report_render import *; ...'."""
    import base64

    r = copy.deepcopy(report)
    if lang:
        r["lang"] = lang
    with tempfile.TemporaryDirectory() as d:
        page = Path(d) / "report.html"
        page.write_text(render_html(r), encoding="utf-8")
        with Browser(width, height) as cdp:
            open_report(cdp, page)
            if expand:
                cdp.eval(f"[...document.querySelectorAll('.finding')].slice(0, {expand}).forEach(e => e.open = true)")
            params = {"format": "png"}
            if full:
                params["captureBeyondViewport"] = True
                h = cdp.eval("document.documentElement.scrollHeight")
                params["clip"] = {"x": 0, "y": 0, "width": width, "height": h, "scale": 1}
            data = cdp.send("Page.captureScreenshot", params)["data"]
        Path(out).write_bytes(base64.b64decode(data))
