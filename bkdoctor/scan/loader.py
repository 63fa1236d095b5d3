"""Rule discovery: one Python file per rule under `rules/<scope>/`, loaded by path.

A rule file defines `RULE` (a `bkdoctor.model.Rule` without `check`) and a pure `check(facts, ctx)`.
The file name must equal the rule id (`rules/host/insecure-registries.py` -> `insecure-registries`), and every
fact it declares must exist for its scope.
Files are loaded by path because ids contain dashes and because `rules` must not become a top-level
package in site-packages. A rule's remediation, when it has one, is the file of the same name,
`remediations/<scope>/<id>.py`, and the remediation says whether the rule's fix is disruptive.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

from bkdoctor.model import SCOPES, BadInput, Rule, T


def _data_dir(name: str) -> Path:
    here = Path(__file__).resolve().parent.parent  # bkdoctor/
    for cand in (here / name, here.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"{name}/ directory not found next to the bkdoctor package")


def rules_dir() -> Path:
    return _data_dir("rules")


def remediations_dir() -> Path:
    return _data_dir("remediations")


def _check_scope_folder(path: Path, scope: str) -> None:
    """Folder means scope: rules/<scope>/<id>.*, remediations/<scope>/<id>.py, fixtures/<scope>/<id>/."""
    if scope not in SCOPES:
        raise ImportError(f"{path}: unknown scope {scope!r} (one of {', '.join(SCOPES)})")
    if path.parent.name != scope:
        raise ImportError(f"{path}: a {scope} rule lives in {scope}/, not in {path.parent.name}/")


def known_facts(scope: str) -> frozenset[str]:
    """The facts a rule of this scope may declare: host and fleet rules read host facts (`facts/host.py`), cluster
    rules the kinds the cluster side reads (`facts/cluster.py`)."""
    if scope == "cluster":
        from bkdoctor.facts.cluster import FACTS as CLUSTER_FACTS

        return CLUSTER_FACTS
    from bkdoctor.facts.host import FACTS as HOST_FACTS

    return frozenset(HOST_FACTS)


def _check_facts(path: Path, rule: Rule) -> None:
    """A fact a rule declares must exist: a typo fails here, with the file, not as an error finding at a site."""
    unknown = [f for f in rule.facts if f not in known_facts(rule.scope)]
    if unknown:
        raise ImportError(
            f"{path}: unknown {rule.scope} fact(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known_facts(rule.scope)))})"
        )


def _load_file(path: Path) -> Rule:
    mod_name = "bkdoctor_rules." + ".".join(path.relative_to(rules_dir()).with_suffix("").parts).replace("-", "_")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load rule file {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    rule = getattr(mod, "RULE", None)
    check = getattr(mod, "check", None)
    if not isinstance(rule, Rule) or not callable(check):
        raise ImportError(f"{path}: a rule file must define RULE (Rule) and check()")
    if rule.id != path.stem:
        raise ImportError(f"{path}: rule id {rule.id!r} does not equal the file name {path.stem!r}")
    _check_scope_folder(path, rule.scope)
    _check_facts(path, rule)
    return dataclasses.replace(rule, check=check)


def _link_remediation(rule: Rule) -> Rule:
    """A rule's remediation is the file of the same name, remediations/<scope>/<id>.py (the link is the file name,
    as for rules; a rule file does not name it), and whether its fixes are disruptive is the remediation's to say."""
    if rule.remediation and rule.remediation != rule.id:
        raise ImportError(
            f"rule {rule.id}: a rule's remediation has its id (remediations/{rule.scope}/{rule.id}.py), "
            f"not {rule.remediation!r}"
        )
    if not (remediations_dir() / rule.scope / f"{rule.id}.py").exists():
        return dataclasses.replace(rule, remediation=None) if rule.remediation else rule
    from bkdoctor.fix.plan import all_remediations

    return dataclasses.replace(rule, remediation=rule.id, disruptive=all_remediations()[rule.id].disruptive)


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    from bkdoctor.scan.faq import SignatureError, load_signature

    rules = []
    for path in sorted(rules_dir().glob("*/*.py")):
        if path.name.startswith("_"):
            continue
        rules.append(_load_file(path))
    # FAQ failure signatures are data: rules/cluster/faq-<id>.yaml (group and tag `faq`)
    for path in sorted(rules_dir().glob("*/*.yaml")):
        try:
            rule = load_signature(path, validate=False)  # shipped: validated by tests/test_faq.py
        except SignatureError as e:
            raise ImportError(str(e)) from None
        _check_scope_folder(path, rule.scope)
        _check_facts(path, rule)
        rules.append(rule)
    ids = [r.id for r in rules]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ImportError(f"duplicate rule ids: {sorted(dup)}")
    return tuple(_link_remediation(r) for r in rules)


def select(
    include: list[str] | None,
    exclude: list[str] | None,
    measure: bool = False,
    extra: list[Rule] | tuple[Rule, ...] = (),
) -> list[Rule]:
    """Rules matching any include selector (id, group or tag), minus the excluded ones.

    Rules tagged `slow` (measurements: fio, downloads) run only with `measure` or when selected by id.
    An unknown selector is bad input, so a typo never silently scans nothing.
    """
    rules = tuple(all_rules()) + tuple(extra)  # extra: the operator's site rules (--rules-dir)
    known = (
        {r.id for r in rules} | {r.group for r in rules} | {t for r in rules for t in r.tags} | {r.scope for r in rules}
    )

    def matches(r: Rule, sel: str) -> bool:
        return sel in (r.id, r.group, r.scope) or sel in r.tags

    for sel in (include or []) + (exclude or []):
        if sel not in known:
            raise BadInput(
                T(
                    f"未知的规则选择器 {sel!r}（见 `bkdoctor rules`）",
                    f"unknown rule selector {sel!r} (see `bkdoctor rules`)",
                )
            )
    if include:
        chosen = [
            r
            for r in rules
            if any(matches(r, s) for s in include)
            and (measure or "slow" not in r.tags or r.id in include or "slow" in include)
        ]
    else:
        chosen = [r for r in rules if measure or "slow" not in r.tags]
    if exclude:
        chosen = [r for r in chosen if not any(matches(r, s) for s in exclude)]
    return chosen
