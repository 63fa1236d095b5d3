"""The DaemonSet's probe output, sealed on the node so that its pod log carries only ciphertext.

A pod log is read by anyone with `pods/log` in the namespace and by every log collector of the cluster (BlueKing's
own bk-log collects containers' stdout); the probe's raw output holds host files (/etc/fstab with `password=` mount
options, daemon.json with a proxy's user:password). Masking happens on the control machine, which is too late for a
log. So:

- the control machine makes an RSA key pair when it renders the DaemonSet (`new_key`), keeps the private key in
  `$XDG_DATA_HOME/bkdoctor/daemonset-keys/` (0600, directory 0700), and puts ONLY the public key in the pod's env
  (BKDOCTOR_PUBKEY);
- on the node, the wrapper (`job.PROBE_WRAPPER`) runs the node's own `openssl` under the chroot (as the probe runs
  the node's own tools; the image needs nothing but /bin/sh and chroot): `openssl rand -hex 32` makes a session
  passphrase, `openssl pkeyutl -encrypt -pubin -pkeyopt rsa_padding_mode:oaep` seals it to the public key (the key
  read from a pipe on fd 3, the passphrase from stdin: neither is a file nor a command-line argument), and
  `openssl enc -aes-256-cbc -md sha256 -salt -a -pass env:BKD_K` encrypts the probe's stdout and stderr as it runs
  (the passphrase in that process's environment, which only root on the node can read, not in /proc/*/cmdline).
  Every one of these options exists in OpenSSL 1.0.2k (CentOS 7.9's) and in OpenSSL 3;
- no byte of the probe reaches the container's stdout except through `openssl enc`: a node where openssl is
  missing or fails prints a `SEAL-ERROR` marker and runs no probe (fail closed);
- `unseal` here reverses it with `cryptography`, and `probe.parse_output` then reads the plaintext exactly as
  before.

The log's frame (nonce N, as the probe's own markers):

    @@BKD-N:SEALED:<base64 of the RSA-OAEP-encrypted passphrase>
    <openssl enc -a output: base64 of "Salted__" + salt + AES-256-CBC ciphertext, 64-character lines>
    @@BKD-N:SEALED-END:<exit code of openssl enc>
    @@BKD-N:DONE:<exit code of the probe>

Key derivation is openssl's EVP_BytesToKey (one round of SHA-256), the only one OpenSSL 1.0.2 `enc` has (-pbkdf2
came in 1.1.1; OpenSSL 3 warns about it on stderr, which the wrapper discards): harmless here, the passphrase is 256
random bits, not a password. CBC has no MAC: whoever can write into a pod's log (root on the node) could already
forge its plaintext, and the public key, like the nonce, is in the pod spec anyway.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

from bkdoctor.model import BadInput, T

PUBKEY_ENV = "BKDOCTOR_PUBKEY"
KEY_BITS = 3072
# private keys are never removed by bkdoctor: a render that is only printed (and applied by hand, or not at all) makes
# one too, and pruning the oldest deleted the key of the DaemonSet that was running (review of round 23)


class SealError(Exception):
    """The node's output cannot be read (openssl missing there, a broken frame, no private key here)."""

    def __init__(self, text: T):
        super().__init__(text.en)
        self.text = text


def key_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "bkdoctor" / "daemonset-keys"


def key_id(public_pem: str) -> str:
    """A public key's name on the control machine: SHA-256 of its DER SubjectPublicKeyInfo (first 32 hex digits)."""
    from cryptography.hazmat.primitives import serialization

    try:
        pub = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, TypeError):
        raise SealError(T("Pod 的 BKDOCTOR_PUBKEY 不是 PEM 公钥", "the pod's BKDOCTOR_PUBKEY is not a PEM public key"))
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:32]


def _check_dir(d: Path) -> None:
    st = os.lstat(d)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise BadInput(
            T(f"密钥目录 {d} 不是目录（或是符号链接）", f"key directory {d} is not a directory (or is a symbolic link)")
        )
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise BadInput(
            T(
                f"密钥目录 {d} 须属于当前用户且权限为 0700",
                f"key directory {d} must belong to the current user with mode 0700",
            )
        )


def new_key(namespace: str) -> str:
    """Make a key pair for a DaemonSet in `namespace`, keep its private key on this machine, return the public key
    (PEM). No key is ever removed here (a running DaemonSet may use any of them): old ones are the operator's to
    delete, with the DaemonSet that used them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bkdoctor.safe.outfiles import write_atomic

    priv = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    public_pem = (
        priv.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    d = key_dir()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_dir(d)
        write_atomic(
            str(d / f"{namespace}.{key_id(public_pem)}.pem"),
            priv.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            mode=0o600,
        )
    except OSError as e:
        raise BadInput(
            T(
                f"无法保存 DaemonSet 的私钥到 {d}: {e.strerror}",
                f"cannot keep the DaemonSet's private key in {d}: {e.strerror}",
            )
        ) from None
    return public_pem


def load_key(namespace: str, public_pem: str):  # -> RSAPrivateKey
    """The private key kept by `new_key` for this public key, or SealError."""
    from cryptography.hazmat.primitives import serialization

    kid = key_id(public_pem)
    p = key_dir() / f"{namespace}.{kid}.pem"
    try:
        _check_dir(p.parent)
        data = p.read_bytes()
    except FileNotFoundError:
        raise SealError(
            T(
                f"本机没有该 DaemonSet 公钥（{kid}）对应的私钥（在 {p.parent}）：DaemonSet 是在别的机器上渲染的，"
                f"或私钥已被删除；请在本机重新执行 `bkdoctor cluster-job --mode daemonset --namespace {namespace} "
                f"--apply`",
                f"no private key on this machine for the DaemonSet's public key {kid} (in {p.parent}): it was "
                f"rendered on another machine, or the key was removed; run `bkdoctor cluster-job --mode daemonset "
                f"--namespace {namespace} --apply` again from here",
            )
        ) from None
    except (OSError, BadInput) as e:
        why = e.strerror if isinstance(e, OSError) else str(e)
        raise SealError(T(f"无法读取私钥 {p}: {why}", f"cannot read private key {p}: {why}")) from None
    return serialization.load_pem_private_key(data, password=None)


def _b64(text: bytes) -> bytes:
    """Base64 of `text` (line breaks ignored); a cut-off tail (not a whole 4-character group) is dropped."""
    s = re.sub(rb"\s+", b"", text)
    return base64.b64decode(s[: len(s) - len(s) % 4], validate=True)


def unseal(log: bytes, nonce: str, private_key) -> bytes | None:
    """The probe output sealed in a pod's `log` (see the module docstring); None when the log holds no sealed frame
    (the probe did not start). A log cut off inside the ciphertext gives the plaintext of its whole blocks: the
    probe's parser then drops the section left unfinished, as with a plain log cut off."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.asymmetric import padding as apad
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    mark = f"@@BKD-{nonce}:".encode()
    err = re.search(rb"(?:^|\n)" + re.escape(mark) + rb"SEAL-ERROR:([a-z-]{1,32})\n", log)
    if err:
        what = err.group(1).decode()
        raise SealError(
            T(
                f"节点上的 openssl 缺失或失败（{what}）：探测未运行，未输出任何明文；请在节点上安装 openssl"
                "（CentOS 7.9 默认已安装：yum install openssl）",
                f"openssl is missing or failed on the node ({what}): the probe was not run and nothing was printed "
                "in plain text; install openssl on the node (CentOS 7.9 has it by default: yum install openssl)",
            )
        )
    head = re.search(rb"(?:^|\n)" + re.escape(mark) + rb"SEALED:([A-Za-z0-9+/=]+)\n", log)
    if not head:
        return None
    body_start = head.end()
    end = re.compile(rb"\n?" + re.escape(mark) + rb"SEALED-END:(-?\d+)\n").search(log, body_start)
    if end:
        if end.group(1) != b"0":
            raise SealError(
                T(
                    f"节点上的 openssl enc 退出码 {end.group(1).decode()}：探测输出无法解密",
                    f"openssl enc on the node exited {end.group(1).decode()}: the probe output cannot be decrypted",
                )
            )
        body = log[body_start : end.start()]
    else:
        done = log.find(b"\n" + mark + b"DONE:", body_start)
        body = log[body_start : done if done >= 0 else len(log)]
    try:
        passphrase = private_key.decrypt(
            _b64(head.group(1)),
            apad.OAEP(mgf=apad.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
        data = _b64(body)
    except ValueError:
        raise SealError(
            T(
                "密封的探测输出无法解密（会话密钥或 base64 损坏，或私钥不匹配）",
                "the sealed probe output cannot be decrypted (session key or base64 damaged, or not this private key)",
            )
        ) from None
    if not re.fullmatch(rb"[0-9a-f]{64}", passphrase) or data[:8] != b"Salted__" or len(data) < 16:
        if len(data) < 16 and not end:
            return b""  # cut off before the first block: nothing finished
        raise SealError(T("密封的探测输出格式不对", "the sealed probe output is not in the expected format"))
    salt, ct = data[8:16], data[16:]
    # EVP_BytesToKey(SHA-256, salt, passphrase, 1 round): key 32 bytes, IV 16 bytes
    kiv, prev = b"", b""
    while len(kiv) < 48:
        prev = hashlib.sha256(prev + passphrase + salt).digest()
        kiv += prev
    dec = Cipher(algorithms.AES(kiv[:32]), modes.CBC(kiv[32:48])).decryptor()
    if not end:
        return dec.update(ct[: len(ct) - len(ct) % 16]) + dec.finalize()
    if len(ct) % 16:
        raise SealError(T("密封的探测输出被截断", "the sealed probe output is truncated"))
    plain = dec.update(ct) + dec.finalize()
    unpad = padding.PKCS7(128).unpadder()
    try:
        return unpad.update(plain) + unpad.finalize()
    except ValueError:
        raise SealError(
            T("密封的探测输出解密后填充错误", "the sealed probe output has bad padding once decrypted")
        ) from None
