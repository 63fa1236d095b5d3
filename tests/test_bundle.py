"""Support bundle round trip: a live scan and a scan of the collected bundle give the same findings, and no
secret value reaches the bundle."""

from __future__ import annotations

import asyncio
import base64
import json
import tarfile

import pytest
from clusterstate import FIXTURES, ClusterState, merged_state
from hostcases import Case, make_host
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.facts.cluster import configure
from bkdoctor.inputs.bundle import mask_text, read_bundle, write_bundle
from bkdoctor.inputs.inventory import HostSpec, local_inventory
from bkdoctor.model import BadInput
from bkdoctor.report.jsonreport import build_report
from bkdoctor.scan import engine, loader
from bkdoctor.transport import LocalTransport

pytestmark = [pytest.mark.kube, pytest.mark.docker]
SECRET = "S3cr3t-Known-4711"


def _view(report):
    return sorted((f["rule"], f["target"], f["status"], f["message"]) for f in report["findings"])


def test_live_and_bundle_give_the_same_findings_and_no_secret(
    kube_apiserver, nshost_factory, tmp_path, report_validator
):
    st = ClusterState(kube_apiserver.api_client())
    try:
        _, objs = merged_state(FIXTURES / "faq-image-pull" / "saas-image.fail.yaml")
        objs += [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "bk-user-api-general-envs", "namespace": "blueking"},
                "data": {
                    "BK_PAAS_ADMIN_PASSWORD": SECRET,
                    "BK_USER_DB_URL": f"mysql://root:pw@db/bk?password={SECRET}",
                    "BK_DOMAIN": "bkce7.bktencent.com",
                },
            },
            {
                "kind": "HelmRelease",
                "metadata": {"name": "bk-secret-carrier", "namespace": "blueking"},
                "chart": "x",
                "version": "1.0.0",
                "values": {"mysql": {"rootPassword": SECRET}},
            },
        ]
        st.apply(objs)
        host = make_host(
            nshost_factory,
            Case(
                rule="x",
                name="x",
                status="fail",
                path=FIXTURES,
                spec={
                    "docker": True,
                    "files": {
                        "/etc/docker/daemon.json": json.dumps(
                            {"data-root": "/data/bcs/lib/docker", "exec-opts": ["native.cgroupdriver=systemd"]}
                        ),
                        "/etc/sysctl.d/99-local.conf": f"# db_password={SECRET} (left here by someone)\nvm.swappiness = 0\n",
                    },
                },
            ),
        )
        inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
        inv.hosts = [HostSpec(name="n5", address="10.0.0.5", roles=("node",), docker_socket="/run/docker.sock")]
        rules = loader.select(None, None)

        def factory(h, i):
            return LocalTransport(prefix=host.nsenter_argv(), root=host.root, address=h.address)

        live = asyncio.run(engine.scan(inv, rules, factory=factory, cluster=configure(kube_apiserver.kubeconfig)))
        live_report = report_validator(build_report(live, "en"))
        path = tmp_path / "bundle.tar.gz"
        write_bundle(live, str(path))
    finally:
        st.cleanup()
    # the cluster and the host are gone: the bundle alone gives the same answers
    manifest, hosts, cf = read_bundle(str(path))
    inv2 = local_inventory(domain=manifest["domain"], install_dir="/nonexistent")
    inv2.hosts = []
    replay = asyncio.run(engine.scan(inv2, rules, preloaded_hosts=hosts, cluster_facts=cf))
    replay_report = report_validator(build_report(replay, "en"))
    assert _view(replay_report) == _view(live_report)
    assert any(f["rule"] == "faq-image-pull" and f["status"] == "fail" for f in replay_report["findings"])
    # no secret anywhere in the bundle, in any encoding we wrote
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.isfile():
                raw = tar.extractfile(m).read()
                assert SECRET.encode() not in raw, m.name
                doc = json.loads(raw)
                for sec in (doc.get("sections") or {}).values():
                    assert SECRET.encode() not in base64.b64decode(sec["out"]), m.name
                assert b"sh.helm.release" not in raw  # release payloads never stored
        assert oct(tar.getmember("bkdoctor-bundle/manifest.json").mode) == "0o600"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_mask_text():
    assert (
        mask_text("BK_PAAS_ADMIN_PASSWORD=abc token: xyz --db-password hunter2 Authorization: Bearer abcdefgh1234")
        == "BK_PAAS_ADMIN_PASSWORD=*** token: *** --db-password *** Authorization: Bearer ***"
    )
    assert (
        mask_text("lookup docker.bkce7.bktencent.com: no such host")
        == "lookup docker.bkce7.bktencent.com: no such host"
    )


def test_bad_bundle_is_bad_input(tmp_path):
    p = tmp_path / "b.tar.gz"
    p.write_bytes(b"not a tarball")
    with pytest.raises(BadInput):
        read_bundle(str(p))
    with pytest.raises(BadInput):
        read_bundle(str(tmp_path / "missing.tar.gz"))
