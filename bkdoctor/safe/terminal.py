"""Text safe for a terminal: the one filter every terminal writer of bkdoctor uses.

Host names, addresses, error messages and facts read off a host (``PRETTY_NAME``, file contents in a diff) are
data, not terminal commands. A raw ESC can set the window title, clear the screen or write the clipboard (OSC 52);
a C1 byte (U+0080-U+009F, e.g. U+009B, the 8-bit CSI) does the same on terminals that honour C1; a CR rewrites the
line already shown; bidi overrides (U+202A-U+202E, U+2066-U+2069) make text read differently from what it is.

`clean()` replaces each of them with a visible form, so the operator still sees that something was there:
C0 controls and DEL become Unicode control pictures (ESC -> ␛, BEL -> ␇, CR -> ␍, DEL -> ␡), C1 controls and
bidi/format characters become ``\\x9b`` / ``\\u202e``. Newline and tab are kept where the layout allows.

`SafeConsole` is a rich Console that applies `clean()` to every text segment it renders (the backstop for any
path that forgot to clean) and has markup and emoji off, so ``[link=…]`` or ``:…:`` in host data stay text.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

# C0 (without \t \n), DEL, C1, bidi embeddings/overrides/isolates and marks, lone surrogates
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_ANY_RE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff\t]")
_NO_NL_TAB_RE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _visible(m: re.Match) -> str:
    c = ord(m.group(0))
    if c < 0x20:
        return chr(0x2400 + c)  # ␀ … ␛ … ␟ (also ␊ ␉ when newlines/tabs are not allowed)
    if c == 0x7F:
        return "\u2421"  # ␡
    if c <= 0x9F:
        return f"\\x{c:02x}"
    if 0xD800 <= c <= 0xDFFF:
        return "\ufffd"
    return f"\\u{c:04x}"


def clean(value: Any, multiline: bool = True) -> str:
    """`value` as text that does nothing to a terminal. `multiline`: keep newlines and tabs (diffs, file
    contents); False for one-line fields (a host name, a table cell that must stay one line)."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    return (_NO_NL_TAB_RE if multiline else _ANY_RE).sub(_visible, s)


def clean_line(value: Any) -> str:
    """One-line variant of `clean` (newline -> ␊, tab -> ␉)."""
    return clean(value, multiline=False)


def is_clean(s: str, multiline: bool = True) -> bool:
    return not (_NO_NL_TAB_RE if multiline else _ANY_RE).search(s)


def markup(value: Any) -> str:
    """For the rare place that prints with rich markup on: clean, then escape ``[`` so host data is never markup."""
    from rich.markup import escape

    return escape(clean(value))


_JSON_UNSAFE_RE = re.compile(f"[\x7f-\x9f{_BIDI}]")


def json_for_terminal(text: str) -> str:
    """A JSON document about to be written to stdout (which may be a terminal): C1, DEL and bidi characters
    written as \\uXXXX escapes. Lossless (the same JSON value); C0 is already escaped by json.dumps. These
    characters can only occur inside JSON strings, where the escape is valid."""
    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def dumps_for_terminal(obj: Any, **kw: Any) -> str:
    return json_for_terminal(json.dumps(obj, **kw))


def print_json(obj: Any, **kw: Any) -> None:
    """JSON on stdout (maybe a terminal): C1/bidi characters as \\u escapes (the same JSON value)."""
    import sys

    sys.stdout.write(dumps_for_terminal(obj, **kw) + "\n")


_CLASS: Any = None


def _safe_console_class() -> Any:
    """SafeConsole, built on first use (rich is imported only by commands that print)."""
    global _CLASS
    if _CLASS is None:
        from rich.console import Console
        from rich.segment import Segment

        class SafeConsole(Console):
            """rich Console that cleans every text segment it renders; markup and emoji off by default."""

            def __init__(self, *args: Any, **kw: Any) -> None:
                kw.setdefault("markup", False)
                kw.setdefault("emoji", False)
                super().__init__(*args, **kw)

            def render(self, renderable: Any, options: Any = None) -> Iterable[Any]:
                for seg in super().render(renderable, options):
                    if seg.control or is_clean(seg.text):
                        yield seg
                    else:
                        yield Segment(clean(seg.text), seg.style, seg.control)

        _CLASS = SafeConsole
    return _CLASS


def safe_console(stderr: bool = False, **kw: Any) -> Any:
    """The Console every bkdoctor command prints with."""
    return _safe_console_class()(stderr=stderr, highlight=False, soft_wrap=False, **kw)
