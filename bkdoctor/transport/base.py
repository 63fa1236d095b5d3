"""The transport contract: run a read-only script (or an apply script) on a target, reach its Docker API."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any


class TransportError(Exception):
    """The target could not be reached or the command could not be started (not a non-zero exit)."""


class NotForwarded(TransportError):
    """The host's sshd did not open a TCP connection for us, or said why in a way that can mean more than one thing
    (AllowTcpForwarding no, DisableForwarding, PermitOpen; OpenSSH 7.4, CentOS 7.9's, answers "administratively
    prohibited" to a connect() that failed at once as well): the caller asks the host's own tool instead."""


# bytes of a script's stdout (and, apart, of its stderr) kept: the probe of a big node prints a few MB (iptables -S of
# thousands of Services, docker info). A host's file can be any size (a sparse 100 GB file in /etc/sysctl.d/ costs its
# owner nothing): read whole, one host's output took the memory of the whole fleet's scan.
MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024

# The line before every script a transport feeds to `/bin/sh -s`: bash (CentOS 7's /bin/sh) reads a script from a pipe
# one byte per read(2), so that a command never takes the script's own bytes as its input: ~20,000 system calls for
# a ~20 KB probe (tests/test_probe.py counts the reads with strace). `. /dev/stdin` reads the rest of the pipe in blocks, to its end (the transports
# close it after the script), and runs it in the same shell, as the shell itself would have: no process more, and a
# command that reads its standard input sees the end, never the script's next line (an install step's `ssh` ate the
# line after it). Only in bash: `B` (brace expansion) in `$-`, which no environment variable gives another shell, and
# BASH_VERSION (ksh93 has the B); dash has read ahead already (its `. /dev/stdin` would start in the middle of the
# script). Only on a pipe (`-p`: not a socket nor a terminal) that this shell can open again by that name, tried first
# by a redirection of an empty group (`{ :; } </dev/stdin`: a redirection that fails there is an error, not the end of
# a POSIX shell, as a `.` that cannot open its file is; `test -r` asks nothing for root, who may still be refused, in
# a user namespace, after a privilege drop): else the shell reads the script on as before, byte by byte. A plain `.`,
# not `command .`, which in bash keeps every later error in the sourced script from ending it (a nested `.` of a
# missing file ran on). In bash 4.2 a `$(cmd)` inside the sourced script forks twice (the parse is nested, as in
# `sh -c`): the probe's captures run as `$(exec cmd)` (probe.runs_inline); an apply or install script pays a process
# there. Also different inside `.`, and nothing bkdoctor sends does it: a `return` outside a function ends the script;
# two NUL bytes in a row end the parse (no script carries a NUL: probe.build_script refuses one in a parameter).
READ_AHEAD = (
    'case $- in *B*) [ -n "${BASH_VERSION-}" ] && [ -p /dev/stdin ] && { :; } 2>/dev/null </dev/stdin && '
    ". /dev/stdin;; esac\n"
)


async def read_bounded(stream: Any, limit: int, what: str, keep_tail: bool = False) -> bytes:
    """All of `stream` (an asyncio or asyncssh reader), or TransportError once it passes `limit` bytes (the caller
    stops the command). With `keep_tail` (a command that changes a host: an install step must not be killed half
    way for talking much) the stream is read to its end and only its last `limit` bytes are kept, after a line
    that says how many were left out."""
    buf = bytearray()
    dropped = 0
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            if dropped:
                return f"[bkdoctor: {dropped:,} bytes of output left out]\n".encode() + bytes(buf)
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            if not keep_tail:
                raise TransportError(f"{what} is larger than {limit >> 20} MiB: stopped")
            cut = len(buf) - limit
            dropped += cut
            del buf[:cut]


@dataclass
class CommandResult:
    rc: int
    stdout: bytes
    stderr: bytes
    clock: dict[str, Any] | None = None  # run_script(clock=True) on a transport that folds_clock


@dataclass(frozen=True)
class HTTPStatus:
    """The outcome of a GET whose connection was made, in the terms of the guide's own check (`curl -s -o /dev/null
    --max-time T -w '%{http_code} %{remote_ip}'`): the status of the final response (0: none), the address connected
    to, and the exit status curl gives for the same outcome (0; 28 no status within the time; 52 the reply ended
    before a whole status line, or was empty; 56 the connection broke; 1 a reply that is not HTTP/1.x, which curl
    7.66 and later refuse as HTTP/0.9)."""

    code: int
    remote_ip: str
    curl_exit: int


class Transport(abc.ABC):
    """How bkdoctor talks to one host."""

    address: str | None = None
    folds_clock = False  # True: run_script(..., clock=True) also samples the host clock, in the same session

    @abc.abstractmethod
    async def run_script(self, script: str, timeout: float, keep_tail: bool = False) -> CommandResult:
        """Run a POSIX sh script (fed on stdin) and return its output: stdout and stderr each up to
        MAX_SCRIPT_OUTPUT, past it the command is stopped (TransportError), or with `keep_tail` run to its end
        with only the last MAX_SCRIPT_OUTPUT bytes of each kept."""

    # True: http_status() asks the host's sshd to connect (SSH direct-tcpip), so that no command runs on the host
    forwards_tcp = False

    async def server_address(self) -> str:
        """The address the host's sshd is reached at, as its SSH_CONNECTION shows it ('': not known)."""
        return ""

    async def http_status(self, address: str, port: int, host: str, path: str, timeout: float) -> HTTPStatus | None:
        """GET http://`host``path` at `address`:`port`, connected from the host (its sshd); None: no connection."""
        raise NotForwarded("this transport does not forward TCP")

    @abc.abstractmethod
    async def docker_api(self, socket_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
        """GET each Engine API path on the host's docker socket; {path: decoded JSON}. Raises TransportError."""

    async def close(self) -> None:  # pragma: no cover - trivial
        return None
