"""Escape sequences from hosts never reach the operator's terminal (issue 10, item 4).

A real sshd test host whose /etc/os-release PRETTY_NAME and /etc/hosts (a file the hosts-file rule reads and its
fix rewrites) carry terminal escape sequences (window title, clear screen, OSC 52 clipboard write, 8-bit CSI, a
bidi override); an inventory host whose address carries them (so does the SSH error about it); an inventory host
name that carries them (refused, and the refusal quotes it). `scan`, `fix --dry-run` (the diff), and `diff` replayed
from the history database: the output holds no ESC, no BEL, no C1 character and no bidi override, and the planted
text is still there to read (ESC shown as ␛, BEL as ␇, U+009B as \\x9b, U+202E as \\u202e).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import yaml
from hostcases import make_ssh_host

ROOT = Path(__file__).resolve().parent.parent

TITLE = "\x1b]0;PWNED-TITLE\x07"  # OSC 0: window title
CLIP = "\x1b]52;c;cm0gLXJmIH4K\x07"  # OSC 52: write the clipboard
CLEAR = "\x1b[2J\x1b[H"  # clear the screen
CSI8 = "\x9b31m"  # 8-bit CSI (C1)
BIDI = "\u202e"  # right-to-left override
EVIL = f"{TITLE}{CLIP}{CLEAR}{CSI8}{BIDI}"

BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run(*args, env_extra=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env.update({"LANG": "C.UTF-8", "COLUMNS": "220"}, **(env_extra or {}))
    r = subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args], cwd=ROOT, env=env, capture_output=True, timeout=timeout
    )
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def run_pty(*args, timeout=180):
    """On a real terminal (a pty): rich then writes its own colours and progress, which are allowed; nothing else."""
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env.update({"LANG": "C.UTF-8", "COLUMNS": "220", "LINES": "60", "TERM": "xterm-256color"})
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, out.decode("utf-8")


def assert_inert(text: str, what: str) -> None:
    bad = BAD_CHARS.search(text)
    assert bad is None, (what, repr(text[max(0, bad.start() - 80) : bad.end() + 80]))


# rich's own output on a terminal: SGR colours, cursor show/hide, erase line, cursor up, carriage returns
RICH_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\[[0-9]*[AG]|\r")


def test_escape_sequences_from_hosts_are_shown_not_executed(ssh_fleet, tmp_path):
    os_release = f'NAME="Evil Linux"\nID="evil"\nVERSION_ID="7"\nPRETTY_NAME="Evil{EVIL}OS 7"\n'
    hosts = (
        "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
        f"# set up by {EVIL} ops\n"
        "10.0.0.2 k8s-api.bcs.local\n"
        f"10.96.45.12 bkce7.bktencent.com bkrepo.bkce7.bktencent.com docker.bkce7.bktencent.com #{TITLE}x\n"
        "10.96.45.12 bknodeman.bkce7.bktencent.com apps.bkce7.bktencent.com\n"
    )
    fleet, host = make_ssh_host(
        ssh_fleet, {"hostname": "evil-1", "files": {"/etc/os-release": os_release, "/etc/hosts": hosts}}
    )
    fleet.write_known_hosts()
    inv = {
        "domain": "bkce7.bktencent.com",
        "ingress_ip": "10.96.100.1",
        "ssh": fleet.ssh_settings(connect_timeout=3),
        "hosts": [
            {"name": "evil-1", "address": host.address, "roles": ["node"]},
            {"name": "gone-1", "address": f"gone{TITLE}{CLEAR}.invalid", "roles": ["node"]},
        ],
    }
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(yaml.safe_dump(inv, allow_unicode=False))  # YAML escapes the controls: "\e]0;…"
    db = str(tmp_path / "h.db")
    # an address with escapes is no host name: refused at load (exit 2), its one line inert
    rc, out, err = run("scan", "-i", str(inv_path), "--no-cluster", "--db", db)
    assert rc == 2 and "hosts.1.address" in err and len(err.strip().splitlines()) == 1, err
    assert_inert(out + err, "scan of an escape-laden address")
    inv["hosts"][1]["address"] = "gone-1.invalid"  # an address that resolves nowhere: the unreachable host below
    inv_path.write_text(yaml.safe_dump(inv, allow_unicode=False))

    # scan, twice into the history (the second is replayed by `diff`)
    for _ in range(2):
        rc, out, err = run("scan", "-i", str(inv_path), "--no-cluster", "--db", db)
        assert rc == 1, err
        assert_inert(out + err, "scan")
    assert "Evil␛]0;PWNED-TITLE␇␛]52;c;cm0gLXJmIH4K␇␛[2J␛[HOS" not in out  # cleaned, but not as one word…
    assert "Evil␛]0;PWNED-TITLE␇␛]52;c;cm0gLXJmIH4K␇␛[2J␛[H\\x9b31m\\u202eOS 7" in out  # …with every char shown
    assert "gone-1.invalid" in out  # the address, in the unreachable line

    # JSON on stdout: the same values (lossless), C1 and bidi escaped as \u009b / \u202e
    rc, out, err = run(
        "scan", "-i", str(inv_path), "--no-cluster", "--no-history", "--rule", "os-version", "--json", "-"
    )
    assert_inert(out, "scan --json -")
    report = json.loads(out)
    osv = next(f for f in report["findings"] if f["rule"] == "os-version" and f["target"] == "evil-1")
    assert osv["observed"]["name"] == f"Evil{EVIL}OS 7"
    assert any(t["address"] == "gone-1.invalid" for t in report["targets"])

    # the fix plan: the diff of /etc/hosts shows the evil lines, inert
    rc, out, err = run("fix", "--rule", "hosts-file", "-i", str(inv_path), "--dry-run", "--db", db)
    assert_inert(out + err, "fix --dry-run")
    assert "--- a/etc/hosts" in out
    assert " # set up by ␛]0;PWNED-TITLE␇␛]52;c;cm0gLXJmIH4K␇␛[2J␛[H\\x9b31m\\u202e ops" in out
    assert "#␛]0;PWNED-TITLE␇x" in out

    # replayed from history: the messages that carry host data come back from the database, still inert
    rc, out, err = run("diff", "--db", db)
    assert rc == 0, err
    assert_inert(out + err, "diff")
    assert "Still failing" in out and "PWNED-TITLE" in out and "os-version" in out
    rc, out, err = run("diff", "--db", db, "--json")
    assert_inert(out, "diff --json")
    assert any(f"Evil{EVIL}OS 7" in (it["message"] or "") for it in json.loads(out)["still_failing"])

    # on a real terminal: rich's own colours and progress only
    rc, out = run_pty("scan", "-i", str(inv_path), "--no-cluster", "--no-history")
    assert rc == 1, out
    rest = RICH_OWN.sub("", out)
    assert "\x1b" not in rest, repr(rest[max(0, rest.index("\x1b") - 60) : rest.index("\x1b") + 60])
    assert_inert(rest, "scan on a pty")
    assert "PWNED-TITLE" in rest

    # a host name with escapes: refused (exit 2), and the refusal quoting it is inert too
    bad = dict(inv, hosts=[{"name": f"n{TITLE}1", "address": host.address, "roles": ["node"]}])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    rc, out, err = run("scan", "-i", str(tmp_path / "bad.yaml"), "--no-cluster", "--no-history")
    assert rc == 2, err
    assert_inert(out + err, "bad host name")
    assert err.startswith("bkdoctor: error:") and len(err.strip().splitlines()) == 1, err


def test_clean_and_safe_console_class():
    """The one filter: every control class, visible; rich markup/emoji in data stay text; idempotent."""
    import io

    from rich.text import Text

    from bkdoctor.safe.terminal import clean, clean_line, json_for_terminal, safe_console

    s = "a\x1b[2Jb\x07c\x9bd\u202ee\u2066f\x7fg\rh\ni\tj\x00"
    assert clean(s) == "a␛[2Jb␇c\\x9bd\\u202ee\\u2066f␡g␍h\ni\tj␀"
    assert clean_line(s) == "a␛[2Jb␇c\\x9bd\\u202ee\\u2066f␡g␍h␊i␉j␀"
    assert clean(clean(s)) == clean(s)
    assert json.loads(json_for_terminal(json.dumps({"k": s}, ensure_ascii=False))) == {"k": s}
    assert_inert(json_for_terminal(json.dumps({"k": s}, ensure_ascii=False)), "json")
    c = safe_console()
    c.file = io.StringIO()
    c.print(f"[link=file:///etc/passwd]x[/link] :smile: {s}")
    c.print(Text("raw Text " + s))  # a path that forgot to clean: the console still does
    out = c.file.getvalue()
    assert_inert(out, "console")
    assert "[link=file:///etc/passwd]x[/link] :smile:" in out and "raw Text a␛[2Jb" in out


def test_library_logs_never_reach_the_terminal_raw(tmp_path):
    """A kubeconfig's exec plugin answers with escapes in its apiVersion: the kubernetes client logging.error()s that
    text (which, with no handler, makes Python's basicConfig print it raw), and urllib3 warns of every retry. Nothing
    of it is printed; with BKDOCTOR_DEBUG each record is one filtered line."""
    plugin = tmp_path / "plugin.sh"
    esc = json.dumps(f"x{TITLE}{CLEAR}")  # the escapes as JSON escapes: the plugin's output decodes
    plugin.write_text(
        f'#!/bin/sh\ncat <<\'EOF\'\n{{"apiVersion": {esc}, "kind": "ExecCredential", "status": {{"token": "t"}}}}\nEOF\n'
    )
    plugin.chmod(0o755)
    kc = tmp_path / "kc.yaml"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}
                        },
                    }
                ],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    args = ("scan", "--rule", "node-ready", "--kubeconfig", str(kc), "--no-history")
    rc, out, err = run(*args, env_extra={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert not BAD_CHARS.search(out + err), repr(err[-2000:])
    assert "ERROR:root" not in err and "WARNING:urllib3" not in err and "PWNED" not in err, err[-2000:]
    rc, out, err = run(*args, env_extra={"XDG_DATA_HOME": str(tmp_path / "d"), "BKDOCTOR_DEBUG": "1"})
    assert not BAD_CHARS.search(out + err), repr(err[-2000:])
    assert "bkdoctor: log: ERROR root: exec: plugin api version x" in err, err[-2000:]
