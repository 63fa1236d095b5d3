from bkdoctor.scan.rulekit import G_KERNEL, HOST_ROLES, FactUnavailable, Rule, T, cite, errored, failed, passed, warned

RULE = Rule(
    id="firewall",
    title=T("已关闭防火墙", "The host firewall is off"),
    scope="host",
    severity="high",
    roles=HOST_ROLES,
    tags=("preflight", "os", "network"),
    group="host",
    facts=("firewalld", "iptables"),
    guide=cite(G_KERNEL, "| 防火墙 | 必须关闭 | `iptables -vnL`（无规则） |"),
    doc=T(
        "防火墙会拦截 kubelet(10250)、overlay 网络与 NodePort 流量（常见报错：dial tcp IP:10250 no route to host）。"
        "K8s 启动后 kube-proxy/CNI/Docker 自己的链（KUBE-*、FLANNEL-*、CNI-*、DOCKER*）属于正常，不计入（文档中没有这一例外）；"
        "DOCKER-USER 是 Docker 留给运维自己规则的链，其中的规则照常计入。"
        "firewalld 停止并禁用（开机不启动）不在文档中：文档只要求 `iptables -vnL` 无规则，而 CentOS 7 上写入规则的正是 firewalld。",
        "A firewall blocks kubelet (10250), overlay and NodePort traffic (typical error: dial tcp IP:10250 no route "
        "to host). Chains that kube-proxy, the CNI and Docker own once K8s runs (KUBE-*, FLANNEL-*, CNI-*, DOCKER*) are "
        "expected and not counted (that exception is not in the guide); DOCKER-USER, the chain Docker leaves for the "
        "operator's own rules, counts like any other. firewalld stopped and not started at boot: not in the guide, which asks for no rules in "
        "`iptables -vnL`; on CentOS 7 firewalld is what puts them there.",
    ),
    fix=("systemctl stop firewalld", "systemctl disable firewalld"),
)


def check(facts, ctx):
    fw = facts.firewalld
    try:
        ipt = facts.iptables
        ipt_err = None
    except FactUnavailable as e:
        ipt, ipt_err = None, e
    observed = {"firewalld_active": fw["active"], "firewalld_enabled": fw["enabled"]}
    if fw.get("enabled_by"):  # the entry that starts it at boot (a link, or a copy in a .wants directory)
        observed["firewalld_enabled_by"] = _one_line(fw["enabled_by"])
    if ipt is not None:
        observed.update(
            {
                "filtering_rules": ipt["filtering_rules"][:20],
                "drop_policies": ipt["drop_policies"],
                "other_rules": len(ipt["own_rules"]),
                "ignored_k8s_rules": ipt["ignored_k8s_rules"],
            }
        )
    expected = "firewalld stopped and disabled; no filtering iptables rules of the operator's own"
    if fw["active"]:
        return failed(T("firewalld 正在运行", "firewalld is running"), observed=observed, expected=expected)
    if ipt is not None and (ipt["filtering_rules"] or ipt["drop_policies"]):
        first = (ipt["filtering_rules"] or [f"-P {c} {p}" for c, p in ipt["drop_policies"].items()])[0]
        return failed(
            T(
                f"iptables 中有过滤规则（{len(ipt['filtering_rules'])} 条 DROP/REJECT）：{first}",
                f"iptables has filtering rules ({len(ipt['filtering_rules'])} DROP/REJECT): {first}",
            ),
            observed=observed,
            expected=expected,
            evidence={"iptables": "\n".join(ipt["own_rules"][:50])},
        )
    if fw["enabled"]:
        by = _one_line(fw.get("enabled_by") or "")
        return warned(
            T(
                "firewalld 未运行，但已设置开机启动，重启后会生效" + (f"（{by}）" if by else ""),
                "firewalld is not running but is enabled: it starts at the next boot" + (f" ({by})" if by else ""),
            ),
            observed=observed,
            expected=expected,
        )
    if ipt is None:
        if ipt_err.status == "skip":
            return passed(
                T(
                    "firewalld 未运行且未启用（未安装 iptables 命令，无法检查规则）",
                    "firewalld is off and disabled (no iptables command to list rules)",
                ),
                observed=observed,
                expected=expected,
            )
        return errored(
            T(
                f"firewalld 未运行，但无法读取 iptables 规则：{ipt_err.reason.zh}",
                f"firewalld is off, but the iptables rules cannot be read: {ipt_err.reason.en}",
            ),
            observed=observed,
            expected=expected,
        )
    if ipt["own_rules"]:
        return warned(
            T(
                f"iptables 中有 {len(ipt['own_rules'])} 条非 K8s 规则（无 DROP/REJECT），请确认",
                f"iptables has {len(ipt['own_rules'])} rule(s) not owned by K8s (no DROP/REJECT): please review",
            ),
            observed=observed,
            expected=expected,
            evidence={"iptables": "\n".join(ipt["own_rules"][:50])},
        )
    return passed(
        T("firewalld 已关闭，iptables 中没有过滤规则", "firewalld is off and iptables has no filtering rules"),
        observed=observed,
        expected=expected,
    )


def _one_line(path: str, keep: int = 200) -> str:
    """A path from the host as one line (a newline or CR in it shown as \\n, \\r; a backslash doubled: it can
    never print a line of its own), its end kept when long (the unit's name)."""
    s = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return s if len(s) <= keep else "…" + s[-(keep - 1) :]
