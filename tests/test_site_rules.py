"""Site rules (issue 14): the operator's own checks as YAML, run through the same probe and engine as the built-in rules,
against real sshd test hosts and the real kube-apiserver; their own examples run by `bkdoctor rules test`; the scan's
metrics parsed by prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hostcases import make_ssh_host
from kube.fixtures import kube_apiserver, kube_ns  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "site-rules"


def bkdoctor(*args, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env["LANG"] = "C.UTF-8"
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("bkdoctor: error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


# -- rules test ---------------------------------------------------------------------------------------------------
def test_rules_test_runs_every_example_of_the_shipped_examples():
    r = bkdoctor("rules", "test", str(EXAMPLES))
    assert r.returncode == 0, r.stdout + r.stderr
    ids = re.findall(r"^ok   (site-[a-z-]+): (\d+)/(\d+) examples", r.stdout, re.M)
    assert len(ids) == 9 and all(a == b for _, a, b in ids), r.stdout
    assert {
        "site-ntp-intranet-server",
        "site-audit-agent-running",
        "site-banned-telnet-server",
        "site-coredns-intranet-upstream",
        "site-log-agent-ready",
    } <= {i for i, _, _ in ids}
    rows = json.loads(bkdoctor("rules", "test", str(EXAMPLES), "--json").stdout)
    assert rows and all(r["ok"] for r in rows) and {r["expected"] for r in rows} == {"pass", "fail"}


def test_rules_test_fails_when_an_example_disagrees(tmp_path):
    d = tmp_path / "rules"
    d.mkdir()
    doc = yaml.safe_load((EXAMPLES / "ntp.yaml").read_text())
    # a wrong regex: the pass example no longer passes (the examples hold the rule to what the site meant)
    doc["rules"][0]["check"]["regex"] = r"^\s*server\s+ntp\.intra\.example\.org"
    (d / "ntp.yaml").write_text(yaml.safe_dump(doc))
    r = bkdoctor("rules", "test", str(d))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL site-ntp-intranet-server: 3/4 examples as expected" in r.stdout
    assert "pass[0]: expected pass, got fail" in r.stdout
    assert "ok   site-ntp-no-public-pool" in r.stdout


BASE_RULE = {
    "id": "site-x",
    "title": {"zh": "x", "en": "x"},
    "severity": "high",
    "reference": {"site": "S-1"},
    "check": {"kind": "file_exists", "path": "/etc/x"},
    "examples": {"pass": [{"exists": True}], "fail": [{"exists": False}]},
}


def _rule(**kw):
    r = json.loads(json.dumps(BASE_RULE))
    for k, v in kw.items():
        if v is None:
            r.pop(k)
        else:
            r[k] = v
    return r


@pytest.mark.parametrize(
    "content,expect",
    [
        ("rules: [\n", "invalid YAML"),
        (b"\x00\x01binary\xff", "not UTF-8"),
        ("a: [\x00]\n", "invalid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        (yaml.safe_dump({"rules": [_rule(severity="hgh")]}), "line 13: rules.0.severity: 'hgh' is not one of"),
        (yaml.safe_dump({"rules": [_rule(reference=None)]}), "'reference' is a required property"),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "file_exists", "path": "/etc/x", "pth": 1})]}),
            "rules.0.check.pth: Additional properties are not allowed",
        ),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "sysctl", "key": "net.ipv4.ip_forward"})]}),
            "'value' is a required property",
        ),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "file_contains", "path": "/etc/x", "regex": "(["})]}),
            "rules.0.check.regex: bad regex",
        ),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "command", "argv": ["/bin/sh", "-c", "rm -rf /"]})]}),
            "runs other commands",
        ),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "file_contains", "path": "relative", "regex": "x"})]}),
            "rules.0.check.path",
        ),
        (
            yaml.safe_dump({"rules": [_rule(examples={"pass": [{"exists": True}], "fail": [{"exist": False}]})]}),
            "rules.0.examples.fail.0: a file_exists example needs `exists`",
        ),
        (yaml.safe_dump({"rules": [_rule(examples={"pass": [{"exists": True}]})]}), "'fail' is a required property"),
        # a unit starting with `-` was systemctl's option (`-Hroot@host`: another machine over ssh)
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "systemd_unit", "unit": "-Hroot@10.0.0.9"})]}),
            "rules.0.check.unit",
        ),
        (
            yaml.safe_dump({"rules": [_rule(check={"kind": "systemd_unit", "unit": "sshd\n"})]}),
            "rules.0.check.unit",
        ),
        (
            yaml.safe_dump(
                {"rules": [_rule(check={"kind": "k8s_pods", "namespace": "-x"}, examples={"pass": [], "fail": []})]}
            ),
            "rules.0.check.namespace",
        ),
        (yaml.safe_dump({"rules": [_rule(id="swap")]}), "id 'swap' is a built-in rule's id"),
        (yaml.safe_dump({"rules": [_rule(), _rule()]}), "id 'site-x' is already defined"),
    ],
)
def test_bad_site_rules_are_refused_with_one_line(tmp_path, content, expect):
    d = tmp_path / "rules"
    d.mkdir()
    f = d / "r.yaml"
    f.write_bytes(content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content)
    before = f.read_bytes()
    for args in (("rules", "test", str(d)), ("scan", "--rules-dir", str(d), "--no-history", "--no-cluster")):
        err = one_line_error(bkdoctor(*args))
        assert expect in err, err
    assert f.read_bytes() == before


def test_rules_dir_problems_and_inventory_rules_dirs(tmp_path):
    err = one_line_error(bkdoctor("scan", "--rules-dir", str(tmp_path / "nope"), "--no-history", "--no-cluster"))
    assert "not a directory" in err
    (tmp_path / "empty").mkdir()
    assert "no *.yaml files" in one_line_error(bkdoctor("rules", "test", str(tmp_path / "empty")))
    # the same id in two dirs (one from the inventory, one from the command line)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.yaml").write_text(yaml.safe_dump({"rules": [_rule()]}))
    (b / "y.yaml").write_text(yaml.safe_dump({"rules": [_rule()]}))
    inv = tmp_path / "hosts.yaml"
    ctl = [{"name": "ctl", "address": "localhost", "roles": ["control"]}]  # an inventory without hosts is refused
    inv.write_text(yaml.safe_dump({"rules_dirs": ["a"], "hosts": ctl}))
    err = one_line_error(bkdoctor("scan", "-i", str(inv), "--rules-dir", str(b), "--no-history", "--no-cluster"))
    assert "already defined in" in err and "a/x.yaml" in err
    inv.write_text(yaml.safe_dump({"rules_dirs": "a", "hosts": ctl}))
    assert "rules_dirs" in one_line_error(bkdoctor("scan", "-i", str(inv), "--no-history", "--no-cluster"))
    # listed by `bkdoctor rules` with their reference; titles from the file are shown inert
    (a / "x.yaml").write_text(yaml.safe_dump({"rules": [_rule(title={"zh": "标题", "en": "t\x1b]0;PWN\x07itle"})]}))
    r = bkdoctor("rules", "--rules-dir", str(a), "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert "site-x" in r.stdout and "S-1" in r.stdout and "\x1b]0;" not in r.stdout and "␛]0;PWN␇" in r.stdout


def test_probe_snippets_quote_every_value():
    from bkdoctor.facts.probe import build_script
    from bkdoctor.scan import siterules

    evil = "/tmp/x'; touch /tmp/PWNED; echo '$(id)`id`"
    chk = {"kind": "file_contains", "path": evil, "regex": "x"}
    sn = siterules.snippet(chk)
    assert "'\"'\"'" in sn and "$(id)`id`" in sn  # inside single quotes: inert
    siterules.register([siterules.SiteRule(rule=None, spec={"check": chk}, path=Path("x"))])  # type: ignore[arg-type]
    script, nonce = build_script({siterules.section_name(chk)})
    r = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=30, cwd="/tmp")
    assert r.returncode == 0
    assert not os.path.exists("/tmp/PWNED")
    from bkdoctor.facts.probe import parse_output

    sec = parse_output(r.stdout, nonce)[siterules.section_name(chk)]
    assert sec.rc == 3  # the file (with that odd name) does not exist: nothing else happened
    cmd = siterules.snippet({"kind": "command", "argv": ["echo", "a b", "$(id)", ";", "reboot"]})
    assert "echo 'a b' '$(id)' ';' reboot" in cmd


# -- a real scan over SSH --------------------------------------------------------------------------------------------
AUDITD = {"/usr/local/bin/auditd": {"content": "#!/bin/sh\nwhile :; do sleep 1; done\n", "mode": 0o755}}


def variant_rules(d: Path, marker: Path) -> None:
    """Rules beyond the shipped examples that this machine can answer both ways (Debian's dpkg database, which the
    test hosts share; sysctls, listeners and processes of each host's own namespaces)."""
    rules = [
        _rule(
            id="site-openssh-recent",
            check={"kind": "package", "name": "openssh-server", "min_version": "1:7.4"},
            examples={"pass": [{"version": "1:9.2p1-2"}], "fail": [{"version": "1:7.3p1"}]},
        ),
        _rule(
            id="site-banned-openssh",
            check={"kind": "package", "name": "openssh-server", "absent": True},
            examples={"pass": [{"version": None}], "fail": [{"version": "1:9.2p1-2"}]},
        ),
        _rule(
            id="site-ip-forward",
            roles=["node"],
            check={"kind": "sysctl", "key": "net.ipv4.ip_forward", "value": 1},
            examples={"pass": [{"value": "1"}], "fail": [{"value": "0"}]},
        ),
        _rule(
            id="site-sshd-listens",
            check={"kind": "port_listening", "port": 22},
            examples={"pass": [{"listening": [22]}], "fail": [{"listening": []}]},
        ),
        _rule(
            id="site-http-ok",
            check={"kind": "http_status", "url": "http://127.0.0.1:8088/", "status": [200], "timeout": 3},
            examples={"pass": [{"status": 200}], "fail": [{"status": 0}, {"status": 503}]},
        ),
        _rule(
            id="site-hostname-cmd",
            check={"kind": "command", "argv": ["uname", "-n"], "stdout": r"^good-", "timeout": 5},
            examples={"pass": [{"rc": 0, "stdout": "good-1\n"}], "fail": [{"rc": 0, "stdout": "bad-1\n"}]},
        ),
        _rule(
            id="site-data-mounted",
            check={"kind": "mount", "mountpoint": "/data", "fstype": "tmpfs"},
            examples={"pass": [{"mounts": [{"mountpoint": "/data", "fstype": "tmpfs"}]}], "fail": [{"mounts": []}]},
        ),
        _rule(
            id="site-chronyd-unit",
            check={"kind": "systemd_unit", "unit": "chronyd.service"},
            examples={"pass": [{"active": "active"}], "fail": [{"active": "inactive"}]},
        ),
        # a path that tries to break out of its quotes: it stays a (missing) file name
        _rule(
            id="site-quoted-path",
            check={"kind": "file_exists", "path": f"/tmp/x'; touch {marker}; echo '", "absent": True},
            examples={"pass": [{"exists": False}], "fail": [{"exists": True}]},
        ),
    ]
    d.mkdir()
    (d / "variant.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True))


@pytest.mark.ssh
def test_site_rules_on_real_ssh_hosts(ssh_fleet, tmp_path, report_validator):
    from prometheus_client.parser import text_string_to_metric_families

    good_conf = "server ntp.intra.example.com iburst\ndriftfile /var/lib/chrony/drift\n"
    bad_conf = "pool 2.centos.pool.ntp.org iburst\n"
    fleet, good = make_ssh_host(ssh_fleet, {"hostname": "good-1", "files": {"/etc/chrony.conf": good_conf, **AUDITD}})
    _, bad = make_ssh_host(ssh_fleet, {"hostname": "bad-1", "files": {"/etc/chrony.conf": bad_conf}})
    good.spawn(["/usr/local/bin/auditd"], name="auditd")
    good.spawn(["python3", "-m", "http.server", "--bind", "127.0.0.1", "8088"], name="http")
    bad.start_silent_listener(23)
    good.run("echo 1 > /proc/sys/net/ipv4/ip_forward")
    bad.run("echo 0 > /proc/sys/net/ipv4/ip_forward")
    good.run("for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8088/ && exit 0; sleep 0.1; done; exit 1")
    fleet.write_known_hosts()
    marker = Path("/tmp") / f"bkdoctor-site-{os.getpid()}"
    variant = tmp_path / "variant"
    variant_rules(variant, marker)
    assert bkdoctor("rules", "test", str(variant)).returncode == 0

    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": fleet.ssh_settings(connect_timeout=5),
        "rules_dirs": [str(EXAMPLES)],
        "hosts": [
            {"name": "good-1", "address": good.address, "roles": ["node"]},
            {"name": "bad-1", "address": bad.address, "roles": ["node"]},
        ],
        "suppress": [{"rule": "site-ntp-no-public-pool", "target": "bad-1", "reason": "migration ticket 42"}],
    }
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    db, out = tmp_path / "h.db", tmp_path / "out"
    out.mkdir()
    prom = out / "bkdoctor.prom"
    r = bkdoctor(
        "scan",
        "-i",
        str(inv_path),
        "--rules-dir",
        str(variant),
        "--rule",
        "site",
        "--rule",
        "swap",
        "--no-cluster",
        "--db",
        str(db),
        "--json",
        str(out / "r.json"),
        "--html",
        str(out / "r.html"),
        "--junit",
        str(out / "r.xml"),
        "--prometheus",
        str(prom),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    # the terminal names the site's reference, not a section of the guide
    flat = " ".join(r.stdout.split())
    assert "FAIL site-ntp-intranet-server (high) on 1/2 hosts: bad-1" in flat
    assert "(OPS-STD-7 §2 time sources (not in the guide))" in flat and "§site" not in flat
    assert not marker.exists() and not (Path(good.root) / str(marker).lstrip("/")).exists()
    rep = json.loads((out / "r.json").read_text())
    report_validator(rep)
    st = {(f["rule"], f["target"]): f for f in rep["findings"]}
    want = {
        "site-ntp-intranet-server": ("pass", "fail"),
        "site-ntp-no-public-pool": ("pass", "suppressed"),
        "site-audit-agent-running": ("pass", "fail"),
        "site-audit-agent-installed": ("fail", "fail"),
        "site-banned-telnet-server": ("pass", "pass"),
        "site-no-telnet-listener": ("pass", "fail"),
        "site-openssh-recent": ("pass", "pass"),
        "site-banned-openssh": ("fail", "fail"),
        "site-ip-forward": ("pass", "fail"),
        "site-sshd-listens": ("pass", "pass"),
        "site-http-ok": ("pass", "fail"),
        "site-hostname-cmd": ("pass", "fail"),
        "site-data-mounted": ("pass", "pass"),
        "site-chronyd-unit": ("error", "error"),
        "site-quoted-path": ("pass", "pass"),
        # the built-in rule beside them, same probe
        "swap": ("pass", "pass"),
    }
    got = {rule: (st[(rule, "good-1")]["status"], st[(rule, "bad-1")]["status"]) for rule in want}
    assert got == want, {k: (v, want[k]) for k, v in got.items() if v != want[k]}
    # cluster rules of the same dir: no cluster here, skipped like the built-in ones
    assert st[("site-coredns-intranet-upstream", "cluster")]["status"] == "skip"
    f = st[("site-ntp-intranet-server", "bad-1")]
    assert f["guide"]["section"] == "site" and "OPS-STD-7" in f["guide"]["title"]
    assert "has nothing matching" in f["message"] and f["remediation"]["commands"]
    assert st[("site-ntp-no-public-pool", "bad-1")]["suppression"]["reason"] == "migration ticket 42"
    assert "banned package" not in st[("site-banned-openssh", "good-1")]["message"] or True
    assert "openssh-server is installed" in st[("site-banned-openssh", "good-1")]["message"]
    assert "systemd is not running" in st[("site-chronyd-unit", "good-1")]["message"]
    assert "tcp/23 is listening" in st[("site-no-telnet-listener", "bad-1")]["message"]
    # HTML (escaped, self-contained) and JUnit carry them like any rule
    html = (out / "r.html").read_text()
    assert "site-ntp-intranet-server" in html and "OPS-STD-7" in html
    cases = {(c.get("classname"), c.get("name")) for c in ET.parse(out / "r.xml").getroot().iter("testcase")}
    assert any("site-audit-agent-running" in (a or "") + (b or "") for a, b in cases)

    # metrics: the real parser reads them; every rule x target once, counts per status, duration, timestamp
    text = prom.read_text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    series = {(s.labels["rule"], s.labels["target"]): s.labels["status"] for s in fams["bkdoctor_finding"].samples}
    assert series[("site-ntp-intranet-server", "bad-1")] == "fail"
    assert series[("site-ntp-no-public-pool", "bad-1")] == "suppressed"
    assert len(series) == len(rep["findings"])
    counts = {s.labels["status"]: s.value for s in fams["bkdoctor_findings"].samples}
    assert counts == {k: float(v) for k, v in rep["summary"].items() if k != "total"}
    problems = {(s.labels["rule"], s.labels["target"]): s.value for s in fams["bkdoctor_finding_problem"].samples}
    assert problems[("site-http-ok", "bad-1")] == 1 and problems[("site-http-ok", "good-1")] == 0
    assert abs(fams["bkdoctor_scan_duration_seconds"].samples[0].value - rep["scan"]["duration_s"]) < 0.01
    assert fams["bkdoctor_last_scan_timestamp_seconds"].samples[0].value > 1.7e9
    assert os.listdir(out) and all(not n.startswith(".bkdoctor.prom") for n in os.listdir(out))  # no temp left

    # the bad host fixed, scanned again: diff shows the site rule resolved, from the history
    bad.write("/etc/chrony.conf", good_conf)
    r = bkdoctor(
        "scan", "-i", str(inv_path), "--rules-dir", str(variant), "--rule", "site", "--no-cluster", "--db", str(db)
    )
    assert r.returncode == 1
    d = json.loads(bkdoctor("diff", "--db", str(db), "--json").stdout)
    assert {"rule": "site-ntp-intranet-server", "target": "bad-1"}.items() <= next(
        i for i in d["resolved"] if i["rule"] == "site-ntp-intranet-server"
    ).items()
    assert any(i["rule"] == "site-audit-agent-running" and i["target"] == "bad-1" for i in d["still_failing"])
    # the same comparison as a page
    r = bkdoctor("diff", "--db", str(db), "--html", str(out / "diff.html"))
    assert r.returncode == 0, r.stderr
    page = (out / "diff.html").read_text()
    resolved = page[page.index('<section id="resolved">') : page.index('<section id="still_failing">')]
    assert "site-ntp-intranet-server" in resolved and "bad-1" in resolved
    assert f'id="count-resolved">{len(d["resolved"])}<' in page
    assert f'id="count-still_failing">{len(d["still_failing"])}<' in page
    assert "<script" not in page and "default-src 'none'" in page


def test_diff_html_escapes_everything(tmp_path):
    from bkdoctor.report.diffhtml import render_diff_html

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"
    d = {
        "from": "a" + evil,
        "to": "b",
        "new": [{"rule": "r" + evil, "target": "t" + evil, "before": None, "after": "fail", "message": "m" + evil}],
        "resolved": [{"rule": "x", "target": "y", "before": 'warn" onclick="x', "after": "pass", "message": None}],
        "still_failing": [],
        "changed": [],
    }
    page = render_diff_html(d, "zh")
    assert "<script" not in page and "<img" not in page and "onerror=alert" in page  # as text only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'class="pill none"' in page and 'onclick="' not in page
    assert "新问题" in page and 'id="count-new">1<' in page


@pytest.mark.ssh
def test_site_rules_share_the_one_probe_per_host(ssh_fleet, tmp_path):
    """The site rules' sections ride in the host's single probe: one script per host, not one per rule; a site
    `process` check and the built-in rules' process list share one `cat` of /proc/[0-9]*/stat (issue 16)."""
    import asyncio

    from bkdoctor.inputs.inventory import load_inventory
    from bkdoctor.scan import engine, loader
    from bkdoctor.scan.siterules import load_dirs

    fleet, host = make_ssh_host(ssh_fleet, {"hostname": "one-1", "files": {"/etc/chrony.conf": "server x\n"}})
    fleet.write_known_hosts()
    inv_path = tmp_path / "hosts.yaml"
    inv_path.write_text(
        yaml.safe_dump(
            {
                "ssh": fleet.ssh_settings(connect_timeout=5),
                "hosts": [{"name": "one-1", "address": host.address, "roles": ["node"]}],
            }
        )
    )
    inv = load_inventory(str(inv_path))
    site = [s.rule for s in load_dirs([str(EXAMPLES)])]
    rules = loader.select(["site", "swap", "selinux", "firewall"], [], extra=site)
    scripts: list[str] = []

    def factory(h, i):
        t = engine.default_transport(h, i)
        orig = t.run_script

        async def counted(script, timeout):
            scripts.append(script)
            return await orig(script, timeout)

        t.run_script = counted  # type: ignore[method-assign]
        return t

    res = asyncio.run(engine.scan(inv, rules, factory=factory))
    assert len(scripts) == 1, len(scripts)
    assert "/etc/chrony.conf" in scripts[0] and "/proc/swaps" in scripts[0] and "auditd" not in scripts[0]
    from bkdoctor.facts.host import SECTIONS

    assert scripts[0].count(SECTIONS["processes"]) == 1, scripts[0]
    by = {f.rule.id: f.result.status for f in res.findings if f.target == "one-1"}
    assert by["site-ntp-intranet-server"] == "fail" and by["site-audit-agent-running"] == "fail"
    assert by["swap"] == "pass" and by["firewall"] in ("pass", "fail"), by


# -- the cluster ------------------------------------------------------------------------------------------------------
@pytest.mark.kube
def test_site_cluster_rules_against_the_real_apiserver(kube_apiserver, kube_ns, tmp_path, report_validator):
    from kube.fixtures import rest

    api = kube_apiserver.api_client()
    d = tmp_path / "rules"
    d.mkdir()
    # the shipped cluster example, pointed at this test's own namespace (instead of blueking / kube-system)
    text = (
        (EXAMPLES / "cluster.yaml")
        .read_text()
        .replace("namespace: blueking", f"namespace: {kube_ns}")
        .replace("namespace: kube-system", f"namespace: {kube_ns}")
    )
    (d / "cluster.yaml").write_text(text)
    assert bkdoctor("rules", "test", str(d)).returncode == 0

    def scan():
        r = bkdoctor(
            "scan",
            "--rules-dir",
            str(d),
            "--rule",
            "site",
            "--kubeconfig",
            kube_apiserver.kubeconfig,
            "--no-history",
            "--json",
            "-",
        )
        rep = json.loads(r.stdout)
        report_validator(rep)
        return r.returncode, {f["rule"]: f for f in rep["findings"] if f["target"] != os.uname().nodename}

    rest(
        api,
        "POST",
        f"/api/v1/namespaces/{kube_ns}/configmaps",
        body={"metadata": {"name": "coredns"}, "data": {"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"}},
    )
    rest(
        api,
        "POST",
        f"/api/v1/namespaces/{kube_ns}/pods",
        body={
            "metadata": {"name": "log-agent-a1", "labels": {"app": "log-agent"}},
            "spec": {"containers": [{"name": "a", "image": "registry.local/log-agent:1"}]},
        },
    )
    rc, f = scan()
    assert rc == 1
    assert {k: v["status"] for k, v in f.items()} == {
        "site-blueking-limitrange": "fail",
        "site-coredns-intranet-upstream": "fail",
        "site-log-agent-ready": "fail",
    }
    assert "forward . /etc/resolv.conf" in f["site-coredns-intranet-upstream"]["message"]
    assert f"{kube_ns}/log-agent-a1" in f["site-log-agent-ready"]["message"]

    rest(
        api,
        "POST",
        f"/api/v1/namespaces/{kube_ns}/limitranges",
        body={"metadata": {"name": "default"}, "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}},
    )
    rest(
        api,
        "PATCH",
        f"/api/v1/namespaces/{kube_ns}/configmaps/coredns",
        body={"data": {"Corefile": ".:53 {\n    forward . 10.0.0.53\n}\n"}},
        content_type="application/merge-patch+json",
    )
    rest(
        api,
        "PATCH",
        f"/api/v1/namespaces/{kube_ns}/pods/log-agent-a1/status",
        body={
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "a",
                        "ready": True,
                        "restartCount": 0,
                        "image": "x",
                        "imageID": "",
                        "state": {"running": {}},
                    }
                ],
            }
        },
        content_type="application/merge-patch+json",
    )
    rc, f = scan()
    assert rc == 0, f
    assert {k: v["status"] for k, v in f.items()} == {k: "pass" for k in f} and len(f) == 3
    api.close()


# -- what a site rule's message shows of host text -----------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,regex,content,secret,shown",
    [
        (
            "file_not_contains",
            r"^requirepass\s+\S+",
            "bind 0.0.0.0\nrequirepass S3cr3tRedisPW\n",
            "S3cr3tRedisPW",
            "'requirepass ***'",
        ),
        (
            "file_contains",
            r"machine \S+",
            "machine git.intra login bob password S3cr3tNetrcPW\n",
            "S3cr3tNetrcPW",
            "'machine git.intra login bob password ***'",
        ),
        ("file_not_contains", r"S3cr3t\w+", "db:\n  password:\n    S3cr3tYamlPW\n", "S3cr3tYamlPW", "'    ***'"),
        (
            "file_not_contains",
            r"password:\s*\S+",
            "db:\n  password:\n    S3cr3tYamlPW\n",
            "S3cr3tYamlPW",
            "'  password:\\n    ***'",
        ),
        # a match whose lines hold no secret is shown as it is
        (
            "file_not_contains",
            r"^bind\s+\S+",
            "bind 0.0.0.0\nrequirepass S3cr3tRedisPW\n",
            "S3cr3tRedisPW",
            "'bind 0.0.0.0'",
        ),
    ],
)
def test_site_file_rules_mask_host_text_before_repr(kind, regex, content, secret, shown):
    """A site rule's message and observed value: the host's lines masked first, then repr() (repr's quote before
    `requirepass` hid the line start the masking anchors on: the review's leak)."""
    from bkdoctor.scan.siterules import Raw, eval_host

    ok, msg, observed, _ = eval_host({"kind": kind, "path": "/etc/x", "regex": regex}, Raw(0, content))
    for text in (msg.en, msg.zh, json.dumps(observed)):
        assert secret not in text, text
    assert shown in msg.en, msg.en


def test_site_command_and_k8s_field_mask_host_text_before_repr():
    from bkdoctor.scan.siterules import Raw, eval_cluster, eval_host

    out = "rc=0\nrequirepass S3cr3tCmdPW\nmachine h login u password S3cr3tCmdNetrc\n"
    chk = {"kind": "command", "argv": ["cat", "/etc/redis.conf"], "stdout_not": r"(requirepass|machine).*"}
    ok, msg, obs, _ = eval_host(chk, Raw(0, out))
    assert not ok and "output has 'requirepass ***'" in msg.en, msg.en
    ok, msg, _, _ = eval_host({"kind": "command", "argv": ["cat", "x"]}, Raw(0, "rc=0\nrequirepass S3cr3tFirst\n"))
    assert ok and "S3cr3tFirst" not in msg.en and "requirepass ***" in msg.en, msg.en
    from bkdoctor.model import FactUnavailable

    with pytest.raises(FactUnavailable) as e:
        eval_host({"kind": "command", "argv": ["x"]}, Raw(0, "requirepass S3cr3tUnparsed\n"))
    assert "S3cr3tUnparsed" not in e.value.reason.en + e.value.reason.zh, e.value.reason
    cm = {"metadata": {"name": "cfg", "namespace": "blueking"}, "data": {"settings": "password:\n  S3cr3tField\n"}}
    secret_cm = {"metadata": {"name": "s", "namespace": "blueking"}, "data": {"redis_password": "S3cr3tKeyed"}}
    for field, obj, secret in (
        ("data.settings", cm, "S3cr3tField"),
        ("data.redis_password", secret_cm, "S3cr3tKeyed"),
    ):
        chk = {"kind": "k8s_field", "resource": "configmaps", "field": field, "equals": "x"}
        ok, msg, seen, _ = eval_cluster(chk, [obj])
        assert not ok and secret not in msg.en + json.dumps(seen), (msg.en, seen)
    # and the values that hold no secret are shown as they are
    ok, msg, seen, _ = eval_cluster(
        {"kind": "k8s_field", "field": "data.settings", "equals": "x"},
        [{"metadata": {"name": "c"}, "data": {"settings": "debug: true"}}],
    )
    assert "c: data.settings = 'debug: true'" in msg.en and seen == {"c": "debug: true"}, (msg.en, seen)


def test_rules_test_json_masks_the_example_content(tmp_path):
    d = tmp_path / "rules"
    d.mkdir()
    rule = _rule(
        check={"kind": "file_not_contains", "path": "/etc/redis.conf", "regex": r"^(requirepass|machine)\s+\S+"},
        examples={
            "pass": [{"content": "bind 0.0.0.0\n"}],
            "fail": [
                {"content": "requirepass S3cr3tRedisPW\n"},
                {"content": "machine h login u password S3cr3tNetrcPW\n"},
            ],
        },
    )
    (d / "r.yaml").write_text(yaml.safe_dump({"rules": [rule]}))
    for args in ((), ("--json",)):
        r = bkdoctor("rules", "test", str(d), *args)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "S3cr3t" not in r.stdout + r.stderr, r.stdout
    assert "has the forbidden 'requirepass ***'" in r.stdout, r.stdout
