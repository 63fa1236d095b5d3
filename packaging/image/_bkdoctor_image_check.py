"""Imported at interpreter start in the bkdoctor image (via bkdoctor-image-check.pth in the venv).

Debian bookworm's glibc creates threads with the clone3 system call and falls back to clone only when the
kernel answers ENOSYS. Docker 19.03's default seccomp profile does not know clone3; with a runc older than
1.0.0-rc93 (containerd.io 1.4.3 and older, common next to docker-ce 19.03 on CentOS 7) the call is refused
with EPERM instead, so no thread can start, and a scan would die half-way with "can't start new thread".
Say what to do instead, before any work is done.
"""

import os
import sys
import threading


def _check() -> None:
    try:
        t = threading.Thread(target=lambda: None, name="bkdoctor-image-check", daemon=True)
        t.start()
        t.join()
    except RuntimeError as e:  # "can't start new thread"
        sys.stderr.write(
            f"bkdoctor: this container cannot start threads ({e}).\n"
            "The container runtime's seccomp profile refuses the clone3 system call with EPERM (Docker 19.03\n"
            "with a runc older than 1.0.0-rc93, i.e. containerd.io <= 1.4.3). Either add\n"
            "    --security-opt seccomp=unconfined\n"
            "to `docker run`, or upgrade containerd.io (>= 1.4.4) or Docker (>= 20.10.10).\n"
            "bkdoctor: 容器内无法创建线程：容器运行时的 seccomp 配置以 EPERM 拒绝了 clone3 系统调用\n"
            "（Docker 19.03 搭配 runc 1.0.0-rc93 之前的版本，即 containerd.io <= 1.4.3）。\n"
            "请在 docker run 中加上 --security-opt seccomp=unconfined，或升级 containerd.io (>= 1.4.4) / Docker (>= 20.10.10)。\n"
        )
        sys.stderr.flush()
        os._exit(71)  # EX_OSERR; SystemExit would not get out of site's .pth processing cleanly


_check()
