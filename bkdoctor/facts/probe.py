"""The batched, read-only host probe.

One POSIX `sh` script gathers every section the selected rules need in a single round trip. It runs on
CentOS 7 with nothing but its base packages (coreutils, util-linux, procps), and on anything with a
POSIX shell. It only reads: files, /proc, /sys, and `--version`/status commands. All parsing happens on
the bkdoctor side (see `facts/host.py`), so the script stays dumb and auditable.

Output framing: every section is written as

    \\n@@BKD-<nonce>:B:<name>\\n<raw output>\\n@@BKD-<nonce>:E:<name>:<exit code>\\n

The nonce is random per run, so no file content can forge a boundary. Raw output is kept as bytes: a
binary or non-UTF-8 file cannot break the framing.
"""
from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

# the docker CLI sections folded into the main probe (issue 16): skipped (rc 125) when the Engine API socket exists
_NOSOCK = '[ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && exit 125; '

# Each section: a shell snippet whose stdout+stderr and exit code are captured. Keep them read-only.
# `t` wraps commands that may hang (a stuck daemon, an NFS mount) in `timeout` when it exists.
SECTIONS: dict[str, str] = {
    "id": "id -u",
    "hostname": "uname -n",
    "uname_r": "uname -r",
    "uname_m": "uname -m",
    "os_release": "cat /etc/os-release",
    "centos_release": "cat /etc/centos-release",
    "redhat_release": "cat /etc/redhat-release",
    "proc_swaps": "cat /proc/swaps",
    "fstab": "cat /etc/fstab",
    "selinux_enforce": "cat /sys/fs/selinux/enforce",
    "selinux_config": "cat /etc/selinux/config",
    "systemd_running": "test -d /run/systemd/system && echo yes || echo no",
    "firewalld_active": "t systemctl is-active firewalld",
    "firewalld_enabled": "t systemctl is-enabled firewalld",
    "firewalld_wants": "ls -1 /etc/systemd/system/multi-user.target.wants/ /etc/systemd/system/basic.target.wants/",
    "iptables": "t iptables -w -S",
    # running processes by name; zombies (a daemon that just exited, not yet reaped) do not count
    "processes": ("if command -v ps >/dev/null 2>&1; then ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' | sort -u; "
                  "else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi"),
    "localtime_link": "readlink /etc/localtime",
    "localtime_sum": "cksum /etc/localtime /usr/share/zoneinfo/Asia/Shanghai",
    "timezone_file": "cat /etc/timezone",
    "date_z": "date +%z",
    "timedatectl": "t timedatectl status",
    "chronyc_tracking": "command -v chronyc >/dev/null 2>&1 || exit 127; t chronyc -n tracking",
    "ntpstat": "command -v ntpstat >/dev/null 2>&1 || exit 127; t ntpstat",
    "cpuinfo": "grep -c '^processor' /proc/cpuinfo",
    "nproc": "getconf _NPROCESSORS_ONLN",
    "meminfo": "cat /proc/meminfo",
    "df": "t df -P -k / /data",
    "df_data": "test -d /data || exit 3; t df -P -k /data",
    "mountinfo": "cat /proc/self/mountinfo",
    "daemon_json": "test -e /etc/docker/daemon.json || exit 3; cat /etc/docker/daemon.json",
    "docker_bins": "command -v dockerd; command -v docker; true",
    # fallback only (a second, small probe when the Engine API cannot be reached): docker CLI calls cost
    # ~30 ms each, so they are not paid on every scan
    # BKD_DOCKER_IF_NO_SOCKET (set by the engine in the main probe): run only when that socket is absent (125 if not)
    "docker_cli_info": _NOSOCK + "command -v docker >/dev/null 2>&1 || exit 127; t docker info --format '{{json .}}'",
    "docker_client": _NOSOCK + "command -v docker >/dev/null 2>&1 || exit 127; docker --version",
    "kubelet_version": "command -v kubelet >/dev/null 2>&1 || exit 127; t kubelet --version",
    "sysctl_runtime": (
        "for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do "
        "if [ -r /proc/sys/$k ]; then printf '%s=%s\\n' \"$k\" \"$(cat /proc/sys/$k)\"; "
        "else printf '%s=<absent>\\n' \"$k\"; fi; done"
    ),
    "sysctl_files": (
        "for f in /etc/sysctl.conf /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf; do "
        "[ -f \"$f\" ] && { printf '### %s\\n' \"$f\"; cat \"$f\"; echo; }; done; true"
    ),
    "modules": "cat /proc/modules",
    "module_dirs": "ls -d /sys/module/br_netfilter /sys/module/bridge 2>/dev/null; true",
    "modules_load": (
        "for f in /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules; do "
        "[ -f \"$f\" ] && { printf '### %s\\n' \"$f\"; cat \"$f\"; echo; }; done; true"
    ),
    "etc_hosts": "cat /etc/hosts",
    # what each name resolves to here (/etc/hosts or DNS, through nsswitch), as dockerd and curl see it
    # IPv4 first (ahostsv4): `getent hosts` asks AF_INET6 first, which a name in /etc/hosts with an IPv4 address
    # does not answer, and then waits on DNS; ahostsv4 answers nothing on a host without a non-loopback IPv4
    # address (AI_ADDRCONFIG), so `getent hosts` is the fallback. In parallel, each bounded, one line each.
    "getent_hosts": ("command -v getent >/dev/null 2>&1 || exit 127; for n in $BKD_HOSTS_NAMES; do "
                     "( r=$(timeout 3 getent ahostsv4 \"$n\" 2>/dev/null | head -n 1); "
                     "[ -n \"$r\" ] || r=$(timeout 3 getent hosts \"$n\" 2>/dev/null | head -n 1); "
                     "printf '%s %s\\n' \"$n\" \"${r%% *}\" ) & done; wait"),
    # LocalPV: the PV dir is custom.yaml's localpv.hostDir (§五.5), the source dir the threshold (§五.2.3)
    "localpv_dirs": (
        "for d in \"${BKD_LOCALPV_DIR:-/mnt/blueking}\"/vol* \"${BKD_LOCALPV_SRC:-/data/bcs/localpv}\"/vol*; do "
        "[ -d \"$d\" ] && echo \"$d\"; done; true"
    ),
    "localpv_df": "s=\"${BKD_LOCALPV_SRC:-/data/bcs/localpv}\"; test -d \"$s\" || exit 3; t df -P -k \"$s\"",
    # NFS shared storage (§一.3.2.2), where the inventory says it is mounted
    "nfs_df": ("[ -n \"$BKD_NFS_PATH\" ] || exit 4; test -d \"$BKD_NFS_PATH\" || exit 3; "
               "printf 'fstype %s\\n' \"$(stat -f -c %T \"$BKD_NFS_PATH\")\"; t df -P -k \"$BKD_NFS_PATH\""),
    "clock": "date -u +%s",
    # §七.3: from this node, docker.$BK_DOMAIN/v2/ through the ingress (expect 401 Unauthorized)
    "registry_ingress": ("command -v curl >/dev/null 2>&1 || exit 127; [ -n \"$BKD_DOMAIN\" ] || exit 4; "
                         "curl -s -o /dev/null --max-time 5 -w '%{http_code} %{remote_ip}' \"http://docker.$BKD_DOMAIN/v2/\"; "
                         "echo \" $?\""),
    # §三.4.1 / §七.4.2.1: a CA installed for $REGISTRY
    "registry_certs": ("[ -n \"$BKD_REGISTRY_HOST\" ] || exit 4; d=\"/etc/docker/certs.d/$BKD_REGISTRY_HOST\"; "
                       "test -d \"$d\" || exit 3; ls -1 \"$d\""),
    # §三.4.2: the control machine has kubectl, a kubeconfig and the bcs.local hosts line
    "control_sync": ("printf 'kubectl %s\\n' \"$(command -v kubectl || echo -)\"; "
                     "k=\"${KUBECONFIG:-$HOME/.kube/config}\"; "
                     "if [ -s \"$k\" ]; then printf 'kubeconfig %s\\n' \"$k\"; else printf 'kubeconfig -\\n'; fi; "
                     "grep bcs.local /etc/hosts | sed 's/^/hosts /'; true"),
    # --- the registry proxy (guide §二): its config, its storage, and HTTP GETs to it and to its upstream
    "registry_config": "test -e \"$BKD_REGISTRY_CONFIG\" || exit 3; cat \"$BKD_REGISTRY_CONFIG\"",
    "registry_storage": "test -d \"$BKD_REGISTRY_DATA\" || exit 3; t df -P -k \"$BKD_REGISTRY_DATA\"",
    "registry_http": (
        "command -v curl >/dev/null 2>&1 || exit 127; b=\"http://127.0.0.1:$BKD_REGISTRY_PORT\"; "
        "printf 'v2 %s\\n' \"$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' \"$b/v2/\")\"; "
        "printf 'upstream %s\\n' \"$(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' \"$BKD_REGISTRY_UPSTREAM/v2/\")\"; "
        "[ -n \"$BKD_REGISTRY_REPO\" ] || exit 0; "
        "for i in 1 2; do printf 'manifest%s %s\\n' \"$i\" \"$(curl -s -o /dev/null --max-time 60 "
        "-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
        "-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' "
        "-H 'Accept: application/vnd.oci.image.manifest.v1+json' -w '%{http_code} %{time_total}' "
        "\"$b/v2/$BKD_REGISTRY_REPO/manifests/$BKD_REGISTRY_TAG\")\"; done; "
        "if [ -d \"$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests\" ]; "
        "then echo 'cached yes'; else echo 'cached no'; fi"
    ),
    # --- measurements (rules tagged `slow`, opt-in). These are the only sections that write anything: fio's
    # temp file under the data dir, removed by the section itself even when fio fails.
    "fio_fstype": "stat -f -c %T \"$BKD_FIO_DIR\"",
    "fio": (
        "command -v fio >/dev/null 2>&1 || exit 127; test -d \"$BKD_FIO_DIR\" || exit 3; "
        "f=\"$BKD_FIO_DIR/.bkdoctor-fio.$$\"; trap 'rm -f \"$f\"' EXIT INT TERM; "
        "run() { timeout $((BKD_FIO_RUNTIME + 30)) fio --name=bkdoctor --filename=\"$f\" --size=\"$BKD_FIO_SIZE\" "
        "--rw=randrw --rwmixread=50 --bs=4k --ioengine=psync --iodepth=1 --runtime=\"$BKD_FIO_RUNTIME\" "
        "--time_based --output-format=json \"$@\"; }; "
        # O_DIRECT measures the disk, not the page cache; filesystems without it (tmpfs) get a buffered run
        "run --direct=1 2>/dev/null || { echo '#buffered'; run --direct=0; }"
    ),
    "bandwidth": (
        "command -v curl >/dev/null 2>&1 || exit 127; "
        "curl -sS -L -o /dev/null --connect-timeout 5 --max-time \"$BKD_BW_SECONDS\" "
        "-w '%{http_code} %{size_download} %{time_total} %{speed_download}\\n' \"$BKD_BW_URL\"; "
        "rc=$?; [ $rc -eq 28 ] && exit 0; exit $rc"  # 28: the time limit cut the download: that is the plan
    ),
    "endpoints": (
        "command -v curl >/dev/null 2>&1 || exit 127; for u in $BKD_ENDPOINTS; do "
        "r=$(curl -sS -o /dev/null --connect-timeout 5 --max-time 8 -w '%{http_code} %{time_connect}' \"$u\" 2>&1); "
        "printf '%s %s %s\\n' \"$u\" \"$?\" \"$(echo $r | tr '\\n' ' ')\"; done"
    ),
}

# sections registered at run time by the operator's site rules (bkdoctor/scan/siterules.py): name -> snippet, built
# there from the rule's parameters with every value shlex.quote'd
EXTRA_SECTIONS: dict[str, str] = {}

_PRELUDE = r"""LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
if command -v timeout >/dev/null 2>&1; then t() { timeout 10 "$@"; }; else t() { "$@"; }; fi
"""

_MARK = "@@BKD-{nonce}"


@dataclass
class Section:
    name: str
    rc: int
    out: bytes

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace")


_PARAM_RE = re.compile(r"^BKD_[A-Z0-9_]+\Z")


def build_script(names: list[str] | set[str], nonce: str | None = None,
                 params: dict[str, str] | None = None) -> tuple[str, str]:
    """Return (script, nonce) gathering the given sections, in a stable order.

    `params` become shell variables (`BKD_DOMAIN=...`) that sections may read; values are single-quoted,
    so a value can never become code."""
    nonce = nonce or secrets.token_hex(8)
    mark = _MARK.format(nonce=nonce)
    unknown = set(names) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        raise KeyError(f"unknown probe sections: {sorted(unknown)}")
    lines = ["# bkdoctor host probe: read-only", _PRELUDE]
    for k, v in sorted((params or {}).items()):
        if not _PARAM_RE.match(k):
            raise KeyError(f"bad probe parameter name {k!r}")
        lines.append(f"{k}={shlex.quote(str(v))}")
    for name in sorted(set(names)):
        lines.append(f"printf '\\n{mark}:B:{name}\\n'")
        # A subshell keeps a section's `exit` or `cd` from leaking into the next one; stdin is closed so
        # nothing can read the rest of the script.
        lines.append(f"( {SECTIONS.get(name) or EXTRA_SECTIONS[name]} ) </dev/null 2>&1")
        lines.append(f"printf '\\n{mark}:E:{name}:%s\\n' \"$?\"")
    return "\n".join(lines) + "\n", nonce


_END_RE = re.compile(rb"\n@@BKD-([0-9a-f]+):E:([a-z0-9_]+):(\d+)\n")


def parse_output(data: bytes, nonce: str) -> dict[str, Section]:
    """Split probe output into sections. Sections whose end marker is missing (the probe was cut off)
    are absent from the result, so their facts become `error`, never a silent `pass`."""
    mark = f"@@BKD-{nonce}".encode()
    out: dict[str, Section] = {}
    pos = 0
    begin_prefix = b"\n" + mark + b":B:"
    while True:
        b = data.find(begin_prefix, pos)
        if b < 0:
            break
        name_start = b + len(begin_prefix)
        nl = data.find(b"\n", name_start)
        if nl < 0:
            break
        name = data[name_start:nl].decode("ascii", errors="replace")
        end_prefix = b"\n" + mark + b":E:" + name.encode() + b":"
        e = data.find(end_prefix, nl + 1)
        if e < 0:
            break
        rc_start = e + len(end_prefix)
        rc_end = data.find(b"\n", rc_start)
        if rc_end < 0:
            break
        try:
            rc = int(data[rc_start:rc_end])
        except ValueError:
            rc = -1
        out[name] = Section(name, rc, data[nl + 1 : e])
        pos = rc_end
    return out
