import shlex

from bkdoctor.fixer import CommandChange, Plan, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(id="helm-releases", rule="helm-releases", scope="cluster",
                          title=T("处理卡住的 release 版本后重新同步该 release", "deal with the stuck revision, then sync that release again"))

# which helmfile of the install dir declares a release (guide §四–§十二)
FILES = {"ingress-nginx": "00-ingress-nginx.yaml.gotmpl", "localpv": "00-localpv.yaml.gotmpl",
         "bk-mysql": "base-storage.yaml.gotmpl", "bk-redis": "base-storage.yaml.gotmpl", "bk-rabbitmq": "base-storage.yaml.gotmpl",
         "bk-mongodb": "base-storage.yaml.gotmpl", "bk-elastic": "base-storage.yaml.gotmpl", "bk-zookeeper": "base-storage.yaml.gotmpl",
         "bk-etcd": "base-storage.yaml.gotmpl", "bk-itsm": "04-saas.yaml.gotmpl", "bk-sops": "04-saas.yaml.gotmpl",
         "bk-nodeman": "04-saas.yaml.gotmpl", "bk-monitor": "04-bkmonitor.yaml.gotmpl", "bk-log-search": "04-bklog-search.yaml.gotmpl",
         "bk-log-collector": "04-bklog-collector.yaml.gotmpl", "bcs-services-stack": "03-bcs.yaml.gotmpl"}


def _file(name):
    return FILES.get(name, "base-blueking.yaml.gotmpl" if name.startswith("bk-") else None)


def plan(facts, ctx):
    changes, manual = [], []
    for r in facts.get("helm_releases"):
        if r["status"] in ("deployed", "superseded"):
            continue
        ns, name = shlex.quote(r["namespace"]), shlex.quote(r["name"])
        f = _file(r["name"])
        if f is None:
            manual.append(f"helm -n {ns} history {name}  # which helmfile declares this release?")
            continue
        if r["status"].startswith("pending-"):
            # an interrupted operation: helm refuses every other one until this revision is settled
            prev = r["revision"] - 1
            if prev >= 1 and r.get("revisions", 1) > 1:
                changes.append(CommandChange(f"helm -n {ns} rollback {name} {prev}",
                                             T(f"回滚卡住的 {r['name']} 到第 {prev} 版", f"roll the stuck {r['name']} back to revision {prev}"),
                                             disruptive=True, where="control"))
            else:
                changes.append(CommandChange(f"helm -n {ns} uninstall {name}",
                                             T(f"卸载从未成功安装的 {r['name']}", f"uninstall {r['name']}, never installed successfully"),
                                             disruptive=True, where="control"))
        changes.append(CommandChange(f"helmfile -f {shlex.quote(f)} -l name={name} sync",
                                     T(f"重新同步 {r['name']}", f"sync {r['name']} again"), where="control"))
    return Plan("helm-releases", ctx.target, "helm-releases", changes, manual=manual if not changes else [])
