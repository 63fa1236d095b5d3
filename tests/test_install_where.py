"""`bkdoctor install`: a step's `where:` is where its rule checks judge and its fixes run, on real test hosts (two
namespaced hosts, the real probe, the real remediations): never a host the plan did not show."""

from __future__ import annotations

import asyncio

import pytest
from hostcases import FIXTURES, Case, make_host

from bkdoctor.inputs import thresholds as th
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.install.phases import Installer, load_phases
from bkdoctor.install.steps import Step
from bkdoctor.store import History
from bkdoctor.transport import LocalTransport


def _case(rule: str, name: str) -> Case:
    import yaml

    p = next((FIXTURES / "host" / rule).glob(f"{name}.*.yaml"))
    return Case(rule=rule, name=name, status=p.name.split(".")[-2], path=p, spec=yaml.safe_load(p.read_text()) or {})


def _installer(tmp_path, hosts: dict[str, tuple[object, tuple[str, ...]]]) -> tuple[Installer, list[str]]:
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    inv.hosts = [
        HostSpec(name=n, address=f"10.0.0.{i + 2}", roles=roles, docker_socket="/run/docker.sock", local=True)
        for i, (n, (_, roles)) in enumerate(hosts.items())
    ]
    inv.thresholds = th.merge(None)

    def factory(h, inv_):
        if h.name not in hosts:
            raise AssertionError(f"bkdoctor reached {h.name}, which the step does not name")
        host = hosts[h.name][0]
        return LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address)

    said: list[str] = []
    inst = Installer(
        inv,
        history=History(str(tmp_path / "h.db")),
        say=said.append,
        confirm=lambda q: True,
        cluster_factory=lambda: None,
        factory=factory,
    )
    return inst, said


def _step(phase: str, pred) -> Step:
    return next(s for p in load_phases() if p.id == phase for s in p.steps if pred(s))


@pytest.mark.timeout(300)
def test_localpv_check_judges_node_role_hosts_only(nshost_factory, tmp_path):
    """§五.2.3.1: bcs.sh makes /mnt/blueking/volNN on the Node节点; a master without them is not a failure."""
    master = make_host(nshost_factory, _case("localpv-dirs", "none"))  # nothing prepared
    node = make_host(nshost_factory, _case("localpv-dirs", "mounted"))  # 20 real bind mounts
    step = _step("storage", lambda s: s.kind == "rules" and "localpv-dirs" in s.value)
    assert step.on == "node-role"
    inst, _ = _installer(tmp_path, {"master-1": (master, ("master",)), "node-1": (node, ("node",))})
    assert [h.name for h in inst.hosts_for(step.on)] == ["node-1"]
    ok, detail = asyncio.run(inst.run_rules_step(step))
    assert ok, detail
    # a master that is also a node is judged (it is a Node), and fails without the dirs
    inst, _ = _installer(tmp_path, {"master-1": (master, ("master", "node")), "node-1": (node, ("node",))})
    ok, detail = asyncio.run(inst.run_rules_step(step))
    assert not ok and "localpv-dirs @ master-1" in detail and "node-1" not in detail, detail


@pytest.mark.timeout(300)
def test_fix_step_runs_only_on_its_where_hosts(nshost_factory, tmp_path):
    """A fix step `where: nodes` (like §二.4.2's registry-mirrors): the master, failing the same rule, is untouched."""
    master = make_host(nshost_factory, _case("timezone", "utc"))
    node = make_host(nshost_factory, _case("timezone", "utc"))
    inst, said = _installer(tmp_path, {"master-1": (master, ("master",)), "node-1": (node, ("node",))})
    step = Step("fix", ("timezone",), "一.4.3", "Asia/Shanghai", on="nodes")
    ok, detail = asyncio.run(inst.run_fix_step(step))
    assert ok, detail
    assert "timezone@node-1" in detail and "master-1" not in detail, detail
    assert node.run("readlink /etc/localtime").stdout.decode().strip().endswith("Asia/Shanghai")
    assert master.run("readlink /etc/localtime").stdout.decode().strip().endswith("UTC")


@pytest.mark.timeout(300)
def test_fix_step_refused_on_bad_input_stops_the_step(nshost_factory, tmp_path):
    """A fix the loop refuses (a daemon.json with a comment: bad input, left untouched) fails the install step: the
    install never goes on as if the node had been fixed."""
    text = '{\n    // ops comment\n    "data-root": "/data/bcs/lib/docker"\n}\n'
    node = make_host(
        nshost_factory,
        Case(
            rule="insecure-registries",
            name="comment",
            status="fail",
            path=FIXTURES,
            spec={"files": {"/etc/docker/daemon.json": text}},
        ),
    )
    inst, _ = _installer(tmp_path, {"node-1": (node, ("node",))})
    step = Step("fix", ("insecure-registries",), "七.4.1", "insecure-registries", on="node-role")
    ok, detail = asyncio.run(inst.run_fix_step(step))
    assert not ok and "refused insecure-registries@node-1" in detail, detail
    assert node.read("/etc/docker/daemon.json").decode() == text
