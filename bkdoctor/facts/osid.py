"""OS identification with the `distro` library, from the text the probe collected on the host.

`distro` reads files, not strings: the collected /etc/os-release, /etc/centos-release and /etc/redhat-release are
written into a private temporary root (`root_dir=`: distro then reads only those files, runs no command, and never
looks at this machine's own /etc). The fact keeps its shape: id, name, version, release, id_like. The answer is kept
per distinct set of texts: a fleet's hosts mostly carry the same release files.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any

FILES = {"os_release": "os-release", "centos_release": "centos-release", "redhat_release": "redhat-release"}


def identify(texts: dict[str, str | None]) -> dict[str, Any]:
    """texts: section name (os_release, centos_release, redhat_release) -> file content, None when absent."""
    return dict(_identify(*(texts.get(sec) for sec in FILES)))


# a temporary root per host (mkdir, 3 files, rmdir) was ~9 ms of CPU a host at 300 hosts, the most of any fact
# (issue 16); distro's answer depends on these texts alone
@functools.lru_cache(maxsize=64)
def _identify(*values: str | None) -> dict[str, Any]:
    import distro

    texts = dict(zip(FILES, values))
    with tempfile.TemporaryDirectory(prefix="bkdoctor-os-") as root:
        etc = os.path.join(root, "etc")
        os.mkdir(etc)
        for sec, fname in FILES.items():
            t = texts.get(sec)
            if t is not None:
                with open(os.path.join(etc, fname), "w", encoding="utf-8", errors="surrogateescape") as fh:
                    fh.write(t)
        d = distro.LinuxDistribution(root_dir=root, include_lsb=False, include_uname=False, include_oslevel=False)
        osr = d.os_release_info()
        dist = d.distro_release_info()
        # the release line as the host wrote it (centos-release first, like `cat /etc/centos-release`)
        release = (texts.get("centos_release") or texts.get("redhat_release") or "").strip()
        version = d.version(best=True) if release else (osr.get("version_id") or "")
        return {
            # the os-release ID as written (distro normalises a few, e.g. ol -> oracle: the rules compare raw ids);
            # without os-release, the id distro derives from the release file's name (centos-release -> centos)
            "id": osr.get("id") or (dist.get("id") if texts.get("centos_release") else "") or "",
            "name": osr.get("pretty_name") or release or osr.get("name", ""),
            "version": version,
            "release": release,
            "id_like": osr.get("id_like", ""),
        }
