"""Every rule's and FAQ signature's citation holds against the deployment guide's text: the cited section
exists (parsed from the guide's own headings, e.g. 二.2.1), its heading is on the cited line, and the rule's
short quote is found inside that section (not elsewhere in the guide). Rules from field knowledge the guide
does not have say "not in the guide" instead. The README's rules table cites the same sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bkdoctor import guidetext
from bkdoctor.scan.loader import all_rules

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT.parent / "shared" / "seed" / "000_ac029a12e5ebe66c.txt"
if not GUIDE.exists():
    GUIDE = Path("/work/shared/seed/000_ac029a12e5ebe66c.txt")

pytestmark = pytest.mark.skipif(not GUIDE.exists(), reason="the deployment guide is not next to the worktree")


@pytest.fixture(scope="module")
def guide():
    return guidetext.load(GUIDE)


def test_parser_finds_the_guide_sections(guide):
    sections, lines = guide
    assert sections["一.3.2.2"].title == "资源规格" and sections["一.3.2.2"].line == 62
    assert sections["二.2.1"].title == "环境要求"
    assert sections["四.8.Q2"].title == "CoreDNS 注入后解析失败"
    assert sections["十三.3"].line == 2501
    # a subsection lies inside its parent, and a section ends where the next non-subsection starts
    assert sections["一.3"].line < sections["一.3.2.2"].line < sections["一.3"].end == sections["一.4"].line
    # lines inside code fences are not headings ("# 创建目录结构" in 二.3.1)
    assert not any(s.title.startswith("创建目录结构") for s in sections.values())


def _check(sid, quote, sections, lines, who):
    assert sid in sections, f"{who}: no section {sid} in the guide"
    text = guidetext.normalize(guidetext.section_text(sections, lines, sid))
    q = guidetext.normalize(quote)
    assert q, f"{who}: empty quote"
    assert q in text, f"{who}: {quote!r} is not in §{sid} ({sections[sid].title})"


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.id)
def test_citation_holds(rule, guide):
    sections, lines = guide
    g = rule.guide
    if g.section == guidetext.NOT_IN_GUIDE:
        assert g.quote is None and g.line is None, rule.id
        assert "not in the guide" in g.title
        return
    _check(g.section, g.quote, sections, lines, rule.id)
    s = sections[g.section]
    # the cited line is a heading inside that section (its own, or one of its FAQ entries)
    assert g.line is not None and s.line <= g.line < s.end, (rule.id, g.line, s.line, s.end)
    assert lines[g.line - 1].lstrip().startswith("#"), (rule.id, lines[g.line - 1])
    assert g.title.replace(" ", "") in lines[g.line - 1].replace(" ", "").replace("**", ""), (rule.id, g.title)
    for sid, quote in g.also:
        _check(sid, quote, sections, lines, f"{rule.id} (also)")


def test_a_wrong_quote_is_caught(guide):
    """The check can fail: a quote from another section does not hold."""
    sections, lines = guide
    with pytest.raises(AssertionError):
        _check("一.4.2", "最小公网带宽：50Mbps", sections, lines, "probe")
    with pytest.raises(AssertionError):
        _check("九.9", "x", sections, lines, "probe")


def test_readme_rules_table_cites_the_same_sections():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9-]+)`(?: \*\(slow\)\*)? \|[^\n]*\| ([^|\n]+) \|$", text, re.M)
    by_id = {r.id: r for r in all_rules()}
    seen = set()
    for rid, cited in rows:
        if rid not in by_id or rid in seen:
            continue
        seen.add(rid)
        g = by_id[rid].guide
        want = g.section if g.section == guidetext.NOT_IN_GUIDE else f"§{g.section}"
        assert cited.strip() == want, (rid, cited, want)
    host_rules = {r.id for r in all_rules() if r.scope == "host"}
    assert host_rules <= seen, f"host rules missing from the README table: {sorted(host_rules - seen)}"


def test_control_machine_names_are_the_guides(guide):
    """§六.4.1's hosts block is the control machine's list (thresholds.hosts_guide_names: the hosts-file rule, its
    fix, the Ansible export and the install's printout all read it): the same names, in the guide's order."""
    import re

    from bkdoctor.inputs.thresholds import DEFAULTS

    sections, lines = guide
    text = guidetext.section_text(sections, lines, "六.4.1")
    names = re.findall(r"^\$IP1 (?:([a-z0-9-]+)\.)?\$BK_DOMAIN$", text, re.M)
    assert len(names) == 20
    assert names == list(DEFAULTS["hosts_guide_names"])


def test_helm_releases_smart_step_quotes_the_guide():
    """helm-releases leaves bk_itsm/bk_sops to a person with §九.5.1's own steps: each quoted piece is the guide's
    text, in that section."""
    src = (ROOT / "remediations" / "cluster" / "helm-releases.py").read_text(encoding="utf-8")
    quote = re.search(r'"(进入\*\*部署管理\*\*.*?)" \(§九\.5\.1\)', src)
    assert quote, "the S-Mart quote moved: keep it held here"
    guide = GUIDE.read_text(encoding="utf-8")
    at = guide.index("部署至生产环境")
    heading = guide.rfind("\n#### ", 0, at)
    assert guide[heading : guide.index("\n", heading + 1)].strip().startswith("#### **5.1 ")  # 九's 5.1
    for piece in quote.group(1).split(" … "):
        assert piece in guide[heading : at + 20], piece


def test_the_registry_check_is_the_guides_curl_without_a_time_limit(guide):
    """facts/host.py (INGRESS_MAX_TIME, FORWARDED_GETS) and README say: the guide's §七.3 check is `curl -v
    docker.<domain>/v2/` on every node, with no time limit (the probe's 5 s are stricter), expecting 401."""
    from bkdoctor.facts.host import FORWARDED_GETS, SECTIONS

    sections, lines = guide
    text = guidetext.section_text(sections, lines, "七.3")
    cmds = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("curl ")]
    assert cmds == ["curl -v docker.bkce7.bktencent.com/v2/"], cmds  # no -m / --max-time: the guide sets no limit
    assert "401 Unauthorized" in text
    spec = FORWARDED_GETS["registry_ingress"]
    assert (spec.port, spec.path) == (80, "/v2/")  # http:// (curl's default scheme and port) and the guide's path
    assert '"http://docker.$BKD_DOMAIN/v2/"' in SECTIONS["registry_ingress"]


def test_docker_reload_is_the_guides_command(guide):
    """§七.4.1.1 step 4 reloads Docker with `systemctl reload dockerd.service || systemctl reload docker.service` (the
    unit has either name, by how Docker was installed): the fixes run that command on a systemd host, and the rules
    that find daemon.json not yet live tell the operator the same."""
    from bkdoctor.fix.fixkit import DOCKER_RELOAD
    from bkdoctor.scan.rulekit import DOCKER_RELOAD_CMD

    sections, lines = guide
    text = guidetext.section_text(sections, lines, "七.4.1.1")
    assert f'ssh "$ip" "{DOCKER_RELOAD_CMD}"' in text
    assert DOCKER_RELOAD.startswith(f"if test -d /run/systemd/system; then {DOCKER_RELOAD_CMD}; else ")
    for rid in ("insecure-registries", "registry-mirrors", "registry-trusted"):
        rule = next(r for r in all_rules() if r.id == rid)
        assert DOCKER_RELOAD_CMD in rule.fix, rid
