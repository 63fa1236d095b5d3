"""`bkdoctor install` end to end: a control machine, a master and a node (real sshd test hosts, each in its own
namespaces: nothing touches this machine), the real test API server relayed into the control machine and the
master (where bcs.sh runs); install_dir holds stand-ins for bcs.sh and helmfile that create the objects a real run
would create (fixtures/install). The phases bkdoctor performs itself (host preparation, CoreDNS records, hosts files,
insecure-registries) run for real against the test hosts and the API server."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hostcases import make_ssh_host
from kube.fixtures import kube_apiserver, rest  # noqa: F401
from kube.relay import ApiRelay

pytestmark = [pytest.mark.kube, pytest.mark.ssh, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bkce7.bktencent.com"
KUBELET = {"/usr/local/bin/kubelet": {"content": "#!/bin/sh\necho 'Kubernetes v1.20.11'\n", "mode": 0o755}}


def _cleanup_cluster(api):
    from kube.fixtures import delete_namespace

    for path in ("/api/v1/nodes/master-1", "/api/v1/nodes/node-1",
                 "/apis/storage.k8s.io/v1/storageclasses/local-storage",
                 "/api/v1/namespaces/kube-system/configmaps/coredns"):
        try:
            rest(api, "DELETE", path)
        except Exception:
            pass
    try:
        rest(api, "DELETE", "/api/v1/namespaces/blueking/services/ingress-nginx-controller")
    except Exception:
        pass
    try:
        delete_namespace(api, "blueking")
    except Exception:
        pass


@pytest.fixture
def site(ssh_fleet, kube_apiserver, tmp_path):
    """A fresh site: master and node hosts (the node with swap in fstab and no insecure-registries), the API relay
    into the master (bcs.sh runs there), an install_dir with the stand-ins, an inventory."""
    fleet, ctl = make_ssh_host(ssh_fleet, {"hostname": "ctl", "files": dict(KUBELET)})
    _, master = make_ssh_host(ssh_fleet, {"hostname": "master-1", "docker": True, "files": dict(KUBELET)})
    _, node = make_ssh_host(ssh_fleet, {"hostname": "node-1", "docker": True, "files": {
        **KUBELET, "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n'},
        "setup": "echo '/dev/mapper/centos-swap swap swap defaults 0 0' >> /etc/fstab"})
    port = int(kube_apiserver.url.rsplit(":", 1)[1])
    relays = [ApiRelay(port, ctl).start(), ApiRelay(port, master).start()]
    inst = tmp_path / "blueking"
    shutil.copytree(ROOT / "fixtures" / "install", inst)
    shutil.copy(kube_apiserver.kubeconfig, inst / "kubeconfig")
    for w in (inst / "bcs.sh", inst / "bin" / "helmfile", inst / "bin" / "helm"):  # the interpreter that has the kubernetes client
        w.write_text(w.read_text().replace("exec python3 ", f"exec {sys.executable} "))
    cfg = {"kubeconfig": str(inst / "kubeconfig"), "log": str(inst / "standin.log"), "domain": DOMAIN,
           "nodes": f"master-1={master.address}=master node-1={node.address}=node"}
    (inst / "standin.json").write_text(json.dumps(cfg))
    (inst / "standin.log").write_text("")
    inv = tmp_path / "hosts.yaml"
    inv.write_text(yaml.safe_dump({
        "domain": DOMAIN, "install_dir": str(inst), "ingress_ip": "10.96.45.12", "ssh": fleet.ssh_settings(),
        "hosts": [{"name": "ctl", "address": ctl.address, "roles": ["control"]},
                  {"name": "master-1", "address": master.address, "roles": ["master"], "docker_socket": "/run/docker.sock"},
                  {"name": "node-1", "address": node.address, "roles": ["node"], "docker_socket": "/run/docker.sock"}]}))
    try:
        # the copy in install_dir: the server's own file is under /dev/shm, which test hosts do not share
        yield {"inv": inv, "inst": inst, "cfg": cfg, "master": master, "node": node, "tmp": tmp_path,
               "kubeconfig": str(inst / "kubeconfig")}
    finally:
        for r in relays:
            r.stop()
        _cleanup_cluster(kube_apiserver.api_client())


def bkdoctor(site, *args, timeout=600, popen=False):
    env = {**os.environ, "LANG": "C.UTF-8", "XDG_DATA_HOME": str(site["tmp"] / "xdg"), "KUBECONFIG": site["kubeconfig"]}
    argv = [sys.executable, "-m", "bkdoctor.cli", "install", "-i", str(site["inv"]), "--kubeconfig", site["kubeconfig"],
            "--yes", *args]
    if popen:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def calls(site):
    return [l for l in (site["inst"] / "standin.log").read_text().splitlines() if l.strip()]


def test_install_interrupted_resumed_then_idempotent(site, kube_apiserver):
    # 1. plan on the fresh site: the node's swap line fails the k8s gate until preflight fixes it
    plan = json.loads(bkdoctor(site, "--plan", "--json", "--until", "node-access").stdout)
    k8s = next(r for r in plan if r["phase"] == "k8s")
    assert k8s["gate"] == "fail" and "swap@node-1" in k8s["gate_failing"]
    assert all(r["verify"] == "not yet" for r in plan if r["phase"] != "preflight")

    # 2. run, and kill the process while seq=second is deploying
    site["cfg"]["slow"] = "base-blueking.yaml.gotmpl:second"
    (site["inst"] / "standin.json").write_text(json.dumps(site["cfg"]))
    p = bkdoctor(site, "--until", "node-access", popen=True)
    deadline = time.monotonic() + 300
    while not any("seq=second" in c for c in calls(site)):
        assert p.poll() is None, p.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "install did not reach seq=second"
        time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    before = calls(site)
    assert sum("seq=first" in c for c in before) == 1

    # 3. re-run: resumes at the interrupted step; nothing finished is repeated
    site["cfg"].pop("slow")
    (site["inst"] / "standin.json").write_text(json.dumps(site["cfg"]))
    r = bkdoctor(site, "--until", "node-access")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    after = calls(site)
    assert after[: len(before)] == before
    new = after[len(before):]
    assert sum("seq=second" in c for c in new) == 1  # the killed step, once more
    assert not any(c in before for c in new if "seq=second" not in c), new  # nothing else twice
    assert any("seq=fourth" in c for c in new)

    # real state: bkdoctor's own phases really changed the hosts and the cluster
    fstab = site["node"].read("/etc/fstab").decode()
    assert "#/dev/mapper/centos-swap" in fstab
    info = json.loads(site["node"].docker("info", "--format", "{{json .RegistryConfig}}").stdout)
    assert info["IndexConfigs"][f"docker.{DOMAIN}"]["Secure"] is False
    from kubernetes import client

    core = client.CoreV1Api(kube_apiserver.api_client())
    assert f"10.96.45.12 docker.{DOMAIN}" in core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"]
    assert f"docker.{DOMAIN}" in site["node"].read("/etc/hosts").decode()

    # 4. a second full run changes nothing: every phase is skipped, no stand-in is called
    n = len(calls(site))
    r = bkdoctor(site, "--until", "node-access")
    assert r.returncode == 0, r.stdout[-3000:]
    assert len(calls(site)) == n
    assert r.stdout.count("SKIPPED") >= 10, r.stdout[-3000:]

    # 5. repair phases from findings: the default StorageClass and the ingress Service deleted, bk-cmdb stuck in
    #    pending-upgrade; `bkdoctor fix` re-runs the deployment steps (through the stand-ins) and re-checks
    api = kube_apiserver.api_client()
    rest(api, "DELETE", "/apis/storage.k8s.io/v1/storageclasses/local-storage")
    rest(api, "DELETE", "/api/v1/namespaces/blueking/services/ingress-nginx-controller")
    from clusterstate import helm_release_secret

    rest(api, "POST", "/api/v1/namespaces/blueking/secrets", body=helm_release_secret(
        {"metadata": {"name": "bk-cmdb", "namespace": "blueking"}, "chart": "bk-cmdb", "version": "3.10.24",
         "status": "pending-upgrade", "revision": 2}))
    env = {**os.environ, "LANG": "C.UTF-8", "XDG_DATA_HOME": str(site["tmp"] / "xdg")}
    fix = subprocess.run([sys.executable, "-m", "bkdoctor.cli", "fix", "--rule", "storage-class", "--rule", "ingress-nginx",
                          "--rule", "helm-releases", "-i", str(site["inv"]), "--kubeconfig", site["kubeconfig"], "--yes",
                          "--allow-disruptive", "--json", "-"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {o["rule"]: o["status"] for o in json.loads(fix.stdout)["outcomes"]}
    assert outcomes == {"storage-class": "fixed", "ingress-nginx": "fixed", "helm-releases": "fixed"}, fix.stdout[-3000:]
    new = calls(site)[n:]
    assert "helmfile -f 00-localpv.yaml.gotmpl sync" in new and "helm -n blueking rollback bk-cmdb 1" in new
    assert "helmfile -f base-blueking.yaml.gotmpl -l name=bk-cmdb sync" in new
    # fix again: every rule passes now, nothing is planned and no deployment step runs
    n2 = len(calls(site))
    again = subprocess.run([sys.executable, "-m", "bkdoctor.cli", "fix", "--rule", "storage-class", "--rule", "ingress-nginx",
                            "--rule", "helm-releases", "-i", str(site["inv"]), "--kubeconfig", site["kubeconfig"], "--yes",
                            "--allow-disruptive", "--json", "-"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["outcomes"] == [] and len(calls(site)) == n2, again.stdout[-2000:]


def test_failing_step_names_cause_and_fix_then_resumes(site, kube_apiserver):
    site["cfg"]["plant_pull_failure"] = "base-blueking.yaml.gotmpl:third"
    (site["inst"] / "standin.json").write_text(json.dumps(site["cfg"]))
    r = bkdoctor(site, "--until", "base-third")
    assert r.returncode == 1
    out = r.stdout
    assert "FAILED   base-third" in out, out[-3000:]
    assert "faq-paas-init-data" in out and "slug-app" in out
    # the cross-layer cause (node-1 lacks docker.<domain> in insecure-registries) was offered and fixed by bkdoctor
    assert "apply bkdoctor's fixes for" in out and "fixed insecure-registries@node-1" in out, out[-4000:]
    info = json.loads(site["node"].docker("info", "--format", "{{json .RegistryConfig}}").stdout)
    assert info["IndexConfigs"][f"docker.{DOMAIN}"]["Secure"] is False
    # the operator fixes it (the image is mirrored: the pod that could not pull goes away), and re-runs
    rest(kube_apiserver.api_client(), "DELETE", "/api/v1/namespaces/blueking/pods/bkpaas3-apiserver-init-data-x7k2p",
         query=[("gracePeriodSeconds", 0)])
    n = len(calls(site))
    r = bkdoctor(site, "--until", "base-third")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "DONE     base-third" in r.stdout
    assert len(calls(site)) == n  # the helmfile step had finished: it is not repeated
