"""JUnit XML rendering of a bkdoctor report (schema bkdoctor/report/v1).

One <testsuite> per target, one <testcase> per finding (rule x target):
  fail        -> <failure type="fail">
  error       -> <error type="error">
  skip        -> <skipped>
  suppressed  -> <skipped> (message carries the suppression reason)
  warn        -> passes, with <system-out>WARN: ...</system-out>
  pass        -> plain <testcase>
Texts follow the report ``lang``. Characters XML 1.0 cannot carry (NUL, ESC and
other C0 controls from binary garbage in probed files, lone surrogates, U+FFFE/F)
are replaced so the document always parses.
"""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from typing import Any

_LABELS = {
    "observed": ("实际值", "observed"),
    "expected": ("期望值", "expected"),
    "severity": ("严重程度", "severity"),
    "suppressed": ("已抑制", "suppressed"),
    "until": ("有效期至", "until"),
    "original_status": ("原始状态", "original status"),
    "unreachable": ("目标不可达", "target unreachable"),
    "remediation": ("修复命令", "fix commands"),
    "fix": ("自动修复", "automated fix"),
    "guide": ("部署文档", "guide"),
}

# Anything outside the XML 1.0 Char production.
_XML_BAD = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_sub(m: re.Match) -> str:
    c = ord(m.group(0))
    if c < 0x20:
        return chr(0x2400 + c)  # control pictures: \x00 -> ␀, \x1b -> ␛
    return "\ufffd"


def xml_text(value: Any) -> str:
    """str(value) with characters forbidden in XML 1.0 made harmless (and visible)."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    return _XML_BAD.sub(_xml_sub, s)


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _seconds(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if v >= 0 else 0.0


def _text(f: dict, lang: str) -> tuple[str, str]:
    i18n = f.get("i18n")
    t = i18n.get(lang) if isinstance(i18n, dict) else None
    if isinstance(t, dict) and (t.get("title") or t.get("message")):
        return str(t.get("title") or f.get("title") or ""), str(t.get("message") or f.get("message") or "")
    return str(f.get("title") or ""), str(f.get("message") or "")


def render_junit(report: dict) -> str:
    """Render a report dict as a JUnit XML document (str, UTF-8 declared)."""
    lang = report.get("lang") if report.get("lang") in ("zh", "en") else "en"
    li = 0 if lang == "zh" else 1

    def lbl(key: str) -> str:
        return _LABELS[key][li]

    scan = report.get("scan") or {}
    findings = [f for f in (report.get("findings") or []) if isinstance(f, dict)]
    targets = [t for t in (report.get("targets") or []) if isinstance(t, dict)]

    # suites in report target order, then targets only known from findings
    order: list[str] = []
    info: dict[str, dict] = {}
    for t in targets:
        name = str(t.get("name") if t.get("name") is not None else "")
        if name not in info:
            order.append(name)
            info[name] = t
    by_target: dict[str, list[dict]] = {}
    for f in findings:
        name = str(f.get("target") if f.get("target") is not None else "")
        if name not in info:
            order.append(name)
            info[name] = {}
        by_target.setdefault(name, []).append(f)

    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    timestamp = xml_text(scan.get("started_at") or "")

    for idx, name in enumerate(order):
        t = info[name]
        suite = ET.SubElement(root, "testsuite")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        props = ET.SubElement(suite, "properties")
        for key in ("kind", "address", "reachable", "error"):
            if key in t and t.get(key) is not None:
                val = t.get(key)
                val = ("true" if val else "false") if isinstance(val, bool) else val
                ET.SubElement(props, "property", name=key, value=xml_text(val))
        if t.get("roles"):
            ET.SubElement(props, "property", name="roles", value=xml_text(",".join(map(str, t["roles"]))))
        if not len(props):
            suite.remove(props)

        for f in by_target.get(name, []):
            rule = xml_text(f.get("rule"))
            status = f.get("status")
            severity = xml_text(f.get("severity"))
            title, message = _text(f, lang)
            headline = f"{title}: {message}" if title and message else (title or message)
            detail_lines = [
                f"[{severity}] {headline}",
                f"{lbl('observed')}: {_fmt(f.get('observed'))}",
                f"{lbl('expected')}: {_fmt(f.get('expected'))}",
            ]
            rem = f.get("remediation") if isinstance(f.get("remediation"), dict) else None
            if rem and rem.get("commands"):
                detail_lines.append(f"{lbl('remediation')}:")
                detail_lines.extend(f"  {c}" for c in rem["commands"])
            if rem and rem.get("id"):
                detail_lines.append(
                    f"{lbl('fix')}: bkdoctor fix --rule {shlex.quote(str(rem['id']))} --host {shlex.quote(name)}"
                )
            guide = f.get("guide") if isinstance(f.get("guide"), dict) else None
            if guide:
                detail_lines.append(f"{lbl('guide')}: {guide.get('section', '')} {guide.get('title', '')}".rstrip())
            detail = "\n".join(detail_lines)

            case = ET.SubElement(suite, "testcase", classname=xml_text(f"bkdoctor.{name}"), name=rule, time="0")
            counts["tests"] += 1
            if status == "fail":
                el = ET.SubElement(case, "failure", message=xml_text(headline), type="fail")
                el.text = xml_text(detail)
                counts["failures"] += 1
            elif status == "error":
                el = ET.SubElement(case, "error", message=xml_text(headline), type="error")
                el.text = xml_text(detail)
                counts["errors"] += 1
            elif status == "skip":
                ET.SubElement(case, "skipped", message=xml_text(headline))
                counts["skipped"] += 1
            elif status == "suppressed":
                sup = f.get("suppression") if isinstance(f.get("suppression"), dict) else {}
                parts = [f"{lbl('suppressed')}: {sup.get('reason') or '-'}"]
                if sup.get("until"):
                    parts.append(f"{lbl('until')} {sup['until']}")
                if sup.get("original_status"):
                    parts.append(f"{lbl('original_status')} {sup['original_status']}")
                msg = "; ".join(parts) + (f" | {headline}" if headline else "")
                el = ET.SubElement(case, "skipped", message=xml_text(msg))
                el.text = xml_text(detail)
                counts["skipped"] += 1
            elif status == "warn":
                out = ET.SubElement(case, "system-out")
                out.text = xml_text("WARN: " + detail)
            # pass (or unknown status): plain testcase

        if t.get("reachable") is False and t.get("error"):
            err = ET.SubElement(suite, "system-err")
            err.text = xml_text(f"{lbl('unreachable')}: {t.get('error')}")

        suite.set("name", xml_text(name))
        suite.set("id", str(idx))
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("time", f"{_seconds(t.get('gather_s')):.3f}")
        if timestamp:
            suite.set("timestamp", timestamp)
        if t.get("address"):
            suite.set("hostname", xml_text(t.get("address")))

    root.set("name", xml_text(f"bkdoctor {scan.get('id') or ''}".strip()))
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{_seconds(scan.get('duration_s')):.3f}")

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
