"""The transport contract: run a read-only script (or an apply script) on a target, reach its Docker API."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any


class TransportError(Exception):
    """The target could not be reached or the command could not be started (not a non-zero exit)."""


# bytes of a script's stdout (and, apart, of its stderr) kept: the probe of a big node prints a few MB (iptables -S of
# thousands of Services, docker info). A host's file can be any size (a sparse 100 GB file in /etc/sysctl.d/ costs its
# owner nothing): read whole, one host's output took the memory of the whole fleet's scan.
MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024


async def read_bounded(stream: Any, limit: int, what: str) -> bytes:
    """All of `stream` (an asyncio or asyncssh reader), or TransportError once it passes `limit` bytes (the caller
    stops the command)."""
    buf = bytearray()
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise TransportError(f"{what} is larger than {limit >> 20} MiB: stopped")


@dataclass
class CommandResult:
    rc: int
    stdout: bytes
    stderr: bytes
    clock: dict[str, Any] | None = None  # run_script(clock=True) on a transport that folds_clock


class Transport(abc.ABC):
    """How bkdoctor talks to one host."""

    address: str | None = None
    folds_clock = False  # True: run_script(..., clock=True) also samples the host clock, in the same session

    @abc.abstractmethod
    async def run_script(self, script: str, timeout: float) -> CommandResult:
        """Run a POSIX sh script (fed on stdin) and return its output."""

    @abc.abstractmethod
    async def docker_api(self, socket_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
        """GET each Engine API path on the host's docker socket; {path: decoded JSON}. Raises TransportError."""

    async def close(self) -> None:  # pragma: no cover - trivial
        return None
