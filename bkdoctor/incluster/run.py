"""The `cluster-job` command: render the manifests that run bkdoctor inside the cluster (Job, DaemonSet or CronJob,
bkdoctor.incluster.job / .cronjob), write them, or create them with --apply. Imported only when it runs."""

from __future__ import annotations

import shlex
import sys

from bkdoctor.model import BadInput, T
from bkdoctor.safe.terminal import clean, safe_console


def run_cluster_job(
    namespace: str,
    image: str | None,
    mode: str,
    helm_secrets: bool,
    domain: str | None,
    do_apply: bool,
    kubeconfig: str | None,
    kube_context: str | None,
    out: str | None,
    schedule: str | None = None,
    history_kind: str = "configmap",
    storage_class: str | None = None,
) -> None:
    """`bkdoctor cluster-job`."""
    from bkdoctor.incluster import job as incluster
    from bkdoctor.inputs.targets import cluster_access
    from bkdoctor.safe.outfiles import write_atomic

    access = None
    if schedule is not None:
        from bkdoctor.incluster import cronjob

        if mode != "job":
            raise BadInput(
                T(
                    "--schedule 运行的是集群扫描（--mode job），不是 DaemonSet",
                    "--schedule runs the cluster scan (--mode job), not the DaemonSet",
                )
            )
        api_version = "batch/v1beta1"
        if do_apply:
            access = cluster_access(kubeconfig, kube_context, True)
            if access is None:
                raise BadInput(
                    T(
                        "--apply 需要集群（--kubeconfig、$KUBECONFIG 或 ~/.kube/config）",
                        "--apply needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)",
                    )
                )
            api_version = cronjob.served_cronjob_api(access)
        objs = cronjob.render(
            namespace,
            image or incluster.DEFAULT_IMAGE,
            schedule,
            history=history_kind,
            helm_secrets=helm_secrets,
            domain=domain,
            storage_class=storage_class,
            api_version=api_version,
        )
        text = cronjob.to_yaml(objs, schedule, history_kind, helm_secrets=helm_secrets)
    else:
        objs = incluster.render(
            namespace, image or incluster.DEFAULT_IMAGE, mode, helm_secrets=helm_secrets, domain=domain
        )
        text = incluster.to_yaml(objs, helm_secrets=helm_secrets)
    if out:
        from bkdoctor.safe.outfiles import check_output_path

        check_output_path(out, "-o")
        write_atomic(out, text)
    elif not do_apply:
        sys.stdout.write(text)
    if not do_apply:
        return
    access = access or cluster_access(kubeconfig, kube_context, True)
    if access is None:
        raise BadInput(
            T(
                "--apply 需要集群（--kubeconfig、$KUBECONFIG 或 ~/.kube/config）",
                "--apply needs a cluster (--kubeconfig, $KUBECONFIG or ~/.kube/config)",
            )
        )
    err = safe_console(stderr=True)
    try:
        incluster.apply(access, objs, say=lambda s: err.print(clean(s), markup=False, highlight=False))
    finally:
        access.close()
    if schedule is not None:
        ns = shlex.quote(namespace)
        err.print(
            clean(
                f"CronJob {namespace}/bkdoctor-scan scheduled ({schedule}); compare its runs: "
                f"bkdoctor diff --cluster-history {ns}"
                if history_kind == "configmap"
                else f"CronJob {namespace}/bkdoctor-scan scheduled ({schedule}); history on the PVC bkdoctor-history"
            ),
            markup=False,
            highlight=False,
        )
    elif mode == "job":
        err.print(
            clean(f"report: kubectl -n {shlex.quote(namespace)} logs job/{incluster.JOB_NAME}"),
            markup=False,
            highlight=False,
        )
    else:
        err.print(
            f"probe pods: kubectl -n {shlex.quote(namespace)} get pods -l app.kubernetes.io/component=probe -o wide; "
            f"their facts are read from the pods' logs, encrypted to a key kept on this machine: "
            f"bkdoctor scan --from-daemonset {shlex.quote(namespace)} (here)",
            markup=False,
            highlight=False,
        )
