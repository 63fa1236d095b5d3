"""A hypothesis fuzz test per parser of outside input: inventory YAML, Ansible INI and YAML, bundle manifest and
members, Corefile, daemon.json, fstab, /etc/hosts, kubeconfig. Property: never an exception other than the
parser's own "bad input" (BadInput / CorefileError / FactUnavailable), so the CLI never exits 3 on them; and
the host rules that read the fuzzed files never crash (a crash would be an `error` finding "rule crashed").

Bounded examples, no deadline: the whole set takes a few seconds."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetykit import bundle_docs, bundle_tar

from bkdoctor.facts import corefile
from bkdoctor.facts.host import HostFacts, parse_fstab, parse_hosts
from bkdoctor.facts.probe import Section
from bkdoctor.inputs import thresholds as th
from bkdoctor.model import BadInput, FactUnavailable
from bkdoctor.scan import engine, loader

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
TMP = tempfile.mkdtemp(prefix="bkdoctor-fuzz-")

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "node",
            "master",
            "control",
            "10.0.0.5",
            "2027-06-30",
            "~/x",
            "n[1:3]",
            "a..b",
            "",
            "*",
            "node\n",
            "a\x07b",
            "\x1b[31mred",
            "nul\x00",
        ]
    ),
)


def json_like(keys):
    return st.recursive(
        scalar,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.dictionaries(st.one_of(keys, st.text(max_size=8)), kids, max_size=4)
        ),
        max_leaves=25,
    )


def _write(name: str, text: str) -> str:
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)
    return path


def _load_inventory(path: str) -> None:
    from bkdoctor.inputs.inventory import load_inventory

    try:
        load_inventory(path)
    except BadInput:
        pass


def _dump(doc) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return "x: 1\n"


# control characters (\x00 \x07 ESC, NEL, U+2028, a BOM) are refused by the YAML reader itself: bad input too
yaml_noise = st.text(alphabet="abc:-[]{}&*!|>#'\"\n .,0123456789?%@`\t\x00\x07\x1b\x85\u2028\ufeff", max_size=200)
INV_KEYS = st.sampled_from(
    [
        "domain",
        "install_dir",
        "ingress_ip",
        "ssh",
        "hosts",
        "thresholds",
        "suppress",
        "name",
        "address",
        "roles",
        "port",
        "user",
        "until",
        "rule",
        "reason",
        "target",
        "local",
        "localpv_count",
        "resources",
        "node",
        "min",
        "cpu",
        "endpoints",
        "docker_socket",
    ]
)


@SETTINGS
@given(st.one_of(yaml_noise, json_like(INV_KEYS).map(_dump)))
def test_fuzz_inventory_yaml(text):
    _load_inventory(_write("inv.yaml", text))


ini_line = st.one_of(
    st.sampled_from(
        [
            "[node]",
            "[master]",
            "[control]",
            "[all:vars]",
            "[node:children]",
            "[g:children]",
            "[g]",
            "[bad",
            "",
            "# c",
            "; c",
            "ansible_user=root",
            "g",
            "node",
        ]
    ),
    st.builds(
        lambda h, kv: f"{h} {kv}",
        st.sampled_from(
            [
                "n1",
                "n[1:3]",
                "n[01:02]",
                "n[a:c]",
                "n[3:1]",
                "n[1:9:0]",
                "10.0.0.5",
                "bk..x",
                "n[0:99999999999]",
                "x/y",
                "n[1:x]",
            ]
        ),
        st.sampled_from(
            [
                "",
                "ansible_host=10.0.0.5",
                "ansible_port=22",
                "ansible_port=abc",
                "ansible_become=yes",
                "ansible_ssh_common_args='-J j@h'",
                "a='unclosed",
                "k=v k2",
            ]
        ),
    ),
    st.text(alphabet="[]:=ab01 \t'\"#", max_size=20),
)


@SETTINGS
@given(st.lists(ini_line, max_size=25).map("\n".join))
def test_fuzz_ansible_ini(text):
    _load_inventory(_write("hosts.ini", text))


ANS_KEYS = st.sampled_from(
    [
        "all",
        "children",
        "hosts",
        "vars",
        "node",
        "master",
        "control",
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "n[1:3]",
        "registry-proxy",
    ]
)


@SETTINGS
@given(st.one_of(json_like(ANS_KEYS).map(lambda d: _dump({"all": d})), yaml_noise.map(lambda t: "all:\n" + t)))
def test_fuzz_ansible_yaml(text):
    _load_inventory(_write("hosts.yaml", text))


# -- bundles ---------------------------------------------------------------------------------------------------


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


@st.composite
def mutated_bundle(draw):
    docs = bundle_docs()
    for _ in range(draw(st.integers(1, 3))):
        member = draw(st.sampled_from(sorted(docs)))
        paths = list(_paths(docs[member]))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete"]))
        if op == "delete" and path:
            cur = docs[member]
            for p in path[:-1]:
                cur = cur[p]
            del cur[path[-1]]
        else:
            docs[member] = _set(
                docs[member],
                path,
                draw(
                    json_like(
                        st.sampled_from(
                            ["out", "rc", "__error__", "zh", "en", "hosts", "kinds", "name", "roles", "reachable"]
                        )
                    )
                ),
            )
    raw = {k: json.dumps(v).encode() for k, v in docs.items()}
    if draw(st.booleans()):
        k = draw(st.sampled_from(sorted(raw)))
        raw[k] = draw(st.sampled_from([b"", b"{", b"[" * 5000, b"\xff\xfe", b"null", raw[k][: len(raw[k]) // 2]]))
    return raw


RULES = loader.select(None, None)


def _no_crash(findings) -> None:
    crashed = [(f.rule.id, f.result.message.en) for f in findings if f.result.message.en.startswith("rule crashed")]
    assert crashed == []


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(mutated_bundle(), st.binary(max_size=300).map(lambda b: {"__raw__": b})))
def test_fuzz_bundle(members):
    from bkdoctor.inputs.bundle import read_bundle
    from bkdoctor.inputs.inventory import Inventory

    path = os.path.join(TMP, "b.tar.gz")
    with open(path, "wb") as fh:
        fh.write(members["__raw__"] if "__raw__" in members else bundle_tar(members))
    try:
        manifest, hosts, cf = read_bundle(path)
    except BadInput:
        return
    inv = Inventory(
        path="bundle",
        hosts=[],
        domain=manifest.get("domain"),
        domain_source=None,
        install_dir="/x",
        ssh={},
        thresholds=manifest["thresholds"],
        suppress=[],
    )
    asyncio.run(engine.scan(inv, RULES, preloaded_hosts=hosts, cluster_facts=cf))


# -- host files: parser, then the rules that read them -----------------------------------------------------------


def _ctx():
    return engine.Context(
        target="n",
        roles=("node",),
        address="10.0.0.5",
        thresholds=th.merge(None),
        domain="bkce7.bktencent.com",
        ingress_ip="10.0.0.1",
    )


def _rules_on(section: str, text: str, rule_ids: list[str]):
    facts = HostFacts(
        {section: Section(section, 0, text.encode("utf-8", "surrogatepass"))},
        docker_api={"version": {"Version": "20.10.5"}, "info": {}},
    )
    out = []
    for r in loader.select(rule_ids, None):
        res = engine.evaluate(r, facts, _ctx())
        out.append(type("F", (), {"rule": r, "result": res})())
    _no_crash(out)


core_line = st.one_of(
    st.sampled_from(
        [
            ".:53 {",
            "}",
            "hosts {",
            "10.0.0.1 bkce7.bktencent.com",
            "fallthrough",
            "forward . /etc/resolv.conf",
            "reload",
            "errors",
            "cache 30 {",
            "  ",
            "# c",
            "::1 x",
            "{",
            "} }",
            "kubernetes cluster.local in-addr.arpa {",
        ]
    ),
    st.text(alphabet="{}.:# abc10\t", max_size=15),
)


@SETTINGS
@given(st.lists(core_line, max_size=20).map("\n".join))
def test_fuzz_corefile(text):
    try:
        blocks = corefile.parse(text)
    except corefile.CorefileError:
        return
    for b in blocks:
        for p in b.plugins:
            if p.name == "hosts":
                corefile.hosts_entries(text, p)


DJ_KEYS = st.sampled_from(
    [
        "insecure-registries",
        "registry-mirrors",
        "data-root",
        "graph",
        "exec-opts",
        "live-restore",
        "log-opts",
        "storage-driver",
        "native.cgroupdriver=systemd",
    ]
)


@SETTINGS
@given(
    st.one_of(
        json_like(DJ_KEYS).map(json.dumps),
        st.text(alphabet='{}[]":,a-z0 \n', max_size=80),
        st.just("[" * 100_000 + "]" * 100_000),
    )
)
def test_fuzz_daemon_json(text):
    from bkdoctor.facts.host import p_daemon_json

    facts = HostFacts({"daemon_json": Section("daemon_json", 0, text.encode())})
    try:
        p_daemon_json(facts)
    except FactUnavailable:
        pass
    _rules_on("daemon_json", text, ["docker-daemon-config", "insecure-registries", "registry-mirrors"])


fstab_line = st.one_of(
    st.sampled_from(
        [
            "/dev/mapper/centos-swap swap swap defaults 0 0",
            "UUID=x / xfs defaults 0 0",
            "/data/bcs/localpv/vol01 /mnt/blueking/vol01 none defaults,bind 0 0",
            "#",
            "",
            "swap",
            "a b",
            "//h/s /mnt cifs password=x 0 0",
        ]
    ),
    st.text(alphabet="/abc swp01\t#,=", max_size=40),
)


@SETTINGS
@given(st.lists(fstab_line, max_size=15).map("\n".join))
def test_fuzz_fstab(text):
    parse_fstab(text)
    _rules_on("fstab", text, ["swap", "localpv-dirs"])


hosts_line = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1 localhost",
            "10.0.0.1 bkce7.bktencent.com docker.bkce7.bktencent.com",
            "10.0.0.2 k8s-api.bcs.local",
            "# x",
            "",
            "::1",
            "x",
            "10.0.0.1",
        ]
    ),
    st.text(alphabet="0123456789. abcdk#\t:", max_size=40),
)


@SETTINGS
@given(st.lists(hosts_line, max_size=15).map("\n".join))
def test_fuzz_etc_hosts(text):
    parse_hosts(text)
    _rules_on("etc_hosts", text, ["hosts-file"])


KC_KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "clusters",
        "contexts",
        "users",
        "current-context",
        "cluster",
        "context",
        "user",
        "name",
        "server",
        "token",
        "namespace",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "client-certificate-data",
        "client-key-data",
    ]
)


def _kubeconfig(doc) -> str:
    if isinstance(doc, dict):
        doc.setdefault("apiVersion", "v1")
    return _dump(doc)


@SETTINGS
@given(
    st.one_of(
        json_like(KC_KEYS).map(_kubeconfig),
        yaml_noise,
        st.builds(
            lambda server, name: _dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": name,
                    "clusters": [{"name": name, "cluster": {"server": server}}],
                    "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                    "users": [{"name": name, "user": {"token": "t"}}],
                }
            ),
            st.one_of(st.text(max_size=30), st.sampled_from(["https://u:p@127.0.0.1:1", "http://[::1", ""])),
            st.text(max_size=10),
        ),
    )
)
def test_fuzz_kubeconfig(text):
    from bkdoctor.facts.cluster import configure

    path = _write("kubeconfig", text)
    try:
        access = configure(path)
    except BadInput:
        return
    if access is not None:
        access.close()
