#!/usr/bin/env python3
"""The CPU of each command the host probe still runs, one at a time on this machine (issue 16: where a probe's host
CPU goes). Each command runs N times; its CPU is the children's user+system time (getrusage) divided by N.

Not the test hosts' numbers (their /etc, chronyd, kubelet stand-in differ), and not a CentOS 7 host's (its curl,
systemd and procps are older builds): the relative cost of the commands, to decide which is worth replacing.
Usage: python3 bench/probe_commands.py [-n 50]"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess

COMMANDS = [
    ("sh -c true (a shell's start)", ["sh", "-c", "true"]),
    ("date (the clock sample)", ["date", "+%s.%N %z"]),
    ("env -i cat (the file batch)", ["env", "-i", "BKD_SEP=x", "/bin/cat", "/proc/self/environ", "/etc/hosts"]),
    ("timeout getent (names)", ["timeout", "-k", "1", "3", "getent", "ahostsv4", "localhost"]),
    ("readlink /etc/localtime", ["readlink", "/etc/localtime"]),
    ("cat /proc/[0-9]*/stat (processes)", ["sh", "-c", "cat /proc/[0-9]*/stat >/dev/null 2>&1"]),
    ("ps -eo stat=,comm= (before)", ["ps", "-eo", "stat=,comm="]),
    ("curl http (registry Ingress)", ["curl", "-s", "-o", "/dev/null", "--max-time", "1", "http://127.0.0.1:9/"]),
    ("timeout sh -c (a bounded group)", ["timeout", "-k", "5", "15", "/bin/sh", "-c", "true"]),
    ("chronyc -n tracking", ["chronyc", "-n", "tracking"]),
    ("systemctl is-enabled firewalld", ["systemctl", "is-enabled", "firewalld"]),
    ("iptables -w -S", ["iptables", "-w", "-S"]),
    ("df -P -k / /data", ["df", "-P", "-k", "/", "/data"]),
]
# kubelet on a real node is a Go binary (the test hosts' is a shell stand-in): a Kubernetes 1.20 binary's start-up is
# the same, and .ci/run (test.sh -> tests/kube/build-apiserver.sh) builds kube-apiserver v1.20.2 from Debian's
# source into /var/cache/bkdoctor -- or name another with BKDOCTOR_BENCH_GO_BIN
GO_K8S_BIN = os.environ.get("BKDOCTOR_BENCH_GO_BIN", "/var/cache/bkdoctor/kube-apiserver-v1.20.2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    a = ap.parse_args()
    print(f"# load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, n={a.n}, {len(os.listdir('/proc'))} /proc entries")
    print("| command | CPU a run |\n|---|---|")
    rows = [(label, argv, {}) for label, argv in COMMANDS]
    if os.access(GO_K8S_BIN, os.X_OK):
        go = os.path.basename(GO_K8S_BIN)
        rows += [
            (f"{go} --version (kubelet's Go start-up, before)", [GO_K8S_BIN, "--version"], {}),
            (f"GOGC=off {go} --version (the probe's kubelet)", [GO_K8S_BIN, "--version"], {"GOGC": "off"}),
        ]
    for label, argv, env in rows:
        if not shutil.which(argv[0]):
            print(f"| {label} | (not installed) |")
            continue
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(a.n):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ms = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / a.n * 1000
        print(f"| {label} | {ms:.2f} ms |")


if __name__ == "__main__":
    main()
