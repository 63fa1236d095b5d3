"""What the install dir on the control machine says about the site: custom.yaml, values.yaml, VERSION,
version.yaml and bcs-custom-values.yaml.gotmpl under `<install_dir>` (bkdoctor runs on the control machine,
where the guide keeps them: `~/bkce7.1-install/blueking/`).

Read once per scan, bounded, never written. A file that is absent is None; a file that does not parse is kept
as an error string, so a rule reports `error` instead of judging on a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bkdoctor.model import BadInput
from bkdoctor.safe import yamlfile

MAX_BYTES = 2 * 1024 * 1024

FILES = {
    "custom": "environments/default/custom.yaml",
    "values": "environments/default/values.yaml",
    "version_yaml": "environments/default/version.yaml",
    "bcs_custom": "environments/default/bcs-custom-values.yaml.gotmpl",
    "VERSION": "VERSION",
}


@dataclass
class Site:
    install_dir: str
    data: dict[str, Any] = field(default_factory=dict)  # key -> parsed mapping / text / None
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, *path: str) -> Any:
        """custom.yaml value at path (e.g. 'localpv', 'hostDir'), falling back to values.yaml; None if absent."""
        for src in (key,) if key != "custom" else ("custom", "values"):
            cur: Any = self.data.get(src)
            for p in path:
                cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is not None:
                return cur
        return None

    def path(self, key: str) -> str:
        return str(Path(os.path.expanduser(self.install_dir)) / FILES[key])


def load(install_dir: str) -> Site:
    site = Site(install_dir=install_dir)
    base = Path(os.path.expanduser(install_dir))
    for key, rel in FILES.items():
        p = base / rel
        try:
            with open(p, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            site.data[key] = None
            continue
        except OSError as e:
            site.data[key] = None
            site.errors[key] = f"{p}: {e.strerror or e}"
            continue
        if len(raw) > MAX_BYTES:
            site.data[key] = None
            site.errors[key] = f"{p}: larger than {MAX_BYTES} bytes"
            continue
        text = raw.decode("utf-8", "replace")
        if key == "VERSION":
            site.data[key] = text.strip()
            continue
        try:
            data = yamlfile.load(text, str(p))  # duplicate keys, alias bombs and depth refused like every input
        except BadInput as e:
            site.data[key] = None
            site.errors[key] = str(e).splitlines()[0] if str(e) else f"{p}: not valid YAML"
            continue
        if data is not None and not isinstance(data, dict):
            site.data[key] = None
            site.errors[key] = f"{p}: top level is not a mapping"
            continue
        site.data[key] = data or {}
    return site


def for_inventory(inv: Any) -> Site | None:
    """The site of an inventory's install dir, loaded once (cached on the inventory object). None where the install
    dir is not this machine's to read: a support bundle's analysis reads nothing of the analyst's machine."""
    if getattr(inv, "site_files", True) is False:
        return None
    cached = getattr(inv, "_site", None)
    if cached is not None and cached.install_dir == inv.install_dir:
        return cached
    s = load(inv.install_dir)
    try:
        inv._site = s
    except AttributeError:
        pass
    return s


def localpv_dirs(inv: Any) -> tuple[str, str]:
    """(PV mount dir, source dir) after apply(): custom.yaml/values.yaml `localpv.hostDir` (§五.5) or the default."""
    apply(inv)
    th = inv.thresholds
    return th["localpv_mount_dir"].rstrip("/") or "/", th["localpv_source_dir"].rstrip("/") or "/"


def apply(inv: Any) -> None:
    """Site values that the probe, the rules and the fixes must all see alike go into the thresholds: LocalPV's
    hostDir (§五.5), unless the inventory set `thresholds.localpv_mount_dir` itself."""
    from bkdoctor.inputs.thresholds import DEFAULTS

    th = inv.thresholds
    site = for_inventory(inv)
    host_dir = site.get("custom", "localpv", "hostDir") if site is not None else None
    if isinstance(host_dir, str) and host_dir.strip() and th.get("localpv_mount_dir") == DEFAULTS["localpv_mount_dir"]:
        th["localpv_mount_dir"] = host_dir.strip().rstrip("/") or "/"
