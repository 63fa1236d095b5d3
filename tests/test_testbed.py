"""Tests of the namespace test-host harness (tests/testbed/hostns.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from testbed.fixtures import (  # noqa: F401  # noqa: F401
    NsHostFactory,
    SSHFleetFactory,
    keygen,
    nshost_factory,
    nshost_unavailable,
    ssh_fleet,
    ssh_unavailable,
)
from testbed.hostns import NsHost, NsHostError, NsRunError, pid_alive
from testbed.network import RULE_PREF, TestNet

pytestmark = pytest.mark.skipif(nshost_unavailable() is not None, reason=str(nshost_unavailable()))

FSTAB = """\
/dev/mapper/centos-root /                       xfs     defaults        0 0
UUID=0b0b0b0b-1111-2222-3333-444455556666 /boot xfs     defaults        0 0
/dev/mapper/centos-swap swap                    swap    defaults        0 0
"""
SWAPS = (
    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    "/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n"
)


def machine_mountinfo() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def out(r: subprocess.CompletedProcess) -> str:
    return r.stdout.decode()


# ---------------------------------------------------------------- basics


def test_files_visible_inside_not_on_machine(nshost_factory):
    marker = f"bkdoctor-testbed-{os.getpid()}-{time.monotonic_ns()}"
    h = nshost_factory(
        "node1",
        files={
            "/etc/fstab": FSTAB,
            "/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
            "/etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n",
            "/etc/bkdoctor-testbed-marker": marker,
            "/etc/profile.d/bk.sh": {"content": "echo hi\n", "mode": 0o755},
            "/data/bcs/env": b"BCS=1\n",
            "/run/flannel/subnet.env": "FLANNEL_MTU=1450\n",
        },
        symlinks={"/etc/localtime": "../usr/share/zoneinfo/Asia/Shanghai"},
        remove=["/etc/os-release"],
        dirs=["/data/bcs/localpv/vol01", "/etc/kubernetes/manifests"],
    )
    r = h.run(
        "cat /etc/fstab; cat /etc/bkdoctor-testbed-marker; echo; cat /etc/redhat-release;"
        " cat /data/bcs/env /run/flannel/subnet.env; readlink /etc/localtime;"
        " stat -c %a /etc/profile.d/bk.sh; test -d /data/bcs/localpv/vol01 && echo DIR;"
        " test -d /etc/kubernetes/manifests && echo DIR2;"
        " test -e /etc/os-release || echo NO-OS-RELEASE; cat /var/run/flannel/subnet.env"
    )
    s = out(r)
    assert "/dev/mapper/centos-swap swap" in s
    assert marker in s
    assert "CentOS Linux release 7.9" in s
    assert "BCS=1" in s and s.count("FLANNEL_MTU=1450") == 2
    assert "../usr/share/zoneinfo/Asia/Shanghai" in s
    assert "755\n" in s and "DIR\n" in s and "DIR2\n" in s and "NO-OS-RELEASE" in s
    # the rest of /etc is still the machine's (overlay lowerdir)
    assert h.run("test -f /etc/passwd && test -f /etc/debian_version").returncode == 0
    # relative paths resolve in the host too (nsenter --wdns, not --wd)
    assert marker in out(h.run("cat etc/bkdoctor-testbed-marker"))
    # seen from outside through /proc/<pid>/root
    assert h.read("/etc/bkdoctor-testbed-marker").decode() == marker
    # the machine is untouched
    assert not os.path.exists("/etc/bkdoctor-testbed-marker")
    assert not os.path.exists("/etc/redhat-release")
    assert os.path.exists("/etc/os-release")
    assert not os.path.exists("/data/bcs")
    assert "centos-swap" not in open("/etc/fstab").read()
    assert (
        not os.path.islink("/etc/localtime") or os.readlink("/etc/localtime") != "../usr/share/zoneinfo/Asia/Shanghai"
    )


def test_proc_and_sys_files(nshost_factory):
    h = nshost_factory(
        "node1",
        files={
            "/proc/swaps": SWAPS,
            "/proc/sys/vm/swappiness": "30\n",
            "/sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never\n",
        },
    )
    s = out(h.run("cat /proc/swaps /proc/sys/vm/swappiness /sys/kernel/mm/transparent_hugepage/enabled"))
    assert "/dev/dm-1" in s and "partition" in s
    assert "30\n" in s and "[always] madvise never" in s
    # read-only binds
    assert h.run("echo 1 > /proc/sys/vm/swappiness", check=False).returncode != 0
    with open("/proc/swaps") as f:
        assert "/dev/dm-1  " not in f.read()


def test_selinux_enforce_present(nshost_factory):
    h = nshost_factory("sel", selinux_enforce="1")
    assert out(h.run("cat /sys/fs/selinux/enforce")) == "1"
    # the rest of /sys/fs is still there, cgroups included
    s = out(h.run("ls /sys/fs; ls /sys/fs/cgroup"))
    for entry in os.listdir("/sys/fs"):
        assert entry in s
    for entry in os.listdir("/sys/fs/cgroup"):
        assert entry in s
    assert "cgroup" in out(h.run("grep ' /sys/fs/cgroup' /proc/self/mountinfo"))
    h0 = nshost_factory("sel0", selinux_enforce="0")
    assert out(h0.run("cat /sys/fs/selinux/enforce")) == "0"
    assert not os.path.exists("/sys/fs/selinux")


def test_selinux_absent(nshost_factory):
    h = nshost_factory("nosel")
    assert h.run("test -e /sys/fs/selinux", check=False).returncode == 1
    assert (
        h.run(
            "test -d /sys/fs/cgroup/memory || test -d /sys/fs/cgroup/unified"
            " || test -f /sys/fs/cgroup/cgroup.controllers"
        ).returncode
        == 0
    )


def test_hostname(nshost_factory):
    machine = socket.gethostname()
    h = nshost_factory("bk-master-1")
    assert out(h.run("hostname")).strip() == "bk-master-1"
    assert out(h.run("cat /etc/hostname")).strip() == "bk-master-1"
    h2 = nshost_factory("n2", hostname="node-2.example")
    assert out(h2.run("uname -n")).strip() == "node-2.example"
    assert socket.gethostname() == machine


def test_private_pid_view_and_network(nshost_factory):
    h = nshost_factory("pids")
    comms = out(h.run("cat /proc/[0-9]*/comm")).split()
    # init (python reaper), the sh and its cat: nothing of the machine
    assert len(comms) <= 4, comms
    assert "process_api" not in comms and "pytest" not in " ".join(comms)
    assert out(h.run("echo $$")).strip() != ""
    assert out(h.run("readlink /proc/1/exe; cat /proc/1/comm")).strip()
    # own network namespace with only lo, up; /sys/class/net matches it
    assert out(h.run("ls /sys/class/net")).split() == ["lo"]
    assert "UP" in out(h.run("ip -o link show lo"))
    assert h.pid in h.pids()
    assert set(os.listdir(f"/proc/{h.pid}/root/etc")) >= {"passwd", "hostname"}


def test_bind_mount_inside_only(nshost_factory):
    h = nshost_factory("mnt", dirs=["/data/bcs/localpv/vol01", "/mnt/blueking/vol01"])
    h.run("echo payload > /data/bcs/localpv/vol01/f && mount --bind /data/bcs/localpv/vol01 /mnt/blueking/vol01")
    assert out(h.run("cat /mnt/blueking/vol01/f")) == "payload\n"
    assert "/mnt/blueking/vol01" in out(h.run("cat /proc/self/mountinfo"))
    assert "/mnt/blueking/vol01" in out(h.run("findmnt -rn -o TARGET /mnt/blueking/vol01"))
    assert "/mnt/blueking" not in machine_mountinfo()
    assert not os.path.exists("/mnt/blueking")


def test_binds_param(nshost_factory, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("world\n")
    h = nshost_factory("binds", binds={"/mnt/blueking/vol02": str(src)})
    assert out(h.run("cat /mnt/blueking/vol02/hello")) == "world\n"
    assert "/mnt/blueking/vol02" in out(h.run("cat /proc/self/mountinfo"))
    assert "/mnt/blueking/vol02" not in machine_mountinfo()


def test_overlay_extra_dir(nshost_factory):
    h = nshost_factory(
        "ovl",
        overlays=["/etc", "/usr/local/bin"],
        files={"/usr/local/bin/kubectl": {"content": "#!/bin/sh\necho fake-kubectl\n", "mode": 0o755}},
    )
    assert out(h.run("kubectl")) == "fake-kubectl\n"
    assert (
        not os.path.exists("/usr/local/bin/kubectl")
        or "fake-kubectl" not in open("/usr/local/bin/kubectl", errors="replace").read()
    )


def test_bad_paths_rejected():
    with pytest.raises(ValueError, match="/usr/bin/foo"):
        NsHost("bad", files={"/usr/bin/foo": "x"})
    with pytest.raises(ValueError, match="/var/lib/x"):
        NsHost("bad", remove=["/var/lib/x"])
    with pytest.raises(ValueError):
        NsHost("bad", files={"relative/path": "x"})


def test_run_check_and_input(nshost_factory):
    h = nshost_factory("run")
    assert h.run("cat", input=b"abc").stdout == b"abc"
    r = h.run("echo oops >&2; exit 3", check=False)
    assert r.returncode == 3 and r.stderr == b"oops\n"
    with pytest.raises(NsRunError) as ei:
        h.run("echo bad >&2; exit 4")
    assert ei.value.returncode == 4 and "bad" in str(ei.value)
    argv = h.nsenter_argv()
    assert argv[:3] == ["nsenter", "-t", str(h.pid)] and argv[-1] == "--"


# ---------------------------------------------------------------- cleanup


WATCHED = ("/etc", "/data", "/mnt", "/run", "/sys", "/sys/fs", "/sys/fs/selinux", "/proc", "/proc/swaps", "/dev/shm")


def _watched_mounts(mountinfo: str) -> list[str]:
    return sorted(ln.split()[4] for ln in mountinfo.splitlines() if ln.split()[4] in WATCHED)


def _assert_gone(pids, tmp, host_pid):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)]
    assert not pid_alive(host_pid)
    assert not os.path.exists(tmp)
    assert tmp not in machine_mountinfo()


def test_stop_cleans_up_even_when_body_raises():
    h = NsHost("boom", files={"/proc/swaps": SWAPS, "/data/x": "y"}, selinux_enforce="1")
    before = machine_mountinfo()
    with pytest.raises(RuntimeError, match="body failed"):
        with h:
            h.run("sleep 300 >/dev/null 2>&1 & mount -t tmpfs tmpfs /mnt")
            pids, tmp, pid = h.pids(), h.tmpdir, h.pid
            assert len(pids) >= 2
            raise RuntimeError("body failed")
    _assert_gone(pids, tmp, pid)
    assert _watched_mounts(machine_mountinfo()) == _watched_mounts(before)
    assert not os.path.exists("/sys/fs/selinux")
    h.stop()  # idempotent
    assert not h.started


def test_factory_stops_all_on_error():
    f = NsHostFactory()
    a = f("a")
    b = f("b")
    pids = a.pids() + b.pids()
    tmps = [a.tmpdir, b.tmpdir]
    with pytest.raises(ZeroDivisionError):
        try:
            1 / 0
        finally:
            f.close()
    for p in pids:
        assert not pid_alive(p)
    for t in tmps:
        assert not os.path.exists(t)


def test_namespace_dies_with_the_test_process(tmp_path):
    """If the process that started a host dies without stop() (e.g. pytest is
    killed), PDEATHSIG + unshare --kill-child take the namespace down."""
    code = (
        "import sys, os; sys.path.insert(0, %r)\n"
        "from testbed.hostns import NsHost\n"
        "h = NsHost('orphan', workdir=%r).start()\n"
        "h.run('sleep 300 >/dev/null 2>&1 &')\n"
        "print(' '.join(map(str, h.pids())), flush=True)\n"
        "os._exit(0)\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), str(tmp_path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pids = [int(p) for p in r.stdout.split()]
    assert len(pids) >= 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)]
    assert str(tmp_path) not in machine_mountinfo()


def test_failed_setup_is_cleaned_up():
    h = NsHost("fail", files={"/proc/no-such-file-here": "x"})
    with pytest.raises(NsHostError, match="no-such-file-here"):
        h.start()
    assert not h.started
    assert h._tmp and not os.path.exists(h._tmp)
    assert h._holder.poll() is not None


# ---------------------------------------------------------------- dockerd

needs_dockerd = pytest.mark.skipif(
    not shutil.which("dockerd") or not shutil.which("docker"), reason="dockerd/docker not installed"
)


@pytest.mark.docker
@needs_dockerd
def test_dockerd_start_info_reload_stop(nshost_factory):
    h = nshost_factory(
        "dk",
        files={"/etc/docker/daemon.json": json.dumps({"log-driver": "json-file", "log-opts": {"max-size": "100m"}})},
    )
    h.start_dockerd(timeout=60)
    assert h.timings["dockerd"] < 30
    info = json.loads(out(h.docker("info", "--format", "{{json .}}")))
    assert info["DockerRootDir"] == "/data/docker"
    assert info["Driver"] == "vfs"
    assert "reg.bk.example:5000" not in json.dumps(info["RegistryConfig"])
    # the docker CLI inside the host finds the default socket too
    assert "vfs" in out(h.docker("info", "--format", "{{.Driver}}", inside=True))
    # dockerd and its containerd live in the host's PID namespace only
    comms = out(h.run("cat /proc/[0-9]*/comm")).split()
    assert "dockerd" in comms and "containerd" in comms
    # HUP reload picks up new insecure-registries
    cfg = json.loads(h.read("/etc/docker/daemon.json"))
    cfg["insecure-registries"] = ["reg.bk.example:5000"]
    h.run("cat > /etc/docker/daemon.json", input=json.dumps(cfg).encode())
    h.reload_dockerd()
    deadline = time.monotonic() + 10
    while True:
        reg = out(h.docker("info", "--format", "{{json .RegistryConfig.IndexConfigs}}"))
        if "reg.bk.example:5000" in reg:
            break
        assert time.monotonic() < deadline, reg
        time.sleep(0.1)
    assert json.loads(reg)["reg.bk.example:5000"]["Secure"] is False
    # stop kills dockerd and containerd
    pids, tmp, pid = h.pids(), h.tmpdir, h.pid
    dpid = h.dockerd_pid()
    h.stop()
    assert dpid in pids
    _assert_gone(pids, tmp, pid)
    assert (
        not os.path.exists("/etc/docker/daemon.json") or "reg.bk.example" not in open("/etc/docker/daemon.json").read()
    )


@pytest.mark.docker
@needs_dockerd
def test_dockerd_bcs_style_daemon_json(nshost_factory):
    """What bcs.sh writes: data-root, storage-driver in the file (no clashing
    flags), systemd cgroup driver (dockerd starts; no systemd needed to start)."""
    cfg = {
        "data-root": "/data/bcs/service/docker",
        "exec-opts": ["native.cgroupdriver=systemd"],
        "registry-mirrors": ["https://mirror.bk.example"],
        "max-concurrent-downloads": 10,
        "live-restore": True,
        "log-level": "info",
        "log-opts": {"max-size": "100m", "max-file": "5"},
        "storage-driver": "overlay2",
        "bip": "172.17.0.1/16",
    }
    h = nshost_factory("bcs", files={"/etc/docker/daemon.json": json.dumps(cfg)})
    argv = h.dockerd_argv()
    assert "--data-root" not in argv and "--storage-driver" not in argv
    assert "--bridge=none" not in argv and "--config-file" in argv
    h.start_dockerd(timeout=60)
    info = json.loads(out(h.docker("info", "--format", "{{json .}}")))
    assert info["DockerRootDir"] == "/data/bcs/service/docker"
    assert info["CgroupDriver"] == "systemd"
    assert info["Driver"] == "overlay2"
    assert info["LiveRestoreEnabled"] is True


@pytest.mark.docker
@needs_dockerd
def test_dockerd_without_daemon_json(nshost_factory):
    h = nshost_factory("dk0", remove=["/etc/docker/daemon.json"])
    assert "--config-file" not in h.dockerd_argv()
    h.start_dockerd(timeout=60)
    assert out(h.docker("version", "--format", "{{.Server.Version}}")).strip()


@pytest.mark.docker
@needs_dockerd
def test_dockerd_bad_config_reports_log(nshost_factory):
    h = nshost_factory("dkbad", files={"/etc/docker/daemon.json": "{not json"})
    with pytest.raises(NsHostError, match="dockerd exited"):
        h.start_dockerd(timeout=20)


def test_daemon_json_data_root_on_real_disk_refused(nshost_factory):
    h = nshost_factory("dkroot", files={"/etc/docker/daemon.json": '{"data-root": "/var/lib/docker"}'})
    with pytest.raises(NsHostError, match="data-root"):
        h.dockerd_argv()


# ---------------------------------------------------------------- chronyd

needs_chrony = pytest.mark.skipif(not shutil.which("chronyd"), reason="chrony not installed")


@needs_chrony
@pytest.mark.parametrize("synced,expect", [(True, "Normal"), (False, "Not synchronised")])
def test_chronyd(nshost_factory, synced, expect):
    h = nshost_factory("ntp")
    h.start_chronyd(synced=synced)
    s = out(h.run("chronyc tracking"))
    leap = [ln for ln in s.splitlines() if ln.startswith("Leap status")]
    assert leap and leap[0].split(":", 1)[1].strip() == expect
    assert "chronyd" in out(h.run("cat /proc/[0-9]*/comm")).split()


# ---------------------------------------------------------------- network + sshd


def links_of(net: TestNet) -> set[str]:
    """The bridge and veths of one TestNet (other test processes may have their own)."""
    return {
        n
        for n in os.listdir("/sys/class/net")
        if n == net.bridge or (n.startswith(f"bkd{net.k}v") and n[len(f"bkd{net.k}v") :].isdigit())
    }


def rules_for(bridge: str) -> list[str]:
    r = subprocess.run(["ip", "-4", "rule", "show"], capture_output=True, text=True, check=True)
    return [ln for ln in r.stdout.splitlines() if f"iif {bridge} " in ln + " "]


def test_testnet_hosts_talk_over_the_bridge(nshost_factory):
    with TestNet() as net:
        assert net.bridge.startswith("bkdbr") and str(net.subnet).startswith("198.1")
        assert net.subnet.subnet_of(__import__("ipaddress").ip_network("198.18.0.0/15"))
        assert (
            f"inet {net.gateway}/24"
            in subprocess.run(["ip", "-4", "addr", "show", net.bridge], capture_output=True, text=True).stdout
        )
        assert rules_for(net.bridge) and "prohibit" in rules_for(net.bridge)[0]
        with open(f"/proc/sys/net/ipv4/conf/{net.bridge}/forwarding") as f:
            assert f.read().strip() == "0"
        a = nshost_factory("neta", net=net)
        b = nshost_factory("netb", net=net)
        assert a.address != b.address and a.address.startswith(str(net.subnet.network_address)[:-1])
        r = out(a.run("ip -4 -o addr show eth0; ip route"))
        assert f"inet {a.address}/24" in r and f"default via {net.gateway} dev eth0" in r
        # host -> host (switched) and machine -> host
        b.start_silent_listener(5000)
        a.run(f"python3 -c \"import socket; socket.create_connection(('{b.address}', 5000), timeout=3)\"")
        socket.create_connection((b.address, 5000), timeout=3).close()
        # nothing leaves the test net: an outside address is not routed
        r = a.run(
            'python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
            "s.settimeout(0.5); s.connect(('192.0.2.77', 9)); s.send(b'x'); s.recv(1)\"",
            check=False,
        )
        assert r.returncode != 0
        assert links_of(net) == {net.bridge, f"bkd{net.k}v2", f"bkd{net.k}v3"}
        a.stop()
        assert links_of(net) == {net.bridge, f"bkd{net.k}v3"}
    assert not rules_for(net.bridge)
    assert links_of(net) == set()  # b's veth went with the bridge
    b.stop()
    assert links_of(net) == set()


def test_testnet_torn_down_when_the_test_fails():
    factory = SSHFleetFactory()
    with pytest.raises(ZeroDivisionError):
        try:
            fleet = factory(2)
            assert len(links_of(fleet.net)) == 3
            1 / 0
        finally:
            factory.close()
    assert links_of(fleet.net) == set()
    assert not rules_for(fleet.net.bridge)
    assert not os.path.exists(fleet.workdir)
    assert not any(pid_alive(p) for h in fleet.hosts for p in [h.pid])


def test_failed_start_releases_the_address():
    with TestNet() as net:
        h = NsHost("netfail", net=net, files={"/proc/no-such-file-here": "x"})
        with pytest.raises(NsHostError):
            h.start()
        assert net._used == set() and links_of(net) == {net.bridge}
        ok = NsHost("netok", net=net).start()
        try:
            assert ok.address == str(net.subnet.network_address + 2)
        finally:
            ok.stop()


def test_stale_bridge_of_a_dead_process_is_reaped():
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(p.stdout)
    name = "bkdbr509"
    if os.path.exists(f"/sys/class/net/{name}"):
        pytest.skip(f"{name} in use")
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", "dev", name, "alias", f"bkdoctor-testnet pid={dead} start=1"], check=True)
        subprocess.run(
            ["ip", "-4", "rule", "add", "iif", "bkdbr508", "pref", str(RULE_PREF + 508), "prohibit"], check=True
        )  # a rule left behind by a bridge that is gone
        with TestNet() as net:
            assert net.bridge != name
            assert not os.path.exists(f"/sys/class/net/{name}")
            assert not rules_for("bkdbr508")
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(
            ["ip", "-4", "rule", "del", "iif", "bkdbr508", "pref", str(RULE_PREF + 508)], capture_output=True
        )


needs_ssh = pytest.mark.skipif(ssh_unavailable() is not None, reason=str(ssh_unavailable()))


@needs_ssh
def test_sshd_host_with_openssh_client(ssh_fleet, tmp_path):
    with open("/etc/shadow", "rb") as f:
        shadow = f.read()
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    t0 = time.monotonic()
    fleet = ssh_fleet(1, sshd={"password_auth": True})
    took = time.monotonic() - t0
    h = fleet[0]
    print(f"\n[timing] one host + sshd: {took:.3f}s {h.timings}")
    assert took < 5
    assert h.host_key_pub.startswith("ssh-ed25519 ") and len(h.host_key_pub.split()) == 2
    assert h.known_hosts_line() == f"{h.address} {h.host_key_pub}"
    with open(fleet.known_hosts) as f:
        assert f.read() == h.known_hosts_line() + "\n"
    # the real OpenSSH client, strict host key checking against the fleet's known_hosts
    r = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            fleet.client_key,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={fleet.known_hosts}",
            "-o",
            "ConnectTimeout=5",
            f"root@{h.address}",
            "uname -n; id -u",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "node1\n0\n"
    # root's password only in the host's overlay /etc/shadow; login records hidden
    assert h.root_password and b"root:$" in h.read("/etc/shadow")
    with open("/etc/shadow", "rb") as f:
        assert f.read() == shadow
    with open("/etc/passwd", "rb") as f:
        assert f.read() == passwd
    assert "PasswordAuthentication yes" in open(os.path.join(h.tmpdir, "sshd_config_22")).read()
    assert os.stat(h.root + "/run/sshd").st_mode & 0o777 == 0o755
    h.add_user("bkuser", sudo="nopasswd", authorized_key=fleet.client_pub)
    assert b"bkuser:x:" in h.read("/etc/passwd") and b"bkuser:*:" in h.read("/etc/shadow")
    assert h.read("/etc/sudoers.d/nshost-bkuser") == b"bkuser ALL=(ALL:ALL) NOPASSWD: ALL\n"
    with open("/etc/passwd", "rb") as f:
        assert f.read() == passwd
    assert not os.path.exists("/etc/sudoers.d/nshost-bkuser")
    # stop_sshd: the port refuses
    h.stop_sshd()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((h.address, 22), timeout=3)


@needs_ssh
def test_ssh_fleet_inventory(ssh_fleet, tmp_path):
    from bkdoctor.inputs.inventory import load_inventory

    fleet = ssh_fleet(2, shared_host_key=True)
    assert fleet[0].host_key_pub == fleet[1].host_key_pub
    path = fleet.inventory_yaml(tmp_path / "hosts.yaml", roles={"node1": ["master", "control"]})
    inv = load_inventory(path)
    assert [(h.name, h.address, h.roles) for h in inv.hosts] == [
        ("node1", fleet[0].address, ("master", "control")),
        ("node2", fleet[1].address, ("node",)),
    ]
    assert inv.ssh == {
        "user": "root",
        "identity_file": fleet.client_key,
        "known_hosts": fleet.known_hosts,
        "connect_timeout": 5,
    }
