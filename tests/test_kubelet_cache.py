"""`kubelet --version` is not run again for a binary unchanged since the last scan (issue 16; scan/kubeletcache.py):
the kubelet_version section under dash, `bash --posix` and bash (its identity line; not run for the identity the
engine gives; run again for a binary rewritten, touched or chmod'ed; without stat as before); `bkdoctor scan` twice on a real sshd test host (the second does not run the host's kubelet, and says where its
version came from), a replaced binary runs again, `--no-cache` runs it every time; the cache file refuses links,
and a corrupt or huge one is no cache; the engine's in-process callers pass no cache and run kubelet as before."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hostcases import make_ssh_host
from test_fleet_scan import bkdoctor  # the CLI as the fleet tests run it (this environment, LANG=C.UTF-8)
from test_probe_sections import SHELL_IDS, SHELLS, run, stand_in, tools  # the sections under dash and bash

from bkdoctor.facts import host
from bkdoctor.facts.host import HostFacts
from bkdoctor.facts.probe import Section
from bkdoctor.inputs.inventory import HostSpec
from bkdoctor.model import FactUnavailable
from bkdoctor.scan import kubeletcache
from bkdoctor.scan.kubeletcache import KubeletCache

ROOT = Path(__file__).resolve().parent.parent
RUNS = "/usr/local/bin/kubelet.runs"  # the stand-in counts its runs here, inside the host
# 1 MiB and more, as a compiled kubelet (a smaller file, a wrapper script, is not remembered: kubeletcache.MIN_SIZE)
KUBELET = "#!/bin/sh\necho run >>" + RUNS + "\necho 'Kubernetes {v}'\nexit 0\n" + "#" * (1 << 20) + "\n"
IDENT = "/usr/bin/kubelet 64768 1234 123456789 2026-12-02 05:00:00.123456789 +0000 2026-12-02 05:00:00.223456789 +0000"


def section(body: str, ident: str | None = IDENT, rc: int = 0) -> Section:
    head = f"{host.KUBELET_ID}{ident}\n" if ident is not None else ""
    return Section("kubelet_version", rc, (head + body).encode())


def kubelet_fact(sec: Section):
    try:
        return HostFacts({"kubelet_version": sec}).get("kubelet")
    except FactUnavailable as e:
        return ("unavailable", e.reason.en)


KEY = KubeletCache.key(HostSpec(name="node-1", address="10.0.0.1", roles=("node",)), None)
NOT_RUN = host.KUBELET_NOT_RUN + "\n"


# -- the cache itself ----------------------------------------------------------------------------------------------
def test_a_run_is_kept_and_given_back_for_the_same_identity_only(tmp_path):
    c = KubeletCache(tmp_path / "c")
    assert c.seen(KEY) == ""
    c.settle(KEY, section("Kubernetes v1.20.11\n"), "")
    c.save()
    f = tmp_path / "c" / "kubelet.json"
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    again = KubeletCache(tmp_path / "c")
    assert again.seen(KEY) == IDENT
    filled = again.settle(KEY, section(NOT_RUN), IDENT)
    assert kubelet_fact(filled) == {"installed": True, "version": "1.20.11", "cached_at": c.at}
    # another host (port, user, name or address) has its own entry
    other = KubeletCache.key(HostSpec(name="node-1", address="10.0.0.1", roles=("node",), ssh={"port": 2222}), None)
    assert other != KEY and again.seen(other) == ""
    # a "not run" line for an identity the cache does not hold is left as it is: an error, never a pass
    stale = again.settle(KEY, section(NOT_RUN, ident=IDENT + "9"), IDENT)
    assert kubelet_fact(stale)[0] == "unavailable" and "no saved output" in kubelet_fact(stale)[1]
    fresh = KubeletCache(tmp_path / "empty")
    assert kubelet_fact(fresh.settle(KEY, section(NOT_RUN), IDENT))[0] == "unavailable"


def test_a_failed_run_or_no_identity_drops_the_entry(tmp_path):
    c = KubeletCache(tmp_path)
    c.settle(KEY, section("Kubernetes v1.20.11\n"), "")
    c.save()
    for sec in (section("boom\n", rc=1), section("Kubernetes v1.20.11\n", ident=None), section("no version\n")):
        c = KubeletCache(tmp_path)
        assert c.seen(KEY) == IDENT
        assert c.settle(KEY, sec, IDENT) is sec
        c.save()
        assert KubeletCache(tmp_path).seen(KEY) == ""
        c = KubeletCache(tmp_path)
        c.settle(KEY, section("Kubernetes v1.20.11\n"), "")
        c.save()


def test_symbolic_links_are_not_followed(tmp_path):
    """A link in place of the cache directory or of its file: nothing is read through it nor written through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kubelet.json").write_text(json.dumps({"v": 1, "hosts": {KEY: [IDENT, "Kubernetes v1.20.11\n", "t"]}}))
    os.symlink(elsewhere, tmp_path / "linked")
    c = KubeletCache(tmp_path / "linked")
    assert c.seen(KEY) == ""
    c.settle(KEY, section("Kubernetes v1.21.0\n", ident=IDENT + "1"), "")
    c.save()
    assert json.loads((elsewhere / "kubelet.json").read_text())["hosts"][KEY][0] == IDENT
    assert sorted(os.listdir(elsewhere)) == ["kubelet.json"]
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_text("keep")
    os.symlink(target, d / "kubelet.json")
    c = KubeletCache(d)
    assert c.seen(KEY) == ""
    c.settle(KEY, section("Kubernetes v1.20.11\n"), "")
    c.save()  # the link itself is replaced (rename over it), the file it pointed at is untouched
    assert target.read_text() == "keep" and not (d / "kubelet.json").is_symlink()
    assert KubeletCache(d).seen(KEY) == IDENT


def loaded(directory: Path) -> tuple[KubeletCache, int]:
    """The cache read from `directory`, and the peak of the memory Python allocated meanwhile."""
    tracemalloc.start()
    try:
        c = KubeletCache(directory)
        return c, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[" * 500_000, b'{"v": 1, "hosts": []}', b'{"v": 2, "hosts": {}}', b"", b"\xff\xfe"],
    ids=["corrupt", "deep", "wrong-shape", "other-format", "empty", "binary"],
)
def test_a_corrupt_cache_is_no_cache_and_is_replaced(tmp_path, content):
    (tmp_path / "kubelet.json").write_bytes(content)
    c, peak = loaded(tmp_path)
    assert c.seen(KEY) == "" and peak < 16 << 20, peak
    c.save()  # replaced by a good one even with nothing new
    assert json.loads((tmp_path / "kubelet.json").read_text()) == {"v": 1, "hosts": {}}


def test_a_huge_cache_file_is_not_read(tmp_path):
    f = tmp_path / "kubelet.json"
    with open(f, "wb") as fh:
        fh.truncate(100 << 20)  # 100 MB (sparse)
    c, peak = loaded(tmp_path)
    assert c.seen(KEY) == "" and peak < 1 << 20, peak
    os.unlink(f)
    os.mkfifo(f)  # a fifo: not a regular file, and opening it does not wait for a writer
    assert KubeletCache(tmp_path).seen(KEY) == ""


def test_entries_are_bounded_newest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeletcache, "MAX_ENTRIES", 3)
    for i in range(5):
        c = KubeletCache(tmp_path)
        c.at = f"2026-12-02T05:00:0{i}Z"
        c.settle(f"k{i}", section("Kubernetes v1.20.11\n"), "")
        c.save()
    kept = json.loads((tmp_path / "kubelet.json").read_text())["hosts"]
    assert sorted(kept) == ["k2", "k3", "k4"]
    # what is written fits what is read: the newest first, while they fit
    monkeypatch.setattr(kubeletcache, "MAX_ENTRIES", 10)
    monkeypatch.setattr(kubeletcache, "MAX_BYTES", 700)
    c = KubeletCache(tmp_path)
    c.at = "2026-12-02T06:00:00Z"
    for k in ("k5", "k6"):
        c.settle(k, section("Kubernetes v1.20.11\n"), "")
    c.save()
    assert (tmp_path / "kubelet.json").stat().st_size <= 700
    kept = json.loads((tmp_path / "kubelet.json").read_text())["hosts"]
    assert {"k5", "k6"} <= set(kept) and len(kept) < 5, sorted(kept)
    assert KubeletCache(tmp_path).seen("k5") == IDENT


def test_two_scans_keep_each_others_entries(tmp_path):
    a, b = KubeletCache(tmp_path), KubeletCache(tmp_path)
    a.settle("a", section("Kubernetes v1.20.11\n"), "")
    b.settle("b", section("Kubernetes v1.20.11\n"), "")
    a.save()
    b.save()
    c = KubeletCache(tmp_path)
    assert c.seen("a") == c.seen("b") == IDENT


def test_the_kubelet_version_rule_says_where_the_version_came_from():
    from bkdoctor.scan.engine import Context
    from bkdoctor.scan.loader import all_rules

    rule = next(r for r in all_rules() if r.id == "kubelet-version")
    ctx = Context("n", ("node",), None, {"kubelet_min": "1.20", "kubelet_max_tested": "1.23"}, None)
    body = f"{host.KUBELET_CACHED}2026-12-02T05:00:00Z\nKubernetes v1.20.11\n"
    res = rule.check(HostFacts({"kubelet_version": section(body)}), ctx)
    assert (res.status, res.observed) == ("pass", "1.20.11")
    assert res.message.en == "kubelet 1.20.11 (binary unchanged since the scan at 2026-12-02T05:00:00Z)"
    assert res.message.zh == "kubelet 1.20.11（二进制文件自 2026-12-02T05:00:00Z 的扫描以来未变）"
    fresh = rule.check(HostFacts({"kubelet_version": section("Kubernetes v1.20.11\n")}), ctx)
    assert (fresh.status, fresh.message.en) == ("pass", "kubelet 1.20.11")


# -- kubelet_version: the binary's identity first, `--version` not run when it is the one the engine gives ---------
def _kubelet(shell, bindir: Path, seen: str = "", ident: str = "1") -> tuple[str | None, str, int]:
    """(identity, the rest of the section, its status) of the kubelet_version section with BKD_KUBELET_SEEN=seen
    (and BKD_KUBELET_ID=ident: the engine keeps a cache), in its bounded group as in every probe."""
    params = {"BKD_KUBELET_SEEN": seen, "BKD_KUBELET_ID": ident}
    out = run(shell, {"kubelet_version": host.SECTIONS["kubelet_version"]}, bindir, {}, params)
    sec = out["kubelet_version"]
    ident, body = host.kubelet_output(sec.out)
    return ident, body.decode(), sec.rc


def _counting_kubelet(bindir: Path, counter: Path, version: str = "v1.20.11") -> None:
    stand_in(bindir, "kubelet", f"echo run >>'{counter}'\necho 'Kubernetes {version}'\n")


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_kubelet_version_not_run_for_the_binary_the_engine_has_seen(tmp_path, shell):
    """No BKD_KUBELET_SEEN: kubelet runs, after its identity (path, device, inode, size, mtime, ctime from one
    `stat -L`); SEEN = that identity: it does not run and a line says so; the binary rewritten (new content, same
    size), touched or chmod'ed: a new identity, it runs again."""
    bindir, counter = tools(tmp_path, "stat", "env"), tmp_path / "runs"
    _counting_kubelet(bindir, counter)
    ident, body, rc = _kubelet(shell, bindir)
    assert (body, rc, _runs(counter)) == ("Kubernetes v1.20.11\n", 0, 1)
    assert ident is not None and ident.startswith(f"{bindir}/kubelet "), ident
    st = os.stat(bindir / "kubelet")
    assert ident.split()[1:4] == [str(st.st_dev), str(st.st_ino), str(st.st_size)], ident
    assert HostFacts(
        {"kubelet_version": host.Section("kubelet_version", rc, f"{host.KUBELET_ID}{ident}\n{body}".encode())}
    ).get("kubelet") == {"installed": True, "version": "1.20.11"}
    again, body, rc = _kubelet(shell, bindir, ident)
    assert (again, body, rc, _runs(counter)) == (ident, host.KUBELET_NOT_RUN + "\n", 0, 1)
    # another identity given (another binary was seen): it runs
    assert _kubelet(shell, bindir, ident + "x")[1:] == ("Kubernetes v1.20.11\n", 0) and _runs(counter) == 2
    # new content of the same size, written in place (same inode): mtime and ctime move
    (bindir / "kubelet").write_text((bindir / "kubelet").read_text().replace("v1.20.11", "v1.20.12"))
    new, body, _ = _kubelet(shell, bindir, ident)
    assert new != ident and body == "Kubernetes v1.20.12\n" and _runs(counter) == 3
    # touched to the mtime it has: only the ctime moves
    st = os.stat(bindir / "kubelet")
    os.utime(bindir / "kubelet", ns=(st.st_atime_ns, st.st_mtime_ns))
    newer, body, _ = _kubelet(shell, bindir, new)
    assert newer not in (new, ident) and body == "Kubernetes v1.20.12\n" and _runs(counter) == 4
    (bindir / "kubelet").chmod(0o700)
    assert _kubelet(shell, bindir, newer)[0] != newer and _runs(counter) == 5


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_kubelet_version_without_stat_runs_without_identity(tmp_path, shell):
    """No `stat` on PATH (or stat failing): no identity, kubelet runs whatever SEEN says; the output is what it was
    before the identity existed."""
    bindir, counter = tools(tmp_path, "env"), tmp_path / "runs"
    _counting_kubelet(bindir, counter)
    assert _kubelet(shell, bindir, "anything") == (None, "Kubernetes v1.20.11\n", 0) and _runs(counter) == 1
    stand_in(bindir, "stat", "exit 1\n")
    assert _kubelet(shell, bindir, "") == (None, "Kubernetes v1.20.11\n", 0) and _runs(counter) == 2


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_kubelet_version_finds_what_command_v_found(tmp_path, shell):
    """The first executable regular file named kubelet in PATH (a directory of that name before it is passed over,
    as `command -v` passes it); none: 127 as before, not installed."""
    bindir = tools(tmp_path, "stat", "env")
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "kubelet").mkdir(parents=True)
    second.mkdir()
    stand_in(second, "kubelet", "echo 'Kubernetes v1.21.2'\n")
    saved = dict(host.SECTIONS)
    try:
        host.SECTIONS["kubelet_version"] = f"PATH='{first}:{second}:{bindir}'; " + saved["kubelet_version"]
        ident, body, rc = _kubelet(shell, bindir)
    finally:
        host.SECTIONS.clear()
        host.SECTIONS.update(saved)
    assert ident.startswith(f"{second}/kubelet ") and (body, rc) == ("Kubernetes v1.21.2\n", 0), (ident, body)
    (tmp_path / "none").mkdir()
    empty = tools(tmp_path / "none", "stat", "env")
    assert _kubelet(shell, empty) == (None, "", 127)
    assert (
        HostFacts({"kubelet_version": host.Section("kubelet_version", 127, b"")}).get("kubelet")["installed"] is False
    )


# -- a real host over SSH, through the CLI -------------------------------------------------------------------------
@pytest.mark.ssh
def test_cli_scan_runs_an_unchanged_kubelet_once(ssh_fleet, tmp_path, report_validator, monkeypatch):
    files = {"/usr/local/bin/kubelet": {"content": KUBELET.format(v="v1.20.11"), "mode": 0o755}}
    fleet, h = make_ssh_host(ssh_fleet, {"hostname": "node-k", "files": files})
    fleet.write_known_hosts()
    inv = tmp_path / "hosts.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "domain": "bkce7.bktencent.com",
                "ssh": fleet.ssh_settings(connect_timeout=5),
                "hosts": [{"name": "node-k", "address": h.address, "roles": ["node"]}],
            }
        )
    )
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))  # the CLI's environment

    def scan(*extra):
        out = tmp_path / "r.json"
        r = bkdoctor(
            "scan",
            "-i",
            str(inv),
            "--rule",
            "kubelet-version",
            "--no-cluster",
            "--no-history",
            "--json",
            str(out),
            *extra,
        )
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        rep = report_validator(json.loads(out.read_text()))
        (f,) = [f for f in rep["findings"] if f["rule"] == "kubelet-version"]
        return f

    def runs():
        try:
            return h.read(RUNS).count(b"run\n")
        except FileNotFoundError:
            return 0

    first = scan()
    assert (first["status"], first["observed"], runs()) == ("pass", "1.20.11", 1)
    assert "unchanged" not in first["i18n"]["en"]["message"]
    assert stat.S_IMODE(os.stat(cache / "bkdoctor" / "kubelet.json").st_mode) == 0o600
    second = scan()
    assert (second["status"], second["observed"], runs()) == ("pass", "1.20.11", 1)
    assert "(binary unchanged since the scan at " in second["i18n"]["en"]["message"], second
    assert "以来未变" in second["i18n"]["zh"]["message"], second
    # replaced by another version: the next scan runs it and reports it
    h.write("/usr/local/bin/kubelet", KUBELET.format(v="v1.24.3"), mode=0o755)
    third = scan()
    assert (third["status"], third["observed"], runs()) == ("warn", "1.24.3", 2)
    assert "unchanged" not in third["i18n"]["en"]["message"]
    assert scan()["observed"] == "1.24.3" and runs() == 2
    # --no-cache: every time
    for n in (3, 4):
        f = scan("--no-cache")
        assert (f["observed"], runs()) == ("1.24.3", n) and "unchanged" not in f["i18n"]["en"]["message"]
    # a corrupt cache: kubelet runs, the finding is right, and a good cache replaces it
    (cache / "bkdoctor" / "kubelet.json").write_text("{garbage")
    assert scan()["observed"] == "1.24.3" and runs() == 5
    assert scan()["observed"] == "1.24.3" and runs() == 5


# -- the review's cases (round 19): what the identity cannot follow is not remembered --------------------------------
@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_no_identity_without_a_cache_for_a_link_or_a_newline(tmp_path, shell):
    """BKD_KUBELET_ID empty (--no-cache, collect, the DaemonSet, in-process callers): no `stat` runs and the section
    is kubelet's output alone, as before the cache. A kubelet that is a symbolic link (a snap's /snap/bin/kubelet ->
    /usr/bin/snap: what it runs changes while the target does not) or whose path has a newline: no identity."""
    bindir, counter = tools(tmp_path, "env"), tmp_path / "runs"
    stats = tmp_path / "stats"
    stand_in(bindir, "stat", f"echo x >>'{stats}'\nexec {shutil.which('stat')} \"$@\"\n")
    _counting_kubelet(bindir, counter)
    assert _kubelet(shell, bindir, "", ident="") == (None, "Kubernetes v1.20.11\n", 0)
    assert _runs(counter) == 1 and not stats.exists()
    real = tmp_path / "real"
    real.mkdir()
    (bindir / "kubelet").rename(real / "kubelet")
    (bindir / "kubelet").symlink_to(real / "kubelet")
    assert _kubelet(shell, bindir) == (None, "Kubernetes v1.20.11\n", 0) and _runs(counter) == 2
    nl = tmp_path / "a\nb"
    nl.mkdir()
    _counting_kubelet(nl, counter)
    (bindir / "kubelet").unlink()
    out = run(shell, {"kubelet_version": host.SECTIONS["kubelet_version"]}, nl, {}, {"BKD_KUBELET_ID": "1"})
    assert host.kubelet_output(out["kubelet_version"].out)[0] is None and _runs(counter) == 3


def test_only_a_big_binarys_version_line_is_kept_masked_and_for_a_day(tmp_path):
    """A small file (a wrapper script: the version of what it execs) is not remembered; of a big one only the line
    with the version, masked; an entry older than a day is not used (kubelet runs and it is renewed)."""
    small = IDENT.replace(" 123456789 ", " 4096 ")
    c = KubeletCache(tmp_path)
    c.settle(KEY, section("Kubernetes v1.20.11\n", ident=small), "")
    assert c.seen(KEY) == "" and not c.changed
    chatty = "+ exec /opt/k8s/kubelet --token=abcdef123456 --version\nKubernetes v1.20.11\n"
    c.settle(KEY, section(chatty), "")
    c.save()
    text = (tmp_path / "kubelet.json").read_text()
    assert "abcdef123456" not in text and "Kubernetes v1.20.11" in text, text
    later = KubeletCache(tmp_path, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=23))
    assert later.seen(KEY) == IDENT
    late = KubeletCache(tmp_path, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=25))
    assert late.seen(KEY) == ""


def test_a_cache_file_another_user_could_write_is_no_cache(tmp_path):
    c = KubeletCache(tmp_path)
    c.settle(KEY, section("Kubernetes v1.20.11\n"), "")
    c.save()
    f = tmp_path / "kubelet.json"
    assert KubeletCache(tmp_path).seen(KEY) == IDENT
    f.chmod(0o666)
    assert KubeletCache(tmp_path).seen(KEY) == ""
    f.chmod(0o600)
    os.chown(f, 65534, -1)  # nobody's (the tests run as root)
    assert KubeletCache(tmp_path).seen(KEY) == ""
