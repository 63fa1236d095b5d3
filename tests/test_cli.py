"""The CLI end to end, as an operator runs it: real subprocesses, this machine through the local transport.

Verdicts that depend on the machine are pinned with threshold overrides in a test inventory, so the tests
mean the same on any host (kernel_min 0.1 always passes, 999 always fails)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostcases import machine_swap_unchanged

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env=None, cwd=None, input=None, timeout=120):
    e = dict(os.environ)
    e.pop("BKDOCTOR_DEBUG", None)
    e.setdefault("LANG", "C.UTF-8")
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=cwd or ROOT,
        env=e,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def home(tmp_path):
    """A private XDG_DATA_HOME so no test touches the real history database."""
    return {"XDG_DATA_HOME": str(tmp_path / "xdg")}


def inventory(tmp_path, body: str, name="inv.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


LOCAL = """\
domain: bkce7.bktencent.com
hosts:
  - name: ctl
    address: localhost
    roles: [control]
"""


def test_scan_this_host_json_to_stdout(home, report_validator):
    r = run("scan", "--json", "-", env=home)
    assert r.returncode in (0, 1), r.stderr
    report = report_validator(json.loads(r.stdout))
    assert report["targets"][0]["roles"] == ["control"] and report["targets"][0]["reachable"]
    assert report["summary"]["total"] == len(report["findings"]) > 5
    # the terminal summary went to stderr, not into the JSON
    assert "Scan " in r.stderr or "扫描" in r.stderr
    assert "Traceback" not in r.stderr


def test_scan_writes_json_html_junit(tmp_path, home, report_validator):
    out = tmp_path / "out"
    out.mkdir()
    r = run(
        "scan", "--json", str(out / "r.json"), "--html", str(out / "r.html"), "--junit", str(out / "r.xml"), env=home
    )
    assert r.returncode in (0, 1), r.stderr
    report = report_validator(json.loads((out / "r.json").read_text()))
    html = (out / "r.html").read_text()
    assert report["scan"]["id"] in html and "<html" in html.lower()
    suites = ET.parse(out / "r.xml").getroot()
    assert int(suites.get("tests")) == len(report["findings"])
    # the summary goes to stdout when JSON is not on stdout
    assert "Scan " in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json", "r.xml"]  # no temp files left behind


def test_exit_codes_follow_fail_on(tmp_path, home):
    ok = inventory(tmp_path, LOCAL + "thresholds: {kernel_min: '0.1'}\n", "ok.yaml")
    bad = inventory(tmp_path, LOCAL + "thresholds: {kernel_min: '999'}\n", "bad.yaml")
    warn = inventory(
        tmp_path,
        LOCAL
        + textwrap.dedent("""\
        thresholds:
          resources:
            control: {min: {cpu: 1, mem_gb: 0, disk_gb: 0}, rec: {cpu: 100000, mem_gb: 0, disk_gb: 0}}
        """),
        "warn.yaml",
    )
    assert run("scan", "-i", ok, "--rule", "kernel-version", "--no-history", env=home).returncode == 0
    assert run("scan", "-i", bad, "--rule", "kernel-version", "--no-history", env=home).returncode == 1
    r = run("scan", "-i", warn, "--rule", "host-resources", "--json", "-", "--no-history", env=home)
    assert json.loads(r.stdout)["findings"][0]["status"] == "warn"
    assert r.returncode == 0
    assert (
        run("scan", "-i", warn, "--rule", "host-resources", "--fail-on", "warn", "--no-history", env=home).returncode
        == 1
    )


@pytest.mark.parametrize(
    "body,needle",
    [
        ("hosts:\n  - name: a\n    address: [1, 2\n", "line 3"),  # invalid YAML
        ("hosts:\n  - name: a\n    address: 10.0.0.1\n    roles: [worker]\n", "line 4"),  # bad enum, names the line
        ("hosts:\n  - name: a\n    address: 10.0.0.1\n    roles: [node]\n    sshh: {}\n", "hosts.0.sshh"),
        ("domain: bkce7.bktencent.com\nthresholds:\n  kernel_minn: '3.10'\n", "thresholds.kernel_minn"),
        ("thresholds:\n  resources:\n    node: {min: {cpu: many}}\n", "line 3"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("suppress:\n  - rule: swap\n    reason: x\n    until: someday\n", "suppress.0.until"),
        (
            "hosts:\n  - {name: a, address: x, roles: [node]}\n  - {name: a, address: y, roles: [node]}\n",
            "duplicate host name",
        ),
        # YAML's \0 escape: bash stops parsing a script read with `.` at two NULs (transport.base.READ_AHEAD)
        (
            'domain: a.b\nthresholds:\n  registry_config: "/data/r\\0\\0/config.yml"\n',
            "line 3: thresholds.registry_config",
        ),
        ('hosts:\n  - {name: "a\\0", address: x, roles: [node]}\n', "hosts.0.name: a NUL byte"),
    ],
)
def test_bad_inventory_is_exit_2_with_key_and_line(tmp_path, home, body, needle):
    inv = inventory(tmp_path, body)
    before = Path(inv).read_bytes()
    r = run("scan", "-i", inv, env=home)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert Path(inv).read_bytes() == before


@pytest.mark.parametrize(
    "args,needle",
    [
        (["scan", "--rule", "no-such-rule"], "unknown rule selector"),
        (["scan", "--skip", "nope"], "unknown rule selector"),
        (["scan", "-i", "/nonexistent/inv.yaml"], "no such file"),
        (["scan", "--json", "/nonexistent/dir/r.json"], "does not exist"),
        (["scan", "--lang", "fr"], "Invalid value"),
        (["diff", "nope", "nada"], "no scan"),
    ],
)
def test_bad_usage_is_exit_2(home, args, needle):
    r = run(*args, env=home)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_unreadable_inventory_binary_garbage(tmp_path, home):
    p = tmp_path / "inv.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage\x00\x01")
    r = run("scan", "-i", str(p), env=home)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "inv.yaml" in r.stderr


def test_rule_selection_by_id_group_tag_and_skip(home):
    def ids(*sel):
        r = run("scan", *sel, "--json", "-", "--no-history", env=home)
        assert r.returncode in (0, 1), r.stderr
        return {f["rule"] for f in json.loads(r.stdout)["findings"]}

    assert ids("--rule", "swap") == {"swap"}
    assert ids("--rule", "time") == {"timezone", "time-sync", "fleet-clock-skew"}  # a tag
    assert "swap" not in ids("--rule", "os", "--skip", "swap")  # tag minus an id
    # control role only: the node-only rules do not apply to this host
    assert "localpv-dirs" not in ids()


def test_suppressions_apply_until_they_expire(tmp_path, home, report_validator):
    body = LOCAL + textwrap.dedent("""\
        thresholds: {kernel_min: '999'}
        suppress:
          - {rule: kernel-version, target: "ct*", reason: "vendor kernel, approved by ops", until: "2999-01-01"}
        """)
    r = run(
        "scan", "-i", inventory(tmp_path, body), "--rule", "kernel-version", "--json", "-", "--no-history", env=home
    )
    f = report_validator(json.loads(r.stdout))["findings"][0]
    assert f["status"] == "suppressed" and f["suppression"]["reason"] == "vendor kernel, approved by ops"
    assert f["suppression"]["original_status"] == "fail"
    assert r.returncode == 0
    expired = body.replace("2999-01-01", "2001-01-01")
    r = run(
        "scan",
        "-i",
        inventory(tmp_path, expired, "e.yaml"),
        "--rule",
        "kernel-version",
        "--json",
        "-",
        "--no-history",
        env=home,
    )
    assert json.loads(r.stdout)["findings"][0]["status"] == "fail" and r.returncode == 1


def test_history_and_diff(tmp_path, home):
    db = tmp_path / "h" / "history.db"
    bad = inventory(tmp_path, LOCAL + "thresholds: {kernel_min: '999'}\n", "bad.yaml")
    ok = inventory(tmp_path, LOCAL + "thresholds: {kernel_min: '0.1'}\n", "ok.yaml")
    with machine_swap_unchanged():  # `swap` passes on this machine: not while a test of another run turns swap on
        assert (
            run("scan", "-i", bad, "--rule", "kernel-version", "--rule", "swap", "--db", str(db), env=home).returncode
            == 1
        )
        assert (
            run("scan", "-i", ok, "--rule", "kernel-version", "--rule", "swap", "--db", str(db), env=home).returncode
            == 0
        )
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    h = json.loads(run("history", "--json", "--db", str(db), env=home).stdout)
    assert len(h) == 2 and h[0]["summary"]["fail"] == 0 and h[1]["summary"]["fail"] == 1
    d = json.loads(run("diff", "--json", "--db", str(db), env=home).stdout)
    assert [(x["rule"], x["before"], x["after"]) for x in d["resolved"]] == [("kernel-version", "fail", "pass")]
    assert d["new"] == [] and d["from"] == h[1]["id"] and d["to"] == h[0]["id"]
    # explicit ids, in the other direction: the fix becomes a new failure
    d2 = json.loads(
        run("diff", h[0]["id"], h[1]["id"][:-2], "--json", "--db", str(db), env=home).stdout
    )  # a unique prefix
    assert [x["rule"] for x in d2["new"]] == ["kernel-version"]
    text = run("diff", "--db", str(db), "--lang", "en", env=home).stdout
    assert "Resolved: 1" in text
    # --no-history leaves the database alone
    run("scan", "-i", ok, "--rule", "swap", "--db", str(db), "--no-history", env=home)
    assert len(json.loads(run("history", "--json", "--db", str(db), env=home).stdout)) == 2


def test_default_history_location_is_xdg_and_private(home):
    assert run("scan", "--rule", "swap", env=home).returncode in (0, 1)
    db = Path(home["XDG_DATA_HOME"]) / "bkdoctor" / "history.db"
    assert db.exists() and stat.S_IMODE(db.stat().st_mode) == 0o600


def test_diff_needs_two_scans(tmp_path, home):
    r = run("diff", "--db", str(tmp_path / "empty.db"), env=home)
    assert r.returncode == 2 and "two scans" in r.stderr


def test_lang_from_environment_and_flag(home):
    zh = json.loads(
        run("scan", "--rule", "swap", "--json", "-", "--no-history", env={**home, "LANG": "zh_CN.UTF-8"}).stdout
    )
    assert zh["lang"] == "zh" and zh["findings"][0]["title"] == "已关闭 swap"
    en = json.loads(
        run(
            "scan", "--rule", "swap", "--json", "-", "--no-history", "--lang", "en", env={**home, "LANG": "zh_CN.UTF-8"}
        ).stdout
    )
    assert en["lang"] == "en" and en["findings"][0]["title"] == "Swap is off"


def test_domain_from_custom_yaml(tmp_path, home):
    inst = tmp_path / "blueking"
    (inst / "environments" / "default").mkdir(parents=True)
    (inst / "environments" / "default" / "custom.yaml").write_text("domain:\n  bkDomain: bk.example.internal\n")
    r = run("scan", "--install-dir", str(inst), "--rule", "hosts-file", "--json", "-", "--no-history", env=home)
    rep = json.loads(r.stdout)
    assert rep["scan"]["domain"] == "bk.example.internal"
    assert "docker.bk.example.internal" in json.dumps(rep["findings"][0]["expected"])
    # no domain anywhere: the domain rules skip with the reason, never pass
    r = run(
        "scan", "--install-dir", str(tmp_path / "none"), "--rule", "hosts-file", "--json", "-", "--no-history", env=home
    )
    f = json.loads(r.stdout)["findings"][0]
    assert f["status"] == "skip" and "BK_DOMAIN" in f["message"]
    (inst / "environments" / "default" / "custom.yaml").write_text("domain: [unclosed\n")
    r = run("scan", "--install-dir", str(inst), env=home)
    assert r.returncode == 2 and "custom.yaml" in r.stderr


def test_rules_json_metadata():
    r = run("rules", "--json")
    rules = json.loads(r.stdout)
    must = {
        "os-version",
        "kernel-version",
        "swap",
        "selinux",
        "firewall",
        "timezone",
        "time-sync",
        "host-resources",
        "data-disk",
        "docker-version",
        "docker-daemon-config",
        "insecure-registries",
        "kubelet-version",
        "kernel-params",
        "hosts-file",
        "localpv-dirs",
    }
    assert must <= {x["id"] for x in rules}
    for x in rules:
        assert x["title"]["zh"] and x["title"]["en"] and x["title"]["zh"] != x["title"]["en"]
        assert x["doc"]["zh"] and x["doc"]["en"]
        assert x["guide"]["section"] and x["guide"]["title"]
        # a line and a quote of the cited section, or "not in the guide" (field knowledge)
        assert (x["guide"]["line"] and x["guide"]["quote"]) or x["guide"]["section"] == "not in the guide", x["id"]
        assert x["severity"] in ("critical", "high", "medium", "low", "info")
        assert "remediation" in x
    # the table form works in both languages
    assert "swap" in run("rules", "--lang", "zh").stdout


def test_rule_ids_equal_file_names_and_guide_lines_exist():
    from bkdoctor.scan.loader import all_rules, rules_dir

    guide = ROOT.parent / "shared" / "seed" / "000_ac029a12e5ebe66c.txt"
    lines = guide.read_text(encoding="utf-8").splitlines() if guide.exists() else None
    files = {p.stem for p in rules_dir().glob("*/*.py") if not p.name.startswith("_")}
    files |= {p.stem for p in rules_dir().glob("*/*.yaml")}  # FAQ signatures are data files
    assert files == {r.id for r in all_rules()}
    for r in all_rules():
        if lines is not None and r.guide.line is not None:  # "not in the guide" has no line
            # the line the rule points at is the guide's heading of that section
            assert r.guide.title.split("（")[0].replace(" ", "") in lines[r.guide.line - 1].replace(" ", ""), r.id


def test_secrets_are_masked_in_reports():
    from bkdoctor.report.jsonreport import redact

    out = redact(
        {
            "auths": {"x": {"password": "hunter2"}},
            "token": "abc",
            "insecure-registries": ["a"],
            "list": [{"secret": "s"}],
        }
    )
    assert "hunter2" not in json.dumps(out) and "abc" not in json.dumps(out) and out["insecure-registries"] == ["a"]


def test_collect_then_scan_bundle_via_cli(tmp_path, home, report_validator):
    b = tmp_path / "bundle.tar.gz"
    with machine_swap_unchanged():  # collect and the live scan both read this machine's swap: the same state for both
        r = run("collect", "-o", str(b), "--domain", "bkce7.bktencent.com", "--no-cluster", env=home)
        assert r.returncode == 0, r.stderr
        live = json.loads(
            run(
                "scan", "--json", "-", "--no-history", "--no-cluster", "--domain", "bkce7.bktencent.com", env=home
            ).stdout
        )
    offline = report_validator(
        json.loads(run("scan", "--bundle", str(b), "--json", "-", "--no-history", env=home).stdout)
    )
    view = lambda rep: sorted(
        (f["rule"], f["target"], f["status"]) for f in rep["findings"] if f["rule"] != "fleet-clock-skew"
    )
    assert view(offline) == view(live)
    assert run("scan", "--bundle", str(tmp_path / "nope.tgz"), env=home).returncode == 2


def test_report_to_a_device_or_fifo_writes_in_place(tmp_path, home):
    """--json /dev/null must not replace the device with a file (tested on a fifo and a mknod copy, never the real one)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got = []
    t = threading.Thread(target=lambda: got.append(open(fifo).read()))
    t.start()
    r = run("scan", "--rule", "swap", "--no-history", "--json", str(fifo), env=home)
    t.join(30)
    assert r.returncode in (0, 1) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["schema"] == "bkdoctor/report/v1"
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    r = run("scan", "--rule", "swap", "--no-history", "--json", str(null), "--html", str(null), env=home)
    assert r.returncode in (0, 1) and stat.S_ISCHR(os.stat(null).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


@pytest.mark.parametrize(
    "content,needle", [("clusters: [unclosed\n", "kubeconfig"), ("apiVersion: v1\nkind: Config\n", "kubeconfig")]
)
def test_malformed_kubeconfig_is_exit_2(tmp_path, home, content, needle):
    kc = tmp_path / "kubeconfig"
    kc.write_text(content)
    before = kc.read_bytes()
    r = run("scan", "--kubeconfig", str(kc), "--rule", "coredns", "--no-history", env=home)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and kc.read_bytes() == before
