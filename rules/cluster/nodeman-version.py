from bkdoctor.scan.rulekit import Guide, Rule, T, failed, passed, semver_lt, skipped

RULE = Rule(
    id="nodeman-version",
    title=T("节点管理 bk-nodeman ≥ 2.4.4", "bk-nodeman is 2.4.4 or newer"),
    scope="cluster",
    severity="high",
    roles=(),
    tags=("helm", "versions", "saas"),
    group="cluster",
    facts=("helm_releases",),
    guide=Guide(
        "九.5.3",
        "节点管理(bk_nodeman)",
        1694,
        'sed -i \'s/bk-nodeman: "2.3.5"/bk-nodeman: "2.4.4"/\' environments/default/version.yaml',
    ),
    doc=T(
        "§九.5.3：部署节点管理前把 environments/default/version.yaml 中 bk-nodeman 改为 2.4.4（适配 Proxy 配置变动），再 "
        "helmfile -l name=bk-nodeman sync；§九.8 Q2：部署失败时检查 version.yaml 中 bk-nodeman 是否为 2.4.4。"
        "检查 version.yaml（中控机安装目录）与集群中 bk-nodeman release 的 chart 版本。",
        "§九.5.3: before deploying node management, set bk-nodeman to 2.4.4 in environments/default/version.yaml (for "
        "the proxy configuration change), then helmfile -l name=bk-nodeman sync; §九.8 Q2: when it fails, check that "
        "version.yaml says 2.4.4. Checks version.yaml (the control machine's install dir) and the chart version of "
        "the bk-nodeman release in the cluster.",
    ),
    fix=(
        'sed -i \'s/bk-nodeman: "2.3.5"/bk-nodeman: "2.4.4"/\' environments/default/version.yaml',
        "helmfile -f base-blueking.yaml.gotmpl -l name=bk-nodeman sync",
    ),
)


def _find(d, key):
    if isinstance(d, dict):
        for k, v in d.items():
            if k == key and isinstance(v, (str, int, float)):
                return str(v)
            got = _find(v, key)
            if got is not None:
                return got
    return None


def check(facts, ctx):
    want = ctx.thresholds["nodeman_min"]
    site = getattr(ctx, "site", None)
    in_file = _find(site.data.get("version_yaml"), "bk-nodeman") if site is not None else None
    rel = next((r for r in facts.get("helm_releases") if r["name"] == "bk-nodeman"), None)
    observed = {"version.yaml": in_file, "release": (rel or {}).get("chart_version")}
    if in_file is None and rel is None:
        return skipped(
            T(
                "还没有 bk-nodeman（version.yaml 与集群中都没有）",
                "no bk-nodeman yet (neither in version.yaml nor in the cluster)",
            )
        )
    low = []
    for where, v in (("version.yaml", in_file), ("release", observed["release"])):
        if v is None:
            continue
        try:
            if semver_lt(v, want):
                low.append((where, v))
        except ValueError:
            low.append((where, v))
    if low:
        txt = ", ".join(f"{w} {v}" for w, v in low)
        return failed(
            T(
                f"bk-nodeman 低于 {want}：{txt}（§九.5.3 要求改为 2.4.4 后再部署）",
                f"bk-nodeman is below {want}: {txt} (§九.5.3: set 2.4.4, then deploy)",
            ),
            observed=observed,
            expected=f">= {want}",
        )
    return passed(
        T(f"bk-nodeman 版本满足 ≥ {want}", f"bk-nodeman is >= {want}"), observed=observed, expected=f">= {want}"
    )
