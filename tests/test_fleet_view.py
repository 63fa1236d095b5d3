"""Reading a fleet (issue 15): a REAL 100-host scan over SSH (no synthesized findings) — 90 sshd test hosts in
their own namespaces, 10 of them with sshd stopped, 40 sharing the same three failures (swap on, SELinux
enforcing, timezone UTC) — and what the operator reads of it:

- the terminal summary fits on one screen (<= 60 lines at 160 columns) and still names every failing and every
  unreachable host; `--group-by host` lists each host with its own problems; `--group-by none` is the flat table;
- `fix --dry-run` over the 40 hosts shows each identical plan once, with the host list;
- the HTML report (by-rule view by default above 10 hosts, unreachable hosts folded into their row, "no cluster
  configured" a grey skip) renders in headless Chromium within a time bound, and its screenshot shows the view;
- JSON and JUnit keep one finding per rule x target.

Rules: the default selection without the `docker` tag and `time-sync` (the test hosts run no dockerd and no chronyd:
100 of each would not fit this 2-core machine), and without the rules that need a deployed site around the hosts
(registry-ingress: an ingress answering docker.<domain>; hosts-file: the cluster's ingress; control-machine: kubectl
and a kubeconfig); the cluster rules run against "no cluster configured".
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

SKIPS = (
    "--skip",
    "docker",
    "--skip",
    "time-sync",
    "--skip",
    "registry-ingress",
    "--skip",
    "hosts-file",
    "--skip",
    "control-machine",
)

from hostcases import FIXTURES, Case, host_state

pytestmark = [pytest.mark.ssh]
ROOT = Path(__file__).resolve().parent.parent
KUBELET = {"/usr/local/bin/kubelet": {"content": "#!/bin/sh\necho 'Kubernetes v1.20.11'\n", "mode": 0o755}}
SWAPS = "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition\t4194300\t0\t-2\n"
FSTAB_SWAP = "/dev/mapper/centos-swap swap swap defaults 0 0\n"


def bkdoctor(*args, columns=160, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("BKDOCTOR_DEBUG", "KUBECONFIG")}
    env.update({"LANG": "C.UTF-8", "COLUMNS": str(columns)})
    return subprocess.run(
        [sys.executable, "-m", "bkdoctor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_batch(ssh_fleet, n, spec):
    """n real sshd hosts in the state `spec` (fixture-case keys over the CentOS 7.9 base)."""
    st = host_state(Case(rule="fleet", name="h", status="pass", path=FIXTURES / "hosts" / "centos79.yaml", spec=spec))
    fleet = ssh_fleet(
        n,
        shared_host_key=True,
        parallel=4,
        files=st["files"],
        symlinks=st["symlinks"],
        remove=st["remove"],
        overlays=["/etc", "/usr/local/bin"],
        selinux_enforce=st.get("selinux_enforce"),
    )
    new = fleet.hosts[-n:]
    script = (
        "set -e\n" + "".join(f"mount -o remount,size={s} {d}\n" for d, s in st["tmpfs_sizes"].items()) + st["setup"]
    )
    with ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(lambda h: h.run(script), new))
    return fleet, new


def expand(tokens: str) -> set[str]:
    """Host names from a printed host list (`node[1-3,7], node9`), parsed independently of bkdoctor."""
    out = set()
    for tok in re.findall(r"[A-Za-z0-9._-]+\[[0-9,\-]+\]|[A-Za-z0-9._-]+", tokens):
        m = re.fullmatch(r"(.*)\[([0-9,\-]+)\]", tok)
        if not m:
            out.add(tok)
            continue
        for part in m.group(2).split(","):
            a, _, b = part.partition("-")
            out.update(f"{m.group(1)}{k:0{len(a)}d}" for k in range(int(a), int(b or a) + 1))
    return out


@pytest.fixture
def hundred(ssh_fleet, tmp_path):
    t0 = time.monotonic()
    bad_spec = {
        "files": {**KUBELET, "/proc/swaps": SWAPS, "/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"},
        "selinux_enforce": "1",
        "symlinks": {"/etc/localtime": "../usr/share/zoneinfo/UTC"},
    }
    fleet, good = start_batch(ssh_fleet, 50, {"files": dict(KUBELET)})
    _, bad = start_batch(ssh_fleet, 40, bad_spec)
    _, down = start_batch(ssh_fleet, 10, {"files": dict(KUBELET)})
    for h in down:
        h.stop_sshd()
    fleet.write_known_hosts()
    # interleaved, and named by position: the failing hosts are not one contiguous range of names
    order = []
    for i in range(50):
        order += [("good", good[i])] + ([("bad", bad[i])] if i < 40 else []) + ([("down", down[i])] if i < 10 else [])
    names = {id(h): f"node-{k + 1:03d}" for k, (_kind, h) in enumerate(order)}
    roles = lambda i: ["control", "master"] if i == 0 else (["master"] if i < 3 else ["node"])  # noqa: E731
    inv = {
        "domain": "bkce7.bktencent.com",
        "ssh": fleet.ssh_settings(connect_timeout=5),
        "hosts": [{"name": names[id(h)], "address": h.address, "roles": roles(i)} for i, (_k, h) in enumerate(order)],
    }
    path = tmp_path / "hosts.yaml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    good = [names[id(h)] for h in good]
    bad = [names[id(h)] for h in bad]
    down = {names[id(h)]: h.address for h in down}
    return {"inv": path, "good": good, "bad": bad, "down": down, "start_s": time.monotonic() - t0}


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_hundred_hosts_one_screen_html_and_fix_plans(hundred, tmp_path, report_validator):
    inv = str(hundred["inv"])
    out = {k: tmp_path / f"r.{k}" for k in ("json", "html", "xml")}
    t0 = time.monotonic()
    r = bkdoctor(
        "scan",
        "-i",
        inv,
        *SKIPS,
        "--no-history",
        "--json",
        str(out["json"]),
        "--html",
        str(out["html"]),
        "--junit",
        str(out["xml"]),
    )
    scan_s = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    report = report_validator(json.loads(out["json"].read_text()))
    hosts = [t for t in report["targets"] if t["kind"] == "host"]
    assert len(hosts) == 100 and sum(not t["reachable"] for t in hosts) == 10

    # what the scan found, from the JSON (one finding per rule x target)
    failing: dict[str, set[str]] = {}
    for f in report["findings"]:
        if f["status"] in ("fail", "warn") and f["target"] not in hundred["down"]:
            failing.setdefault(f["target"], set()).add(f["rule"])
    assert set(failing) == set(hundred["bad"]), sorted(
        (h, sorted(failing.get(h, ()))) for h in set(failing) ^ set(hundred["bad"])
    )[:5]
    assert all(v == {"swap", "selinux", "timezone"} for v in failing.values()), failing
    keys = [(f["rule"], f["target"]) for f in report["findings"]]
    assert len(keys) == len(set(keys))
    cases = ET.parse(out["xml"]).getroot().iter("testcase")
    assert sum(1 for _ in cases) == len(report["findings"])

    # --- the terminal: one screen, every failing and every unreachable host named
    lines = r.stdout.splitlines()
    print(r.stdout)
    assert len(lines) <= 60, len(lines)
    assert max(len(l) for l in lines) <= 160
    for name, addr in hundred["down"].items():
        line = next(l for l in lines if l.startswith(f"✗ {name} "))
        assert addr in line and "unreachable (connection refused)" in line and "checks not run" in line
    assert sum(1 for l in lines if l.startswith("✗ ")) == 10  # one line per down host, never one per rule
    assert not any("nreachable: connection refused" in l for l in lines)  # no per-rule row for a down host
    assert any(l.startswith("– cluster: no cluster configured") for l in lines)
    text = "\n".join(lines)
    for rule in ("swap", "selinux", "timezone"):
        i = next(k for k, l in enumerate(lines) if re.match(rf"FAIL +{rule} \(", l))
        block = lines[i]
        for l in lines[i + 1 :]:
            if not l.startswith(" "):
                break
            block += " " + l.strip()
        assert "on 40/90 hosts" in block, block
        named = expand(block.split("hosts:", 1)[1].split(" — ", 1)[0])
        assert named == set(hundred["bad"]), sorted(named ^ set(hundred["bad"]))
        assert f"Fix: bkdoctor fix --rule {rule}" in block
    assert text.count("FAIL ") == 3

    # --group-by host: the folded lists expanded, every failing host with its own problems
    r2 = bkdoctor("scan", "-i", inv, *SKIPS, "--no-history", "--group-by", "host")
    assert r2.returncode == 1, r2.stderr
    for name in hundred["bad"]:
        i = next(k for k, l in enumerate(r2.stdout.splitlines()) if l.startswith(f"{name} "))
        block = r2.stdout.splitlines()[i : i + 4]
        assert "3 fail" in block[0] and all(any(rule in l for l in block) for rule in ("swap", "selinux", "timezone"))
    assert any(l.startswith("✓ 50 hosts with no problem") for l in r2.stdout.splitlines())

    # --group-by none: today's flat table, one row per rule x target
    from rich.console import Console

    from bkdoctor.report.terminal import print_report

    con = Console(file=io.StringIO(), width=160, highlight=False)
    print_report(report, con, group_by="none")
    flat = con.file.getvalue()
    down1 = next(iter(hundred["down"]))
    assert flat.count(f" {down1} ") >= 14 and len(flat.splitlines()) > 200  # a row per rule for a down host

    # --- fix over the 40 hosts: each identical plan once, with the host list
    r3 = bkdoctor(
        "fix",
        "--rule",
        "swap",
        "--rule",
        "timezone",
        "-i",
        inv,
        "--dry-run",
        "--allow-disruptive",
        "--no-history" if False else "--db",
        str(tmp_path / "h.db"),
    )
    # the 10 down hosts: one REFUSED line a rule (nothing planned or written there), so not exit 0
    assert r3.returncode == 2, r3.stdout + r3.stderr
    refused = [l for l in r3.stdout.splitlines() if l.startswith("REFUSED")]
    assert len(refused) == 2 and all("@ 10 hosts (" in l and "unreachable" in l for l in refused), refused
    out3 = r3.stdout.splitlines()
    heads = []
    for k, l in enumerate(out3):
        if l.startswith("--- ") and not l.startswith("--- a/"):
            for cont in out3[k + 1 :]:  # a long host list wraps at the terminal width
                if not cont.startswith("node-"):
                    break
                l += " " + cont
            heads.append(l)
    assert len(heads) == 2, r3.stdout
    for rule in ("swap", "timezone"):
        head = next(h for h in heads if h.startswith(f"--- {rule}: the same change on 40 hosts: "))
        assert expand(head.split("hosts: ", 1)[1]) == set(hundred["bad"])
    planned = [l for l in r3.stdout.splitlines() if l.startswith("PLANNED")]
    assert len(planned) == 2 and all("@ 40 hosts (" in l for l in planned), planned

    # --- HTML at 100 hosts in headless Chromium
    html = out["html"].read_text()
    assert "<link" not in html and 'src="http' not in html  # one self-contained file
    if os.environ.get("BKDOCTOR_KEEP"):  # keep the reports for a look (and the screenshot, below)
        import shutil

        for k, p in out.items():
            shutil.copy(p, Path(os.environ["BKDOCTOR_KEEP"]) / f"fleet100.{k}")
    check_html_in_browser(out["html"], report, hundred, tmp_path)
    print(f"start {hundred['start_s']:.1f}s, scan {scan_s:.1f}s")


def check_html_in_browser(page: Path, report, hundred, tmp_path):
    import base64

    from test_report_render import CHROMIUM, Browser, open_report

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    pytest.importorskip("websocket")
    with Browser(1366, 900) as cdp:
        t0 = time.monotonic()
        open_report(cdp, page)
        load_s = time.monotonic() - t0
        assert load_s < 8, load_s  # 3.7 s measured at load 7.5 on the 2-core test machine (5.0 MB page)
        # by-rule view is the default above 10 hosts; the matrix is one click away
        assert cdp.eval("document.documentElement.dataset.view") == "rules"
        assert cdp.eval("getComputedStyle(document.getElementById('byrule')).display") != "none"
        assert cdp.eval("getComputedStyle(document.getElementById('matrix')).display") == "none"
        rows = cdp.eval("[...document.querySelectorAll('#byrule tr.rrow')].map(e => [e.dataset.rule, e.dataset.worst])")
        assert rows[:3] and {r for r, w in rows[:3]} == {"swap", "selinux", "timezone"}, rows[:5]
        assert all(w == "fail" for _r, w in rows[:3])
        swap_fail = cdp.eval(
            "[...document.querySelectorAll('#byrule tr.rrow[data-rule=swap] .hl-fail a')].map(a => a.textContent)"
        )
        assert sorted(swap_fail) == sorted(hundred["bad"])
        # the unreachable hosts: one row each in the view, and one finding entry each (not one per rule)
        down_rows = cdp.eval("[...document.querySelectorAll('#byrule .unreach-row')].map(e => e.textContent)")
        assert len(down_rows) == 1 and "connection refused" in down_rows[0]  # one row per distinct error
        assert sorted(
            cdp.eval("[...document.querySelectorAll('#byrule .unreach-row a')].map(e => e.dataset.target)")
        ) == sorted(hundred["down"])
        n_down_entries = cdp.eval("document.querySelectorAll('.finding.unreach-group').length")
        assert n_down_entries == 10
        per_rule_down = cdp.eval(
            "[...document.querySelectorAll('.finding:not(.unreach-group)')]"
            ".filter(e => e.dataset.status === 'error').length"
        )
        assert per_rule_down == 0
        # no cluster configured: a grey skip, not a red unreachable target
        assert cdp.eval("document.querySelector('tr.mrow[data-target=cluster]').classList.contains('skipped')") is True
        assert cdp.eval("document.querySelector('tr.mrow[data-target=cluster]').classList.contains('unreach')") is False
        # clicking a host opens its finding
        cdp.click("#byrule tr.rrow[data-rule=swap] .hl-fail a")
        opened = cdp.eval(
            "[...document.querySelectorAll('.finding[open]')].map(e => [e.dataset.rule, e.dataset.target])"
        )
        assert len(opened) == 1 and opened[0][0] == "swap" and opened[0][1] in hundred["bad"]
        # the host filter and the status filter apply to the view too
        one = hundred["bad"][7]
        cdp.click("#filter-host")
        cdp.send("Input.insertText", {"text": one})
        shown = cdp.eval(
            "[...document.querySelectorAll('#byrule tr.rrow[data-rule=swap] a[data-h]')]"
            ".filter(a => a.getClientRects().length).map(a => a.textContent)"
        )
        assert shown == [one], shown
        cdp.click("#filter-reset")
        cdp.click('input[name="status"][value="fail"]')
        assert (
            cdp.eval("document.querySelector('#byrule tr.rrow[data-rule=swap] .hl-fail').getClientRects().length") == 0
        )
        cdp.click("#filter-reset")
        # the matrix view still there
        cdp.click("[data-set-view=matrix]")
        assert cdp.eval("getComputedStyle(document.getElementById('matrix')).display") != "none"
        assert cdp.eval("document.querySelectorAll('table.matrix tr.mrow').length") == 101
        cdp.click("[data-set-view=rules]")
        cdp.eval("window.scrollTo(0, 0)")
        # screenshot: the by-rule view's first row is on the first screen, in the fail colour
        box = cdp.eval(
            "(() => { const r = document.querySelector('#byrule tr.rrow .pill.s-fail')"
            ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
        )
        assert 0 <= box[1] and box[1] + box[3] <= 900, box
        png = base64.b64decode(cdp.send("Page.captureScreenshot", {"format": "png"})["data"])
        (Path(os.environ.get("BKDOCTOR_KEEP") or tmp_path) / "fleet100.png").write_bytes(png)
        w, h, px = decode_png(png)
        assert (w, h) == (1366, 900)
        cx, cy = int(box[0] + box[2] / 2), int(box[1] + box[3] / 2)
        region = [
            px[y][x] for y in range(int(box[1]), int(box[1] + box[3])) for x in range(int(box[0]), int(box[0] + box[2]))
        ]
        # --fail #cf222e on --fail-bg #ffe0e0: the pill's text pixels are red-dominant
        assert any(r > 150 and g < 90 and b < 90 for r, g, b in region), (cx, cy)
        assert len({p for row in px[::50] for p in row[::50]}) > 5  # not a blank page
    requests = [e["params"]["request"]["url"] for e in cdp.events if e["method"] == "Network.requestWillBeSent"]
    assert requests and all(u.startswith("file://") for u in requests), requests  # self-contained: no fetch
    print(f"HTML {page.stat().st_size / 1e6:.1f} MB, loaded in Chromium in {load_s:.2f}s")


def decode_png(data: bytes):
    """8-bit RGB/RGBA PNG -> (w, h, rows of (r, g, b)); enough for Chromium's screenshots (no Pillow here)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _y in range(h):
        ft, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ft == 1:
                line[x] = (line[x] + a) & 255
            elif ft == 2:
                line[x] = (line[x] + b) & 255
            elif ft == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return w, h, rows
