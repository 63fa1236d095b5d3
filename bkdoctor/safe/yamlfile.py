"""The one YAML loader for every YAML file an operator (or a host) hands bkdoctor: inventories, Ansible
inventories, site rules, custom.yaml, kubeconfigs, a host's registry config.

On top of yaml.SafeLoader:
- a duplicate key is an error (last-wins would silently drop, e.g., a whole `hosts:` list);
- dates stay strings (`until: 2027-06-30` is the string the schema checks as a date), no YAML timestamps;
- bounded: at most MAX_BYTES of text, MAX_NODES nodes once aliases are expanded (a 440-byte alias bomb
  expands to billions), MAX_DEPTH levels of nesting, no recursive alias.
Every failure is `BadInput` with one line, English and Chinese: `<source>: line N: <what>` (the source a path, or a
`T` naming the file in both languages). `line_of` and `schema_error_at` give the
line of a key path in a loaded document, for the schema errors of the files checked by one (inventory, site rules).
"""

from __future__ import annotations

from typing import Any

import yaml

from bkdoctor.model import BadInput, T

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 500_000
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    pass


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


def _check_size(root: yaml.Node, source: str | T) -> None:
    """Expanded node count and depth, computed on the node graph (each node once, memoised), iteratively."""
    src = _source(source)
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, state = stack.pop()
        nid = id(node)
        if isinstance(node, yaml.ScalarNode):
            size[nid], depth[nid] = 1, 1
            continue
        children = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) else list(node.value)
        if state == 0:
            if nid in size:
                continue
            if nid in on_path:
                raise BadInput(
                    T(
                        f"{src.zh}: 第 {node.start_mark.line + 1} 行: 别名引用了它自己",
                        f"{src.en}: line {node.start_mark.line + 1}: an alias refers to itself",
                    )
                )
            on_path.add(nid)
            stack.append((node, 1))
            for c in children:
                if id(c) in on_path:
                    raise BadInput(
                        T(
                            f"{src.zh}: 第 {c.start_mark.line + 1} 行: 别名引用了它自己",
                            f"{src.en}: line {c.start_mark.line + 1}: an alias refers to itself",
                        )
                    )
                if id(c) not in size:
                    stack.append((c, 0))
            if len(on_path) > MAX_DEPTH:
                raise BadInput(
                    T(
                        f"{src.zh}: 第 {node.start_mark.line + 1} 行: 嵌套超过 {MAX_DEPTH} 层",
                        f"{src.en}: line {node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels",
                    )
                )
        else:
            on_path.discard(nid)
            total = 1 + sum(size[id(c)] for c in children)
            size[nid] = total
            depth[nid] = 1 + max((depth[id(c)] for c in children), default=0)
            if total > MAX_NODES:
                raise BadInput(
                    T(
                        f"{src.zh}: 第 {node.start_mark.line + 1} 行: 展开别名后超过 {MAX_NODES:,} 个值（别名炸弹？）",
                        f"{src.en}: line {node.start_mark.line + 1}: more than {MAX_NODES:,} values once "
                        f"aliases are expanded (an alias bomb?)",
                    )
                )
            if depth[nid] > MAX_DEPTH:
                raise BadInput(
                    T(
                        f"{src.zh}: 第 {node.start_mark.line + 1} 行: 嵌套超过 {MAX_DEPTH} 层",
                        f"{src.en}: line {node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels",
                    )
                )


def _check_depth(text: str, source: str | T) -> None:
    """Nesting depth from the parser's events (no recursion): the composer recurses per level, so a deep
    document is refused before it gets there."""
    src = _source(source)
    depth = 0
    try:
        loader = _Loader(text)  # the reader refuses control characters here already (\x07, \x00, ESC)
    except yaml.YAMLError:
        return  # reported with its line by the real load
    try:
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise BadInput(
                        T(
                            f"{src.zh}: 第 {ev.start_mark.line + 1} 行: 嵌套超过 {MAX_DEPTH} 层",
                            f"{src.en}: line {ev.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels",
                        )
                    )
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # reported with its line by the real load
    finally:
        loader.dispose()


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
    _check_depth(text, source)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:  # a control character (\x07, \x00, ESC) or bad encoding: refused by the reader
        raise BadInput(T(f"{src.zh}: YAML 无效: {_problem(e)}", f"{src.en}: invalid YAML: {_problem(e)}")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_size(node, source)
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
    finally:
        loader.dispose()


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
    return line_of(node, keypath), ".".join(str(k) for k in keypath) or "(top level)"
