"""What rule files import: the model, result helpers, guide sections and small pure helpers."""
from __future__ import annotations

from .facts.host import version_tuple
from .model import FactUnavailable, Guide, Rule, T, errored, failed, passed, skipped, warned

# Sections of the deployment guide (../shared/seed/000_ac029a12e5ebe66c.txt), with their line numbers.
G_NETWORK = Guide("一.2", "网络要求", 24)
G_HARDWARE = Guide("一.3", "硬件要求", 40)
G_NODE_SPEC = Guide("一.3.2.2", "资源规格", 62)
G_OS = Guide("一.4.1", "操作系统", 78)
G_KERNEL = Guide("一.4.2", "内核与系统配置", 88)
G_TIME = Guide("一.4.3", "时间同步", 97)
G_CONTAINER = Guide("一.4.4", "容器与K8s环境", 107)
G_DOCKERD = Guide("三.4.1", "调整 Dockerd 配置（内网镜像加速）", 381)
G_LOG_DIR = Guide("四.4.2.2", "日志目录配置", 547)
G_LOCALPV = Guide("五.2.3", "PV目录制备", 727)
G_HOSTS = Guide("六.4.1", "配置DNS或Hosts文件", 1077)
G_NODE_DNS = Guide("七.2", "配置Node DNS解析", 1227)
G_REGISTRY_PROXY = Guide("二", "Docker Registry V2 缓存代理部署方案", 132)
G_REGISTRY_MIRRORS = Guide("二.4.2", "多Node节点配置", 242)
G_INGRESS = Guide("四.6", "安装入口网关", 593)
G_COREDNS = Guide("四.6.3", "配置 CoreDNS", 609)
G_STORAGE = Guide("五.2", "供应本地存储卷 (LocalPV)", 706)
G_BASE = Guide("六.3", "分层部署流程", 977)
G_MONITOR_GATES = Guide("十二.2.1", "版本依赖检查", 2223)
G_K8S = Guide("三.2.2", "验证部署成功", 327)
G_INSECURE = Guide("七.4.1", "调整dockerd使用HTTP协议访问Registry（推荐）", 1284)

HOST_ROLES = ("control", "master", "node")
K8S_ROLES = ("master", "node")


def version_lt(a: str, b: str) -> bool:
    return version_tuple(a) < version_tuple(b)


def gb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024 / 1024, 1)




def collect(fleet, fact):
    """For fleet rules: ({host: value}, {host: FactUnavailable}) of one fact over every member host."""
    values, errors = {}, {}
    for name, facts in fleet.items():
        try:
            values[name] = facts.get(fact)
        except FactUnavailable as e:
            errors[name] = e
    return values, errors


def majority(values):
    """The most common value (ties: the smallest, for a stable answer) and its count."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    if not counts:
        return None, 0
    best = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[0]
    return best


ALL_ROLES = ("control", "master", "node", "registry-proxy")
