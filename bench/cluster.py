#!/usr/bin/env python3
"""Benchmark: `bkdoctor scan` of a big cluster through a real kube-apiserver, against the floor.

Starts a real kube-apiserver 1.20 + etcd on loopback (tests/kube/apiserver.py) and a stand-in kubelet that serves
container logs (every Node's InternalIP is 127.0.0.1: the API server never dials anything else), loads a
generated BlueKing cluster (at --scale 1: 200 Nodes, 5,000 Pods of which ~6% failing, 20,000 Events, 300 helm
release Secrets with 20-50 KB manifests, 500 Services, 400 PVs, 150 PVCs, 100 Jobs, plus fixtures/cluster/
base.yaml), then times, median of --repeat runs each, side by side:

  floor      the same lists bkdoctor makes (nodes, pods, services, events, pvs, pvcs, storageclasses, jobs,
             secrets owner=helm, configmaps by name; limit 500 + continue), raw JSON through the kubernetes
             ApiClient and json.loads, no model classes: sequentially, and with 4 threads like bkdoctor
  floor+logs the 4-thread floor plus the container logs bkdoctor reads (failing pods, tail 200)
  cli        `bkdoctor scan --no-history --kubeconfig KC --rule cluster --json <tmp>`, a subprocess (wall, CPU,
             peak RSS). No inventory: bkdoctor falls back to this host, whose probe is empty with --rule cluster
  engine     `engine.scan(...)` in this process (cluster rules, no hosts, no report)

The cluster is loaded in two halves (the second in namespaces and names of its own). Memory: peak RSS of the CLI
with half and with all the objects (unless --no-growth), and, per kind, what bkdoctor keeps (tracemalloc) ->
MB per 1,000 pods / events and per 100 helm releases.
Writes bench/out/cluster-<timestamp>.json.

Usage: python3 bench/cluster.py [--scale 1] [--repeat 5] [--no-growth] [--serve]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from benchutil import run_child  # noqa: E402

GOALS = {"scan_over_floor": 1.3, "peak_rss_mb": 250}  # issue 16
PAGE = 500
LOG_TAIL = 200
CONFIGMAP_NAMES = ("coredns", "ingress-nginx-controller", "bkpaas3-apiserver-general-env", "bk-user-api-general-envs")
DOMAIN = "bkce7.bktencent.com"
NOW = dt.datetime(2026, 11, 26, 8, 0, 0, tzinfo=dt.timezone.utc)


def med(xs):
    return statistics.median(xs) if xs else None


def ts(minutes_ago: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- the generated cluster

PLATFORM = [  # (release, namespace, [deployments])
    (
        "bk-paas",
        "blueking",
        [
            "bkpaas3-apiserver-web",
            "bkpaas3-apiserver-worker",
            "bkpaas3-engine-web",
            "bkpaas3-webfe-web",
            "bkpaas3-svc-mysql-web",
        ],
    ),
    (
        "bk-job",
        "blueking",
        [
            "bk-job-gateway",
            "bk-job-manage",
            "bk-job-execute",
            "bk-job-crontab",
            "bk-job-logsvr",
            "bk-job-backup",
            "bk-job-analysis",
            "bk-job-file-gateway",
        ],
    ),
    (
        "bk-cmdb",
        "blueking",
        [
            "bk-cmdb-adminserver",
            "bk-cmdb-apiserver",
            "bk-cmdb-coreservice",
            "bk-cmdb-webserver",
            "bk-cmdb-hostserver",
            "bk-cmdb-toposerver",
            "bk-cmdb-eventserver",
        ],
    ),
    ("bk-user", "blueking", ["bk-user-api-web", "bk-user-saas-web"]),
    ("bk-iam", "blueking", ["bk-iam-web", "bk-iam-saas-web"]),
    ("bk-repo", "blueking", ["bk-repo-gateway", "bk-repo-repository", "bk-repo-generic", "bk-repo-auth"]),
    ("bk-apigateway", "blueking", ["bk-apigateway-apigateway", "bk-apigateway-dashboard", "bk-apigateway-bk-esb"]),
    (
        "bk-monitor",
        "blueking",
        [
            "bk-monitor-api",
            "bk-monitor-web",
            "bk-monitor-worker",
            "bk-monitor-transfer",
            "bk-monitor-influxdb-proxy",
            "bk-monitor-alarm-nodata",
        ],
    ),
    ("bk-log-search", "blueking", ["bk-log-search-api", "bk-log-search-web", "bk-log-search-worker"]),
    ("bk-gse", "blueking", ["bk-gse-data", "bk-gse-task", "bk-gse-cluster", "bk-gse-file"]),
    ("bk-nodeman", "blueking", ["bk-nodeman-backend-api", "bk-nodeman-saas-web", "bk-nodeman-backend-celery"]),
    ("bk-console", "blueking", ["bk-console-web"]),
    ("bk-ssm", "blueking", ["bk-ssm-web"]),
    ("bk-auth", "blueking", ["bk-auth-web"]),
    (
        "bcs-services-stack",
        "bcs-system",
        [
            "bcs-cluster-manager",
            "bcs-project-manager",
            "bcs-storage",
            "bcs-user-manager",
            "bcs-ui",
            "bcs-helm-manager",
            "bcs-api-gateway",
        ],
    ),
    ("bk-elastic", "blueking", ["bk-elastic-elasticsearch-master"]),
    ("bk-mysql", "blueking", ["bk-mysql-mysql"]),
    ("bk-redis", "blueking", ["bk-redis-master", "bk-redis-replicas"]),
    ("bk-mongodb", "blueking", ["bk-mongodb"]),
    ("bk-rabbitmq", "blueking", ["bk-rabbitmq"]),
    ("bk-zookeeper", "blueking", ["bk-zookeeper"]),
    ("bk-kafka", "blueking", ["bk-kafka"]),
    ("bk-consul", "blueking", ["bk-consul-server"]),
    ("bk-etcd", "blueking", ["bk-etcd"]),
    ("bk-influxdb", "blueking", ["bk-influxdb"]),
    ("bkmonitor-operator", "bkmonitor-operator", ["bkmonitor-operator", "bkmonitorbeat", "bk-collector"]),
    ("bk-ingress-nginx", "blueking", ["ingress-nginx-defaultbackend"]),
    ("bk-sops", "blueking", ["bk-sops-web", "bk-sops-api", "bk-sops-celery"]),
    ("bk-itsm", "blueking", ["bk-itsm-web"]),
    ("bk-lesscode", "blueking", ["bk-lesscode-web"]),
]
SAAS = [
    "bk-sops",
    "bk-itsm",
    "bk-lesscode",
    "bk-dbm",
    "bk-flow",
    "bk-notice",
    "bk-vision",
    "bk-audit",
    "bk-bscp",
    "bk-ci",
    "bk-chatops",
    "bk-cmsi",
    "bk-gsekit",
    "bk-nocode",
    "bk-sdk",
    "bk-dataview",
    "bk-log-helper",
    "bk-apm",
    "bk-alert",
    "bk-dashboard",
]
KUBE_SYSTEM = [
    "coredns",
    "kube-proxy",
    "kube-flannel-ds",
    "metrics-server",
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    "etcd",
    "localpv-provisioner",
]
REG = f"docker.{DOMAIN}"


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Cluster:
    """Objects as the API would hold them (dicts with status), in load order, plus the logs the stand-in kubelet
    serves. `copy` gives a second, disjoint copy (other namespaces and names) for the 2x memory run."""

    def __init__(self, scale: float, seed: int = 7, copy: int = 0, kubelet_port: int = 10250) -> None:
        self.rng = random.Random(seed + copy)
        self.scale = scale
        self.copy = copy
        self.tag = "" if copy == 0 else f"c{copy}-"
        self.kubelet_port = kubelet_port
        self.namespaces: list[dict] = []
        self.first: list[dict] = []  # cluster-scoped objects other things refer to (storage classes, nodes, PVs)
        self.objs: list[dict] = []
        self.logs: dict[str, str] = {}  # "ns/pod/container/prev" -> text
        self.counts: dict[str, int] = {}
        self.failing_pods = 0
        self._build()

    def n(self, x: int) -> int:
        return max(1, int(round(x * self.scale)))

    # -- pieces ----------------------------------------------------------------------------------------------
    def node(self, name: str, master: bool) -> dict:
        rng = self.rng
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
        }
        if master:
            labels["node-role.kubernetes.io/master"] = ""
        images = [
            {
                "names": [
                    f"{REG}/blueking/{d}@sha256:{_hex(rng, 64)}",
                    f"{REG}/blueking/{d}:v{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
                ],
                "sizeBytes": rng.randint(40, 900) * 1048576,
            }
            for _, _, deps in rng.sample(PLATFORM, 12)
            for d in deps[:3]
        ]
        cond = [
            (t, "False", r, m)
            for t, r, m in (
                ("NetworkUnavailable", "FlannelIsUp", "Flannel is running on this node"),
                ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        cond.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    "flannel.alpha.coreos.com/backend-type": "vxlan",
                    "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                    "flannel.alpha.coreos.com/public-ip": "127.0.0.1",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "podCIDR": f"10.244.{rng.randint(0, 255)}.0/24",
                "taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}] if master else None,
            },
            "status": {
                "capacity": {
                    "cpu": "16",
                    "memory": "65808364Ki",
                    "pods": "110",
                    "ephemeral-storage": "524032000Ki",
                    "hugepages-2Mi": "0",
                },
                "allocatable": {
                    "cpu": "16",
                    "memory": "65705964Ki",
                    "pods": "110",
                    "ephemeral-storage": "482947890401",
                    "hugepages-2Mi": "0",
                },
                "conditions": [
                    {
                        "type": t,
                        "status": s,
                        "reason": r,
                        "message": m,
                        "lastHeartbeatTime": ts(1),
                        "lastTransitionTime": ts(60 * 24 * 30),
                    }
                    for t, s, r, m in cond
                ],
                # the stand-in kubelet: the API server dials nothing but loopback
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": {
                    "machineID": _hex(rng, 32),
                    "systemUUID": _hex(rng, 32),
                    "bootID": _hex(rng, 32),
                    "kernelVersion": "3.10.0-1160.el7.x86_64",
                    "osImage": "CentOS Linux 7 (Core)",
                    "containerRuntimeVersion": "docker://19.3.9",
                    "kubeletVersion": "v1.20.11",
                    "kubeProxyVersion": "v1.20.11",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "images": images,
            },
        }

    def pod(self, ns: str, app: str, instance: str, node: str, state: str) -> dict:
        rng = self.rng
        name = f"{app}-{_hex(rng, 9)[:9]}-{_suffix(rng)}"
        image = f"{REG}/blueking/{app}:v1.{rng.randint(0, 9)}.{rng.randint(0, 30)}"
        containers = [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/bash", "-c"],
                "args": [f"exec /app/bin/start.sh --config /app/conf/{app}.yaml"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": k, "value": v}
                    for k, v in (
                        ("BK_DOMAIN", DOMAIN),
                        ("BK_PAAS_URL", f"http://bkpaas.{DOMAIN}"),
                        ("BKKRILL_ENCRYPT_HANDLER", "SM4CTR"),
                        ("DJANGO_SETTINGS_MODULE", "settings"),
                        ("BK_APP_CODE", instance),
                        ("LOG_LEVEL", "INFO"),
                        ("POD_NAME", name),
                        ("TZ", "Asia/Shanghai"),
                    )
                ]
                + [
                    {
                        "name": "BK_APP_SECRET",
                        "valueFrom": {"secretKeyRef": {"name": f"{instance}-secret", "key": "secret"}},
                    }
                ],
                "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "100m", "memory": "256Mi"}},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/app/conf"},
                    {"name": "logs", "mountPath": "/app/logs"},
                ],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 30,
                    "timeoutSeconds": 3,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 5,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
                    "timeoutSeconds": 3,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        ]
        if rng.random() < 0.2:
            containers.append(
                {
                    "name": "log-agent",
                    "image": f"{REG}/blueking/bkunifylogbeat:7.2.1",
                    "volumeMounts": [{"name": "logs", "mountPath": "/app/logs"}],
                    "resources": {"limits": {"cpu": "200m", "memory": "256Mi"}},
                }
            )
        started = rng.uniform(60, 60 * 24 * 20)
        cs = []
        phase, ready = "Running", True
        conds_extra = None
        for c in containers:
            st: dict[str, Any] = {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"docker-pullable://{c['image']}@sha256:{_hex(rng, 64)}",
                "containerID": f"docker://{_hex(rng, 64)}",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": ts(started)}},
                "lastState": {},
            }
            if c["name"] == "main" and state != "ok":
                ready = False
                st.update(ready=False, started=False)
                if state == "crashloop":
                    st["restartCount"] = rng.randint(5, 300)
                    st["state"] = {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off 5m0s restarting failed container=main pod={name}_{ns}({_hex(rng, 8)})",
                        }
                    }
                    st["lastState"] = {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": ts(7),
                            "finishedAt": ts(6),
                            "containerID": f"docker://{_hex(rng, 64)}",
                        }
                    }
                elif state == "imagepull":
                    st.pop("containerID")
                    st["imageID"] = ""
                    st["state"] = {
                        "waiting": {
                            "reason": rng.choice(["ImagePullBackOff", "ErrImagePull"]),
                            "message": f'Back-off pulling image "{image}"',
                        }
                    }
                elif state == "oom":
                    st["restartCount"] = rng.randint(1, 40)
                    st["lastState"] = {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "OOMKilled",
                            "startedAt": ts(30),
                            "finishedAt": ts(29),
                            "containerID": f"docker://{_hex(rng, 64)}",
                        }
                    }
                    st.update(ready=False, started=True)
                elif state == "config":
                    st["state"] = {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": f'secret "{instance}-secret" not found',
                        }
                    }
                elif state == "notready":
                    st.update(started=True)
                elif state == "pending":
                    phase = "Pending"
                    st = None
                    conds_extra = {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": f"0/{self.counts.get('nodes', 200)} nodes are available: "
                        f"{self.counts.get('nodes', 200)} Insufficient memory.",
                        "lastTransitionTime": ts(30),
                    }
            if st is not None:
                cs.append(st)
        rs = f"{app}-{_hex(rng, 9)[:9]}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {
                    "app.kubernetes.io/name": app,
                    "app.kubernetes.io/instance": instance,
                    "app.kubernetes.io/managed-by": "Helm",
                    "pod-template-hash": rs.rsplit("-", 1)[1],
                },
                "annotations": {"checksum/config": _hex(rng, 64), "checksum/secret": _hex(rng, 64)},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": rs,
                        "uid": f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "containers": containers,
                "volumes": [
                    {"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
                    {"name": "logs", "emptyDir": {}},
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "enableServiceLinks": True,
                "tolerations": [
                    {
                        "key": "node.kubernetes.io/not-ready",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    }
                ],
            },
            "status": {
                "phase": phase,
                "qosClass": "Burstable",
                "startTime": ts(started),
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": ts(started)},
                    {"type": "Ready", "status": str(ready), "lastTransitionTime": ts(started)},
                    {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": ts(started)},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(started)},
                ],
            },
        }
        if state != "pending":
            pod["spec"]["nodeName"] = node
            pod["status"].update(
                hostIP="127.0.0.1", podIP=f"10.244.{rng.randint(0, 255)}.{rng.randint(2, 254)}", containerStatuses=cs
            )
        else:
            pod["status"]["conditions"] = [conds_extra]
        return pod

    def event(
        self,
        ns: str,
        kind: str,
        name: str,
        reason: str,
        message: str,
        etype: str = "Normal",
        node: str | None = None,
        count: int = 1,
        field: str | None = None,
    ) -> dict:
        rng = self.rng
        first = rng.uniform(5, 60 * 24)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{_hex(rng, 16)}", "namespace": ns},
            "involvedObject": {
                "kind": kind,
                "namespace": ns if kind != "Node" else None,
                "name": name,
                "apiVersion": "v1",
                "uid": f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
                **({"fieldPath": field} if field else {}),
            },
            "reason": reason,
            "message": message,
            "type": etype,
            "count": count,
            "source": {
                "component": "kubelet" if kind != "PersistentVolumeClaim" else "persistentvolume-controller",
                **({"host": node} if node else {}),
            },
            "firstTimestamp": ts(first),
            "lastTimestamp": ts(first * rng.uniform(0, 1)),
            "reportingComponent": "",
            "reportingInstance": "",
        }

    def manifest(self, release: str, deps: list[str], size: int) -> str:
        """A rendered chart of about `size` bytes: Deployments, Services, ConfigMaps with hashes and settings."""
        rng = self.rng
        parts, total, i = [], 0, 0
        while total < size:
            d = deps[i % len(deps)] + (f"-{i // len(deps)}" if i >= len(deps) else "")
            i += 1
            conf = "\n".join(
                f'    {k}_{_hex(rng, 4)}: "{_hex(rng, rng.randint(8, 40))}"'
                for k in rng.sample(
                    [
                        "db_host",
                        "db_port",
                        "redis_url",
                        "mq_url",
                        "secret_key",
                        "token",
                        "endpoint",
                        "timeout",
                        "workers",
                        "log_level",
                        "cache_ttl",
                        "feature_flag",
                    ],
                    8,
                )
            )
            doc = f"""---
# Source: {release}/templates/{d}/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {d}
  labels:
    app.kubernetes.io/name: {d}
    app.kubernetes.io/instance: {release}
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: {release}-1.{rng.randint(0, 9)}.{rng.randint(0, 30)}
spec:
  replicas: {rng.randint(1, 3)}
  selector:
    matchLabels:
      app.kubernetes.io/name: {d}
      app.kubernetes.io/instance: {release}
  template:
    metadata:
      annotations:
        checksum/config: {_hex(rng, 64)}
        checksum/secret: {_hex(rng, 64)}
      labels:
        app.kubernetes.io/name: {d}
        app.kubernetes.io/instance: {release}
    spec:
      containers:
        - name: main
          image: "{REG}/blueking/{d}:v1.{rng.randint(0, 9)}.{rng.randint(0, 30)}"
          imagePullPolicy: IfNotPresent
          command: ["/bin/bash", "-c"]
          args: ["exec /app/bin/start.sh --config /app/conf/{d}.yaml"]
          env:
            - name: BK_DOMAIN
              value: "{DOMAIN}"
            - name: BK_APP_CODE
              value: "{release}"
          ports:
            - name: http
              containerPort: 8080
          resources:
            limits: {{cpu: "2", memory: 2Gi}}
            requests: {{cpu: 100m, memory: 256Mi}}
          livenessProbe:
            httpGet: {{path: /healthz, port: http}}
          volumeMounts:
            - {{name: config, mountPath: /app/conf}}
      volumes:
        - name: config
          configMap:
            name: {d}-config
---
# Source: {release}/templates/{d}/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: {d}
spec:
  type: ClusterIP
  ports:
    - {{name: http, port: 80, targetPort: http}}
  selector:
    app.kubernetes.io/name: {d}
---
# Source: {release}/templates/{d}/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: {d}-config
data:
  {d}.yaml: |
{conf}
"""
            parts.append(doc)
            total += len(doc)
        return "".join(parts)

    # -- the whole cluster -----------------------------------------------------------------------------------
    def _build(self) -> None:
        rng, tag = self.rng, self.tag
        n_nodes, n_pods, n_events = self.n(200), self.n(5000), self.n(20000)
        n_helm, n_svc, n_pv, n_pvc, n_jobs = self.n(300), self.n(500), self.n(400), self.n(150), self.n(100)
        self.counts["nodes"] = n_nodes

        # the base state (ingress, CoreDNS, storage class, PVs, helm releases of the base phase): first copy only
        base_helm: list[dict] = []
        if self.copy == 0:
            from clusterstate import FIXTURES, helm_release_secret, load_docs

            _, docs = load_docs(FIXTURES / "base.yaml")
            for d in docs:
                if d["kind"] == "HelmRelease":
                    base_helm.append(helm_release_secret(d))
                elif d["kind"] == "Node":
                    continue  # the generated nodes replace them (their InternalIPs are not loopback)
                elif d["kind"] in ("StorageClass", "PersistentVolume"):
                    self.first.append(d)
                elif d["kind"] == "Namespace":
                    continue
                else:
                    self.objs.append(d)
            for name in CONFIGMAP_NAMES[1:]:
                self.objs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": "blueking"},
                        "data": {f"key{i}": _hex(rng, 32) for i in range(20)},
                    }
                )

        nodes = [f"{tag}{'master' if i < 3 else 'node'}-10-{i // 250}-{i % 250}" for i in range(n_nodes)]
        nodes_obj = [self.node(nm, i < 3) for i, nm in enumerate(nodes)]
        if self.copy == 0:  # the base pods sit on these two
            nodes_obj += [self.node("node-10-0-0-5", False), self.node("node-10-0-0-6", False)]
        self.first += nodes_obj

        # namespaces: the platform's, kube-system, and one per SaaS module (all prefixed in a second copy)
        saas_ns = [f"{tag}bkapp-{s}-{env}" for s in SAAS for env in ("stag", "prod")]
        plat_ns = sorted({tag + ns for _, ns, _ in PLATFORM})
        kube_ns = tag + "kube-system"
        for ns in plat_ns + saas_ns + ([kube_ns] if tag else []):
            self.namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        apps = (
            [(tag + ns, rel, d) for rel, ns, deps in PLATFORM for d in deps]
            + [
                (ns, ns[len(tag) + 6 :].rsplit("-", 1)[0], f"{ns[len(tag) + 6 :].rsplit('-', 1)[0]}-{p}")
                for ns in saas_ns
                for p in ("web", "celery", "beat")
            ]
            + [(kube_ns, k, k) for k in KUBE_SYSTEM]
        )

        # pods: ~6% failing, in realistic proportions
        failing = {
            "crashloop": 0.022,
            "imagepull": 0.014,
            "oom": 0.006,
            "config": 0.004,
            "notready": 0.008,
            "pending": 0.006,
        }
        pods = []
        for i in range(n_pods):
            ns, inst, app = apps[i % len(apps)]
            x, state = rng.random(), "ok"
            for st, p in failing.items():
                if x < p:
                    state = st
                    break
                x -= p
            pods.append((self.pod(ns, app, inst, nodes[rng.randrange(n_nodes)], state), state))
        self.failing_pods = sum(1 for _, s in pods if s != "ok")
        for p, st in pods:
            if st in ("crashloop", "oom"):
                ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
                lines = [
                    f"2026-11-26 07:{m:02d}:{s:02d},{_hex(rng, 3)} INFO [{p['metadata']['labels']['app.kubernetes.io/name']}] "
                    f"request_id={_hex(rng, 32)} handled GET /api/v1/{_hex(rng, 6)} in {rng.randint(1, 900)}ms"
                    for m in range(60)
                    for s in range(0, 60, 12)
                ][: LOG_TAIL + 100]
                tail = (
                    'Traceback (most recent call last):\n  File "/app/bin/start.py", line 42, in <module>\n'
                    "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on 'bk-mysql-mysql' (111)\")\n"
                )
                self.logs[f"{ns}/{name}/main/0"] = "\n".join(lines) + "\n" + tail
                self.logs[f"{ns}/{name}/main/1"] = "\n".join(lines[:50]) + "\n" + tail
        self.objs += [p for p, _ in pods]

        # events: per pod its lifecycle, per failing pod its warnings, the rest on nodes; up to n_events
        events: list[dict] = []
        for p, st in pods:
            md, spec = p["metadata"], p["spec"]
            ns, name, node = md["namespace"], md["name"], spec.get("nodeName")
            img = spec["containers"][0]["image"]
            f = "spec.containers{main}"
            if st == "pending":
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "FailedScheduling",
                        p["status"]["conditions"][0]["message"],
                        "Warning",
                        count=rng.randint(5, 500),
                    )
                )
                continue
            events.append(self.event(ns, "Pod", name, "Scheduled", f"Successfully assigned {ns}/{name} to {node}"))
            events.append(
                self.event(
                    ns, "Pod", name, "Pulled", f'Container image "{img}" already present on machine', node=node, field=f
                )
            )
            if st == "imagepull":
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "Failed",
                        f'Failed to pull image "{img}": rpc error: code = '
                        f"Unknown desc = Error response from daemon: manifest for {img} not found: "
                        f"manifest unknown: manifest unknown",
                        "Warning",
                        node,
                        rng.randint(3, 90),
                        f,
                    )
                )
                events.append(
                    self.event(ns, "Pod", name, "Failed", "Error: ErrImagePull", "Warning", node, rng.randint(3, 90), f)
                )
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "BackOff",
                        f'Back-off pulling image "{img}"',
                        "Normal",
                        node,
                        rng.randint(10, 900),
                        f,
                    )
                )
                events.append(
                    self.event(
                        ns, "Pod", name, "Failed", "Error: ImagePullBackOff", "Warning", node, rng.randint(10, 900), f
                    )
                )
                continue
            events.append(self.event(ns, "Pod", name, "Created", "Created container main", node=node, field=f))
            events.append(self.event(ns, "Pod", name, "Started", "Started container main", node=node, field=f))
            if st in ("crashloop", "oom"):
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "BackOff",
                        "Back-off restarting failed container",
                        "Warning",
                        node,
                        rng.randint(10, 3000),
                        f,
                    )
                )
            if st in ("notready", "crashloop") or rng.random() < 0.05:
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "Unhealthy",
                        'Readiness probe failed: Get "http://10.244.3.9:'
                        '8080/readyz": dial tcp 10.244.3.9:8080: connect: connection refused',
                        "Warning",
                        node,
                        rng.randint(1, 5000),
                        f,
                    )
                )
            if st == "config":
                events.append(
                    self.event(
                        ns,
                        "Pod",
                        name,
                        "Failed",
                        f'Error: secret "{md["labels"]["app.kubernetes.io/instance"]}-secret" not found',
                        "Warning",
                        node,
                        rng.randint(3, 90),
                        f,
                    )
                )
        i = 0
        while len(events) < n_events:  # node events fill up to the count (on a real cluster: a day of them)
            node = nodes[i % n_nodes]
            i += 1
            reason, msg, t = rng.choice(
                [
                    ("NodeHasSufficientMemory", f"Node {node} status is now: NodeHasSufficientMemory", "Normal"),
                    (
                        "ImageGCFailed",
                        "failed to garbage collect required amount of images. Wanted to free 5329235968 bytes, "
                        "but freed 0 bytes",
                        "Warning",
                    ),
                    ("Starting", "Starting kubelet.", "Normal"),
                    ("NodeReady", f"Node {node} status is now: NodeReady", "Normal"),
                    ("FreeDiskSpaceFailed", "failed to garbage collect required amount of images", "Warning"),
                ]
            )
            events.append(self.event("default", "Node", node, reason, msg, t, node, rng.randint(1, 50)))
        self.objs += events[:n_events]

        # services
        for i in range(n_svc):
            ns, inst, app = apps[i % len(apps)]
            self.objs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": f"{app}-{i // len(apps)}" if i >= len(apps) else app,
                        "namespace": ns,
                        "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": inst},
                    },
                    "spec": {
                        "type": "ClusterIP",
                        "selector": {"app.kubernetes.io/name": app},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                    },
                }
            )
        # local PVs (two per node) and claims
        for i in range(n_pv):
            node = nodes[i % n_nodes]
            self.first.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"{tag}local-pv-{i:04d}"},
                    "spec": {
                        "capacity": {"storage": "100Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": "local-storage",
                        "local": {"path": f"/mnt/blueking/vol{i // n_nodes + 1:02d}"},
                        "nodeAffinity": {
                            "required": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                                        ]
                                    }
                                ]
                            }
                        },
                    },
                    "status": {"phase": "Bound" if i < n_pvc else "Available"},
                }
            )
        for i in range(n_pvc):
            ns = plat_ns[i % len(plat_ns)]
            self.objs.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"data-{i:04d}", "namespace": ns},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "local-storage",
                        "resources": {"requests": {"storage": "50Gi"}},
                        "volumeName": f"{tag}local-pv-{i:04d}",
                    },
                    "status": {"phase": "Bound", "capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"]},
                }
            )
        # jobs (hooks and migrations, nearly all complete)
        for i in range(n_jobs):
            ns, inst, app = apps[i % len(apps)]
            ok = rng.random() > 0.05
            self.objs.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": f"{app}-migrate-{i}", "namespace": ns},
                    "spec": {
                        "backoffLimit": 6,
                        "template": {
                            "metadata": {"labels": {"job": f"{app}-migrate-{i}"}},
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "migrate",
                                        "image": f"{REG}/blueking/{app}:v1.0.0",
                                        "command": ["python", "manage.py", "migrate"],
                                    }
                                ],
                            },
                        },
                    },
                    "status": (
                        {
                            "succeeded": 1,
                            "startTime": ts(600),
                            "completionTime": ts(590),
                            "conditions": [
                                {
                                    "type": "Complete",
                                    "status": "True",
                                    "lastProbeTime": ts(590),
                                    "lastTransitionTime": ts(590),
                                }
                            ],
                        }
                        if ok
                        else {
                            "failed": 6,
                            "startTime": ts(600),
                            "conditions": [
                                {
                                    "type": "Failed",
                                    "status": "True",
                                    "reason": "BackoffLimitExceeded",
                                    "message": "Job has reached the specified backoff limit",
                                    "lastProbeTime": ts(500),
                                    "lastTransitionTime": ts(500),
                                }
                            ],
                        }
                    ),
                }
            )

        # helm releases: platform charts with several revisions, SaaS modules with one or two; to n_helm Secrets
        from clusterstate import helm_release_secret

        releases = [(rel, tag + ns, deps) for rel, ns, deps in PLATFORM] + [
            (ns[len(tag) + 6 :], ns, [f"{ns[len(tag) + 6 :]}-{p}" for p in ("web", "celery", "beat")]) for ns in saas_ns
        ]
        secrets: list[dict] = list(base_helm)
        taken = {(x["metadata"]["namespace"], x["metadata"]["labels"]["name"]) for x in base_helm}
        r = 0
        self.payload_bytes = 0
        while len(secrets) < n_helm:
            rel, ns, deps = releases[r % len(releases)]
            rel = rel if r < len(releases) else f"{rel}-{r // len(releases)}"
            r += 1
            if (ns, rel) in taken:
                continue  # a release of the base state
            revs = rng.choice([1, 1, 2, 3, 5, 8, 10]) if rel in {p[0] for p in PLATFORM} else rng.choice([1, 1, 2])
            revs = min(revs, n_helm - len(secrets))
            for v in range(1, revs + 1):
                latest = v == revs
                status = "deployed" if latest else "superseded"
                if latest and rng.random() < 0.01:
                    status = rng.choice(["failed", "pending-upgrade"])
                man = self.manifest(rel, deps, rng.randint(20_000, 50_000))
                self.payload_bytes += len(man)
                secrets.append(
                    helm_release_secret(
                        {
                            "metadata": {"name": rel, "namespace": ns},
                            "chart": rel,
                            "version": f"1.{v}.{rng.randint(0, 9)}",
                            "appVersion": f"1.{v}.0",
                            "status": status,
                            "revision": v,
                            "description": "Upgrade complete" if v > 1 else "Install complete",
                            "values": {
                                "global": {"bkDomain": DOMAIN, "imageRegistry": REG},
                                "replicaCount": rng.randint(1, 3),
                                "resources": {"limits": {"cpu": 2, "memory": "2Gi"}},
                            },
                            "manifest": man,
                        }
                    )
                )
        self.objs += secrets
        self.counts.update(
            pods=n_pods,
            events=len(events[:n_events]),
            helm_secrets=len(secrets),
            helm_releases=len({(s["metadata"]["namespace"], s["metadata"]["labels"]["name"]) for s in secrets}),
            services=n_svc + (2 if self.copy == 0 else 0),
            pvs=n_pv,
            pvcs=n_pvc,
            jobs=n_jobs,
            nodes=len(nodes_obj),
            failing_pods=self.failing_pods,
            logs=len(self.logs),
            secret_bytes=sum(len(s["data"]["release"]) for s in secrets),
        )


# ----------------------------------------------------------------------------- loading

from clusterstate import KINDS  # noqa: E402  (the same loader table the tests use)


def load(kube, cluster: Cluster, threads: int = 12) -> float:
    """POST every object (a thread pool of raw requests), PATCH its status through the status subresource."""
    from kube.fixtures import rest

    local = threading.local()
    clients = []
    lock = threading.Lock()

    def api():
        if not hasattr(local, "c"):
            local.c = kube.api_client()
            with lock:
                clients.append(local.c)
        return local.c

    def create(obj: dict) -> None:
        obj = dict(obj)
        kind = obj["kind"]
        coll, namespaced, has_status = KINDS[kind]
        md = obj["metadata"]
        path = coll.format(ns=md.get("namespace", "default")) if namespaced else coll
        status = obj.pop("status", None)
        taints = (obj.get("spec") or {}).get("taints") if kind == "Node" else None
        rest(api(), "POST", path, body=obj)
        if status is not None and has_status:
            rest(
                api(),
                "PATCH",
                f"{path}/{md['name']}/status",
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        if kind == "Node":  # no node lifecycle controller: drop the not-ready taint the admission added
            rest(
                api(),
                "PATCH",
                f"{path}/{md['name']}",
                body={"spec": {"taints": taints}},
                content_type="application/merge-patch+json",
            )

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=threads) as ex:
            for batch in (cluster.namespaces, cluster.first, cluster.objs):
                list(ex.map(create, batch, chunksize=16))
    finally:
        for c in clients:
            c.close()
    return time.monotonic() - t0


# ----------------------------------------------------------------------------- the floor


def floor_requests() -> list[tuple[str, dict]]:
    """(path, query) of every list bkdoctor makes, page by page left to the caller."""
    reqs = [
        ("/api/v1/nodes", {}),
        ("/api/v1/pods", {}),
        ("/api/v1/services", {}),
        ("/api/v1/events", {}),
        ("/api/v1/persistentvolumes", {}),
        ("/api/v1/persistentvolumeclaims", {}),
        ("/apis/storage.k8s.io/v1/storageclasses", {}),
        ("/apis/batch/v1/jobs", {}),
        ("/api/v1/secrets", {"labelSelector": "owner=helm"}),
    ]
    reqs += [("/api/v1/configmaps", {"fieldSelector": f"metadata.name={n}"}) for n in CONFIGMAP_NAMES]
    return reqs


def _get(api, path: str, query: dict, raw: bool = False):
    from urllib.parse import urlencode

    url = path + ("?" + urlencode(query) if query else "")
    resp = api.call_api(
        url,
        "GET",
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=(5, 60),
        header_params={"Accept": "application/json" if not raw else "*/*"},
    )
    return resp.data if raw else json.loads(resp.data)


def list_all(api, path: str, query: dict) -> int:
    n, cont = 0, None
    while True:
        q = dict(query, limit=PAGE)
        if cont:
            q["continue"] = cont
        data = _get(api, path, q)
        n += len(data.get("items") or [])
        cont = (data.get("metadata") or {}).get("continue")
        if not cont:
            return n


def failing_log_reqs(api) -> list[tuple[str, dict]]:
    """The log reads bkdoctor makes: failing pods (its own rule, bkdoctor.facts.k8s.pod_failing), first 100."""
    from bkdoctor.facts.k8s import container_statuses, pod_failing

    reqs = []
    cont = None
    pods = []
    while True:
        q = {"limit": PAGE, **({"continue": cont} if cont else {})}
        data = _get(api, "/api/v1/pods", q)
        pods += [p for p in data["items"] if pod_failing(p)]
        cont = data["metadata"].get("continue")
        if not cont:
            break
    for p in pods[:100]:
        md = p["metadata"]
        restarted = {cs.get("name") for cs in container_statuses(p) if cs.get("restartCount", 0) > 0}
        for c in p["spec"]["containers"]:
            for prev in (False, True) if c["name"] in restarted else (False,):
                q = {"container": c["name"], "tailLines": LOG_TAIL, **({"previous": "true"} if prev else {})}
                reqs.append((f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/log", q))
    return reqs


def bench_floor(api, threads: int, logs: list | None = None) -> dict:
    def one(req):
        path, q = req
        if path.endswith("/log"):
            try:
                return len(_get(api, path, q, raw=True))
            except Exception:
                return 0
        return list_all(api, path, q)

    reqs: list = floor_requests()
    if logs:
        reqs.append("logs")  # one task of its own, as in bkdoctor

    def task(r):
        return sum(one(x) for x in logs or []) if r == "logs" else one(r)

    c0, t0 = time.process_time(), time.perf_counter()
    _get(api, "/version", {})
    if threads == 1:
        out = [task(r) for r in reqs]
    else:
        with ThreadPoolExecutor(max_workers=threads) as ex:
            out = list(ex.map(task, reqs))
    out = out[: len(floor_requests())]
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "objects": sum(out)}


# ----------------------------------------------------------------------------- bkdoctor


def bench_cli(kubeconfig: str, out: Path, root: Path = ROOT) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "BKDOCTOR_DEBUG")}
    env["LANG"] = "C.UTF-8"
    # --json to a temp file, NOT /dev/null: bkdoctor writes reports atomically (temp file + rename), which as
    # root would replace the /dev/null device node with a regular file
    r = run_child(
        [
            sys.executable,
            "-m",
            "bkdoctor.cli",
            "scan",
            "--no-history",
            "--kubeconfig",
            kubeconfig,
            "--rule",
            "cluster",
            "--json",
            str(out),
        ],
        env=env,
        cwd=str(root),
    )
    if r["rc"] not in (0, 1):
        raise RuntimeError(f"bkdoctor scan exited {r['rc']}: {r['stderr']}")
    rep = json.loads(out.read_text())
    cl = [t for t in rep["targets"] if t["kind"] == "cluster"]
    if not cl or not cl[0]["reachable"]:
        raise RuntimeError(f"bkdoctor could not read the cluster: {cl}")
    r["statuses"] = {}
    for f in rep["findings"]:
        r["statuses"][f["status"]] = r["statuses"].get(f["status"], 0) + 1
    r["gather_s"] = cl[0]["gather_s"]
    r.pop("stderr")
    return r


class CountingFacts:
    """A ClusterFacts that counts its API requests by path (to see each kind is listed once)."""

    @staticmethod
    def make(access):
        from bkdoctor.facts.cluster import ClusterFacts

        class _F(ClusterFacts):
            def _get(self, path, query=None, *, raw=False):
                key = "pods/log" if path.endswith("/log") else path
                with _F.lock:
                    self.by_path[key] = self.by_path.get(key, 0) + 1
                return super()._get(path, query, raw=raw)

        _F.lock = threading.Lock()
        f = _F(access)
        f.by_path = {}
        return f


def bench_engine(kubeconfig: str) -> dict:
    from bkdoctor.facts.cluster import configure
    from bkdoctor.inputs.inventory import local_inventory
    from bkdoctor.scan import engine, loader

    inv = local_inventory(domain=DOMAIN)
    inv.hosts = []
    rules = loader.select(["cluster"], None)
    access = configure(kubeconfig)
    facts = CountingFacts.make(access)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        res = asyncio.run(engine.scan(inv, rules, cluster=access, cluster_facts=facts))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        access.close()
    st = [t for t in res.targets if t.kind == "cluster"][0]
    if not st.reachable:
        raise RuntimeError(f"engine.scan could not read the cluster: {st.error}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": dict(sorted(facts.by_path.items())),
        "gather_s": st.gather_s,
        "rules_s": wall - st.gather_s,
    }


def memory_by_kind(kubeconfig: str) -> dict:
    """What bkdoctor keeps per kind (tracemalloc: retained after the load, and the peak while loading)."""
    import tracemalloc

    from bkdoctor.facts.cluster import ClusterFacts, configure

    access = configure(kubeconfig)
    facts = ClusterFacts(access)
    out = {}
    tracemalloc.start()
    try:
        facts.get("version")
        for kind in (
            "nodes",
            "pods",
            "events",
            "helm_releases",
            "services",
            "pvs",
            "pvcs",
            "jobs",
            "configmaps",
            "storageclasses",
            "logs",
        ):
            facts._get("/version")  # the pooled connection drops the last page of the previous kind
            gc.collect()
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            v = facts.get(kind)
            peak = tracemalloc.get_traced_memory()[1]
            facts._get("/version")  # (and drops this kind's last page, which is garbage by now)
            gc.collect()
            cur = tracemalloc.get_traced_memory()[0]
            out[kind] = {"items": len(v), "retained_mb": (cur - before) / 2**20, "peak_mb": (peak - before) / 2**20}
    finally:
        tracemalloc.stop()
        access.close()
    return out


# ----------------------------------------------------------------------------- main


def nodelay_kubelet() -> None:
    """The stand-in kubelet (tests/kube/kubelet_logs.py) sends headers and body of a response apart; with Nagle on
    its sockets a log read of more than a few KB then waits ~40 ms for the API server's delayed ACK (measured:
    45 ms vs 2.5 ms). A real kubelet (Go) sets TCP_NODELAY; so do we, in this process only."""
    import socket

    import kube.kubelet_logs as kl

    if getattr(kl._Server, "_bench_nodelay", False):
        return
    orig = kl._Server.finish_request

    def finish_request(self, request, client_address):
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return orig(self, request, client_address)

    kl._Server.finish_request = finish_request
    kl._Server._bench_nodelay = True


def _sigterm(*_):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="object counts x this (1: 200 nodes, 5,000 pods, ...)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement; medians reported")
    ap.add_argument("--no-growth", action="store_true", help="skip the measurements at half the objects")
    ap.add_argument("--threads", type=int, default=12, help="loader threads")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="load the cluster (both halves), print its kubeconfig and wait until Ctrl-C or SIGTERM (to profile "
        "a scan against it); measures nothing",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also run the CLI from this checkout (e.g. `git archive <rev> | tar -x -C DIR`), side by side",
    )
    a = ap.parse_args()

    from kube.apiserver import KubeAPIServer

    why = KubeAPIServer.available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    from benchutil import compile_tree

    compile_tree(ROOT)  # as installed: no run pays for compiling the sources
    signal.signal(signal.SIGTERM, _sigterm)
    load0 = os.getloadavg()
    meta = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "scale": a.scale,
        "repeat": a.repeat,
        "loadavg_before": load0,
        "goals": GOALS,
        "page": PAGE,
    }
    print(
        f"# bkdoctor cluster scan through a real kube-apiserver: scale {a.scale}, repeat {a.repeat}, "
        f"{os.cpu_count()} CPUs, load {load0[0]:.2f}"
    )
    print(
        "# kube-apiserver and etcd run on this same machine: their CPU (JSON encoding of every list) is part of "
        "every number below"
    )
    if load0[0] > 0.5 * (os.cpu_count() or 1):
        print(f"# WARNING: the machine is busy (load {load0[0]:.2f}): numbers are noisy")
    work = Path(tempfile.mkdtemp(prefix="bkdbench-cluster-"))
    kube = KubeAPIServer()
    res: dict = {}
    t_start = time.monotonic()
    try:
        t0 = time.monotonic()
        kube.start()
        nodelay_kubelet()
        kubelet = kube.kubelet_log_server()
        meta["apiserver_start_s"] = time.monotonic() - t0
        kc = kube.kubeconfig
        print(f"# apiserver up in {meta['apiserver_start_s']:.1f}s")
        # The cluster is loaded in two halves (the second with its own namespaces and names): the memory growth is
        # measured between them, from half the objects to all of them, with no extra copy to load.
        halves, loads = [], []
        for copy in (0, 1):
            t0 = time.monotonic()
            c = Cluster(a.scale / 2, copy=copy, kubelet_port=kubelet.port)
            for k, text in c.logs.items():
                ns, pod, cont, prev = k.split("/")
                kubelet.set_log(ns, pod, cont, text, previous=prev == "1")
            gen = time.monotonic() - t0
            load_s = load(kube, c, a.threads)
            halves.append(c)
            loads.append(load_s)
            n_objs = len(c.objs) + len(c.first) + len(c.namespaces)
            print(
                f"# half {copy + 1}/2: generated in {gen:.1f}s, loaded {n_objs} objects in {load_s:.1f}s "
                f"({n_objs / load_s:.0f}/s; not measured)",
                flush=True,
            )
            if copy == 0 and not (a.no_growth or a.serve):
                half = {
                    "counts": dict(c.counts),
                    "cli": [bench_cli(kc, work / "r.json") for _ in range(max(1, min(a.repeat, 2)))],
                }
                half["engine"] = bench_engine(kc)
                half["memory_by_kind"] = memory_by_kind(kc)
                res["half"] = half
                print(
                    f"#   at half the objects: CLI {med([r['wall_s'] for r in half['cli']]):.2f}s, "
                    f"{max(r['maxrss_mb'] for r in half['cli']):.0f} MB",
                    flush=True,
                )
        counts = {k: sum(c.counts.get(k, 0) for c in halves) for k in halves[0].counts}
        payload = sum(c.payload_bytes for c in halves)
        meta.update(
            load_s=sum(loads),
            counts=counts,
            manifest_mb=payload / 2**20,
            objects=sum(len(c.objs) + len(c.first) + len(c.namespaces) for c in halves),
        )
        print(f"# {json.dumps(counts)}; helm manifests {payload / 2**20:.1f} MB; loaded in {sum(loads):.0f}s")
        if a.serve:
            print(f"# serving: bkdoctor scan --rule cluster --kubeconfig {kc}  (Ctrl-C or SIGTERM stops)", flush=True)
            while True:
                time.sleep(3600)

        api = kube.api_client()
        try:
            logs = failing_log_reqs(api)
            meta["log_requests"] = len(logs)
            # warm up: the API server's first list of a kind is slower; this process's imports
            bench_floor(api, 4, logs)
            bench_engine(kc)
            runs: dict[str, list] = {"floor1": [], "floor4": [], "floor4logs": [], "cli": [], "engine": []}
            if a.baseline:
                runs["cli_baseline"] = []
            for i in range(a.repeat):
                if a.baseline:
                    runs["cli_baseline"].append(bench_cli(kc, work / "rb.json", a.baseline))
                runs["floor1"].append(bench_floor(api, 1))
                runs["floor4"].append(bench_floor(api, 4))
                runs["floor4logs"].append(bench_floor(api, 4, logs))
                runs["cli"].append(bench_cli(kc, work / "r.json"))
                runs["engine"].append(bench_engine(kc))
                print(
                    f"#   run {i + 1}/{a.repeat}: " + ", ".join(f"{k} {v[-1]['wall_s']:.2f}s" for k, v in runs.items()),
                    flush=True,
                )
            mem = memory_by_kind(kc)
        finally:
            api.close()
        res["full"] = {"counts": counts, "runs": runs, "memory_by_kind": mem}
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        kube.stop()  # the stand-in kubelet too
        shutil.rmtree(work, ignore_errors=True)
    meta["total_s"] = time.monotonic() - t_start
    meta["loadavg_after"] = os.getloadavg()
    summary = summarize(res)
    print_summary(summary, res)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cluster-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"meta": meta, "summary": summary, "results": res}, indent=1, default=str) + "\n")
    print(f"# whole run {meta['total_s']:.0f}s; wrote {path.relative_to(ROOT)}")
    return 0


def summarize(res: dict) -> dict:
    runs = res["full"]["runs"]
    m = {k: med([r["wall_s"] for r in v]) for k, v in runs.items()}
    cpu = {k: med([r["cpu_s"] for r in v]) for k, v in runs.items()}
    s = {
        "median_s": m,
        "cpu_s": cpu,
        "min_s": {k: min(r["wall_s"] for r in v) for k, v in runs.items()},
        "cli_maxrss_mb": max(r["maxrss_mb"] for r in runs["cli"]),
        "cli_over_floor4": m["cli"] / m["floor4"],
        "engine_over_floor4": m["engine"] / m["floor4"],
        "cli_over_floor4logs": m["cli"] / m["floor4logs"],
        "engine_over_floor4logs": m["engine"] / m["floor4logs"],
        "engine_requests": runs["engine"][-1]["requests"],
        "engine_gather_s": med([r["gather_s"] for r in runs["engine"]]),
        "engine_rules_s": med([r["rules_s"] for r in runs["engine"]]),
        "statuses": runs["cli"][-1]["statuses"],
    }
    mem = res["full"]["memory_by_kind"]
    s["mb_per_1000_pods"] = mem["pods"]["retained_mb"] / max(1, mem["pods"]["items"]) * 1000
    s["mb_per_1000_events"] = mem["events"]["retained_mb"] / max(1, mem["events"]["items"]) * 1000
    s["mb_per_100_helm_releases"] = mem["helm_releases"]["retained_mb"] / max(1, mem["helm_releases"]["items"]) * 100
    s["helm_peak_mb"] = mem["helm_releases"]["peak_mb"]
    if "cli_baseline" in runs:
        s["cli_baseline_maxrss_mb"] = max(r["maxrss_mb"] for r in runs["cli_baseline"])
        s["cli_baseline_over_floor4logs"] = m["cli_baseline"] / m["floor4logs"]
        s["baseline_statuses_equal"] = runs["cli_baseline"][-1]["statuses"] == runs["cli"][-1]["statuses"]
    if "half" in res:
        h = res["half"]
        rss_h, rss_f = med([r["maxrss_mb"] for r in h["cli"]]), med([r["maxrss_mb"] for r in runs["cli"]])
        pods_h, pods_f = h["memory_by_kind"]["pods"]["items"], mem["pods"]["items"]
        rel_h, rel_f = h["memory_by_kind"]["helm_releases"]["items"], mem["helm_releases"]["items"]
        kept_h = sum(v["retained_mb"] for v in h["memory_by_kind"].values())
        kept_f = sum(v["retained_mb"] for v in mem.values())
        s["growth"] = {
            "cli_rss_half_mb": rss_h,
            "cli_rss_full_mb": rss_f,
            "rss_ratio": rss_f / rss_h,
            "cli_s_half": med([r["wall_s"] for r in h["cli"]]),
            "cli_s_full": m["cli"],
            "engine_s_half": h["engine"]["wall_s"],
            "engine_requests_half": h["engine"]["requests"],
            # every kind doubles together: the RSS slope per 1,000 pods carries the events etc. that come with them
            "cli_rss_mb_per_1000_pods_with_the_rest": (rss_f - rss_h) / max(1, pods_f - pods_h) * 1000,
            "kept_mb_half": kept_h,
            "kept_mb_full": kept_f,
            "pods_kept_mb_per_1000": (
                (mem["pods"]["retained_mb"] - h["memory_by_kind"]["pods"]["retained_mb"])
                / max(1, pods_f - pods_h)
                * 1000
            ),
            "helm_kept_mb_per_100": (
                (mem["helm_releases"]["retained_mb"] - h["memory_by_kind"]["helm_releases"]["retained_mb"])
                / max(1, rel_f - rel_h)
                * 100
            ),
            "helm_peak_mb_half": h["memory_by_kind"]["helm_releases"]["peak_mb"],
            "helm_peak_mb_full": s["helm_peak_mb"],
        }
    return s


def print_summary(s: dict, res: dict) -> None:
    runs = res["full"]["runs"]
    labels = {
        "floor1": "floor: raw lists, sequential",
        "floor4": "floor: raw lists, 4 threads",
        "floor4logs": "floor: 4 threads + pod logs",
        "cli": "bkdoctor scan --rule cluster",
        "engine": "engine.scan in-process",
        "cli_baseline": "--baseline: bkdoctor scan",
    }
    labels = {k: v for k, v in labels.items() if k in runs}
    counts = res["full"]["counts"]
    print(
        f"\ncluster: {counts['nodes']} nodes, {counts['pods']} pods ({counts['failing_pods']} failing), "
        f"{counts['events']} events, {counts['helm_secrets']} helm Secrets ({counts['helm_releases']} releases), "
        f"{counts['services']} services, {counts['pvs']} PVs (median of the runs)"
    )
    print(f"  {'what':<30} {'median':>8} {'min':>8} {'runs':>4} {'CPU':>8} {'peak RSS':>9} {'x floor4':>8}")
    for k, label in labels.items():
        rss = max((r.get("maxrss_mb") or 0 for r in runs[k]), default=0)
        print(
            f"  {label:<30} {s['median_s'][k]:>7.2f}s {s['min_s'][k]:>7.2f}s {len(runs[k]):>4} {s['cpu_s'][k]:>7.2f}s "
            f"{(f'{rss:.0f} MB' if rss else '-'):>9} {s['median_s'][k] / s['median_s']['floor4']:>7.2f}x"
        )
    print("  (CPU: of the command, or of this process for the in-process rows; the API server's is not in it)")

    def verdict(ok):
        return "ok" if ok else "MISSED"

    g = GOALS
    print(
        f"  scan / floor (4 threads)     CLI {s['cli_over_floor4']:.2f}x, engine {s['engine_over_floor4']:.2f}x   "
        f"; against the "
        f"floor with the same log reads: CLI {s['cli_over_floor4logs']:.2f}x, engine {s['engine_over_floor4logs']:.2f}x "
        f"(goal <= {g['scan_over_floor']}x: {verdict(s['cli_over_floor4logs'] <= g['scan_over_floor'])})"
    )
    print(
        f"  engine.scan: gather {s['engine_gather_s']:.2f}s, rules {s['engine_rules_s']:.2f}s; API requests "
        f"{json.dumps(s['engine_requests'])}"
    )
    print(
        f"  bkdoctor peak RSS            {s['cli_maxrss_mb']:.0f} MB   (goal < {g['peak_rss_mb']}: "
        f"{verdict(s['cli_maxrss_mb'] < g['peak_rss_mb'])})"
    )
    if "cli_baseline_maxrss_mb" in s:
        print(
            f"  --baseline CLI               {s['cli_baseline_maxrss_mb']:.0f} MB peak, "
            f"{s['cli_baseline_over_floor4logs']:.2f}x the floor with logs; same finding statuses: "
            f"{s['baseline_statuses_equal']}"
        )
    mem = res["full"]["memory_by_kind"]
    print(
        "  kept by bkdoctor (tracemalloc): "
        + ", ".join(
            f"{k} {v['retained_mb']:.1f} MB (peak {v['peak_mb']:.1f})"
            for k, v in mem.items()
            if v["retained_mb"] >= 0.05 or v["peak_mb"] >= 0.5
        )
    )
    print(
        f"  -> {s['mb_per_1000_pods']:.1f} MB per 1,000 pods, {s['mb_per_1000_events']:.1f} MB per 1,000 events, "
        f"{s['mb_per_100_helm_releases']:.2f} MB per 100 helm releases kept (peak while reading releases "
        f"{s['helm_peak_mb']:.1f} MB)"
    )
    if "growth" in s:
        gr = s["growth"]
        print(
            f"  half -> all the objects: CLI peak RSS {gr['cli_rss_half_mb']:.0f} -> {gr['cli_rss_full_mb']:.0f} MB "
            f"(x{gr['rss_ratio']:.2f}; {gr['cli_rss_mb_per_1000_pods_with_the_rest']:.0f} MB per 1,000 pods with "
            f"their events and the rest), time {gr['cli_s_half']:.2f} -> {gr['cli_s_full']:.2f}s; kept "
            f"{gr['kept_mb_half']:.0f} -> {gr['kept_mb_full']:.0f} MB ({gr['pods_kept_mb_per_1000']:.1f} MB per 1,000 "
            f"pods, {gr['helm_kept_mb_per_100']:.2f} MB per 100 helm releases); helm peak {gr['helm_peak_mb_half']:.1f}"
            f" -> {gr['helm_peak_mb_full']:.1f} MB"
        )
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
