"""The lazy import of the kubernetes client (bkdoctor/facts/kubelazy.py, issue 16): sound on the installed client,
cheap for the scan, and the ordinary import whenever anything is unexpected.

Each check runs in a fresh interpreter (this test session already imported the client through conftest). The
equivalence check loads every name of the four lazy packages and compares it with what the real `__init__` files
bind in another interpreter; the cluster check runs `bkdoctor scan` and `bkdoctor fix` through the console
script's entry point against the real test API server and reads which modules they imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.facts import kubelazy

ROOT = Path(__file__).resolve().parent.parent

DESCRIBE = r"""
import json, sys, types
def describe(v):
    if isinstance(v, types.ModuleType):
        return "module " + v.__name__
    if isinstance(v, (str, int, float, list, tuple)):
        return repr(v)
    return f"{type(v).__name__} {getattr(v, '__module__', None)}.{getattr(v, '__qualname__', None)} {id(v) == id(getattr(sys.modules.get(getattr(v, '__module__', '') or ''), getattr(v, '__name__', ''), None))}"
out = {}
for pkg in sys.argv[2].split(","):
    mod = sys.modules[pkg]
    names = set(dir(mod)) - {"__builtins__", "__getattr__", "__dir__", "__bkdoctor_lazy__", "__cached__", "__loader__", "__spec__"}
    out[pkg] = {n: describe(getattr(mod, n)) for n in sorted(names)}
out["modules"] = sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes."))
json.dump(out, open(sys.argv[1], "w"))
"""


def _py(tmp_path, code: str, *args: str) -> dict:
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "BKDOCTOR_DEBUG")}
    p = subprocess.run(
        [sys.executable, "-c", code, str(out), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_installed_client_is_read_lazily():
    """The installed version's four `__init__` files are plain bindings (else the shim would stand aside)."""
    import importlib.util

    sizes = {}
    for package in kubelazy.PACKAGES:
        spec = importlib.util.find_spec(package)
        table = kubelazy.bindings(package, Path(spec.origin).read_text(encoding="utf-8"))
        assert table is not None, package
        sizes[package] = len(table)
    assert sizes["kubernetes.client.models"] > 500 and sizes["kubernetes.client"] > sizes["kubernetes.client.models"]
    assert sys.modules["kubernetes"].__bkdoctor_lazy__  # conftest: the suite runs on the lazy packages


def test_supported_is_pyprojects_range():
    import re

    (low, high), *more = re.findall(r'"kubernetes>=([\d.]+),<([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert not more
    as_pair = lambda v: (tuple(int(x) for x in v.split(".")) + (0,))[:2]  # noqa: E731
    assert kubelazy.SUPPORTED == (as_pair(low), as_pair(high))


def test_missing_names_are_attribute_errors():
    import kubernetes.client

    for name in ("no_such_name", "a.b", "__all_but__", "V1NoSuchModel"):
        assert not hasattr(kubernetes.client, name) and not hasattr(kubernetes.client.models, name), name
    assert kubernetes.client.rest.ApiException is kubernetes.client.ApiException  # a submodule, then a name


def test_every_name_is_the_one_the_real_init_binds(tmp_path):
    pkgs = ",".join(kubelazy.PACKAGES)
    lazy = _py(
        tmp_path,
        "import sys; from bkdoctor.facts import kubelazy; assert kubelazy.install()\n"
        "import kubernetes.client.api, kubernetes.client.models\n" + DESCRIBE,
        pkgs,
    )
    plain = _py(tmp_path, "import kubernetes.client.api, kubernetes.client.models\n" + DESCRIBE, pkgs)
    for package in kubelazy.PACKAGES:
        assert lazy[package] == plain[package], package
    assert lazy["modules"] == plain["modules"]  # dir() loaded everything: the same modules as the plain import
    assert len(plain["kubernetes.client.models"]) > 500


@pytest.mark.parametrize(
    "source",
    [
        "import os\n",
        "from . import a\ndef f():\n    pass\n",
        "from .kube_config import (a,\n    b)\n",
        "if True:\n    from . import a\n",
        "from os import path\n",
        "from . import a; x = 1\n",
        '__version__ = "1" + "2"\n',
        '"""never closed\n',
        "__all__ = ['a']\n",
    ],
)
def test_anything_but_bindings_is_refused(source):
    assert kubelazy.bindings("kubernetes.client", source) is None


def test_bindings_read_as_the_import_statements_do():
    src = (
        '# c\n"""doc\nmore"""\nfrom __future__ import absolute_import\n__version__ = "35.0.0"\n'
        "from . import client\nfrom .config_exception import ConfigException\n"
        "from kubernetes.client.api.core_v1_api import CoreV1Api as Core  # noqa\n"
        '"""not the docstring"""\n'
    )
    assert kubelazy.bindings("kubernetes", src) == {
        "__doc__": ("", "doc\nmore"),
        "absolute_import": ("__future__", "absolute_import"),
        "__version__": ("", "35.0.0"),
        "client": ("kubernetes", "client"),
        "ConfigException": ("kubernetes.config_exception", "ConfigException"),
        "Core": ("kubernetes.client.api.core_v1_api", "CoreV1Api"),
    }
    assert kubelazy.bindings("kubernetes.client.api", "from .. import rest\n") == {
        "rest": ("kubernetes.client", "rest")
    }


FALLBACK = r"""
import json, sys
from bkdoctor.facts import kubelazy
from bkdoctor.facts.cluster import _client
how = sys.argv[2]
if how == "version":
    kubelazy.SUPPORTED = ((99, 0), (100, 0))
elif how == "imported":
    import kubernetes
elif how == "broken":
    assert kubelazy.install()
    sys.modules["kubernetes.client.api_client"] = None  # its import raises ImportError
client, config = _client()
json.dump({
    "lazy": getattr(sys.modules["kubernetes"], "__bkdoctor_lazy__", False),
    "client": client.ApiClient.__module__ + "." + client.Configuration.__name__ + " " + config.__name__,
    "models": "kubernetes.client.models.v1_pod" in sys.modules,
}, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("how", ["version", "imported", "broken", "none"])
def test_a_surprise_falls_back_to_the_plain_import(tmp_path, how):
    """A version outside pyproject's range, a client someone already imported, an import that fails on the lazy
    packages: the ordinary `import kubernetes` (all models loaded); otherwise the lazy one (none)."""
    got = _py(tmp_path, FALLBACK, how)
    assert got["client"] == "kubernetes.client.api_client.Configuration kubernetes.config"
    assert (got["lazy"], got["models"]) == ((True, False) if how == "none" else (False, True))


RUNNER = r"""
import json, sys
out = sys.argv[1]
sys.argv = ["bkdoctor", *sys.argv[2:]]
from bkdoctor.launch import main
import io, contextlib
buf = io.StringIO()
code = 0
try:
    with contextlib.redirect_stdout(buf):
        main()
except SystemExit as e:
    code = e.code
json.dump({"code": code, "stdout": buf.getvalue(), "modules": sorted(sys.modules)}, open(out, "w"))
"""


@pytest.mark.kube
def test_scan_loads_no_model_and_fix_still_works(tmp_path, kube_apiserver):  # noqa: F811
    """`bkdoctor scan` of a cluster imports the API client, not one model or API class; `bkdoctor fix` then
    patches a ConfigMap through `CoreV1Api` (loaded on use, with the few models it deserialises) and the rule
    passes again."""
    from clusterstate import FIXTURES, ClusterState, merged_state

    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(FIXTURES / "coredns" / "wrong-ip.fail.yaml")
        st.apply(objs)
        common = ["--kubeconfig", kube_apiserver.kubeconfig, "--domain", "bkce7.bktencent.com"]
        env_home = ["--db", str(tmp_path / "h.db")]

        def run(*args: str) -> tuple[dict, list[str]]:
            r = _py(tmp_path, RUNNER, *args)
            assert r["code"] in (0, 1), r
            return json.loads(r["stdout"]), r["modules"]

        report, mods = run("scan", *common, "--rule", "cluster", "--json", "-", "--no-history")
        statuses = {f["rule"]: f["status"] for f in report["findings"]}
        assert statuses["coredns"] == "fail" and len(statuses) > 20, statuses
        kube = [m for m in mods if m.startswith("kubernetes")]
        assert "kubernetes.client.api_client" in kube and "kubernetes.config.kube_config" in kube
        assert not [m for m in kube if m.startswith(("kubernetes.client.models.", "kubernetes.client.api."))], kube
        assert len(kube) < 20, kube

        outcome, mods = run("fix", "--rule", "coredns", *common, "--yes", "--json", "-", *env_home)
        assert [o["status"] for o in outcome["outcomes"]] == ["fixed"], outcome
        assert "kubernetes.client.api.core_v1_api" in mods
        assert 0 < len([m for m in mods if m.startswith("kubernetes.client.models.")]) < 20

        report, _ = run("scan", *common, "--rule", "coredns", "--json", "-", "--no-history")
        assert [f["status"] for f in report["findings"]] == ["pass"], report["findings"]
    finally:
        st.cleanup()
