"""The one YAML loader for every YAML file an operator (or a host) hands bkdoctor: inventories, Ansible
inventories, site rules, custom.yaml, kubeconfigs, a host's registry config.

On top of yaml.SafeLoader:
- a duplicate key is an error (last-wins would silently drop, e.g., a whole `hosts:` list);
- dates stay strings (`until: 2027-06-30` is the string the schema checks as a date), no YAML timestamps;
- bounded: at most MAX_BYTES of text, MAX_NODES nodes once aliases are expanded (a 440-byte alias bomb
  expands to billions), MAX_DEPTH levels of nesting, no recursive alias; counted while the document is composed
  (`_Bounded`), so a hostile 16 MiB file is refused after MAX_NODES nodes, in well under a second and ~90 MB;
- libyaml's parser when PyYAML has it (`_CLoader`, 3x faster to a limit; Ansible reads inventories with it too),
  else the pure-Python one (`_Loader`); either way the composing, counting and constructing are the same Python.
Every failure is `BadInput` with one line, English and Chinese: `<source>: line N: <what>` (the source a path, or a
`T` naming the file in both languages). `line_of` and `schema_error_at` give the
line of a key path in a loaded document, for the schema errors of the files checked by one (inventory, site rules).
"""

from __future__ import annotations

from typing import Any

import yaml

from bkdoctor.model import BadInput, T

MAX_BYTES = 16 * 1024 * 1024
# Values in one document, each alias counted as the values it stands for. Counted while the document is composed, so
# a hostile file costs at most this many nodes (~0.9 KiB each with their marks), never its whole 16 MiB: refused in
# <1 s and <~80 MB. Real documents are far below: the 300-host bench inventory (bench/fleet.py) is ~2,400 values, a
# 5,000-host one ~40,000; the largest kubeconfig, custom.yaml or site rules file in fixtures/examples ~200.
MAX_NODES = 100_000
MAX_DEPTH = 64


class _Bounded(yaml.composer.Composer):
    """A composer that counts values (aliases expanded) and nesting while it composes, refusing the document as soon
    as it passes MAX_NODES or MAX_DEPTH: memory is bounded by the limits, not by the file. An alias to the node
    that is still being composed (a recursive alias) is refused too."""

    source = T("", "")

    def _init_bounds(self, source: T) -> None:
        self.source = source
        self._nodes = 0  # values so far, aliases expanded
        self._depth = 0  # nesting of the node being composed
        self._deepest = 0  # deepest level reached inside the node being composed
        self._open: set[str] = set()  # anchors of nodes still being composed
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) of its node

    def _refuse(self, mark: Any, zh: str, en: str) -> BadInput:
        src = self.source
        return BadInput(T(f"{src.zh}: 第 {mark.line + 1} 行: {zh}", f"{src.en}: line {mark.line + 1}: {en}"))

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise self._refuse(
                mark,
                f"超过 {MAX_NODES:,} 个值（别名按展开计；别名炸弹？）",
                f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)",
            )

    def _levels(self, depth: int, mark: Any) -> None:
        if depth > MAX_DEPTH:
            raise self._refuse(mark, f"嵌套超过 {MAX_DEPTH} 层", f"nested deeper than {MAX_DEPTH} levels")

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = event.anchor
        if isinstance(event, yaml.AliasEvent):
            if anchor in self._open:
                raise self._refuse(event.start_mark, "别名引用了它自己", "an alias refers to itself")
            if anchor in self._sizes:  # else the composer says "found undefined alias"
                values, levels = self._sizes[anchor]
                self._count(values, event.start_mark)
                self._levels(self._depth + levels, event.start_mark)
                self._deepest = max(self._deepest, self._depth + levels)
            return super().compose_node(parent, index)
        before, outer_deepest = self._nodes, self._deepest
        self._depth += 1
        self._levels(self._depth, event.start_mark)
        self._count(1, event.start_mark)
        self._deepest = self._depth
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = (self._nodes - before, self._deepest - self._depth + 1)
        self._deepest = max(outer_deepest, self._deepest)
        self._depth -= 1
        return node


class _Loader(_Bounded, yaml.SafeLoader):
    def __init__(self, stream: str, source: T) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._init_bounds(source)


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML without libyaml: the pure-Python parser, ~3x slower to reach a limit
    CParser = None

if CParser is not None:

    class _CLoader(_Bounded, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore
        """libyaml's parser (as Ansible's own loader uses) gives the events, _Bounded composes them in Python."""

        def __init__(self, stream: str, source: T) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)
            self._init_bounds(source)


# no implicit timestamps: a date is kept as the text the operator wrote
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line
            except TypeError:
                pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
if CParser is not None:
    _CLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    _CLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _problem(e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.reader.ReaderError):
        what = f"character #x{e.character:04x}" if isinstance(e.character, int) else "byte"
        return f"position {e.position}: unacceptable {what} (control characters are not allowed in YAML)"
    return getattr(e, "problem", None) or str(e).splitlines()[0]


def _where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""


def _where_zh(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f" 第 {mark.line + 1} 行第 {mark.column + 1} 列:" if mark else ""


def _source(source: str | T) -> T:
    """What the refusal names (a path, or `T("清单 x", "inventory x")`) in both languages."""
    return source if isinstance(source, T) else T(source, source)


def load_with_node(text: str, source: str | T) -> tuple[Any, yaml.Node | None]:
    """(data, root node for line numbers). Raises BadInput with one line."""
    src = _source(source)
    if len(text) > MAX_BYTES:
        raise BadInput(
            T(
                f"{src.zh}: 超过 {MAX_BYTES // (1024 * 1024)} MiB",
                f"{src.en}: larger than {MAX_BYTES // (1024 * 1024)} MiB",
            )
        )
    try:
        loader = (_Loader if CParser is None else _CLoader)(text, src)
    except yaml.YAMLError as e:  # a control character (\x07, \x00, ESC) or bad encoding: refused by the reader
        raise BadInput(T(f"{src.zh}: YAML 无效: {_problem(e)}", f"{src.en}: invalid YAML: {_problem(e)}")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        return loader.construct_document(node), node
    except yaml.YAMLError as e:
        problem = _problem(e)
        ctx, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if ctx and cmark:
            problem += f" ({ctx} at line {cmark.line + 1})"
        raise BadInput(
            T(f"{src.zh}:{_where_zh(e)} YAML 无效: {problem}", f"{src.en}:{_where(e)} invalid YAML: {problem}")
        ) from None
    except RecursionError:
        raise BadInput(
            T(
                f"{src.zh}: YAML 无效: 嵌套深度超出 bkdoctor 的读取上限",
                f"{src.en}: invalid YAML: nested deeper than bkdoctor reads",
            )
        ) from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise BadInput(
            T(
                f"{src.zh}: YAML 无效: {str(e).splitlines()[0] if str(e) else 'bad value'}",
                f"{src.en}: invalid YAML: {str(e).splitlines()[0] if str(e) else 'bad value'}",
            )
        ) from None
    except MemoryError:
        pass  # refused below, once this handler has let go of the error and of the frames that held the memory
    finally:
        loader.dispose()
    raise BadInput(
        T(
            f"{src.zh}: 可用内存不足以读取此文件（MemoryError）",
            f"{src.en}: too large to read in the memory available (MemoryError)",
        )
    )


def load(text: str, source: str | T) -> Any:
    return load_with_node(text, source)[0]


def line_of(node: yaml.Node | None, path: list[Any]) -> int | str | None:
    """1-based line of the YAML node at `path` (dict keys / list indexes), nearest existing ancestor."""
    if node is None:
        return "?"
    best = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = v
                    best = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            best = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return best


def schema_error_at(e: Any, node: yaml.Node | None) -> tuple[int | str | None, str]:
    """(line, dotted key path) of a JSON Schema error (`jsonschema.ValidationError`) on a document loaded with
    `load_with_node`; an unknown key is named itself, not the mapping that holds it."""
    keypath = list(e.absolute_path)
    if e.validator == "additionalProperties":
        extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
        if extra:
            keypath.append(extra[0])
    return line_of(node, keypath), ".".join(_short(k) for k in keypath) or "(top level)"


def schema_validator(schema: dict[str, Any], **kw: Any) -> Any:
    """A JSON Schema (2020-12) validator whose `number` is a finite one: YAML's `.nan` passed `exclusiveMinimum: 0`
    (NaN fails no comparison) and `.inf` passed as a timeout that never ends. Every schema bkdoctor checks a file
    against is made here (the inventory, site rules, FAQ signatures)."""
    import math

    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "number", lambda c, v: base.TYPE_CHECKER.is_type(v, "number") and math.isfinite(v)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema, **kw)


# a value or key longer than this is never quoted in an error line: its type and length are (a value cut to a head
# could end inside a secret the masking no longer recognises; and masking a 16 MiB line took 16.5 s and 245 MB)
QUOTE_MAX = 80


def _short(k: Any) -> str:
    s = str(k)
    return s if len(s) <= QUOTE_MAX else f"<a key of {len(s):,} characters>"


def _described(v: Any) -> str:
    if isinstance(v, str):
        return f"a string of {len(v):,} characters"
    if isinstance(v, dict):
        return f"a mapping of {len(v):,} keys"
    if isinstance(v, list):
        return f"a list of {len(v):,} items"
    return f"a {type(v).__name__}"


def schema_message(e: Any) -> str:
    """A JSON Schema error's message (`jsonschema.ValidationError.message`), the value it quotes described by type
    and length when the message would be longer than QUOTE_MAX; the schema's own words kept."""
    msg = str(e.message)
    if len(msg) <= QUOTE_MAX:
        return msg
    v, r = e.instance, repr(e.instance)
    if len(r) > QUOTE_MAX and r in msg:
        msg = msg.replace(r, _described(v))
        if len(msg) <= 2 * QUOTE_MAX:
            return msg
    # another long quote (an unknown key, a long enum or pattern of the schema): no quote at all
    return f"{_described(v)} does not pass the schema's {str(e.validator)[:40]!r} check"
