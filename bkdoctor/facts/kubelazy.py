"""Import the `kubernetes` client without its ~800 modules (issue 16: the CLI's fixed cost of a cluster scan).

`import kubernetes` runs `kubernetes/__init__.py`, which imports client, config, dynamic, watch, stream...;
`kubernetes/client/__init__.py` imports every API class and, through `api_client`'s `import
kubernetes.client.models`, every one of ~700 model modules: about 0.4 s of CPU and 50 MB before the first request.
The scan reads its lists as raw JSON through `ApiClient.call_api` and needs only `api_client`, `configuration`,
`rest` and the kubeconfig loader.

`install()` registers the four packages whose `__init__` only re-exports names (`kubernetes`, `kubernetes.client`,
`kubernetes.client.api`, `kubernetes.client.models`) as module objects with their real spec and `__path__`, whose
`__init__` is not run; instead each reads its own `__init__.py` into the table of names it binds (`from M import N`
lines, `from . import m`, `__x__ = "literal"` and the docstring), and its PEP 562 `__getattr__` imports a name's
module the first time the name is asked for, and binds it in the module. So `kubernetes.client.CoreV1Api` and
`kubernetes.client.models.V1Pod` are the very objects the real `__init__` binds (the client's deserialiser looks
models up with `getattr(kubernetes.client.models, name)`), and only the modules used are imported. `__all__` and
`dir()` load every name first (a star-import or a listing sees what the real package has). One difference: a
submodule the real `__init__` never imports is imported on attribute access instead of raising AttributeError.

Sound only while those `__init__` files are nothing but such bindings: each is parsed line by line and any other
statement, a version outside `SUPPORTED` (pyproject's range), a package already imported or any error while
setting up leaves the ordinary import in place (`install()` returns False and undoes what it registered).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
import types
from typing import Any

# pyproject: kubernetes>=33.1,<36 (the versions whose __init__ files this reads were checked by tests/test_kubelazy.py)
SUPPORTED = ((33, 1), (36, 0))
PACKAGES = ("kubernetes", "kubernetes.client", "kubernetes.client.api", "kubernetes.client.models")

_FROM = re.compile(r"from\s+(\.*[\w.]*)\s+import\s+(\w+)(?:\s+as\s+(\w+))?\s*(?:#.*)?")
_CONST = re.compile(r"(__\w+__)\s*=\s*(?:\"([^\"\\]*)\"|'([^'\\]*)')\s*(?:#.*)?")

# name -> (module to import, its attribute) or ("", literal) for a constant
Binding = tuple[str, Any]


def bindings(package: str, source: str) -> dict[str, Binding] | None:
    """The names `source` (the `__init__.py` of `package`) binds, or None when it does anything else."""
    out: dict[str, Binding] = {}
    doc: list[str] | None = None  # the lines of a triple-quoted string statement being read
    first = True  # no statement yet: a string here is the module's __doc__
    for raw in source.splitlines():
        line = raw.strip()
        if doc is None:
            if not line or line.startswith("#"):
                continue
            if raw[0].isspace():
                return None
            if line[:3] in ('"""', "'''"):
                doc = []
        if doc is not None:
            doc.append(raw)
            quote = doc[0][:3]
            if sum(part.count(quote) for part in doc) < 2:
                continue
            if not line.endswith(quote) or sum(part.count(quote) for part in doc) != 2:
                return None
            try:
                text = ast.literal_eval("\n".join(doc))
            except (SyntaxError, ValueError):
                return None
            if first:
                out["__doc__"] = ("", text)
            doc, first = None, False
            continue
        first = False
        m = _FROM.fullmatch(line)
        if m:
            mod, name, alias = m.groups()
            if mod == "__future__":
                out[alias or name] = ("__future__", name)
                continue
            if mod.startswith("."):
                dots = len(mod) - len(mod.lstrip("."))
                base = package.rsplit(".", dots - 1)[0] if dots > 1 else package
                mod = base + ("." + mod[dots:] if mod[dots:] else "")
            if not mod.startswith("kubernetes"):
                return None
            out[alias or name] = (mod, name)
            continue
        m = _CONST.fullmatch(line)
        if m:
            out[m.group(1)] = ("", m.group(2) if m.group(2) is not None else m.group(3))
            continue
        return None
    return None if doc is not None else out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def _resolve(module: types.ModuleType, table: dict[str, Binding], name: str) -> Any:
    mod, attr = table[name]
    if not mod:
        value = attr
    else:
        target = importlib.import_module(mod)
        # `from . import sub` in a package's own __init__ binds its submodule (the import system imports it)
        value = importlib.import_module(f"{mod}.{attr}") if target is module else getattr(target, attr)
    module.__dict__[name] = value
    return value


def _lazy(module: types.ModuleType, table: dict[str, Binding]) -> None:
    package = module.__name__

    def load_all() -> None:
        for n in table:
            if n not in module.__dict__:
                _resolve(module, table, n)

    def __getattr__(name: str) -> Any:
        if name in table:
            return _resolve(module, table, name)
        if name == "__all__":  # star-import: the real package has no __all__ and exports every bound name
            load_all()
        elif name.isidentifier() and not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            # a submodule, as after the real __init__ (one it never imports is imported here, not AttributeError)
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        load_all()
        return sorted(k for k in module.__dict__ if k not in ("__getattr__", "__dir__"))

    module.__dict__["__getattr__"] = __getattr__
    module.__dict__["__dir__"] = __dir__


def install() -> bool:
    """Register the lazy packages; True when they are in place (or already were), False to import plainly."""
    top = sys.modules.get("kubernetes")
    if top is not None:
        return getattr(top, "__bkdoctor_lazy__", False)
    added: list[str] = []
    try:
        for package in PACKAGES:
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None or spec.submodule_search_locations is None or spec.loader is None:
                raise ImportError(f"{package}: not a package")
            with open(spec.origin, encoding="utf-8") as fh:
                table = bindings(package, fh.read())
            if table is None:
                raise ImportError(f"{package}/__init__.py binds more than names")
            if package == "kubernetes":
                version = _version(str(table.get("__version__", ("", ""))[1]))
                if not SUPPORTED[0] <= version < SUPPORTED[1]:
                    raise ImportError(f"kubernetes {version}: outside {SUPPORTED}")
            module = importlib.util.module_from_spec(spec)
            module.__dict__["__bkdoctor_lazy__"] = True
            # the literals (__doc__, __version__...) at once: module_from_spec has set __doc__ to None already
            module.__dict__.update({k: v for k, (m, v) in table.items() if not m})
            _lazy(module, table)
            sys.modules[package] = module
            added.append(package)
            parent, _, child = package.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
        return True
    except Exception:
        if added:
            uninstall()
        return False


def uninstall() -> None:
    """Drop the lazy packages and every module imported under them (`install()` and `cluster._client()` on a
    surprise, before the ordinary import)."""
    for name in list(sys.modules):
        if name == "kubernetes" or name.startswith("kubernetes."):
            del sys.modules[name]
