"""What a command works on: the inventory (a file given with -i, or this host) with the command line's overrides,
and the cluster access. The one way `scan`, `collect`, `fix`, `rollback` and `install` build them."""

from __future__ import annotations

from typing import Any

from bkdoctor.inputs.inventory import Inventory
from bkdoctor.model import BadInput, T


def no_hosts(path: str) -> BadInput:
    """The one refusal of an inventory file that yields no host (`hosts: []`, an empty file, Ansible groups with no
    host): this machine is a target only when no inventory is given, never as a stand-in for an empty one."""
    return BadInput(
        T(
            f"清单 {path} 中没有主机；空清单不代表本机（检查本机请不带 -i 运行）",
            f"inventory {path}: no hosts; an empty inventory never means this machine (run without -i for this host)",
        )
    )


def load_inventory_for(
    inventory: str | None,
    *,
    domain: str | None = None,
    install_dir: str | None = None,
    accept_new_host_keys: bool = False,
    hosts_from_nodes: bool = False,
) -> Inventory:
    """The inventory file (bkdoctor YAML or Ansible), or this host as `control` without one; --install-dir and
    --domain (already checked by their option callbacks) override what the file or custom.yaml says. A file with
    no host is bad input (`no_hosts`), unless the hosts come from the cluster's Nodes (`scan --from-cluster`,
    `--from-daemonset`: `hosts_from_nodes`), where the file gives only the settings."""
    from bkdoctor.inputs.inventory import load_inventory, local_inventory

    if inventory:
        inv = load_inventory(inventory)
        if not inv.hosts and not hosts_from_nodes:
            raise no_hosts(inventory)
        if install_dir:
            inv.install_dir = install_dir
    else:
        inv = local_inventory(domain, install_dir)
    if domain:
        inv.domain, inv.domain_source = domain, "--domain"
    inv.accept_new_host_keys = accept_new_host_keys
    return inv


def bundle_inventory(bundle_path: str) -> tuple[Inventory, tuple[list[Any], Any]]:
    """A support bundle's inventory and its (host targets, cluster facts), to analyse instead of live hosts."""
    from bkdoctor.inputs.bundle import read_bundle
    from bkdoctor.inputs.inventory import DEFAULT_INSTALL_DIR

    manifest, preloaded_hosts, bundle_cluster = read_bundle(bundle_path)
    # everything from the bundle, nothing from this machine (no custom.yaml, no kubeconfig, no inventory):
    # the manifest's install_dir names a directory on the site's control machine, not here
    inv = Inventory(
        path=f"bundle:{bundle_path}",
        hosts=[],
        domain=manifest.get("domain"),
        domain_source="bundle" if manifest.get("domain") else None,
        install_dir=manifest.get("install_dir") or DEFAULT_INSTALL_DIR,
        ssh={},
        thresholds=manifest["thresholds"],
        suppress=[],
        ingress_ip=manifest.get("ingress_ip"),
    )
    inv.site_files = False  # custom.yaml, VERSION...: the site's, not this machine's (not in a bundle yet)
    return inv, (preloaded_hosts, bundle_cluster)


def cluster_access(kubeconfig: str | None, kube_context: str | None, wanted: bool) -> Any:
    """The cluster's API access when the command wants one and one is configured (--kubeconfig, $KUBECONFIG,
    in-cluster, ~/.kube/config), else None. Not wanted: nothing is read, not even the kubeconfig."""
    if not wanted:
        return None
    from bkdoctor.facts.cluster import configure

    return configure(kubeconfig, kube_context)


def hosts_from_cluster(access: Any, inv: Inventory) -> list[Any]:
    """`--from-cluster`: inventory hosts from the cluster's Node objects: InternalIP, role master when labelled
    master/control-plane; a control host of the inventory file (where bkdoctor runs) is kept."""
    from bkdoctor.facts.cluster import ClusterFacts
    from bkdoctor.inputs.inventory import HostSpec
    from bkdoctor.model import FactUnavailable

    try:
        nodes = ClusterFacts(access).get("nodes")
    except FactUnavailable as e:
        raise BadInput(
            T(f"--from-cluster: 无法读取集群的 Node: {e.reason.zh}", f"--from-cluster: {e.reason.en}")
        ) from None
    out = []
    for n in nodes:
        md, st = n.get("metadata") or {}, n.get("status") or {}
        labels = md.get("labels") or {}
        ip = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        if not ip:
            continue
        name = md.get("name") or ip
        _check_node(name, ip)
        master = "node-role.kubernetes.io/master" in labels or "node-role.kubernetes.io/control-plane" in labels
        out.append(HostSpec(name=name, address=ip, roles=("master",) if master else ("node",)))
    if not out:
        raise BadInput(
            T(
                "--from-cluster: 集群中没有带 InternalIP 的 Node",
                "--from-cluster: the cluster has no Node with an InternalIP",
            )
        )
    # keep a control host from the inventory file (where bkdoctor runs), if any
    controls = [h for h in inv.hosts if "control" in h.roles and h.name not in {o.name for o in out}]
    return controls + out


def _check_node(name: Any, ip: Any) -> None:
    """A Node bkdoctor is to SSH to (and `fix` to change): a host name, and an address that is an IP of another
    machine. A kubelet may update its own Node's status: a compromised node claiming 127.0.0.1 must not make this
    machine a target."""
    import ipaddress

    from bkdoctor.safe.names import valid_host_name, why_not

    if not valid_host_name(name):
        w = why_not(str(name)[:80])
        raise BadInput(T(f"--from-cluster: Node 名称: {w.zh}", f"--from-cluster: a Node's name: {w.en}"))
    from bkdoctor.safe.names import valid_address

    try:
        if not valid_address(ip):  # ip_address takes a zone of any characters (`fd00::1%$(id)`)
            raise ValueError(ip)
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise BadInput(
            T(
                f"--from-cluster: Node {name}: InternalIP {str(ip)[:80]!r} 不是 IP 地址",
                f"--from-cluster: Node {name}: InternalIP {str(ip)[:80]!r} is not an IP address",
            )
        ) from None
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local:
        raise BadInput(
            T(
                f"--from-cluster: Node {name}: InternalIP {addr} 不是另一台机器的地址",
                f"--from-cluster: Node {name}: InternalIP {addr} is not another machine's address",
            )
        )


def load_targets(
    inventory: str | None,
    *,
    domain: str | None = None,
    install_dir: str | None = None,
    accept_new_host_keys: bool = False,
    kubeconfig: str | None = None,
    kube_context: str | None = None,
    need_cluster: bool = False,
) -> tuple[Inventory, Any]:
    """(inventory, cluster access or None): `load_inventory_for` then `cluster_access`."""
    inv = load_inventory_for(
        inventory, domain=domain, install_dir=install_dir, accept_new_host_keys=accept_new_host_keys
    )
    return inv, cluster_access(kubeconfig, kube_context, need_cluster)
