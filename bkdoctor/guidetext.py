"""The deployment guide's section structure, so citations can be checked against its text.

Headings are Markdown: chapters `## 一、**title**` (or `## **四、title**`), numbered sections `### **2. title**`,
`#### **2.1 title**`, `##### **3.2.2 title**`, which become `一.2`, `一.2.1`, `一.3.2.2`. FAQ entries
(`#### **Q1: ...**`) become `<parent>.Q1`. Lines inside ``` fences are never headings.
A section's text runs from its heading to the next heading that is not one of its subsections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NUMERALS = "一二三四五六七八九十"
_HEADING = re.compile(r"^(#{1,6})\s+(.*)\Z")
_CHAPTER = re.compile(rf"^([{NUMERALS}]+)、\s*(.*)\Z")
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(.*)\Z")
_QUESTION = re.compile(r"^(Q\d+)[:：]\s*(.*)\Z")

NOT_IN_GUIDE = "not in the guide"


@dataclass
class Section:
    id: str
    title: str
    line: int  # 1-based line of the heading
    end: int = 0  # 1-based line after the last line of the section


def normalize(text: str) -> str:
    """Markdown emphasis removed and whitespace runs collapsed (table padding varies)."""
    return re.sub(r"\s+", " ", text.replace("**", "")).strip()


def parse(text: str) -> tuple[dict[str, Section], list[str]]:
    lines = text.splitlines()
    sections: dict[str, Section] = {}
    order: list[Section] = []
    chapter: str | None = None
    fence = False
    last_numbered: str | None = None
    for i, raw in enumerate(lines, 1):
        if raw.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        m = _HEADING.match(raw)
        if not m:
            continue
        level, body = len(m.group(1)), m.group(2).replace("**", "").strip()
        c = _CHAPTER.match(body)
        if c:
            chapter = c.group(1)
            sid, title = chapter, c.group(2).strip()
            last_numbered = sid
        elif chapter and _NUMBERED.match(body):
            n = _NUMBERED.match(body)
            sid, title = f"{chapter}.{n.group(1)}", n.group(2).strip()
            last_numbered = sid
        elif chapter and _QUESTION.match(body) and last_numbered:
            q = _QUESTION.match(body)
            parent = last_numbered.split(".Q")[0]
            sid, title = f"{parent}.{q.group(1)}", q.group(2).strip()
        else:
            if level <= 2:  # an unnumbered top heading (e.g. "# 卸载") ends the chapter
                chapter, last_numbered = None, None
                order.append(Section(id=f"#{i}", title=body, line=i))
            continue
        if sid in sections:  # never expected; keep the first
            continue
        s = Section(id=sid, title=title, line=i)
        sections[sid] = s
        order.append(s)
    for k, s in enumerate(order):
        end = len(lines) + 1
        for nxt in order[k + 1 :]:
            if not nxt.id.startswith(s.id + "."):
                end = nxt.line
                break
        s.end = end
    return {k: v for k, v in sections.items()}, lines


def section_text(sections: dict[str, Section], lines: list[str], sid: str) -> str:
    s = sections[sid]
    return "\n".join(lines[s.line - 1 : s.end - 1])


def load(path: str | Path) -> tuple[dict[str, Section], list[str]]:
    return parse(Path(path).read_text(encoding="utf-8"))
