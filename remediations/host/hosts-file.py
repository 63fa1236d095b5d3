from bkdoctor.fix.edits import EditError, hosts_set
from bkdoctor.fix.fixkit import check_domain, file_text
from bkdoctor.fix.plan import FileChange, Fix, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="hosts-file",
    title=T("在 /etc/hosts 的标记块中写入蓝鲸域名", "write the BlueKing names into a marked block of /etc/hosts"),
)


def plan(facts, ctx):
    from bkdoctor.scan.rulekit import hosts_names, ingress_targets

    check_domain(ctx.domain)
    names, extra = hosts_names(ctx)
    want, _source = ingress_targets(ctx)
    manual = []
    entries = []
    if want:
        entries.append((want[0], names))
    else:
        # the guide's one lookup (§四.6.3 / §七.2.2.1); operators' machines use the pod's hostIP instead (§六.4.1)
        manual.append(
            "IP1=$(kubectl get svc -A -l app.kubernetes.io/instance=ingress-nginx "
            "-o jsonpath='{.items[0].spec.clusterIP}')  # then set ingress_ip: in the inventory and rerun"
        )
    api = ctx.first_master
    if api:
        entries.append((api, list(extra)))
    if not entries:
        return Fix(manual=manual)
    import ipaddress

    for ip, _names in entries:  # addresses come from the cluster's API and the inventory: only an IP goes in
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return Fix(manual=[f"# not an IP address, not written into /etc/hosts: {ip[:60]!r}"])
    raw, text = file_text(facts, "etc_hosts", "/etc/hosts")
    try:
        new = hosts_set(text or "", entries)
    except EditError as e:
        # never guess where a half-edited block ends: the person who edited it decides
        return Fix(manual=[f"# /etc/hosts: {e}", "vi /etc/hosts"], refused=True)
    changes = [FileChange("/etc/hosts", raw, new.encode())] if new != (text or "") else []
    # the names not fixable yet (no ingress address known) stay manual
    return Fix(changes, manual=manual if not changes else [])
