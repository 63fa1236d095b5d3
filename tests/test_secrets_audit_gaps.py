"""Masking gaps an adversarial audit left open: .netrc lines, the mongo tools' `-p x`, `htpasswd -b … PASSWORD`,
`sshpass -p x`, mysql's `-pX` / `--password=X`, kubectl's `--token` / `--bearer-token`, `PGPASSWORD=x`. Each is
masked, and its lookalike (a port flag, `ls -a`, `uid:gid`, a prose line) is left as it was."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bkdoctor.safe.secrets import MASK, mask_obj, mask_text


@pytest.mark.parametrize(
    "text,secret,kept",
    [
        # .netrc: one line, `default`, and a multi-line entry with `password` on its own line
        ("machine git.bk.example.com login bob password N1x\n", "N1x", "login bob password ***"),
        ("default login anonymous password N2x", "N2x", "default login anonymous password ***"),
        ("machine h\n  login bob\n  password N3x\n", "N3x", "  login bob\n  password ***\n"),
        ("machine a login u password N4x machine b login v password N5x", "N5x", "machine b login v password ***"),
        ("machine a login u password N4x machine b login v password N5x", "N4x", "machine a login u password ***"),
        ('machine h login u password "N6x y"', "N6x", 'password "***"'),
        # mongo / mongosh / mongodump: -p x (a separate argument), --password x, --password=x
        ("mongo -u admin -p M1x --authenticationDatabase admin", "M1x", "-p *** --authenticationDatabase admin"),
        ("/usr/bin/mongosh --host db -u root -p 'M2x y'", "M2x", "-p '***'"),
        ("mongodump -u root -p M3x --out /backup", "M3x", "-p *** --out /backup"),
        ("mongosh --password M4x", "M4x", "--password ***"),
        ("mongosh --password=M5x", "M5x", "--password=***"),
        ("mongo -p 123456 db", "123456", "mongo -p *** db"),  # a numeric mongo password is still one
        # mysql: the attached form and --password=
        ("mysql -uroot -pY1x -h db", "Y1x", "-uroot -p*** -h db"),
        ("mysql --password=Y2x -h db", "Y2x", "--password=***"),
        ("mysqldump --password Y3x bk", "Y3x", "--password *** bk"),
        # htpasswd batch mode: file user PASSWORD, -n: user PASSWORD; combined letters either order; -C cost
        ("htpasswd -b /etc/nginx/.htpasswd admin H1x", "H1x", ".htpasswd admin ***"),
        ("htpasswd -bB /etc/nginx/.htpasswd admin H2x && nginx -s reload", "H2x", "admin *** && nginx"),
        ("htpasswd -Bb /etc/h admin H3x", "H3x", "htpasswd -Bb /etc/h admin ***"),
        ("htpasswd -nb admin H4x", "H4x", "htpasswd -nb admin ***"),
        ("htpasswd -B -C 10 -b /etc/h admin 'H5x y'", "H5x", "/etc/h admin '***'"),
        ("htpasswd -cbB /etc/h admin H6x", "H6x", "/etc/h admin ***"),
        # sshpass, kubectl, PGPASSWORD
        ("sshpass -p S1x ssh -p 22 root@h", "S1x", "sshpass -p *** ssh -p 22 root@h"),
        ("kubectl --token K1x get pods", "K1x", "--token *** get pods"),
        ("kubectl --token=K2x get pods", "K2x", "--token=*** get pods"),
        ("kubectl --bearer-token K3x get pods", "K3x", "--bearer-token *** get pods"),
        ("PGPASSWORD=P1x psql -h db", "P1x", "PGPASSWORD=*** psql -h db"),
        ("HOME=/root\nPGPASSWORD=P2x\nPATH=/bin\n", "P2x", "PGPASSWORD=***\nPATH=/bin"),
        ("export PGPASSWORD='P3x y'", "P3x", "export PGPASSWORD='***'"),
    ],
)
def test_audit_gaps_are_masked(text, secret, kept):
    out = mask_text(text)
    assert secret not in out and kept in out, out
    assert mask_text(out) == out


@pytest.mark.parametrize(
    "text",
    [
        "ls -a /tmp",
        "ssh -p 22 root@10.0.0.5",
        "scp -P 2222 a root@h:/tmp",
        "mysql -P 3306 -h db -u root",
        "mysql -p -h db",  # prompts
        "mysql -p bk_db",  # -p with a space: bk_db is the database, mysql prompts
        "chown 1000:1000 /data && stat -c %u:%g /data",
        "docker run -p 80:80 -p 8443:443/tcp nginx",
        "mongo -p --authenticationDatabase admin",  # -p then an option: mongo prompts
        "mongod --port 27017 --bind_ip 0.0.0.0",
        "docker run -p 27017:27017 mongo",
        "bk-mongodb-exporter -p 9216",
        "echo mongo; ssh -p 22 h",
        "htpasswd -c /etc/h admin",  # prompts for the password
        "htpasswd -D /etc/h admin",
        "htpasswd -bD /etc/h admin",
        "Password expired for user root",
        "password changed for root",
        "password    requisite     pam_pwquality.so try_first_pass retry=3",  # /etc/pam.d/system-auth
        "password    include       system-auth",
        "login root",
        "machine learning job failed",
        "port 22\nPasswordAuthentication no",
    ],
)
def test_audit_gap_lookalikes_are_kept(text):
    assert mask_text(text) == text


def test_mask_obj_argv_p_port_and_password_tools():
    out = mask_obj(  # keys that are not secret-looking (under `htpasswd` every value would be masked)
        {
            "ssh": ["ssh", "-p", "22", "root@h"],
            "docker": ["docker", "run", "-p", "8080:80/tcp", "x"],
            "sshpass": ["/usr/bin/sshpass", "-p", "1234", "ssh", "-p", "22", "h"],
            "mongo": ["mongosh", "-u", "root", "-p", "987654"],
            "mysql": ["mysql", "-p", "Q1x"],
            "web_users": ["htpasswd", "-bB", "-C", "12", "/etc/h", "admin", "Q2x"],
            "web_users_n": ["htpasswd", "-nb", "admin", "Q3x"],
            "web_users_c": ["htpasswd", "-c", "/etc/h", "admin"],
            "args": ["--password", "S3", "-p", "S4", "--port", "8080"],
        }
    )
    assert out["ssh"] == ["ssh", "-p", "22", "root@h"]
    assert out["docker"] == ["docker", "run", "-p", "8080:80/tcp", "x"]
    assert out["sshpass"] == ["/usr/bin/sshpass", "-p", MASK, "ssh", "-p", "22", "h"]
    assert out["mongo"] == ["mongosh", "-u", "root", "-p", MASK]
    assert out["mysql"] == ["mysql", "-p", MASK]
    assert out["web_users"] == ["htpasswd", "-bB", "-C", "12", "/etc/h", "admin", MASK]
    assert out["web_users_n"] == ["htpasswd", "-nb", "admin", MASK]
    assert out["web_users_c"] == ["htpasswd", "-c", "/etc/h", "admin"]
    assert out["args"] == ["--password", MASK, "-p", MASK, "--port", "8080"]
    assert mask_obj(out) == out


def test_audit_gap_masking_is_linear_on_hostile_text():
    t0 = time.process_time()
    for text in (
        "password " * 100_000,
        "password " * 100_001 + "x y",
        ("machine " + "a" * 5000 + " ") * 200 + "z",
        "login u " * 100_000 + "\n",
        "mongo " * 100_000,
        "mongo -p " * 100_000,
        "/mongo" * 100_000 + " -p x",
        "mongo " + "a " * 100_000 + "-p x",
        "htpasswd " * 100_000,
        "htpasswd -b " * 100_000,
        "htpasswd '" * 100_000,
        "htpasswd " + "-C " * 100_000,
    ):
        mask_text(text)
    assert time.process_time() - t0 < 20


_WORDS = st.sampled_from(
    ["machine", "login", "password", "default", "mongo", "mongosh", "-p", "-b", "-nb", "htpasswd", "sshpass", "u"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.text(alphabet="ab '\"-:\t\n", max_size=6)), max_size=40))
def test_audit_gap_masking_is_idempotent_and_keeps_no_planted_password(words):
    text = " ".join(words)
    out = mask_text(text)
    assert mask_text(out) == out
    planted = text + "\nmachine h login u password Zq9x\nmongo -p Zq8x\nhtpasswd -b f u Zq7x\n"
    out = mask_text(planted)
    assert "Zq9x" not in out and "Zq8x" not in out and "Zq7x" not in out, out
