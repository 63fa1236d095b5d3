"""The three cluster remediations that run a deployment command on the control machine (helm-releases,
ingress-nginx, storage-class): fail -> `bkdoctor fix` (the real CLI) -> the command runs on a real namespaced control
host over SSH, in install_dir with bin/ on PATH -> the rule passes -> journaled -> `fix` again plans and changes nothing.

The control machine's tools are the install tests' stand-ins (fixtures/install/standin.py): the stand-in
`bkdl-7.1-stable.sh` lays out ~/bkce7.1-install (§四.2.2) with `helm`/`helmfile` in bin/, and these write what helm 3
writes into the real test API server (its release Secrets, the chart's Service and Pod, the StorageClass).
`helmfile sync` of a release whose last revision is pending-* is refused as helm 3 refuses it, so a stuck release
is fixed only by the rollback or uninstall the remediation runs first. Also: the cases whose plan is manual
(S-Mart apps, an unknown release, PVCs pending beside a default StorageClass) run nothing and say what to do; an
S-Mart app failing beside a stuck release: the sync runs and the outcome names the step left; a crash-looping
ingress controller (a sync restarts nothing) is reported failed, never fixed; a missing install_dir runs nothing
and says so; `rollback` of a command-only fix says it cannot undo it."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from clusterstate import helm_release_secret
from hostcases import make_ssh_host
from kube.fixtures import delete_namespace, kube_apiserver, rest  # noqa: F401
from kube.relay import ApiRelay
from test_install_e2e import DOMAIN, HOME_SETUP, ROOT, calls

from bkdoctor.store import History

pytestmark = [pytest.mark.kube, pytest.mark.ssh]
INSTALL = "/data/home/bkce7.1-install"


@pytest.fixture(scope="module")
def control(kube_apiserver, tmp_path_factory):
    """One control machine (real sshd, its own namespaces, root's home /data/home) with the install root laid out
    by the stand-in download script, and the test API server relayed into it."""
    from testbed.fixtures import SSHFleetFactory, ssh_unavailable

    why = ssh_unavailable()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("fixctl")
    stand = tmp / "standin"
    stand.mkdir()
    shutil.copy(ROOT / "fixtures" / "install" / "standin.py", stand / "standin.py")
    shutil.copy(kube_apiserver.kubeconfig, stand / "kubeconfig")
    cfg = {"kubeconfig": str(stand / "kubeconfig"), "log": str(stand / "standin.log"), "domain": DOMAIN}
    cfg["nodes"] = "node-1=10.0.0.5=node"  # where the stand-in schedules the ingress controller pod
    (stand / "standin.json").write_text(json.dumps(cfg))
    (stand / "standin.log").write_text("")
    factory = SSHFleetFactory()
    relay, made = None, False
    api = kube_apiserver.api_client()
    try:
        fleet, ctl = make_ssh_host(
            factory,
            {
                "hostname": "ctl",
                "setup": HOME_SETUP,
                "files": {
                    "/usr/local/bin/bkdl-7.1-stable.sh": {
                        "content": f'#!/bin/sh\nexec {sys.executable} {stand / "standin.py"} bkdl "$@"\n',
                        "mode": 0o755,
                    }
                },
            },
        )
        # where BlueKing's releases live (a real install has it from §四 on); removed at the end: the API server
        # is the session's, and later tests create it themselves
        rest(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": "blueking"}})
        made = True
        relay = ApiRelay(int(kube_apiserver.url.rsplit(":", 1)[1]), ctl).start()
        ctl.run(f"INSTALL_DIR={INSTALL} bkdl-7.1-stable.sh -ur latest base demo")
        assert ctl.run(f"test -x {INSTALL}/bin/helmfile && test -d {INSTALL}/blueking").returncode == 0

        def inventory(name, **extra):
            path = tmp / name
            path.write_text(
                yaml.safe_dump(
                    {
                        "domain": DOMAIN,
                        "ssh": fleet.ssh_settings(),
                        "hosts": [{"name": "ctl", "address": ctl.address, "roles": ["control"]}],
                        **extra,
                    }
                )
            )
            return path

        yield {
            "ctl": ctl,
            "stand": stand,
            "tmp": tmp,
            "kubeconfig": str(stand / "kubeconfig"),
            "inv": inventory("hosts.yaml"),  # install_dir: the default, ~/bkce7.1-install/blueking (§四.2.2)
            "inv_missing": inventory("missing.yaml", install_dir="~/bkce7.1-install-gone/blueking"),
        }
    finally:
        if relay is not None:
            relay.stop()
        factory.close()
        if made:
            delete_namespace(api, "blueking")


@pytest.fixture
def site(control, kube_apiserver):
    """A clean slate per test: no release, no ingress, no StorageClass; a fresh journal."""
    api = kube_apiserver.api_client()
    db = control["tmp"] / f"journal-{os.urandom(4).hex()}.db"
    yield {**control, "api": api, "db": str(db)}
    for path in (
        "/api/v1/namespaces/blueking/services/ingress-nginx-controller",
        "/apis/storage.k8s.io/v1/storageclasses/local-storage",
        "/apis/storage.k8s.io/v1/storageclasses/slow-nfs",
    ):
        try:
            rest(api, "DELETE", path)
        except Exception:
            pass
    for ns in ("blueking", "default"):
        for kind in ("secrets", "pods", "persistentvolumeclaims"):
            try:
                rest(api, "DELETE", f"/api/v1/namespaces/{ns}/{kind}", query=[("gracePeriodSeconds", 0)])
            except Exception:
                pass


def cli(site, *args, inv=None):
    env = {
        **os.environ,
        "LANG": "C.UTF-8",
        "COLUMNS": "400",
        "XDG_DATA_HOME": str(site["tmp"] / "xdg"),
        "XDG_CONFIG_HOME": str(site["tmp"] / "xdgc"),
    }
    argv = [sys.executable, "-m", "bkdoctor.cli", *args, "--db", site["db"]]
    if args[0] in ("fix", "rollback"):
        argv += ["-i", str(inv or site["inv"]), "--kubeconfig", site["kubeconfig"]]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def fix(site, rule, *flags, inv=None):
    """`bkdoctor fix --rule RULE --yes --json -`: (exit code, outcomes, the whole result)."""
    r = cli(site, "fix", "--rule", rule, "--yes", "--json", "-", *flags, inv=inv)
    assert r.returncode in (0, 1), r.stdout[-3000:] + r.stderr[-3000:]
    return r.returncode, json.loads(r.stdout)["outcomes"], r


def scan(site, rule):
    r = cli(site, "scan", "--rule", rule, "--kubeconfig", site["kubeconfig"], "--json", "-")
    doc = json.loads(r.stdout)
    return next(f["status"] for f in doc["findings"] if f["rule"] == rule)


def post(site, path, body):
    rest(site["api"], "POST", path, body=body)


def release(site, name, status, revision, ns="blueking", chart=None):
    post(
        site,
        f"/api/v1/namespaces/{ns}/secrets",
        helm_release_secret(
            {
                "metadata": {"name": name, "namespace": ns},
                "chart": chart or name,
                "version": "1.0.0",
                "status": status,
                "revision": revision,
            }
        ),
    )


def history(site, name, ns="blueking"):
    """A release's Secrets by revision: "status", or "status: description" when not "Install complete"."""
    items = rest(
        site["api"], "GET", f"/api/v1/namespaces/{ns}/secrets", query=[("labelSelector", f"owner=helm,name={name}")]
    )["items"]
    out = {}
    for s in items:
        p = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(s["data"]["release"]))))
        labels = s["metadata"]["labels"]
        assert (p["version"], p["info"]["status"]) == (int(labels["version"]), labels["status"])  # label = payload
        desc = p["info"].get("description")
        out[p["version"]] = p["info"]["status"] + ("" if desc == "Install complete" else f": {desc}")
    return [out[k] for k in sorted(out)]


def _pending_upgrade(site):
    release(site, "bk-cmdb", "deployed", 1)
    release(site, "bk-cmdb", "pending-upgrade", 2)


def _pending_after_failed(site):
    release(site, "bk-iam", "deployed", 1)  # a failed upgrade leaves the deployed revision as it was
    release(site, "bk-iam", "failed", 2)
    release(site, "bk-iam", "pending-upgrade", 3)


def _pending_install(site):
    release(site, "bk-job", "pending-install", 1)


def _failed(site):
    release(site, "bk-mysql", "failed", 1, chart="mysql")


def _no_ingress(site):
    pass  # 00-ingress-nginx never synced: no Service, no controller pod


def _no_default_sc(site):
    post(  # a StorageClass, but not the default one (00-localpv never synced)
        site,
        "/apis/storage.k8s.io/v1/storageclasses",
        {"metadata": {"name": "slow-nfs"}, "provisioner": "example.com/nfs"},
    )


def _default_annotation_removed(site):
    post(  # 00-localpv's class, its default annotation removed by hand (kubectl annotate sc … is-default-class-)
        site,
        "/apis/storage.k8s.io/v1/storageclasses",
        {"metadata": {"name": "local-storage"}, "provisioner": "kubernetes.io/no-provisioner"},
    )


# rule, state, --allow-disruptive needed, the control commands the fix runs (in order), a release's history after
CASES = {
    "helm-pending-upgrade": (
        "helm-releases",
        _pending_upgrade,
        True,
        ["helm -n blueking rollback bk-cmdb 1", "helmfile -f base-blueking.yaml.gotmpl -l name=bk-cmdb sync"],
        # helm 3 leaves the interrupted revision as it was: only deployed ones are superseded
        ("bk-cmdb", ["superseded", "pending-upgrade", "superseded: Rollback to 1", "deployed: Upgrade complete"]),
    ),
    "helm-pending-after-a-failed-upgrade": (  # back to the revision that deployed, not to the failed one
        "helm-releases",
        _pending_after_failed,
        True,
        ["helm -n blueking rollback bk-iam 1", "helmfile -f base-blueking.yaml.gotmpl -l name=bk-iam sync"],
        (
            "bk-iam",
            ["superseded", "failed", "pending-upgrade", "superseded: Rollback to 1", "deployed: Upgrade complete"],
        ),
    ),
    "helm-pending-install": (
        "helm-releases",
        _pending_install,
        True,
        ["helm -n blueking uninstall bk-job", "helmfile -f base-blueking.yaml.gotmpl -l name=bk-job sync"],
        ("bk-job", ["deployed"]),
    ),
    "helm-failed": (
        "helm-releases",
        _failed,
        False,
        ["helmfile -f base-storage.yaml.gotmpl -l name=bk-mysql sync"],
        ("bk-mysql", ["superseded", "deployed: Upgrade complete"]),
    ),
    "ingress-absent": ("ingress-nginx", _no_ingress, False, ["helmfile -f 00-ingress-nginx.yaml.gotmpl sync"], None),
    "default-annotation-removed": (
        "storage-class",
        _default_annotation_removed,
        False,
        ["helmfile -f 00-localpv.yaml.gotmpl sync"],
        None,
    ),
    "no-default-storageclass": (
        "storage-class",
        _no_default_sc,
        False,
        ["helmfile -f 00-localpv.yaml.gotmpl sync"],
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fail_fix_pass_fix_again(site, case):
    rule, setup, disruptive, commands, after = CASES[case]
    setup(site)
    assert scan(site, rule) == "fail"
    n = len(calls(site))
    if disruptive:  # a rollback or an uninstall: refused without the flag, nothing run
        _, out, _ = fix(site, rule)
        assert [o["status"] for o in out] == ["skipped"] and "--allow-disruptive" in out[0]["message"], out
        assert len(calls(site)) == n
    if case == "helm-pending-upgrade":  # why the remediation settles the revision first: helm refuses to sync
        r = site["ctl"].run(
            f"cd {INSTALL}/blueking && ../bin/helmfile -f base-blueking.yaml.gotmpl -l name=bk-cmdb sync", check=False
        )
        assert r.returncode == 1 and b"another operation (install/upgrade/rollback) is in progress" in r.stderr
        assert history(site, "bk-cmdb") == ["deployed", "pending-upgrade"]
        n = len(calls(site))
    rc, out, r = fix(site, rule, "--allow-disruptive")
    assert rc == 0 and [o["status"] for o in out] == ["fixed"], r.stdout[-3000:] + r.stderr[-2000:]
    # the plan shown is what ran, on the control machine, in that order
    assert calls(site)[n:] == commands
    assert [l[2:] for l in r.stderr.splitlines() + r.stdout.splitlines() if l.startswith("$ ")] == commands
    assert scan(site, rule) == "pass"
    if after:
        assert history(site, after[0]) == after[1]
    # journaled, with what ran and how it ended
    (j,) = json.loads(cli(site, "journal", "--json").stdout)
    assert (j["rule"], j["status"], j["id"]) == (rule, "fixed", out[0]["fix_id"])
    rec = History(site["db"]).fix(j["id"])
    assert [(c["script"], c["rc"]) for c in rec["applied"]["commands"]] == [(c, 0) for c in commands]
    assert [c["script"] for c in rec["changes"]] == commands and {c["where"] for c in rec["changes"]} == {"control"}
    # fix again: the rule passes, nothing is planned, no command runs
    n = len(calls(site))
    rc, again, _ = fix(site, rule, "--allow-disruptive")
    assert rc == 0 and again == [] and len(calls(site)) == n


def test_rollback_of_a_command_fix_says_it_cannot_undo_it(site):
    _failed(site)
    _, out, _ = fix(site, "helm-releases")
    assert [o["status"] for o in out] == ["fixed"]
    before = history(site, "bk-mysql")
    rb = cli(site, "rollback", out[0]["fix_id"])
    text = rb.stdout + rb.stderr
    assert rb.returncode == 1, text
    assert "not undone: `helmfile -f base-storage.yaml.gotmpl -l name=bk-mysql sync` ran on the control machine" in text
    assert "bkdoctor cannot undo a command" in text and "helm history" in text and "helm rollback" in text, text
    assert history(site, "bk-mysql") == before  # nothing touched
    (j,) = json.loads(cli(site, "journal", "--json").stdout)
    assert j["rolled_back_at"] is None  # not recorded as rolled back: it was not


def _smart(site):
    release(site, "bk-itsm", "failed", 1, chart="bk-itsm")


def _unknown(site):
    release(site, "my-app", "pending-install", 1, ns="default")


def _pvc_pending(site):
    post(
        site,
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "metadata": {
                "name": "local-storage",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
        },
    )
    post(
        site,
        "/api/v1/namespaces/blueking/persistentvolumeclaims",
        {
            "metadata": {"name": "data-bk-mysql-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
        },
    )


MANUAL = {
    "smart-app": ("helm-releases", _smart, ["bk_itsm is an S-Mart app", "developer centre"]),
    "unknown-release": ("helm-releases", _unknown, ["helm -n default history my-app"]),
    "pvc-pending-beside-a-default": (
        "storage-class",
        _pvc_pending,
        ["bkdoctor fix --rule localpv-dirs", "helmfile -f 00-localpv.yaml.gotmpl sync"],
    ),
}


@pytest.mark.parametrize("case", list(MANUAL))
def test_manual_plans_run_nothing_and_say_what_to_do(site, case):
    rule, setup, said = MANUAL[case]
    setup(site)
    assert scan(site, rule) == "fail"
    n = len(calls(site))
    rc, out, r = fix(site, rule, "--allow-disruptive")
    assert [o["status"] for o in out] == ["manual"], out
    for s in said:
        assert s in out[0]["message"], out[0]["message"]
    assert len(calls(site)) == n and scan(site, rule) == "fail"
    assert json.loads(cli(site, "journal", "--json").stdout) == []  # nothing changed, nothing journaled


def test_missing_install_dir_runs_nothing_and_says_so(site):
    n = len(calls(site))
    rc, out, r = fix(site, "ingress-nginx", inv=site["inv_missing"])
    assert rc == 1 and [o["status"] for o in out] == ["failed"], out
    msg = out[0]["message"]
    assert "install_dir ~/bkce7.1-install-gone/blueking is not a directory on the control machine" in msg, msg
    assert "nothing was run" in msg and "set install_dir in the inventory" in msg
    assert len(calls(site)) == n
    assert scan(site, "ingress-nginx") == "fail"


def test_a_stuck_release_beside_an_smart_app_is_synced_and_the_rest_is_said(site):
    """bk-mysql failed (helmfile can sync it) and bk_itsm failed (an S-Mart app, §九.5: by hand): the sync runs,
    and the outcome names the step left, not a bare "still failing"."""
    _failed(site)
    _smart(site)
    n = len(calls(site))
    rc, out, r = fix(site, "helm-releases")
    assert calls(site)[n:] == ["helmfile -f base-storage.yaml.gotmpl -l name=bk-mysql sync"]
    assert history(site, "bk-mysql") == ["superseded", "deployed: Upgrade complete"]
    assert [o["status"] for o in out] == ["manual"], out
    msg = out[0]["message"]
    assert "bk_itsm is an S-Mart app" in msg and "developer centre" in msg and "blueking/bk-itsm" in msg, msg
    assert rc == 0
    # and the plan shown before the confirmation said so
    assert "and by hand (bkdoctor cannot do these):\n    # bk_itsm is an S-Mart app" in r.stderr, r.stderr


def test_a_crashlooping_controller_is_not_claimed_fixed(site):
    """A crash-looping controller (its Service and pod there, none ready): a sync re-applies the same chart and
    restarts nothing, so the plan runs nothing and says how to find the cause (the outcome `manual`, never
    `fixed`); the rule still fails."""
    from clusterstate import FIXTURES, merged_state

    _, objs = merged_state(FIXTURES / "ingress-nginx" / "crashloop.fail.yaml")
    pod = next(o for o in objs if o["kind"] == "Pod" and "ingress-nginx-controller" in o["metadata"]["name"])
    status = pod.pop("status")
    pod["spec"]["nodeName"] = "node-1"
    svc = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "ingress-nginx-controller")
    svc["spec"].pop("clusterIP")  # the test API server's own range gives one
    post(site, "/api/v1/namespaces/blueking/services", svc)
    post(site, "/api/v1/namespaces/blueking/pods", pod)
    rest(
        site["api"],
        "PATCH",
        f"/api/v1/namespaces/blueking/pods/{pod['metadata']['name']}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )
    n = len(calls(site))
    rc, out, r = fix(site, "ingress-nginx")
    assert calls(site)[n:] == [], calls(site)[n:]  # no helmfile sync: it could not cure a crashing container
    assert [o["status"] for o in out] == ["manual"], out
    name = pod["metadata"]["name"]
    assert f"kubectl -n blueking logs {name} --previous" in json.dumps(out) + r.stdout + r.stderr, (out, r.stderr)
    assert scan(site, "ingress-nginx") == "fail"
