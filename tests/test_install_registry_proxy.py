"""The optional registry-proxy phase (§二) for real: the proxy host gets the guide's config file (even where the old
`-v` mount of a missing file left Docker's empty directory), the container is run (then restarted on a re-run), and
every node's dockerd gets `registry-mirrors` (§二.4.2, its own phase after k8s: the Node节点's, a master's dockerd is left
alone and not judged); the registry-proxy and registry-mirrors rules then pass against the real registry server and the
real dockerd.

The proxy host: Debian's docker-registry as the upstream (stands for hub.bktencent.com, an image pushed to it) and,
for `docker run … registry:2` (no image can be pulled here), a docker CLI stand-in that runs the same server with
the container's port mapping and volumes (fixtures/install/docker-standin.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hostcases import make_ssh_host

pytestmark = [pytest.mark.ssh, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"


def test_registry_proxy_phase(ssh_fleet, tmp_path):
    files = {
        "/usr/local/sbin/docker": {"content": (FIX / "install" / "docker-standin.sh").read_text(), "mode": 0o755},
        "/etc/docker/registry/upstream.yml": {"content": (FIX / "registry" / "upstream.yml").read_text()},
    }
    files.update(
        {f"/run/fixtures/registry/{p.name}": {"content": p.read_text()} for p in (FIX / "registry").glob("*.sh")}
    )
    # the leftover of the old bug: Docker made a directory where the config file belongs
    fleet, proxy = make_ssh_host(
        ssh_fleet,
        {
            "hostname": "proxy-1",
            "docker": True,
            "files": files,
            "overlays": ["/etc", "/usr/local/sbin"],
            "setup": "mkdir -p /etc/docker/registry/bkhub.yaml",
        },
    )
    proxy.run("sh /run/fixtures/registry/push-image.sh")
    _, node = make_ssh_host(
        ssh_fleet,
        {
            "hostname": "node-1",
            "docker": True,
            "files": {
                "/etc/docker/daemon.json": '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n'
            },
        },
    )
    # a master with Docker and bcs.sh's daemon.json: §二.4.2 is the Node节点's, so the phase neither fixes nor judges it
    master_dj = '{"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}\n'
    _, master = make_ssh_host(
        ssh_fleet, {"hostname": "master-1", "docker": True, "files": {"/etc/docker/daemon.json": master_dj}}
    )
    inv = tmp_path / "hosts.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "domain": "bkce7.bktencent.com",
                "ssh": fleet.ssh_settings(),
                # the upstream is the test's; the data dir under the host's private /data (never this machine's /var/lib)
                "thresholds": {"registry_data": "/data/registry-bkhub", "registry_upstream": "http://127.0.0.1:5001"},
                "hosts": [
                    {"name": "ctl", "address": "localhost", "roles": ["control"], "local": True},
                    {
                        "name": "proxy-1",
                        "address": proxy.address,
                        "roles": ["registry-proxy"],
                        "docker_socket": "/run/docker.sock",
                    },
                    {
                        "name": "master-1",
                        "address": master.address,
                        "roles": ["master"],
                        "docker_socket": "/run/docker.sock",
                    },
                    {"name": "node-1", "address": node.address, "roles": ["node"], "docker_socket": "/run/docker.sock"},
                ],
            }
        )
    )
    env = {
        **os.environ,
        "LANG": "C.UTF-8",
        "COLUMNS": "400",
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    env.pop("KUBECONFIG", None)

    def install(*args, phase="registry-proxy"):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "bkdoctor.cli",
                "install",
                "-i",
                str(inv),
                "--yes",
                "--phase",
                phase,
                "--with",
                "registry-proxy",
                *args,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    r = install()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    conf = yaml.safe_load(proxy.read("/etc/docker/registry/bkhub.yaml"))
    assert conf["http"]["addr"] == ":5000" and conf["http"]["secret"] == "bkhub-5500"
    assert conf["cache"] == {"blobdescriptor": "inmemory"} and conf["redirect"] == {"disable": True}
    assert conf["delete"] == {"enabled": True} and conf["proxy"] == {"remoteurl": "http://127.0.0.1:5001"}
    assert conf["storage"] == {"filesystem": {"rootdirectory": "/var/lib/registry"}}
    log = proxy.read("/run/docker-standin.log").decode().splitlines()
    assert log[0] == "inspect proxy-bkhub" and log[1].startswith(
        "run -d -p 5500:5000 --restart=always --name proxy-bkhub -v /etc/docker/registry/bkhub.yaml:/etc/docker/registry/config.yml "
        "-v /data/registry-bkhub:/var/lib/registry hub.bktencent.com/library/registry:2"
    ), log
    assert "DONE     registry-proxy" in r.stdout
    # the nodes' registry-mirrors is its own phase, after k8s (Docker and bcs.sh's daemon.json come first)
    assert json.loads(node.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}").stdout) in ([], None)
    r = install(phase="registry-mirrors")
    assert r.returncode == 0 and "DONE     registry-mirrors" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]
    mirrors = json.loads(node.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}").stdout)
    assert mirrors == [f"http://{proxy.address}:5500/"], mirrors
    assert master.read("/etc/docker/daemon.json").decode() == master_dj  # not a Node: untouched, and not judged
    assert "registry-mirrors @ master-1" not in r.stdout, r.stdout[-3000:]

    # a second run does nothing: the phase is done and its checks pass
    r = install()
    assert r.returncode == 0 and "SKIPPED  registry-proxy" in r.stdout, r.stdout[-3000:]
    assert len(proxy.read("/run/docker-standin.log").decode().splitlines()) == 2
    # the proxy gone (its process killed): the checks fail, the phase runs again and restarts the container
    proxy.run("kill $(cat /run/proxy-bkhub.pid)")
    r = install()
    assert r.returncode == 0, r.stdout[-4000:]
    assert proxy.read("/run/docker-standin.log").decode().splitlines()[-1] == "restart proxy-bkhub"
