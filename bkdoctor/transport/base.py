"""The transport contract: run a read-only script (or an apply script) on a target, reach its Docker API."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any


class TransportError(Exception):
    """The target could not be reached or the command could not be started (not a non-zero exit)."""


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
