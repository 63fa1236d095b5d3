from bkdoctor.scan.rulekit import G_CONTROL_SYNC, Rule, T, failed, passed

RULE = Rule(
    id="control-machine",
    title=T(
        "中控机已同步 kubectl、kubeconfig 与 bcs.local 解析",
        "The control machine has kubectl, a kubeconfig and the bcs.local hosts line",
    ),
    scope="host",
    severity="high",
    roles=("control",),
    tags=("preflight", "k8s"),
    group="k8s",
    facts=("control_sync",),
    guide=G_CONTROL_SYNC,
    doc=T(
        "§三.4.2：中控机与 Master 分离时，需从 Master 同步 ~/.kube/config、/usr/bin/kubectl，以及 /etc/hosts 中的 bcs.local 行"
        "（k8s-api.bcs.local）。缺任何一项，后续 helmfile/kubectl 步骤都无法访问集群。",
        "§三.4.2: when the control machine is not the master, it needs ~/.kube/config, /usr/bin/kubectl and the "
        "bcs.local line of /etc/hosts (k8s-api.bcs.local) copied from the master; without any of them the helmfile "
        "and kubectl steps cannot reach the cluster.",
    ),
    fix=(
        'mkdir -p ~/.kube && scp "$master_ip":~/.kube/config ~/.kube/config',
        'grep bcs.local /etc/hosts || ssh "$master_ip" grep bcs.local /etc/hosts | tee -a /etc/hosts',
        'scp "$master_ip":/usr/bin/kubectl /usr/bin/',
    ),
)


def check(facts, ctx):
    c = facts.control_sync
    observed = {"kubectl": c["kubectl"], "kubeconfig": c["kubeconfig"], "bcs_local_lines": c["bcs_local"]}
    expected = {"kubectl": "in PATH", "kubeconfig": "~/.kube/config (or $KUBECONFIG)", "bcs_local_lines": ">= 1"}
    missing = []
    if not c["kubectl"]:
        missing.append(("没有 kubectl", "no kubectl"))
    if not c["kubeconfig"]:
        missing.append(("没有 kubeconfig（~/.kube/config）", "no kubeconfig (~/.kube/config)"))
    if not c["bcs_local"]:
        missing.append(("/etc/hosts 中没有 bcs.local 行", "no bcs.local line in /etc/hosts"))
    if missing:
        return failed(
            T(
                "中控机未同步：" + "；".join(m[0] for m in missing),
                "the control machine lacks: " + "; ".join(m[1] for m in missing),
            ),
            observed=observed,
            expected=expected,
        )
    return passed(
        T(
            f"kubectl（{c['kubectl']}）、kubeconfig（{c['kubeconfig']}）与 bcs.local 行均已就绪",
            f"kubectl ({c['kubectl']}), kubeconfig ({c['kubeconfig']}) and the bcs.local line are in place",
        ),
        observed=observed,
        expected=expected,
    )
