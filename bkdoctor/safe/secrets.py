"""One masking function for everything that leaves the host: reports (JSON, HTML, JUnit, terminal), the history
database, support bundles and error lines.

Secrets are recognised two ways:
- by key name: a value under a key such as `password`, `token`, `secret`, `auth`, `credential`, `private_key`,
  a compound key with a secret's prefix (`app_key`, `signingKey`, `ssl_key`; not `key`, `keyFile`, `kubeletKey`)
  and a key's data (kubeconfig's `client-key-data`) (in structured data, and as `KEY=value` / `KEY: value` /
  `"key": "value"` in text);
- by value shape, whatever the key is called:
  URL userinfo (`mysql://user:PASSWORD@db`, `redis://:PASSWORD@r`, `http://user:PASSWORD@proxy:3128`),
  HTTP auth headers (`Authorization: Basic …`, `Bearer …`), `-pPASSWORD` (mysql-style), `--password=x` and
  `--password x`, `password=` options (CIFS lines in /etc/fstab), `password 'x'` / `IDENTIFIED BY 'x'` in logs,
  and a YAML key whose value is on the next line(s) (`password:\\n  x`, `password: |\\n  x`),
  `sshpass -p x`, `-p'quoted pw'`, PEM private-key blocks, Redis's `requirepass x` / `masterauth x` (redis.conf),
  `redis-cli -a x`, `docker login -p x`, curl's `-u user:x` / `--user user:x` / `--proxy-user user:x`,
  `mongo`/`mongosh`/`mongodump`… `-p x`, `htpasswd -b [file] user x` (and -nb, -bB, -Bb), .netrc lines
  (`machine h login u password x`, `default … password x`, a lone `password x` line), a token as the userinfo of
  an http(s)/git+https URL (`https://TOKEN@github.com/…`), Go's MySQL DSN (`user:x@tcp(db:3306)/bk`, `@unix(`),
  `rabbitmqctl add_user|change_password USER x`, MySQL's `IDENTIFIED WITH plugin BY 'x'`, `PASSWORD('x')` and
  `SET PASSWORD … = 'x'`, an XML element named like a secret (`<password>x</password>`, `<secretKey>`);
- in structured data, Kubernetes shapes: an env entry's `value` next to a secret-looking `name` (or `key`, `Name`,
  `Key`), an argv element after a secret flag (`["--password", "x"]`, `["-p", "x"]`, `["redis-cli", "-a", "x"]`;
  `["-u", "user:x"]` keeps the user; `["ssh", "-p", "22"]` keeps a port unless sshpass/mongo's own -p), htpasswd
  -b's password argument, kubectl's last-applied-configuration annotation.

The mask is `***`; the user name of a URL and the key stay visible so that the finding still says what it is.
"""

from __future__ import annotations

import functools
import re
from typing import Any

MASK = "***"

_SECRET_SUBSTR = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "private-key",
    "requirepass",  # Redis: redis.conf's `requirepass` / `masterauth`, and the same as flags
    "masterauth",
    "certificatekey",  # kubeadm's --certificate-key: it decrypts the control plane's certificates (kubeadm-certs)
    "certificate_key",
    "certificate-key",
)
_SECRET_SEGMENTS = {"pass", "pwd", "pw", "auth", "auths", "authorization", "passwd", "creds"}
# a key named <prefix>_key / <prefix>Key is a secret for these prefixes only (app_key, appKey, encryption_key,
# signing_key, jwt_key, privKey, sessionKey, ssl_key): `key`, `keys`, `keyFile`, `ssl_key_file` (a path),
# `kubeletKey`, `primaryKey` are not. And `<anything>-key-data` / `KeyData` (kubeconfig's client-key-data: a
# private key in base64), except a public key's.
_KEY_PREFIXES = {"app", "encryption", "encrypt", "signing", "sign", "jwt", "priv", "session", "ssl", "hmac", "aes"}
_SEGMENTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: object) -> bool:
    """A key name that holds a secret: contains password/secret/token/credential/api key/private key, or has a
    segment pass/pwd/auth (db_pass, mysqlPwd, auth); not `passed`, `bypass`, `author`. Also a compound ending in
    key with a secret's prefix (app_key, signingKey: _KEY_PREFIXES) and a key's data (client-key-data)."""
    if not isinstance(key, str) or not key or len(key) > 200:
        return False
    return _is_secret_name(key)


# Both are pure functions of a string, and a report asks them the same questions thousands of times: every finding's
# keys, its rule's title and guide, the same message on every host (300 hosts: 560,000 mask_text calls for 7,800
# findings, most of the report's CPU; issue 16). Short strings only, a bounded number: the cache stays small.
_CACHED_LEN = 512


@functools.lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    k = key.lower()
    if any(w in k for w in _SECRET_SUBSTR):
        return True
    segs = [seg.lower() for seg in _SEGMENTS.findall(key)]
    if any(seg in _SECRET_SEGMENTS for seg in segs):
        return True
    if "key" not in k:
        return False
    if segs[-1:] == ["key"]:
        return len(segs) >= 2 and segs[-2] in _KEY_PREFIXES
    return segs[-2:] == ["key", "data"] and segs[-3:-2] != ["public"]


# scheme://user:password@host  (password up to the last @ of the authority: a password may hold # ? / @ and even a
# space, which a URL parser would not accept but an operator's file does carry)
_URL_USER = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)([^\s/?#@:'\"]*):")
_URL_TOKEN = re.compile(r"[^\s'\"]{0,1024}")
_URL_HOST_AFTER = re.compile(r"@[\w.\[\]:%-]*(?=[\s/?#'\",;)\]}]|$)")
_PORT_PATH = re.compile(r"\d{1,5}(?:[/?#].*)?")
_URL_SPACED_WINDOW = 128
# Authorization: Basic xxx / Proxy-Authorization: Bearer xxx / "Authorization": "token xxx"
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?:((?:basic|bearer|digest|token|negotiate|ntlm|aws4-hmac-sha256)[ \t]+))?([^\r\n\"']+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})")
_BASIC = re.compile(r"\b(Basic\s+)([A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])")
# KEY=value, KEY: value, "key": "value" (when the key is a secret's); a quoted value is masked whole
# candidates only (a cheap filter; is_secret_key decides): keeps the Python-level work proportional to the secrets
# a cheap filter, a superset of the words is_secret_key looks for (every compound key name it knows ends in `key`):
# it keeps the Python-level work proportional to the candidates; one first-letter test before the alternation
_CAND_WORDS = r"(?=[pastckPASTCK])(?:p(?:ass|w)|auth|secret|token|cred|key)"
_CAND = r"(?=[\w.-]*?(?i:" + _CAND_WORDS + "))"
_KV = re.compile(r"(?<![\w.-])" + _CAND + r"([A-Za-z_][\w.-]*)([\"']?[ \t]*[:=][ \t]*)")
_KV_VALUE = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\",;'][^\s\",;]*")
# --password value, --db-password=value
_FLAG = re.compile(r"(?<![\w-])(--?)" + _CAND + r"([A-Za-z][\w-]*)([ \t]+|=)")
_FLAG_VALUE = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'-][^\s]*")
_FLAG_VALUE_EQ = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'][^\s]*")  # --password=-starts-with-a-dash
# mysql -pSECRET (attached), -p'quoted pw', -p"pw with space"; a port spec (-p2222, -p8080:80/tcp) is not a password
_P_FLAG = re.compile(r"(?<![\w-])(-p)('[^'\n]*'|\"[^\"\n]*\"|[^\s\"'][^\s\"']*)")
# sshpass -p SECRET (a separate argument: sshpass's -p is always the password)
_SSHPASS = re.compile(r"(\bsshpass(?:[ \t]+-[A-Za-z][^\s]*)*?[ \t]+-p[ \t]+)('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)")
# a PEM private key block (RSA/EC/OPENSSH/ENCRYPTED …): the body is masked, the armour lines stay
_PEM = re.compile(
    r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)(.*?)(-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)", re.S
)
_PORT_SPEC = re.compile(r"[\d.:]+(?:/\w+)?")
# password 'x', password "x", password is 'x', identified by 'x'
_QUOTED = re.compile(
    r"(?i)(?<![\w-])(?=[\w-]*?(?:"
    + _CAND_WORDS
    + r")|by\b|as\b)([A-Za-z_][\w-]*)([ \t]+(?:is[ \t]+|to[ \t]+|of[ \t]+)?)(?=['\"])"
)
_QUOTED_VALUE = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
# redis.conf: `requirepass x` / `masterauth x` (a space, not `=` or `:`, between the key and its value)
_REDIS_CONF = re.compile(r"(?im)^([ \t]*(?:requirepass|masterauth)[ \t]+)('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"][^\s]*)")
# a tool whose password flag is a letter used for other things elsewhere: redis-cli -a PW, docker login -p PW
# (a bounded number of words between, on the same line: linear)
_TOOL_FLAG = re.compile(
    r"(\b(?:redis-cli(?:[ \t]+[^\s]+){0,16}?[ \t]+-a|docker[ \t]+login(?:[ \t]+[^\s]+){0,16}?[ \t]+-p)[ \t]+)"
    r"('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)"
)
# mongo/mongosh/mongodump… -p PW (a separate argument: the mongo tools' -p is the password, never a port; `-p` with
# nothing or an option after it prompts). Words between stay on the same command (no | ; &): linear, bounded.
_MONGO_P = re.compile(
    r"((?<![\w.-])mongo(?:sh|dump|restore|export|import|stat|top|files)?(?:[ \t]+[^\s|;&]+){0,16}?[ \t]+-p[ \t]+)"
    r"('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"-][^\s'\"]*)"
)
# htpasswd -b[other letters] [file] user PASSWORD (with -n there is no file): the command up to the end of its line
# or a shell separator; _htpasswd counts the positional arguments (-C cost / -r rounds take a number)
_HTPASSWD = re.compile(r"\bhtpasswd((?:[ \t]+(?:'[^'\n]*'|\"[^\"\n]*\"|[^\s|;&'\"]+)){1,24})")
_WORD = re.compile(r"[ \t]+('[^'\n]*'|\"[^\"\n]*\"|[^\s|;&'\"]+)")
# .netrc: a line of keyword-value pairs (`machine h login u password x`, `default login u password x`, or a lone
# `password x` line of a multi-line entry); netrc keywords are lower case, so `Password expired` is prose. A line
# with any other word in it is not a netrc line (`password changed for root`).
_NETRC_PAIR = r"(?:default|macdef[ \t]+\S+|(?:machine|login|account|password|port)[ \t]+\S+)"
_NETRC_LINE = re.compile(r"(?m)^[ \t]*" + _NETRC_PAIR + r"(?:[ \t]+" + _NETRC_PAIR + r")*[ \t]*$")
_NETRC_PW = re.compile(r"(?<!\S)(password[ \t]+)(\S+)")
# curl -u user:PW, --user 'user:PW', --proxy-user user:PW, -uuser:PW (not a uid:gid, not a URL)
_USER_FLAGS = ("-u", "-U", "--user", "--proxy-user")
_USER_PW = re.compile(r"(?<![\w-])(-u|-U|--user|--proxy-user)((?:[ \t]+|=)?['\"]?[^\s:'\"/]*:)(?!//)([^\s'\"]+)")
# YAML: a key with nothing after the colon (the value is on the next lines), or a block scalar indicator
_YAML_KEY_ALONE = re.compile(
    r"^([ \t]*(?:-[ \t]+)?)[\"']?([\w.-]+)[\"']?[ \t]*:[ \t]*([|>][+-]?[0-9]?[+-]?)?[ \t]*(?:#[^\r]*)?\r?$"
)
# https://TOKEN@github.com/org/repo.git: userinfo without a colon in an http(s)/git+http(s) URL is a token (a user
# name alone there is rare, and masked too); ssh://git@host keeps its user
_URL_TOKEN_USER = re.compile(r"(?i)\b((?:git\+)?https?://)([^\s/?#@:'\"]+)@")
# Go's MySQL DSN: user:PASSWORD@tcp(host:3306)/db, @unix(/path); the password runs to the last @tcp( of the token
_GO_DSN = re.compile(r"(?<![^\s=\"'(,;`])([\w.-]{0,64}:)([^\s'\"]{1,256})(@(?:tcp6?|udp|unix)\()")
# rabbitmqctl add_user USER PW / change_password USER PW / authenticate_user USER PW (BlueKing's own scripts)
_RABBITMQCTL = re.compile(
    r"(\brabbitmqctl(?:[ \t]+[^\s|;&]+){0,8}?[ \t]+(?:add_user|change_password|authenticate_user)[ \t]+"
    r"(?:'[^'\n]*'|\"[^\"\n]*\"|[^\s|;&'\"]+)[ \t]+)('[^'\n]*'|\"[^\"\n]*\"|[^\s|;&'\"]+)"
)
# MySQL: PASSWORD('pw') / OLD_PASSWORD('pw'), SET PASSWORD [FOR user] = 'pw'
_SQL_PASSWORD_FN = re.compile(r"(?i)((?:\b|_)password[ \t]*\([ \t]*)('[^'\n]*'|\"[^\"\n]*\")")
_SQL_SET_PASSWORD = re.compile(r"(?i)(\bset[ \t]+password\b[^=\n;]{0,200}=[ \t]*)('[^'\n]*'|\"[^\"\n]*\")")
# XML: <password>x</password>, <secretKey>x</secretKey>, <ns:password a="b"><![CDATA[x]]></ns:password>
_XML_ELEMENT = re.compile(
    r"<(?=[\w.:-]*?(?i:" + _CAND_WORDS + r"))([A-Za-z_][\w.:-]{0,100})((?:[ \t\r\n][^<>]{0,1000})?>)"
    r"(<!\[CDATA\[.{0,4096}?\]\]>|[^<]*)(</\1[ \t]*>)",
    re.S,
)
_YAML_MAPPING_LINE = re.compile(r"^[ \t]*(?:[^\s:#-][^:#]*:(?:[ \t]|$)|#)")


def _sub_userinfo(text: str) -> str:
    """scheme://user:PASSWORD@host: the password runs to the last @ of the authority (the token up to white space);
    with no @ in that token, to the first @host on the line within a short window (a password with a space), unless
    what follows the colon is a port."""
    out: list[str] = []
    pos = 0
    while True:
        m = _URL_USER.search(text, pos)
        if m is None:
            break
        start = m.end()
        token = _URL_TOKEN.match(text, start).group(0)
        at = token.rfind("@")
        end = None
        if at >= 0:
            end = start + at
        elif not _PORT_PATH.fullmatch(token):
            line_end = text.find("\n", start, start + _URL_SPACED_WINDOW)
            window = text[start : line_end if line_end >= 0 else start + _URL_SPACED_WINDOW]
            for i in range(len(token), len(window)):
                if window[i] == "@" and "://" not in window[:i] and _URL_HOST_AFTER.match(window, i):
                    end = start + i
                    break
        if end is None or end == start:
            out.append(text[pos:start])
            pos = start
            continue
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _xml_element(m: re.Match) -> str:
    if not is_secret_key(m.group(1).rsplit(":", 1)[-1]) or not m.group(3) or m.group(3) == MASK:
        return m.group(0)
    return f"<{m.group(1)}{m.group(2)}{MASK}{m.group(4)}"


def _pem(m: re.Match) -> str:
    return (
        f"{m.group(1)}\n{MASK}\n{m.group(3)}" if m.group(2).strip() not in ("", MASK) or not m.group(3) else m.group(0)
    )


def _auth_header(m: re.Match) -> str:
    return f"{m.group(1)}{m.group(2) or ''}{MASK}"


_B64ISH = re.compile(r"[0-9+/=]|[a-z][A-Z]")


def _basic(m: re.Match) -> str:
    # "Basic dXNlcjpwdw==" yes, "Basic settings" no: base64 of user:password has digits, +/=, or mixed case
    return m.group(1) + MASK if _B64ISH.search(m.group(2)) else m.group(0)


def _p_flag(m: re.Match) -> str:
    if _PORT_SPEC.fullmatch(m.group(2)):
        return m.group(0)
    return m.group(1) + _masked_value(m.group(2))


def _user_pw(m: re.Match) -> str:
    pw = m.group(3)
    return m.group(0) if pw.isdigit() or pw == MASK else m.group(1) + m.group(2) + MASK


def _htpasswd_pw_index(words: list[str]) -> int | None:
    """The index of the password in htpasswd's arguments (without the command) when it is on the command line
    (batch mode, -b): after the options, the third positional argument (file user PASSWORD), the second with -n."""
    opts = ""
    i = 0
    while i < len(words) and words[i].startswith("-") and len(words[i]) > 1:
        w = words[i]
        i += 1
        if w == "--":
            break
        opts += w[1:]
        if w[-1] in "Cr" and i < len(words) and words[i].isdigit():
            i += 1  # -C cost, -r rounds
    if "b" not in opts or "D" in opts:
        return None
    pw = i + (1 if "n" in opts else 2)
    return pw if pw < len(words) else None


def _htpasswd(m: re.Match) -> str:
    words = list(_WORD.finditer(m.group(0), len("htpasswd")))
    pw = _htpasswd_pw_index([w.group(1) for w in words])
    if pw is None:
        return m.group(0)
    w = words[pw]
    return m.group(0)[: w.start(1)] + _masked_value(w.group(1)) + m.group(0)[w.end(1) :]


def _netrc_line(m: re.Match) -> str:
    return _NETRC_PW.sub(lambda p: p.group(1) + _masked_value(p.group(2)), m.group(0))


def _masked_value(v: str) -> str:
    if v[:1] in "'\"" and len(v) >= 2 and v[-1] == v[0]:
        return f"{v[0]}{MASK}{v[0]}"
    return MASK


def _kv_secret(m: re.Match) -> bool:
    key = m.group(1)
    return is_secret_key(key) and not key.lower().endswith("authorization")  # headers: _AUTH_HEADER


def _flag_secret(m: re.Match) -> bool:
    return is_secret_key(m.group(2))


# MySQL: IDENTIFIED BY 'pw', IDENTIFIED WITH <plugin> BY 'pw' / AS 'hash' (what comes before a `by`/`as` word)
_IDENTIFIED_BEFORE = re.compile(r"(?i)\bidentified(?:\s+with\s+['\"`]?[\w.-]{1,64}['\"`]?)?\s*\Z")


def _quoted_secret(m: re.Match) -> bool:
    word = m.group(1)
    if is_secret_key(word):
        return True
    w = word.lower()
    return w in ("by", "as") and _IDENTIFIED_BEFORE.search(m.string, max(0, m.start() - 100), m.start()) is not None


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
        v = (value_rx(m) if callable(value_rx) else value_rx).match(text, m.end()) if secret(m) else None
        if v is not None:
            out.append(text[pos : v.start()])
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
    if len(text) <= _CACHED_LEN and type(text) is str:
        return _mask_short(text)
    return _mask_text(text)


@functools.lru_cache(maxsize=8192)
def _mask_short(text: str) -> str:
    return _mask_text(text)


def _mask_text(text: str) -> str:
    text = _yaml_next_line_values(text)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(_pem, text)
    text = _sub_userinfo(text)
    if "://" in text and "@" in text:
        text = _URL_TOKEN_USER.sub(lambda m: m.group(1) + MASK + "@", text)
    if "@tcp" in text or "@unix(" in text or "@udp(" in text:
        text = _GO_DSN.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    if "</" in text:
        text = _XML_ELEMENT.sub(_xml_element, text)
    text = _AUTH_HEADER.sub(_auth_header, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK if m.group(2) != MASK else m.group(0), text)
    text = _BASIC.sub(_basic, text)
    text = _sub_keyed(_QUOTED, _QUOTED_VALUE, text, 1, _quoted_secret)
    text = _sub_keyed(_FLAG, lambda m: _FLAG_VALUE_EQ if m.group(3) == "=" else _FLAG_VALUE, text, 2, _flag_secret)
    if "sshpass" in text:
        text = _SSHPASS.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    text = _sub_keyed(_KV, _KV_VALUE, text, 1, _kv_secret)
    low = text.lower()
    if "password" in low:
        text = _SQL_PASSWORD_FN.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
        text = _SQL_SET_PASSWORD.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    if "rabbitmqctl" in text:
        text = _RABBITMQCTL.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    if "requirepass" in low or "masterauth" in low:
        text = _REDIS_CONF.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    if "redis-cli" in text or "login" in text:
        text = _TOOL_FLAG.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    if "mongo" in text:
        text = _MONGO_P.sub(lambda m: m.group(1) + _masked_value(m.group(2)), text)
    if "htpasswd" in text:
        text = _HTPASSWD.sub(_htpasswd, text)
    if "password" in text:
        text = _NETRC_LINE.sub(_netrc_line, text)
    if "-u" in text or "-U" in text:
        text = _USER_PW.sub(_user_pw, text)
    if "-p" in text:
        text = _P_FLAG.sub(_p_flag, text)
    return text


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# an argv element that takes the secret as the next element (a container's command/args)
_SECRET_FLAG = re.compile(r"--?[A-Za-z][\w-]*|-p")
# argv: the tools whose `-p` is always the password; elsewhere `-p 22` / `-p 8080:80` (ssh, docker run) is a port
_P_PASSWORD_TOOLS = re.compile(r"sshpass|mongo(?:sh|dump|restore|export|import|stat|top|files)?")


def _argv0(v: object) -> str:
    return v.rsplit("/", 1)[-1] if isinstance(v, str) else ""


def _is_secret_flag(v: object) -> bool:
    return (
        isinstance(v, str)
        and len(v) <= 100
        and _SECRET_FLAG.fullmatch(v) is not None
        and (v == "-p" or is_secret_key(v.lstrip("-")))
    )


def _last_applied(v: Any) -> Any:
    """kubectl's copy of the whole object as JSON text: masked like the object (or whole when it is not JSON)."""
    import json

    if not isinstance(v, str):
        return mask_obj(v)
    if v == MASK:
        return v
    try:
        return json.dumps(mask_obj(json.loads(v)), separators=(",", ":"))
    except (ValueError, RecursionError):
        return MASK


# an entry that names its secret beside its value: a container's env ({"name": "DB_PASSWORD", "value": x}), a
# key/value list ({"key": "DB_PASSWORD", "value": x}), the capitalised forms (ECS, Consul: {"Name"/"Key", "Value"})
_NAME_VALUE = (("name", "value"), ("key", "value"), ("Name", "Value"), ("Key", "Value"))


def _secret_named_value(obj: dict) -> str | None:
    """The key of the value an entry names as a secret's (see _NAME_VALUE), or None."""
    if "value" not in obj and "Value" not in obj:
        return None
    for name, value in _NAME_VALUE:
        if value in obj and is_secret_key(obj.get(name)):
            return value
    return None


def mask_obj(obj: Any, _under_secret: bool = False) -> Any:
    """A copy of a JSON-like value with every secret masked: scalars under secret-looking keys (at any depth
    below them), and every string by shape (mask_text). Keys are masked by shape too (a URL used as a key).
    Kubernetes shapes too: an env entry's `value` whose sibling `name` (or `key`, `Name`, `Key`) is secret-looking, an argv element after a
    secret flag (`--password x`, `-p x` unless x is a port spec and no sshpass/mongo tool came before),
    htpasswd's batch-mode password, and kubectl's last-applied-configuration annotation."""
    if isinstance(obj, dict):
        out = {}
        secret_value = _secret_named_value(obj)
        for k, v in obj.items():
            if k == LAST_APPLIED:
                out[k] = _last_applied(v)
                continue
            under = _under_secret or is_secret_key(k) or k == secret_value
            out[mask_text(k) if isinstance(k, str) else k] = mask_obj(v, under)
        return out
    if isinstance(obj, (list, tuple)):
        res = []
        after_flag = after_user = p_tool = False
        redis_cli = bool(obj) and _argv0(obj[0]) == "redis-cli"
        htpasswd_pw = None
        if obj and _argv0(obj[0]) == "htpasswd" and all(isinstance(v, str) for v in obj):
            htpasswd_pw = _htpasswd_pw_index(list(obj[1:]))
        for i, v in enumerate(obj):
            port = after_flag == "-p" and not p_tool and isinstance(v, str) and _PORT_SPEC.fullmatch(v)
            if after_flag and isinstance(v, str) and not _under_secret and not port:
                res.append(MASK if v else v)
            elif htpasswd_pw is not None and i == htpasswd_pw + 1 and not _under_secret:
                res.append(MASK if v else v)
            elif after_user and isinstance(v, str) and not _under_secret:
                res.append(mask_text(f"-u {v}")[3:])  # curl -u user:PW as argv: the same shape as in text
            else:
                res.append(mask_obj(v, _under_secret))
            p_tool = p_tool and after_flag != "-p"  # the tool's own -p only (`sshpass -p x ssh -p 22`)
            after_flag = v if _is_secret_flag(v) or (redis_cli and v == "-a") else False
            p_tool = p_tool or _P_PASSWORD_TOOLS.fullmatch(_argv0(v)) is not None
            after_user = isinstance(v, str) and v in _USER_FLAGS
        return res
    if _under_secret and obj not in (None, "", True, False):
        return MASK
    if isinstance(obj, str):
        return mask_text(obj)
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    # a set, bytes, any other object: every writer (JSON's default=str, the history, bundles) writes its str()
    return mask_text(str(obj))


def mask_bytes(data: bytes) -> bytes:
    """mask_text for raw bytes (host files): undecodable bytes are kept as they were."""
    text = data.decode("utf-8", "surrogateescape")
    out = mask_text(text)
    return data if out == text else out.encode("utf-8", "surrogateescape")


_ENDS_BEFORE_SECRET = re.compile(
    r"(?i)\b(?:bearer|basic|identified(?:[ \t]+with[ \t]+['\"`]?[\w.-]{1,64}['\"`]?)?)[ \t]*\r?\Z"
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")


class LiveMasker:
    """mask_text for a stream written as it comes (a step's log, for `tail -f`): what goes out is masked, so a log
    holds no secret even while its step runs or when bkdoctor is killed. Complete lines go out; held back is what a
    later line may still make part of a secret -- an open PEM private key block, and a secret YAML key alone with the
    lines indented under it -- until the block ends or the stream closes. Each line is looked at once (a held block
    is a list, joined when it goes out). Past HOLD_MAX characters held (or a line that long without its newline) the
    block goes out masked as it is, and the rest of it is masked line by line as it comes: a PEM body to one MASK
    line, a YAML value's lines to MASK; a line longer than that goes out masked up to there, and its rest is left
    out of the log (with a note saying so). Bytes that are not UTF-8 pass as they came (surrogateescape), even split
    between chunks."""

    HOLD_MAX = 1 << 20

    def __init__(self) -> None:
        import codecs

        self._dec = codecs.getincrementaldecoder("utf-8")("surrogateescape")  # a character split between chunks
        self._partial = ""  # the last line, its newline not come yet
        self._held: list[str] = []
        self._held_len = 0
        self._pem = False  # a PEM private key block is open
        self._yaml: int | None = None  # the indentation of the secret key alone whose block is open
        self._spill = False  # the open block went out past HOLD_MAX: its rest is masked line by line
        self._safe: list[str] = []  # lines no later line can change, masked together when the run ends
        self._cut = False  # a line went out past HOLD_MAX without its newline: the rest of it is dropped
        self._next = self._after = False  # this line / the last one ends where a secret may follow on the next

    def feed(self, data: bytes) -> bytes:
        text = self._dec.decode(data)
        out: list[str] = []
        if self._cut:  # the rest of a line past HOLD_MAX: not logged (a secret may run across the cut)
            nl = text.find("\n")
            if nl < 0:
                return b""
            out.append(f" [bkdoctor: the rest of this line, past {self.HOLD_MAX} characters, is not logged]\n")
            self._cut, text = False, text[nl + 1 :]
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line + "\n", out)
        self._flush_safe(out)
        if self._held_len > self.HOLD_MAX:
            out.append(mask_text("".join(self._held)))
            self._held, self._held_len = [], 0
            self._spill = self._pem or self._yaml is not None
        if len(self._partial) > self.HOLD_MAX:
            out.append(mask_text(self._partial))
            self._partial, self._cut = "", True
        return "".join(out).encode("utf-8", "surrogateescape")

    def close(self) -> bytes:
        out: list[str] = []
        self._partial += self._dec.decode(b"", final=True)
        if self._cut:
            out.append(f" [bkdoctor: the rest of this line, past {self.HOLD_MAX} characters, is not logged]")
            self._cut = False
        if self._partial:
            self._line(self._partial, out)
            self._partial = ""
        self._flush_safe(out)
        if self._held:
            out.append(mask_text("".join(self._held)))
            self._held, self._held_len = [], 0
        return "".join(out).encode("utf-8", "surrogateescape")

    def _line(self, line: str, out: list[str]) -> None:
        body = line.rstrip("\n")
        if self._yaml is not None and body.strip() and _indent(body) <= self._yaml and not self._pem:
            self._release(out)  # the key's block ended before this line
        held_before = self._pem or self._yaml is not None
        if self._spill and held_before:
            self._flush_safe(out)
            self._spill_line(line, body, out)
            return
        begin = None
        for begin in _PEM_BEGIN.finditer(body):
            pass
        if self._pem:
            self._pem = not _PEM_END.search(body) or bool(begin and not _PEM_END.search(body, begin.end()))
        else:
            self._pem = begin is not None and not _PEM_END.search(body, begin.end())
        if self._yaml is None:
            m = _YAML_KEY_ALONE.match(body)
            if m and is_secret_key(m.group(2)):
                self._yaml = len(m.group(1))
        # a line ending where a secret may follow on the next (`Bearer`, `Basic`, `IDENTIFIED`): held for one line
        self._next = bool(_ENDS_BEFORE_SECRET.search(body))
        if held_before or self._pem or self._yaml is not None or self._next or self._after:
            self._held.append(line)
            self._held_len += len(line)
            self._after = self._next
            if not (self._pem or self._yaml is not None or self._next):
                self._release(out)
        else:
            self._safe.append(line)

    def _flush_safe(self, out: list[str]) -> None:
        if self._safe:
            out.append(mask_text("".join(self._safe)))
            self._safe = []

    def _spill_line(self, line: str, body: str, out: list[str]) -> None:
        """A line of a block that went out unfinished (past HOLD_MAX): masked on its own."""
        if self._pem:
            if _PEM_END.search(body):
                self._pem, self._spill = False, self._yaml is not None
                out.append(mask_text(line))
            return  # the key's body: the MASK line went out with the block's start
        if not body.strip():
            out.append(line)
        else:
            out.append(line[: _indent(body)] + MASK + ("\n" if line.endswith("\n") else ""))

    def _release(self, out: list[str]) -> None:
        self._flush_safe(out)
        if self._held:
            out.append(mask_text("".join(self._held)))
        self._held, self._held_len, self._yaml, self._spill = [], 0, None, False
