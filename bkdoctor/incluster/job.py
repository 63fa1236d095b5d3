"""bkdoctor inside the cluster: `bkdoctor cluster-job` renders (and with --apply creates) the manifests.

Two modes:

- `job`: a Job running `bkdoctor scan --rule cluster --json -` with a ServiceAccount bound to a read-only
  ClusterRole; the API is reached with the in-cluster config (`facts.cluster.configure` picks it up when
  KUBERNETES_SERVICE_HOST is set). The report is the Job's pod log (`kubectl logs job/bkdoctor-scan`, or
  `read_job_report()`).
- `daemonset`: a DaemonSet whose pod on each node runs the host probe (`facts.probe`) against the node's root
  filesystem, mounted read-only at /host, and prints the framed probe output to its log, encrypted to a public key
  whose private key stays on the control machine (`seal`: a pod log is read by `pods/log` holders and log
  collectors). The control machine then reads every pod's log through the API (`collect_daemonset()`: no SSH),
  decrypts it and gets one `TargetState` per Node, which `engine.scan(..., preloaded_hosts=...)` evaluates like a
  live scan.

RBAC choice (see `reader_rules`): the ClusterRole grants get/list on exactly what the cluster rules read, and
ConfigMaps only by name (the four the rules read; RBAC authorises a list whose fieldSelector is
`metadata.name=<name>` against resourceNames, which is how `facts.cluster` reads them). Secrets are NOT granted by
default: RBAC cannot filter by label, so the only grant that lets helm's `owner=helm` Secrets be listed is
`list` on every Secret of every namespace, which hands the Job's token every password BlueKing keeps in Secrets.
The rules that need helm release Secrets (`helm_rule_ids()`: helm-releases, component-versions and FAQ
signatures that look at helm) are therefore left out of the in-cluster scan (`--skip` in the Job's args) and
run from the control machine (`bkdoctor scan --rule cluster` with an admin kubeconfig). `--helm-secrets` is the
explicit opt-in: cluster-wide `list` (no `get`, no `watch`) on Secrets, and the helm rules run in the Job.

DaemonSet (see `daemonset_manifest`): the probe runs as `chroot /host /bin/sh -s`, so every path, binary and
config it reads is the node's own (host's /bin/sh, iptables, systemctl, /etc/...), with
- hostPath `/` at /host, `readOnly: true`, `mountPropagation: HostToContainer` (mounts made on the node after the
  pod started, e.g. LocalPV binds, are seen). NOTE: before Kubernetes 1.30's `recursiveReadOnly`, read-only
  applies to the top mount only; submounts of the node (/data, /run, /boot...) stay writable through /host. The
  probe itself never writes (its writing sections, fio, and its network-measuring ones are not in the DaemonSet's
  script), and the container drops every capability but the four it needs;
- hostPID: `ps` lists the node's processes, and /proc/1 is the node's init: the `mountinfo` section reads
  /proc/1/mountinfo (the node's mount table) instead of /proc/self/mountinfo (the container's);
- hostNetwork: `iptables -S`, the sysctls under /proc/sys/net and `uname -n` are per network/UTS namespace;
- capabilities: drop ALL, add SYS_CHROOT (chroot), NET_ADMIN + NET_RAW (reading iptables), DAC_READ_SEARCH
  (root-only files); no privileged, no privilege escalation, read-only root filesystem, no API token mounted.
  seLinuxOptions type spc_t lets the probe read the node's files when SELinux is enforcing (which the probe then
  reports).

The nonce that frames the probe output is in the pod's env (BKDOCTOR_NONCE) next to the script (BKDOCTOR_PROBE):
the collector reads it back from each pod's spec, so pods of two DaemonSet revisions are each parsed with their own.
Anyone who can read the pod spec knows the nonce; forging a frame would still need write access to a file the
probe prints on the node (root on the node). Each `--apply` renders a fresh nonce, which also restarts the pods:
the probe runs once per container start, so `--apply` (or `kubectl rollout restart`) refreshes the facts.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any, Callable

from bkdoctor import __version__
from bkdoctor.facts.cluster import CONFIGMAP_NAMES, REQUEST_TIMEOUT, ClusterAccess, ClusterFacts, _reason
from bkdoctor.facts.host import DOCKER_FALLBACK_SECTIONS, HostFacts, sections_for
from bkdoctor.facts.probe import build_script, parse_output
from bkdoctor.model import K8S_ROLES, BadInput, FactUnavailable, Rule, T

DEFAULT_NAMESPACE = "bkdoctor"
DEFAULT_IMAGE = f"bkdoctor/bkdoctor:{__version__}"
SERVICE_ACCOUNT = "bkdoctor"
JOB_NAME = "bkdoctor-scan"
JOB_CONTAINER = "bkdoctor"
DAEMONSET_NAME = "bkdoctor-probe"
PROBE_CONTAINER = "probe"
HOST_ROOT = "/host"
HOST_ROOT_ENV = "BKDOCTOR_HOST_ROOT"  # where the wrapper finds the node's root (tests point it elsewhere)
FIELD_MANAGER = "bkdoctor"
MODES = ("job", "daemonset")

LABELS = {"app.kubernetes.io/name": "bkdoctor", "app.kubernetes.io/managed-by": "bkdoctor"}
PROBE_LABELS = {"app.kubernetes.io/name": "bkdoctor", "app.kubernetes.io/component": "probe"}
SCAN_LABELS = {"app.kubernetes.io/name": "bkdoctor", "app.kubernetes.io/component": "scan"}

# probe sections never shipped to the DaemonSet: fio writes a file; the others measure the network or a registry
# proxy (no node gets the registry-proxy role from its labels)
EXCLUDED_SECTIONS = frozenset(
    {"fio", "fio_fstype", "bandwidth", "endpoints", "registry_config", "registry_storage", "registry_http"}
)

# host/fleet rules whose facts cannot come from a pod log, with the reason
DAEMONSET_UNSUPPORTED: dict[str, T] = {
    "fleet-clock-skew": T(
        "DaemonSet 模式无法测量时钟偏差（探测在 Pod 启动时运行，日志没有往返时间）：请用 SSH 扫描",
        "clock skew cannot be measured in DaemonSet mode (the probe ran when its pod started; a log "
        "has no round trip): scan over SSH for it",
    ),
}

LOG_LIMIT = 64 * 1024 * 1024  # bytes of a probe pod's log read at most (a cut-off section is dropped, never a pass)
WAIT_S = 60.0  # how long the collector waits for probes that are still running

# The DaemonSet container's command: seal the probe's output to the control machine's public key (seal.py: only
# ciphertext reaches the pod log), run the probe from $BKDOCTOR_PROBE under chroot into the node's root with its
# stdout and stderr through `openssl enc`, then print a completion marker (with the probe's exit code), then idle (a
# DaemonSet pod must keep running). The image needs only /bin/sh and chroot: the probe and openssl are the node's.
# openssl missing or failing: one SEAL-ERROR line and no probe (fail closed). fd 3 carries the public key to
# pkeyutl and, later, the real stdout past the command substitution that collects the two exit codes on fd 4.
PROBE_WRAPPER = """\
root="${BKDOCTOR_HOST_ROOT:-/host}"
probe="$BKDOCTOR_PROBE"
unset BKDOCTOR_PROBE
m="@@BKD-$BKDOCTOR_NONCE"
rc=125
if ! k=$(chroot "$root" openssl rand -hex 32 2>/dev/null) || [ ${#k} -ne 64 ]; then
  printf '\\n%s:SEAL-ERROR:openssl-rand\\n' "$m"
elif ! ek=$(printf '%s' "$k" | { printf '%s\\n' "$BKDOCTOR_PUBKEY" | chroot "$root" openssl pkeyutl -encrypt -pubin \\
    -inkey /proc/self/fd/3 -pkeyopt rsa_padding_mode:oaep 3<&0 <&4 4<&- 2>/dev/null; } 4<&0 \\
    | chroot "$root" openssl base64 -A 2>/dev/null) || [ -z "$ek" ]; then
  printf '\\n%s:SEAL-ERROR:openssl-pkeyutl\\n' "$m"
else
  printf '\\n%s:SEALED:%s\\n' "$m" "$ek"
  exec 3>&1
  st=$( { { printf '%s' "$probe" | chroot "$root" /bin/sh -s 2>&1 3>&- 4>&-; echo "p $?" >&4; } \\
    | { BKD_K="$k" chroot "$root" openssl enc -aes-256-cbc -md sha256 -salt -a -pass env:BKD_K \\
        2>/dev/null >&3 3>&- 4>&-; echo "e $?" >&4; }; } 4>&1 )
  exec 3>&-
  set -- $st
  erc=125
  while [ $# -ge 2 ]; do
    case "$1" in p) rc=$2 ;; e) erc=$2 ;; esac
    shift 2
  done
  printf '%s:SEALED-END:%s\\n' "$m" "$erc"
fi
k=
printf '\\n%s:DONE:%s\\n' "$m" "$rc"
"""
KEEPALIVE = """\
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


# -- what runs where ------------------------------------------------------------------------------------------
def helm_rule_ids(rules: list[Rule] | tuple[Rule, ...] | None = None) -> list[str]:
    """Cluster rules that read helm release Secrets (left out of the Job unless --helm-secrets)."""
    from bkdoctor.scan.loader import all_rules

    return sorted(
        r.id
        for r in (rules if rules is not None else all_rules())
        if r.scope == "cluster" and "helm_releases" in r.facts
    )


def reader_rules(helm_secrets: bool = False) -> list[dict[str, Any]]:
    """The ClusterRole: get/list on what `facts.cluster` reads, nothing else (see the module docstring)."""
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [""],
            "resources": ["nodes", "pods", "services", "events", "persistentvolumes", "persistentvolumeclaims"],
            "verbs": ["get", "list"],
        },
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        # only the ConfigMaps the rules read, by name: their list is `fieldSelector=metadata.name=<name>`
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": list(CONFIGMAP_NAMES),
            "verbs": ["get", "list"],
        },
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]},
    ]
    if helm_secrets:
        # RBAC cannot select by label (owner=helm) and helm's Secret names carry the revision: the tightest grant
        # that lets helm releases be read is `list` on every Secret. No `get`, no `watch`.
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
    return rules


def job_args(helm_secrets: bool = False, domain: str | None = None) -> list[str]:
    """`bkdoctor` arguments of the Job's container."""
    args = ["scan", "--rule", "cluster", "--json", "-", "--no-history"]
    if domain:
        args += ["--domain", domain]
    if not helm_secrets:
        for rid in helm_rule_ids():
            args += ["--skip", rid]
    return args


def daemonset_rules(rules: list[Rule]) -> list[Rule]:
    """The selected rules minus those a DaemonSet log cannot answer (DAEMONSET_UNSUPPORTED)."""
    return [r for r in rules if r.id not in DAEMONSET_UNSUPPORTED]


def daemonset_sections() -> set[str]:
    """Probe sections of every host/fleet rule that applies to a master or a node (no measurement, no registry
    proxy), plus the docker CLI sections (the Engine API is not queried from the pod)."""
    from bkdoctor.scan.loader import all_rules

    facts = {
        f
        for r in all_rules()
        if r.scope in ("host", "fleet") and "slow" not in r.tags and r.applies_to(K8S_ROLES)
        for f in r.facts
    }
    return (sections_for(facts) | set(DOCKER_FALLBACK_SECTIONS)) - EXCLUDED_SECTIONS


def daemonset_params(domain: str | None) -> dict[str, str]:
    """The probe's parameters for a master/node (BK_DOMAIN, the names to resolve, the LocalPV dirs of the install
    dir here), as a direct scan gives them."""
    from bkdoctor.facts.host import probe_params
    from bkdoctor.inputs.inventory import HostSpec, local_inventory

    inv = local_inventory(domain)
    return probe_params(inv, HostSpec(name="node", address="", roles=K8S_ROLES))


def daemonset_script(nonce: str, sections: set[str] | None = None, params: dict[str, str] | None = None) -> str:
    """The probe script the DaemonSet runs under `chroot /host`: the ordinary probe, except that the mount table
    is the node's (/proc/1 with hostPID), not the container's."""
    sections = daemonset_sections() if sections is None else sections
    script, _ = build_script(sections, nonce=nonce, params=params)
    # the section (`__bkd_rd /proc/self/mountinfo`) and the file batch's list of what it reads (probe._file_batch)
    old, new = "/proc/self/mountinfo", "/proc/1/mountinfo"
    if "mountinfo" in sections:
        if script.count("__bkd_rd " + old + "\n") != 1 or script.count(old) != 2:
            raise RuntimeError("the probe's mountinfo section changed: update incluster.daemonset_script")
        script = script.replace(old, new)
    return script


# -- manifests ------------------------------------------------------------------------------------------------
_NS_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
# a Node's or Pod's name as the API server lets it be (RFC 1123 subdomain): one that is not comes from a hostile or
# broken API server, and is neither a target's name nor a piece of a request's path (`../secrets/x`)
_OBJ_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
# --image: the OCI reference charset (registry[:port]/path[:tag][@digest]), at most 512 characters. It is printed in
# the manifest and in the apply's messages: a bidi override or an escape there showed another image than the one run.
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}\Z")


def check_namespace(namespace: Any, flag: str = "--namespace") -> str:
    """A namespace bkdoctor renders into a manifest or reads pods from (an API path): a lowercase DNS-1123 label."""
    if not isinstance(namespace, str) or not _NS_RE.match(namespace) or len(namespace) > 63:
        shown = str(namespace)[:80]
        raise BadInput(
            T(
                f"{flag} {shown!r}: 不是有效的命名空间名称（小写 DNS-1123 标签）",
                f"{flag} {shown!r}: not a valid namespace name (lowercase DNS-1123 label)",
            )
        )
    return namespace


def reader_name(namespace: str) -> str:
    """ClusterRole/ClusterRoleBinding name (cluster-scoped: one per namespace bkdoctor is installed in)."""
    return f"bkdoctor-reader-{namespace}"


def render(
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    mode: str = "job",
    *,
    helm_secrets: bool = False,
    domain: str | None = None,
    nonce: str | None = None,
    public_key: str | None = None,
) -> list[dict[str, Any]]:
    """The objects, in the order they are applied. The DaemonSet mode makes a key pair and keeps its private key on
    this machine (`seal.new_key`) unless `public_key` is given: its pods' logs can only be read from here."""
    check_namespace(namespace)
    if not isinstance(image, str) or not _IMAGE_RE.match(image):
        shown = str(image)[:80]  # repr: a bidi override or an escape is shown escaped, never raw
        raise BadInput(
            T(
                f"--image {shown!r}: 不是镜像引用（字母、数字和 '._-/:@'，以字母或数字开头）",
                f"--image {shown!r}: not an image reference (letters, digits and '._-/:@', starting with a letter "
                f"or digit)",
            )
        )
    if mode not in MODES:
        raise BadInput(
            T(f"--mode {mode!r}: 应为 {', '.join(MODES)} 之一", f"--mode {mode!r}: one of {', '.join(MODES)}")
        )
    labels = dict(LABELS)
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": reader_name(namespace),
                "labels": labels,
                "annotations": {"bkdoctor.io/secrets": "list (helm releases)" if helm_secrets else "none"},
            },
            "rules": reader_rules(helm_secrets),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": reader_name(namespace), "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader_name(namespace)},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
    ]
    if mode == "job":
        objs.append(job_manifest(namespace, image, helm_secrets=helm_secrets, domain=domain))
    else:
        from bkdoctor.incluster import seal

        public_key = public_key or seal.new_key(namespace)
        objs.append(daemonset_manifest(namespace, image, nonce=nonce, domain=domain, public_key=public_key))
    return objs


def job_manifest(
    namespace: str, image: str, *, helm_secrets: bool = False, domain: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": JOB_NAME, "namespace": namespace, "labels": {**LABELS, **SCAN_LABELS}},
        "spec": {
            "backoffLimit": 0,  # one run: a failed pod means findings at or above --fail-on (exit 1), not a retry
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {"labels": dict(SCAN_LABELS)},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": True,
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
                    "containers": [
                        {
                            "name": JOB_CONTAINER,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["bkdoctor"],
                            "args": job_args(helm_secrets, domain),
                            "env": [{"name": "HOME", "value": "/tmp"}, {"name": "LANG", "value": "C.UTF-8"}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def daemonset_manifest(
    namespace: str, image: str, *, public_key: str, nonce: str | None = None, domain: str | None = None
) -> dict[str, Any]:
    """The DaemonSet. `public_key` (PEM, `seal.new_key`) is the only key in it: the pods seal the probe output to it."""
    from bkdoctor.incluster import seal

    seal.key_id(public_key)  # a PEM public key, or SealError
    nonce = nonce or secrets.token_hex(8)
    if not re.fullmatch(r"[0-9a-f]{8,64}", nonce):
        raise BadInput(
            T("探测 nonce 须为 8-64 位小写十六进制数字", "the probe nonce must be 8-64 lowercase hex digits")
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET_NAME, "namespace": namespace, "labels": {**LABELS, **PROBE_LABELS}},
        "spec": {
            "selector": {"matchLabels": dict(PROBE_LABELS)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {
                "metadata": {"labels": dict(PROBE_LABELS)},
                "spec": {
                    "automountServiceAccountToken": False,  # the probe never talks to the API
                    "enableServiceLinks": False,
                    "hostPID": True,
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "tolerations": [{"operator": "Exists"}],  # every node, masters and NotReady ones included
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": PROBE_CONTAINER,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", PROBE_WRAPPER + KEEPALIVE],
                            "env": [
                                {"name": "BKDOCTOR_NONCE", "value": nonce},
                                {"name": HOST_ROOT_ENV, "value": HOST_ROOT},
                                {"name": seal.PUBKEY_ENV, "value": public_key},
                                {
                                    "name": "BKDOCTOR_PROBE",
                                    "value": daemonset_script(nonce, params=daemonset_params(domain)),
                                },
                            ],
                            "securityContext": {
                                "runAsUser": 0,
                                "privileged": False,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {
                                    "drop": ["ALL"],
                                    "add": ["SYS_CHROOT", "DAC_READ_SEARCH", "NET_ADMIN", "NET_RAW"],
                                },
                                "seLinuxOptions": {"type": "spc_t"},
                            },
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "volumeMounts": [
                                {
                                    "name": "host",
                                    "mountPath": HOST_ROOT,
                                    "readOnly": True,
                                    "mountPropagation": "HostToContainer",
                                }
                            ],
                        }
                    ],
                    "volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}],
                },
            },
        },
    }


_HEADER = """\
# bkdoctor {version} in-cluster manifests (mode: {mode}, namespace: {namespace}); `bkdoctor cluster-job --help`.
# RBAC: read-only (get/list) on what the cluster rules read; ConfigMaps only by name.
# Secrets: {secrets}
{mode_note}"""
_SECRETS_NONE = (
    "none. RBAC cannot filter by label, so reading helm's release Secrets would mean listing every\n"
    "#   Secret (every password in them). The helm rules are skipped in the Job instead: run them from\n"
    "#   the control machine, or render with --helm-secrets."
)
_SECRETS_LIST = (
    "cluster-wide `list` (--helm-secrets): the ServiceAccount can read the data of EVERY Secret,\n"
    "#   not only helm's release Secrets (RBAC cannot filter by label). No get, no watch."
)
_JOB_NOTE = "# Report: kubectl -n {namespace} logs job/" + JOB_NAME + " (the JSON report, then the summary).\n"
_DS_NOTE = (
    "# DaemonSet: the host probe under `chroot /host`, the node's / mounted read-only (top mount only before\n"
    "#   K8s 1.30 recursiveReadOnly); hostPID, hostNetwork; capabilities SYS_CHROOT, DAC_READ_SEARCH,\n"
    "#   NET_ADMIN, NET_RAW only; no API token. The control machine reads the facts from the pods' logs (the\n"
    "#   ServiceAccount above may be used for that: list nodes/pods, get pods/log). The logs are encrypted by the\n"
    "#   node's openssl to BKDOCTOR_PUBKEY; its private key stays on the machine that rendered this file\n"
    "#   ($XDG_DATA_HOME/bkdoctor/daemonset-keys): run `bkdoctor scan --from-daemonset` there.\n"
)


class _Dumper:
    """A YAML dumper that writes multi-line strings (the probe script) as literal blocks."""

    @staticmethod
    def dump(objs: list[dict[str, Any]]) -> str:
        import yaml

        class D(yaml.SafeDumper):
            def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: plain, kubectl-like YAML
                return True

        def str_rep(dumper: Any, data: str) -> Any:
            if "\n" in data:
                return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
            return dumper.represent_scalar("tag:yaml.org,2002:str", data)

        D.add_representer(str, str_rep)
        return yaml.dump_all(objs, Dumper=D, sort_keys=False, allow_unicode=True, width=120, explicit_start=True)


def to_yaml(objs: list[dict[str, Any]], *, helm_secrets: bool = False) -> str:
    ns = next((o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"), "?")
    mode = "daemonset" if any(o["kind"] == "DaemonSet" for o in objs) else "job"
    header = _HEADER.format(
        version=__version__,
        mode=mode,
        namespace=ns,
        secrets=_SECRETS_LIST if helm_secrets else _SECRETS_NONE,
        mode_note=(_DS_NOTE if mode == "daemonset" else _JOB_NOTE.format(namespace=ns)),
    )
    return header + _Dumper.dump(objs)


# -- API ----------------------------------------------------------------------------------------------------
_PATHS = {
    "Namespace": ("/api/v1/namespaces", False),
    "ServiceAccount": ("/api/v1/namespaces/{ns}/serviceaccounts", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1/clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", False),
    "Job": ("/apis/batch/v1/namespaces/{ns}/jobs", True),
    "DaemonSet": ("/apis/apps/v1/namespaces/{ns}/daemonsets", True),
    # cluster-job --schedule (bkdoctor/incluster/cronjob.py)
    "Role": ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", True),
    "PersistentVolumeClaim": ("/api/v1/namespaces/{ns}/persistentvolumeclaims", True),
    "CronJob": ("/apis/{api}/namespaces/{ns}/cronjobs", True),
}


def _request(
    access: ClusterAccess,
    method: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str | None = None,
) -> Any:
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    # the client serialises the body itself (json.dumps) for JSON and apply-patch+yaml content types: pass dicts
    resp = access.api_client.call_api(
        path,
        method,
        query_params=list(query or []),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=REQUEST_TIMEOUT,
    )
    data = resp.data
    return json.loads(data) if data else {}


def _api_message(e: Exception) -> str:
    body = getattr(e, "body", None)
    if body:
        try:
            msg = json.loads(body).get("message")
            if msg:
                return f"HTTP {getattr(e, 'status', '?')}: {msg}"
        except (ValueError, AttributeError):
            pass
    return _reason(e).en


def _collection(obj: dict[str, Any]) -> str:
    coll, namespaced = _PATHS[obj["kind"]]
    return coll.format(ns=obj["metadata"].get("namespace"), api=obj.get("apiVersion")) if namespaced else coll


def _ref(obj: dict[str, Any]) -> str:
    md = obj["metadata"]
    return f"{obj['kind'].lower()}/{md.get('name') or md.get('generateName', '') + '*'}" + (
        f" -n {md['namespace']}" if md.get("namespace") else ""
    )


def _server_apply(access: ClusterAccess, obj: dict[str, Any], dry_run: bool) -> Any:
    q: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    if dry_run:
        q.append(("dryRun", "All"))
    return _request(
        access,
        "PATCH",
        f"{_collection(obj)}/{obj['metadata']['name']}",
        q,
        body=obj,
        content_type="application/apply-patch+yaml",
    )


def _exists(access: ClusterAccess, path: str) -> bool:
    try:
        _request(access, "GET", path)
        return True
    except Exception as e:
        if getattr(e, "status", None) == 404:
            return False
        raise


def dry_run(access: ClusterAccess, objs: list[dict[str, Any]]) -> list[str]:
    """Server-side dry run (dryRun=All) of every object; the errors ('' list when all pass). A Job is dry-run
    under a generated name (a Job is re-created on apply, and a dry-run create of an existing name is a 409)."""
    errors = []
    for o in objs:
        try:
            if o["kind"] == "Job":
                body = json.loads(json.dumps(o))
                body["metadata"].pop("name")
                body["metadata"]["generateName"] = f"{o['metadata']['name']}-dryrun-"
                _request(
                    access,
                    "POST",
                    _collection(o),
                    [("dryRun", "All"), ("fieldManager", FIELD_MANAGER)],
                    body=body,
                    content_type="application/json",
                )
            else:
                _server_apply(access, o, dry_run=True)
        except Exception as e:
            errors.append(f"{_ref(o)}: {_api_message(e)}")
    return errors


def apply(access: ClusterAccess, objs: list[dict[str, Any]], say: Callable[[str], None] = lambda s: None) -> None:
    """Dry-run everything server-side, then create/update (server-side apply, field manager `bkdoctor`).

    A namespaced object can only be dry-run once its namespace exists: a missing Namespace of the set is created
    first (after its own dry run passed), the rest dry-run, and nothing else is changed unless all pass. The Job is
    deleted and created again (a Job's template is immutable and a finished Job does not run again)."""
    cluster_scoped = [o for o in objs if not _PATHS[o["kind"]][1]]
    namespaced = [o for o in objs if _PATHS[o["kind"]][1]]
    errors = dry_run(access, cluster_scoped)
    if errors:
        raise BadInput(
            T(
                "服务端试运行（server-side dry run）失败，未做任何改动: " + "; ".join(errors),
                "server-side dry run failed, nothing was changed: " + "; ".join(errors),
            )
        )
    try:
        wanted = sorted({o["metadata"]["namespace"] for o in namespaced})
        missing = [ns for ns in wanted if not _exists(access, f"/api/v1/namespaces/{ns}")]
    except Exception as e:
        raise BadInput(
            T(f"无法读取命名空间: {_api_message(e)}", f"cannot read namespaces: {_api_message(e)}")
        ) from None
    created_ns = []
    for ns in missing:
        ns_obj = next((o for o in cluster_scoped if o["kind"] == "Namespace" and o["metadata"]["name"] == ns), None)
        if ns_obj is None:
            raise BadInput(T(f"命名空间 {ns} 不存在", f"namespace {ns} does not exist"))
        try:
            _server_apply(access, ns_obj, dry_run=False)
        except Exception as e:
            raise BadInput(
                T(f"{_ref(ns_obj)}: 创建失败: {_api_message(e)}", f"{_ref(ns_obj)}: {_api_message(e)}")
            ) from None
        created_ns.append(ns)
        say(f"{_ref(ns_obj)} created (its objects can only be dry-run inside it)")
    errors = dry_run(access, namespaced)
    if errors:
        kept = f" (namespace {', '.join(created_ns)} was created and is kept)" if created_ns else ""
        raise BadInput(
            T(
                "服务端试运行（server-side dry run）失败，未再做其他改动"
                + (f"（已创建的命名空间 {', '.join(created_ns)} 予以保留）" if created_ns else "")
                + ": "
                + "; ".join(errors),
                "server-side dry run failed, nothing else was changed" + kept + ": " + "; ".join(errors),
            )
        )
    say(f"server-side dry run passed ({len(objs)} objects)")
    for o in objs:
        try:
            if o["kind"] == "Job":
                path = f"{_collection(o)}/{o['metadata']['name']}"
                try:
                    _request(access, "DELETE", path, [("propagationPolicy", "Background")])
                    say(f"{_ref(o)} deleted (a Job runs once: it is created again)")
                    _wait_gone(access, path)
                except Exception as e:
                    if getattr(e, "status", None) != 404:
                        raise
                _request(
                    access,
                    "POST",
                    _collection(o),
                    [("fieldManager", FIELD_MANAGER)],
                    body=o,
                    content_type="application/json",
                )
                say(f"{_ref(o)} created")
            else:
                _server_apply(access, o, dry_run=False)
                say(f"{_ref(o)} applied")
        except Exception as e:
            raise BadInput(T(f"{_ref(o)}: 提交失败: {_api_message(e)}", f"{_ref(o)}: {_api_message(e)}")) from None


def _wait_gone(access: ClusterAccess, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _exists(access, path):
        if time.monotonic() > deadline:
            raise BadInput(
                T(f"{path} 在 {timeout:.0f} 秒后仍在删除中", f"{path} is still being deleted after {timeout:.0f} s")
            )
        time.sleep(0.2)


# -- the Job's report -----------------------------------------------------------------------------------------
def read_job_report(access: ClusterAccess, namespace: str = DEFAULT_NAMESPACE, job: str = JOB_NAME) -> dict[str, Any]:
    """The JSON report printed by the Job's (newest) pod. The log also holds the terminal summary (stderr): the
    report is the JSON document that starts on the first line beginning with '{'."""
    try:
        j = _request(access, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}")
        sel = ((j.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not sel:
            raise BadInput(T(f"Job {namespace}/{job} 没有 selector", f"job {namespace}/{job} has no selector"))
        q = [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(sel.items())))]
        pods = _request(access, "GET", f"/api/v1/namespaces/{namespace}/pods", q).get("items") or []
    except BadInput:
        raise
    except Exception as e:
        raise BadInput(
            T(
                f"Job {namespace}/{job}: 无法读取它的 Pod: {_api_message(e)}",
                f"job {namespace}/{job}: {_api_message(e)}",
            )
        ) from None
    if not pods:
        raise BadInput(T(f"Job {namespace}/{job} 还没有 Pod", f"job {namespace}/{job} has no pod (yet)"))
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
    name = pod["metadata"]["name"]
    try:
        text = ClusterFacts(access)._get(
            f"/api/v1/namespaces/{namespace}/pods/{name}/log",
            {"container": JOB_CONTAINER, "limitBytes": LOG_LIMIT},
            raw=True,
        )
    except Exception as e:
        raise BadInput(
            T(f"Pod {namespace}/{name} 的日志: {_api_message(e)}", f"log of pod {namespace}/{name}: {_api_message(e)}")
        ) from None
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    m = re.search(r"^\{", text, re.M)
    if not m:
        raise BadInput(
            T(
                f"Pod {namespace}/{name} 没有输出报告: {text.strip()[-300:]!r}",
                f"pod {namespace}/{name} printed no report: {text.strip()[-300:]!r}",
            )
        )
    try:
        doc, _ = json.JSONDecoder().raw_decode(text, m.start())
    except ValueError as e:
        raise BadInput(
            T(
                f"Pod {namespace}/{name}: 报告不是完整的 JSON（{e}）",
                f"pod {namespace}/{name}: the report is not complete JSON ({e})",
            )
        ) from None
    return doc


# -- DaemonSet collection -------------------------------------------------------------------------------------
def _probe_env(pod: dict[str, Any], name: str) -> str | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == PROBE_CONTAINER:
            for e in c.get("env") or []:
                if e.get("name") == name and isinstance(e.get("value"), str):
                    return e["value"]
    return None


def _probe_nonce(pod: dict[str, Any]) -> str | None:
    nonce = _probe_env(pod, "BKDOCTOR_NONCE")
    return nonce if nonce is not None and re.fullmatch(r"[0-9a-f]{8,64}", nonce) else None


def _owned_by(pod: dict[str, Any], daemonset: str) -> bool:
    return any(
        r.get("kind") == "DaemonSet" and r.get("name") == daemonset
        for r in (pod.get("metadata") or {}).get("ownerReferences") or []
    )


def _pod_state(pod: dict[str, Any]) -> str | None:
    """None when the probe container runs (or ran), else why not."""
    st = pod.get("status") or {}
    for cs in st.get("containerStatuses") or []:
        if cs.get("name") != PROBE_CONTAINER:
            continue
        state = cs.get("state") or {}
        if state.get("running") or state.get("terminated"):
            return None
        w = state.get("waiting") or {}
        return f"container {PROBE_CONTAINER} waiting: {w.get('reason', '?')} {w.get('message', '')}".strip()
    return f"pod phase {st.get('phase') or 'unknown'}, container {PROBE_CONTAINER} not started"


def collect_daemonset(
    access: ClusterAccess,
    namespace: str = DEFAULT_NAMESPACE,
    daemonset: str = DAEMONSET_NAME,
    *,
    wait_s: float = WAIT_S,
) -> list[Any]:
    """One `TargetState` per Node (name = Node name, address = InternalIP, roles master/node from the labels),
    its `HostFacts` parsed from the log of the DaemonSet's pod on that Node (nonce from the pod's env).

    A Node without a (started) probe pod, or whose log holds no probe output, is an unreachable target with the
    reason, so every Node is reported. Probes still running (no completion marker yet) are waited for up to
    `wait_s`; a probe cut off keeps the sections it finished (the others' rules report `error`). The clock offset
    is not measurable from a log (`DAEMONSET_UNSUPPORTED`). Needs: list nodes, list pods and get pods/log in
    `namespace` (the ClusterRole of `cluster-job` grants them)."""
    from bkdoctor.facts.k8s import is_master, md, node_internal_ip
    from bkdoctor.incluster import seal
    from bkdoctor.safe.secrets import mask_text
    from bkdoctor.scan.engine import TargetState

    facts = ClusterFacts(access)
    try:
        nodes = facts.get("nodes")
        sel = ",".join(f"{k}={v}" for k, v in sorted(PROBE_LABELS.items()))
        pods = [
            p
            for p in facts._list(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": sel})
            if _owned_by(p, daemonset)
        ]
    except FactUnavailable as e:
        raise BadInput(T(f"DaemonSet 采集: {e.reason.zh}", f"daemonset collection: {e.reason.en}")) from None
    except Exception as e:
        raise BadInput(T(f"DaemonSet 采集: {_api_message(e)}", f"daemonset collection: {_api_message(e)}")) from None
    if not pods:
        raise BadInput(
            T(
                f"没有 DaemonSet {namespace}/{daemonset} 的 Pod: 请用 "
                f"`bkdoctor cluster-job --mode daemonset --namespace {namespace} --apply` 创建",
                f"no pod of DaemonSet {namespace}/{daemonset}: create it with "
                f"`bkdoctor cluster-job --mode daemonset --namespace {namespace} --apply`",
            )
        )
    by_node: dict[str, dict[str, Any]] = {}
    for p in sorted(
        pods,
        key=lambda p: (p["metadata"].get("deletionTimestamp") is None, p["metadata"].get("creationTimestamp") or ""),
    ):
        node = (p.get("spec") or {}).get("nodeName")
        if isinstance(node, str) and _OBJ_NAME_RE.match(node) and _OBJ_NAME_RE.match(str(md(p).get("name") or "")):
            by_node[node] = p  # the newest pod not being deleted wins
    states: dict[str, Any] = {}
    logs: dict[str, bytes] = {}
    pending: dict[str, tuple[dict[str, Any], str]] = {}
    t0 = time.monotonic()
    for n in sorted(nodes, key=lambda n: str(md(n).get("name") or "")):
        name = md(n).get("name")
        if not isinstance(name, str) or not _OBJ_NAME_RE.match(name):
            continue  # not a Node the API server would keep (see _OBJ_NAME_RE)
        st = TargetState(
            name=name, kind="host", address=node_internal_ip(n), roles=("master",) if is_master(n) else ("node",)
        )
        states[name] = st
        pod = by_node.get(name)
        if pod is None:
            st.error = f"no pod of DaemonSet {namespace}/{daemonset} on this node (not scheduled, or a taint?)"
            continue
        pname = pod["metadata"]["name"]
        why = _pod_state(pod)
        nonce = _probe_nonce(pod)
        if why:
            st.error = f"probe pod {namespace}/{pname}: {why}"
        elif nonce is None:
            st.error = f"probe pod {namespace}/{pname} has no BKDOCTOR_NONCE in its env (not a bkdoctor probe pod?)"
        elif not _probe_env(pod, seal.PUBKEY_ENV):
            # an older bkdoctor's pod prints the probe in plain text: not read, replaced by re-applying
            st.error_t = T(
                f"探测 Pod {namespace}/{pname} 的环境中没有 {seal.PUBKEY_ENV}（旧版 bkdoctor 创建，其日志是明文）："
                f"请用 `bkdoctor cluster-job --mode daemonset --namespace {namespace} --apply` 重新创建",
                f"probe pod {namespace}/{pname} has no {seal.PUBKEY_ENV} in its env (made by an older bkdoctor, "
                f"its log is plain text): re-create it with "
                f"`bkdoctor cluster-job --mode daemonset --namespace {namespace} --apply`",
            )
            st.error = st.error_t.en
        else:
            pending[name] = (pod, nonce)
    deadline = time.monotonic() + max(0.0, wait_s)
    while pending:
        for name, (pod, nonce) in list(pending.items()):
            pname = pod["metadata"]["name"]
            try:
                data = facts._get(
                    f"/api/v1/namespaces/{namespace}/pods/{pname}/log",
                    {"container": PROBE_CONTAINER, "limitBytes": LOG_LIMIT},
                    raw=True,
                )
                logs[name] = data if isinstance(data, bytes) else str(data).encode()
            except Exception as e:
                states[name].error = f"log of probe pod {namespace}/{pname}: {_api_message(e)}"
                del pending[name]
                continue
            if f"\n@@BKD-{nonce}:DONE:".encode() in logs[name]:
                del pending[name]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    for name, st in states.items():
        if st.error is not None or name not in logs:
            continue
        pod, nonce = by_node[name], _probe_nonce(by_node[name]) or ""
        pname = pod["metadata"]["name"]
        try:
            plain = seal.unseal(logs[name], nonce, seal.load_key(namespace, _probe_env(pod, seal.PUBKEY_ENV) or ""))
        except seal.SealError as e:
            st.error_t = T(f"探测 Pod {namespace}/{pname}: {e.text.zh}", f"probe pod {namespace}/{pname}: {e.text.en}")
            st.error = st.error_t.en
            continue
        parsed = parse_output(plain, nonce) if plain is not None else {}
        if not parsed:
            # the log should hold nothing but markers and ciphertext; masked all the same (an error is reported)
            text = logs[name][-4096:].decode("utf-8", "replace")
            if len(logs[name]) > 4096:
                text = text.partition("\n")[2]  # a line cut at the start could hide a key= from the masking
            tail = mask_text(text).strip()[-300:]
            st.error = f"probe pod {namespace}/{pname} printed no probe output: {tail!r}"
            continue
        st.facts = HostFacts(
            parsed,
            docker_api=None,
            docker_api_error=None,
            extra={"clock_offset": FactUnavailable(DAEMONSET_UNSUPPORTED["fleet-clock-skew"], status="skip")},
        )
        st.reachable = True
        st.gather_s = time.monotonic() - t0
    return list(states.values())


def daemonset_scan_inputs(
    access: ClusterAccess,
    inv: Any,
    rules: list[Rule],
    namespace: str = DEFAULT_NAMESPACE,
    daemonset: str = DAEMONSET_NAME,
) -> tuple[list[Rule], list[Any]]:
    """For `scan --from-daemonset`: (rules to evaluate, preloaded host targets); `inv.hosts` becomes the Nodes."""
    from bkdoctor.inputs.inventory import HostSpec

    targets = collect_daemonset(access, check_namespace(namespace, "--from-daemonset"), daemonset)
    inv.hosts = [HostSpec(name=t.name, address=t.address or "", roles=t.roles) for t in targets]
    return daemonset_rules(rules), targets
