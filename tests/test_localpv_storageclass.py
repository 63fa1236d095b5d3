"""§五.2.1: `kubectl get sc` showing `xxx (default)` means a default StorageClass is configured and the LocalPV
chapter is skipped. localpv-dirs on a real test host without the dirs (fixtures/host/localpv-dirs/none.fail): a fail
with no cluster read, or where the default is 00-localpv's own `local-storage`; a skip where another class (an NFS
provisioner's) is the default. The cluster's StorageClasses are given as a support bundle gives them (preloaded)."""

from __future__ import annotations

import asyncio

import pytest
from hostcases import load_cases, make_host

from bkdoctor.facts.cluster import ClusterFacts
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport


def _sc(name: str, default: bool) -> dict:
    ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": ann}, "provisioner": "x"}


@pytest.mark.parametrize(
    "classes, want",
    [
        (None, "fail"),  # no cluster read: judged as the host is
        ([], "fail"),  # no StorageClass at all: the chapter is to be done
        ([_sc("local-storage", True)], "fail"),  # 00-localpv's own class: its dirs are what it serves
        ([_sc("nfs-client", False)], "fail"),  # a class, but not the default
        ([_sc("nfs-client", True)], "skip"),  # 若存在`xxx (default)`：已配置默认存储类，可跳过本章节
        ([_sc("local-storage", False), _sc("nfs-client", True)], "skip"),
    ],
)
def test_localpv_dirs_skip_with_a_default_storage_class(nshost_factory, classes, want):
    case = next(c for c in load_cases("host") if c.rule == "localpv-dirs" and c.name == "none")
    host = make_host(nshost_factory, case)
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.hosts = [HostSpec(name="node-1", address="10.0.0.5", roles=("node",), local=True)]
    data = {"version": {"gitVersion": "v1.20.15"}, "storageclasses": classes}  # as a support bundle holds them
    cf = None if classes is None else ClusterFacts(access=None, preloaded=data)
    res = asyncio.run(
        engine.scan(
            inv,
            loader.select(["localpv-dirs"], None),
            factory=lambda h, i: LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address),
            cluster_facts=cf,
        )
    )
    got = [(f.rule.id, f.result.status) for f in res.findings if f.target == "node-1"]
    assert got == [("localpv-dirs", want)], [(f.rule.id, f.result.status, f.result.message.en) for f in res.findings]
