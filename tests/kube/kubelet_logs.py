"""A stand-in kubelet that serves container logs over HTTPS on loopback.

``kubectl logs`` / ``read_namespaced_pod_log`` go client -> kube-apiserver -> kubelet: the API server looks up
the pod's ``spec.nodeName``, the Node's address (``--kubelet-preferred-address-types``; the harness puts
InternalIP first) and ``status.daemonEndpoints.kubeletEndpoint.Port``, then dials
``https://ADDRESS:PORT/containerLogs/NS/POD/CONTAINER?tailLines=..``, checking the kubelet's serving
certificate against ``--kubelet-certificate-authority`` and presenting ``--kubelet-client-certificate``.
This server answers exactly that, with log text set by the test, so log-reading code runs through the real
API server path.

    kubelet = KubeletLogServer(ca_file, cert_file, key_file).start()
    kubelet.set_log("ns", "pod", "container", "line 1\\nline 2\\n")
    core.create_node(kubelet.node_body("node-1"))      # or core.patch_node_status(name, kubelet.node_status())

Query parameters honoured: ``tailLines``, ``limitBytes``, ``previous`` (a separate text set with
``previous=True``). ``follow`` returns the text and closes; ``timestamps``/``sinceSeconds`` are ignored.
Unknown pod/container: 404 with a kubelet-like message (the API server turns it into an error).
"""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, owner: "KubeletLogServer", ctx: ssl.SSLContext):
        self.owner = owner
        self.ctx = ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, not in the accept loop.
        request.settimeout(10)
        # without it every log answer over ~8 KB waits for a delayed ACK (45 ms instead of 2.5 ms)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.owner._record_error(f"TLS handshake from {client_address}: {e}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # no tracebacks on stderr
        import sys

        self.owner._record_error(f"{client_address}: {sys.exc_info()[1]!r}")


class _Handler(BaseHTTPRequestHandler):
    server_version = "bkdoctor-stand-in-kubelet"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        owner: KubeletLogServer = self.server.owner
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        peer = self.connection.getpeercert() or {}
        subject = dict(x[0] for x in peer.get("subject", ()))
        owner._record_request(self.path, subject.get("commonName"))
        parts = [unquote(p) for p in url.path.split("/") if p]
        if url.path == "/healthz":
            return self._send(200, b"ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._send(404, b"404 page not found\n")
        _, ns, pod, container = parts
        previous = query.get("previous", "false").lower() in ("true", "1")
        text = owner.get_log(ns, pod, container, previous=previous)
        if text is None:
            what = "previous terminated container" if previous else "container"
            msg = f'{what} "{container}" in pod "{pod}" is not available (namespace "{ns}")\n'
            return self._send(404, msg.encode())
        body = text.encode()
        if "tailLines" in query:
            try:
                n = int(query["tailLines"])
            except ValueError:
                return self._send(400, b"invalid tailLines\n")
            lines = body.splitlines(keepends=True)
            body = b"".join(lines[-n:]) if n > 0 else b""
        if "limitBytes" in query:
            try:
                body = body[: max(0, int(query["limitBytes"]))]
            except ValueError:
                return self._send(400, b"invalid limitBytes\n")
        return self._send(200, body)

    do_HEAD = do_GET


class KubeletLogServer:
    """HTTPS /containerLogs server on 127.0.0.1 (a free port unless ``port`` is given).

    ``cert_file``/``key_file``: serving certificate valid for 127.0.0.1, signed by ``ca_file``.
    ``client_ca_file``: when set, client certificates are required and checked against it (the API server
    presents ``--kubelet-client-certificate``); ``requests`` records ``(path, client_cn)`` per request.
    """

    def __init__(
        self,
        ca_file: str,
        cert_file: str,
        key_file: str,
        *,
        client_ca_file: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self.host = host
        self._port = port
        self._logs: dict[tuple[str, str, str, bool], str] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str | None]] = []
        self.errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- log texts -------------------------------------------------------------------------------------
    def set_log(self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False) -> None:
        with self._lock:
            self._logs[(namespace, pod, container, previous)] = text

    def get_log(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        with self._lock:
            return self._logs.get((namespace, pod, container, previous))

    def clear(self, namespace: str | None = None) -> None:
        """Forget the logs of one namespace (all when None)."""
        with self._lock:
            for k in [k for k in self._logs if namespace is None or k[0] == namespace]:
                del self._logs[k]

    def _record_request(self, path: str, cn: str | None) -> None:
        with self._lock:
            self.requests.append((path, cn))

    def _record_error(self, msg: str) -> None:
        with self._lock:
            self.errors.append(msg)

    # ---- node objects ----------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self._server:
            raise RuntimeError("KubeletLogServer not started")
        return self._server.server_address[1]

    def node_status(
        self,
        *,
        kubelet_version: str = "v1.20.11",
        container_runtime_version: str = "docker://19.3.9",
        ready: bool = True,
    ) -> dict:
        """A Node ``status`` that points the API server at this server (InternalIP + kubelet port)."""
        return {
            "addresses": [{"type": "InternalIP", "address": self.host}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "containerRuntimeVersion": container_runtime_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "CentOS Linux 7 (Core)",
                "kernelVersion": "3.10.0-1160.el7.x86_64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status" if ready else "stand-in kubelet says not ready",
                }
            ],
        }

    def node_body(self, name: str, labels: dict | None = None, **status_kw) -> dict:
        """A whole Node (for ``create_node``; Node create keeps ``status``)."""
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "status": self.node_status(**status_kw),
        }

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "KubeletLogServer":
        if self._server:
            return self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.client_ca_file)
        self._server = _Server((self.host, self._port), _Handler, self, ctx)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"stand-in-kubelet:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv:
            srv.shutdown()
            srv.server_close()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "KubeletLogServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
