"""`bkdoctor cluster-job --schedule CRON` (issue 14): a CronJob with the same least-privilege RBAC, created in the real
kube-apiserver 1.20; its runs (the CronJob's container arguments, run under the ServiceAccount's own token: no
kubelet runs pods here) keep their history in a ConfigMap, and `bkdoctor diff --cluster-history` compares them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kube.fixtures import delete_namespace, kube_apiserver, rest  # noqa: F401
from test_incluster import sa_kubeconfig, status_code, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kube


def bk(*args, home: Path, timeout=180):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "BKDOCTOR_DEBUG", "KUBECONFIG"))}
    env.update({"HOME": str(home), "LANG": "C.UTF-8", "XDG_DATA_HOME": str(home / "xdg"), "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_render_needs_a_valid_schedule(tmp_path):
    for bad, why in (
        ("* * * *", "5 fields"),
        ("0 25 * * *", "outside 0-23"),
        ("0 0 * * funday", "not a value"),
        ("0;reboot * * * *", "not a cron field"),
    ):
        r = bk("cluster-job", "--schedule", bad, home=tmp_path)
        assert r.returncode == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = bk("cluster-job", "--schedule", "0 */6 * * *", "--mode", "daemonset", home=tmp_path)
    assert r.returncode == 2 and "--mode job" in r.stderr
    r = bk("cluster-job", "--schedule", "@daily", "--history", "pvc", "--storage-class", "local-storage", home=tmp_path)
    assert r.returncode == 0, r.stderr
    objs = [o for o in yaml.safe_load_all(r.stdout) if o]
    kinds = [o["kind"] for o in objs]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "CronJob",
    ]
    cj = objs[-1]
    assert cj["apiVersion"] == "batch/v1beta1" and cj["spec"]["schedule"] == "@daily"
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][-2:] == ["--db", "/var/lib/bkdoctor/history.db"]
    assert "--no-history" not in pod["containers"][0]["args"]
    assert {"name": "history", "persistentVolumeClaim": {"claimName": "bkdoctor-history"}} in pod["volumes"]
    assert objs[4]["spec"]["storageClassName"] == "local-storage"


def test_cronjob_created_under_its_rbac_and_diff_across_runs(kube_apiserver, tmp_path):
    from bkdoctor.incluster import job as incluster

    api = kube_apiserver.api_client()
    ns = f"bkd-cron-{os.getpid() % 100000}"
    node = f"{ns}-node"
    home = tmp_path / "home"
    (home / "xdg").mkdir(parents=True)
    try:
        r = bk(
            "cluster-job",
            "--schedule",
            "*/30 * * * *",
            "--namespace",
            ns,
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--apply",
            home=home,
        )
        assert r.returncode == 0, r.stderr
        assert "server-side dry run passed" in r.stderr and f"bkdoctor diff --cluster-history {ns}" in r.stderr
        # 1.20 serves CronJobs as batch/v1beta1 only: discovery picked it
        cj = rest(api, "GET", f"/apis/batch/v1beta1/namespaces/{ns}/cronjobs/bkdoctor-scan")
        assert cj["spec"]["schedule"] == "*/30 * * * *" and cj["spec"]["concurrencyPolicy"] == "Forbid"
        container = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][-2:] == ["--history-configmap", f"{ns}/bkdoctor-history"]
        assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == incluster.SERVICE_ACCOUNT
        # applying again changes it in place (server-side apply)
        r = bk(
            "cluster-job",
            "--schedule",
            "0 * * * *",
            "--namespace",
            ns,
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--apply",
            home=home,
        )
        assert r.returncode == 0, r.stderr
        assert (
            rest(api, "GET", f"/apis/batch/v1beta1/namespaces/{ns}/cronjobs/bkdoctor-scan")["spec"]["schedule"]
            == "0 * * * *"
        )

        sa = sa_kubeconfig(kube_apiserver, api, ns, tmp_path / "sa.kubeconfig")
        sa_api = __import__("bkdoctor.facts.cluster", fromlist=["configure"]).configure(sa).api_client
        hist = f"/api/v1/namespaces/{ns}/configmaps/bkdoctor-history"
        wait_for(lambda: status_code(sa_api, "GET", "/api/v1/nodes") == 200)

        def run_like_the_cronjob() -> dict:
            # the container's own arguments, with the ServiceAccount's token instead of the in-cluster config
            r = bk(*container["args"], "--kubeconfig", sa, home=home)
            assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
            return json.loads(r.stdout)

        rep1 = run_like_the_cronjob()
        # a node that is not Ready appears between the runs
        rest(api, "POST", "/api/v1/nodes", body={"metadata": {"name": node}})
        rest(
            api,
            "PATCH",
            f"/api/v1/nodes/{node}/status",
            body={
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "KubeletNotReady",
                            "message": "PLEG is not healthy",
                            "lastHeartbeatTime": "2026-11-26T08:00:00Z",
                            "lastTransitionTime": "2026-11-26T08:00:00Z",
                        }
                    ],
                    "nodeInfo": {"kubeletVersion": "v1.20.11", "containerRuntimeVersion": "docker://19.3.9"},
                }
            },
            content_type="application/merge-patch+json",
        )
        rep2 = run_like_the_cronjob()
        cm = rest(api, "GET", hist)
        assert sorted(cm["data"]) == sorted([f"{rep1['scan']['id']}.json", f"{rep2['scan']['id']}.json"])
        entry = json.loads(cm["data"][f"{rep2['scan']['id']}.json"])
        assert entry["summary"] == rep2["summary"] and len(entry["findings"]) == len(rep2["findings"])

        # RBAC: the ServiceAccount writes that ConfigMap only; reads no Secret; deletes nothing
        other = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other", "namespace": ns},
            "data": {"a": "1"},
        }
        rest(api, "POST", f"/api/v1/namespaces/{ns}/configmaps", body=other)
        assert status_code(sa_api, "PUT", f"/api/v1/namespaces/{ns}/configmaps/other", body=other) == 403
        assert status_code(sa_api, "GET", f"/api/v1/namespaces/{ns}/configmaps/other") == 403
        assert status_code(sa_api, "DELETE", hist) == 403
        assert status_code(sa_api, "GET", f"/api/v1/namespaces/{ns}/secrets") == 403
        assert (
            status_code(
                sa_api,
                "PUT",
                "/api/v1/namespaces/kube-system/configmaps/coredns",
                body={"metadata": {"name": "coredns"}},
            )
            == 403
        )

        # the operator compares the runs from the control machine
        db = str(tmp_path / "local.db")
        r = bk(
            "diff",
            "--cluster-history",
            ns,
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--db",
            db,
            "--json",
            "--html",
            str(tmp_path / "d.html"),
            home=home,
        )
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert (d["from"], d["to"]) == (rep1["scan"]["id"], rep2["scan"]["id"])
        s1 = {(f["rule"], f["target"]): f["status"] for f in rep1["findings"]}
        s2 = {(f["rule"], f["target"]): f["status"] for f in rep2["findings"]}
        moved = {(i["rule"], i["target"]) for k in ("new", "resolved", "changed") for i in d[k]}
        assert moved == {
            k
            for k in set(s1) | set(s2)
            if s1.get(k) != s2.get(k)
            and (s1.get(k) in ("warn", "fail", "error") or s2.get(k) in ("warn", "fail", "error"))
        }
        # node-ready fails in both runs (no Node at first; other tests' Nodes may exist too): still failing, with the
        # newer run's message, which names the Node that appeared
        items = [i for k in ("new", "changed", "still_failing") for i in d[k] if i["rule"] == "node-ready"]
        assert items and node in items[0]["message"], d
        assert node not in next(f["message"] for f in rep1["findings"] if f["rule"] == "node-ready")
        assert "node-ready" in (tmp_path / "d.html").read_text()
        # imported once: a second diff adds nothing to the local history
        r = bk(
            "diff", "--cluster-history", ns, "--kubeconfig", kube_apiserver.kubeconfig, "--db", db, "--json", home=home
        )
        assert r.returncode == 0 and json.loads(r.stdout) == d
        rows = json.loads(bk("history", "--db", db, "--json", home=home).stdout)
        assert sorted(x["id"] for x in rows) == sorted([rep1["scan"]["id"], rep2["scan"]["id"]])
    finally:
        for path in (
            f"/api/v1/nodes/{node}",
            f"/apis/rbac.authorization.k8s.io/v1/clusterroles/bkdoctor-reader-{ns}",
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/bkdoctor-reader-{ns}",
        ):
            try:
                rest(api, "DELETE", path)
            except Exception:
                pass
        delete_namespace(api, ns)
        api.close()


def test_runs_in_the_same_second_keep_their_order(monkeypatch):
    """Scan ids name the second only (then a random suffix): two CronJob runs in one second used to be ordered by the
    suffix, so the diff compared them backwards and the trimming could drop the newer one."""
    import json as _json

    from bkdoctor.incluster import cronjob
    from bkdoctor.incluster import job as incluster

    def entry(sid: str, started: str) -> dict:
        return {
            "schema": "bkdoctor/history-entry/v1",
            "tool": {},
            "lang": "en",
            "scan": {"id": sid, "started_at": started},
            "summary": {},
            "targets": [],
            "findings": [],
        }

    older = entry("20261201T165647Z-zzzzzz", "2026-12-01T16:56:47.100000+00:00")
    newer = entry("20261201T165647Z-aaaaaa", "2026-12-01T16:56:47.900000+00:00")
    store = {
        "data": {f"{e['scan']['id']}.json": _json.dumps(e) for e in (older, newer)},
        "metadata": {"resourceVersion": "1"},
    }
    sent = []

    def fake_request(access, method, path, body=None, content_type=None):
        if method == "GET":
            return store
        sent.append(body)
        return body

    monkeypatch.setattr(incluster, "_request", fake_request)
    runs = cronjob.read_configmap_history(None, "ns")
    assert [r["scan"]["id"] for r in runs] == [older["scan"]["id"], newer["scan"]["id"]]
    # keep=2: adding a third run drops the OLDEST (by start time), not the one whose suffix sorts first
    third = {**entry("20261201T165648Z-mmmmmm", "2026-12-01T16:56:48.000000+00:00"), "tool": {}}
    cronjob.save_to_configmap(None, "ns", {**third, "tool": {}, "lang": "en"}, keep=2)
    assert sorted(sent[-1]["data"]) == sorted([f"{newer['scan']['id']}.json", f"{third['scan']['id']}.json"])
