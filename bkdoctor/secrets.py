"""One masking function for everything that leaves the host: reports (JSON, HTML, JUnit, terminal), the history
database, support bundles and error lines.

Secrets are recognised two ways:
- by key name: a value under a key such as `password`, `token`, `secret`, `auth`, `credential`, `private_key`
  (in structured data, and as `KEY=value` / `KEY: value` / `"key": "value"` in text);
- by value shape, whatever the key is called:
  URL userinfo (`mysql://user:PASSWORD@db`, `redis://:PASSWORD@r`, `http://user:PASSWORD@proxy:3128`),
  HTTP auth headers (`Authorization: Basic …`, `Bearer …`), `-pPASSWORD` (mysql-style), `--password=x` and
  `--password x`, `password=` options (CIFS lines in /etc/fstab), `password 'x'` / `IDENTIFIED BY 'x'` in logs,
  and a YAML key whose value is on the next line(s) (`password:\\n  x`, `password: |\\n  x`).

The mask is `***`; the user name of a URL and the key stay visible so that the finding still says what it is.
"""
from __future__ import annotations

import re
from typing import Any

MASK = "***"

_SECRET_SUBSTR = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "api_key", "api-key",
                  "accesskey", "access_key", "access-key", "privatekey", "private_key", "private-key")
_SECRET_SEGMENTS = {"pass", "pwd", "pw", "auth", "auths", "authorization", "passwd", "creds"}
_SEGMENTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: object) -> bool:
    """A key name that holds a secret: contains password/secret/token/credential/api key/private key, or has a
    segment pass/pwd/auth (db_pass, mysqlPwd, auth); not `passed`, `bypass`, `author`."""
    if not isinstance(key, str) or not key or len(key) > 200:
        return False
    k = key.lower()
    if any(w in k for w in _SECRET_SUBSTR):
        return True
    return any(seg.lower() in _SECRET_SEGMENTS for seg in _SEGMENTS.findall(key))


# scheme://user:password@host  (password up to the last @ of the authority)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)([^\s/?#@:'\"]*):([^\s/?#'\"]+)@")
# Authorization: Basic xxx / Proxy-Authorization: Bearer xxx / "Authorization": "token xxx"
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
                          r"(?:((?:basic|bearer|digest|token|negotiate|ntlm|aws4-hmac-sha256)[ \t]+))?([^\r\n\"']+)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})")
_BASIC = re.compile(r"\b(Basic\s+)([A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])")
# KEY=value, KEY: value, "key": "value" (when the key is a secret's); a quoted value is masked whole
# candidates only (a cheap filter; is_secret_key decides): keeps the Python-level work proportional to the secrets
_CAND = r"(?=[\w.-]*?(?i:pass|pwd|pw|auth|secret|token|credential|creds|api.?key|access.?key|private.?key))"
_KV = re.compile(r"(?<![\w.-])" + _CAND + r"([A-Za-z_][\w.-]*)([\"']?[ \t]*[:=][ \t]*)")
_KV_VALUE = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\",;'][^\s\",;]*")
# --password value, --db-password=value
_FLAG = re.compile(r"(?<![\w-])(--?)" + _CAND + r"([A-Za-z][\w-]*)([ \t]+|=)")
_FLAG_VALUE = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'-][^\s]*")
# mysql -pSECRET (attached); a port spec (-p2222, -p8080:80/tcp) is not a password
_P_FLAG = re.compile(r"(?<![\w-])(-p)([^\s\"'][^\s\"']*)")
_PORT_SPEC = re.compile(r"[\d.:]+(?:/\w+)?")
# password 'x', password "x", password is 'x', identified by 'x'
_QUOTED = re.compile(r"(?i)(?<![\w-])(?=[\w-]*?(?:pass|pwd|pw|auth|secret|token|credential|creds|api.?key|access.?key|private.?key)|by\b)([A-Za-z_][\w-]*)([ \t]+(?:is[ \t]+|to[ \t]+|of[ \t]+)?)(?=['\"])")
_QUOTED_VALUE = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
# YAML: a key with nothing after the colon (the value is on the next lines), or a block scalar indicator
_YAML_KEY_ALONE = re.compile(r"^([ \t]*(?:-[ \t]+)?)[\"']?([\w.-]+)[\"']?[ \t]*:[ \t]*([|>][+-]?[0-9]?[+-]?)?[ \t]*(?:#.*)?$")
_YAML_MAPPING_LINE = re.compile(r"^[ \t]*(?:[^\s:#-][^:#]*:(?:[ \t]|$)|#)")


def _userinfo(m: re.Match) -> str:
    return f"{m.group(1)}{m.group(2)}:{MASK}@"


def _auth_header(m: re.Match) -> str:
    return f"{m.group(1)}{m.group(2) or ''}{MASK}"


_B64ISH = re.compile(r"[0-9+/=]|[a-z][A-Z]")


def _basic(m: re.Match) -> str:
    # "Basic dXNlcjpwdw==" yes, "Basic settings" no: base64 of user:password has digits, +/=, or mixed case
    return m.group(1) + MASK if _B64ISH.search(m.group(2)) else m.group(0)


def _p_flag(m: re.Match) -> str:
    if _PORT_SPEC.fullmatch(m.group(2)):
        return m.group(0)
    return m.group(1) + MASK


def _masked_value(v: str) -> str:
    if v[:1] in "'\"" and len(v) >= 2 and v[-1] == v[0]:
        return f"{v[0]}{MASK}{v[0]}"
    return MASK


def _kv_secret(m: re.Match) -> bool:
    key = m.group(1)
    return is_secret_key(key) and not key.lower().endswith("authorization")  # headers: _AUTH_HEADER


def _flag_secret(m: re.Match) -> bool:
    return is_secret_key(m.group(2))


def _quoted_secret(m: re.Match) -> bool:
    word = m.group(1)
    if is_secret_key(word):
        return True
    return word.lower() == "by" and m.string[max(0, m.start() - 12):m.start()].lower().rstrip().endswith("identified")


def _sub_keyed(rx: re.Pattern, value_rx: re.Pattern, text: str, key_group: int, secret) -> str:
    """Mask the value (value_rx, right after the match) of each match whose key is a secret's. A match with another
    key consumes only its key, so `mysql://…?password=x` still gets its password looked at; the value is only
    matched for a secret key, so the cost stays linear."""
    out: list[str] = []
    pos = 0
    while True:
        m = rx.search(text, pos)
        if m is None:
            break
        v = value_rx.match(text, m.end()) if secret(m) else None
        if v is not None:
            out.append(text[pos:v.start()])
            out.append(_masked_value(v.group(0)))
            pos = v.end()
        else:
            end = max(m.end(key_group), pos + 1)
            out.append(text[pos:end])
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _yaml_next_line_values(text: str) -> str:
    if ":" not in text or "\n" not in text:
        return text
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _YAML_KEY_ALONE.match(lines[i])
        if not m or not is_secret_key(m.group(2)):
            i += 1
            continue
        key_indent = len(m.group(1))
        block = m.group(3) is not None
        j = i + 1
        first = True
        while j < len(lines):
            ln = lines[j]
            if not ln.strip():
                j += 1
                continue
            if _indent(ln) <= key_indent:
                break
            if first and not block and _YAML_MAPPING_LINE.match(ln):
                break  # a nested mapping or list: its own keys are looked at on their own
            first = False
            lines[j] = ln[: _indent(ln)] + MASK
            j += 1
        i = j if j > i + 1 else i + 1
    return "\n".join(lines)


def mask_text(text: str) -> str:
    """Mask every secret in a piece of text (a file, a log, a message). Idempotent."""
    if not text:
        return text
    text = _yaml_next_line_values(text)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _AUTH_HEADER.sub(_auth_header, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK if m.group(2) != MASK else m.group(0), text)
    text = _BASIC.sub(_basic, text)
    text = _sub_keyed(_QUOTED, _QUOTED_VALUE, text, 1, _quoted_secret)
    text = _sub_keyed(_FLAG, _FLAG_VALUE, text, 2, _flag_secret)
    text = _sub_keyed(_KV, _KV_VALUE, text, 1, _kv_secret)
    if "-p" in text:
        text = _P_FLAG.sub(_p_flag, text)
    return text


def mask_obj(obj: Any, _under_secret: bool = False) -> Any:
    """A copy of a JSON-like value with every secret masked: scalars under secret-looking keys (at any depth
    below them), and every string by shape (mask_text). Keys are masked by shape too (a URL used as a key)."""
    if isinstance(obj, dict):
        return {(mask_text(k) if isinstance(k, str) else k): mask_obj(v, _under_secret or is_secret_key(k))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_obj(v, _under_secret) for v in obj]
    if _under_secret and obj not in (None, "", True, False):
        return MASK
    if isinstance(obj, str):
        return mask_text(obj)
    return obj


def mask_bytes(data: bytes) -> bytes:
    """mask_text for raw bytes (host files): undecodable bytes are kept as they were."""
    text = data.decode("utf-8", "surrogateescape")
    out = mask_text(text)
    return data if out == text else out.encode("utf-8", "surrogateescape")
