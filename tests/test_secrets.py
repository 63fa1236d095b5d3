"""Secrets never leave the host: one distinct secret per class is planted in real host state (an sshd test host's
files), in ConfigMaps of the real kube-apiserver, in the kubeconfig and in the inventory; every output bkdoctor
makes (terminal, JSON, HTML, JUnit, history database, the bundle's every member and every base64 section in it,
the replayed bundle's reports, an error line) is searched for all of them."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from kube.fixtures import kube_apiserver  # noqa: F401

from bkdoctor.safe.secrets import MASK, mask_bytes, mask_obj, mask_text

ROOT = Path(__file__).resolve().parent.parent

# one distinct secret per class (the class is the key of this dict)
BASIC_TOKEN = base64.b64encode(b"admin:BasicHdrPw-6f").decode()
SECRETS = {
    "fstab password= option (CIFS)": "FstabCifsPw-1a",
    "daemon.json registry mirror userinfo": "MirrorPw-2b",
    "daemon.json proxy userinfo": "ProxyPw-3c",
    "-pPASSWORD flag": "PflagPw-4d",
    "password 'x' in text": "QuotedPw-5e",  # noqa
    "Authorization: Basic header": BASIC_TOKEN,
    "--password=x flag": "FlagEqPw-7g",
    "--password x flag": "FlagSpPw-8h",
    "mysql:// URL userinfo": "MysqlPw-9i",
    "redis:// URL userinfo (no user)": "RedisPw-10j",
    "YAML key with the value on the next line": "YamlNextPw-11k",
    "secret-looking key name": "KeyNamePw-12l",
    "kubeconfig server URL userinfo": "KubeUrlPw-13m",
    "inventory endpoint URL userinfo": "EndpointPw-14n",
    "Authorization: Bearer header": "BearerTok15oXYZ",
    "YAML block scalar under a secret key": "BlockPw-16p",
    "IDENTIFIED BY 'x'": "IdentPw-17q",
}


@pytest.mark.parametrize(
    "text,secret,kept",
    [
        (
            "//10.0.0.9/share /mnt/cifs cifs username=bob,password=S1,vers=3.0 0 0",
            "S1",
            "username=bob,password=***,vers=3.0",
        ),
        ("mysql://root:S2@db:3306/bk", "S2", "mysql://root:***@db:3306/bk"),
        ("redis://:S3@redis:6379/0", "S3", "redis://:***@redis:6379/0"),
        ('{"registry-mirrors": ["https://u:S4@mirror.intra"]}', "S4", "https://u:***@mirror.intra"),
        ('"HttpProxy": "http://proxyuser:S5@proxy:3128"', "S5", "http://proxyuser:***@proxy:3128"),
        ("curl -H 'Authorization: Basic dXNlcjpTNg==' x", "dXNlcjpTNg==", "Authorization: Basic ***"),
        ("Proxy-Authorization: Bearer S7S7S7S7S7", "S7S7", "Proxy-Authorization: Bearer ***"),
        ("mysql -uroot -pS8 -h db", "S8", "-uroot -p*** -h db"),
        ("app --password=S9 --db-password S10", "S9", "--password=*** --db-password ***"),
        ("app --password=S9 --db-password S10", "S10", "--password=***"),
        ("ALTER USER root SET password 'S11'", "S11", "password '***'"),
        ("CREATE USER x IDENTIFIED BY 'S12';", "S12", "IDENTIFIED BY '***'"),
        ("db:\n  password:\n    S13\n  host: db\n", "S13", "  host: db"),
        ("secret: |\n  S14\n  S14b\nnext: 1\n", "S14", "next: 1"),
        ("BK_PAAS_ADMIN_PASSWORD=S15 token: S16", "S15", "BK_PAAS_ADMIN_PASSWORD=***"),
        ("mysql://root:S17@db/bk?password=S18", "S18", "mysql://root:***@db/bk?password=***"),
        ('{"password": "two words S19"}', "S19", '{"password": "***"}'),
        # the adversarial review's shapes: a URL password holding # ? / @ or a space (up to the last @ of the authority)
        ("mysql://root:p#S20?x/y@db:3306/bk", "S20", "mysql://root:***@db:3306/bk"),
        ("redis://:a S21@r:6379/0", "S21", "redis://:***@r:6379/0"),
        ('{"registry-mirrors": ["https://u:S22/x@mirror.intra"]}', "S22", '"https://u:***@mirror.intra"'),
        ('"HttpProxy": "http://u:p@S23#@proxy:3128"', "S23", '"http://u:***@proxy:3128"'),
        ("mysql -uroot -p'S24 quoted' -h db", "S24", "-p'***' -h db"),
        ('mysql -p"S25 with space" bk', "S25", '-p"***" bk'),
        ("app --password=-S26dash --x", "S26", "--password=*** --x"),
        ("sshpass -p S27 ssh root@10.0.0.5", "S27", "sshpass -p *** ssh root@10.0.0.5"),
        (
            "k:\n-----BEGIN RSA PRIVATE KEY-----\nMIIS28\nabc\n-----END RSA PRIVATE KEY-----\nnext",
            "S28",
            "-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----\nnext",
        ),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlS29", "S29", "-----BEGIN OPENSSH PRIVATE KEY-----\n***"),
    ],
)
def test_mask_text_by_value_shape(text, secret, kept):
    out = mask_text(text)
    assert secret not in out, out
    assert kept in out, out
    assert mask_text(out) == out  # idempotent


@pytest.mark.parametrize("size", [1, 5, 64])
def test_live_masker_never_writes_a_secret_and_ends_as_mask_text(size):
    """A step's log is masked as it is written (secrets.LiveMasker): every case of the shapes above, streamed in
    pieces, never has its secret in what was written so far, and the whole is what mask_text gives the whole."""
    from bkdoctor.safe.secrets import LiveMasker

    for text, secret, _kept in test_mask_text_by_value_shape.pytestmark[0].args[1]:
        for data in (text.encode(), (text + "\n").encode(), ("x\n" + text + "\ntail: 1\n").encode()):
            m, out = LiveMasker(), b""
            for i in range(0, len(data), size):
                out += m.feed(data[i : i + size])
                assert secret.encode() not in out, (text, out)
            out += m.close()
            assert out.decode() == mask_text(data.decode()), (text, out)
    # a held block is bounded: past HOLD_MAX characters it goes out, masked as it is, and its rest masked as it comes
    for stream, secret, after in (
        (
            b"x\n-----BEGIN RSA PRIVATE KEY-----\n" + b"SECRETLINE\n" * 40 + b"-----END RSA PRIVATE KEY-----\n",
            b"SECR",
            b"",
        ),
        (b"password:\n" + b"  VALUELINE\n" * 40, b"VALUE", b"next: 1\n"),
        (b"token: " + b"A" * 300 + b"\n", b"AAAA", b""),  # a line past HOLD_MAX: its rest is left out
    ):
        m, out = LiveMasker(), b""
        m.HOLD_MAX = 100
        stream += after + b"visible\n"
        for i in range(0, len(stream), size):
            out += m.feed(stream[i : i + size])
            assert secret not in out, out[-200:]
        out += m.close()
        assert secret not in out and b"visible" in out and after in out, out


def test_live_masker_looks_at_each_line_once(monkeypatch):
    """A secret YAML key alone with 20,000 lines under it, one line a chunk: each line is looked at once, not the
    whole held block again at every chunk (quadratic: 20,000 lines took seconds of CPU)."""
    from bkdoctor.safe import secrets as sec

    seen = [0]
    real = sec._YAML_KEY_ALONE

    class Counting:
        def match(self, s):
            seen[0] += 1
            return real.match(s)

    monkeypatch.setattr(sec, "_YAML_KEY_ALONE", Counting())
    m, out = sec.LiveMasker(), b""
    out += m.feed(b"auth:\n")
    for k in range(20000):
        out += m.feed(b"    v%08d\n" % k)
    out += m.feed(b"done: 1\n") + m.close()
    assert seen[0] <= 2 * 20002 + 10, seen[0]
    assert out.count(b"\n") == 20002 and b"v00019999" not in out and out.endswith(b"done: 1\n")
    # a PEM block opened inside a secret key's block whose body is not indented: held until its END line
    text = b"key:\n  -----BEGIN RSA PRIVATE KEY-----\nMIIEsecretbody\n-----END RSA PRIVATE KEY-----\nafter: 1\n"
    m, out = sec.LiveMasker(), b""
    for i in range(len(text)):
        out += m.feed(text[i : i + 1])
        assert b"secretbody" not in out
    assert out + m.close() == sec.mask_text(text.decode()).encode()


@pytest.mark.parametrize(
    "text",
    [
        "lookup docker.bkce7.bktencent.com: no such host",
        "ssh -p2222 root@10.0.0.5",
        "docker run -p8080:80/tcp x",
        "tests passed: 3, bypass: 1, author: me",
        "SELINUX=disabled",
        "https://hub.bktencent.com/v2/",
        "Basic settings are fine",
        "kernel 3.10.0-1160.el7.x86_64",
        "10.0.0.2 k8s-api.bcs.local",
        # lookalikes of the round-23 shapes (REVIEW23_SHAPES below)
        "key: value",
        "keys: [a, b]",
        "keyFile: /etc/kubernetes/pki/ca.key",
        "kubeletKey: x",
        "primaryKey: id",
        "ssl_key_file=/etc/ssl/private/x.pem",  # a path, not the key
        "client-certificate-data: LS0tLS1CRUdJTiBDRVJU",
        "certificate-authority-data: LS0tLS1CRUdJTiBDRVJU",
        "publicKeyData: c3NoLXJzYSBBQUFB",
        "https://github.com/org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "https://example.com/path@v1.2?x=a@b",
        "root@tcp(bk-mysql:3306)/bcs",
        "time 12:30 tcp(443)",
        "rabbitmqctl add_vhost bk_bkmonitor",
        'rabbitmqctl set_permissions -p bk u ".*" ".*" ".*"',
        "select name as 'alias' from t where a = 'b'",
        "<description>password policy</description><key>v</key><keys/>",
        "<password></password>",
    ],
)
def test_mask_text_leaves_ordinary_text_alone(text):
    assert mask_text(text) == text


def test_mask_obj_by_key_and_by_shape():
    out = mask_obj(
        {
            "auths": {"r": {"auth": "S1"}},
            "HttpProxy": "http://u:S2@p:3128",
            "list": [{"token": "S3"}],
            "secret": {"secretName": "S4"},
            "insecure-registries": ["docker.bk"],
            "empty_password": "",
        }
    )
    text = json.dumps(out)
    for s in ("S1", "S2", "S3", "S4"):
        assert s not in text
    assert out["insecure-registries"] == ["docker.bk"] and out["empty_password"] == ""
    assert mask_bytes(b"\xff\xfe password=S5 \x00") == b"\xff\xfe password=*** \x00"


def test_mask_obj_kubernetes_shapes():
    """A Job or Pod in a bundle: env values named like secrets, argv after a secret flag, kubectl's annotation."""
    applied = json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"env": [{"name": "DB_PASSWORD", "value": "S1"}]}]}}}}
    )
    job = {
        "kind": "Job",
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "env": [{"name": "MYSQL_ROOT_PASSWORD", "value": "S2"}, {"name": "HOST", "value": "db"}],
                            "args": ["--password", "S3", "-p", "S4", "--port", "8080"],
                            "command": ["sh", "-c", "sshpass -p S5 x"],
                        }
                    ]
                }
            }
        },
    }
    out = mask_obj(job)
    text = json.dumps(out)
    for s in ("S1", "S2", "S3", "S4", "S5"):
        assert s not in text, (s, text)
    c = out["spec"]["template"]["spec"]["containers"][0]
    assert c["env"][1] == {"name": "HOST", "value": "db"} and c["args"][4:] == ["--port", "8080"]
    assert json.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert mask_obj(out) == out
    assert mask_obj({"kubectl.kubernetes.io/last-applied-configuration": "{not json S6"}) == {
        "kubectl.kubernetes.io/last-applied-configuration": MASK
    }


def test_mask_text_is_linear_on_hostile_text():
    import time

    t0 = time.process_time()
    for text in (
        "a:" * 100_000,
        "password=" * 50_000,
        "a-" * 100_000,
        "http://" * 50_000,
        "x 'y' " * 50_000,
        "password:\n" * 50_000,
        "-p " * 100_000,
        "a://b:" * 50_000,
        "a://b:c " * 50_000,
        "sshpass -p " * 50_000,
        "-----BEGIN X PRIVATE KEY-----" * 20_000,
    ):
        mask_text(text)
    assert time.process_time() - t0 < 20


def _bkdoctor(*args, env=None, timeout=240):
    e = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    e["LANG"] = "C.UTF-8"
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout
    )


def _blobs_of_bundle(path: Path) -> dict[str, bytes]:
    """Every way the bundle could carry a secret: the file, the decompressed tar, each member, each section."""
    raw = path.read_bytes()
    out = {"bundle file": raw, "bundle tar": gzip.decompress(raw)}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            data = tar.extractfile(m).read()
            out[m.name] = data
            doc = json.loads(data)
            for name, sec in ((doc or {}).get("sections") or {}).items():
                out[f"{m.name}:{name}"] = base64.b64decode(sec["out"])
    return out


def _leaks(blobs: dict[str, bytes]) -> list[str]:
    found = []
    for where, data in blobs.items():
        for cls, secret in SECRETS.items():
            if secret.encode() in data:
                found.append(f"{cls} in {where}")
    return found


@pytest.mark.kube
@pytest.mark.ssh
def test_no_planted_secret_reaches_any_output(ssh_fleet, kube_apiserver, tmp_path):
    from clusterstate import ClusterState
    from hostcases import make_ssh_host

    s = SECRETS
    quoted, ident = s["password 'x' in text"], s["IDENTIFIED BY 'x'"]
    fstab = (
        "UUID=6f3a1c2e-1b6c-4f0e-9c1d-2a7f5b3c9d10 / xfs defaults 0 0\n"
        "/dev/vdb1 /data xfs defaults 0 0\n"
        "/dev/mapper/centos-swap swap swap defaults 0 0\n"  # a swap line: the swap rule fails, fstab is evidence
        f"//10.0.0.9/share /mnt/cifs cifs username=bob,password={s['fstab password= option (CIFS)']},vers=3.0 0 0\n"
    )
    daemon = {
        "data-root": "/var/lib/docker",
        "exec-opts": ["native.cgroupdriver=systemd"],
        "registry-mirrors": [f"https://mirroruser:{s['daemon.json registry mirror userinfo']}@mirror.intra"],
        "http-proxy": f"http://proxyuser:{s['daemon.json proxy userinfo']}@proxy.intra:3128",
    }
    notes = (
        f"# mysql -uroot -p{s['-pPASSWORD flag']} -h db   (left here by someone)\n"
        f"# ALTER USER root SET password '{quoted}'\n"
        f"# curl -H 'Authorization: Basic {s['Authorization: Basic header']}' http://x\n"
        f'# curl -H "Authorization: Bearer {s["Authorization: Bearer header"]}" http://x\n'
        "vm.swappiness = 0\n"
    )
    fleet, host = make_ssh_host(
        ssh_fleet,
        {
            "hostname": "node-secret",
            "files": {
                "/etc/fstab": fstab,
                "/etc/docker/daemon.json": json.dumps(daemon) + "\n",
                "/etc/sysctl.d/99-notes.conf": notes,
            },
        },
    )
    fleet.write_known_hosts()
    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": fleet.ssh_settings(),
        "hosts": [{"name": "node-secret", "address": host.address, "roles": ["node"]}],
        "thresholds": {
            "endpoints": {"node": [f"http://epuser:{s['inventory endpoint URL userinfo']}@mirror.intra/v2/"]}
        },
    }
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    kc = yaml.safe_load(Path(kube_apiserver.kubeconfig).read_text())
    for c in kc["clusters"]:
        c["cluster"]["server"] = c["cluster"]["server"].replace(
            "https://", f"https://kubeuser:{s['kubeconfig server URL userinfo']}@"
        )
    kc_path = tmp_path / "kubeconfig"
    kc_path.write_text(yaml.safe_dump(kc))
    bad_kc = yaml.safe_load(yaml.safe_dump(kc))
    for c in bad_kc["clusters"]:  # the same server URL, on a port nobody listens on: the terminal shows the target
        c["cluster"]["server"] = f"https://kubeuser:{s['kubeconfig server URL userinfo']}@127.0.0.1:9"
    bad_kc_path = tmp_path / "kubeconfig-unreachable"
    bad_kc_path.write_text(yaml.safe_dump(bad_kc))

    st = ClusterState(kube_apiserver.api_client())
    outputs: dict[str, bytes] = {}
    db = tmp_path / "history.db"
    try:
        st.apply(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "blueking"}},
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "bk-user-api-general-envs", "namespace": "blueking"},
                    "data": {
                        "BK_PAAS_ADMIN_PASSWORD": s["secret-looking key name"],
                        "BK_USER_DB_URL": f"mysql://root:{s['mysql:// URL userinfo']}@db:3306/bk",
                        "BROKER_URL": f"redis://:{s['redis:// URL userinfo (no user)']}@redis:6379/0",
                        "BK_DOMAIN": "bkce7.bktencent.com",
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "bkpaas3-apiserver-general-env", "namespace": "blueking"},
                    "data": {
                        "start.sh": f"exec app --password={s['--password=x flag']} --db-password {s['--password x flag']}\n"
                        f"mysql -e \"CREATE USER x IDENTIFIED BY '{ident}'\"\n",
                        "settings.yaml": f"db:\n  host: db\n  password:\n    {s['YAML key with the value on the next line']}\n"
                        f"redis:\n  secret: |\n    {s['YAML block scalar under a secret key']}\n  port: 6379\n",
                    },
                },
            ]
        )
        runs = {
            "scan": _bkdoctor(
                "scan",
                "-i",
                str(inv_path),
                "--kubeconfig",
                str(kc_path),
                "--db",
                str(db),
                "--json",
                str(tmp_path / "r.json"),
                "--html",
                str(tmp_path / "r.html"),
                "--junit",
                str(tmp_path / "r.xml"),
                "-v",
            ),
            "scan unreachable cluster": _bkdoctor(
                "scan", "-i", str(inv_path), "--kubeconfig", str(bad_kc_path), "--rule", "cluster", "--db", str(db)
            ),
            "collect": _bkdoctor(
                "collect", "-o", str(tmp_path / "b.tar.gz"), "-i", str(inv_path), "--kubeconfig", str(kc_path)
            ),
            "error line": _bkdoctor(
                "scan", "--kubeconfig", str(tmp_path / f"https://u:{s['kubeconfig server URL userinfo']}@h" / "kc")
            ),
        }
    finally:
        st.cleanup()
    assert runs["scan"].returncode == 1, runs["scan"].stderr
    assert runs["collect"].returncode == 0, runs["collect"].stderr
    assert runs["error line"].returncode == 2, runs["error line"].stderr
    runs["replay"] = _bkdoctor(
        "scan",
        "--bundle",
        str(tmp_path / "b.tar.gz"),
        "--db",
        str(db),
        "-v",
        "--json",
        str(tmp_path / "r2.json"),
        "--html",
        str(tmp_path / "r2.html"),
        "--junit",
        str(tmp_path / "r2.xml"),
    )
    assert runs["replay"].returncode == 1, runs["replay"].stderr
    runs["history"] = _bkdoctor("history", "--json", "--db", str(db))
    runs["diff"] = _bkdoctor("diff", "--db", str(db))
    for name, r in runs.items():
        outputs[f"{name} stdout"] = r.stdout.encode()
        outputs[f"{name} stderr"] = r.stderr.encode()
    for f in ("r.json", "r.html", "r.xml", "r2.json", "r2.html", "r2.xml"):
        outputs[f] = (tmp_path / f).read_bytes()
    for f in tmp_path.glob("history.db*"):  # the database and its WAL
        outputs[f.name] = f.read_bytes()
    outputs.update(_blobs_of_bundle(tmp_path / "b.tar.gz"))
    leaks = _leaks(outputs)
    assert leaks == [], "\n".join(leaks)

    # the places the secrets were planted were really read and are in the outputs, masked
    report = json.loads(outputs["r.json"])
    cluster = next(t for t in report["targets"] if t["kind"] == "cluster")
    assert cluster["reachable"] and cluster["address"].startswith(f"https://kubeuser:{MASK}@127.0.0.1:")
    assert f"kubeuser:{MASK}@127.0.0.1:9" in runs["scan unreachable cluster"].stdout
    swap = next(f for f in report["findings"] if f["rule"] == "swap" and f["target"] == "node-secret")
    assert swap["status"] == "fail"
    blobs = outputs
    assert f"username=bob,password={MASK},vers=3.0".encode() in blobs["bkdoctor-bundle/hosts/node-secret.json:fstab"]
    assert (
        f"https://mirroruser:{MASK}@mirror.intra".encode()
        in blobs["bkdoctor-bundle/hosts/node-secret.json:daemon_json"]
    )
    notes_out = blobs["bkdoctor-bundle/hosts/node-secret.json:sysctl_files"]
    assert b"-uroot -p***" in notes_out and b"Authorization: Basic ***" in notes_out
    cluster_doc = blobs["bkdoctor-bundle/cluster.json"].decode()
    assert f"redis://:{MASK}@redis:6379/0" in cluster_doc and "BK_DOMAIN" in cluster_doc
    assert f"epuser:{MASK}@mirror.intra" in blobs["bkdoctor-bundle/manifest.json"].decode()


def test_bundle_masks_docker_answers_pod_specs_and_logs(tmp_path):
    """The classes the live test cannot plant through real components (dockerd masks its own HttpProxy; failing
    pods' logs need a failing pod): the bundle writer masks them in the Docker answers, pod specs and log tails."""
    import datetime as dt
    from types import SimpleNamespace

    from bkdoctor.facts.cluster import ClusterFacts
    from bkdoctor.facts.host import HostFacts
    from bkdoctor.facts.probe import Section
    from bkdoctor.inputs.bundle import read_bundle, write_bundle
    from bkdoctor.inputs.inventory import local_inventory
    from bkdoctor.scan.engine import TargetState

    secrets = {
        "HttpProxy": "DockerProxyPw-1",
        "log password": "LogQuotedPw-2",
        "pod -p": "PodPflagPw-3",
        "pod env url": "PodEnvUrlPw-4",
        "error url": "ErrUrlPw-5",
        "log auth": "TG9nQXV0aDpQdzY=",
    }
    facts = HostFacts(
        {"hostname": Section("hostname", 0, b"n1\n")},
        docker_api={
            "info": {
                "HttpProxy": f"http://px:{secrets['HttpProxy']}@proxy:3128",
                "DockerRootDir": "/data/bcs/lib/docker",
            },
            "version": {"Version": "20.10.5"},
        },
        docker_api_error=None,
    )
    host = TargetState(
        name="n1", kind="host", address="10.0.0.5", roles=("node",), reachable=True, facts=facts, error=None
    )
    cf = ClusterFacts(None)
    cf._cache.update(
        {
            "pods": [
                {
                    "metadata": {"name": "db", "namespace": "blueking"},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "args": ["mysql", f"-p{secrets['pod -p']}"],
                                "env": [{"name": "DB_URL", "value": f"mysql://u:{secrets['pod env url']}@db/x"}],
                            }
                        ]
                    },
                }
            ],
            "logs": {
                "blueking/db/c": f"ERROR 1045: set password '{secrets['log password']}' failed\n"
                f"GET / Authorization: Basic {secrets['log auth']}\n"
            },
        }
    )
    cluster = TargetState(
        name="c",
        kind="cluster",
        address=f"https://k:{secrets['error url']}@10.0.0.2:6443",
        roles=(),
        reachable=True,
        error=f"cannot reach https://k:{secrets['error url']}@10.0.0.2:6443",
    )
    inv = local_inventory(domain="bkce7.bktencent.com", install_dir="/nonexistent")
    result = SimpleNamespace(
        inventory=inv,
        targets=[host, cluster],
        rules=[],
        id="s1",
        extra={"cluster_facts": cf},
        started_at=dt.datetime.now(dt.timezone.utc),
    )
    path = tmp_path / "b.tar.gz"
    write_bundle(result, str(path))
    blobs = _blobs_of_bundle(path)
    found = [f"{cls} in {where}" for where, data in blobs.items() for cls, s in secrets.items() if s.encode() in data]
    assert found == []
    assert b"http://px:***@proxy:3128" in blobs["bkdoctor-bundle/hosts/n1.json"]
    assert b"set password '***' failed" in blobs["bkdoctor-bundle/cluster.json"]
    read_bundle(str(path))  # and it is still a bundle


def _live(chunks):
    from bkdoctor.safe.secrets import LiveMasker

    lm = LiveMasker()
    outs = [lm.feed(c) for c in chunks]
    return b"".join(outs), lm.close()


def test_live_masker_review_shapes():
    """The second review's shapes: a character split between chunks (U+3000 after `Bearer`, a host name in Chinese
    after a URL password), a secret on the line after `bearer`/`IDENTIFIED`, CRLF YAML, kubeadm's certificate key."""
    cases = []
    whole = "X: Bearer\u3000abcdefgh12345\n".encode()
    cases.append((whole, whole.index("\u3000".encode()) + 1, b"abcdefgh12345"))
    whole = "mysql://root:pa ss@\u6570\u636e\u5e93:3306/db\n".encode()
    cases.append((whole, whole.index("\u6570".encode()) + 1, b"pa ss"))
    cases.append((b"CREATE USER x IDENTIFIED\nBY 'hunter2pw';\n", 25, b"hunter2pw"))
    cases.append((b"token type bearer\nabcdefgh12345 rest\n", 18, b"abcdefgh12345"))
    cases.append((b"password:\r\n  s3cretCR\r\nnext: 1\r\n", 11, b"s3cretCR"))
    cases.append((b"password: |\r\n  s3cretBL\r\n", 13, b"s3cretBL"))
    join = b"kubeadm join 10.0.0.2:6443 --control-plane --certificate-key 0f1e2d3c4b5a69788796a5b4c3d2e1f0\n"
    cases.append((join, 20, b"0f1e2d3c4b5a"))
    for whole, cut, secret in cases:
        assert secret not in mask_bytes(whole), whole
        before_close, rest = _live([whole[:cut], whole[cut:]])
        assert secret not in before_close and secret not in rest, whole
        assert before_close + rest == mask_bytes(whole), whole


@pytest.mark.parametrize(
    "text,keys",
    [
        # an unclosed quote (shlex cannot split the host line): its variable names, never its values
        ('[masters]\nm1 ansible_host=10.0.0.1 ansible_ssh_pass="S3cr3tIniPw pw\n', "ansible_host, ansible_ssh_pass"),
        ("[masters]\nm1 ansible_ssh_pass='S3cr3tIniPw a=b\n", "ansible_ssh_pass)"),  # `a=` inside the quote
        # a vars line without `=`: nothing of it
        ("[masters]\nm1\n[all:vars]\nansible_ssh_pass S3cr3tIniPw\n", "line 4: expected key=value"),
        ("[masters]\nm1\n[all:vars] ansible_ssh_pass=S3cr3tIniPw\n", "line 3: bad section header"),
    ],
)
def test_ansible_ini_errors_never_echo_the_line(tmp_path, text, keys):
    """An INI inventory's parse error names the line and the reason (and the variable names), never the line: a
    password on it went to the terminal (the adversarial review: `ansible_ssh_pass="S3cr3t pw` unclosed)."""
    inv = tmp_path / "a.ini"
    inv.write_text(text)
    r = _bkdoctor("scan", "-i", str(inv), "--no-history", "--no-cluster")
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and keys in r.stderr, r.stderr
    assert "S3cr3tIniPw" not in r.stderr, r.stderr


def test_fix_journal_masks_command_output_and_errors_but_keeps_what_rollback_restores(tmp_path):
    """The journal's `applied`: a control-machine command's output and the errors are masked; the ConfigMap contents
    and the file backups rollback restores from are kept exactly (masking them would restore `***`)."""
    from bkdoctor.fix.loop import FixOutcome
    from bkdoctor.fix.plan import K8sChange, Plan
    from bkdoctor.model import T
    from bkdoctor.store import History

    before = {"values.yaml": "bkrepo:\n  password: OldCmPw-1\n", "error": "a key named error"}
    after = {"values.yaml": "bkrepo:\n  password: NewCmPw-2\n", "error": "still a key"}
    applied = {
        "ok": False,
        "error": "`helmfile sync` exited 1: mysql://root:S3cr3tUrlPW@bk-mysql:3306",
        "fail": "helm: --set global.bkrepo.password=S3cr3tFailPW",
        "log": "requirepass S3cr3tLogPW",
        "wrote": [{"path": "/etc/bk/password.conf", "backup": "/etc/bk/password.conf.bkdoctor-1"}],
        "commands": [
            {
                "script": "helmfile -f base.yaml.gotmpl sync",
                "rc": 1,
                "output": "--set global.bkrepo.password=S3cr3tSetPW",
            }
        ],
        "k8s": [
            {
                **K8sChange("ConfigMap", "blueking", "bk-values", before, after).to_dict(),
                "ok": False,
                "error": "HTTP 422: redis://:S3cr3tK8sPW@r:6379",
                "applied_before": before,
                "applied_after": after,
            }
        ],
    }
    plan = Plan(rule="r", target="cluster", remediation="x", changes=[])
    hist = History(tmp_path / "h.db")
    hist.save_fix("f1", FixOutcome("r", "cluster", "failed", T("失败", "failed"), plan=plan, applied=applied))
    rec = hist.fix("f1")
    row = json.dumps(rec) + (tmp_path / "h.db").read_bytes().decode("latin-1")
    for s in ("S3cr3tUrlPW", "S3cr3tFailPW", "S3cr3tLogPW", "S3cr3tSetPW", "S3cr3tK8sPW"):
        assert s not in row, s
    got = rec["applied"]
    assert got["wrote"] == applied["wrote"] and got["commands"][0]["script"] == applied["commands"][0]["script"]
    assert got["k8s"][0]["applied_before"] == before and got["k8s"][0]["applied_after"] == after
    assert got["k8s"][0]["before"] == before and got["k8s"][0]["after"] == after
    assert got["error"] == f"`helmfile sync` exited 1: mysql://root:{MASK}@bk-mysql:3306"
    assert got["commands"][0]["output"] == f"--set global.bkrepo.password={MASK}"


def test_control_command_output_is_masked_before_it_is_cut(tmp_path):
    """run_on_control keeps the last 2,000 characters: masked first, so a cut that leaves a value without its key
    (`…password=` then 2,000 characters of it) does not keep the value."""
    import asyncio

    from bkdoctor.fix.loop import run_on_control
    from bkdoctor.inputs.inventory import local_inventory

    inv = local_inventory(domain="bkce7.bktencent.com", install_dir=str(tmp_path))
    script = "echo \"helm --set global.bkrepo.password=S3cr3tSetPW$(head -c 2100 /dev/zero | tr '\\0' x)\""
    rc, tail = asyncio.run(run_on_control(inv, script, 60))
    assert rc == 0 and "S3cr3tSetPW" not in tail and "xxxx" not in tail, tail[:200]


def test_diff_json_and_html_mask_rows_an_older_version_wrote(tmp_path):
    """`diff --json` and `diff --html` mask as the terminal diff does: a history row may predate the masking."""
    import sqlite3

    from bkdoctor.store import History

    db = tmp_path / "h.db"
    History(str(db))
    con = sqlite3.connect(db)
    for i, status in ((1, "pass"), (2, "fail")):
        con.execute(
            "insert into scans (id, started_at, finished_at, duration_s, summary, targets, rules) "
            "values (?, ?, ?, 1.0, '{}', '[]', '[]')",
            [f"scan{i}", f"2024-01-0{i}T00:00:00+00:00", f"2024-01-0{i}T00:00:01+00:00"],
        )
        con.execute(
            "insert into findings (scan_id, rule, target, status, severity, message) values (?, ?, ?, ?, ?, ?)",
            [f"scan{i}", "proxy", "node-1", status, "high", "proxy http://svc:S3cr3tOldRow@proxy:3128 refused"],
        )
    con.commit()
    con.close()
    html = tmp_path / "d.html"
    r = _bkdoctor("diff", "--db", str(db), "--json", "--html", str(html))
    assert r.returncode == 0, r.stderr
    assert "S3cr3tOldRow" not in r.stdout + r.stderr + html.read_text(), r.stdout
    assert json.loads(r.stdout)["new"][0]["message"] == f"proxy http://svc:{MASK}@proxy:3128 refused"
    assert f"http://svc:{MASK}@proxy:3128" in html.read_text()


# the review's missing shapes (round 23): each masked, each idempotent, and a lookalike of each left as it was
REVIEW23_SHAPES = [
    # key names: a key's data (kubeconfig) and compound keys with a secret's prefix
    ("users:\n- user:\n    client-key-data: LS0tS23KeyData==\n", "S23KeyData", "client-key-data: ***"),
    ('{"clientKeyData": "LS0tS23CamelData"}', "S23CamelData", '"clientKeyData": "***"'),
    ("app_key=S23AppKey", "S23AppKey", "app_key=***"),
    ("appKey: S23AppKeyCamel", "S23AppKeyCamel", "appKey: ***"),
    ("BK_APP_KEY=S23UpperAppKey x", "S23UpperAppKey", "BK_APP_KEY=*** x"),
    ("encryption_key: S23Enc", "S23Enc", "encryption_key: ***"),
    ("signing_key=S23Sign", "S23Sign", "signing_key=***"),
    ("jwt_key: S23Jwt", "S23Jwt", "jwt_key: ***"),
    ('{"privKey": "S23Priv"}', "S23Priv", '"privKey": "***"'),
    ("sessionKey=S23Session", "S23Session", "sessionKey=***"),
    ("ssl_key: S23Ssl", "S23Ssl", "ssl_key: ***"),
    # a token as the userinfo of an http(s) / git+https URL
    ("git clone https://ghp_S23Token@github.com/org/repo.git", "S23Token", "https://***@github.com/org/repo.git"),
    ("pip install git+https://S23GitTok@git.intra/x.git", "S23GitTok", "git+https://***@git.intra/x.git"),
    # Go's MySQL DSN
    ("dsn: root:S23Dsn@tcp(bk-mysql:3306)/bcs?charset=utf8", "S23Dsn", "root:***@tcp(bk-mysql:3306)/bcs"),
    ('DSN="bcs:S23Un@ix@unix(/var/run/mysqld.sock)/bcs"', "S23Un", '"bcs:***@unix(/var/run/mysqld.sock)/bcs"'),
    # rabbitmqctl
    ("rabbitmqctl add_user bk_user S23Rmq", "S23Rmq", "rabbitmqctl add_user bk_user ***"),
    ('rabbitmqctl -n rabbit@h change_password admin "S23Rmq2 x" && ok', "S23Rmq2", 'admin "***" && ok'),
    # MySQL
    ("ALTER USER 'root'@'%' IDENTIFIED WITH mysql_native_password BY 'S23Ident';", "S23Ident", "BY '***';"),
    ("CREATE USER u IDENTIFIED WITH caching_sha2_password AS 'S23Hash'", "S23Hash", "AS '***'"),
    ("SET PASSWORD FOR 'root'@'localhost' = PASSWORD('S23SetFn');", "S23SetFn", "= PASSWORD('***');"),
    ("SET PASSWORD FOR 'bk'@'%' = 'S23SetEq';", "S23SetEq", "= '***';"),
    # XML elements named like a secret
    ("<server><username>u</username><password>S23Xml</password></server>", "S23Xml", "<password>***</password>"),
    ("<secretKey>S23XmlKey</secretKey>", "S23XmlKey", "<secretKey>***</secretKey>"),
    ('<ns:password a="b"><![CDATA[S23Cdata x]]></ns:password>', "S23Cdata", '<ns:password a="b">***</ns:password>'),
]


@pytest.mark.parametrize("text,secret,kept", REVIEW23_SHAPES)
def test_mask_text_review23_shapes(text, secret, kept):
    out = mask_text(text)
    assert secret not in out and kept in out, out
    assert mask_text(out) == out  # idempotent
    from bkdoctor.safe.secrets import LiveMasker  # and the same streamed

    m = LiveMasker()
    streamed = b"".join(m.feed(text.encode()[i : i + 7]) for i in range(0, len(text.encode()), 7)) + m.close()
    assert streamed.decode() == out


def test_mask_obj_key_value_entries_name_their_secret():
    """The env-entry rule for other spellings: {"key", "value"} lists, and the capitalised {"Name"/"Key", "Value"}."""
    out = mask_obj(
        {
            "vars": [
                {"key": "DB_PASSWORD", "value": "S1"},
                {"Name": "MYSQL_ROOT_PASSWORD", "Value": "S2"},
                {"Key": "bk/app_key", "Value": "S3"},
                {"key": "mode", "value": "ha"},
                {"Name": "HOST", "Value": "db"},
            ],
            "kubeconfig": {"users": [{"user": {"client-key-data": "S4", "client-certificate-data": "CERT"}}]},
        }
    )
    text = json.dumps(out)
    for s in ("S1", "S2", "S3", "S4"):
        assert s not in text, (s, text)
    assert out["vars"][3:] == [{"key": "mode", "value": "ha"}, {"Name": "HOST", "Value": "db"}]
    assert out["kubeconfig"]["users"][0]["user"]["client-certificate-data"] == "CERT"
    assert mask_obj(out) == out


def test_review23_shapes_stay_linear_on_hostile_text():
    import time

    t0 = time.process_time()
    for text in (
        "=:" * 100_000 + "@tcp(",
        ":" * 200_000 + "@tcp(",
        "https://" * 50_000 + "a@",
        "<password>" * 50_000,
        "<password><![CDATA[" * 20_000 + "</password>",
        "rabbitmqctl add_user " * 50_000,
        "IDENTIFIED WITH x BY " * 30_000 + "'y'",
        "as 'x' " * 50_000,
        "SET PASSWORD " * 50_000 + "= 'x'",
        "password(" * 50_000,
        "app_key " * 100_000,
    ):
        mask_text(text)
    assert time.process_time() - t0 < 20
