"""Property tests for every text transformation a fix makes: applying twice equals applying once, and the
lines a fix does not own come out byte-identical."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bkdoctor import corefile
from bkdoctor.edits import (BEGIN, END, EditError, add_fstab_lines, comment_swap_lines, corefile_add_reload,
                            corefile_set_hosts, daemon_json_add, hosts_set, set_selinux_disabled)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./=", min_size=1, max_size=12)
ws = st.sampled_from([" ", "\t", "  ", " \t "])
ip = st.builds(lambda a, b: f"10.{a}.{b}.1", st.integers(0, 255), st.integers(0, 255))
name = st.builds(lambda a, b: f"{a}.{b}.com", st.text("abcdefghij", min_size=1, max_size=6),
                 st.text("klmnop", min_size=1, max_size=5))


@st.composite
def fstab_line(draw):
    kind = draw(st.sampled_from(["swap", "mount", "comment", "blank", "garbage"]))
    sep = draw(ws)
    if kind == "swap":
        src = draw(st.sampled_from(["/dev/mapper/centos-swap", "UUID=1c4e2f6a-9d1b", "LABEL=SWAP", "/swapfile"]))
        return sep.join([src, "swap", "swap", "defaults", "0", "0"])
    if kind == "mount":
        return sep.join([draw(st.sampled_from(["/dev/vda1", "UUID=6f3a", "/data/bcs/localpv/vol01"])),
                         "/" + draw(word), draw(st.sampled_from(["xfs", "ext4", "none"])), "defaults", "0", "0"])
    if kind == "comment":
        return "#" + draw(st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s))
    if kind == "blank":
        return draw(st.sampled_from(["", "   "]))
    return draw(word)


fstab = st.lists(fstab_line(), max_size=12).map(lambda ls: "".join(l + "\n" for l in ls))


def _is_swap(line):
    p = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
    return len(p) >= 3 and p[2] == "swap"


@SETTINGS
@given(fstab)
def test_comment_swap_lines(text):
    once = comment_swap_lines(text)
    assert comment_swap_lines(once) == once
    a, b = text.splitlines(), once.splitlines()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert y == ("#" + x if _is_swap(x) else x)
    assert not any(_is_swap(l) for l in b)


@SETTINGS
@given(fstab, st.lists(st.integers(1, 20), max_size=5))
def test_add_fstab_lines(text, vols):
    lines = [f"/data/bcs/localpv/vol{v:02d} /mnt/blueking/vol{v:02d} none defaults,bind 0 0" for v in vols]
    once = add_fstab_lines(text, lines)
    assert add_fstab_lines(once, lines) == once
    assert once.startswith(text if text.endswith("\n") or not text else text)


selinux = st.lists(st.one_of(st.sampled_from(["SELINUX=enforcing", "SELINUX=permissive", "SELINUX = disabled",
                                              "SELINUXTYPE=targeted", "# SELINUX=enforcing", ""]), word),
                   max_size=8).map(lambda ls: "\n".join(ls) + ("\n" if ls else ""))


@SETTINGS
@given(selinux)
def test_set_selinux_disabled(text):
    once = set_selinux_disabled(text)
    assert set_selinux_disabled(once) == once
    import re

    owned = re.compile(r"^\s*SELINUX\s*=")
    active = [l for l in once.splitlines() if owned.match(l)]
    assert len(active) == 1 and active[0].replace(" ", "") == "SELINUX=disabled"
    for line in text.splitlines():  # every line it does not own is kept
        if not owned.match(line):
            assert line in once.splitlines()


json_val = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5), word),
                        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(word, c, max_size=3)), max_leaves=6)


@SETTINGS
@given(st.dictionaries(word.filter(lambda k: k != "insecure-registries"), json_val, max_size=6),
       st.lists(name, max_size=3), st.lists(name, min_size=1, max_size=3), st.sampled_from([None, 2, 4]))
def test_daemon_json_add(other, existing, add, indent):
    data = dict(other)
    data["insecure-registries"] = existing
    text = json.dumps(data, indent=indent) + "\n"
    once = daemon_json_add(text, "insecure-registries", add)
    assert daemon_json_add(once, "insecure-registries", add) == once
    new = json.loads(once)
    assert list(new) == list(data)  # keys and their order
    assert {k: v for k, v in new.items() if k != "insecure-registries"} == other  # every other value
    assert new["insecure-registries"][: len(existing)] == existing and set(add) <= set(new["insecure-registries"])


@pytest.mark.parametrize("bad", ['{"a": 1,}', '{\n  // comment\n  "a": 1\n}', '[1, 2]', '{"insecure-registries": "x"}'])
def test_daemon_json_that_does_not_parse_is_refused(bad):
    with pytest.raises(EditError):
        daemon_json_add(bad, "insecure-registries", ["docker.a.com"])


hosts_line = st.one_of(
    st.builds(lambda i, ns, s: f"{i}{s}{' '.join(ns)}", ip, st.lists(name, min_size=1, max_size=3), ws),
    st.sampled_from(["127.0.0.1 localhost", "::1 localhost6", "# comment", ""]))


@SETTINGS
@given(st.lists(hosts_line, max_size=10), ip, st.lists(name, min_size=1, max_size=4, unique=True))
def test_hosts_set(lines, target, names):
    text = "".join(l + "\n" for l in lines)
    once = hosts_set(text, [(target, names)])
    assert hosts_set(once, [(target, names)]) == once
    out = once.splitlines()
    assert out.count(BEGIN) == 1 and out.count(END) == 1
    # lines without any of our names are byte-identical and in order
    ours = {n.lower() for n in names}
    keep = [l for l in text.splitlines() if not (set(x.lower() for x in l.split("#", 1)[0].split()[1:]) & ours)
            or l.lstrip().startswith("#")]
    it = iter(out)
    assert all(any(l == o for o in it) for l in keep)
    # every name resolves to the target, exactly once, outside comments
    active = [l.split() for l in out if l.strip() and not l.lstrip().startswith("#")]
    for n in names:
        ips = [p[0] for p in active if n.lower() in (x.lower() for x in p[1:])]
        assert ips == [target], (n, ips)


@st.composite
def corefiles(draw):
    blocks = []
    for i in range(draw(st.integers(1, 3))):
        plugins = draw(st.lists(st.sampled_from(["errors", "cache 30", "loop", "reload", "loadbalance", "ready",
                                                   "forward . /etc/resolv.conf", "prometheus :9153"]),
                                max_size=6, unique=True))
        if draw(st.booleans()):
            entries = draw(st.lists(st.tuples(ip, name), max_size=4))
            fall = draw(st.booleans())
            hb = ["    hosts {"] + [f"        {a} {b}" for a, b in entries] + (["        fallthrough"] if fall else []) + ["    }"]
            pos = draw(st.integers(0, len(plugins)))
            body = [f"    {p}" for p in plugins[:pos]] + hb + [f"    {p}" for p in plugins[pos:]]
        else:
            body = [f"    {p}" for p in plugins]
        blocks.append("\n".join([f"{'.' if i == 0 else f'zone{i}.example.com'}:53 {{"] + body + ["}"]))
    return "\n".join(blocks) + "\n"


@SETTINGS
@given(corefiles(), ip, st.lists(name, min_size=1, max_size=4, unique=True))
def test_corefile_set_hosts(text, target, names):
    once = corefile_add_reload(corefile_set_hosts(text, target, names))
    assert corefile_add_reload(corefile_set_hosts(once, target, names)) == once
    blocks = corefile.parse(once)
    assert len(blocks) == len(corefile.parse(text))
    for b in blocks:
        h = b.plugin("hosts")
        assert h is not None and b.plugin("reload") is not None
        entries, fall = corefile.hosts_entries(once, h)
        assert fall
        for n in names:
            assert sorted({e.ip for e in entries if n in e.names}) == [target]
    # foreign entries (names not ours) survive with their address
    for line in text.splitlines():
        p = line.split()
        if len(p) == 2 and p[0][0].isdigit() and p[1] not in names:
            assert any(l.split() == p for l in once.splitlines()), line
