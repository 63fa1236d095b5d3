"""Make the test API server (127.0.0.1:PORT in the machine's network namespace) reachable at the same
127.0.0.1:PORT inside a test host's network namespace, through a unix socket both sides can see. TLS passes
through untouched, so the serving certificate for 127.0.0.1 stays valid and the same kubeconfig works inside.
Used where a command that talks to the cluster runs on a test host (the bcs.sh stand-in on the first master)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

INSIDE = r"""
import asyncio, sys
port, path = int(sys.argv[1]), sys.argv[2]
async def pipe(r, w):
    try:
        while True:
            b = await r.read(65536)
            if not b:
                break
            w.write(b)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(r, w):
    try:
        ur, uw = await asyncio.open_unix_connection(path)
    except OSError:
        w.close()
        return
    await asyncio.gather(pipe(r, uw), pipe(ur, w))
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""


class ApiRelay:
    def __init__(self, api_port: int, host) -> None:
        self.port, self.host = api_port, host
        self.path = os.path.join(host.tmpdir, f"api-{api_port}.sock")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    async def _handle(self, r, w):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            w.close()
            return

        async def pipe(a, b):
            try:
                while True:
                    data = await a.read(65536)
                    if not data:
                        break
                    b.write(data)
                    await b.drain()
            except Exception:
                pass
            finally:
                b.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    def start(self) -> "ApiRelay":
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_unix_server(self._handle, self.path), self.loop)
        self.server = fut.result(10)
        self.host.spawn([sys.executable, "-c", INSIDE, str(self.port), self.path], name=f"api-relay-{self.port}")
        self.host.run(
            f"for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {self.port}), 1)' "
            f"2>/dev/null && exit 0; sleep 0.05; done; exit 1"
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
