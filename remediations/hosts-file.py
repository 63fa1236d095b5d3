from bkdoctor.edits import EditError, hosts_set
from bkdoctor.fixer import FileChange, Plan, Remediation, check_domain, file_text
from bkdoctor.model import T

REMEDIATION = Remediation(id="hosts-file", rule="hosts-file",
                          title=T("在 /etc/hosts 的标记块中写入蓝鲸域名", "write the BlueKing names into a marked block of /etc/hosts"))


def plan(facts, ctx):
    th = ctx.thresholds
    names = [f"{p}.{check_domain(ctx.domain)}" if p else ctx.domain for p in th["hosts_names"]]
    manual = []
    entries = []
    if ctx.ingress_ip:
        entries.append((ctx.ingress_ip, names))
    else:
        manual.append("IP1=$(kubectl get svc -A --field-selector metadata.name=ingress-nginx-controller "
                      "-o jsonpath='{.items[0].spec.clusterIP}')  # then set ingress_ip: in the inventory and rerun")
    api = ctx.first_master
    if api:
        entries.append((api, list(th["hosts_extra_names"])))
    if not entries:
        return Plan("hosts-file", ctx.target, "hosts-file", [], manual=manual)
    raw, text = file_text(facts, "etc_hosts", "/etc/hosts")
    try:
        new = hosts_set(text or "", entries)
    except EditError as e:
        # never guess where a half-edited block ends: the person who edited it decides
        return Plan("hosts-file", ctx.target, "hosts-file", [], manual=[f"# /etc/hosts: {e}", "vi /etc/hosts"])
    changes = [FileChange("/etc/hosts", raw, new.encode())] if new != (text or "") else []
    # the names not fixable yet (no ingress address known) stay manual
    return Plan("hosts-file", ctx.target, "hosts-file", changes, manual=manual if not changes else [])
