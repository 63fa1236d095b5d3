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


class Transport(abc.ABC):
    """How bkdoctor talks to one host."""

    address: str | None = None

    @abc.abstractmethod
    async def run_script(self, script: str, timeout: float) -> CommandResult:
        """Run a POSIX sh script (fed on stdin) and return its output."""

    @abc.abstractmethod
    async def docker_api(self, socket_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
        """GET each Engine API path on the host's docker socket; {path: decoded JSON}. Raises TransportError."""

    async def close(self) -> None:  # pragma: no cover - trivial
        return None
