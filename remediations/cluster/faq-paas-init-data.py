import re
import shlex

from bkdoctor.fix.fixkit import configmap_named
from bkdoctor.fix.plan import CommandChange, Fix, K8sChange, Remediation
from bkdoctor.model import T

REMEDIATION = Remediation(
    id="faq-paas-init-data",
    scope="cluster",
    disruptive=True,
    title=T(
        "把 PAAS_APP_IMAGE 指向内网仓库中的 slug-app 镜像并重建 bkpaas3-apiserver-web",
        "point PAAS_APP_IMAGE at the slug-app image in your registry and recreate bkpaas3-apiserver-web",
    ),
)
CM = "bkpaas3-apiserver-general-env"
IMAGE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+)?\Z")


def plan(facts, ctx):
    image = (getattr(ctx, "params", None) or {}).get("image")
    cm = configmap_named(facts, CM)
    manual = [
        "docker pull hub.bktencent.com/blueking/slug-app:<tag>  # on a machine with internet",
        "docker tag ... <your-registry>/blueking/slug-app:<tag> && docker push ...",
        "bkdoctor fix --rule faq-paas-init-data --set image=<your-registry>/blueking/slug-app:<tag> --allow-disruptive",
    ]
    if not image or cm is None:
        return Fix(manual=manual)
    if not IMAGE.match(image):
        return Fix(manual=[f"# {image!r} is not an image reference"] + manual)
    md = cm["metadata"]
    changes = []
    if (cm.get("data") or {}).get("PAAS_APP_IMAGE") != image:
        changes.append(
            K8sChange(
                "ConfigMap",
                md["namespace"],
                md["name"],
                {"PAAS_APP_IMAGE": (cm.get("data") or {}).get("PAAS_APP_IMAGE")},
                {"PAAS_APP_IMAGE": image},
                resource_version=md.get("resourceVersion"),
                meta={"namespace": md["namespace"]},
            )
        )
        changes.append(
            CommandChange(
                f"kubectl -n {shlex.quote(md['namespace'])} delete pod -l app.kubernetes.io/name=bkpaas3-apiserver-web",
                T(
                    "删除 bkpaas3-apiserver-web Pod 以加载新配置",
                    "delete the bkpaas3-apiserver-web pod so it reads the new value",
                ),
                disruptive=True,
            )
        )
    return Fix(changes)


def replan(current, change, ctx):
    image = change.after["PAAS_APP_IMAGE"]
    return None if current.get("PAAS_APP_IMAGE") == image else {"PAAS_APP_IMAGE": image}


def run_command(cluster, ch):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    argv = shlex.split(ch.script)
    ns = argv[argv.index("-n") + 1]
    core = client.CoreV1Api(cluster.api_client)
    try:
        pods = [p for p in core.list_namespaced_pod(ns).items if p.metadata.name.startswith("bkpaas3-apiserver-web")]
        for p in pods:
            core.delete_namespaced_pod(p.metadata.name, ns)
    except ApiException as e:
        return f"HTTP {e.status}: {e.reason}"
    return None


def verify(facts, ctx):
    image = (ctx.params or {}).get("image")
    cm = configmap_named(facts, CM)
    return bool(image) and cm is not None and (cm.get("data") or {}).get("PAAS_APP_IMAGE") == image
