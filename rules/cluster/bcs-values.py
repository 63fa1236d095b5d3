from bkdoctor.facts.k8s import md
from bkdoctor.scan.rulekit import Guide, Rule, T, bcs_in_site, failed, passed, semver_lt, skipped

RULE = Rule(
    id="bcs-values",
    title=T(
        "容器管理的 storageClass 与消息队列配置", "Container management values: storageClass and the message queue"
    ),
    scope="cluster",
    severity="high",
    roles=(),
    tags=("bcs", "storage", "helm"),
    group="cluster",
    facts=("storageclasses", "helm_releases", "services"),
    guide=Guide(
        "十一.2",
        "存储配置检查与调整",
        2009,
        "若输出名称非`local-storage`，需创建自定义配置",
        also=(("十一.3", "为避免`bcs-storage` CPU使用率异常，需禁用消息队列"),),
    ),
    doc=T(
        "部署容器管理（BCS）时：§十一.2 默认 StorageClass 不是 local-storage 时，custom.yaml 须设 bcs.storageClass 为它的名称；"
        "§十一.3 BCS 服务栈 1.28.2 及以下须在 bcs-custom-values.yaml.gotmpl 中把 bcs-storage.storage.messageQueue.enabled 与 "
        "global.storage.messageQueue.enabled 设为 false，否则 bcs-storage CPU 异常。清单 suites 含 bcs 或集群中有 "
        "bcs-services-stack release 时检查。",
        "With container management (BCS): §十一.2 when the default StorageClass is not local-storage, custom.yaml sets "
        "bcs.storageClass to its name; §十一.3 with the BCS services stack 1.28.2 or older, bcs-custom-values.yaml.gotmpl "
        "sets bcs-storage.storage.messageQueue.enabled and global.storage.messageQueue.enabled to false (else "
        "bcs-storage burns CPU). Checked when the inventory's suites include bcs or a bcs-services-stack release exists.",
    ),
    fix=("kubectl get sc", "vim ./environments/default/bcs-custom-values.yaml.gotmpl"),
)

DEFAULT = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")
MQ_MAX = "1.28.2"


def _get(d, *path):
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


def check(facts, ctx):
    scs = facts.get("storageclasses")
    releases = facts.get("helm_releases")  # unreadable: error, not a silent "no BCS"
    if not bcs_in_site(ctx, facts, use_helm=True) and not any(
        str(r["name"]).startswith("bcs-services-stack") for r in releases
    ):
        return skipped(
            T(
                "未部署容器管理（suites 不含 bcs，集群中没有 bcs-services-stack）",
                "no container management (bcs not in suites, no bcs-services-stack release)",
            )
        )
    site = getattr(ctx, "site", None)
    custom = (site.data.get("custom") if site else None) or {}
    bcs_custom = (site.data.get("bcs_custom") if site else None) or {}
    defaults = [md(s)["name"] for s in scs if any((md(s).get("annotations") or {}).get(a) == "true" for a in DEFAULT)]
    names = {md(s)["name"] for s in scs}
    set_sc = _get(custom, "bcs", "storageClass")
    stack = next((r for r in releases if str(r["name"]).startswith("bcs-services-stack")), None)
    stack_v = (stack or {}).get("chart_version")
    mq = {
        "bcs-storage": _get(bcs_custom, "bcs-storage", "storage", "messageQueue", "enabled"),
        "global": _get(bcs_custom, "global", "storage", "messageQueue", "enabled"),
    }
    observed = {
        "default_storageclass": defaults,
        "bcs.storageClass": set_sc,
        "bcs_services_stack": stack_v,
        "messageQueue.enabled": mq,
    }
    problems = []
    want_sc = defaults[0] if len(defaults) == 1 else None
    if set_sc is not None and set_sc not in names:
        problems.append(
            T(
                f"custom.yaml 的 bcs.storageClass 为 {set_sc}，集群中没有该 StorageClass",
                f"bcs.storageClass in custom.yaml is {set_sc}, a StorageClass the cluster does not have",
            )
        )
    elif set_sc is None and want_sc and want_sc != "local-storage":
        problems.append(
            T(
                f"默认 StorageClass 为 {want_sc}（非 local-storage），custom.yaml 需设 bcs.storageClass: {want_sc}",
                f"the default StorageClass is {want_sc} (not local-storage): custom.yaml needs bcs.storageClass: {want_sc}",
            )
        )
    old_stack = True
    if stack_v:
        try:
            old_stack = not semver_lt(MQ_MAX, stack_v)
        except ValueError:
            old_stack = True
    if old_stack and not (mq["bcs-storage"] is False and mq["global"] is False):
        problems.append(
            T(
                f"BCS 服务栈 {stack_v or '（版本未知）'} ≤ {MQ_MAX}：bcs-custom-values.yaml.gotmpl 须把 "
                "bcs-storage.storage.messageQueue.enabled 与 global.storage.messageQueue.enabled 设为 false",
                f"BCS services stack {stack_v or '(version unknown)'} <= {MQ_MAX}: bcs-custom-values.yaml.gotmpl must "
                "set bcs-storage.storage.messageQueue.enabled and global.storage.messageQueue.enabled to false",
            )
        )
    expected = {
        "bcs.storageClass": want_sc if want_sc and want_sc != "local-storage" else "unset or an existing class",
        "messageQueue.enabled": False if old_stack else "any (stack > 1.28.2)",
    }
    if problems:
        return failed(
            T("；".join(p.zh for p in problems), "; ".join(p.en for p in problems)),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"容器管理配置符合 §十一.2/§十一.3（StorageClass {set_sc or want_sc}）",
            f"container management values follow §十一.2/§十一.3 (StorageClass {set_sc or want_sc})",
        ),
        observed=observed,
        expected=expected,
    )
