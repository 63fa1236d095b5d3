"""pytest fixtures for the namespace test hosts.

Import into tests/conftest.py::

    from testbed.fixtures import nshost_factory, ssh_fleet  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .hostns import NsHost, NsHostError
from .network import TestNet


def nshost_unavailable() -> str | None:
    """Why NsHost cannot work here (None if it can)."""
    if os.geteuid() != 0:
        return "NsHost needs root"
    for tool in ("unshare", "nsenter", "mount", "ip"):
        if not shutil.which(tool):
            return f"NsHost needs {tool}"
    return None


class NsHostFactory:
    """Builds and starts NsHost objects; close() stops all of them."""

    def __init__(self, workdir: str | None = None):
        self.workdir = workdir
        self.hosts: list[NsHost] = []

    def __call__(self, name: str = "node1", **kwargs) -> NsHost:
        if self.workdir and "workdir" not in kwargs:
            kwargs["workdir"] = self.workdir
        host = NsHost(name, **kwargs)
        self.hosts.append(host)  # before start(): a failed start is cleaned too
        return host.start()

    def close(self) -> None:
        errors = []
        for host in reversed(self.hosts):
            try:
                host.stop()
            except Exception as e:  # keep stopping the others
                errors.append(e)
        self.hosts.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def nshost_factory():
    """Function-scoped: ``host = nshost_factory("node1", files={...})``
    returns a started NsHost; every host made is stopped at teardown, even
    when the test fails."""
    why = nshost_unavailable()
    if why:
        pytest.skip(why)
    factory = NsHostFactory()
    try:
        yield factory
    finally:
        factory.close()


# --------------------------------------------------------------------------
# networked hosts with sshd


def ssh_unavailable() -> str | None:
    """Why ssh_fleet cannot work here (None if it can)."""
    why = nshost_unavailable()
    if why:
        return why
    if not os.path.exists(NsHost.SSHD):
        return "ssh_fleet needs /usr/sbin/sshd (apt-get install openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh_fleet needs ssh-keygen (apt-get install openssh-client)"
    return None


def keygen(path: str, comment: str = "bkdoctor-test") -> str:
    """Generate an ed25519 key pair at ``path`` (+ .pub); return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        check=True,
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    with open(path + ".pub") as f:
        return f.read().strip()


class Fleet:
    """Started NsHosts running sshd on one TestNet, with a client key that all
    of them authorize and a known_hosts file that knows all of them."""

    def __init__(self, net: TestNet, workdir: str, client_key: str, client_pub: str, known_hosts: str) -> None:
        self.net = net
        self.workdir = workdir
        self.client_key = client_key
        self.client_pub = client_pub
        self.known_hosts = known_hosts
        self.hosts: list[NsHost] = []
        self.timings: dict[str, float] = {}

    def __getitem__(self, i: int) -> NsHost:
        return self.hosts[i]

    def __len__(self) -> int:
        return len(self.hosts)

    def write_known_hosts(self) -> None:
        with open(self.known_hosts, "w") as f:
            f.write("".join(h.known_hosts_line() + "\n" for h in self.hosts if h.host_key_pub))
        os.chmod(self.known_hosts, 0o600)

    def ssh_settings(self, **overrides: Any) -> dict[str, Any]:
        """The inventory ``ssh:`` mapping for this fleet (plus overrides)."""
        d: dict[str, Any] = {
            "user": "root",
            "identity_file": self.client_key,
            "known_hosts": self.known_hosts,
            "connect_timeout": 5,
        }
        d.update(overrides)
        return d

    def inventory_yaml(
        self, path: str | os.PathLike, roles: Any = None, hosts: list[NsHost] | None = None, **ssh_overrides: Any
    ) -> str:
        """Write a bkdoctor inventory for the fleet; return its path. ``roles``:
        None (every host ``node``), a list of role names for every host, a
        dict host name -> roles, or a callable(index, host) -> roles."""
        import yaml

        entries = []
        for i, h in enumerate(hosts if hosts is not None else self.hosts):
            if roles is None:
                r = ["node"]
            elif callable(roles):
                r = roles(i, h)
            elif isinstance(roles, dict):
                r = roles.get(h.name, ["node"])
            else:
                r = roles
            entries.append({"name": h.name, "address": h.address, "roles": list(r)})
        data = {"hosts": entries, "ssh": self.ssh_settings(**ssh_overrides)}
        with open(path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        return str(path)


class SSHFleetFactory:
    """``factory(n, **nshost_kwargs) -> Fleet``. Every call adds n hosts to the
    same fleet (one TestNet, one client key, one known_hosts). close() stops
    every host, deletes the bridge and the temp dir."""

    def __init__(self, workdir: str | None = None, prefix: str = "node") -> None:
        self.prefix = prefix
        self._tmp = tempfile.mkdtemp(prefix="sshfleet-", dir=workdir)
        self.nshosts = NsHostFactory(workdir=workdir)
        self.net: TestNet | None = None
        self.fleet: Fleet | None = None

    def __call__(
        self,
        n: int,
        *,
        sshd: dict[str, Any] | None = None,
        shared_host_key: bool = False,
        parallel: int = 1,
        **nshost_kwargs: Any,
    ) -> Fleet:
        """Start ``n`` hosts named <prefix><k>, each running sshd (``sshd``:
        start_sshd() kwargs) with the fleet's client key authorized, and
        rewrite the fleet's known_hosts. ``shared_host_key``: one host key for
        all (skips a keygen per host); ``parallel``: hosts started by that
        many threads (no PDEATHSIG safety net for those: teardown still kills
        them)."""
        t0 = time.monotonic()
        if self.net is None:
            self.net = TestNet()
        if self.fleet is None:
            ck = os.path.join(self._tmp, "id_ed25519")
            pub = keygen(ck, "bkdoctor-test-client")
            self.fleet = Fleet(self.net, self._tmp, ck, pub, os.path.join(self._tmp, "known_hosts"))
        fleet = self.fleet
        sshd = dict(sshd or {})
        if shared_host_key and "host_key" not in sshd:
            hk = os.path.join(self._tmp, "shared_host_key")
            if not os.path.exists(hk):
                keygen(hk, "bkdoctor-test-host")
            sshd["host_key"] = hk
        first = len(fleet.hosts) + 1
        names = [f"{self.prefix}{first + i}" for i in range(n)]

        def one(name: str) -> NsHost:
            for attempt in (1, 2):
                try:
                    h = self.nshosts(name, net=self.net, **nshost_kwargs)
                    break
                except NsHostError as e:
                    # util-linux 2.38 unshare, rarely and only under heavy load, loses its setup child
                    # ("sigprocmask unblock failed"): the failed host is already cleaned, start afresh
                    if attempt == 2 or "sigprocmask unblock failed" not in str(e):
                        raise
            h.start_sshd(authorized_keys=[fleet.client_pub], **sshd)
            return h

        if parallel > 1 and n > 1:
            with ThreadPoolExecutor(max_workers=parallel) as ex:
                new = list(ex.map(one, names))
        else:
            new = [one(name) for name in names]
        fleet.hosts += new
        fleet.write_known_hosts()
        fleet.timings[f"start {n}"] = time.monotonic() - t0
        return fleet

    def close(self) -> None:
        errors: list[BaseException] = []
        try:
            self.nshosts.close()
        except Exception as e:
            errors.append(e)
        if self.net is not None:
            try:
                self.net.close()
            except Exception as e:
                errors.append(e)
        shutil.rmtree(self._tmp, ignore_errors=True)
        if errors:
            raise errors[0]


@pytest.fixture
def ssh_fleet():
    """Function-scoped factory: ``fleet = ssh_fleet(3)`` -> a Fleet of 3
    started NsHosts with sshd (``fleet.hosts``, ``.client_key``,
    ``.known_hosts``, ``.inventory_yaml(path, roles=...)``). Hosts, bridge
    and keys are removed at teardown, even when the test fails."""
    why = ssh_unavailable()
    if why:
        pytest.skip(why)
    factory = SSHFleetFactory()
    try:
        yield factory
    finally:
        factory.close()
