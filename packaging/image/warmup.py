"""Run once inside the image's root filesystem at build time, after every __pycache__ was removed: Python
writes bytecode for exactly the modules bkdoctor imports (its own, every rule, the libraries they use), so
the image carries no bytecode for the rest (pip's, the unused stdlib, pygments' hundreds of lexers...) and a
scan still starts in ~3 s instead of ~10 s of compiling the kubernetes client on every `docker run`."""

import importlib
import pkgutil
import subprocess
import sys

import bkdoctor

failed = []
for m in pkgutil.walk_packages(bkdoctor.__path__, "bkdoctor."):
    try:
        importlib.import_module(m.name)
    except Exception as e:  # a rule file loaded by path, not as a module, may not import this way
        failed.append(f"{m.name}: {e}")
for name in (
    "kubernetes.client",
    "kubernetes.config",
    "kubernetes.stream",
    "kubernetes.watch",
    "asyncssh",
    "jinja2",
    "jsonschema",
    "sqlite_utils",
    "rich.console",
    "rich.live",
    "rich.progress",
    "rich.table",
    "rich.traceback",
    "yaml",
    "docker",
    "concurrent.futures",
    "asyncio",
    "sqlite3",
    "json",
    "ssl",
):
    importlib.import_module(name)
bkd = [sys.prefix + "/bin/bkdoctor"]
for args in (["--version"], ["rules", "--json"], ["scan", "--help"], ["history", "--help"]):
    subprocess.run(bkd + args, check=True, stdout=subprocess.DEVNULL)
if failed:
    print("not imported as modules (fine when loaded by path):", *failed, sep="\n  ")
