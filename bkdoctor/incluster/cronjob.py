"""`bkdoctor cluster-job --schedule CRON`: the in-cluster scan as a CronJob, with its history kept between runs.

The CronJob runs the same container, ServiceAccount and read-only ClusterRole as `cluster-job` (see incluster.py);
its history is kept either

- `--history configmap` (default): each run adds a compact summary of its report (scan id, times, summary, targets,
  and per finding rule/target/status/severity/message; no evidence, no observed values) as one key of the ConfigMap
  `bkdoctor-history` in the namespace, the newest KEEP runs (and under ~900 KB: a ConfigMap holds 1 MiB). The only
  write the ServiceAccount gets is a namespaced Role: `create` on ConfigMaps (RBAC cannot limit create by name) and
  `get`/`update` on `bkdoctor-history` only. Written with the resourceVersion it read (a concurrent writer's 409 is
  retried on the new content). `bkdoctor diff --cluster-history NAMESPACE` imports those runs into the local history
  database and compares the newest two (or the scan ids given), like any two local scans.
- `--history pvc`: a PersistentVolumeClaim `bkdoctor-history` mounted at /var/lib/bkdoctor, holding the full SQLite
  history (`--db /var/lib/bkdoctor/history.db`); no write to the API at all. Read it with
  `kubectl -n NS cp <pod>:/var/lib/bkdoctor/history.db h.db` (from a pod that mounts the claim) and
  `bkdoctor diff --db h.db`.

CronJob API: batch/v1beta1 is what Kubernetes 1.20 (BlueKing 7.1's range is 1.20-1.23) serves; batch/v1 exists from
1.21 and is the only one from 1.25. The rendered YAML uses batch/v1beta1; `--apply` asks the API server (discovery)
and uses batch/v1 when it serves CronJobs there.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from bkdoctor.incluster import job as incluster
from bkdoctor.model import BadInput, T

HISTORY_NAME = "bkdoctor-history"
CRONJOB_NAME = "bkdoctor-scan"
HISTORY_DIR = "/var/lib/bkdoctor"
KEEP = 20
MAX_BYTES = 900_000
HISTORIES = ("configmap", "pvc")

_FIELD = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
_CRON_FIELD = re.compile(rf"^{_FIELD}(,{_FIELD})*$")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_NAMES = {
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "sun",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def check_schedule(s: str) -> str:
    """A standard 5-field cron schedule (as the CronJob controller reads it) or a macro; else bad input."""
    s = " ".join((s or "").split())
    if s in _MACROS:
        return s
    fields = s.split(" ")
    if len(fields) != 5:
        raise BadInput(
            T(
                f"--schedule {s!r}: cron 计划应有 5 个字段（分 时 日 月 周），或为 {', '.join(sorted(_MACROS))} 之一",
                f"--schedule {s!r}: a cron schedule has 5 fields (minute hour day month weekday) or is "
                f"one of {', '.join(sorted(_MACROS))}",
            )
        )
    for i, (f, (lo, hi)) in enumerate(zip(fields, _RANGES)):
        if not _CRON_FIELD.match(f):
            raise BadInput(
                T(
                    f"--schedule {s!r}: 第 {i + 1} 个字段（{f!r}）不是 cron 字段",
                    f"--schedule {s!r}: field {i + 1} ({f!r}) is not a cron field",
                )
            )
        for tok in re.findall(r"[0-9A-Za-z]+", f):
            if tok.isdigit():
                if not lo <= int(tok) <= hi and not (re.search(rf"/{tok}(,|$)", f)):
                    raise BadInput(
                        T(
                            f"--schedule {s!r}: 第 {i + 1} 个字段: {tok} 超出 {lo}-{hi}",
                            f"--schedule {s!r}: field {i + 1}: {tok} is outside {lo}-{hi}",
                        )
                    )
            elif tok.lower() not in _NAMES or i < 3:
                raise BadInput(
                    T(
                        f"--schedule {s!r}: 第 {i + 1} 个字段: {tok!r} 不是有效的值",
                        f"--schedule {s!r}: field {i + 1}: {tok!r} is not a value",
                    )
                )
    return s


def history_role(namespace: str) -> list[dict[str, Any]]:
    """The Role + RoleBinding of the ConfigMap history: the only write the ServiceAccount gets."""
    labels = dict(incluster.LABELS)
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "bkdoctor-history-writer", "namespace": namespace, "labels": labels},
            "rules": [
                # RBAC cannot restrict `create` by name; everything else only on the history ConfigMap
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [HISTORY_NAME],
                    "verbs": ["get", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "bkdoctor-history-writer", "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bkdoctor-history-writer"},
            "subjects": [{"kind": "ServiceAccount", "name": incluster.SERVICE_ACCOUNT, "namespace": namespace}],
        },
    ]


def render(
    namespace: str,
    image: str,
    schedule: str,
    *,
    history: str = "configmap",
    helm_secrets: bool = False,
    domain: str | None = None,
    storage_class: str | None = None,
    size: str = "1Gi",
    api_version: str = "batch/v1beta1",
) -> list[dict[str, Any]]:
    schedule = check_schedule(schedule)
    if history not in HISTORIES:
        raise BadInput(
            T(
                f"--history {history!r}: 应为 {', '.join(HISTORIES)} 之一",
                f"--history {history!r}: one of {', '.join(HISTORIES)}",
            )
        )
    if not re.fullmatch(r"[0-9]+(Mi|Gi|Ti)", size):
        raise BadInput(T(f"--history-size {size!r}: 应为容量，如 1Gi", f"--history-size {size!r}: a size like 1Gi"))
    objs = incluster.render(namespace, image, "job", helm_secrets=helm_secrets, domain=domain)
    job = objs.pop()  # the Job becomes the CronJob's template
    spec = json.loads(json.dumps(job["spec"]))
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    if history == "configmap":
        c["args"] = c["args"] + ["--history-configmap", f"{namespace}/{HISTORY_NAME}"]
        objs += history_role(namespace)
    else:
        c["args"] = [a for a in c["args"] if a != "--no-history"] + ["--db", f"{HISTORY_DIR}/history.db"]
        c["volumeMounts"].append({"name": "history", "mountPath": HISTORY_DIR})
        pod["volumes"].append({"name": "history", "persistentVolumeClaim": {"claimName": HISTORY_NAME}})
        pod["securityContext"]["fsGroup"] = 65534  # the volume writable by the non-root user
        pvc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": HISTORY_NAME, "namespace": namespace, "labels": dict(incluster.LABELS)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        }
        if storage_class:
            pvc["spec"]["storageClassName"] = storage_class
        objs.append(pvc)
    objs.append(
        {
            "apiVersion": api_version,
            "kind": "CronJob",
            "metadata": {
                "name": CRONJOB_NAME,
                "namespace": namespace,
                "labels": {**incluster.LABELS, **incluster.SCAN_LABELS},
            },
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"metadata": {"labels": {**incluster.LABELS, **incluster.SCAN_LABELS}}, "spec": spec},
            },
        }
    )
    return objs


def served_cronjob_api(access: Any) -> str:
    """batch/v1 when the API server serves CronJobs there (1.21+), else batch/v1beta1."""
    try:
        res = incluster._request(access, "GET", "/apis/batch/v1")
        if any(r.get("name") == "cronjobs" for r in res.get("resources") or []):
            return "batch/v1"
    except Exception:
        pass
    return "batch/v1beta1"


def to_yaml(objs: list[dict[str, Any]], schedule: str, history: str, helm_secrets: bool = False) -> str:
    ns = next((o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"), "?")
    text = incluster.to_yaml(objs, helm_secrets=helm_secrets).replace(
        incluster._JOB_NOTE.format(namespace=ns),
        f"# Reports: each run's Job pod log (kubectl -n {ns} get jobs -l app.kubernetes.io/component=scan).\n",
    )
    note = (
        f"# CronJob {CRONJOB_NAME} ({schedule}); history: "
        + (
            f"ConfigMap {HISTORY_NAME} (the newest {KEEP} runs' summaries; "
            f"`bkdoctor diff --cluster-history NAMESPACE`)\n"
            if history == "configmap"
            else f"PersistentVolumeClaim {HISTORY_NAME} at {HISTORY_DIR} (SQLite)\n"
        )
        + "# CronJob apiVersion batch/v1beta1 (Kubernetes 1.20-1.24); on 1.21+ batch/v1 works too, from 1.25 only "
        "batch/v1.\n"
    )
    return note + text


# -- the ConfigMap history --------------------------------------------------------------------------------------
def compact(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "bkdoctor/history-entry/v1",
        "tool": report["tool"],
        "lang": report["lang"],
        "scan": report["scan"],
        "summary": report["summary"],
        "targets": report["targets"],
        "findings": [
            {
                "rule": f["rule"],
                "target": f["target"],
                "status": f["status"],
                "severity": f["severity"],
                "message": (f.get("message") or "")[:300],
            }
            for f in report["findings"]
        ],
    }


def _run_order(key: str, value: Any) -> tuple[str, str]:
    """When a run started (microseconds), then its id: scan ids name the second only, and two runs in one second
    (or a clock-skewed node) must not swap places when the oldest is dropped or the newest two are compared."""
    try:
        doc = json.loads(value) if isinstance(value, str) else value
        started = str(doc["scan"]["started_at"])
    except (ValueError, KeyError, TypeError):
        started = ""
    return started, key


def _split(ref: str) -> tuple[str, str]:
    ns, _, name = ref.partition("/")
    if not name:
        ns, name = ref, HISTORY_NAME
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", ns) or not re.fullmatch(
        r"[a-z0-9]([-.a-z0-9]*[a-z0-9])?", name
    ):
        raise BadInput(
            T(
                f"{ref!r}: 格式应为 NAMESPACE 或 NAMESPACE/CONFIGMAP",
                f"{ref!r}: expected NAMESPACE or NAMESPACE/CONFIGMAP",
            )
        )
    return ns, name


def save_to_configmap(access: Any, ref: str, report: dict[str, Any], keep: int = KEEP) -> str:
    """Add this run's summary to the history ConfigMap (created when missing); the oldest runs are dropped."""
    ns, name = _split(ref)
    key = f"{report['scan']['id']}.json"
    value = json.dumps(compact(report), ensure_ascii=False, separators=(",", ":"))
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for _attempt in range(6):
        try:
            cm = incluster._request(access, "GET", f"{path}/{name}")
        except Exception as e:
            if getattr(e, "status", None) != 404:
                raise BadInput(
                    T(
                        f"历史记录 ConfigMap {ns}/{name}: {incluster._api_message(e)}",
                        f"history ConfigMap {ns}/{name}: {incluster._api_message(e)}",
                    )
                ) from None
            cm = None
        data = dict((cm or {}).get("data") or {})
        data[key] = value
        keys = sorted((k for k in data if k.endswith(".json")), key=lambda k: _run_order(k, data[k]))
        while len(keys) > 1 and (len(keys) > keep or sum(len(data[k]) for k in keys) > MAX_BYTES):
            data.pop(keys.pop(0))
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": dict(incluster.LABELS)},
            "data": data,
        }
        try:
            if cm is None:
                incluster._request(access, "POST", path, body=body, content_type="application/json")
            else:
                body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
                body["metadata"]["labels"] = (cm["metadata"].get("labels") or {}) | dict(incluster.LABELS)
                incluster._request(access, "PUT", f"{path}/{name}", body=body, content_type="application/json")
            return key
        except Exception as e:
            if getattr(e, "status", None) in (409,):  # someone else wrote it: read again, add again
                time.sleep(0.2)
                continue
            raise BadInput(
                T(
                    f"历史记录 ConfigMap {ns}/{name}: {incluster._api_message(e)}",
                    f"history ConfigMap {ns}/{name}: {incluster._api_message(e)}",
                )
            ) from None
    raise BadInput(
        T(
            f"历史记录 ConfigMap {ns}/{name}: 写入时一直被他人修改（连续 6 次 409 冲突）",
            f"history ConfigMap {ns}/{name}: kept changing under us (409 six times)",
        )
    )


def read_configmap_history(access: Any, ref: str) -> list[dict[str, Any]]:
    """The runs in the history ConfigMap, oldest first (entries that do not parse are skipped, and said so)."""
    ns, name = _split(ref)
    try:
        cm = incluster._request(access, "GET", f"/api/v1/namespaces/{ns}/configmaps/{name}")
    except Exception as e:
        raise BadInput(
            T(
                f"历史记录 ConfigMap {ns}/{name}: {incluster._api_message(e)}",
                f"history ConfigMap {ns}/{name}: {incluster._api_message(e)}",
            )
        ) from None
    out = []
    for k in sorted((cm.get("data") or {})):
        try:
            doc = json.loads(cm["data"][k])
        except (ValueError, TypeError, RecursionError):
            continue
        if _entry_ok(doc):
            out.append(doc)
    return sorted(out, key=lambda d: _run_order(d["scan"]["id"], d))


def _entry_ok(doc: Any) -> bool:
    """An entry of the shape `compact` writes, as far as the import and the diff read it (the scan's times, the
    tool's version and the language may be absent: the import puts defaults there). Anyone who may write the
    ConfigMap writes what is read here: an entry of another shape was a crash half way through the import."""
    from bkdoctor.model import SEVERITY_RANK, STATUSES

    def opt(v: Any, kinds: Any) -> bool:
        return v is None or (isinstance(v, kinds) and not isinstance(v, bool))

    if not isinstance(doc, dict) or doc.get("schema") != "bkdoctor/history-entry/v1":
        return False
    scan, tool, summary = doc.get("scan"), doc.get("tool", {}), doc.get("summary", {})
    if not (isinstance(scan, dict) and isinstance(tool, dict) and isinstance(summary, dict)):
        return False
    if not isinstance(scan.get("id"), str) or not all(
        opt(v, str) for v in (scan.get("started_at"), scan.get("finished_at"), doc.get("lang"), tool.get("version"))
    ):
        return False
    if not opt(scan.get("duration_s"), (int, float)) or not isinstance(scan.get("rules", []), list):
        return False
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in summary.values()):
        return False
    findings = doc.get("findings")
    return (
        isinstance(doc.get("targets", []), list)
        and isinstance(findings, list)
        and all(
            isinstance(f, dict)
            and isinstance(f.get("rule"), str)
            and isinstance(f.get("target"), str)
            and opt(f.get("message"), str)
            and f.get("status") in STATUSES
            and f.get("severity") in SEVERITY_RANK
            for f in findings
        )
    )


def import_history(history: Any, entries: list[dict[str, Any]]) -> list[str]:
    """Put the ConfigMap's runs into the local history database (each once); their ids, oldest first."""
    have = {r["id"] for r in history.db.query("select id from scans")}
    ids = []
    for e in entries:
        sid = e["scan"]["id"]
        ids.append(sid)
        if sid in have:
            continue
        sc = e["scan"]
        rep = {
            **e,
            "tool": {"version": "?", **e.get("tool", {})},
            "lang": e.get("lang") or "en",
            "summary": e.get("summary", {}),
            "targets": e.get("targets", []),
            "scan": {
                **sc,
                "started_at": sc.get("started_at") or "",
                "finished_at": sc.get("finished_at") or sc.get("started_at") or "",
                "duration_s": sc.get("duration_s"),
                "inventory": sc.get("inventory") or f"cluster-history:{sid}",
            },
            "findings": [{**f, "observed": None, "expected": None} for f in e["findings"]],
        }
        history.save(rep)
    return ids
