import re

from bkdoctor.scan.rulekit import ALL_ROLES, NOT_IN_GUIDE, Rule, T, collect, errored, failed, passed, warned

RULE = Rule(
    id="fleet-hostname",
    title=T("主机名唯一且合法", "Hostnames are unique and valid"),
    scope="fleet",
    severity="high",
    roles=ALL_ROLES,
    tags=("fleet", "k8s"),
    group="fleet",
    facts=("hostname",),
    guide=NOT_IN_GUIDE,
    doc=T(
        "K8s 以主机名作为 Node 名：重名的主机加入集群时会互相覆盖；Node 名必须是小写 DNS-1123 名称。",
        "Kubernetes names Nodes after hostnames: two hosts with one name overwrite each other's Node, and a Node "
        "name must be a lowercase DNS-1123 name.",
    ),
    fix=("hostnamectl set-hostname node-10-0-0-5",),
)

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check(fleet, ctx):
    names, errors = collect(fleet, "hostname")
    out = {n: errored(e.reason) for n, e in errors.items()}
    by_name = {}
    for target, hn in names.items():
        by_name.setdefault(hn, []).append(target)
    for target, hn in names.items():
        others = sorted(t for t in by_name[hn] if t != target)
        observed = {"hostname": hn, "same_as": others}
        if others:
            out[target] = failed(
                T(f"主机名 {hn} 与 {', '.join(others)} 重复", f"hostname {hn} is also used by {', '.join(others)}"),
                observed=observed,
                expected="unique",
            )
        elif not DNS1123.match(hn) or len(hn) > 253:
            out[target] = warned(
                T(
                    f"主机名 {hn!r} 不是小写 DNS-1123 名称，不能直接作为 K8s Node 名",
                    f"hostname {hn!r} is not a lowercase DNS-1123 name, which a K8s Node name must be",
                ),
                observed=observed,
                expected="lowercase DNS-1123",
            )
        else:
            out[target] = passed(
                T(f"主机名 {hn} 唯一", f"hostname {hn} is unique"), observed=observed, expected="unique"
            )
    return out
