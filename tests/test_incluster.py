"""bkdoctor inside the cluster (`bkdoctor cluster-job`), against the real kube-apiserver 1.20 (RBAC enforced).

- the rendered manifests pass a server-side dry run and `--apply` creates them; a broken one changes nothing;
- the ServiceAccount's token (TokenRequest API) gets exactly what the ClusterRole promises: reads work, Secrets and
  unnamed ConfigMaps are forbidden, nothing can be written; the Job's own scan runs with it and agrees with an
  admin's; its report is read back from the Job pod's log; `--helm-secrets` grants `list` (only) on Secrets;
- DaemonSet mode: the probe is run exactly as the DaemonSet's container runs it (its command and env from the
  rendered manifest, in the node's PID/network/UTS namespaces, a private mount namespace with the node's / bound
  read-only, chroot, the container's capabilities only), its output served as the pod log by the stand-in kubelet,
  collected through the API, and the findings equal those of scanning the same hosts directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import Case, make_host
from kube.fixtures import delete_namespace, kube_apiserver, kube_kubelet, kube_ns, rest  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.incluster import job as incluster
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.model import BadInput
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport

pytestmark = pytest.mark.kube
ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bkce7.bktencent.com"
# planted on a node: its pod log must carry neither (bkdoctor/incluster/seal.py), its findings stay those of a direct scan
CIFS_PW, PROXY_PW = "S3cr3tCifsPW", "S3cr3tProxyPW"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """The DaemonSet's private keys (seal.new_key) in this test's directory, never root's ~/.local/share."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def cli(*args: str) -> tuple[int, str, str]:
    """`bkdoctor ARGS` in-process (click's runner): (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from bkdoctor.cli import cli as group

    r = CliRunner().invoke(group, list(args), catch_exceptions=True)  # click 8.2: stderr kept apart
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        if isinstance(r.exception, BadInput):
            return 2, r.stdout, str(r.exception)
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def scan_subprocess(args: list[str], kubeconfig: str, home: Path) -> subprocess.Popen:
    """Start `bkdoctor <args>` as the Job's container runs it, with a kubeconfig instead of the in-cluster config;
    stdout and stderr in one stream, as the pod log has them (`.communicate()` for the log)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "BKDOCTOR_DEBUG", "KUBECONFIG"))}
    env.update(
        {
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "XDG_DATA_HOME": str(home / "xdg"),
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bkdoctor.cli", *args, "--kubeconfig", kubeconfig],
        cwd=str(home),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def job_log(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=120)
    log = out.decode()
    assert proc.returncode in (0, 1), log[-2000:]  # 1: findings at or above --fail-on, not a failure to run
    return log


def sa_kubeconfig(kube_apiserver, api, namespace: str, path: Path) -> str:
    """A kubeconfig holding a TokenRequest token of the bkdoctor ServiceAccount (no token controller runs here)."""
    tr = rest(
        api,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{incluster.SERVICE_ACCOUNT}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )
    cfg = yaml.safe_load(Path(kube_apiserver.kubeconfig).read_text())
    cfg["users"] = [{"name": "bkdoctor-sa", "user": {"token": tr["status"]["token"]}}]
    cfg["contexts"][0]["context"]["user"] = "bkdoctor-sa"
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)
    return str(path)


def status_code(api, method: str, path: str, query=None, body=None) -> int:
    try:
        rest(api, method, path, query=query, body=body)
        return 200
    except Exception as e:
        if getattr(e, "status", None) is None:
            raise
        return e.status


def statuses(report: dict) -> dict[tuple[str, str], str]:
    return {(f["rule"], f["target"]): f["status"] for f in report["findings"]}


def wait_for(cond, timeout: float = 10.0) -> None:
    """RBAC changes reach the authorizer through an informer: a moment later."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


# -------------------------------------------------------------------------------------------------------------
def test_render_apply_and_rbac_is_enforced(kube_apiserver, kube_kubelet, tmp_path, report_validator):
    api = kube_apiserver.api_client()
    admin = configure(kube_apiserver.kubeconfig)
    ns = f"bkd-{secrets.token_hex(3)}"
    role = incluster.reader_name(ns)
    node = f"bkd-job-node-{secrets.token_hex(3)}"
    state = ClusterState(api, kubelet=kube_kubelet)
    try:
        # -- render: YAML on stdout and in -o, documented, least privilege ---------------------------------------
        rc, out, err = cli("cluster-job", "--namespace", ns, "--domain", DOMAIN, "-o", str(tmp_path / "job.yaml"))
        assert rc == 0, err
        job_docs = list(yaml.safe_load_all((tmp_path / "job.yaml").read_text()))
        assert [d["kind"] for d in job_docs] == [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Job",
        ]
        assert "RBAC cannot filter" in (tmp_path / "job.yaml").read_text()
        rc, ds_yaml, err = cli("cluster-job", "--namespace", ns, "--mode", "daemonset")
        assert rc == 0, err
        ds_docs = list(yaml.safe_load_all(ds_yaml))
        assert ds_docs[-1]["kind"] == "DaemonSet" and ds_docs[:4] == job_docs[:4]
        cr = job_docs[2]
        assert {v for r in cr["rules"] for v in r["verbs"]} == {"get", "list"}
        assert not any("secrets" in r["resources"] for r in cr["rules"])
        assert {res for r in cr["rules"] for res in r["resources"]} == {
            "nodes",
            "pods",
            "pods/log",
            "services",
            "events",
            "persistentvolumes",
            "persistentvolumeclaims",
            "storageclasses",
            "jobs",
            "configmaps",
        }
        job = job_docs[-1]
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:5] == ["scan", "--rule", "cluster", "--json", "-"]
        assert (
            {args[i + 1] for i, a in enumerate(args) if a == "--skip"}
            == set(incluster.helm_rule_ids())
            >= {"helm-releases", "component-versions"}
        )
        assert cli("cluster-job", "--namespace", "Not_A_Namespace")[0] == 2

        # -- a broken manifest fails the server-side dry run and nothing is created --------------------------------
        broken = [json.loads(json.dumps(d)) for d in ds_docs]
        broken[-1]["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["type"] = "NoSuchType"
        with pytest.raises(BadInput, match="dry run failed.*NoSuchType"):
            incluster.apply(admin, broken)
        assert status_code(api, "GET", f"/apis/apps/v1/namespaces/{ns}/daemonsets/{incluster.DAEMONSET_NAME}") == 404
        assert status_code(api, "GET", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}") == 404

        # -- --apply: dry run first, then created; both modes pass dryRun=All now that the namespace exists ----------
        rc, out, err = cli(
            "cluster-job", "--namespace", ns, "--domain", DOMAIN, "--kubeconfig", kube_apiserver.kubeconfig, "--apply"
        )
        assert rc == 0, err
        assert "dry run passed" in err and "job/bkdoctor-scan" in err
        assert incluster.dry_run(admin, job_docs) == [] and incluster.dry_run(admin, ds_docs) == []
        got = rest(api, "GET", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}")
        assert got["rules"] == incluster.reader_rules()
        uid1 = rest(api, "GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{incluster.JOB_NAME}")["metadata"]["uid"]
        apply_args = ("cluster-job", "--namespace", ns, "--domain", DOMAIN, "--kubeconfig", kube_apiserver.kubeconfig)
        rc, _, err = cli(*apply_args, "--mode", "daemonset", "--apply")
        assert rc == 0, err
        ds = rest(api, "GET", f"/apis/apps/v1/namespaces/{ns}/daemonsets/{incluster.DAEMONSET_NAME}")
        pod_spec = ds["spec"]["template"]["spec"]
        assert pod_spec["hostPID"] and pod_spec["hostNetwork"] and not pod_spec["automountServiceAccountToken"]
        assert pod_spec["containers"][0]["volumeMounts"][0]["readOnly"] is True
        assert pod_spec["containers"][0]["securityContext"]["privileged"] is False
        rc, _, err = cli(*apply_args, "--apply")  # again: the Job is re-created (it runs once)
        assert rc == 0, err
        job_obj = rest(api, "GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{incluster.JOB_NAME}")
        assert job_obj["metadata"]["uid"] != uid1

        # -- the ServiceAccount's identity gets what the ClusterRole promises, nothing more ------------------------
        sa_cfg = sa_kubeconfig(kube_apiserver, api, ns, tmp_path / "sa.kubeconfig")
        sa = configure(sa_cfg)
        _, objs = merged_state(FIXTURES / "base.yaml")
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db-password", "namespace": "blueking"},
                "stringData": {"password": "S3cr3t"},
            }
        )
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "other", "namespace": "blueking"},
                "data": {"k": "v"},
            }
        )
        state.apply(objs)
        c = sa.api_client
        wait_for(lambda: status_code(c, "GET", "/api/v1/nodes") == 200)
        for path in (
            "/api/v1/nodes",
            "/api/v1/pods",
            "/api/v1/services",
            "/api/v1/events",
            "/api/v1/persistentvolumes",
            "/api/v1/persistentvolumeclaims",
            "/apis/storage.k8s.io/v1/storageclasses",
            "/apis/batch/v1/jobs",
            "/api/v1/namespaces/kube-system/configmaps/coredns",
        ):
            assert status_code(c, "GET", path) == 200, path
        assert status_code(c, "GET", "/api/v1/configmaps", [("fieldSelector", "metadata.name=coredns")]) == 200
        assert status_code(c, "GET", "/api/v1/configmaps") == 403  # only the four by name
        assert status_code(c, "GET", "/api/v1/namespaces/blueking/configmaps/other") == 403
        assert status_code(c, "GET", "/api/v1/secrets", [("labelSelector", "owner=helm")]) == 403
        assert status_code(c, "GET", "/api/v1/namespaces/blueking/secrets") == 403
        assert status_code(c, "GET", "/api/v1/namespaces/blueking/secrets/db-password") == 403
        assert status_code(c, "GET", f"/api/v1/namespaces/{ns}/secrets") == 403
        assert (
            status_code(c, "POST", f"/api/v1/namespaces/{ns}/configmaps", body={"metadata": {"name": "x"}, "data": {}})
            == 403
        )
        assert status_code(c, "DELETE", "/api/v1/namespaces/kube-system/configmaps/coredns") == 403

        # -- the Job's scan, run with the SA's token, agrees with an admin's scan of the same rules ---------------
        proc = scan_subprocess(args, sa_cfg, tmp_path)  # the admin's reference scan runs meanwhile
        inv = local_inventory(domain=DOMAIN, install_dir="/nonexistent")
        inv.hosts = []
        skips = [args[i + 1] for i, a in enumerate(args) if a == "--skip"]
        ref = build_report(asyncio.run(engine.scan(inv, loader.select(["cluster"], skips), cluster=admin)), "en")
        log = job_log(proc)
        sa_report = report_validator(json.JSONDecoder().raw_decode(log, log.index("{"))[0])
        assert "forbidden" not in log.lower() and "Traceback" not in log
        assert not {f["rule"] for f in sa_report["findings"]} & set(incluster.helm_rule_ids())
        assert statuses(sa_report) == statuses(ref)
        assert {"coredns", "node-ready", "storage-class", "ingress-nginx"} <= {f["rule"] for f in sa_report["findings"]}

        # -- the report is read back from the Job pod's log (through the API server and the kubelet) -----------------
        sel = job_obj["spec"]["selector"]["matchLabels"]
        rest(api, "POST", "/api/v1/nodes", body=kube_kubelet.node_body(node))
        pod = rest(
            api,
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            body={
                "metadata": {
                    "name": f"{incluster.JOB_NAME}-abcde",
                    "labels": {**sel, "job-name": incluster.JOB_NAME},
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": incluster.JOB_NAME,
                            "uid": job_obj["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {**job_obj["spec"]["template"]["spec"], "nodeName": node},
            },
        )
        kube_kubelet.set_log(ns, pod["metadata"]["name"], incluster.JOB_CONTAINER, log)
        assert incluster.read_job_report(sa, ns) == sa_report

        # -- --helm-secrets: `list` on Secrets (no get), and the helm rules run in the Job --------------------------
        rc, helm_yaml, err = cli("cluster-job", "--namespace", ns, "--domain", DOMAIN, "--helm-secrets")
        assert rc == 0 and "EVERY Secret" in helm_yaml, err
        helm_args = list(yaml.safe_load_all(helm_yaml))[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--skip" not in helm_args
        rc, _, err = cli(
            "cluster-job",
            "--namespace",
            ns,
            "--domain",
            DOMAIN,
            "--helm-secrets",
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--apply",
        )
        assert rc == 0, err
        wait_for(lambda: status_code(c, "GET", "/api/v1/secrets", [("labelSelector", "owner=helm")]) == 200)
        assert status_code(c, "GET", "/api/v1/namespaces/blueking/secrets/db-password") == 403  # no get
        assert status_code(c, "GET", "/api/v1/secrets", [("watch", "true"), ("timeoutSeconds", "1")]) == 403
        proc = scan_subprocess(helm_args, sa_cfg, tmp_path)
        ref = build_report(asyncio.run(engine.scan(inv, loader.select(["cluster"], None), cluster=admin)), "en")
        log = job_log(proc)
        helm_report = json.JSONDecoder().raw_decode(log, log.index("{"))[0]
        assert statuses(helm_report) == statuses(ref)
        assert [f["status"] for f in helm_report["findings"] if f["rule"] == "helm-releases"] == ["pass"]
    finally:
        errors = []
        try:
            state.cleanup()
        except Exception as e:  # keep cleaning
            errors.append(e)
        for path in (
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}",
            f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}",
            f"/api/v1/nodes/{node}",
        ):
            if status_code(api, "DELETE", path) not in (200, 404):
                errors.append(path)
        kube_kubelet.clear(ns)
        delete_namespace(api, ns)
        api.close()
        assert not errors, errors


# -------------------------------------------------------------------------------------------------------------
def run_like_the_daemonset(host, ds: dict, workdir: Path) -> bytes:
    """Run the probe as the DaemonSet's container does, on the namespaced test host `host` as the node: the
    container's command and env from the manifest; the node's PID, network and UTS namespaces (hostPID,
    hostNetwork); a private mount namespace in which the node's / is bound read-only at the host root path; only
    the container's capabilities, no new privileges. Returns what the container prints (its log)."""
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["/bin/sh", "-c", incluster.PROBE_WRAPPER + incluster.KEEPALIVE]
    env = {e["name"]: e["value"] for e in c["env"]}
    caps = c["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    bounding = ",".join(["-all"] + [f"+{x.lower()}" for x in caps["add"]])
    ctr = Path(tempfile.mkdtemp(prefix="ctr-", dir=workdir))  # the container's own directory (/ of the image)
    inner = (
        'set -e; mkdir -p "$BKD_CTR/host"; mount --rbind / "$BKD_CTR/host"; mount -o remount,bind,ro "$BKD_CTR/host"; '
        'w="$BKD_WRAPPER"; unset BKD_WRAPPER BKD_CTR; cd /; '
        f'exec setpriv --no-new-privs --inh-caps=-all --bounding-set={bounding} /bin/sh -c "$w"'
    )
    argv = [
        "nsenter",
        "-t",
        str(host.pid),
        "-m",
        "-u",
        "-n",
        "-p",
        "--wdns=/",
        "--",
        "unshare",
        "-m",
        "-i",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        inner,
    ]
    run_env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        **env,
        incluster.HOST_ROOT_ENV: str(ctr / "host"),
        "BKD_CTR": str(ctr),
        "BKD_WRAPPER": incluster.PROBE_WRAPPER,
    }
    r = subprocess.run(
        argv, env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60
    )
    assert r.returncode == 0, r.stdout[-2000:]
    return r.stdout


def test_daemonset_logs_give_the_findings_of_a_direct_scan(
    kube_apiserver, kube_kubelet, kube_ns, nshost_factory, tmp_path
):
    api = kube_apiserver.api_client()
    admin = configure(kube_apiserver.kubeconfig)
    sfx = secrets.token_hex(3)
    master, worker, pending, empty, nossl = (f"bkd-{n}-{sfx}" for n in ("master", "node", "pending", "empty", "nossl"))
    specs = {
        master: {"hostname": master},  # the healthy base host
        worker: {
            "hostname": worker,
            "selinux_enforce": "1",  # enforcing, swap in fstab, LocalPV not mounted
            "files": {"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"},
            "setup": "printf 'UUID=1c4e2f6a\\tswap\\tswap\\tdefaults\\t0 0\\n' >> /etc/fstab\n"
            f"printf '//nas/share /mnt/nas cifs username=svc,password={CIFS_PW} 0 0\\n' >> /etc/fstab\n"
            f'sed -i \'1a \\    "proxies": {{"http-proxy": "http://svc:{PROXY_PW}@proxy:3128"}},\' '
            "/etc/docker/daemon.json\n"
            "for i in $(seq -w 1 20); do umount /mnt/blueking/vol$i; done",
        },
        # the node's openssl is not there (an empty file over it, in this node's mount namespace only)
        nossl: {"hostname": nossl, "setup": "mount --bind /dev/null /usr/bin/openssl"},
    }
    hosts = {
        name: make_host(nshost_factory, Case(rule="incluster", name=name, status="x", path=FIXTURES, spec=spec))
        for name, spec in specs.items()
    }
    try:
        for name in (master, worker, pending, empty, nossl):
            labels = {"node-role.kubernetes.io/master": ""} if name == master else {}
            rest(api, "POST", "/api/v1/nodes", body=kube_kubelet.node_body(name, labels))
        objs = incluster.render(kube_ns, "registry.local/bkdoctor:test", "daemonset", domain=DOMAIN)
        ds_obj = objs[-1]
        incluster.apply(admin, [ds_obj])
        ds = rest(api, "GET", f"/apis/apps/v1/namespaces/{kube_ns}/daemonsets/{incluster.DAEMONSET_NAME}")
        # no kubelet or DaemonSet controller here: make the DaemonSet's pods, their state and their logs ourselves
        logs = {}
        for name in (master, worker, pending, nossl):
            pod_name = f"{incluster.DAEMONSET_NAME}-{name[-10:]}"
            rest(
                api,
                "POST",
                f"/api/v1/namespaces/{kube_ns}/pods",
                body={
                    "metadata": {
                        "name": pod_name,
                        "labels": ds["spec"]["template"]["metadata"]["labels"],
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "DaemonSet",
                                "controller": True,
                                "name": incluster.DAEMONSET_NAME,
                                "uid": ds["metadata"]["uid"],
                            }
                        ],
                    },
                    "spec": {**ds["spec"]["template"]["spec"], "nodeName": name},
                },
            )
            cs = (
                {"running": {"startedAt": "2026-11-26T08:00:00Z"}}
                if name != pending
                else {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
            )
            rest(
                api,
                "PATCH",
                f"/api/v1/namespaces/{kube_ns}/pods/{pod_name}/status",
                body={
                    "status": {
                        "phase": "Running" if name != pending else "Pending",
                        "containerStatuses": [
                            {
                                "name": incluster.PROBE_CONTAINER,
                                "ready": name != pending,
                                "restartCount": 0,
                                "image": "registry.local/bkdoctor:test",
                                "imageID": "",
                                "state": cs,
                            }
                        ],
                    }
                },
                content_type="application/merge-patch+json",
            )
            if name in hosts:
                out = run_like_the_daemonset(hosts[name], ds, tmp_path)
                assert (b":DONE:125\n" if name == nossl else b":DONE:0\n") in out
                logs[name] = out.decode("utf-8", "replace")
                kube_kubelet.set_log(kube_ns, pod_name, incluster.PROBE_CONTAINER, logs[name])

        collected = {t.name: t for t in incluster.collect_daemonset(admin, kube_ns, wait_s=0)}
        assert collected[master].roles == ("master",) and collected[worker].roles == ("node",)
        assert collected[master].address == kube_kubelet.host and collected[master].reachable
        assert "ImagePullBackOff" in collected[pending].error and not collected[pending].reachable
        assert "no pod of DaemonSet" in collected[empty].error
        # the pod logs carry only markers and ciphertext: no planted secret, no line of a host file
        nonce = {e["name"]: e["value"] for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}[
            "BKDOCTOR_NONCE"
        ]
        for name in (master, worker):
            lines = [x for x in logs[name].split("\n") if x]
            assert lines[0].startswith(f"@@BKD-{nonce}:SEALED:") and lines[-2:] == [
                f"@@BKD-{nonce}:SEALED-END:0",
                f"@@BKD-{nonce}:DONE:0",
            ], (lines[:1], lines[-2:])
            assert all(re.fullmatch(r"[A-Za-z0-9+/=]{1,64}", x) for x in lines[1:-2]), name
            for s in (CIFS_PW, PROXY_PW, "cifs", "UUID=", "SELINUX", "data-root", name, "@@BKD-" + nonce + ":B:"):
                assert s not in logs[name], (name, s)
        # ... while the facts read from them hold the node's files, the secrets too (masked later, in the reports)
        worker_out = b"".join(sec.out for sec in collected[worker].facts.sections.values())
        assert CIFS_PW.encode() in worker_out and PROXY_PW.encode() in worker_out
        # a node without openssl: one line in its log and no probe output; one bilingual error, no plain text
        assert logs[nossl] == f"\n@@BKD-{nonce}:SEAL-ERROR:openssl-rand\n\n@@BKD-{nonce}:DONE:125\n"
        assert not collected[nossl].reachable and collected[nossl].facts is None
        assert collected[nossl].error_t.en.startswith(
            f"probe pod {kube_ns}/{incluster.DAEMONSET_NAME}-{nossl[-10:]}: openssl is missing or failed on the node"
        )
        assert "节点上的 openssl 缺失或失败" in collected[nossl].error_t.zh

        rules = loader.select(["host", "fleet"], None)
        # the same hosts scanned directly (the engine, the probe through nsenter, the Docker API, the clock sample)
        direct_inv = local_inventory(domain=DOMAIN, install_dir="/nonexistent")
        direct_inv.hosts = [
            HostSpec(name=n, address=kube_kubelet.host, roles=collected[n].roles, docker_socket="/run/docker.sock")
            for n in (master, worker)
        ]
        direct = asyncio.run(
            engine.scan(
                direct_inv,
                rules,
                factory=lambda h, i: LocalTransport(
                    prefix=hosts[h.name].nsenter_argv(), root=hosts[h.name].root, address=h.address
                ),
            )
        )
        ds_inv = local_inventory(domain=DOMAIN, install_dir="/nonexistent")
        ds_rules, targets = incluster.daemonset_scan_inputs(admin, ds_inv, rules, kube_ns)
        mine = (master, worker, pending, empty, nossl)
        targets = [t for t in targets if t.name in mine]  # other tests' Nodes aside
        ds_inv.hosts = [h for h in ds_inv.hosts if h.name in mine]
        via_ds = asyncio.run(engine.scan(ds_inv, ds_rules, preloaded_hosts=targets))

        # node-capacity sums every node-role member: the DaemonSet also reports the Nodes without probe output
        # (pending, empty), so its sum is incomplete there (error) while the direct scan knows only these two hosts
        want = {
            k: v
            for k, v in statuses(build_report(direct, "en")).items()
            if k[0] not in incluster.DAEMONSET_UNSUPPORTED and k[0] != "node-capacity"
        }
        got = statuses(build_report(via_ds, "en"))
        assert {k: v for k, v in got.items() if k[1] in (master, worker) and k[0] != "node-capacity"} == want
        assert not {k[0] for k in got} & set(incluster.DAEMONSET_UNSUPPORTED)
        # not vacuous: the healthy host passes what the broken one fails (LocalPV mounts come from /proc/1/mountinfo)
        for rule in ("selinux", "swap", "localpv-dirs"):
            assert (got[(rule, master)], got[(rule, worker)]) == ("pass", "fail"), rule
        assert got[("kernel-params", master)] == "pass" and got[("fleet-hostname", worker)] == "pass"
        for name in (master, worker):  # the container's four capabilities are enough to read iptables
            secs = collected[name].facts.sections
            assert secs["iptables"].rc == 0 and secs["id"].text().strip() == "0", secs["iptables"].text()
        assert b" /mnt/blueking/vol01 " in collected[master].facts.sections["mountinfo"].out  # the node's mount table
        for name in (pending, empty, nossl):  # every Node is reported, the ones without probe output as errors
            found = [f for f in via_ds.findings if f.target == name and f.rule.scope == "host"]
            assert found and all(f.result.status == "error" for f in found)
        assert all(
            f.result.message.zh.startswith("主机不可达：探测 Pod") and "openssl" in f.result.message.en
            for f in via_ds.findings
            if f.target == nossl and f.rule.scope == "host"
        )
    finally:
        for name in (master, worker, pending, empty, nossl):
            status_code(api, "DELETE", f"/api/v1/nodes/{name}")
        kube_kubelet.clear(kube_ns)
        api.close()


def test_collect_without_probe_pods_is_bad_input(kube_apiserver, kube_ns):
    with pytest.raises(BadInput, match="no pod of DaemonSet"):
        incluster.collect_daemonset(configure(kube_apiserver.kubeconfig), kube_ns, wait_s=0)


def test_probe_script_reads_the_nodes_mount_table_and_writes_nothing():
    script = incluster.daemonset_script("0123456789abcdef")
    # the section and the file batch that reads for it (probe._file_batch) both read the node's mount table
    assert "{ __bkd_rd /proc/1/mountinfo\n}" in script and script.count("/proc/1/mountinfo") == 2
    assert "/proc/self/mountinfo" not in script
    assert not incluster.daemonset_sections() & incluster.EXCLUDED_SECTIONS
    assert {"docker_cli_info", "docker_client", "mountinfo", "iptables"} <= incluster.daemonset_sections()
    subprocess.run(["dash", "-n"], input=script.encode(), check=True)
    subprocess.run(["dash", "-n"], input=(incluster.PROBE_WRAPPER + incluster.KEEPALIVE).encode(), check=True)


def test_collect_daemonset_takes_no_name_a_real_api_server_would_refuse(monkeypatch):
    """A hostile or broken API server (a real one validates names, so this one is a stand-in): a Node or Pod name that
    is not an RFC 1123 subdomain is neither a target nor a piece of a request path (`../secrets/x`)."""
    from test_incluster_seal import NONCE as nonce
    from test_incluster_seal import section, wrap

    from bkdoctor.incluster import seal

    pub = seal.new_key(incluster.DEFAULT_NAMESPACE)
    log = wrap(pub, section("uname_r", "echo 3.10.0")).stdout

    def pod(name, node):
        return {
            "metadata": {"name": name, "ownerReferences": [{"kind": "DaemonSet", "name": incluster.DAEMONSET_NAME}]},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": incluster.PROBE_CONTAINER,
                        "env": [{"name": "BKDOCTOR_NONCE", "value": nonce}, {"name": seal.PUBKEY_ENV, "value": pub}],
                    }
                ],
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": incluster.PROBE_CONTAINER, "state": {"running": {"startedAt": "now"}}}],
            },
        }

    asked = []

    class Facts:
        def __init__(self, access):
            pass

        def get(self, what):
            assert what == "nodes"
            return [{"metadata": {"name": n}} for n in ("good-1", "../../secrets/x", "Bad Name", "x" * 300)]

        def _list(self, path, params):
            return [pod("probe-good", "good-1"), pod("../../secrets/x", "good-1"), pod("probe-2", "../../secrets/x")]

        def _get(self, path, params, raw=False):
            asked.append(path)
            return log

    monkeypatch.setattr(incluster, "ClusterFacts", Facts)
    states = incluster.collect_daemonset(None, wait_s=0)
    assert [s.name for s in states] == ["good-1"], [s.name for s in states]
    assert states[0].error is None, states[0].error
    assert states[0].facts.sections["uname_r"].out == b"3.10.0\n"
    assert asked == [f"/api/v1/namespaces/{incluster.DEFAULT_NAMESPACE}/pods/probe-good/log"], asked
