"""The DaemonSet's pod log carries only ciphertext (bkdoctor/incluster/seal.py): the container's wrapper run by the
real /bin/sh (dash) with the real openssl (Debian's OpenSSL 3; CentOS 7.9 has 1.0.2k: only options both have are
used), chroot into this machine's / as the node; the log decrypted with the private key kept on the control side.
The full path through a namespaced node, the stand-in kubelet and kube-apiserver is tests/test_incluster.py."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from bkdoctor.facts.probe import parse_output
from bkdoctor.incluster import job as incluster
from bkdoctor.incluster import seal
from bkdoctor.model import BadInput

NONCE = "0123456789abcdef"
SECRETS = ("S3cr3tCifsPW", "S3cr3tProxyPW")
FSTAB = "//nas/share /mnt/nas cifs username=svc,password=S3cr3tCifsPW 0 0\n"
DAEMON_JSON = '{"proxies": {"http-proxy": "http://svc:S3cr3tProxyPW@proxy:3128"}}\n'


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def section(name: str, body: str, rc: int = 0) -> str:
    return f"\nprintf '\\n@@BKD-{NONCE}:B:{name}\\n'\n{body}\nprintf '\\n@@BKD-{NONCE}:E:{name}:{rc}\\n'\n"


PROBE = (
    section("fstab", f"printf '%s' '{FSTAB}'")
    + section("daemon_json", f"printf '%s' '{DAEMON_JSON}'")
    + section("stderr", "echo 'on stderr' >&2", 1)
    + section("hostname", "cat /etc/hostname")
    + "echo 'a stray line outside any section'\nexit 7\n"
)


def wrap(public_key: str, probe: str = PROBE, path: str | None = None) -> subprocess.CompletedProcess:
    """The container's command as the DaemonSet runs it, with this machine's / as the node's root."""
    env = {
        "PATH": path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "BKDOCTOR_NONCE": NONCE,
        incluster.HOST_ROOT_ENV: "/",
        "BKDOCTOR_PROBE": probe,
        seal.PUBKEY_ENV: public_key,
    }
    return subprocess.run(
        ["/bin/sh", "-c", incluster.PROBE_WRAPPER],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
    )


def plain_of() -> bytes:
    env = {"PATH": os.environ["PATH"]}
    return subprocess.run(["/bin/sh", "-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout


def test_the_log_is_markers_and_base64_and_decrypts_to_the_probe_output():
    pub = seal.new_key("ns1")
    r = wrap(pub)
    log = r.stdout
    assert r.returncode == 0
    for s in SECRETS + ("cifs", "proxies", "on stderr", "stray", os.uname().nodename):
        assert s.encode() not in log, s
    lines = [x for x in log.decode().split("\n") if x]
    assert lines[0].startswith(f"@@BKD-{NONCE}:SEALED:") and lines[-2:] == [
        f"@@BKD-{NONCE}:SEALED-END:0",
        f"@@BKD-{NONCE}:DONE:7",  # the probe's own exit code, as before
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9+/=]{1,64}", x) for x in lines[1:-2]), lines
    plain = seal.unseal(log, NONCE, seal.load_key("ns1", pub))
    # the probe's stdout and stderr, as the pod log had them in plain text before (stderr merged into stdout)
    assert plain == plain_of()
    secs = parse_output(plain, NONCE)
    assert secs["fstab"].out.decode() == FSTAB and secs["daemon_json"].out.decode() == DAEMON_JSON
    assert secs["stderr"].rc == 1 and secs["stderr"].out == b"on stderr\n"
    assert secs["hostname"].out.strip() == os.uname().nodename.encode()


def test_a_log_cut_off_keeps_the_finished_sections():
    pub = seal.new_key("ns1")
    log = wrap(pub).stdout
    key = seal.load_key("ns1", pub)
    full = parse_output(seal.unseal(log, NONCE, key), NONCE)
    end = log.index(f"@@BKD-{NONCE}:SEALED-END:".encode())
    seen = set()
    for cut in range(log.index(b"\n", 2) + 1, end, 7):
        got = parse_output(seal.unseal(log[:cut], NONCE, key), NONCE)
        assert all(full[k] == v for k, v in got.items()), cut  # never a section's partial output
        seen.add(len(got))
    assert 0 in seen and max(seen) >= len(full) - 1, seen  # the last section may sit in openssl's buffer


def test_no_openssl_on_the_node_fails_closed_with_one_line():
    pub = seal.new_key("ns1")
    r = wrap(pub, path="/usr/sbin:/sbin")  # chroot is found, the node's openssl (/usr/bin) is not
    assert r.stdout == f"\n@@BKD-{NONCE}:SEAL-ERROR:openssl-rand\n\n@@BKD-{NONCE}:DONE:125\n".encode()
    with pytest.raises(seal.SealError) as e:
        seal.unseal(r.stdout, NONCE, seal.load_key("ns1", pub))
    assert "openssl is missing or failed on the node" in e.value.text.en and "openssl" in e.value.text.zh


def test_a_public_key_that_openssl_refuses_fails_closed():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )  # no OAEP padding for an EC key: pkeyutl fails, nothing of the probe is run
    r = wrap(pub)
    assert r.stdout == f"\n@@BKD-{NONCE}:SEAL-ERROR:openssl-pkeyutl\n\n@@BKD-{NONCE}:DONE:125\n".encode()


def test_the_private_key_stays_here_and_only_the_public_key_is_in_the_manifest(tmp_path):
    objs = incluster.render("ns1", "img:1", "daemonset", nonce=NONCE)
    text = incluster.to_yaml(objs)
    assert "PRIVATE KEY" not in text and "BEGIN PUBLIC KEY" in text
    env = {e["name"]: e["value"] for e in objs[-1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    kdir = tmp_path / "data" / "bkdoctor" / "daemonset-keys"
    (kfile,) = kdir.iterdir()
    assert kfile.name == f"ns1.{seal.key_id(env[seal.PUBKEY_ENV])}.pem"
    assert oct(kdir.stat().st_mode & 0o777) == "0o700" and oct(kfile.stat().st_mode & 0o777) == "0o600"
    assert b"PRIVATE KEY" in kfile.read_bytes()
    # more renders (printed only, never applied) never cost the key of the DaemonSet that is running
    for _ in range(6):
        incluster.render("ns1", "img:1", "daemonset", nonce=NONCE)
    seal.new_key("ns2")
    assert len(list(kdir.glob("ns1.*.pem"))) == 7 and len(list(kdir.glob("ns2.*.pem"))) == 1
    seal.load_key("ns1", env[seal.PUBKEY_ENV])  # still readable
    kdir.chmod(0o755)
    with pytest.raises(BadInput, match="mode 0700"):
        seal.new_key("ns1")


def test_collect_reports_a_node_without_openssl_in_both_languages_and_masks_a_plain_tail(monkeypatch):
    pub = seal.new_key(incluster.DEFAULT_NAMESPACE)
    logs = {
        "probe-a": wrap(pub, path="/usr/sbin:/sbin").stdout,
        # an unsealed log (not what the wrapper prints): its tail in the error is masked
        "probe-b": f"mount -o password=S3cr3tCifsPW\n@@BKD-{NONCE}:DONE:0\n".encode(),
        "probe-c": wrap(pub).stdout,
    }

    def pod(name, node, key=pub):
        env = [{"name": "BKDOCTOR_NONCE", "value": NONCE}] + ([{"name": seal.PUBKEY_ENV, "value": key}] if key else [])
        return {
            "metadata": {"name": name, "ownerReferences": [{"kind": "DaemonSet", "name": incluster.DAEMONSET_NAME}]},
            "spec": {"nodeName": node, "containers": [{"name": incluster.PROBE_CONTAINER, "env": env}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": incluster.PROBE_CONTAINER, "state": {"running": {"startedAt": "now"}}}],
            },
        }

    class Facts:
        def __init__(self, access):
            pass

        def get(self, what):
            return [{"metadata": {"name": n}} for n in ("node-a", "node-b", "node-c", "node-d")]

        def _list(self, path, params):
            return [
                pod("probe-a", "node-a"),
                pod("probe-b", "node-b"),
                pod("probe-c", "node-c"),
                pod("old", "node-d", ""),
            ]

        def _get(self, path, params, raw=False):
            return logs[path.rsplit("/", 2)[-2]]

    monkeypatch.setattr(incluster, "ClusterFacts", Facts)
    states = {s.name: s for s in incluster.collect_daemonset(None, wait_s=0)}
    a = states["node-a"]
    assert not a.reachable and a.error_t is not None
    assert a.error_t.en.startswith("probe pod bkdoctor/probe-a: openssl is missing or failed on the node")
    assert "节点上的 openssl 缺失或失败" in a.error_t.zh and "\n" not in a.error_t.en
    msg = a.unreachable("主机不可达", "host unreachable")
    assert msg.zh.startswith("主机不可达：探测 Pod") and msg.en.startswith("host unreachable: probe pod")
    assert "printed no probe output" in states["node-b"].error and "S3cr3tCifsPW" not in states["node-b"].error
    assert states["node-c"].reachable and states["node-c"].facts.sections["fstab"].out.decode() == FSTAB
    assert "has no BKDOCTOR_PUBKEY" in states["node-d"].error and "旧版" in states["node-d"].error_t.zh
