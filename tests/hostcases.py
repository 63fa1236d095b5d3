"""Rule fixture cases: a host state (YAML) -> a real namespaced host -> the real probe and engine.

Layout: fixtures/host/<rule>/<case>.<status>.yaml, with an optional <case>.<status>.golden.json holding the
expected finding (status, English and Chinese message, observed, expected). A case is laid over the base
state fixtures/hosts/<base>.yaml (default centos79): `files`, `symlinks`, `remove` merge over the base;
`setup` runs after the base's setup; `docker: true` starts a real dockerd in the host; `chronyd:
synced|unsynced|none`; `roles`, `domain`, `thresholds`, `inventory` (extra inventory keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
UPDATE_GOLDEN = os.environ.get("BKDOCTOR_UPDATE_GOLDEN") == "1"


@dataclass
class Case:
    rule: str
    name: str
    status: str
    path: Path
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.rule}/{self.name}.{self.status}"

    @property
    def golden_path(self) -> Path:
        return self.path.with_name(self.path.name[: -len(".yaml")] + ".golden.json")


def load_cases(kind: str = "host") -> list[Case]:
    out = []
    for p in sorted((FIXTURES / kind).glob("*/*.yaml")):
        stem = p.name[: -len(".yaml")]
        name, _, status = stem.rpartition(".")
        out.append(Case(rule=p.parent.name, name=name, status=status, path=p, spec=yaml.safe_load(p.read_text()) or {}))
    return out


def host_state(case: Case) -> dict[str, Any]:
    """Base state merged with the case."""
    base_name = case.spec.get("base", "centos79")
    base = yaml.safe_load((FIXTURES / "hosts" / f"{base_name}.yaml").read_text()) if base_name else {}
    st = copy.deepcopy(base)
    for key in ("files", "symlinks", "tmpfs_sizes"):
        merged = dict(st.get(key) or {})
        merged.update(case.spec.get(key) or {})
        st[key] = merged
    for path in case.spec.get("remove") or []:
        st["files"].pop(path, None)
        st["symlinks"].pop(path, None)
    # removing a /proc or /sys file of the base means: show the real one (no bind mount), not a whiteout
    st["remove"] = [
        p
        for p in list(base.get("remove") or []) + list(case.spec.get("remove") or [])
        if not p.startswith(("/proc/", "/sys/"))
    ]
    st["setup"] = (st.get("setup") or "") + "\n" + (case.spec.get("setup") or "")
    for key in ("selinux_enforce", "chronyd", "docker", "overlays", "tmpfs"):
        if key in case.spec:
            st[key] = case.spec[key]
    return st


def make_host(factory, case: Case):
    st = host_state(case)
    files = {}
    for path, v in st["files"].items():
        if isinstance(v, dict) and "from" in v:  # {from: registry/upstream.yml}: a file under fixtures/
            v = {**{k: x for k, x in v.items() if k != "from"}, "content": (FIXTURES / v["from"]).read_text()}
        files[path] = v
    # helper scripts the cases' setup may run inside the host
    for script in sorted((FIXTURES / "registry").glob("*.sh")):
        files[f"/run/fixtures/registry/{script.name}"] = script.read_text()
    for script in sorted((FIXTURES / "dns").glob("*.py")):  # a small DNS server for "DNS instead of /etc/hosts"
        files[f"/run/fixtures/dns/{script.name}"] = script.read_text()
    overlays = list(st.get("overlays") or ["/etc"])
    if any(p.startswith("/usr/local/bin/") for p in files) and "/usr/local/bin" not in overlays:
        overlays.append("/usr/local/bin")
    # /proc/swaps etc. exist on the machine; a case may remove /etc files (whiteouts)
    host = factory(
        case.rule[:12].replace("-", "") or "h",
        files=files,
        symlinks=st.get("symlinks") or {},
        remove=st["remove"],
        overlays=overlays,
        selinux_enforce=st.get("selinux_enforce"),
        hostname=case.spec.get("hostname", "node-10-0-0-5"),
        tmpfs=st.get("tmpfs") or (),
    )
    for d, size in (st.get("tmpfs_sizes") or {}).items():
        host.run(f"mount -o remount,size={size} {d}")
    if case.spec.get("real_swap"):
        _real_swap(host)
    if st["setup"].strip():
        host.run("set -e\n" + st["setup"])
    chrony = st.get("chronyd", "none")
    if chrony in ("synced", "unsynced"):
        host.start_chronyd(synced=(chrony == "synced"))
    if st.get("docker"):
        host.start_dockerd()
    if case.spec.get("after_docker"):
        host.run("set -e\n" + case.spec["after_docker"])
    return host


# Swap is not namespaced: a real swap file turned on by one test is seen by every reader of the machine's
# /proc/swaps, in this run and in any other test run at the same time (several worktrees share the machine). A test
# that turns one on holds this machine-wide lock exclusively until it is off again (`_real_swap`); a test whose
# outcome depends on this machine's own swap state holds it shared (`machine_swap_unchanged`). The real-kernel case
# (fixtures/host/swap/real-swap.fail.yaml) is then serial with those readers and with itself across runs: before, a
# second run's `swapoff` of the fixed path could turn off the first run's swap under its test.
SWAP_LOCK = "/run/lock/bkdoctor-test-swap.lock"


def _swap_lock(mode: int) -> Any:
    import fcntl

    os.makedirs(os.path.dirname(SWAP_LOCK), exist_ok=True)
    lk = open(SWAP_LOCK, "a")
    fcntl.flock(lk, mode)  # blocking: a holder releases it when its host stops (bounded by the test timeout)
    return lk


@contextlib.contextmanager
def machine_swap_unchanged():
    """While held, no test of any run has a real swap file on (see SWAP_LOCK)."""
    import fcntl

    with _swap_lock(fcntl.LOCK_SH):
        yield


def _real_swap(host) -> None:
    """Swap on a real 16 MiB file (swap is global: refuse when the machine has swap of its own, and always swap
    it off and remove it when the host stops), under SWAP_LOCK held exclusively until then."""
    import fcntl
    import subprocess

    import pytest

    lock = _swap_lock(fcntl.LOCK_EX)
    path = "/var/tmp/bkdoctor-test-swap"  # fixed, so golden diffs are stable; a leftover is cleared first

    def off() -> None:
        try:
            subprocess.run(["swapoff", path], capture_output=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        finally:
            lock.close()  # releases the flock

    try:
        with open("/proc/swaps") as f:
            if len(f.read().splitlines()) > 1:
                pytest.skip("the machine has swap of its own: a swap test would turn it off")
        subprocess.run(["swapoff", path], capture_output=True)
        if os.path.exists(path):
            os.unlink(path)
        subprocess.run(["fallocate", "-l", "16M", path], check=True)
        os.chmod(path, 0o600)
        subprocess.run(["mkswap", path], check=True, capture_output=True)
    except BaseException:  # pytest.skip too: nothing is on, the lock is let go
        lock.close()
        raise
    orig_stop = host.stop

    def stop():
        try:
            orig_stop()
        finally:
            off()

    host.stop = stop
    subprocess.run(["swapon", path], check=True)
    host.run(f"echo '{path} swap swap defaults 0 0' >> /etc/fstab")


def scan_host(host, case: Case, rules: list[str] | None = None):
    """Scan the namespaced host through the real engine and probe; returns (report dict, scan result)."""
    from bkdoctor.inputs import thresholds as th
    from bkdoctor.inputs.inventory import HostSpec, local_inventory
    from bkdoctor.report.jsonreport import build_report
    from bkdoctor.scan import engine, loader
    from bkdoctor.transport import LocalTransport

    inv = local_inventory(domain=case.spec.get("domain", "bkce7.bktencent.com"), install_dir="/nonexistent")
    inv.hosts = [
        HostSpec(
            name="node-10-0-0-5",
            address="10.0.0.5",
            roles=tuple(case.spec.get("roles", ["node"])),
            docker_socket="/run/docker.sock",
            local=True,
        )
    ]
    for extra in case.spec.get("extra_hosts") or []:  # e.g. a registry-proxy host the rule must know about
        inv.hosts.append(
            HostSpec(
                name=extra["name"],
                address=extra["address"],
                roles=tuple(extra["roles"]),
                docker_socket="/run/docker.sock",
                local=True,
            )
        )
    inv.thresholds = th.merge(case.spec.get("thresholds"))
    for k, v in (case.spec.get("inventory") or {}).items():
        setattr(inv, k, v)

    # `personality: linux32`: the probe runs under setarch (a 32-bit personality: uname -m says i686)
    personality = ["setarch", case.spec["personality"]] if case.spec.get("personality") else []
    site_dir = _site_dir(case)
    if site_dir:
        inv.install_dir = site_dir

    def factory(h, inv_):
        return LocalTransport(prefix=host.nsenter_argv() + personality, root=host.root, address=h.address)

    # measurement rules run only when a case names them (never a download from the real internet here)
    selected = loader.select(rules or [case.rule], None)
    try:
        result = asyncio.run(engine.scan(inv, selected, factory=factory))
    finally:
        if site_dir:
            import shutil

            shutil.rmtree(site_dir, ignore_errors=True)
    return build_report(result, "en"), result


def _site_dir(case: Case) -> str | None:
    """`site_files: {relative path: content}`: an install dir on the control machine (custom.yaml, VERSION...)."""
    files = case.spec.get("site_files")
    if not files:
        return None
    import tempfile

    d = tempfile.mkdtemp(prefix="bkd-site-")
    for rel, content in files.items():
        p = Path(d) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return d


def golden_view(finding: dict[str, Any], ignore: list[str]) -> dict[str, Any]:
    g = {
        "status": finding["status"],
        "message_en": finding["i18n"]["en"]["message"],
        "message_zh": finding["i18n"]["zh"]["message"],
        "observed": finding["observed"],
        "expected": finding["expected"],
    }
    for path in ignore:
        if "." not in path:
            g.pop(path, None)
            continue
        parts = path.split(".")
        cur = g
        for p in parts[:-1]:
            cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is None:
                break
        if isinstance(cur, dict):
            cur.pop(parts[-1], None)
    return json.loads(json.dumps(g, default=str))


def make_ssh_host(ssh_fleet, spec: dict[str, Any]):
    """A fleet host (real sshd on the test bridge) in the state `spec` describes (same keys as a fixture case)."""
    case = Case(
        rule="fleet",
        name=spec.get("hostname", "h"),
        status="pass",
        path=FIXTURES / "hosts" / "centos79.yaml",
        spec=spec,
    )
    st = host_state(case)
    files = dict(st["files"])
    overlays = list(st.get("overlays") or ["/etc"])
    if any(p.startswith("/usr/local/bin/") for p in files) and "/usr/local/bin" not in overlays:
        overlays.append("/usr/local/bin")
    fleet = ssh_fleet(
        1,
        files=files,
        symlinks=st.get("symlinks") or {},
        remove=st["remove"],
        overlays=overlays,
        selinux_enforce=st.get("selinux_enforce"),
        hostname=spec.get("hostname"),
        tmpfs=st.get("tmpfs") or (),
    )
    host = fleet.hosts[-1]
    for d, size in (st.get("tmpfs_sizes") or {}).items():
        host.run(f"mount -o remount,size={size} {d}")
    if st["setup"].strip():
        host.run("set -e\n" + st["setup"])
    if st.get("chronyd", "none") in ("synced", "unsynced"):
        host.start_chronyd(synced=st["chronyd"] == "synced")
    if st.get("docker"):
        host.start_dockerd()
    return fleet, host


def reboot_selinux(host) -> None:
    """What a reboot changes that the selinux rule reads: SELinux comes up as /etc/selinux/config says; with
    SELINUX=disabled the kernel mounts no selinuxfs (getenforce: Disabled). Done in the host's own mount namespace
    (its fake selinuxfs, a tmpfs the testbed mounted there): never this machine's."""
    if b"SELINUX=disabled" in host.read("/etc/selinux/config"):
        host.run("umount /sys/fs/selinux && rmdir /sys/fs/selinux")
