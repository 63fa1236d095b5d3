from bkdoctor.scan.rulekit import (
    K8S_ROLES,
    NOT_IN_GUIDE,
    Rule,
    T,
    collect,
    errored,
    failed,
    majority,
    passed,
    skipped,
    version_tuple,
    warned,
)

RULE = Rule(
    id="fleet-versions",
    title=T("各节点 Docker 与 kubelet 版本一致", "Docker and kubelet versions alike on every node"),
    scope="fleet",
    severity="medium",
    roles=K8S_ROLES,
    tags=("docker", "k8s", "fleet"),
    group="fleet",
    facts=("docker", "kubelet"),
    guide=NOT_IN_GUIDE,
    doc=T(
        "bcs.sh 在所有节点安装同一版本（Docker 19.03.9、kubelet 1.20.11）；版本不一的节点通常是手工装的，行为与问题难以复现。"
        "kubelet 小版本（1.20 与 1.23）不同为失败，补丁版本或 Docker 版本不同为警告。",
        "bcs.sh installs one version everywhere (Docker 19.03.9, kubelet 1.20.11); a node with other versions was "
        "usually set up by hand and behaves differently. A different kubelet minor (1.20 vs 1.23) fails; a "
        "different patch or Docker version warns.",
    ),
    fix=("docker version --format '{{.Server.Version}}'", "kubelet --version"),
)


def check(fleet, ctx):
    dockers, d_err = collect(fleet, "docker")
    kubelets, k_err = collect(fleet, "kubelet")
    out = {n: errored(e.reason) for n, e in {**d_err, **k_err}.items()}
    dv = {n: d["server_version"] or d.get("client_version") for n, d in dockers.items() if d["installed"]}
    kv = {n: k["version"] for n, k in kubelets.items() if k["installed"]}
    dv = {n: v for n, v in dv.items() if v}
    d_common, _ = majority(dv.values())
    k_common, _ = majority(kv.values())
    for name in fleet:
        if name in out:
            continue
        if name not in dv and name not in kv:
            out[name] = skipped(T("未安装 Docker 与 kubelet", "neither Docker nor kubelet is installed"))
            continue
        observed = {"docker": dv.get(name), "kubelet": kv.get(name)}
        expected = {"docker": d_common, "kubelet": k_common}
        odd, minor = [], False
        if name in dv and dv[name] != d_common:
            odd.append(f"Docker {dv[name]} (most: {d_common})")
        if name in kv and kv[name] != k_common:
            odd.append(f"kubelet {kv[name]} (most: {k_common})")
            try:
                minor = version_tuple(kv[name])[:2] != version_tuple(k_common)[:2]
            except ValueError:
                minor = True
        if minor:
            out[name] = failed(
                T(
                    "kubelet 小版本与多数节点不同：" + "，".join(odd),
                    "kubelet minor version differs from most nodes: " + ", ".join(odd),
                ),
                observed=observed,
                expected=expected,
            )
        elif odd:
            out[name] = warned(
                T("版本与多数节点不同：" + "，".join(odd), "versions differ from most nodes: " + ", ".join(odd)),
                observed=observed,
                expected=expected,
            )
        else:
            out[name] = passed(
                T("版本与多数节点一致", "versions match most nodes"), observed=observed, expected=expected
            )
    return out
