import shlex

from bkdoctor.fix.plan import CommandChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="helm-releases",
    scope="cluster",
    disruptive=True,
    title=T(
        "处理卡住的 release 版本后重新同步该 release", "deal with the stuck revision, then sync that release again"
    ),
)

# which helmfile of the install dir declares a release (guide §四–§十二)
FILES = {
    "ingress-nginx": "00-ingress-nginx.yaml.gotmpl",
    "localpv": "00-localpv.yaml.gotmpl",
    "bk-mysql": "base-storage.yaml.gotmpl",
    "bk-redis": "base-storage.yaml.gotmpl",
    "bk-rabbitmq": "base-storage.yaml.gotmpl",
    "bk-mongodb": "base-storage.yaml.gotmpl",
    "bk-elastic": "base-storage.yaml.gotmpl",
    "bk-zookeeper": "base-storage.yaml.gotmpl",
    "bk-etcd": "base-storage.yaml.gotmpl",
    # §九.5.3: `helmfile -f base-blueking.yaml.gotmpl -l name=bk-nodeman sync`
    "bk-nodeman": "base-blueking.yaml.gotmpl",
    "bk-monitor": "04-bkmonitor.yaml.gotmpl",
    "bk-log-search": "04-bklog-search.yaml.gotmpl",
    "bk-log-collector": "04-bklog-collector.yaml.gotmpl",
    "bcs-services-stack": "03-bcs.yaml.gotmpl",
}
# §九.4–九.5: itsm and sops are S-Mart packages deployed through the developer centre, not helmfile releases:
# "进入**部署管理**界面 … 切换至**生产环境** … 点击**部署至生产环境**" (§九.5.1). Left to a person, beside the syncs
# of the other stuck releases (the outcome lists it when the rule still fails for it alone)
SMART = {"bk-itsm": "bk_itsm", "bk-sops": "bk_sops"}


def _file(name):
    if name in SMART:
        return None
    return FILES.get(name, "base-blueking.yaml.gotmpl" if name.startswith("bk-") else None)


def plan(facts, ctx):
    changes, manual = [], []
    for r in facts.get("helm_releases"):
        if r["status"] in ("deployed", "superseded"):
            continue
        ns, name = shlex.quote(r["namespace"]), shlex.quote(r["name"])
        f = _file(r["name"])
        if f is None:
            if r["name"] in SMART:
                manual.append(
                    f"# {SMART[r['name']]} is an S-Mart app (§九.5): deploy it again from the developer centre "
                    f"(http://bkpaas.<BK_DOMAIN>, deployment -> production)"
                )
            else:
                manual.append(f"helm -n {ns} history {name}  # which helmfile declares this release?")
            continue
        if r["status"].startswith("pending-"):
            # an interrupted operation: helm refuses every other one until this revision is settled. Back to the
            # newest revision that deployed (the one before may have failed: its objects would be applied again);
            # without that fact (an older bundle), the one before
            prev = r.get("last_good") or r["revision"] - 1
            if prev >= 1 and r.get("revisions", 1) > 1:
                changes.append(
                    CommandChange(
                        f"helm -n {ns} rollback {name} {prev}",
                        T(
                            f"回滚卡住的 {r['name']} 到第 {prev} 版",
                            f"roll the stuck {r['name']} back to revision {prev}",
                        ),
                        disruptive=True,
                        where="control",
                    )
                )
            else:
                changes.append(
                    CommandChange(
                        f"helm -n {ns} uninstall {name}",
                        T(f"卸载从未成功安装的 {r['name']}", f"uninstall {r['name']}, never installed successfully"),
                        disruptive=True,
                        where="control",
                    )
                )
        changes.append(
            CommandChange(
                f"helmfile -f {shlex.quote(f)} -l name={name} sync",
                T(f"重新同步 {r['name']}", f"sync {r['name']} again"),
                where="control",
            )
        )
    # the steps left to a person stay beside the changes: the rule judges every release, so it passes only once
    # they are done too, and the outcome must say which (dropping them read as a bare "still failing")
    return Fix(changes, manual=manual)
