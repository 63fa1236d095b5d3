"""`bkdoctor diff --html OUT`: what changed between two scans, as one self-contained page.

New problems, resolved, still failing, and changed (a problem whose status moved, e.g. warn -> fail). Everything
from the scans (rule ids, host names, messages) is escaped by Jinja2's autoescape; the page loads nothing (a
Content-Security-Policy with `default-src 'none'` and no script at all).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2

from bkdoctor import __version__
from bkdoctor.model import STATUSES

SECTIONS = (
    ("new", "新问题", "New problems"),
    ("resolved", "已解决", "Resolved"),
    ("still_failing", "仍未解决", "Still failing"),
    ("changed", "状态变化", "Changed"),
)

TEMPLATE = """<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bkdoctor diff {{ d['from'] }} → {{ d['to'] }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: .3em .6em;
text-align: left; vertical-align: top; } th { background: #f4f4f4; }
.n { color: #555; } .pill { display: inline-block; padding: 0 .5em; border-radius: .6em; font-size: .9em; }
.fail, .error { background: #fdd; } .warn { background: #ffe9b3; } .pass, .skip, .suppressed, .none { background: #dfd; }
.count { font-weight: bold; } .msg { white-space: pre-wrap; word-break: break-word; }
#new h2 { color: #a00; } #resolved h2 { color: #070; }
</style>
</head>
<body>
<h1>bkdoctor diff</h1>
<p class="n">{{ 'from' if lang == 'en' else '从' }} <code>{{ d['from'] }}</code>
 → <code>{{ d['to'] }}</code> · bkdoctor {{ version }} · {{ generated }}</p>
<ul>
{% for key, zh, en in sections %}<li><a href="#{{ key }}">{{ en if lang == 'en' else zh }}</a>:
 <span class="count" id="count-{{ key }}">{{ d[key]|length }}</span></li>
{% endfor %}</ul>
{% for key, zh, en in sections %}
<section id="{{ key }}">
<h2>{{ en if lang == 'en' else zh }} ({{ d[key]|length }})</h2>
{% if d[key] %}
<table>
<tr><th>{{ 'rule' if lang == 'en' else '规则' }}</th><th>{{ 'target' if lang == 'en' else '目标' }}</th>
<th>{{ 'before' if lang == 'en' else '之前' }}</th><th>{{ 'after' if lang == 'en' else '之后' }}</th>
<th>{{ 'message' if lang == 'en' else '信息' }}</th></tr>
{% for it in d[key] %}
<tr><td><code>{{ it.rule }}</code></td><td>{{ it.target }}</td>
<td><span class="pill {{ cls(it.before) }}">{{ it.before or '—' }}</span></td>
<td><span class="pill {{ cls(it.after) }}">{{ it.after or '—' }}</span></td>
<td class="msg">{{ it.message or '' }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="n">—</p>{% endif %}
</section>
{% endfor %}
</body>
</html>
"""


def render_diff_html(d: dict[str, Any], lang: str = "en") -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    known = set(STATUSES)
    items = {k: list(d.get(k) or []) for k, _, _ in SECTIONS}
    return env.from_string(TEMPLATE).render(
        d={**items, "from": d["from"], "to": d["to"]},
        lang=lang,
        sections=SECTIONS,
        version=__version__,
        cls=lambda s: s if s in known else "none",
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
    )
