from bkdoctor.scan.rulekit import G_BASE, Rule, T, failed, passed, skipped

RULE = Rule(
    id="helm-releases",
    title=T("helm release 均为 deployed", "Every helm release is deployed"),
    scope="cluster",
    severity="high",
    roles=(),
    tags=("k8s", "helm"),
    group="cluster",
    facts=("helm_releases",),
    guide=G_BASE,
    doc=T(
        "从 helm.sh/release.v1 Secret 读取（不需要 helm 命令）。failed 或 pending-* 的 release 会让 helmfile 报 "
        "another operation (install/upgrade/rollback) is in progress 或 has no deployed releases。",
        "Read from the helm.sh/release.v1 Secrets (no helm binary needed). A release in failed or pending-* makes "
        "helmfile fail with 'another operation (install/upgrade/rollback) is in progress' or 'has no deployed releases'.",
    ),
    fix=("helm history -n <ns> <release>", "helm rollback -n <ns> <release> <last good revision>"),
)


def check(facts, ctx):
    rels = facts.get("helm_releases")
    if not rels:
        return skipped(T("集群中还没有 helm release", "no helm release in the cluster yet"))
    bad = [r for r in rels if r["status"] not in ("deployed", "superseded")]
    observed = {
        "releases": {
            f"{r['namespace']}/{r['name']}": f"{r['chart']}-{r['chart_version']} rev {r['revision']} {r['status']}"
            for r in rels
        }
    }
    if bad:
        txt = ", ".join(f"{r['namespace']}/{r['name']} ({r['status']}, rev {r['revision']})" for r in bad)
        return failed(
            T(f"{len(bad)} 个 release 状态异常：{txt}", f"{len(bad)} release(s) not deployed: {txt}"),
            observed=observed,
            expected="deployed",
        )
    return passed(
        T(f"{len(rels)} 个 release 均为 deployed", f"all {len(rels)} releases are deployed"),
        observed=observed,
        expected="deployed",
    )
