"""A tiny test PKI made with the openssl command line (EC P-256 keys: fast to make).

Used by the kube-apiserver harness and the stand-in kubelet; nothing here is meant for real clusters.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass


class PKIError(RuntimeError):
    pass


def _openssl(*args: str, cwd: str | None = None) -> None:
    exe = shutil.which("openssl")
    if not exe:
        raise PKIError("openssl not found (apt-get install openssl)")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PKIError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class CertPair:
    cert: str
    key: str


class TestCA:
    """A certificate authority in ``directory`` (ca.crt / ca.key) that issues server and client certs."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str, cn: str = "bkdoctor-test-ca"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "ca.key")
        if not (os.path.exists(self.cert) and os.path.exists(self.key)):
            _openssl(
                "req",
                "-x509",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-keyout",
                self.key,
                "-out",
                self.cert,
                "-days",
                "3650",
                "-subj",
                f"/CN={cn}",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-addext",
                "subjectKeyIdentifier=hash",
            )
            os.chmod(self.key, 0o600)

    def issue(
        self,
        name: str,
        cn: str,
        *,
        orgs: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        dns: tuple[str, ...] = (),
        server: bool = False,
        client: bool = False,
        days: int = 365,
    ) -> CertPair:
        """Issue ``name.crt``/``name.key`` in the CA directory; returns their paths."""
        if not (server or client):
            raise ValueError("a certificate must be for server or client use (or both)")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        crt = os.path.join(self.dir, f"{name}.crt")
        ext = os.path.join(self.dir, f"{name}.ext")
        subj = "".join(f"/O={o}" for o in orgs) + f"/CN={cn}"
        _openssl(
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            subj,
        )
        os.chmod(key, 0o600)
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={','.join(usages)}",
            "authorityKeyIdentifier=keyid",
        ]
        sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.cert,
            "-CAkey",
            self.key,
            "-set_serial",
            "0x" + secrets.token_hex(15),
            "-days",
            str(days),
            "-extfile",
            ext,
            "-out",
            crt,
        )
        os.unlink(csr)
        os.unlink(ext)
        return CertPair(crt, key)


def make_keypair(directory: str, name: str) -> CertPair:
    """An EC key pair (``name.key`` private, ``name.pub`` public), e.g. for service-account tokens.

    Returned as CertPair(cert=<public key path>, key=<private key path>)."""
    key = os.path.join(directory, f"{name}.key")
    pub = os.path.join(directory, f"{name}.pub")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", key)
    os.chmod(key, 0o600)
    _openssl("pkey", "-in", key, "-pubout", "-out", pub)
    return CertPair(pub, key)
