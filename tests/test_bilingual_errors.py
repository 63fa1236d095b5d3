"""Every refusal (exit 2, one line) is in English and Chinese: "English / 中文".

- Statically: every `BadInput(...)` in bkdoctor/, rules/ and remediations/ is given a `T(zh, en)`, the Chinese half
  with Chinese text in it (or another text's `.zh`), the English half without; a subclass (ThresholdError) and a
  factory of refusals (a function returning one that takes a `T` parameter, e.g. the bundle's `_bad`) are called
  with a `T(zh, en)` there.
- The line (`bkdoctor.cli.bad_input_line`): both halves masked and made terminal-safe; a long or hostile value is
  shown in full once (English) and cut in the Chinese half, so the line never doubles; --lang prints one half.
- End to end through the console script's entry point (`bkdoctor.launch:main`): exit 2, one line, both languages,
  secrets masked, controls visible.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bkdoctor.cli import ZH_MAX, _bounded, bad_input_line
from bkdoctor.model import BadInput, T

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile("[\u3400-\u9fff]")


def _sources() -> list[Path]:
    return sorted(p for d in ("bkdoctor", "rules", "remediations") for p in (ROOT / d).rglob("*.py"))


def _strings(node: ast.AST) -> str:
    """The literal text of an expression (f-string parts and constants), what a reader of that half sees."""
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _bilingual(arg: ast.expr) -> str | None:
    """Why `arg` is not a `T(zh, en)` of a Chinese and an English text (None: it is)."""
    if not (isinstance(arg, ast.Call) and _name(arg.func) == "T" and len(arg.args) == 2 and not arg.keywords):
        return "not T(zh, en)"
    zh, en = (_strings(a) for a in arg.args)
    if not CJK.search(zh) and not _halves(arg.args[0], "zh"):
        return "no Chinese in the zh half"
    if CJK.search(en) or _halves(arg.args[1], "zh"):
        return "Chinese in the en half"
    return None


def _halves(node: ast.AST, attr: str) -> bool:
    """Whether the expression quotes another text's half (`e.reason.zh`, `what.zh`)."""
    return any(isinstance(n, ast.Attribute) and n.attr == attr for n in ast.walk(node))


def _t_params(f: ast.FunctionDef, skip: int = 0) -> list[int]:
    return [
        i - skip for i, a in enumerate(f.args.args) if isinstance(a.annotation, ast.Name) and a.annotation.id == "T"
    ]


def _subclasses(trees: list[ast.Module]) -> dict[str, list[int]]:
    """BadInput's subclasses: name -> positions of their constructor's `T` parameters."""
    out = {}
    for tree in trees:
        for c in ast.walk(tree):
            if isinstance(c, ast.ClassDef) and any(_name(b) == "BadInput" for b in c.bases):
                init = [f for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
                out[c.name] = _t_params(init[0], skip=1) if init else [0]
    return out


def _factories(tree: ast.Module, refusal: set[str]) -> dict[str, list[int]]:
    """Functions of a module that return a refusal: name -> positions of their `T` parameters."""
    return {
        f.name: _t_params(f)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef) and _name(f.returns or ast.Pass()) in refusal
    }


def refusals(files: list[Path]) -> tuple[int, list[str]]:
    """(how many refusals were looked at, the English-only ones as file:line: why)."""
    seen, bad = 0, []
    trees = {p: ast.parse(p.read_text(), str(p)) for p in files}
    subclasses = _subclasses(list(trees.values()))
    for p, tree in trees.items():
        rel = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p.name
        factories = {**subclasses, **_factories(tree, {"BadInput", *subclasses})}
        # a factory handing its own T parameter on (`def bad(msg: T): return ThresholdError(keys, msg)`)
        passed_on = {
            a.arg
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef)
            for a in f.args.args
            if isinstance(a.annotation, ast.Name) and a.annotation.id == "T"
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Name) and node.exc.id == "BadInput":
                bad.append(f"{rel}:{node.lineno}: raise BadInput without a reason")
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name == "BadInput":
                seen += 1
                why = "not one argument" if len(node.args) != 1 or node.keywords else _bilingual(node.args[0])
                if why:
                    bad.append(f"{rel}:{node.lineno}: {why}")
            elif name in factories:
                for i in factories[name]:
                    seen += 1
                    if i >= len(node.args):
                        why = "T argument not given by position"
                    elif isinstance(node.args[i], ast.Name) and node.args[i].id in passed_on:
                        why = None
                    else:
                        why = _bilingual(node.args[i])
                    if why:
                        bad.append(f"{rel}:{node.lineno}: {name}(): {why}")
    return seen, bad


def test_every_refusal_in_the_source_is_bilingual():
    files = _sources()
    seen, bad = refusals(files)
    assert "ThresholdError" in _subclasses([ast.parse(p.read_text()) for p in files])
    # the walk found them (197 when written: 155 BadInput(...), the rest T arguments of refusal factories)
    assert seen > 190, seen
    assert not bad, "English-only refusals:\n" + "\n".join(bad)


def test_the_walk_catches_an_english_only_refusal(tmp_path):
    """The checker itself: each shape it must refuse, and the one it accepts."""
    cases = {
        'raise BadInput(f"inventory {p}: no such file")': "not T(zh, en)",
        'raise BadInput(T("inventory", "inventory"))': "no Chinese in the zh half",
        'raise BadInput(T("inventory", "清单"))': "no Chinese in the zh half",
        'raise BadInput(T("清单", "清单 inventory"))': "Chinese in the en half",
        'raise BadInput(T(f"清单 {p}: 文件不存在", f"inventory {p}: no such file"))': None,
    }
    for src, want in cases.items():
        call = ast.parse(src).body[0].exc
        assert _bilingual(call.args[0]) == want, src


def test_the_walk_follows_subclasses_and_factories(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "class E(BadInput):\n"
        "    def __init__(self, path: list, msg: T) -> None: ...\n"
        "def bad(what: T) -> E:\n"
        "    return E([], what)\n"
        "raise E([], 'english only')\n"
        "raise bad('english only')\n"
        "raise bad(T('中文', 'English'))\n"
        "raise BadInput\n"
    )
    seen, bad = refusals([f])
    assert sorted(bad) == [
        "m.py:5: E(): not T(zh, en)",
        "m.py:6: bad(): not T(zh, en)",
        "m.py:8: raise BadInput without a reason",
    ], bad
    assert seen == 4  # E(...) in bad, the two raises of E and bad, the bilingual one


# -- the line ---------------------------------------------------------------------------------------------------
def test_the_line_has_both_halves_english_first():
    e = BadInput(T("清单 /x.yaml: 文件不存在", "inventory /x.yaml: no such file"))
    assert str(e) == "inventory /x.yaml: no such file"  # what another message quoting it shows
    assert bad_input_line(e) == "inventory /x.yaml: no such file / 清单 /x.yaml: 文件不存在"
    assert bad_input_line(e, "en") == "inventory /x.yaml: no such file"
    assert bad_input_line(e, "zh") == "清单 /x.yaml: 文件不存在"
    assert bad_input_line(BadInput("plain text")) == "plain text"  # a plain string: shown as given


def test_a_long_value_is_bounded_in_english_cut_in_chinese_and_the_line_does_not_double():
    value = "/data/" + "a" * 5000 + "/inv.yaml"
    e = BadInput(T(f"清单 {value}: 文件不存在", f"inventory {value}: no such file"))
    line = bad_input_line(e)
    # the English half is bounded as every error line is (cli._bounded: its start and its end kept)
    en = _bounded(f"inventory {value}: no such file")
    assert len(en) < 1100 and en.startswith("inventory /data/aaa") and en.endswith("/inv.yaml: no such file")
    assert line.startswith(en + " / ")
    zh = line[len(en) + 3 :]
    assert len(zh) <= ZH_MAX and zh.startswith("清单 /data/aaa") and zh.endswith("/inv.yaml: 文件不存在"), zh
    assert "…" in zh
    # a hostile value that interleaves Chinese and ASCII (no long run to cut): the half is cut as a whole
    mixed = "清a" * 5000
    line = bad_input_line(BadInput(T(f"主机 {mixed} 无效", f"host {mixed} is not valid")))
    assert len(line) <= len(f"host {mixed} is not valid") + 3 + ZH_MAX


def test_both_halves_are_masked_and_terminal_safe():
    e = BadInput(
        T(
            "--domain 'https://admin:hunter2@x\x1b]0;PWN\x07' 不是域名；BK_PASSWORD：s3cr3t-value 无效",
            "--domain 'https://admin:hunter2@x\x1b]0;PWN\x07' is not a domain name; BK_PASSWORD: s3cr3t-value",
        )
    )
    for lang in (None, "zh", "en"):
        line = bad_input_line(e, lang)
        assert "hunter2" not in line and "s3cr3t" not in line, line
        assert "\x1b" not in line and "\x07" not in line and "␛]0;PWN␇" in line, line
        assert "\n" not in line


# -- end to end --------------------------------------------------------------------------------------------------
def bkdoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The console script's entry point (`bkdoctor = bkdoctor.launch:main`), this worktree's code."""
    e = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "LANG", "LC_ALL", "LC_MESSAGES")}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from bkdoctor.launch import main; main()", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bkdoctor: error: ") and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""
    return lines[0][len("bkdoctor: error: ") :]


@pytest.mark.parametrize("env", [{}, {"LANG": "zh_CN.UTF-8"}])
def test_cli_prints_both_languages_on_one_line(tmp_path, env):
    inv = tmp_path / "missing.yaml"
    line = one_line(bkdoctor("scan", "-i", str(inv), "--no-history", "--no-cluster", env=env))
    assert line == f"inventory {inv}: no such file / 清单 {inv}: 文件不存在"


def test_cli_long_hostile_value_one_line_not_doubled(tmp_path):
    inv = tmp_path / ("x" * 200) / ("y" * 3000 + "\x1b]0;PWN\x07\r\n.yaml")
    line = one_line(bkdoctor("scan", "-i", str(inv), "--no-history", "--no-cluster", env={"HOME": str(tmp_path)}))
    en, zh = line.split(" / 清单 ", 1)
    assert en.startswith("inventory ") and en.endswith(": no such file")
    assert "characters left out" in en and len(en) < 1100  # bounded (cli._bounded), its start and its end kept
    assert zh.endswith(": 文件不存在") and len(zh) < ZH_MAX and "…" in zh
    assert "\x1b" not in line and "\r" not in line and "␛]0;PWN␇␍␊.yaml" in en


def test_cli_masks_both_halves():
    line = one_line(bkdoctor("scan", "--domain", "https://admin:hunter2@bkce7.example.com", "--no-history"))
    assert "hunter2" not in line, line
    assert line.count("is not a domain name") == 1 and "不是域名" in line, line


def test_cli_explicit_lang_prints_that_half_only(tmp_path):
    inv = tmp_path / "missing.yaml"
    args = ("scan", "-i", str(inv), "--no-history", "--no-cluster")
    assert one_line(bkdoctor(*args, "--lang", "zh")) == f"清单 {inv}: 文件不存在"
    assert one_line(bkdoctor(*args, "--lang", "en", env={"LANG": "zh_CN.UTF-8"})) == f"inventory {inv}: no such file"
    # known before the other options are checked (--lang is eager): a refused --domain after it is in Chinese too
    assert "不是域名" in one_line(bkdoctor("scan", "--domain", "bad..name", "--lang", "zh")).split(" / ")[0]
