"""What rule files import: the model, result helpers, guide sections and small pure helpers."""

from __future__ import annotations

from bkdoctor.facts.cluster import configmap  # noqa: F401  (re-exported for rules: the one way to read a ConfigMap)
from bkdoctor.facts.host import version_tuple  # noqa: F401  (re-exported for rules)

# Sections of the deployment guide (../shared/seed/000_ac029a12e5ebe66c.txt), with their line numbers and a short
# verbatim quote that tests/test_guide_citations.py finds inside that section. `cite(G, quote)` gives a rule
# its own quote from a shared section; NOT_IN_GUIDE marks checks from field knowledge the guide does not have.
from bkdoctor.guidetext import NOT_IN_GUIDE as _NIG

# re-exported: rule files import the model and the result helpers from here
from bkdoctor.model import (  # noqa: F401
    HOST_ROLES,
    K8S_ROLES,
    ROLES,
    FactUnavailable,
    Guide,
    Rule,
    T,
    errored,
    failed,
    passed,
    skipped,
    warned,
)
from bkdoctor.semver import semver_lt  # noqa: F401  (re-exported for rules)

G_NETWORK = Guide("一.2", "网络要求", 24, "最小公网带宽：50Mbps（建议100Mbps以上以加速镜像下载）")
G_HARDWARE = Guide("一.3", "硬件要求", 40, "| Node | 8核/32GB/100GB | 16核/64GB/500GB |")
G_NODE_SPEC = Guide("一.3.2.2", "资源规格", 62, "/data目录≥90GB（本地存储场景）")
G_OS = Guide("一.4.1", "操作系统", 78, "发行版：CentOS 7.9 64位")
G_KERNEL = Guide("一.4.2", "内核与系统配置", 88, "| Kernel版本 | ≥3.10.0 |")
G_TIME = Guide("一.4.3", "时间同步", 97, "时间同步服务：部署Chrony或NTP")
G_CONTAINER = Guide("一.4.4", "容器与K8s环境", 107, "| Kubelet | 1.20-1.23 |")
G_SUITES = Guide(
    "一.5",
    "资源评估表",
    117,
    "| 基础套餐 | 2.5 | 3 | 后台及SaaS服务 |",
    also=(("三.1", "高可用架构：Master 节点建议部署奇数台（1/3/5）"),),
)
# §七.4.1.1 step 4 (重载Docker服务), the guide's own command: a node's unit may be dockerd.service or docker.service
DOCKER_RELOAD_CMD = "systemctl reload dockerd.service || systemctl reload docker.service"
G_DOCKERD = Guide("三.4.1", "调整 Dockerd 配置（内网镜像加速）", 381, "| HTTP | `insecure-registries` |")
G_CONTROL_SYNC = Guide("三.4.2", "同步配置到中控机", 390, "grep bcs.local /etc/hosts")
G_LOG_DIR = Guide("四.4.2.2", "日志目录配置", 547, "确保所有Node节点Docker日志路径一致")
G_NODE_DNS = Guide("七.2", "配置Node DNS解析", 1227, "在集群DNS系统中添加`docker.$BK_DOMAIN`的A记录，指向`$IP1`")
G_REGISTRY_VERIFY = Guide("七.3", "验证DNS配置", 1255, "返回认证提示（如`401 Unauthorized`）")
G_REGISTRY_PROXY = Guide("二", "Docker Registry V2 缓存代理部署方案", 132, "| 存储空间 | 根据镜像体积预留≥100GB磁盘 |")
G_REGISTRY_MIRRORS = Guide("二.4.2", "多Node节点配置", 242, '"registry-mirrors": ["http://<代理服务器IP>:5500"]')
G_INGRESS = Guide("四.6", "安装入口网关", 593, "kubectl get pods -A -l app.kubernetes.io/name=ingress-nginx")
G_COREDNS = Guide(
    "四.6.3",
    "配置 CoreDNS",
    609,
    "IP1=$(kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx -o jsonpath='{.items[0].spec.clusterIP}')",
)
G_STORAGE = Guide("五.2", "供应本地存储卷 (LocalPV)", 706, "若存在`xxx (default)`：已配置默认存储类")
G_BASE = Guide("六.3", "分层部署流程", 977, "helmfile -f base-blueking.yaml.gotmpl -l seq=first sync")
G_MONITOR_GATES = Guide("十二.2.1", "版本依赖检查", 2223, "# 检查GSE版本（需≥2.1.2-beta.20）")
G_K8S = Guide("三.5", "下一步操作", 405, "kubectl get nodes -o wide")
G_INSECURE = Guide(
    "七.4.1",
    "调整dockerd使用HTTP协议访问Registry（推荐）",
    1284,
    'jq --arg k "insecure-registries" --arg v "docker.$BK_DOMAIN"',
)
NOT_IN_GUIDE = Guide(_NIG, "文档未覆盖（现场经验）/ field knowledge, not in the guide", None, None)


def cite(g: Guide, quote: str, *also: tuple[str, str]) -> Guide:
    """The same section with this rule's own quote (and further sections it draws a threshold from)."""
    return Guide(g.section, g.title, g.line, quote, tuple(also) or g.also)


def mirror_key(url: str) -> str:
    """A registry mirror URL as registry-mirrors compares it (dockerd adds a trailing /; the scheme and host are
    case-insensitive): the rule and the fix's plan agree on what is already there."""
    return url.rstrip("/").lower()


def insecure_registries(daemon_json: dict, docker: dict) -> tuple[list[str], tuple[list[str], list[str]] | None]:
    """The registries dockerd is told to reach over HTTP: (daemon.json's `insecure-registries`, the strings only;
    what the running daemon treats as insecure, from docker info: (registry names, sorted; CIDRs), or None when
    dockerd could not be asked). A daemon.json that is missing or does not parse lists none."""
    in_file = []
    if daemon_json["exists"] and not daemon_json["error"]:
        listed = (daemon_json["config"] or {}).get("insecure-registries") or []
        in_file = [r for r in listed if isinstance(r, str)]
    info = docker.get("info")
    if not info:
        return in_file, None
    rc = info.get("RegistryConfig") or {}
    indexes = (rc.get("IndexConfigs") or {}).items()
    names = sorted(n for n, ic in indexes if isinstance(ic, dict) and ic.get("Secure") is False)
    return in_file, (names, list(rc.get("InsecureRegistryCIDRs") or []))


def version_lt(a: str, b: str) -> bool:
    return version_tuple(a) < version_tuple(b)


def gb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024 / 1024, 1)


def gb_si(kb: int | None) -> float | None:
    """df's 1024-byte blocks in the guide's unit, GB = 10^9 bytes (the guide's "100GB" is a disk's size)."""
    return None if kb is None else kb * 1024 / 1e9


def fmt_gb(v: float | None) -> str:
    """Shown with one decimal, rounded down, so a value shown as 90.0 is never below 90."""
    import math

    return "?" if v is None else f"{math.floor(v * 10) / 10:.1f}"


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


ALL_ROLES = ROLES


def hosts_names(ctx) -> tuple[list[str], list[str]]:
    """(BlueKing names, other names) a host must resolve, by role: K8s nodes the names dockerd and the node
    agents use (docker.$BK_DOMAIN and the rest, §七.2), the control machine the 20 names of §六.4.1; every
    host k8s-api.bcs.local (bcs.sh, §三.4.2)."""
    th = ctx.thresholds
    prefixes = list(th["hosts_names"])
    if "control" in ctx.roles:
        prefixes += [p for p in th["hosts_guide_names"] if p not in prefixes]
    return [f"{p}.{ctx.domain}" if p else ctx.domain for p in prefixes], list(th["hosts_extra_names"])


def guide_hosts_names(ctx) -> set[str]:
    """The names the guide itself asks this host to resolve: on a K8s node docker.$BK_DOMAIN (§七.2: 将生成的`$IP1
    docker.$BK_DOMAIN`记录添加到所有Node节点), on the control machine the 20 names of §六.4.1. hosts_names' others
    (domain.md, bcs.sh's k8s-api.bcs.local) are beyond the guide."""
    out = set()
    if set(ctx.roles) & set(K8S_ROLES):
        out.add(f"docker.{ctx.domain}")
    if "control" in ctx.roles:
        out |= {f"{p}.{ctx.domain}" if p else ctx.domain for p in ctx.thresholds["hosts_guide_names"]}
    return out


def ingress_targets(ctx) -> tuple[list[str] | None, str]:
    """The addresses the BlueKing names may resolve to on this host, and where that answer came from.
    With the cluster read (the guide's lookup, k8s.find_ingress): K8s nodes the controller Service's ClusterIP
    (§七.2); the control machine the controller pods' hostIPs (§六.4.1), the ClusterIP when it is a cluster
    member too, or the inventory's `ingress_ip` (a LB/public IP). Without the cluster: the inventory's
    `ingress_ip` if set, else None (the names must then agree with each other)."""
    ing = getattr(ctx, "ingress", None)
    member = bool(set(ctx.roles) & set(K8S_ROLES))
    if ing:
        if "control" in ctx.roles and not member:
            ips = list(ing["host_ips"]) + ([ctx.ingress_ip] if ctx.ingress_ip else [])
            return sorted(set(ips)), f"ingress-nginx pod hostIP ({ing['service']})"
        ips = [ing["cluster_ip"]] + (
            list(ing["host_ips"]) + ([ctx.ingress_ip] if ctx.ingress_ip else []) if "control" in ctx.roles else []
        )
        return sorted(set(ips)), f"ClusterIP of {ing['service']}"
    if ctx.ingress_ip:
        return [ctx.ingress_ip], "ingress_ip in the inventory"
    return None, "not known (no cluster read, no ingress_ip)"


def bcs_in_site(ctx, facts=None, use_helm: bool = False) -> bool:
    """Container management (BCS) is part of the site: `suites: [.., bcs]` in the inventory, a Service in the
    bcs-system namespace (where 03-bcs deploys, §十一.10), or (when the rule reads helm releases) a
    bcs-services-stack release. Unreadable objects count as no evidence."""
    if "bcs" in (getattr(ctx, "suites", ()) or ()):
        return True
    if facts is None:
        return False
    try:
        if any((s.get("metadata") or {}).get("namespace") == "bcs-system" for s in facts.get("services")):
            return True
    except (FactUnavailable, KeyError):
        pass
    if use_helm:
        try:
            return any(str(r.get("name", "")).startswith("bcs-services-stack") for r in facts.get("helm_releases"))
        except FactUnavailable:
            return False
    return False


def coredns_expected(facts, ctx) -> tuple[dict | None, list[str]]:
    """What CoreDNS must hold (§四.6.3): the ingress-nginx controller Service the names point at (None when there
    is none) and the names. The coredns rule checks this and the coredns remediation writes it."""
    from bkdoctor.facts.k8s import ingress_controller_service

    return ingress_controller_service(facts.get("services")), coredns_names(ctx, facts)


def coredns_names(ctx, facts=None) -> list[str]:
    """The names CoreDNS must resolve to the ingress (§四.6.3), plus bcs., bcs-api., helm. with BCS (§十一.4)."""
    th = ctx.thresholds
    prefixes = list(th["coredns_names"])
    if bcs_in_site(ctx, facts):
        prefixes += [p for p in th["coredns_bcs_names"] if p not in prefixes]
    names = [f"{p}.{ctx.domain}" if p else ctx.domain for p in prefixes]
    return names + [n for n in th["coredns_extra_names"] if n not in names]
