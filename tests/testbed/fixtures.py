"""pytest fixtures for the namespace test hosts.

Import into tests/conftest.py::

    from testbed.fixtures import nshost_factory  # noqa: F401
"""

from __future__ import annotations

import os
import shutil

import pytest

from .hostns import NsHost


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
