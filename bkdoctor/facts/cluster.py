"""Cluster facts through the Kubernetes API (the official `kubernetes` client).

Each resource kind is listed once per scan, paginated (`limit`/`continue`), as plain dicts (no model
deserialisation: it is the slow part of the client and the rules need a handful of fields). A kind that cannot
be read (unreachable, 401, 403) raises `FactUnavailable` for the rules that need it, with the reason. Pod logs
are read only for pods that are failing, with a bounded tail. Helm releases are read from their
`helm.sh/release.v1` Secrets without the helm binary; each payload is decoded one at a time and reduced at once
to chart name, version and status, so memory stays proportional to the number of releases, not their size.
While a scan lists, what it keeps is frozen out of the cyclic garbage collector page by page
(`out_of_collector_sight`), and given back at the end.
The client is imported through `kubelazy`: the scan loads its API client, configuration and kubeconfig loader,
not the ~700 model modules and API classes of `import kubernetes`.
"""

from __future__ import annotations

import base64
import gc
import gzip
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

from bkdoctor.model import BadInput, FactUnavailable, T

# The ConfigMaps the `configmaps` kind reads, by name (in any namespace): the one home of these names, each with
# who reads it. Rule and remediation files read a ConfigMap only through `configmap()` (`rulekit`, `fixkit`),
# which refuses a name not listed here, so a new reader of a ConfigMap nobody fetches fails in its first test
# instead of seeing it absent at every site. The in-cluster Job's ClusterRole grants exactly these names.
CONFIGMAPS: dict[str, str] = {
    "coredns": "rules/cluster/coredns.py, remediations/cluster/coredns.py (the Corefile)",
    "ingress-nginx-controller": "remediations/cluster/faq-snippet-annotations.py (allow-snippet-annotations)",
    "bkpaas3-apiserver-general-env": "remediations/cluster/faq-paas-init-data.py (PAAS_APP_IMAGE)",
    "bk-user-api-general-envs": "no rule yet: carried, masked, in support bundles",
}
CONFIGMAP_NAMES = tuple(CONFIGMAPS)

PAGE = 500
# pods in smaller pages (`Kind.page`): a decoded 500-item page of pods is tens of MB while it is reduced, and several
# kinds are read at once. Events stay at PAGE: an event is small, and at 200 a page the API server spent more CPU on
# the 100 requests of 20,000 events than on the 40 at 500 (1.4-1.8 s against 0.7-1.2 s, issue 16), on the scan's
# longest list; pods showed no such difference.
SMALL_PAGE = 200
LOG_TAIL = 200
REQUEST_TIMEOUT = (5, 60)  # connect, read


@dataclass
class ClusterAccess:
    """A configured cluster: the API client and a display name (the kubeconfig context)."""

    name: str
    server: str
    api_client: Any
    source: str

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:
            pass


def configure(
    kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None
) -> ClusterAccess | None:
    """The cluster to scan, or None when none is configured (then every cluster rule is `skip`).

    Order: --kubeconfig, $KUBECONFIG, in-cluster service account, ~/.kube/config. A kubeconfig that exists
    but is broken is bad input (exit 2), not a silent skip.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if (
        path is None
        and not (in_cluster is not False and os.environ.get("KUBERNETES_SERVICE_HOST"))
        and not os.path.exists(os.path.expanduser("~/.kube/config"))
    ):
        return None  # nothing configured: do not even import the client
    client, config = _client()
    ConfigException = config.ConfigException

    if (
        path is None
        and in_cluster is not False
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ):
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as e:
            raise BadInput(T(f"集群内配置（in-cluster config）: {e}", f"in-cluster config: {e}")) from None
        return ClusterAccess(name="in-cluster", server=cfg.host, api_client=client.ApiClient(cfg), source="in-cluster")
    if path is None:
        default = os.path.expanduser("~/.kube/config")
        if not os.path.exists(default):
            return None
        path = default
    path = path.split(os.pathsep)[0]
    if not os.path.exists(path):
        raise BadInput(T(f"kubeconfig {path}: 文件不存在", f"kubeconfig {path}: no such file"))
    from bkdoctor.safe import yamlfile

    try:  # the one YAML loader's checks first (duplicate keys, alias bombs, depth, size); then the client reads it
        with open(path, encoding="utf-8") as fh:
            yamlfile.load(fh.read(yamlfile.MAX_BYTES + 1), f"kubeconfig {path}")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(T(f"kubeconfig {path}: 无法读取: {e}", f"kubeconfig {path}: cannot read: {e}")) from None
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=path, context=context, client_configuration=cfg, persist_config=False)
        _, active = config.list_kube_config_contexts(config_file=path)
        name = context or (active or {}).get("name") or "cluster"
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(T(f"kubeconfig {path}: 无法加载: {msg}", f"kubeconfig {path}: {msg}")) from None
    except Exception as e:  # yaml errors and the like
        raise BadInput(
            T(
                f"kubeconfig {path}: 无法加载: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                f"kubeconfig {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            )
        ) from None
    cfg.retries = 1
    return ClusterAccess(name=name, server=cfg.host, api_client=client.ApiClient(cfg), source=path)


def _client() -> tuple[Any, Any]:
    """`kubernetes.client` and `kubernetes.config`, without the client's models and API classes (`kubelazy`: each
    name is imported when something uses it, e.g. fix's `CoreV1Api`). Should the lazy packages fail to give the
    `ApiClient` and `Configuration` the scan uses, the client is imported the ordinary way."""
    from bkdoctor.facts import kubelazy

    lazy = kubelazy.install()
    while True:
        try:
            from kubernetes import client, config

            client.ApiClient, client.Configuration  # noqa: B018 (resolved here, where a failure falls back)
            return client, config
        except ImportError:
            if not lazy:
                raise
            kubelazy.uninstall()
            lazy = False


def _reason(e: Exception) -> T:
    """A short operator-facing reason for an API failure."""
    status = getattr(e, "status", None)
    if status in (401, 403):
        body = getattr(e, "body", "") or ""
        try:
            msg = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            msg = ""
        what = "未授权" if status == 401 else "无权限"
        return T(
            f"Kubernetes API {what}（HTTP {status}）：{msg}",
            f"Kubernetes API {'unauthorized' if status == 401 else 'forbidden'} (HTTP {status}): {msg}",
        )
    if status:
        return T(
            f"Kubernetes API 返回 HTTP {status}：{getattr(e, 'reason', '')}",
            f"Kubernetes API answered HTTP {status}: {getattr(e, 'reason', '')}",
        )
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if (
        "Max retries" in text
        or "Connection refused" in text
        or "timed out" in text.lower()
        or "NewConnectionError" in text
    ):
        short = (
            "connection refused" if "refused" in text else ("timed out" if "timed out" in text.lower() else text[-200:])
        )
        return T(f"无法连接 Kubernetes API：{short}", f"cannot reach the Kubernetes API: {short}")
    return T(f"Kubernetes API 错误：{text[:200]}", f"Kubernetes API error: {text[:200]}")


def _reduce_node(n: dict[str, Any]) -> dict[str, Any]:
    st = n.get("status") or {}
    st.pop("images", None)  # about half of a Node object, and no rule reads it
    return n


def _reduce_pod(p: dict[str, Any]) -> dict[str, Any]:
    """What the rules read of a pod: metadata, node, containers' names and images, status."""
    md = p.get("metadata") or {}
    spec = p.get("spec") or {}
    return {
        "metadata": {
            k: md[k]
            for k in ("name", "namespace", "labels", "creationTimestamp", "ownerReferences", "deletionTimestamp")
            if k in md
        },
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": [{"name": c.get("name"), "image": c.get("image")} for c in spec.get("containers") or []],
        },
        "status": p.get("status") or {},
    }


def _reduce_event(e: dict[str, Any]) -> dict[str, Any]:
    return {
        k: e[k]
        for k in (
            "metadata",
            "involvedObject",
            "reason",
            "message",
            "type",
            "count",
            "firstTimestamp",
            "lastTimestamp",
            "eventTime",
            "source",
        )
        if k in e
    }


# the fields whose values repeat across thousands of objects (and `labels`, whose values all do)
SHARED_KEYS = frozenset(
    {
        "namespace",
        "name",
        "nodeName",
        "image",
        "imageID",
        "reason",
        "type",
        "kind",
        "component",
        "host",
        "hostIP",
        "status",
        "phase",
        "apiVersion",
        "qosClass",
        "fieldPath",
        "containerID",
    }
)


def _share(obj: Any, memo: dict[str, str], every: bool = False) -> Any:
    """`obj` with the string values of SHARED_KEYS replaced by one shared copy each. json.loads shares a page's
    repeated keys but not its values, and 5,000 pods and 20,000 events repeat the same namespaces, node names,
    images, reasons and statuses (issue 16: what bkdoctor keeps, and so its peak, shrinks). Unique values (uids,
    timestamps, messages) are left alone: a shared table of those would cost more than it saves."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if type(v) is str:
                if (every or k in SHARED_KEYS) and len(v) <= 120:
                    obj[k] = memo.setdefault(v, v)
            elif isinstance(v, (dict, list)):
                _share(v, memo, k == "labels")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)):
                _share(v, memo)
    return obj


@dataclass
class ClusterFacts:
    """Lazily listed, cached cluster objects (dicts as the API returns them, managedFields dropped)."""

    access: ClusterAccess | None
    log_tail: int = LOG_TAIL
    page: int = PAGE
    _cache: dict[str, Any] = field(default_factory=dict)
    _locks: dict[str, Any] = field(default_factory=dict)
    calls: int = 0  # API requests made (tests check that each kind is read once)
    # a bundle (offline analysis) fills this instead of the API
    preloaded: dict[str, Any] | None = None
    # one copy of each short string value of the reduced objects (namespaces, node names, images, reasons...)
    _strings: dict[str, str] = field(default_factory=dict)
    _indexes: dict[str, Any] = field(default_factory=dict)
    # ConfigMap name -> why it could not be read (a 403 for that name alone): configmap() raises it for that name
    configmap_errors: dict[str, Any] = field(default_factory=dict)
    # set by `out_of_collector_sight()`: every page's kept objects are frozen (gc.freeze) once the page is reduced
    freeze_kept: bool = False

    def __repr__(self) -> str:  # not every object listed (see ScanResult.__repr__)
        name = self.access.name if self.access is not None else None
        return f"ClusterFacts(cluster={name!r}, kinds={sorted(k for k in self._cache if ':' not in k)})"

    # -- raw API --------------------------------------------------------------------------------------
    def _get(self, path: str, query: dict[str, Any] | None = None, *, raw: bool = False) -> Any:
        assert self.access is not None
        self.calls += 1
        url = path + ("?" + urlencode(query) if query else "")
        resp = self.access.api_client.call_api(
            url,
            "GET",
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
            header_params={"Accept": "application/json" if not raw else "*/*"},
        )
        data = resp.data
        if raw:
            return data
        return json.loads(data)

    def _list(
        self,
        path: str,
        query: dict[str, Any] | None = None,
        reduce: Callable[[dict[str, Any]], Any] | None = None,
        page: int | None = None,
        each: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        out: list[Any] = []
        cont = None
        while True:
            q = dict(query or {})
            q["limit"] = min(self.page, page or self.page)
            if cont:
                q["continue"] = cont
            data = self._get(path, q)
            items = data.pop("items", None) or []
            cont = (data.get("metadata") or {}).get("continue")
            del data
            # each item is reduced and its full form dropped at once; the page is gone before the next is asked for
            for i, item in enumerate(items):
                items[i] = None
                (item.get("metadata") or {}).pop("managedFields", None)
                out.append(_share(reduce(item), self._strings) if reduce else item)
                if each is not None:
                    each(out[-1])
            del items
            if self.freeze_kept:
                gc.freeze()  # see out_of_collector_sight()
            if not cont:
                return out

    # -- facts ----------------------------------------------------------------------------------------
    def get(self, kind: str, each: Callable[[Any], None] | None = None) -> Any:
        """The kind's objects, listed on first use. `each(item)`, when given, sees every item of a list kind once,
        in list order: as each page arrives when this call lists it (so the caller can start work on the first
        pages while the rest are listed: `logs` on failing pods), else from the cache; when the kind cannot be
        read, the items already seen stay seen and this raises as without `each`."""
        fed = False
        if kind not in self._cache:
            import threading

            lock = self._locks.setdefault(kind, threading.Lock())  # dict.setdefault is atomic under the GIL
            with lock:  # several gathering threads may want the same kind (logs need pods): list it once
                if kind not in self._cache:
                    fed = each is not None and self._streams(kind)
                    try:
                        if fed:
                            rec = RECORDS[kind]
                            self._cache[kind] = self._list(rec.path, reduce=rec.reduce, page=rec.page, each=each)
                        else:
                            self._cache[kind] = self._load(kind)
                    except FactUnavailable as e:
                        self._cache[kind] = e
                    except Exception as e:  # ApiException, urllib3 errors, JSON errors
                        self._cache[kind] = FactUnavailable(_reason(e))
        v = self._cache[kind]
        if isinstance(v, FactUnavailable):
            raise v
        if each is not None and not fed:
            for item in v:
                each(item)
        return v

    def _streams(self, kind: str) -> bool:
        """Whether `kind` is read as `_list` reads it, page by page from the API (`each` can see its pages)."""
        rec = RECORDS.get(kind)
        return self.preloaded is None and self.access is not None and rec is not None and rec.load is None

    def index(self, key: str, build: Callable[[], Any]) -> Any:
        """What `build()` derives from the facts (an index of events by reason...), built once per scan and shared
        by every rule that asks for `key`. A build that raises (a kind unavailable) is not kept."""
        if key not in self._indexes:
            self._indexes[key] = build()
        return self._indexes[key]

    def _load(self, kind: str) -> Any:
        if self.preloaded is not None:
            if kind not in self.preloaded:
                raise FactUnavailable(T(f"支持包中没有 {kind}", f"the bundle holds no {kind}"))
            v = self.preloaded[kind]
            if isinstance(v, dict) and "__error__" in v:
                raise FactUnavailable(T(v["__error__"]["zh"], v["__error__"]["en"]))
            return v
        if self.access is None:
            raise FactUnavailable(
                T(
                    "未配置集群（--kubeconfig 或 ~/.kube/config）",
                    "no cluster configured (--kubeconfig or ~/.kube/config)",
                ),
                status="skip",
            )
        rec = RECORDS.get(kind)
        if rec is not None:
            return rec.load(self, rec) if rec.load else self._list(rec.path, reduce=rec.reduce, page=rec.page)
        for prefix, load in FAMILIES.items():
            if kind.startswith(prefix):
                return load(self, kind)
        raise KeyError(kind)

    def _configmaps(self, rec: Kind) -> dict[str, Any]:
        """The ConfigMaps of CONFIGMAPS, by `namespace/name`: one list per name (RBAC grants them by name)."""
        out: dict[str, Any] = {}
        failed: dict[str, FactUnavailable] = {}
        for name in CONFIGMAPS:
            try:
                for cm in self._list(rec.path, {"fieldSelector": f"metadata.name={name}"}):
                    md = cm["metadata"]
                    out[f"{md['namespace']}/{md['name']}"] = cm
            except FactUnavailable as e:
                failed[name] = e
            except Exception as e:  # e.g. RBAC grants some names and not others: the API's 403 for this one
                failed[name] = FactUnavailable(_reason(e))
        if failed and len(failed) == len(CONFIGMAPS):
            raise next(iter(failed.values()))  # none could be read: the fact itself is unavailable
        self.configmap_errors = failed  # read by configmap(): only the rule that needs a refused name errs
        return out

    def _helm_releases(self, rec: Kind) -> list[dict[str, Any]]:
        """Every helm release, reduced to chart, version and status. Only the newest revision's payload of each
        release is kept while listing (older ones are dropped page by page), and each is decoded one at a time."""
        from collections import Counter

        latest: dict[tuple[str, str], dict[str, Any]] = {}
        counts: Counter = Counter()
        good: dict[tuple[str, str], int] = {}  # the newest revision that deployed (deployed or superseded since)
        cont = None
        while True:
            q: dict[str, Any] = {"labelSelector": "owner=helm", "limit": min(self.page, rec.page or self.page)}
            if cont:
                q["continue"] = cont
            data = self._get(rec.path, q)
            for item in data.get("items") or []:
                if item.get("type") != "helm.sh/release.v1":
                    continue
                md = item.get("metadata") or {}
                labels = md.get("labels") or {}
                key = (md.get("namespace"), labels.get("name"))
                rev = int(labels.get("version") or 0)
                counts[key] += 1
                if labels.get("status") in ("deployed", "superseded") and rev > good.get(key, 0):
                    good[key] = rev
                if key not in latest or rev > latest[key]["revision"]:
                    latest[key] = {
                        "namespace": key[0],
                        "name": key[1],
                        "status": labels.get("status"),
                        "revision": rev,
                        "data": (item.get("data") or {}).get("release"),
                    }
            cont = (data.get("metadata") or {}).get("continue")
            del data
            if not cont:
                break
        out = []
        for key, r in sorted(latest.items()):
            chart, version, app_version, err = None, None, None, None
            try:
                payload = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(r["data"] or ""))))
                md = (payload.get("chart") or {}).get("metadata") or {}
                chart, version, app_version = md.get("name"), md.get("version"), md.get("appVersion")
                del payload
            except (ValueError, OSError, TypeError, EOFError) as e:
                err = f"cannot decode the release payload: {type(e).__name__}"
            r["data"] = None
            out.append(
                {
                    "namespace": r["namespace"],
                    "name": r["name"],
                    "status": r["status"],
                    "revision": r["revision"],
                    "chart": chart,
                    "chart_version": version,
                    "app_version": app_version,
                    "error": err,
                    "revisions": counts[key],
                    "last_good": good.get(key),
                }
            )
        return out

    MAX_LOG_PODS = 100

    def _failing_pod_logs(self, rec: Kind) -> dict[str, str]:
        """Tails of the containers of failing pods only ({ns/pod/container/previous: text}); bounded. The reads
        start with the first failing pod of the first page of pods, one at a time in a thread of their own, while
        the rest of the pods are listed (issue 16: they had waited for the whole list); the pods and the reads
        are those of listing first and reading after: the first MAX_LOG_PODS failing pods in list order."""
        from concurrent.futures import Future, ThreadPoolExecutor

        from bkdoctor.facts.k8s import container_statuses, md, pod_failing

        reads: list[tuple[str, Future]] = []
        taken = 0

        def each(p: dict[str, Any]) -> None:
            nonlocal taken
            if taken >= self.MAX_LOG_PODS or not pod_failing(p):
                return
            taken += 1
            ns, name = md(p).get("namespace", ""), md(p)["name"]
            restarted = {cs.get("name") for cs in container_statuses(p) if cs.get("restartCount", 0) > 0}
            for c in (p.get("spec") or {}).get("containers") or []:
                for prev in (False, True) if c["name"] in restarted else (False,):
                    reads.append(
                        (f"{ns}/{name}/{c['name']}/{int(prev)}", pool.submit(self.pod_log, ns, name, c["name"], prev))
                    )

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bkdoctor-logs")
        listed = False
        try:
            self.get("pods", each=each)
            listed = True
        finally:  # pods unavailable: the reads not yet made are not made
            pool.shutdown(wait=True, cancel_futures=not listed)
        out: dict[str, str] = {}
        for key, fut in reads:
            text = fut.result()
            if text:
                out[key] = text
        return out

    def pod_log(self, namespace: str, pod: str, container: str, previous: bool = False) -> str | None:
        """The last `log_tail` lines of a container, or None when they cannot be read (never raises)."""
        key = f"log:{namespace}/{pod}/{container}/{int(previous)}"
        if key in self._cache:
            return self._cache[key]
        text = None
        if self.preloaded is not None:
            text = (self.preloaded.get("logs") or {}).get(key)
        elif self.access is not None:
            try:
                q = {"container": container, "tailLines": self.log_tail}
                if previous:
                    q["previous"] = "true"
                data = self._get(RECORDS["logs"].path.format(namespace=namespace, pod=pod), q, raw=True)
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            except Exception:
                text = None
        self._cache[key] = text
        return text


@contextmanager
def out_of_collector_sight(facts: ClusterFacts) -> Iterator[None]:
    """While the cluster is listed, the objects kept so far are moved out of the cyclic garbage collector's sight
    (`gc.freeze()` after each page) and given back to it at the end (`gc.unfreeze()`). The kept pods, events and
    nodes only grow while listing, and every time the collector's tracked objects grew by a quarter it walked all
    of them again: at 5,000 pods and 20,000 events 18 full collections, 0.7-1.0 s of CPU of a 2 s decode on this
    machine (issue 16; the floor keeps nothing, so its full collections are of one page). The lists are plain JSON
    data, without reference cycles, freed by reference counting as always; what is frozen meanwhile (also other
    threads' objects, e.g. the hosts' SSH sessions) is only kept from the collector until the end. Does nothing
    when someone else froze objects (their freeze is not undone) or the collector is off."""
    mine = gc.isenabled() and gc.get_freeze_count() == 0
    facts.freeze_kept = mine
    try:
        yield
    finally:
        facts.freeze_kept = False
        if mine:
            gc.unfreeze()


# -- the kinds: one record each ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """One cluster fact a rule may name in `facts`: the API path it reads and how. By default a paginated list of
    `path`, each item reduced by `reduce` as it arrives, in pages of `page` items (PAGE when None); `load` reads it
    another way (from `path` all the same)."""

    name: str
    path: str
    reduce: Callable[[dict[str, Any]], Any] | None = None
    page: int | None = None
    load: Callable[[ClusterFacts, Kind], Any] | None = None


def _records(*kinds: Kind) -> dict[str, Kind]:
    out: dict[str, Kind] = {}
    for k in kinds:
        if k.name in out:
            raise ValueError(f"cluster kind {k.name!r} is declared twice")
        out[k.name] = k
    return out


RECORDS: dict[str, Kind] = _records(
    Kind("nodes", "/api/v1/nodes", reduce=_reduce_node),
    Kind("pods", "/api/v1/pods", reduce=_reduce_pod, page=SMALL_PAGE),
    Kind("services", "/api/v1/services"),
    Kind("events", "/api/v1/events", reduce=_reduce_event),
    Kind("pvs", "/api/v1/persistentvolumes"),
    Kind("pvcs", "/api/v1/persistentvolumeclaims"),
    Kind("storageclasses", "/apis/storage.k8s.io/v1/storageclasses"),
    Kind("jobs", "/apis/batch/v1/jobs"),
    Kind("version", "/version", load=lambda cf, rec: cf._get(rec.path)),
    # helm's release Secrets (labelSelector owner=helm), reduced to chart, version and status; 50 a page: payloads
    Kind("helm_releases", "/api/v1/secrets", page=50, load=ClusterFacts._helm_releases),
    # failing pods' log tails (`pod_log`)
    Kind("logs", "/api/v1/namespaces/{namespace}/pods/{pod}/log", load=ClusterFacts._failing_pod_logs),
    # CONFIGMAPS by name (a fieldSelector each)
    Kind("configmaps", "/api/v1/configmaps", load=ClusterFacts._configmaps),
)

# every kind a cluster rule may name in `facts` (checked when the rules load: `scan/loader.py: known_facts`)
FACTS = frozenset(RECORDS)

# the kinds that take longest, longest first: a scan's wall time is its longest chain of requests (issue 16). `logs`
# lists the pods itself and reads logs while it does; then 20,000 events; then helm's release Secrets (big pages)
LONGEST_FIRST = ("logs", "events", "helm_releases", "pods")


def gather_order(kinds: set[str]) -> list[str]:
    """`kinds` in the order a pool of readers should take them: the longest first, the rest by name. `pods` is left
    out when `logs` is in: `logs` lists them, and a reader given `pods` as well would only wait for it."""
    ks = set(kinds) - ({"pods"} if "logs" in kinds else set())
    return sorted(ks, key=lambda k: (LONGEST_FIRST.index(k) if k in LONGEST_FIRST else len(LONGEST_FIRST), k))


# kinds named by a prefix and read by whoever registers it (`family()`): the site rules' `site:<path>?<query>`
FAMILIES: dict[str, Callable[[ClusterFacts, str], Any]] = {}


def family(prefix: str, load: Callable[[ClusterFacts, str], Any]) -> None:
    """Kinds `<prefix>...` (not declarable by a rule file) are read by `load(facts, kind)`."""
    FAMILIES[prefix] = load


def configmap(facts: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The ConfigMap `name` read for the rules: in `namespace`, or in whichever namespace it is (the first by
    namespace); None when there is none. A name not in CONFIGMAPS is never fetched: refused (a bug, not a site)."""
    if name not in CONFIGMAPS:
        raise ValueError(f"ConfigMap {name!r} is not read for the rules: add it to facts/cluster.py CONFIGMAPS")
    cms = facts.get("configmaps")
    err = (getattr(facts, "configmap_errors", None) or {}).get(name)
    if err is not None:
        raise err
    if namespace is not None:
        return cms.get(f"{namespace}/{name}")
    return next((v for k, v in sorted(cms.items()) if k.endswith("/" + name)), None)
