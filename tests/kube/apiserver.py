"""A real kube-apiserver v1.20.2 with its own etcd on loopback, for tests.

Build the binary first (CI does): ``bash tests/kube/build-apiserver.sh`` caches it at
``/var/cache/bkdoctor/kube-apiserver-v1.20.2`` (override with ``BKDOCTOR_KUBE_APISERVER``; etcd with
``BKDOCTOR_ETCD``).

    with KubeAPIServer() as kube:
        kube.kubeconfig          # admin (client cert, O=system:masters), context "bkdoctor-test"
        kube.viewer_kubeconfig   # bearer token of user "bkdoctor-viewer" (no RBAC grants), same context name
        kube.url, kube.ca_file

There is no controller-manager, scheduler or kubelet: create objects with the state you need and set their
``status`` through the status subresource. ``kubelet_log_server()`` starts a stand-in kubelet that the API
server trusts, for ``pods/log`` (see kubelet_logs.py).

``KubeAPIServer.available()`` returns None when the binaries are there, else the reason (tests skip on it).
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

from .kubelet_logs import KubeletLogServer, free_port
from .pki import CertPair, TestCA, make_keypair

K8S_VERSION = "v1.20.2"
DEFAULT_BINARY = f"/var/cache/bkdoctor/kube-apiserver-{K8S_VERSION}"
CONTEXT = "bkdoctor-test"
VIEWER_USER = "bkdoctor-viewer"
SERVICE_CIDR = "10.96.0.0/12"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
READY_TIMEOUT = 60.0


class KubeAPIServerError(RuntimeError):
    pass


def apiserver_binary() -> str:
    return os.environ.get("BKDOCTOR_KUBE_APISERVER") or DEFAULT_BINARY


def etcd_binary() -> str | None:
    return (
        os.environ.get("BKDOCTOR_ETCD")
        or shutil.which("etcd")
        or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)
    )


try:  # resolved here, not in the forked child (no dlopen between fork and exec)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG: die with the test process, even on SIGKILL


def _tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _b64file(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def _sweep_stale_workdirs(base: str) -> None:
    """Remove work dirs left by test processes that were killed hard (their owner pid is gone; the
    children died with them through PR_SET_PDEATHSIG)."""
    try:
        names = [n for n in os.listdir(base) if n.startswith("bkdoctor-kube-")]
    except OSError:
        return
    for n in names:
        d = os.path.join(base, n)
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


class KubeAPIServer:
    """etcd + kube-apiserver on 127.0.0.1, certificates from openssl, all in one temp dir.

    Properties: ``url``, ``kubeconfig``, ``viewer_kubeconfig``, ``ca_file``, ``admin_cert``
    (CertPair), ``viewer_token``, ``workdir``, ``etcd_url``. ``api_client()`` / ``viewer_api_client()``
    give ``kubernetes.client.ApiClient`` objects (needs the ``kubernetes`` package).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        etcd: str | None = None,
        workdir: str | None = None,
        ready_timeout: float = READY_TIMEOUT,
        extra_args: list[str] | None = None,
        verbosity: int = 1,
    ):
        self.binary = binary or apiserver_binary()
        self.etcd = etcd or etcd_binary()
        self._parent_dir = workdir
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args or [])
        self.verbosity = verbosity
        self.workdir: str | None = None
        self._etcd_proc: subprocess.Popen | None = None
        self._api_proc: subprocess.Popen | None = None
        self._kubelets: list[KubeletLogServer] = []
        self.started_pids: list[int] = []  # every process this object started (tests check they are gone)
        self._lock = threading.Lock()
        self._atexit_registered = False
        self.port: int | None = None
        self.etcd_url: str | None = None
        self.viewer_token: str | None = None
        self.ca: TestCA | None = None
        self.admin_cert: CertPair | None = None
        self._kubeconfig: str | None = None
        self._viewer_kubeconfig: str | None = None

    # ---- availability ----------------------------------------------------------------------------------
    @staticmethod
    def available(binary: str | None = None) -> str | None:
        """None when a server can be started here, else why not (a skip reason)."""
        binary = binary or apiserver_binary()
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            return f"kube-apiserver binary {binary} missing: run `bash tests/kube/build-apiserver.sh`"
        if not etcd_binary():
            return "etcd not found: apt-get install etcd-server (tests/kube/build-apiserver.sh does)"
        if not shutil.which("openssl"):
            return "openssl not found: apt-get install openssl"
        return None

    # ---- properties ------------------------------------------------------------------------------------
    def _need_started(self):
        if not self._api_proc:
            raise KubeAPIServerError("KubeAPIServer is not started")

    @property
    def url(self) -> str:
        self._need_started()
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        self._need_started()
        return self._kubeconfig

    @property
    def viewer_kubeconfig(self) -> str:
        self._need_started()
        return self._viewer_kubeconfig

    @property
    def ca_file(self) -> str:
        self._need_started()
        return self.ca.cert

    @property
    def apiserver_log(self) -> str:
        return os.path.join(self.workdir, "kube-apiserver.log")

    @property
    def etcd_log(self) -> str:
        return os.path.join(self.workdir, "etcd.log")

    def log_tail(self, lines: int = 40) -> str:
        if not self.workdir:
            return ""
        return (
            f"--- kube-apiserver log (last {lines} lines) ---\n{_tail(self.apiserver_log, lines)}\n"
            f"--- etcd log (last {min(lines, 15)} lines) ---\n{_tail(self.etcd_log, min(lines, 15))}"
        )

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "KubeAPIServer":
        if self._api_proc:
            return self
        why = self.available(self.binary)
        if why:
            raise KubeAPIServerError(why)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        base = self._parent_dir or (
            "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        )
        _sweep_stale_workdirs(base or tempfile.gettempdir())
        self.workdir = tempfile.mkdtemp(prefix="bkdoctor-kube-", dir=base)
        with open(os.path.join(self.workdir, "owner.pid"), "w") as f:
            f.write(str(os.getpid()))
        try:
            self._make_pki()
            last: Exception | None = None
            for _attempt in range(3):  # a free port can be taken between probe and bind: retry
                try:
                    self._start_etcd()
                    self._start_apiserver()
                    break
                except _PortRace as e:
                    last = e
                    self._kill_processes()
            else:
                raise KubeAPIServerError(f"could not bind free loopback ports: {last}")
            self._write_kubeconfigs()
        except BaseException:
            self.stop()  # error messages above already carry the log tails
            raise
        return self

    def stop(self) -> None:
        with self._lock:
            for k in self._kubelets:
                try:
                    k.stop()
                except Exception:
                    pass
            self._kubelets.clear()
            self._kill_processes()
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None
            if self._atexit_registered:
                atexit.unregister(self.stop)
                self._atexit_registered = False

    def __enter__(self) -> "KubeAPIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _kill_processes(self) -> None:
        for attr in ("_api_proc", "_etcd_proc"):  # API server first, etcd after
            proc: subprocess.Popen | None = getattr(self, attr)
            setattr(self, attr, None)
            if not proc or proc.poll() is not None:
                continue
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass

    # ---- pieces ----------------------------------------------------------------------------------------
    def _make_pki(self) -> None:
        pki = os.path.join(self.workdir, "pki")
        self.ca = TestCA(pki)
        self.serving = self.ca.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            ips=("127.0.0.1", "10.96.0.1"),
            dns=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        )
        self.admin_cert = self.ca.issue("admin", "kubernetes-admin", orgs=("system:masters",), client=True)
        self.kubelet_client = self.ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", orgs=("system:masters",), client=True
        )
        self.sa_keys = make_keypair(pki, "sa")
        self.viewer_token = secrets.token_hex(16)
        self.token_file = os.path.join(pki, "tokens.csv")
        with open(self.token_file, "w") as f:
            f.write(f'{self.viewer_token},{VIEWER_USER},{VIEWER_USER}-uid,"bkdoctor:viewers"\n')
        os.chmod(self.token_file, 0o600)

    def _popen(self, argv: list[str], log: str) -> subprocess.Popen:
        kw = {}
        if threading.current_thread() is threading.main_thread():
            kw["preexec_fn"] = _set_pdeathsig  # children die with a test process killed hard
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                **kw,
            )
        self.started_pids.append(proc.pid)
        return proc

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        data = os.path.join(self.workdir, "etcd-data")
        shutil.rmtree(data, ignore_errors=True)
        argv = [
            self.etcd,
            "--name",
            "bkdoctor-test",
            "--data-dir",
            data,
            "--listen-client-urls",
            self.etcd_url,
            "--advertise-client-urls",
            self.etcd_url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"bkdoctor-test=http://127.0.0.1:{peer}",
            "--initial-cluster-state",
            "new",
        ]
        self._etcd_proc = self._popen(argv, self.etcd_log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._etcd_proc.poll() is not None:
                tail = _tail(self.etcd_log)
                if "address already in use" in tail:
                    raise _PortRace(f"etcd: {tail.splitlines()[-1]}")
                raise KubeAPIServerError(f"etcd exited with {self._etcd_proc.returncode}\n{tail}")
            try:
                with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as r:
                    if json.load(r).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise KubeAPIServerError(f"etcd not healthy within 20 s\n{_tail(self.etcd_log)}")

    def _start_apiserver(self) -> None:
        self.port = free_port()
        certs = os.path.join(self.workdir, "cert-dir")
        os.makedirs(certs, exist_ok=True)
        argv = [
            self.binary,
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--insecure-port=0",
            f"--cert-dir={certs}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--client-ca-file={self.ca.cert}",
            f"--tls-cert-file={self.serving.cert}",
            f"--tls-private-key-file={self.serving.key}",
            f"--service-account-key-file={self.sa_keys.cert}",
            f"--service-account-signing-key-file={self.sa_keys.key}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--api-audiences={SA_ISSUER}",
            f"--token-auth-file={self.token_file}",
            "--endpoint-reconciler-type=none",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            # pods/log, exec, ...: dial the node's InternalIP first, verify the kubelet's serving cert
            # with the test CA and present a client cert (the stand-in kubelet checks it).
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            f"--kubelet-certificate-authority={self.ca.cert}",
            f"--kubelet-client-certificate={self.kubelet_client.cert}",
            f"--kubelet-client-key={self.kubelet_client.key}",
            "--profiling=false",
            f"--v={self.verbosity}",
            *self.extra_args,
        ]
        self._api_proc = self._popen(argv, self.apiserver_log)
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        ctx.load_cert_chain(self.admin_cert.cert, self.admin_cert.key)
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._api_proc.poll() is not None:
                tail = _tail(self.apiserver_log)
                if "address already in use" in tail:
                    raise _PortRace(f"kube-apiserver: port {self.port} taken")
                raise KubeAPIServerError(
                    f"kube-apiserver exited with {self._api_proc.returncode} before ready\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=ctx, timeout=3) as r:
                    last = f"HTTP {r.status}"
                if r.status == 200:
                    # /readyz does not wait for the bootstrap controller's namespaces: wait for them too.
                    missing = [
                        ns
                        for ns in ("default", "kube-system", "kube-public")
                        if not self._get_ok(ctx, f"/api/v1/namespaces/{ns}")
                    ]
                    if not missing:
                        return
                    last = f"/readyz ok, namespaces not there yet: {', '.join(missing)}"
            except urllib.error.HTTPError as e:
                last = f"/readyz HTTP {e.code}: {e.read().decode('utf-8', 'replace')[-400:]}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.3)
        raise KubeAPIServerError(
            f"kube-apiserver not ready within {self.ready_timeout:.0f} s (last check: {last})\n{self.log_tail()}"
        )

    def _get_ok(self, ctx: ssl.SSLContext, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}{path}", context=ctx, timeout=3) as r:
                return r.status == 200
        except OSError:  # HTTPError included
            return False

    def _write_kubeconfigs(self) -> None:
        cluster = {
            "name": CONTEXT,
            "cluster": {
                "server": f"https://127.0.0.1:{self.port}",
                "certificate-authority-data": _b64file(self.ca.cert),
            },
        }

        def config(user_name: str, user: dict) -> dict:
            return {
                "apiVersion": "v1",
                "kind": "Config",
                "preferences": {},
                "clusters": [cluster],
                "users": [{"name": user_name, "user": user}],
                "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user_name}}],
                "current-context": CONTEXT,
            }

        self._kubeconfig = os.path.join(self.workdir, "admin.kubeconfig")
        self._viewer_kubeconfig = os.path.join(self.workdir, "viewer.kubeconfig")
        admin = config(
            "kubernetes-admin",
            {
                "client-certificate-data": _b64file(self.admin_cert.cert),
                "client-key-data": _b64file(self.admin_cert.key),
            },
        )
        viewer = config(VIEWER_USER, {"token": self.viewer_token})
        for path, cfg in ((self._kubeconfig, admin), (self._viewer_kubeconfig, viewer)):
            with open(path, "w") as f:
                yaml.safe_dump(cfg, f, sort_keys=False)
            os.chmod(path, 0o600)

    # ---- helpers ---------------------------------------------------------------------------------------
    def api_client(self):
        """A ``kubernetes.client.ApiClient`` for the admin kubeconfig."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig, context=CONTEXT)

    def viewer_api_client(self):
        """A ``kubernetes.client.ApiClient`` for the ``bkdoctor-viewer`` token."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.viewer_kubeconfig, context=CONTEXT)

    def kubelet_log_server(self) -> KubeletLogServer:
        """Start a stand-in kubelet whose serving cert (127.0.0.1) is signed by the test CA and which
        requires the API server's kubelet client cert. Stopped with the server."""
        self._need_started()
        name = f"kubelet-{len(self._kubelets)}"
        pair = self.ca.issue(name, "stand-in-kubelet", server=True, ips=("127.0.0.1",), dns=("localhost",))
        server = KubeletLogServer(self.ca.cert, pair.cert, pair.key, client_ca_file=self.ca.cert)
        server.start()
        self._kubelets.append(server)
        return server


class _PortRace(KubeAPIServerError):
    pass
