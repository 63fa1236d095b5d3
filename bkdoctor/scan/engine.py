"""The scan loop: gather facts once per target (one batched probe), run the pure rules, apply suppressions."""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import ipaddress
import logging
import secrets
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from bkdoctor.facts.host import (
    API_FACTS,
    DOCKER_FALLBACK_SECTIONS,
    FORWARD,
    FORWARDED_GETS,
    MEASURE_BUDGET,
    HostFacts,
    p_resolved,
    probe_params,
    sections_for,
)
from bkdoctor.facts.probe import Section, build_script, parse_output, same_sections
from bkdoctor.inputs.inventory import HostSpec, Inventory
from bkdoctor.model import PROBLEM_STATUSES, FactUnavailable, Finding, Result, Rule, T
from bkdoctor.safe.names import valid_domain
from bkdoctor.scan.siterules import extra_timeout, split_facts
from bkdoctor.transport import LocalTransport, Transport, TransportError
from bkdoctor.transport.base import NotForwarded

log = logging.getLogger("bkdoctor")

PROBE_TIMEOUT = 60.0
DOCKER_TIMEOUT = 10.0


@dataclass
class Context:
    """What a rule may know besides facts: the target, the thresholds, the BlueKing domain."""

    target: str
    roles: tuple[str, ...]
    address: str | None
    thresholds: dict[str, Any]
    domain: str | None
    ingress_ip: str | None = None
    registry_proxies: tuple[str, ...] = ()  # http://<address>:<port> of every registry-proxy host
    first_master: str | None = None  # address of the first master (k8s-api.bcs.local points at it)
    site: Any = None  # bkdoctor.inputs.site.Site: custom.yaml, VERSION... of the install dir (None: not read)
    ingress: dict[str, Any] | None = None  # k8s.find_ingress() of the cluster, when the cluster was read
    # the cluster's default StorageClass (§五.2.1: with one, the LocalPV chapter is skipped); None: none, or not read
    default_storage_class: str | None = None
    storage_classes_read: bool = False
    registry: str | None = None  # $REGISTRY (§四.5.2), from the inventory / install settings
    nfs_path: str | None = None  # where the NFS shared storage is mounted (§一.3.2.2), from the inventory
    suites: tuple[str, ...] = ()  # the inventory's suites (§一.5)


@dataclass
class FleetContext:
    """What a fleet rule knows: every member's roles, the thresholds, the domain, the control machine."""

    roles: dict[str, tuple[str, ...]]
    thresholds: dict[str, Any]
    domain: str | None
    control: str | None  # name of the control host in the inventory, if any
    suites: tuple[str, ...] = ()  # the inventory's suites (§一.5)
    container_monitoring: bool = False


@dataclass
class ClusterContext:
    """What a cluster rule knows besides the cluster facts."""

    target: str
    thresholds: dict[str, Any]
    domain: str | None
    hosts: dict[str, Any] = field(default_factory=dict)  # host name -> TargetState (for cross-layer links)
    params: dict[str, str] = field(default_factory=dict)  # fix mode: values the operator gave (--set key=value)
    suites: tuple[str, ...] = ()  # the inventory's suites (§一.5): "bcs" adds CoreDNS names (§十一.4)
    site: Any = None  # bkdoctor.inputs.site.Site of the install dir (None: not read)


def make_context(
    scope: str,
    inv: Inventory,
    target: Any,
    *,
    site: Any = None,
    ingress: dict[str, Any] | None = None,
    storage: tuple[bool, str | None] | None = None,
    hosts: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    control: str | None = None,
) -> Context | ClusterContext | FleetContext:
    """The one way a rule's or a remediation's context is built. What comes from the inventory (thresholds, domain,
    suites, registry proxies, first master...) is derived here; what belongs to the moment is passed: `target` is
    the host's TargetState (scope host), the cluster target's name (scope cluster) or the member TargetStates
    (scope fleet); `site` the install dir's files, `ingress` the cluster's, `hosts` the host targets a cluster rule
    may link to, `params` the operator's `fix --set` values, `control` the control host's name."""
    common: dict[str, Any] = {
        "thresholds": inv.thresholds,
        "domain": inv.domain,
        "suites": tuple(getattr(inv, "suites", ()) or ()),
    }
    if scope == "cluster":
        return ClusterContext(target=target, hosts=dict(hosts or {}), params=dict(params or {}), site=site, **common)
    if scope == "fleet":
        return FleetContext(
            roles={t.name: t.roles for t in target},
            control=control,
            container_monitoring=bool(getattr(inv, "container_monitoring", False)),
            **common,
        )
    port = int(inv.thresholds["registry_port"])
    return Context(
        target=target.name,
        roles=target.roles,
        address=target.address,
        ingress_ip=inv.ingress_ip,
        registry_proxies=tuple(f"http://{h.address}:{port}" for h in inv.hosts if "registry-proxy" in h.roles),
        first_master=first_master(inv),
        site=site,
        ingress=ingress,
        default_storage_class=(storage or (False, None))[1],
        storage_classes_read=(storage or (False, None))[0],
        registry=getattr(inv, "registry", None),
        nfs_path=getattr(inv, "nfs_path", None),
        **common,
    )


@dataclass
class TargetState:
    name: str
    kind: str
    address: str | None
    roles: tuple[str, ...]
    reachable: bool = False
    error: str | None = None
    gather_s: float | None = None
    facts: HostFacts | None = None
    error_t: T | None = None  # `error` in both languages, when its maker has them (the findings then use it)

    def unreachable(self, zh: str, en: str) -> T:
        """The finding's message for a rule this target could not be evaluated for (zh/en: the prefix)."""
        t = self.error_t or T(str(self.error), str(self.error))
        return T(f"{zh}：{t.zh}", f"{en}: {t.en}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "address": self.address,
            "roles": list(self.roles),
            "reachable": self.reachable,
            "error": self.error,
            "gather_s": round(self.gather_s, 3) if self.gather_s is not None else None,
        }


@dataclass
class ScanResult:
    id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    targets: list[TargetState]
    findings: list[Finding]
    rules: list[Rule]
    inventory: Inventory
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def __repr__(self) -> str:
        # Short on purpose (issue 16). On Python 3.11, asyncio.run() formats the repr of its main task, and with it
        # the coroutine's result, when it restores the SIGINT handler (signal.getsignal -> a ValueError message
        # of the partial holding the task): the generated repr of a scan result holds every fact of every target,
        # a string of hundreds of MB built and thrown away (5,000 pods: 418 -> 153 MB peak RSS, 1.2-2 s less CPU).
        return f"ScanResult(id={self.id!r}, targets={len(self.targets)}, findings={len(self.findings)})"


TransportFactory = Callable[[HostSpec, Inventory], Transport]


def default_transport(host: HostSpec, inv: Inventory) -> Transport:
    """Local for this machine, SSH (one connection per host) for every other host."""
    if host.local or host.address in ("localhost", "127.0.0.1", "::1"):
        return LocalTransport(address=host.address)
    import os

    from bkdoctor.transport.ssh import SSHSettings, SSHTransport

    env = SSHSettings.password_env_name(inv.ssh, host.ssh)
    password = (os.environ.get(env) if env else None) or inv.ssh_password
    explicit_timeout = "command_timeout" in (host.ssh or {}) or "command_timeout" in (inv.ssh or {})
    try:
        settings = SSHSettings.merged(
            inv.ssh,
            host.ssh,
            password=password,
            accept_new_host_keys=inv.accept_new_host_keys or None,
            # without an explicit limit the probe's own (measurements included) applies
            command_timeout=None if explicit_timeout else 0,
        )
    except (ValueError, TypeError) as e:
        raise TransportError(f"ssh settings: {e}") from None
    return SSHTransport(host.address, settings)


def new_scan_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


CLOCK_SCRIPT = "date -u +%s.%N\n"


def probe_timeout(inv: Inventory, sections: set[str]) -> float:
    """The probe's time limit: a base, plus the bounded time of each measurement it runs."""
    extra = sum(budget(inv.thresholds) for s, budget in MEASURE_BUDGET.items() if s in sections)
    return PROBE_TIMEOUT + extra + extra_timeout(sections)


async def sample_clock(transport: Transport) -> dict[str, float]:
    """Read the host's clock in a tiny round trip; offset is corrected for the round-trip time (midpoint)."""
    t0 = time.time()
    res = await transport.run_script(CLOCK_SCRIPT, 15)
    t1 = time.time()
    text = res.stdout.decode("ascii", "replace").strip()
    try:
        remote = float(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise FactUnavailable(T(f"无法读取主机时钟：{text[:80]!r}", f"cannot read the host clock: {text[:80]!r}"))
    return {"offset_s": remote - (t0 + t1) / 2, "rtt_s": t1 - t0}


async def gather_host(
    host: HostSpec,
    inv: Inventory,
    sections: set[str],
    want_docker: bool,
    factory: TransportFactory,
    want_clock: bool = False,
    kubelet_cache: Any = None,
) -> TargetState:
    """`kubelet_cache` (scan/kubeletcache.py; None: kubelet runs every time): the probe skips `kubelet --version` for
    a binary unchanged since the last scan, whose kept output is put back here."""
    st = TargetState(name=host.name, kind="host", address=host.address, roles=host.roles)
    t0 = time.monotonic()
    transport = None
    try:
        transport = factory(host, inv)
        limit = probe_timeout(inv, sections)
        sock = host.docker_socket or inv.docker_socket or inv.thresholds["docker_socket"]
        params = probe_params(inv, host)
        script_sections = set(sections)
        if want_docker:
            # the CLI fallback rides on the main probe, run there only when the socket is absent (no second probe)
            script_sections |= set(DOCKER_FALLBACK_SECTIONS)
            params["BKD_DOCKER_IF_NO_SOCKET"] = sock
        kubelet_key = seen = None
        if kubelet_cache is not None and "kubelet_version" in script_sections:
            kubelet_key = kubelet_cache.key(host, inv)
            seen = params["BKD_KUBELET_SEEN"] = kubelet_cache.seen(kubelet_key)
            params["BKD_KUBELET_ID"] = "1"
        same = same_sections(script_sections)
        # a section the node's sshd may answer (curl's GET of docker.<domain>/v2/): the probe resolves its name too
        forwards = bool(getattr(transport, "forwards_tcp", False))
        fwd = forwarded(script_sections - set(same), params, forwards)
        resolver_asked = RESOLVER in script_sections
        fwd_params = forward_params(fwd)
        if fwd:  # the probe forwards only where SSH_CONNECTION shows the sshd bkdoctor connected to (facts/host.py)
            fwd_params["BKD_SSH_SERVER"] = await transport.server_address()
        script, nonce = build_script(
            probe_sections(script_sections - set(same), params, forwards), params={**params, **fwd_params}
        )
        fold_clock = want_clock and getattr(transport, "folds_clock", False)
        run = (
            (lambda: transport.run_script(script, limit, clock=True))
            if fold_clock
            else (lambda: transport.run_script(script, limit))
        )

        async def docker() -> tuple[dict[str, Any] | None, str | None]:
            try:
                api = await transport.docker_api(sock, ["/version", "/info"], DOCKER_TIMEOUT)
                return {"version": api["/version"], "info": api["/info"]}, None
            except TransportError as e:
                return None, str(e)

        # the probe and the Engine API calls go out together: one round trip of latency per host
        if want_docker:
            res, (api, api_err) = await asyncio.gather(run(), docker())
        else:
            res, api, api_err = await run(), None, None
        stdout = res.stdout
        parsed = parse_output(stdout, nonce)
        if kubelet_key is not None and "kubelet_version" in parsed:
            parsed["kubelet_version"] = kubelet_cache.settle(kubelet_key, parsed["kubelet_version"], seen or "")
        # the resolver this scan added for a forwarded section only is not an answer of the probe's own
        mine = set(parsed) - set(DOCKER_FALLBACK_SECTIONS) - (set() if resolver_asked else {RESOLVER})
        if sections and not mine:
            err = (res.stderr or stdout).decode("utf-8", "replace").strip()[-300:]
            raise TransportError(f"probe produced no output (exit {res.rc}): {err}")
        again: set[str] = set()  # sections for a second, small probe (at most one, whatever needs it)
        if fwd:
            answers, again = await answer_forwarded(transport, fwd, parsed)
            for n, sec in answers.items():
                if sec is None:
                    parsed.pop(n, None)
                else:
                    parsed[n] = sec
            for n in again:
                parsed.pop(n, None)
            if not resolver_asked:
                parsed.pop(RESOLVER, None)  # asked for the forwarded name only: not a section of this scan
        parsed.update({n: Section(n, parsed[b].rc, parsed[b].out) for n, b in same.items() if b in parsed})
        inline = {n: parsed.pop(n) for n in DOCKER_FALLBACK_SECTIONS if n in parsed}
        facts = HostFacts(parsed, docker_api=api, docker_api_error=api_err)
        if want_docker and api is None and "docker_bins" in parsed and parsed["docker_bins"].text().split():
            # Docker is installed but its API did not answer: the CLI's answer, from the main probe when the socket
            # was absent there, else from the second, small probe (the socket exists and the API still failed)
            if len(inline) == len(DOCKER_FALLBACK_SECTIONS) and all(x.rc != 125 for x in inline.values()):
                facts.sections.update(inline)
            else:
                again |= set(DOCKER_FALLBACK_SECTIONS)
        if again:
            # the Docker CLI runs here whatever the socket (BKD_DOCKER_IF_NO_SOCKET empty), a forwarded section by its
            # own command (curl: BKD_INGRESS_FWD empty, as probe_params gives it)
            fb_params = {**params, "BKD_DOCKER_IF_NO_SOCKET": ""}
            fb_script, fb_nonce = build_script(again, params=fb_params)
            try:
                fb = await transport.run_script(fb_script, PROBE_TIMEOUT)
                facts.sections.update(parse_output(fb.stdout, fb_nonce))
            except TransportError as e:  # the main probe's facts stand; these sections are left out (their error)
                log.debug("%s: the second probe (%s) failed: %s", host.name, ", ".join(sorted(again)), e)
        if fold_clock:
            c = res.clock or {"error": ""}
            facts.extra["clock_offset"] = (
                c
                if "offset_s" in c
                else FactUnavailable(
                    T(f"无法读取主机时钟：{c.get('error')!r}", f"cannot read the host clock: {c.get('error')!r}")
                )
            )
        elif want_clock:
            try:
                facts.extra["clock_offset"] = await sample_clock(transport)
            except (FactUnavailable, TransportError) as e:
                facts.extra["clock_offset"] = (
                    e
                    if isinstance(e, FactUnavailable)
                    else FactUnavailable(T(f"时钟采样失败：{e}", f"clock sample failed: {e}"))
                )
        st.facts = facts
        st.reachable = True
    except TransportError as e:
        st.error = str(e)
    except OSError as e:
        st.error = f"{type(e).__name__}: {e}"
    finally:
        st.gather_s = time.monotonic() - t0
        if transport is not None:
            try:
                await transport.close()
            except Exception:  # closing must never fail the scan
                log.debug("closing transport of %s failed", host.name, exc_info=True)
    return st


RESOLVER = "getent_hosts"  # the section that resolves a ForwardedGet's name on the host
# a name that goes into the GET's Host header is a BK_DOMAIN's shape (safe.names.valid_domain, the rule the inventory's
# schema and --domain use; custom.yaml's bkDomain is checked by it too, at load). Any other name: the section's own command


def forwarded(sections: set[str], params: dict[str, str], forwards_tcp: bool) -> dict[str, str]:
    """The sections of `sections` a transport that `forwards_tcp` may answer by a connection from the host's sshd
    (facts/host.py FORWARDED_GETS): section -> the host name the probe resolves for it. Only for a name the resolver
    section asks anyway (BKD_HOSTS_NAMES): it is looked up with the others, in the same getent, and no other section's
    answer changes."""
    if not forwards_tcp:
        return {}
    asked = set(params.get("BKD_HOSTS_NAMES", "").lower().split())
    out = {}
    for n in sorted(sections & set(FORWARDED_GETS)):
        name = FORWARDED_GETS[n].name(params)
        if name and valid_domain(name) and name.lower() in asked:
            out[n] = name.lower()
    return out


def forward_params(fwd: dict[str, str]) -> dict[str, str]:
    """The parameters that have the probe's forwarded sections print FORWARD (where their command would connect
    directly) rather than run their command."""
    return {FORWARDED_GETS[n].param: "1" for n in fwd}


def probe_sections(sections: set[str], params: dict[str, str], forwards_tcp: bool) -> set[str]:
    """What the probe script runs for `sections`: with a forwarded section, the resolver of its name too."""
    return sections | ({RESOLVER} if forwarded(sections, params, forwards_tcp) else set())


async def answer_forwarded(transport: Any, fwd: dict[str, str], parsed: dict[str, Section]) -> tuple[dict, set]:
    """Each forwarded section that printed FORWARD, answered by a GET the host's sshd connects: ({section: Section},
    {sections whose own command must run after all, in a second probe}). A section that printed anything else (its
    command ran: a proxy in its environment) keeps that. Only a connection that was made gives an answer; a lost SSH
    connection leaves the section out (its fact is an error; the host is not failed for it)."""
    answers: dict[str, Section | None] = {}
    again: set[str] = set()
    try:
        resolved = p_resolved(HostFacts({RESOLVER: parsed[RESOLVER]})) if RESOLVER in parsed else None
    except FactUnavailable:
        resolved = None

    async def one(section: str, name: str) -> None:
        spec = FORWARDED_GETS[section]
        mine = parsed.get(section)
        if mine is None or mine.rc != 0 or mine.out.strip() != FORWARD.encode():
            return  # the section's command ran (or it did not finish): its own answer stands
        if resolved is None or name not in resolved:  # no getent, or its section cut off: curl resolves
            again.add(section)
            return
        addr = resolved[name]
        if addr is None:
            # getent found no address: curl's "Could not resolve host" (the same nsswitch lookup; getent is given 3 s,
            # curl's lookup 5: stricter), with no second probe on the nodes §七.2 has not reached yet
            answers[section] = Section(section, 0, b"000  6\n")
            return
        try:
            ok = ipaddress.ip_address(addr).version == 4
        except ValueError:
            ok = False
        if not ok:  # an IPv6 address (from `getent hosts`), or not an address: curl resolves, and tries what it finds
            again.add(section)
            return
        try:
            st = await transport.http_status(addr, spec.port, name, spec.path, spec.timeout)
        except NotForwarded as e:
            log.debug("%s: %s; its own command runs in a second probe", section, e)
            again.add(section)
            return
        except TransportError as e:
            log.debug("%s: %s", section, e)
            answers[section] = None  # the connection is gone: no answer (the section is left out)
            return
        if st is None:  # no connection came: curl tries (another address, its own resolution)
            again.add(section)
            return
        answers[section] = Section(section, 0, f"{st.code:03d} {st.remote_ip} {st.curl_exit}\n".encode())

    await asyncio.gather(*(one(s, n) for s, n in fwd.items()))
    return answers, again


def evaluate(rule: Rule, facts: HostFacts, ctx: Context) -> Result:
    """Run one pure rule. Missing facts -> error/skip with the reason; a crash in a rule -> error."""
    if rule.needs_domain and not ctx.domain:
        return Result(
            "skip",
            T(
                "未知 BK_DOMAIN：请在清单中设置 domain，或提供 environments/default/custom.yaml",
                "BK_DOMAIN unknown: set `domain:` in the inventory or provide environments/default/custom.yaml",
            ),
        )
    try:
        assert rule.check is not None
        res = rule.check(facts, ctx)
    except FactUnavailable as e:
        return Result(e.status, e.reason)
    except Exception as e:  # a bug in a rule must not hide the other findings
        log.debug("rule %s crashed on %s", rule.id, ctx.target, exc_info=True)
        return Result("error", T(f"规则内部错误：{type(e).__name__}: {e}", f"rule crashed: {type(e).__name__}: {e}"))
    if not isinstance(res, Result):
        return Result("error", T("规则没有返回结果", "rule returned no result"))
    return res


def evaluate_fleet(rules: list[Rule], targets: list[TargetState], inv: Inventory) -> list[Finding]:
    """Fleet rules see the facts of every member host at once (one Result per member)."""
    out: list[Finding] = []
    control = next((t.name for t in targets if "control" in t.roles), None)
    for r in rules:
        members = [t for t in targets if r.applies_to(t.roles)]
        if not members:
            continue
        ctx = make_context("fleet", inv, members, control=control)
        reachable = {t.name: t.facts for t in members if t.reachable and t.facts is not None}
        results: dict[str, Result] = {}
        try:
            assert r.check is not None
            got = r.check(reachable, ctx) if reachable else {}
            if not isinstance(got, dict):
                raise TypeError("a fleet rule returns {target: Result}")
            results = {k: v for k, v in got.items() if isinstance(v, Result)}
        except FactUnavailable as e:
            results = {name: Result(e.status, e.reason) for name in reachable}
        except Exception as e:
            log.debug("fleet rule %s crashed", r.id, exc_info=True)
            results = {
                name: Result(
                    "error", T(f"规则内部错误：{type(e).__name__}: {e}", f"rule crashed: {type(e).__name__}: {e}")
                )
                for name in reachable
            }
        for t in members:
            if t.name in results:
                res = results[t.name]
            elif not t.reachable or t.facts is None:
                res = Result("error", t.unreachable("主机不可达", "host unreachable"))
            else:
                res = Result("error", T("规则没有给出该主机的结果", "the rule gave no result for this host"))
            out.append(Finding(rule=r, target=t.name, result=res))
    return out


def link_causes(
    cluster_findings: list[Finding], host_findings: list[Finding], targets: list[TargetState], cfacts: Any
) -> None:
    """Cross-layer root cause: a cluster symptom on node X (a pod that cannot pull from docker.<domain>) and a
    failing host rule on X (insecure-registries) become one story: each names the other, with the fix."""
    from bkdoctor.facts.k8s import md, node_internal_ip

    by_name = {t.name: t.name for t in targets if t.kind == "host"}
    by_addr = {t.address: t.name for t in targets if t.kind == "host" and t.address}
    node_ip: dict[str, str | None] = {}
    try:
        node_ip = {md(n)["name"]: node_internal_ip(n) for n in cfacts.get("nodes")}
    except Exception:  # nodes unreadable: match by name only
        pass
    index = {(f.rule.id, f.target): f for f in host_findings}
    for cf in cluster_findings:
        if not cf.rule.host_rules or cf.result.status not in ("fail", "warn"):
            continue
        matches = (cf.result.observed or {}).get("matches") if isinstance(cf.result.observed, dict) else None
        nodes = sorted({m["node"] for m in matches or [] if m.get("node")})
        links = []
        for node in nodes:
            host = by_name.get(node) or by_addr.get(node_ip.get(node) or "")
            if not host:
                continue
            for hr in cf.rule.host_rules:
                hf = index.get((hr, host))
                if hf is None or hf.result.status not in ("fail", "warn", "error"):
                    continue
                fix = f"bkdoctor fix --rule {shlex.quote(hr)} --host {shlex.quote(host)}"
                links.append((node, host, hr, hf, fix))
                hf.related.append(
                    {
                        "rule": cf.rule.id,
                        "target": cf.target,
                        "status": cf.result.status,
                        "relation": "causes",
                        "node": node,
                        "message": cf.result.message.en[:300],
                        "fix": None,
                    }
                )
        if not links:
            continue
        cf.related = [
            {
                "rule": hr,
                "target": host,
                "status": hf.result.status,
                "relation": "caused-by",
                "node": node,
                "message": hf.result.message.en[:300],
                "fix": fix,
            }
            for node, host, hr, hf, fix in links
        ]
        zh = "；".join(
            f"根因：节点 {node} 的 {hr} 为 {hf.result.status}（{hf.result.message.zh[:120]}）→ {fix}"
            for node, host, hr, hf, fix in links
        )
        en = "; ".join(
            f"root cause: {hr} is {hf.result.status} on node {node} ({hf.result.message.en[:120]}) -> {fix}"
            for node, host, hr, hf, fix in links
        )
        cf.result.message = T(f"{zh}。{cf.result.message.zh}", f"{en}. {cf.result.message.en}")


def apply_suppressions(findings: list[Finding], inv: Inventory, today: dt.date) -> None:
    for f in findings:
        if f.result.status not in PROBLEM_STATUSES:
            continue
        for s in inv.suppress:
            if s.rule not in (f.rule.id, "*") or not fnmatch.fnmatchcase(f.target, s.target):
                continue
            if not s.active(today):
                continue  # expired: the finding shows again
            f.suppression = {
                "reason": s.reason,
                "until": s.until.isoformat() if s.until else None,
                "original_status": f.result.status,
            }
            break


def first_master(inv: Inventory) -> str | None:
    return next((h.address for h in inv.hosts if "master" in h.roles), None)


def cluster_kinds(rules: list[Rule]) -> set[str]:
    return {f for r in rules if r.scope == "cluster" for f in r.facts}


def gather_cluster(cluster: Any, kinds: set[str], facts: Any = None) -> tuple[TargetState, Any]:
    """Read every kind the cluster rules need, each once (four at a time, the longest first; what is kept, out of
    the garbage collector's sight while listing). Runs in a thread."""
    from concurrent.futures import ThreadPoolExecutor

    from bkdoctor.facts.cluster import ClusterFacts, gather_order, out_of_collector_sight

    t0 = time.monotonic()
    if facts is None:
        facts = ClusterFacts(cluster)
    name = cluster.name if cluster is not None else (facts.preloaded or {}).get("__name__", "cluster")
    server = cluster.server if cluster is not None else (facts.preloaded or {}).get("__server__")
    st = TargetState(name=name, kind="cluster", address=server, roles=())
    try:
        facts.get("version")
        st.reachable = True
    except FactUnavailable as e:
        st.error = e.reason.en
        st.gather_s = time.monotonic() - t0
        return st, facts
    with out_of_collector_sight(facts), ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda k: _try(facts, k), gather_order(kinds)))
    st.gather_s = time.monotonic() - t0
    return st, facts


def _try(facts: Any, kind: str) -> None:
    try:
        facts.get(kind)
    except FactUnavailable:
        pass


def evaluate_cluster(
    rules: list[Rule], st: TargetState, facts: Any, inv: Inventory, hosts: list[TargetState]
) -> list[Finding]:
    out = []
    from bkdoctor.inputs import site as site_mod

    ctx = make_context("cluster", inv, st.name, hosts={h.name: h for h in hosts}, site=site_mod.for_inventory(inv))
    for r in rules:
        if not st.reachable:
            if st.error and st.error.startswith("no cluster configured"):
                res = Result(
                    "skip",
                    T(
                        "未配置集群（--kubeconfig 或 ~/.kube/config）",
                        "no cluster configured (--kubeconfig or ~/.kube/config)",
                    ),
                )
            else:
                res = Result("error", T(f"集群不可达：{st.error}", f"cluster unreachable: {st.error}"))
        else:
            res = evaluate(r, facts, ctx)  # type: ignore[arg-type]
        out.append(Finding(rule=r, target=st.name, result=res))
    return out


async def scan(
    inv: Inventory,
    rules: list[Rule],
    *,
    factory: TransportFactory = default_transport,
    concurrency: int = 32,
    on_progress: Callable[[str, str], None] | None = None,
    today: dt.date | None = None,
    cluster: Any = None,
    cluster_facts: Any = None,
    preloaded_hosts: list[TargetState] | None = None,
    only_hosts: set[str] | None = None,
    keep_facts: bool = True,
    kubelet_cache: Any = None,
) -> ScanResult:
    """One scan. `preloaded_hosts` and `cluster_facts` (with `preloaded` data) replay a support bundle: the same
    rules then run on the facts collected elsewhere, with no transport and no API call.

    `keep_facts=False` (a scan whose caller reads the findings only, not the facts: `bkdoctor scan`) lets each host's
    parsed facts go once its host rules ran, and every host's facts once the fleet rules ran: the result's host
    targets then have `facts` None. `fix` and `collect` keep them (plans and bundles are made from them)."""
    started = dt.datetime.now(dt.timezone.utc)
    from bkdoctor.inputs import site as site_mod

    site = site_mod.for_inventory(inv)
    site_mod.apply(inv)
    host_rules = [r for r in rules if r.scope == "host"]
    fleet_rules = [r for r in rules if r.scope == "fleet"]
    cluster_rules = [r for r in rules if r.scope == "cluster"]

    def needs(roles: tuple[str, ...]) -> tuple[set[str], bool, bool]:
        """The probe a host gets: only the facts of the rules that apply to its roles (a node never runs the
        registry proxy's HTTP checks, a control machine never measures LocalPV mounts)."""
        facts = {f for r in host_rules + fleet_rules if r.applies_to(roles) for f in r.facts}
        facts, site = split_facts(facts)  # site rules (--rules-dir): their own probe sections, in the same probe
        return sections_for(facts) | site, bool(facts & API_FACTS), "clock_offset" in facts

    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(h: HostSpec) -> TargetState:
        async with sem:
            if on_progress:
                on_progress(h.name, "gathering")
            sections, want_docker, want_clock = needs(h.roles)
            st = await gather_host(h, inv, sections, want_docker, factory, want_clock, kubelet_cache)
            if on_progress:
                on_progress(h.name, "done" if st.reachable else "unreachable")
            return st

    # hosts-file judges names against the cluster's ingress (the guide's lookup): read Services and pods for it
    # when a cluster is configured, even if no cluster rule is selected
    need_ingress = any("resolved" in r.facts for r in host_rules)
    # localpv-dirs is skipped where the cluster has a default StorageClass of its own (§五.2.1): read them for it
    need_storage = any("localpv" in r.facts for r in host_rules)

    async def cluster_side() -> tuple[TargetState, Any] | None:
        if not cluster_rules and not (
            (need_ingress or need_storage) and (cluster is not None or cluster_facts is not None)
        ):
            return None
        if cluster is None and cluster_facts is None:
            return TargetState(
                name="cluster",
                kind="cluster",
                address=None,
                roles=(),
                error="no cluster configured (--kubeconfig or ~/.kube/config)",
            ), None
        if on_progress:
            on_progress("cluster", "gathering")
        kinds = (
            cluster_kinds(cluster_rules)
            | ({"services", "pods"} if need_ingress else set())
            | ({"storageclasses"} if need_storage else set())
        )
        res = await asyncio.to_thread(gather_cluster, cluster, kinds, cluster_facts)
        if on_progress:
            on_progress("cluster", "done" if res[0].reachable else "unreachable")
        return res

    # hosts (SSH/local) and the cluster (API) are gathered at the same time
    async def hosts_side() -> list[TargetState]:
        if preloaded_hosts is not None:
            return list(preloaded_hosts)
        return list(await asyncio.gather(*(one(h) for h in inv.hosts if only_hosts is None or h.name in only_hosts)))

    host_states, cluster_res = await asyncio.gather(hosts_side(), cluster_side())
    if kubelet_cache is not None and preloaded_hosts is None:
        kubelet_cache.save()
    targets = list(host_states)
    findings: list[Finding] = []
    ingress = storage = None
    if cluster_res is not None and cluster_res[0].reachable:
        from bkdoctor.facts.k8s import find_ingress

        ingress = _ingress_of(cluster_res[1], find_ingress)
        storage = _default_storage_class_of(cluster_res[1]) if need_storage else None
    for st in targets:
        ctx = make_context("host", inv, st, site=site, ingress=ingress, storage=storage)
        for r in host_rules:
            if not r.applies_to(st.roles):
                continue
            if not st.reachable or st.facts is None:
                res = Result("error", st.unreachable("主机不可达", "host unreachable"))
            else:
                res = evaluate(r, st.facts, ctx)
            findings.append(Finding(rule=r, target=st.name, result=res))
        if not keep_facts and st.facts is not None:
            # the parsed facts (mount tables, fstab, sysctl...) are the bulk of what a host holds after its rules
            # ran: a fleet rule parses again the few it reads (300 hosts: ~15 MB kept until the report otherwise)
            st.facts._cache.clear()
    findings.extend(evaluate_fleet(fleet_rules, targets, inv))
    if not keep_facts:
        for st in host_states:
            st.facts = None  # the probe's sections too: nothing after this reads them (issue 16)
    if cluster_res is not None and cluster_rules:
        cst, cfacts = cluster_res
        cfindings = evaluate_cluster(cluster_rules, cst, cfacts, inv, targets)
        link_causes(cfindings, findings, targets, cfacts)
        findings.extend(cfindings)
        targets.append(cst)
        extra_cluster = cfacts
    else:
        extra_cluster = None
    apply_suppressions(findings, inv, today or dt.date.today())
    finished = dt.datetime.now(dt.timezone.utc)
    return ScanResult(
        id=new_scan_id(started),
        started_at=started,
        finished_at=finished,
        targets=targets,
        findings=findings,
        rules=rules,
        inventory=inv,
        # what the host rules' contexts were made with: the fix plans from the same (fix/loop.py)
        extra={"cluster_facts": extra_cluster, "site": site, "ingress": ingress},
    )


def _default_storage_class_of(cfacts: Any) -> tuple[bool, str | None] | None:
    """(read, the default StorageClass's name or None) of the cluster; None when its StorageClasses could not be read."""
    from bkdoctor.facts.k8s import default_storage_class

    try:
        return True, default_storage_class(cfacts.get("storageclasses"))
    except FactUnavailable:
        return None


def _ingress_of(cfacts: Any, find: Callable[..., Any]) -> dict[str, Any] | None:
    """The ingress of the cluster (the guide's one lookup) when its Services were read; None otherwise."""
    try:
        services = cfacts.get("services")
    except FactUnavailable:
        return None
    try:
        pods = cfacts.get("pods")
    except FactUnavailable:
        pods = []
    return find(services, pods)
