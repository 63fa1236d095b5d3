from bkdoctor.scan.rulekit import G_REGISTRY_PROXY, Rule, T, failed, fmt_gb, gb_si, passed, warned

RULE = Rule(
    id="registry-proxy",
    title=T("镜像缓存代理工作正常", "The registry proxy works"),
    scope="host",
    severity="high",
    roles=("registry-proxy",),
    tags=("registry", "docker"),
    group="registry",
    facts=("registry",),
    guide=G_REGISTRY_PROXY,
    doc=T(
        "proxy-bkhub（registry:2，端口 5500）须在 /v2/ 应答，配置的 proxy.remoteurl 指向上游（默认 https://hub.bktencent.com），"
        "存储目录 ≥ 100GB；同一清单取两次，第二次应由本地缓存提供。代理返回 500 多为上游不可达或配置错误（§二.6 Q1）。",
        "proxy-bkhub (registry:2 on port 5500) must answer /v2/, its proxy.remoteurl must point at the upstream "
        "(https://hub.bktencent.com by default), its storage needs >= 100 GB, and a manifest fetched twice must "
        "come from the local cache the second time. A 500 from the proxy usually means the upstream is "
        "unreachable or the config is wrong (§二.6 Q1).",
    ),
    fix=("docker logs proxy-bkhub", "curl -I https://hub.bktencent.com/v2/", "curl -s http://127.0.0.1:5500/v2/"),
)


def check(facts, ctx):
    r = facts.registry
    th = ctx.thresholds
    port, want_up = th["registry_port"], th["registry_upstream"].rstrip("/")
    storage = r["storage"]
    observed = {
        "remoteurl": r["remoteurl"],
        "v2": r["v2"],
        "upstream": r["upstream"],
        "manifest": r["manifest"],
        "cached": r["cached"],
        "storage_avail_gb": float(fmt_gb(gb_si(storage["avail_kb"]))) if storage else None,
    }
    expected = {
        "v2": "HTTP 200 or 401",
        "remoteurl": want_up,
        "storage_gb": f">= {th['registry_storage_min_gb']}",
        "second_fetch": "from the cache",
    }
    fails, warns = [], []
    if not r["config_exists"]:
        fails.append(T(f"没有配置文件 {th['registry_config']}", f"no config file {th['registry_config']}"))
    elif r["config_error"]:
        fails.append(T(f"配置文件无法解析：{r['config_error']}", f"the config does not parse: {r['config_error']}"))
    elif not r["remoteurl"]:
        fails.append(
            T(
                "配置中没有 proxy.remoteurl：这不是缓存代理",
                "no proxy.remoteurl in the config: this is not a pull-through proxy",
            )
        )
    elif r["remoteurl"].rstrip("/") != want_up:
        warns.append(
            T(
                f"proxy.remoteurl 为 {r['remoteurl']}（期望 {want_up}）",
                f"proxy.remoteurl is {r['remoteurl']} (expected {want_up})",
            )
        )
    v2 = (r["v2"] or {}).get("code", 0)
    if v2 not in (200, 401):
        fails.append(
            T(
                f"127.0.0.1:{port}/v2/ 没有应答（HTTP {v2 or '无'}）",
                f"127.0.0.1:{port}/v2/ does not answer (HTTP {v2 or 'none'})",
            )
        )
    up = (r["upstream"] or {}).get("code", 0)
    if up not in (200, 401):
        warns.append(
            T(
                f"本机访问上游 {want_up}/v2/ 失败（HTTP {up or '无'}）",
                f"this host cannot reach the upstream {want_up}/v2/ (HTTP {up or 'none'})",
            )
        )
    if storage is None:
        fails.append(
            T(f"存储目录 {th['registry_data']} 不存在", f"the storage dir {th['registry_data']} does not exist")
        )
    elif gb_si(storage["avail_kb"]) < th["registry_storage_min_gb"]:  # §二.2.1 预留≥100GB磁盘, GB = 10^9 bytes
        free = fmt_gb(gb_si(storage["avail_kb"]))
        fails.append(
            T(
                f"存储目录只剩 {free} GB（文档要求预留 ≥ {th['registry_storage_min_gb']} GB，1 GB = 10^9 字节）",
                f"the storage dir has {free} GB free (the guide asks >= {th['registry_storage_min_gb']} GB; 1 GB = 10^9 bytes)",
            )
        )
    if v2 in (200, 401) and r["manifest"]:
        first = r["manifest"][0]["code"]
        if first != 200:
            hint = (
                T("（500：上游不可达或配置错误）", " (500: the upstream is unreachable or the config is wrong)")
                if first >= 500
                else T("", "")
            )
            fails.append(
                T(
                    f"通过代理获取 {th['registry_probe_image']} 的清单失败：HTTP {first}{hint.zh}",
                    f"fetching the manifest of {th['registry_probe_image']} through the proxy failed: HTTP {first}{hint.en}",
                )
            )
        elif r["cached"] is False:
            fails.append(
                T(
                    "清单取到了，但没有写入代理的存储：缓存未生效",
                    "the manifest came through but was not stored: the cache does not work",
                )
            )
    if fails:
        msg = fails + warns
        return failed(
            T("；".join(m.zh for m in msg), "; ".join(m.en for m in msg)), observed=observed, expected=expected
        )
    if warns:
        return warned(
            T("；".join(m.zh for m in warns), "; ".join(m.en for m in warns)), observed=observed, expected=expected
        )
    cache = ""
    if len(r["manifest"]) == 2:
        a, b = r["manifest"][0]["seconds"], r["manifest"][1]["seconds"]
        cache = f"; manifest {a * 1000:.0f} ms, then {b * 1000:.0f} ms from the cache"
    return passed(
        T(
            f"代理在 {port} 端口应答，上游 {r['remoteurl']}，缓存生效",
            f"the proxy answers on {port}, upstream {r['remoteurl']}{cache}",
        ),
        observed=observed,
        expected=expected,
    )
