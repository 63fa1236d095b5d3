"""Default thresholds, from the guide (§一) and domain.md. An inventory's `thresholds:` overrides any key."""

from __future__ import annotations

import copy
import re
from typing import Any

from bkdoctor.model import BadInput, T

# Every string threshold has its shape in SHAPES below (a URL, an absolute path, a name, a version): they reach
# commands and files on the hosts (tests/test_safety_inj23.py holds every string key to one).
DEFAULTS: dict[str, Any] = {
    # §一.4.1 / §一.3.1: CentOS 7.x, 7.9 recommended
    "os_id": "centos",
    "os_major": "7",
    "os_recommended": "7.9",
    # §一.4.2
    "kernel_min": "3.10.0",
    # §一.4.4
    "docker_min": "19.03",
    "kubelet_min": "1.20",
    "kubelet_max_tested": "1.23",
    # §一.4.3
    "timezone": "Asia/Shanghai",
    # §一.3: per role, minimum (fail below) and recommended (warn below). GB as the guide writes them.
    "resources": {
        "control": {"min": {"cpu": 2, "mem_gb": 2, "disk_gb": 100}, "rec": {"cpu": 4, "mem_gb": 8, "disk_gb": 200}},
        "master": {"min": {"cpu": 4, "mem_gb": 8, "disk_gb": 100}, "rec": {"cpu": 8, "mem_gb": 16, "disk_gb": 200}},
        "node": {"min": {"cpu": 8, "mem_gb": 32, "disk_gb": 100}, "rec": {"cpu": 16, "mem_gb": 64, "disk_gb": 500}},
        # §二.2.1: disk >= 100GB; its CPU and memory are not in the guide (the control machine's, as a floor)
        "registry-proxy": {
            "min": {"cpu": 2, "mem_gb": 2, "disk_gb": 100},
            "rec": {"cpu": 4, "mem_gb": 8, "disk_gb": 200},
        },
    },
    # Memory: a machine with 32 GiB shows ~31.3 GiB in MemTotal (the kernel keeps ~2-4%): compare against the
    # nominal size times this factor, so that honest machines pass and a smaller one does not (0.9 let 28.8 GiB
    # pass as 32 GB).
    "size_tolerance": 0.95,
    # §一.3.2.2: /data for local storage, in the guide's unit: GB = 10^9 bytes, compared exactly (no tolerance)
    "data_disk_gb": {"master": 100, "node": 90},
    # §五.2.2: free space for the LocalPV source dir on every node, GB = 10^9 bytes
    "localpv_source_min_gb": 100,
    # §一.3.2.2: dynamic storage (NFS) needs >= 230 GB free
    "nfs_min_free_gb": 230,
    # §一.4.1: CentOS 7.9 64位 (`uname -m`)
    "os_arch": "x86_64",
    # bcs.sh's daemon.json
    "docker_data_root": "/data/bcs/lib/docker",
    "docker_cgroup_driver": "systemd",
    "docker_socket": "/var/run/docker.sock",
    # §五.2.3: LocalPV
    "localpv_count": 20,
    "localpv_mount_dir": "/mnt/blueking",
    "localpv_source_dir": "/data/bcs/localpv",
    # domain.md: names every node needs in /etc/hosts (prefixes of BK_DOMAIN; "" is the domain itself)
    "hosts_names": ["", "bkrepo", "docker", "bknodeman", "apps"],
    "hosts_extra_names": ["k8s-api.bcs.local"],
    # §六.4.1: the 20 names the control machine (the operator's side) resolves to the ingress
    "hosts_guide_names": [
        "",
        "bkrepo",
        "docker",
        "helm",
        "bkpaas",
        "bkuser",
        "bkapi",
        "apigw",
        "bkiam",
        "cmdb",
        "job",
        "bknodeman",
        "apps",
        "bcs",
        "bklog",
        "bkmonitor",
        "devops",
        "codecc",
        "lesscode",
        "bk-apicheck",
    ],
    # time sync: offset reported by chronyc above this is a warning
    "time_offset_warn_s": 1.0,
    # fleet clock skew against the control machine (bk-repo tokens expire at ~60 s)
    "clock_skew_warn_s": 1.0,
    "clock_skew_fail_s": 60.0,
    # §四.6.3 / domain.md: the BlueKing names CoreDNS must resolve in-cluster (prefixes of BK_DOMAIN)
    "coredns_names": [
        "",
        "bkrepo",
        "docker",
        "bkapi",
        "bkpaas",
        "bkiam-api",
        "bkiam",
        "apps",
        "bknodeman",
        "job",
        "jobapi",
    ],
    "coredns_extra_names": [],  # any further names a site wants checked
    # §十一.4: with container management (BCS) CoreDNS also resolves these
    "coredns_bcs_names": ["bcs", "bcs-api", "docker", "helm"],
    # §十二.2.1: version gates before monitor/log
    "version_gates": {"bk-gse": "2.1.2-beta.20", "bk-apigateway": "1.11.3"},
    # §十二.2.1: `cat VERSION` in the install dir, before monitor/log
    "bk_version_min": "7.1.3",
    # §九.5.3: bk-nodeman in environments/default/version.yaml
    "nodeman_min": "2.4.4",
    # §一.5: nodes per suite (minimum, recommended), a "node" being §一.3.2.2's Node (8C/32G minimum)
    "suites_nodes": {"base": [2.5, 3], "bcs": [0.7, 1], "monitor": [1.5, 2], "ci": [2, 5]},
    "monitor_container_storage_gb": 500,
    # §二: the registry proxy (proxy-bkhub)
    "registry_port": 5500,
    "registry_config": "/etc/docker/registry/bkhub.yaml",
    "registry_data": "/var/lib/registry-bkhub",
    "registry_upstream": "https://hub.bktencent.com",
    "registry_storage_min_gb": 100,
    # a manifest fetched twice through the proxy (the guide's own example); "" skips that part
    "registry_probe_image": "blueking/slug-app:v1.1.0-beta.27",
    # measurements (opt-in: --measure or --rule NAME)
    "iops_dir": "/data",
    "iops_min_local": 100,  # §一.3.2.2: local disks >= 100 op/s
    "iops_min_nfs": 300,  # dynamic storage (NFS) >= 300 op/s
    "fio_runtime_s": 5,
    "fio_size": "64M",
    "bandwidth_url": "https://bkopen-1252002024.file.myqcloud.com/saas-paas3/bk_sops/bk_sops-V3.28.13.tar.gz",
    "bandwidth_seconds": 10,
    "bandwidth_min_mbps": 50,  # §一.2.1: >= 50 Mbps, 100+ recommended
    "bandwidth_rec_mbps": 100,
    "bandwidth_proxy_min_mbps": 1000,  # §二.2.1: the registry proxy host, 1Gbps
    # §一.2.2: what each role must reach (sites with internal mirrors override this)
    "endpoints": {
        "control": ["https://bkopen-1252002024.file.myqcloud.com/", "https://hub.bktencent.com/"],
        "master": ["https://hub.bktencent.com/", "https://registry-1.docker.io/v2/"],
        "node": ["https://hub.bktencent.com/", "https://registry-1.docker.io/v2/"],
        "registry-proxy": ["https://hub.bktencent.com/v2/"],
    },
}


# Bounds of every numeric threshold: (lowest, highest), by dotted key (fnmatch). A value outside them is bad input:
# `localpv_count: 100000000` would otherwise make the probe list a hundred million directories.
BOUNDS: dict[str, tuple[float, float]] = {
    "localpv_count": (1, 999),  # vol01..vol999 (the guide: 20)
    "registry_port": (1, 65535),
    "size_tolerance": (0.01, 1.0),
    "resources.*.*.cpu": (0, 1_000_000),
    "resources.*.*.mem_gb": (0, 1_000_000),
    "resources.*.*.disk_gb": (0, 10_000_000),
    "data_disk_gb.*": (0, 10_000_000),
    "registry_storage_min_gb": (0, 10_000_000),
    "time_offset_warn_s": (0, 86_400),
    "clock_skew_warn_s": (0, 86_400),
    "clock_skew_fail_s": (0, 86_400),
    "iops_min_local": (0, 1e12),
    "iops_min_nfs": (0, 1e12),
    "fio_runtime_s": (1, 600),
    "bandwidth_seconds": (1, 600),
    "bandwidth_min_mbps": (0, 1_000_000),
    "bandwidth_rec_mbps": (0, 1_000_000),
    "suites_nodes.*": (0, 10_000),  # nodes (of §一.3.2.2's node: 8 cores / 32 GB) per suite, §一.5
}
DEFAULT_BOUNDS = (0, 1_000_000_000)
MAX_LIST = 1000  # items in a list threshold (names, endpoints)
# name lists: key -> whether "" (BK_DOMAIN itself, for the prefixes under it) is allowed
NAME_LISTS = {
    "hosts_names": True,
    "hosts_guide_names": True,
    "hosts_extra_names": False,
    "coredns_names": True,
    "coredns_bcs_names": True,
    "coredns_extra_names": False,
}
MAX_STRING = 4096  # characters in a string threshold

# The shape of every string threshold (by dotted key, fnmatch). They reach command lines (the probe's curl and
# fio, a fix's ln/timedatectl, the install's registry config heredoc, the Ansible export): quoting keeps a value one
# word, but a word that starts with `-` is still an option (`-K/tmp/curl.cfg` made the probe's curl read a config)
# and a newline in a heredoc is a new line of YAML. A value of another shape is bad input.
_PATH = r"(/[A-Za-z0-9._+@-]+)+/?|/"  # absolute; `..` components are refused on their own (below)
_SEG = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_URL_SHAPE = (
    r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+",
    T("http:// 或 https:// URL（无空白或控制字符）", "an http:// or https:// URL (no blanks or control characters)"),
)
_PATH_SHAPE = (_PATH, T("绝对路径（字母、数字、'._+@-'）", "an absolute path (letters, digits, '._+@-')"))
_WORD = (r"[A-Za-z0-9][A-Za-z0-9._-]*", T("单词（字母、数字、'._-'）", "a word (letters, digits, '._-')"))
_VERSION = (r"[0-9A-Za-z][0-9A-Za-z.+_~-]*", T("版本号", "a version"))
SHAPES: dict[str, tuple[str, T]] = {
    # URLs: the probe's curl (`"$BKD_BW_URL"`, `"$BKD_REGISTRY_UPSTREAM/v2/"`), the registry proxy's config file
    "bandwidth_url": _URL_SHAPE,
    "registry_upstream": _URL_SHAPE,
    # paths on the hosts: the probe's test/df/stat/fio, the fixes, the install's registry proxy, the Ansible export
    **dict.fromkeys(
        [
            "docker_data_root",
            "docker_socket",
            "localpv_mount_dir",
            "localpv_source_dir",
            "registry_config",
            "registry_data",
            "iops_dir",
        ],
        _PATH_SHAPE,
    ),
    # names used in a command: a fix's timedatectl/ln (zone), fio --size, a path under the proxy's storage and a GET
    "timezone": (
        r"[A-Za-z0-9_+][A-Za-z0-9_+-]*(/[A-Za-z0-9_+][A-Za-z0-9_+-]*)*",
        T("时区名（如 Asia/Shanghai）", "a time zone name (like Asia/Shanghai)"),
    ),
    "fio_size": (r"[1-9][0-9]*[KkMmGgTt]?(i?[Bb])?", T("大小（如 64M）", "a size (like 64M)")),
    "registry_probe_image": (
        rf"({_SEG}(/{_SEG})*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?)?",
        T(
            "镜像名[:标签]（如 blueking/slug-app:v1.1.0-beta.27），或空",
            "an image name[:tag] (like blueking/slug-app:v1.1.0-beta.27), or empty",
        ),
    ),
    # compared only, never in a command; a plain word all the same
    **dict.fromkeys(["os_id", "os_arch", "docker_cgroup_driver"], _WORD),
    **dict.fromkeys(
        [
            "os_major",
            "os_recommended",
            "kernel_min",
            "docker_min",
            "kubelet_min",
            "kubelet_max_tested",
            "bk_version_min",
            "nodeman_min",
            "version_gates.*",
        ],
        _VERSION,
    ),
}


def _bounds(where: str) -> tuple[float, float]:
    import fnmatch

    for pat, b in BOUNDS.items():
        if fnmatch.fnmatchcase(where, pat):
            return b
    return DEFAULT_BOUNDS


def _shape(where: str) -> tuple[str, T]:
    import fnmatch

    return next(
        (v for pat, v in SHAPES.items() if fnmatch.fnmatchcase(where, pat)),
        (r"[^\x00-\x1f\x7f-\x9f]*", T("不含控制字符的字符串", "a string without control characters")),
    )


def shape_ok(where: str, v: str) -> bool:
    """Whether a string threshold has its key's shape (SHAPES); a path has no `..` component."""
    if re.fullmatch(_shape(where)[0], v) is None:
        return False
    return _shape(where)[0] != _PATH or ".." not in v.split("/")


class ThresholdError(BadInput):
    """A bad threshold and its key path (the inventory gives the line of it)."""

    def __init__(self, path: list[str], msg: T) -> None:
        super().__init__(msg)
        self.path = path


def merge(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Deep-merge overrides into the defaults; an unknown key is bad input (a typo must not be ignored)."""
    out = copy.deepcopy(DEFAULTS)
    if not overrides:
        return out
    if not isinstance(overrides, dict):
        raise ThresholdError(["thresholds"], T("thresholds: 须为映射（mapping）", "thresholds: must be a mapping"))

    def walk(dst: dict[str, Any], src: dict[str, Any], path: str) -> None:
        for k, v in src.items():
            where = f"{path}.{k}" if path else k
            keys = ["thresholds", *where.split(".")]

            def bad(msg: T) -> ThresholdError:
                return ThresholdError(keys, msg)

            if not isinstance(k, str) or k not in dst:
                raise bad(T(f"thresholds.{where}: 未知的键", f"thresholds.{where}: unknown key"))
            if isinstance(dst[k], dict):
                if not isinstance(v, dict):
                    raise bad(T(f"thresholds.{where}: 须为映射（mapping）", f"thresholds.{where}: must be a mapping"))
                walk(dst[k], v, where)
            else:
                if isinstance(dst[k], (int, float)) and not isinstance(dst[k], bool):
                    if not isinstance(v, (int, float)) or isinstance(v, bool):
                        raise bad(
                            T(
                                f"thresholds.{where}: 须为数字，而不是 {str(v)[:40]!r}",
                                f"thresholds.{where}: must be a number, not {str(v)[:40]!r}",
                            )
                        )
                    lo, hi = _bounds(where)
                    if not (lo <= v <= hi):  # NaN fails both comparisons
                        raise bad(
                            T(
                                f"thresholds.{where}: {v!r} 超出范围（{lo:g}..{hi:g}）",
                                f"thresholds.{where}: {v!r} is out of range ({lo:g}..{hi:g})",
                            )
                        )
                    if isinstance(dst[k], int) and isinstance(v, float) and not v.is_integer():
                        raise bad(
                            T(
                                f"thresholds.{where}: 须为整数，而不是 {v!r}",
                                f"thresholds.{where}: must be a whole number, not {v!r}",
                            )
                        )
                elif isinstance(dst[k], list):
                    if not isinstance(v, list):
                        raise bad(T(f"thresholds.{where}: 须为列表", f"thresholds.{where}: must be a list"))
                    if len(v) > MAX_LIST:
                        raise bad(
                            T(
                                f"thresholds.{where}: 超过 {MAX_LIST} 项",
                                f"thresholds.{where}: more than {MAX_LIST} items",
                            )
                        )
                    numeric = bool(dst[k]) and all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in dst[k]
                    )
                    if numeric:  # a list of numbers (suites_nodes: [minimum, recommended])
                        if len(v) != len(dst[k]):
                            raise bad(
                                T(
                                    f"thresholds.{where}: 须为 {len(dst[k])} 个数字的列表",
                                    f"thresholds.{where}: must be a list of {len(dst[k])} numbers",
                                )
                            )
                        lo, hi = _bounds(where)
                        if not all(
                            isinstance(x, (int, float)) and not isinstance(x, bool) and lo <= x <= hi for x in v
                        ):
                            raise bad(
                                T(
                                    f"thresholds.{where}: 每一项都须为数字（{lo:g}..{hi:g}）",
                                    f"thresholds.{where}: every item must be a number ({lo:g}..{hi:g})",
                                )
                            )
                    elif not all(isinstance(x, str) and len(x) <= MAX_STRING for x in v):
                        raise bad(
                            T(
                                f"thresholds.{where}: 每一项都须为字符串（最多 {MAX_STRING} 个字符）",
                                f"thresholds.{where}: every item must be a string (at most {MAX_STRING} characters)",
                            )
                        )
                    elif where.startswith("endpoints."):
                        # the probe splits them into words (`for u in $BKD_ENDPOINTS`): a blank splits a URL, and a
                        # word that is not a URL is a glob there (`*`: the files of the login directory)
                        for x in v:
                            if not re.fullmatch(_URL_SHAPE[0], x):
                                raise bad(
                                    T(
                                        f"thresholds.{where}: {x[:60]!r} 不是不含空白的 http(s) URL",
                                        f"thresholds.{where}: {x[:60]!r} is not an http(s) URL without blanks",
                                    )
                                )
                    elif where in NAME_LISTS:
                        # the names go into the probe's word list, /etc/hosts, CoreDNS and Ansible: DNS names only
                        from bkdoctor.safe.names import valid_host_name

                        for x in v:
                            if not (x == "" and NAME_LISTS[where]) and not valid_host_name(x):
                                raise bad(
                                    T(
                                        f"thresholds.{where}: {x[:60]!r} 不是 DNS 名称（字母、数字、'-'）",
                                        f"thresholds.{where}: {x[:60]!r} is not a DNS name (letters, digits, '-')",
                                    )
                                )
                elif isinstance(dst[k], str):
                    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                        raise bad(T(f"thresholds.{where}: 须为字符串", f"thresholds.{where}: must be a string"))
                    if len(str(v)) > MAX_STRING:
                        raise bad(
                            T(
                                f"thresholds.{where}: 超过 {MAX_STRING} 个字符",
                                f"thresholds.{where}: longer than {MAX_STRING} characters",
                            )
                        )
                    shape = _shape(where)
                    if not shape_ok(where, str(v)):
                        raise bad(
                            T(
                                f"thresholds.{where}: {str(v)[:60]!r} 须为{shape[1].zh}",
                                f"thresholds.{where}: {str(v)[:60]!r} is not {shape[1].en}",
                            )
                        )
                dst[k] = str(v) if isinstance(dst[k], str) else v

    walk(out, overrides, "")
    return out
