"""Property tests for every text transformation a fix makes: applying twice equals applying once, the lines a
fix does not own come out byte-identical, and no line the operator wrote is ever dropped: each one survives,
byte-identical or commented out with its text intact (`survives`). Only the lines bkdoctor owns may go: those
inside its own marked block, and the one setting a fix rewrites (`SELINUX=`). daemon.json is JSON, rewritten
whole: there every other key and value is kept (test_daemon_json_add)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bkdoctor.facts import corefile
from bkdoctor.fix.edits import (
    BEGIN,
    END,
    EditError,
    add_fstab_lines,
    comment_swap_lines,
    corefile_add_reload,
    corefile_set_hosts,
    daemon_json_add,
    hosts_set,
    set_selinux_disabled,
)


def nl_lines(text: str) -> list[str]:
    """Lines ended by "\n" only, as glibc and CoreDNS read these files (not str.splitlines(): \r, \x85, U+2028…)."""
    parts = text.split("\n")
    return parts[:-1] if parts[-1] == "" else parts


def survives(before: str, after: str, owned=lambda i, line: False) -> None:
    """Every line of `before` that bkdoctor does not own is in `after`, in order: the same bytes, or commented
    out (`#...`, `# bkdoctor: ...`) with its text intact."""
    out = nl_lines(after)
    pos = 0
    for i, line in enumerate(nl_lines(before)):
        if owned(i, line):
            continue

        def same(a: str) -> bool:
            if a == line:
                return True
            return bool(line.strip()) and a.lstrip().startswith("#") and a.endswith(line.lstrip())  # every byte

        while pos < len(out) and not same(out[pos]):
            pos += 1
        assert pos < len(out), f"line {i + 1} {line!r} was dropped:\n{before!r}\n->\n{after!r}"
        pos += 1


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./=", min_size=1, max_size=12)
ws = st.sampled_from([" ", "\t", "  ", " \t "])
ip = st.builds(lambda a, b: f"10.{a}.{b}.1", st.integers(0, 255), st.integers(0, 255))
name = st.builds(
    lambda a, b: f"{a}.{b}.com",
    st.text("abcdefghij", min_size=1, max_size=6),
    st.text("klmnop", min_size=1, max_size=5),
)


@st.composite
def fstab_line(draw):
    kind = draw(st.sampled_from(["swap", "mount", "comment", "blank", "garbage"]))
    sep = draw(ws)
    if kind == "swap":
        src = draw(st.sampled_from(["/dev/mapper/centos-swap", "UUID=1c4e2f6a-9d1b", "LABEL=SWAP", "/swapfile"]))
        return sep.join([src, "swap", "swap", "defaults", "0", "0"])
    if kind == "mount":
        return sep.join(
            [
                draw(st.sampled_from(["/dev/vda1", "UUID=6f3a", "/data/bcs/localpv/vol01"])),
                "/" + draw(word),
                draw(st.sampled_from(["xfs", "ext4", "none"])),
                "defaults",
                "0",
                "0",
            ]
        )
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
    survives(text, once)


@SETTINGS
@given(fstab, st.lists(st.integers(1, 20), max_size=5))
def test_add_fstab_lines(text, vols):
    lines = [f"/data/bcs/localpv/vol{v:02d} /mnt/blueking/vol{v:02d} none defaults,bind 0 0" for v in vols]
    once = add_fstab_lines(text, lines)
    assert add_fstab_lines(once, lines) == once
    assert once.startswith(text if text.endswith("\n") or not text else text)
    survives(text, once)


selinux = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "SELINUX=enforcing",
                "SELINUX=permissive",
                "SELINUX = disabled",
                "SELINUXTYPE=targeted",
                "# SELINUX=enforcing",
                "",
            ]
        ),
        word,
    ),
    max_size=8,
).map(lambda ls: "\n".join(ls) + ("\n" if ls else ""))


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
    survives(text, once)  # the SELINUX= line it sets stays too, commented out


def test_set_selinux_disabled_keeps_the_operators_line_and_its_line_end():
    """The operator's inline comment is kept (the old line, commented out, as the hosts and Corefile edits do) and a
    CRLF file keeps CRLF (before: `SELINUX=disabled\\n`, comment and CR dropped)."""
    text = "SELINUX=enforcing\t# required by audit ticket 123\r\nSELINUXTYPE=targeted\r\n"
    once = set_selinux_disabled(text)
    assert once == (
        "# bkdoctor: SELINUX=enforcing\t# required by audit ticket 123\r\nSELINUX=disabled\r\nSELINUXTYPE=targeted\r\n"
    )
    assert set_selinux_disabled(once) == once
    assert set_selinux_disabled("SELINUX=enforcing") == "# bkdoctor: SELINUX=enforcing\nSELINUX=disabled"


json_val = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), word),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(word, c, max_size=3)),
    max_leaves=6,
)


@SETTINGS
@given(
    st.dictionaries(word.filter(lambda k: k != "insecure-registries"), json_val, max_size=6),
    st.lists(name, max_size=3),
    st.lists(name, min_size=1, max_size=3),
    st.sampled_from([None, 2, 4]),
)
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


@pytest.mark.parametrize(
    "bad",
    [
        '{"a": 1,}',
        '{\n  // comment\n  "a": 1\n}',
        "[1, 2]",
        '{"insecure-registries": "x"}',
        # a duplicate key (one value would be lost), numbers that would be rewritten
        '{"debug": true, "debug": false}',
        '{"x": 1e400}',
        '{"x": NaN}',
        '{"x": -Infinity}',
        '{"x": 1e5}',
        '{"x": 0.10000000000000000001}',
        '{"x": -0}',
    ],
)
def test_daemon_json_that_does_not_parse_is_refused(bad):
    with pytest.raises(EditError):
        daemon_json_add(bad, "insecure-registries", ["docker.a.com"])


def test_daemon_json_with_a_lone_surrogate_is_refused_not_a_crash():
    """`{"a": "\\ud800"}` parses (dockerd takes it too) but cannot be written back as UTF-8: the edit refuses
    (EditError), and the plan says so instead of crashing with UnicodeEncodeError (exit 3)."""
    from types import SimpleNamespace

    from bkdoctor.facts.probe import Section
    from bkdoctor.fix.fixkit import daemon_json_plan

    for text in ('{"a": "\\ud800"}\n', '{\n    "\\udfff": 1\n}\n'):
        with pytest.raises(EditError, match="lone surrogate"):
            daemon_json_add(text, "insecure-registries", ["docker.a.com"])
        facts = SimpleNamespace(
            docker={"info": {"RegistryConfig": {}}}, sec=lambda s, t=text: Section("daemon_json", 0, t.encode())
        )
        with pytest.raises(EditError, match="/etc/docker/daemon.json: .*lone surrogate"):
            daemon_json_plan(facts, "insecure-registries", ["docker.a.com"])
    # a pair is one character, written back as UTF-8
    assert "\U0001f600" in daemon_json_add('{"a": "\\ud83d\\ude00"}', "insecure-registries", ["docker.a.com"])


@pytest.mark.parametrize("have", ["http://10.0.0.9:5500/", "HTTP://10.0.0.9:5500", "http://10.0.0.9:5500//"])
def test_registry_mirrors_plan_compares_as_the_rule_does(have):
    """An entry the rule takes for the proxy (trailing /, another case) is the proxy: no near-duplicate added, no
    reload when the running daemon has it too (dockerd lists mirrors with a trailing /)."""
    from types import SimpleNamespace

    from bkdoctor.facts.probe import Section
    from bkdoctor.fix.fixkit import daemon_json_plan

    text = json.dumps({"registry-mirrors": [have]}) + "\n"
    facts = SimpleNamespace(
        docker={"info": {"RegistryConfig": {"Mirrors": ["http://10.0.0.9:5500/"]}}},
        sec=lambda s: Section("daemon_json", 0, text.encode()),
    )
    assert daemon_json_plan(facts, "registry-mirrors", ["http://10.0.0.9:5500"]).empty
    # another proxy is still added, the operator's entry kept as written
    fix = daemon_json_plan(facts, "registry-mirrors", ["http://10.0.0.9:5500", "http://10.0.0.8:5500"])
    assert json.loads(fix.changes[0].after)["registry-mirrors"] == [have, "http://10.0.0.8:5500"]


def test_daemon_json_numbers_keep_their_text():
    text = '{"max-concurrent-downloads": 123456789012345678901234567890, "ratio": 0.25, "n": -3}\n'
    once = daemon_json_add(text, "insecure-registries", ["docker.a.com"])
    for num in ("123456789012345678901234567890", "0.25", "-3"):
        assert num in once


ODD_SEPS = ["\r", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
hosts_line = st.one_of(
    st.builds(lambda i, ns, s: f"{i}{s}{' '.join(ns)}", ip, st.lists(name, min_size=1, max_size=3), ws),
    st.builds(lambda i, ns: f"{i} {' '.join(ns)} # note", ip, st.lists(name, min_size=1, max_size=2)),
    st.sampled_from(["127.0.0.1 localhost", "::1 localhost6", "# comment", "", "   ", "10.1.1.1 db-primary"]),
    # characters str.splitlines() takes for line ends (glibc does not): a comment's tail must stay a comment
    st.builds(lambda sep, i, n: f"# note{sep}{i} {n}", st.sampled_from(ODD_SEPS), ip, name),
    st.builds(lambda i, n, sep: f"{i} {n}{sep}", ip, name, st.sampled_from(["\r", "\x85", "\u2028"])),
)
marker = st.sampled_from([BEGIN, END, "  " + BEGIN, END + "  "])


def _blocks(lines):
    """(owned line indexes, balanced?) as hosts_set reads the markers."""
    owned, inside = set(), False
    for i, l in enumerate(lines):
        if l.strip() == BEGIN:
            if inside:
                return owned, False
            inside = True
        if inside:
            owned.add(i)
            if l.strip() == END:
                inside = False
    return owned, not inside


@SETTINGS
@given(
    st.lists(st.one_of(hosts_line, hosts_line, hosts_line, marker), max_size=12),
    ip,
    st.lists(name, min_size=1, max_size=4, unique=True),
    st.booleans(),
)
def test_hosts_set(lines, target, names, last_nl):
    text = "\n".join(lines) + ("\n" if lines and last_nl else "")
    owned, balanced = _blocks(nl_lines(text))
    if not balanced:
        # a block that starts and never ends: which lines are the operator's cannot be told, so nothing is edited
        with pytest.raises(EditError, match="line [0-9]+"):
            hosts_set(text, [(target, names)])
        return
    once = hosts_set(text, [(target, names)])
    assert hosts_set(once, [(target, names)]) == once
    out = nl_lines(once)
    assert out.count(BEGIN) == 1 and out.count(END) >= 1 and out[-1] == END
    # no line the operator wrote is dropped (only the lines of bkdoctor's own block are replaced)
    survives(text, once, owned=lambda i, l: i in owned)
    # lines without any of our names are byte-identical and in order
    ours = {n.lower() for n in names}
    keep = [
        l
        for i, l in enumerate(nl_lines(text))
        if i not in owned
        and (
            not (set(x.lower() for x in re.split(r"[ \t\r\v\f]+", l.split("#", 1)[0])[1:]) & ours)
            or l.lstrip().startswith("#")
        )
    ]
    it = iter(out)
    assert all(any(l == o for o in it) for l in keep)
    # every name resolves to the target, exactly once, outside comments
    active = [
        re.split(r"[ \t\r]+", l.split("#", 1)[0].strip(" \t\r"))
        for l in out
        if l.strip() and not l.lstrip().startswith("#")
    ]
    for n in names:
        ips = [p[0] for p in active if n.lower() in (x.lower() for x in p[1:])]
        assert ips == [target], (n, ips)


def test_hosts_set_refuses_an_unterminated_block():
    """The example of the issue: a half-edited /etc/hosts whose block never ends keeps every line after it."""
    text = f"127.0.0.1 localhost\n{BEGIN}\n10.96.45.12 bkce7.bktencent.com\n10.1.1.1 db-primary\n10.1.1.2 db-replica\n"
    with pytest.raises(EditError) as e:
        hosts_set(text, [("10.96.45.12", ["bkce7.bktencent.com"])])
    assert "line 2" in str(e.value) and END in str(e.value)
    # a stray END (no BEGIN) is the operator's line like any other: kept
    stray = f"{END}\n10.1.1.1 db-primary\n"
    assert hosts_set(stray, [("10.96.45.12", ["a.com"])]).startswith(stray)


def test_hosts_set_keeps_lines_that_name_ours_at_the_right_address():
    text = "10.96.45.12 bkce7.bktencent.com\n10.96.45.12 docker.bkce7.bktencent.com mirror.local\n"
    out = hosts_set(text, [("10.96.45.12", ["bkce7.bktencent.com", "docker.bkce7.bktencent.com"])])
    assert out.splitlines()[:3] == [
        "# bkdoctor: 10.96.45.12 bkce7.bktencent.com",
        "# bkdoctor: 10.96.45.12 docker.bkce7.bktencent.com mirror.local",
        "10.96.45.12 mirror.local",
    ]


# names shared between the Corefile and the names a fix sets, so entries at another address are common
cname = st.one_of(name, st.sampled_from(["docker.x.com", "bkrepo.x.com", "k8s-api.bcs.local"]))


@st.composite
def corefiles(draw):
    blocks = []
    for i in range(draw(st.integers(1, 3))):
        plugins = draw(
            st.lists(
                st.sampled_from(
                    [
                        "errors",
                        "cache 30",
                        "loop",
                        "reload",
                        "loadbalance",
                        "ready",
                        "forward . /etc/resolv.conf",
                        "prometheus :9153",
                    ]
                ),
                max_size=6,
                unique=True,
            )
        )
        if draw(st.booleans()):
            entries = draw(st.lists(st.tuples(ip, st.lists(cname, min_size=1, max_size=3)), max_size=4))
            fall = draw(st.booleans())
            hb = (
                ["    hosts {"]
                + [f"        {a} {' '.join(b)}" for a, b in entries]
                + (["        fallthrough"] if fall else [])
                + ["    }"]
            )
            pos = draw(st.integers(0, len(plugins)))
            body = [f"    {p}" for p in plugins[:pos]] + hb + [f"    {p}" for p in plugins[pos:]]
        else:
            body = [f"    {p}" for p in plugins]
        if draw(st.booleans()):  # a comment holding what str.splitlines() would cut into a live `hosts {` line
            body.insert(
                draw(st.integers(0, len(body))),
                f"    # note{draw(st.sampled_from(ODD_SEPS))}hosts {{{draw(st.sampled_from(['', chr(13)]))}",
            )
        blocks.append("\n".join([f"{'.' if i == 0 else f'zone{i}.example.com'}:53 {{"] + body + ["}"]))
    return "\n".join(blocks) + "\n"


@SETTINGS
@given(corefiles(), ip, st.lists(cname, min_size=1, max_size=4, unique=True))
def test_corefile_set_hosts(text, target, names):
    once = corefile_add_reload(corefile_set_hosts(text, target, names))
    survives(text, once)
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
    # every comment line of the operator is byte-identical in the result
    for line in nl_lines(text):
        if line.lstrip().startswith("#"):
            assert line in nl_lines(once), line
    # foreign entries (names not ours) survive with their address
    for line in text.splitlines():
        p = line.split()
        if len(p) == 2 and p[0][0].isdigit() and p[1] not in names:
            assert any(l.split() == p for l in once.splitlines()), line
