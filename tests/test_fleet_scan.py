"""The whole fleet over SSH, as an operator runs it: `bkdoctor scan -i hosts.yaml` against real sshd test hosts
(each in its own namespaces with its own /etc, dockerd and chronyd), some broken, some unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hostcases import make_ssh_host
from kube.fixtures import kube_apiserver  # noqa: F401

pytestmark = [pytest.mark.ssh]
ROOT = Path(__file__).resolve().parent.parent
KUBELET = {"/usr/local/bin/kubelet": {"content": "#!/bin/sh\necho 'Kubernetes v1.20.11'\n", "mode": 0o755}}


def bkdoctor(*args, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env["LANG"] = "C.UTF-8"
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# the ingress as nodes reach it (§七.3): a real registry asking for auth at the address docker.<domain> resolves to
INGRESS = yaml.safe_load((ROOT / "fixtures" / "host" / "registry-ingress" / "answers-401.pass.yaml").read_text())
# the control machine after §三.4.2 and §六.4.1: a kubeconfig, and the 20 names at the ingress pod's node
CONTROL = yaml.safe_load((ROOT / "fixtures" / "host" / "hosts-file" / "control-20-names.pass.yaml").read_text())


def healthy(hostname, **extra):
    spec = {
        "hostname": hostname,
        "docker": True,
        "chronyd": "synced",
        "files": {**KUBELET, **INGRESS["files"]},
        "setup": INGRESS["setup"],
    }
    for k, v in extra.items():
        if k == "files":
            spec["files"].update(v)
        else:
            spec[k] = v
    return spec


@pytest.mark.docker
def test_five_hosts_known_problems_and_three_unreachable(ssh_fleet, tmp_path, report_validator):
    specs = {
        "master-1": healthy(
            "master-1",
            overlays=["/etc", "/root"],
            files={"/etc/hosts": CONTROL["files"]["/etc/hosts"].replace("203.0.113.7", "10.96.45.12")},
            setup=INGRESS["setup"] + "mkdir -p /root/.kube && echo 'kind: Config' > /root/.kube/config\n",
        ),
        "node-1": healthy("node-1"),
        "node-2": healthy(
            "node-2",
            files={"/proc/swaps": "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition\t4194300\t0\t-2\n"},
            symlinks={"/etc/localtime": "../usr/share/zoneinfo/UTC"},
        ),
        "node-3": healthy(
            "node-3",
            selinux_enforce="1",
            files={
                "/etc/selinux/config": "SELINUX=enforcing\n",
                "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n',
            },
        ),
        # a clone of node-1 that kept its hostname, and with Docker's data on the system disk
        "node-4": healthy(
            "node-1",
            tmpfs=["/var/lib/docker"],
            files={
                "/etc/docker/daemon.json": '{"data-root": "/var/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"], '
                '"insecure-registries": ["docker.bkce7.bktencent.com"]}\n'
            },
        ),
    }
    hosts = {}
    fleet = None
    for name, spec in specs.items():
        fleet, hosts[name] = make_ssh_host(ssh_fleet, spec)
    # three that cannot be scanned: sshd stopped, a changed host key, a host that accepts TCP and never speaks
    down = ssh_fleet(3)
    refused, rekeyed, silent = down.hosts[-3:]
    refused.stop_sshd()
    silent.stop_sshd()
    silent.start_silent_listener(22)
    fleet.write_known_hosts()
    kh = Path(fleet.known_hosts)
    lines = [l for l in kh.read_text().splitlines() if not l.startswith(rekeyed.address + " ")]
    other = hosts["node-1"].host_key_pub  # a real key, but not this host's: as after a reinstall or a MITM
    kh.write_text("\n".join(lines + [f"{rekeyed.address} {other}"]) + "\n")

    roles = {"master-1": ["control", "master"]}
    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": fleet.ssh_settings(connect_timeout=3),
        "hosts": [
            {"name": n, "address": h.address, "roles": roles.get(n, ["node"]), "docker_socket": "/run/docker.sock"}
            for n, h in hosts.items()
        ]
        + [
            {"name": n, "address": h.address, "roles": ["node"]}
            for n, h in (("refused", refused), ("rekeyed", rekeyed), ("silent", silent))
        ],
    }
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    t0 = time.monotonic()
    r = bkdoctor("scan", "-i", str(inv_path), "--json", "-", "--no-history", "--no-cluster")
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    report = report_validator(json.loads(r.stdout))
    assert took < 60, took  # bounded by the connect timeout, not by the silent host

    targets = {t["name"]: t for t in report["targets"]}
    assert "connection refused" in targets["refused"]["error"]
    assert "CHANGED" in targets["rekeyed"]["error"]
    assert "timed out" in targets["silent"]["error"]
    for n in ("refused", "rekeyed", "silent"):
        assert targets[n]["reachable"] is False
        statuses = {f["status"] for f in report["findings"] if f["target"] == n}
        assert statuses == {"error"}, (n, statuses)

    problems = {}
    for f in report["findings"]:
        if f["target"] in specs and f["status"] not in ("pass", "skip"):  # skip: registry-mirrors without a proxy
            problems.setdefault(f["target"], set()).add((f["rule"], f["status"]))
    assert problems == {
        # the control machine: CentOS test hosts are smaller than a real master (16 CPUs / 64 GB are fine) -> nothing
        "node-2": {("swap", "fail"), ("timezone", "fail")},
        "node-3": {("selinux", "fail"), ("insecure-registries", "fail")},
        "node-4": {("docker-daemon-config", "warn"), ("fleet-docker-root", "fail"), ("fleet-hostname", "fail")},
        "node-1": {("fleet-hostname", "fail")},
    }, json.dumps({k: sorted(v) for k, v in problems.items()}, indent=1)
    # every reachable host has every applicable default rule, each once
    per_host = {}
    for f in report["findings"]:
        per_host.setdefault(f["target"], []).append(f["rule"])
    for n in specs:
        assert len(per_host[n]) == len(set(per_host[n])), n
    assert "localpv-dirs" in per_host["node-1"] and "localpv-dirs" in per_host["master-1"]


@pytest.mark.kube
def test_from_cluster_takes_hosts_from_node_internal_ips(ssh_fleet, kube_apiserver, tmp_path, report_validator):
    """Nodes whose InternalIPs are real test hosts: --from-cluster scans exactly them, roles from the labels."""
    from clusterstate import ClusterState

    fleet = ssh_fleet(2)
    m, n = fleet.hosts[-2:]
    st = ClusterState(kube_apiserver.api_client())
    try:
        for host, name, master in ((m, "master-a", True), (n, "node-b", False)):
            labels = {"kubernetes.io/hostname": name}
            if master:
                labels["node-role.kubernetes.io/master"] = ""
            st.create(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": labels},
                    "status": {
                        "addresses": [{"type": "InternalIP", "address": host.address}],
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
            )
        inv = tmp_path / "ssh.yaml"
        inv.write_text(yaml.safe_dump({"domain": "bkce7.bktencent.com", "ssh": fleet.ssh_settings(), "hosts": []}))
        r = bkdoctor(
            "scan",
            "-i",
            str(inv),
            "--from-cluster",
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--rule",
            "kernel-version",
            "--rule",
            "node-ready",
            "--json",
            "-",
            "--no-history",
        )
    finally:
        st.cleanup()
    report = report_validator(json.loads(r.stdout))
    hosts = {t["name"]: t for t in report["targets"] if t["kind"] == "host"}
    assert {
        k: (v["address"], v["roles"], v["reachable"])
        for k, v in hosts.items()
        if k != report["targets"][0]["name"] or True
    } == {"master-a": (m.address, ["master"], True), "node-b": (n.address, ["node"], True)} | (
        {k: (v["address"], v["roles"], v["reachable"]) for k, v in hosts.items() if "control" in v["roles"]}
    )
    assert {f["target"] for f in report["findings"] if f["rule"] == "kernel-version"} >= {"master-a", "node-b"}
