"""This machine (or a namespaced test host behind an nsenter prefix) as a transport: `sh -s` and the local socket."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bkdoctor.transport import base
from bkdoctor.transport.base import MAX_SCRIPT_OUTPUT, CommandResult, Transport, TransportError, read_bounded


def engine_get(sock_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
    """GET Engine API paths through the `docker` SDK's low-level client on a unix socket. Read-only."""
    if not os.path.exists(sock_path):
        raise TransportError(f"docker socket {sock_path} does not exist")
    import docker  # lazy: only scans that need Docker facts pay for the import
    from docker.errors import DockerException

    out: dict[str, Any] = {}
    try:
        client = docker.APIClient(base_url=f"unix://{sock_path}", timeout=timeout, version="auto")
    except (DockerException, OSError) as e:
        raise TransportError(f"docker API on {sock_path}: {e}") from e
    try:
        for p in paths:
            try:
                resp = client.get(client.base_url + p)  # unversioned path: works on any daemon version
                resp.raise_for_status()
                out[p] = resp.json()
            except Exception as e:  # DockerException, OSError, requests' HTTPError/ConnectionError, bad JSON
                raise TransportError(f"docker API {sock_path} GET {p}: {e}") from e
    finally:
        client.close()
    return out


class LocalTransport(Transport):
    """This machine. `prefix` (e.g. nsenter argv) runs the probe elsewhere; `root` prefixes socket paths."""

    def __init__(self, prefix: list[str] | None = None, root: str = "", address: str | None = "localhost") -> None:
        self.prefix = list(prefix or [])
        self.root = root.rstrip("/")
        self.address = address

    async def run_script(self, script: str, timeout: float, keep_tail: bool = False) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.prefix,
                "/bin/sh",
                "-s",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise TransportError(f"cannot start /bin/sh: {e}") from e

        async def feed() -> None:
            assert proc.stdin is not None
            try:
                proc.stdin.write((base.READ_AHEAD + script).encode())  # bash: the rest in blocks
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the script ended without reading all of itself

        async def talk() -> tuple[bytes, bytes]:
            parts = [
                asyncio.ensure_future(feed()),
                asyncio.ensure_future(read_bounded(proc.stdout, MAX_SCRIPT_OUTPUT, "the script's output", keep_tail)),
                asyncio.ensure_future(
                    read_bounded(proc.stderr, MAX_SCRIPT_OUTPUT, "the script's error output", keep_tail)
                ),
            ]
            try:
                _, out, err = await asyncio.gather(*parts)
            except BaseException:  # too much output, or the timeout: nobody reads on
                for t in parts:
                    t.cancel()
                await asyncio.gather(*parts, return_exceptions=True)
                raise
            await proc.wait()
            return out, err

        try:
            out, err = await asyncio.wait_for(talk(), timeout)
        except asyncio.TimeoutError:
            await _stop(proc)
            raise TransportError(f"probe timed out after {timeout:.0f}s") from None
        except TransportError:  # more output than any probe prints: stopped, the memory kept bounded
            await _stop(proc)
            raise
        return CommandResult(proc.returncode or 0, out, err)

    async def run_streaming(self, script: str, timeout: float, on_out: Any) -> int:
        return await run_streaming_local(self.prefix, script, timeout, on_out)

    async def docker_api(self, socket_path: str, paths: list[str], timeout: float) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(engine_get, self.root + socket_path, paths, timeout)
        except TransportError as e:
            # name the socket as the host sees it, not through our /proc/<pid>/root view
            raise TransportError(str(e).replace(self.root + socket_path, socket_path)) from None


async def _kill_group(proc: Any) -> None:
    """Kill the script's process group (it was started in a session of its own, so its children too), and reap it."""
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    await proc.wait()


async def _stop(proc: Any) -> None:
    """Kill the script's process group; what is left in its pipes (the writers are gone) is read and dropped, else
    the pipes never close and the process is never reaped."""
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass

    async def drain(stream: Any) -> None:
        while await stream.read(1 << 16):
            pass

    try:
        await asyncio.wait_for(asyncio.gather(drain(proc.stdout), drain(proc.stderr), proc.wait()), 10)
    except asyncio.TimeoutError:
        pass  # a child that left the group holds a pipe open: not ours to wait for


async def _stream(proc: Any, on_out: Any) -> None:
    assert proc.stdout is not None
    while True:
        chunk = await proc.stdout.read(4096)
        if not chunk:
            return
        on_out(chunk)


async def run_streaming_local(prefix: list[str], script: str, timeout: float, on_out: Any) -> int:
    """Run a script with its output (stdout and stderr together) handed over as it comes."""
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        "/bin/sh",
        "-s",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write((base.READ_AHEAD + script).encode())  # bash: a step's command never reads the next step's line
    await proc.stdin.drain()
    proc.stdin.close()
    try:
        await asyncio.wait_for(asyncio.gather(_stream(proc, on_out), proc.wait()), timeout)
    except asyncio.TimeoutError:
        await _kill_group(proc)
        on_out(f"\n[bkdoctor] timed out after {timeout:.0f}s\n".encode())
        return 124
    return proc.returncode or 0
