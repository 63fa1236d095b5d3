"""`bkdoctor install`: the guide's deployment driven step for step from a bare control machine, phase by phase
(bkdoctor/install/phases.yaml), each gated by checks, with its progress in the history database so that an interrupted run
resumes where it stopped.

Each step says where it runs (a role or the control machine), in which directory (none, the install root, its
blueking/), with which environment, and which section of the guide it follows (install/steps.py: Step). A phase starts
only when its gate passes; its steps are commands (`run`/`check`, through the same transport as every other
command, output saved per step and host and shown live), bkdoctor's own remediations (`fix`), rule checks
(`rules`), manual steps the operator does in a web page (`manual`: shown, confirmed, verified) and bkdoctor's own
builtins (install/builtin.py). A finished phase whose checks still pass is skipped on a re-run; when they no
longer pass, it runs again. When a step fails, the cluster is scanned for the known failure signatures and the
phase's rules, and the cause and fix are shown.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from bkdoctor.inputs.inventory import HostSpec, Inventory
from bkdoctor.install.builtin import BUILTINS, CHECKS, PREDICATE_TEXT, PREDICATES
from bkdoctor.install.steps import DIRS, ENV, KINDS, ON, Step, StepFailed, render, root_of, script, shell_path
from bkdoctor.install.steps import PLACEHOLDER as PLACEHOLDER_RE
from bkdoctor.model import PROBLEM_STATUSES, STATUS_RANK, BadInput, T
from bkdoctor.scan import engine, loader

PHASES_FILE = Path(__file__).with_name("phases.yaml")
CONFIRM_MANUAL_ENV = "BKDOCTOR_CONFIRM_MANUAL"
NOT_IN_GUIDE = "not in the guide"  # a step's guide: from field knowledge (its note says what and why)


@dataclass
class Phase:
    id: str
    title: T
    guide: str
    steps: list[Step]
    requires: list[str] = field(default_factory=list)
    gate: list[str] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)
    optional: bool = False
    gate_strict: bool = False  # §十二.2.1: a warning of a gate rule blocks too
    gate_builtin: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # bkdoctor's own verifies (builtins), with `verify`
    part_of: str = ""  # an optional phase selected by another one's --with (registry-mirrors: registry-proxy)


def _bad(msg: str) -> ValueError:
    return ValueError("phases: " + msg)


def load_phases(path: Path = PHASES_FILE) -> list[Phase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Phase] = []
    seen: set[str] = set()
    known = {r.id for r in loader.all_rules()} | {r.group for r in loader.all_rules()}
    created: set[str] = set()
    for p in data["phases"]:
        steps = []
        for n, s in enumerate(p.get("steps") or [], 1):
            if True in s or "on" in s:  # YAML 1.1 reads a bare `on:` key as the boolean true
                raise _bad(f"{p['id']} step {n}: say `where:`, not `on:`")
            kinds = [k for k in KINDS if k in s]
            if len(kinds) != 1:
                raise _bad(f"{p['id']} step {n}: exactly one of {', '.join(KINDS)}")
            kind = kinds[0]
            v = s.get("verify") or {}
            st = Step(
                kind,
                s[kind],
                str(s.get("guide", "")),
                str(s.get("quote", "")),
                s.get("where", "control"),
                s.get("dir", "none"),
                tuple(s.get("env") or ()),
                float(s.get("timeout", 600)),
                tuple(s.get("creates") or ()),
                s.get("unless"),
                tuple(v.get("rules") or ()),
                v.get("run"),
                tuple(v.get("builtin") or ()),
                dict(s.get("args") or {}),
                str(s.get("note", "")),
                s.get("tolerate"),
            )
            where = f"{p['id']} step {n}"
            if st.guide == NOT_IN_GUIDE:
                if not st.note.startswith(NOT_IN_GUIDE):
                    raise _bad(f"{where}: a step that is {NOT_IN_GUIDE} says so in its note, and why")
            elif not st.guide or not st.quote:
                raise _bad(f"{where}: every step cites its guide section and a quote of it")
            if st.on not in ON or st.dir not in DIRS or any(e not in ENV for e in st.env):
                raise _bad(f"{where}: where/dir/env must be one of {ON} / {DIRS} / {ENV}")
            if st.dir != "none" and st.on != "control":
                raise _bad(f"{where}: only the control machine has the install dir (dir: {st.dir} on {st.on})")
            if st.dir != "none" and st.dir not in created:
                raise _bad(f"{where}: runs in {st.dir}/, which no earlier step creates")
            if st.tolerate is not None and kind != "run":
                raise _bad(f"{where}: only a run step tolerates a failure (tolerate:)")
            if st.unless and st.unless not in PREDICATES:
                raise _bad(f"{where}: unknown predicate {st.unless}")
            for b in st.verify_builtin:
                if b.split(":")[0] not in CHECKS:
                    raise _bad(f"{where}: unknown check {b}")
            if kind == "builtin" and st.value not in BUILTINS:
                raise _bad(f"{where}: unknown builtin {st.value}")
            for sel in (list(st.value) if kind in ("fix", "rules") else []) + list(st.verify_rules):
                if sel not in known:
                    raise _bad(f"{where}: unknown rule {sel}")
            created |= set(st.creates)
            steps.append(st)
        ph = Phase(
            p["id"],
            T(p["title"]["zh"], p["title"]["en"]),
            str(p.get("guide", "")),
            steps,
            list(p.get("requires") or []),
            list(p.get("gate") or []),
            list(p.get("verify") or []),
            bool(p.get("optional", False)),
            bool(p.get("gate_strict", False)),
            list(p.get("gate_builtin") or []),
            list(p.get("checks") or []),
            str(p.get("part_of") or ""),
        )
        if ph.id in seen:
            raise _bad(f"duplicate id {ph.id}")
        for r in ph.requires:
            if r not in seen:
                raise _bad(f"{ph.id} requires {r}, which is not an earlier phase")
        for sel in ph.gate + ph.verify:
            if sel not in known:
                raise _bad(f"{ph.id}: unknown rule {sel}")
        for b in ph.gate_builtin + ph.checks:
            if b.split(":")[0] not in CHECKS:
                raise _bad(f"{ph.id}: unknown check {b}")
        seen.add(ph.id)
        out.append(ph)
    return out


def select_phases(
    phases: list[Phase], only: str | None, start: str | None, until: str | None, with_optional: set[str]
) -> list[Phase]:
    ids = [p.id for p in phases]
    for x in (only, start, until):
        if x and x not in ids:
            raise BadInput(
                T(f"未知阶段 {x!r}（可用阶段: {', '.join(ids)}）", f"unknown phase {x!r} (phases: {', '.join(ids)})")
            )
    for x in with_optional:
        if x not in ids:
            raise BadInput(T(f"--with 中有未知阶段 {x!r}", f"unknown phase {x!r} in --with"))
    out = [p for p in phases if not p.optional or p.id in with_optional or p.part_of in with_optional or p.id == only]
    if only:
        return [p for p in out if p.id == only]
    if start:
        out = out[[p.id for p in out].index(start) :] if start in [p.id for p in out] else out
    if until:
        ids2 = [p.id for p in out]
        if until in ids2:
            out = out[: ids2.index(until) + 1]
    return out


# -- state -------------------------------------------------------------------------------------------
class InstallState:
    """Progress in the history database: one row per phase step, and per phase."""

    def __init__(self, history: Any) -> None:
        self.db = history.db
        if "install_steps" not in self.db.table_names():
            self.db["install_steps"].create(
                {"key": str, "phase": str, "step": int, "status": str, "updated_at": str, "log": str, "detail": str},
                pk="key",
            )

    def get(self, phase: str, step: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from install_steps where key = ?", [f"{phase}#{step}"]))
        return rows[0] if rows else None

    def set(self, phase: str, step: int, status: str, log: str = "", detail: str = "") -> None:
        with self.db.conn:
            self.db["install_steps"].upsert(
                {
                    "key": f"{phase}#{step}",
                    "phase": phase,
                    "step": step,
                    "status": status,
                    "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "log": log,
                    "detail": detail,
                },
                pk="key",
            )

    def phase_done(self, phase: str) -> bool:
        r = self.get(phase, -1)
        return bool(r and r["status"] == "done")

    def reset_phase(self, phase: str) -> None:
        with self.db.conn:
            self.db.execute("delete from install_steps where phase = ?", [phase])


# -- the runner --------------------------------------------------------------------------------------
@dataclass
class PhaseReport:
    phase: str
    status: str  # done | skipped (already done) | blocked (gate) | failed | planned
    message: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)


class Installer:
    def __init__(
        self,
        inv: Inventory,
        *,
        history: Any,
        say: Callable[[str], None],
        confirm: Callable[[str], bool],
        cluster_factory: Callable[[], Any],
        factory: Any = engine.default_transport,
        log_dir: str | None = None,
        lang: str = "en",
        kubeconfig: str | None = None,
        interactive: bool = False,
        confirmed_manual: list[str] | None = None,
        show_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.inv, self.history, self.say, self.confirm = inv, history, say, confirm
        # the one line meant to show a secret (§六.4.3 the admin password, once): the terminal only, not masked,
        # never logged; `say` masks everything else
        self.show_secret = show_secret or say
        self.cluster_factory, self.factory, self.lang = cluster_factory, factory, lang
        self.interactive = interactive
        # manual steps the operator confirmed explicitly when there is no terminal (ids like saas.1)
        self.confirmed_manual = set(
            confirmed_manual
            if confirmed_manual is not None
            else [x.strip() for x in os.environ.get(CONFIRM_MANUAL_ENV, "").split(",") if x.strip()]
        )
        self.state = InstallState(history)
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        self.log_dir = Path(log_dir or os.path.join(base, "bkdoctor", "install-logs"))

    # -- settings and hosts ---------------------------------------------------------------------------
    @property
    def base(self) -> str:
        from bkdoctor.inputs.siteconfig import DOWNLOAD_BASE_DEFAULT

        return (getattr(self.inv, "download_base", None) or DOWNLOAD_BASE_DEFAULT).rstrip("/")

    def values(self) -> dict[str, str]:
        th = self.inv.thresholds
        masters = self.hosts_for("first-master", missing_ok=True)
        nodes = self.hosts_for("nodes", missing_ok=True) or self.hosts_for("k8s-nodes", missing_ok=True)
        return {
            "domain": self.inv.domain or "",
            "registry": getattr(self.inv, "registry", None) or "",
            "base": self.base,
            "master": masters[0].address if masters else "",
            "node_ip": nodes[0].address if nodes else "",
            "upstream": th["registry_upstream"],
            "proxy_port": str(th["registry_port"]),
            "proxy_config": th["registry_config"],
            "proxy_data": th["registry_data"],
        }

    def env(self) -> dict[str, str]:
        return {
            "BK_DOMAIN": self.inv.domain or "",
            "REGISTRY": getattr(self.inv, "registry", None) or "",
            "INSTALL_DIR": root_of(self.inv.install_dir),
            "RELEASE_BASEURL": self.base + "/",
        }

    def control(self) -> HostSpec:
        pick = [h for h in self.inv.hosts if "control" in h.roles]
        return pick[0] if pick else HostSpec(name="control", address="localhost", roles=("control",), local=True)

    def hosts_for(self, on: str, missing_ok: bool = False) -> list[HostSpec]:
        hosts = self.inv.hosts
        masters = [h for h in hosts if "master" in h.roles]
        pick = {
            "control": [self.control()],
            "first-master": masters[:1],
            "other-masters": masters[1:],
            "nodes": [h for h in hosts if "node" in h.roles and "master" not in h.roles],
            "k8s-nodes": [h for h in hosts if "master" in h.roles or "node" in h.roles],
            # every host with the node role, a master that is also a node included (§五.2.3.1: Node节点)
            "node-role": [h for h in hosts if "node" in h.roles],
            "registry-proxy": [h for h in hosts if "registry-proxy" in h.roles],
        }[on]
        if not pick and not missing_ok and on not in ("other-masters", "nodes", "node-role"):
            raise BadInput(T(f"清单中没有角色为 {on} 的主机", f"no host with role {on} in the inventory"))
        return pick

    def is_control(self, h: HostSpec) -> bool:
        c = self.control()
        return h.name == c.name or (h.address == c.address and h.address not in ("localhost", "127.0.0.1"))

    def _script(self, step: Step, host: HostSpec, command: str) -> str:
        on_control = self.is_control(host) and step.on == "control"
        env = self.env()
        text = script(
            step, render(command, self.values()), install_dir=self.inv.install_dir, env=env, on_control=on_control
        )
        if "INSTALL_DIR" in step.env:  # a path: expanded on the host, still quoted
            text = text.replace(
                f"INSTALL_DIR={shlex.quote(env['INSTALL_DIR'])};", f"INSTALL_DIR={shell_path(env['INSTALL_DIR'])};"
            )
        if on_control and host.local and self.kubeconfig:
            # commands on this machine use the cluster bkdoctor checks (install --kubeconfig)
            text = f"KUBECONFIG={shlex.quote(os.path.abspath(self.kubeconfig))}; export KUBECONFIG\n" + text
        return text

    # -- rules ----------------------------------------------------------------------------------------
    async def statuses(self, sels: list[str], inv: Inventory | None = None) -> dict[str, tuple[str, list[Any]]]:
        if not sels:
            return {}
        rules = loader.select(sorted(set(sels)), None)
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in rules) else None
        res = await engine.scan(inv or self.inv, rules, factory=self.factory, cluster=cluster)
        out: dict[str, tuple[str, list[Any]]] = {}
        rank = STATUS_RANK
        for f in res.findings:
            st, fs = out.get(f.rule.id, ("pass", []))
            if rank[f.status] > rank[st] or (rank[f.status] == rank[st] and f.status != "pass" and st == "skip"):
                st = f.status
            out[f.rule.id] = (st, fs + [f])
        return out

    @staticmethod
    def verdict(
        statuses: dict[str, tuple[str, list[Any]]], sels: list[str], strict: bool = False, warn_blocks: bool = False
    ) -> tuple[bool, list[Any]]:
        """(ok, failing findings): warnings do not block (unless `warn_blocks`: the version gates of §十二.2.1);
        errors and failures do. `strict` (verify rules): a check that was skipped (no cluster yet, Docker not
        installed) does not prove the phase is done."""
        bad = []
        ids = {r.id for r in loader.select(sels, None)} if sels else set()
        for rid in ids:
            st, fs = statuses.get(rid, ("pass", []))
            if st in ("fail", "error") or (warn_blocks and st == "warn"):
                bad += [f for f in fs if f.status in PROBLEM_STATUSES]
            elif warn_blocks and st == "skip" and any(f.status == "skip" for f in fs):
                # a strict gate (§十二.2.1's versions) that could not be judged (no bk-gse / bk-apigateway yet, no
                # cluster) does not let the phase start
                bad += [f for f in fs if f.status == "skip"]
            elif strict and any(f.status == "skip" for f in fs) and not rid.startswith("faq-"):
                bad += [f for f in fs if f.status == "skip"]
        return not bad, bad

    # -- the cluster, for bkdoctor's own checks ---------------------------------------------------------
    def _core(self) -> Any:
        access = self.cluster_factory()
        if access is None:
            raise StepFailed("no cluster configured (--kubeconfig or ~/.kube/config)")
        from kubernetes import client

        return client.CoreV1Api(access.api_client), access

    def _cluster(self, fn: Callable[[Any, Any], Any]) -> Any:
        core, access = self._core()
        try:
            return fn(core, access)
        except StepFailed:
            raise
        except Exception as e:  # ApiException, connection errors
            raise StepFailed(
                f"Kubernetes API: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}"
            ) from None
        finally:
            access.close()

    def _storage_classes(self) -> list[dict[str, Any]]:
        def f(core: Any, access: Any) -> list[dict[str, Any]]:
            from kubernetes import client

            return [
                access.api_client.sanitize_for_serialization(x)
                for x in client.StorageV1Api(access.api_client).list_storage_class().items
            ]

        return self._cluster(f)

    def default_storage_class(self) -> str | None:
        from bkdoctor.facts.k8s import default_storage_class

        return default_storage_class(self._storage_classes())

    def _releases(self) -> dict[str, dict[str, Any]]:
        from bkdoctor.facts.cluster import ClusterFacts

        access = self.cluster_factory()
        if access is None:
            raise StepFailed("no cluster configured (--kubeconfig or ~/.kube/config)")
        try:
            rels = ClusterFacts(access).get("helm_releases")
        except Exception as e:
            raise StepFailed(f"helm releases: {getattr(e, 'reason', e)}") from None
        finally:
            access.close()
        return {r["name"]: r for r in rels}

    # -- running on hosts -----------------------------------------------------------------------------
    async def run_on(
        self, host: HostSpec, text: str, timeout: float, log: Path | None, show: bool, header: str = ""
    ) -> tuple[int, str]:
        """Run a script on a host; output to `log` and the terminal (`show`), and returned (last 64 KiB)."""
        from bkdoctor.safe.secrets import LiveMasker, mask_text

        buf = bytearray()
        fh = None
        # the output masked as it comes, once, for the log and the terminal alike: neither holds a secret while the
        # step runs, nor the log when bkdoctor is killed (whole lines: a secret split between two chunks, an open
        # PEM block, a YAML secret's block are held until they end)
        live = LiveMasker()
        if log is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fh = open(log, "wb")
            fh.write(mask_text(f"# {dt.datetime.now().isoformat()} on {host.name}: {header}\n").encode())

        def emit(masked: bytes) -> None:
            if fh:
                fh.write(masked)
                fh.flush()
            if show:
                for line in masked.decode("utf-8", "replace").splitlines():
                    self.say(f"    | {_clean(line)}")

        def on_out(chunk: bytes) -> None:
            buf.extend(chunk)
            del buf[:-65536]
            emit(live.feed(chunk))

        transport = self.factory(host, self.inv)
        try:
            rc = await run_streaming(transport, text, timeout, on_out)
        except Exception as e:  # TransportError: unreachable, timed out
            emit(live.close())  # what the step printed, then why it stopped
            if fh:
                fh.write(mask_text(f"\n# bkdoctor: {e}\n").encode())
            self.say(f"    ! {host.name}: {_clean(str(e))}")
            rc = 255
        finally:
            emit(live.close())  # nothing left after the except's: close() gives what is still held, once
            if fh:
                fh.close()
            await transport.close()
        return rc, buf.decode("utf-8", "replace")

    async def run_command(self, phase: Phase, idx: int, step: Step) -> tuple[bool, str]:
        logs = []
        for host in self.hosts_for(step.on):
            log = self.log_dir / f"{phase.id}-{idx + 1}-{host.name}.log"
            rc, out = await self.run_on(
                host, self._script(step, host, step.value), step.timeout, log, True, step.describe(self.values())
            )
            logs.append(str(log))
            # the guide's ignorable failure, said last by the script itself: never a timeout or a lost connection (255)
            if rc not in (0, 97, 255) and step.tolerate and step.tolerate in "\n".join(out.splitlines()[-3:]):
                # the guide says this failure can be ignored (it names the text): said so, the step goes on
                self.say(f"    ! {host.name}: {_clean(step.tolerate)}: ignored, as §{step.guide} says")
                rc = 0
            if rc != 0:
                if rc == 97:
                    self.say(f"    ! {host.name}: the step's directory does not exist there")
                return False, str(log)
            if step.verify_run:
                vrc, vout = await self.run_on(host, self._script(step, host, step.verify_run), 120, None, False)
                if vrc != 0:
                    self.say(f"    ! {host.name}: verify failed: {render(step.verify_run, self.values())}")
                    for line in vout.splitlines()[-5:]:
                        self.say(f"    | {_clean(line)}")
                    return False, str(log)
        return True, ", ".join(logs)

    async def _step(self, p: Phase, i: int, step: Step) -> tuple[bool, str, str]:
        try:
            if step.kind == "fix":
                ok, detail = await self.run_fix_step(step)
                log = ""
            elif step.kind == "rules":
                ok, detail = await self.run_rules_step(step)
                log = ""
            elif step.kind == "manual":
                ok, detail = await self.run_manual_step(step, f"{p.id}.{i + 1}")
                log = ""
            elif step.kind == "builtin":
                ok, detail = await BUILTINS[step.value](self, step)
                log = ""
            else:
                ok, log = await self.run_command(p, i, step)
                detail = ""
            if ok and step.kind != "run" and step.verify_run:
                for host in self.hosts_for(step.on):
                    rc, out = await self.run_on(host, self._script(step, host, step.verify_run), 120, None, False)
                    if rc != 0:
                        return False, log, f"verify failed on {host.name}: {render(step.verify_run, self.values())}"
            if ok and step.verify_rules:
                inv = self._inv_for(step)
                st = await self.statuses(list(step.verify_rules), inv)
                vok, bad = self.verdict(st, list(step.verify_rules), strict=True)
                if not vok:
                    return (
                        False,
                        log,
                        "\n".join(
                            f"verify: {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}" for f in bad[:10]
                        ),
                    )
            if ok:
                for b in step.verify_builtin:
                    cok, msg = await self.check(b)
                    if not cok:
                        return False, log, f"verify: {msg}"
            return ok, log, detail
        except StepFailed as e:
            return False, "", str(e)

    def _inv_for(self, step: Step) -> Inventory:
        over = step.args.get("thresholds")
        if not over:
            return self.inv
        import copy

        inv = copy.copy(self.inv)
        th = dict(self.inv.thresholds)
        for k, v in over.items():
            th[k] = [render_value(x, self) for x in v] if isinstance(v, list) else v
        inv.thresholds = th
        return inv

    async def run_fix_step(self, step: Step) -> tuple[bool, str]:
        from bkdoctor.fix.loop import run_fix

        rules = loader.select(list(step.value), None)
        # the hosts the plan shows for this step (where:), never another; a step of cluster rules only has none
        hosts = None if all(r.scope == "cluster" for r in rules) else self.step_host_names(step)
        if hosts is not None and not hosts:
            return True, f"no host for where: {step.on} in the inventory: nothing to fix"
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in rules) else None
        outcomes = await run_fix(
            self._inv_for(step),
            rules,
            hosts=hosts,
            cluster=cluster,
            dry_run=False,
            allow_disruptive=True,
            confirm=lambda plans: True,
            say=lambda s: self.say("    " + s),
            history=self.history,
            factory=self.factory,
            lang=self.lang,
        )
        bad = [o for o in outcomes if o.status in ("failed", "skipped", "manual", "refused")]
        lines = [f"{o.status} {o.rule}@{o.target}: {o.message.get(self.lang)}" for o in outcomes]
        return not bad, "\n".join(lines)

    def step_host_names(self, step: Step) -> set[str]:
        """The hosts the plan shows for this step (its `where:`): host checks and fixes judge these, no other."""
        return {h.name for h in self.hosts_for(step.on, missing_ok=True)}

    @staticmethod
    def only_hosts(statuses: dict[str, tuple[str, list[Any]]], names: set[str]) -> dict[str, tuple[str, list[Any]]]:
        """The statuses recomputed from the findings of host rules on `names` (cluster and fleet findings kept)."""
        rank = STATUS_RANK
        out: dict[str, tuple[str, list[Any]]] = {}
        for rid, (_, fs) in statuses.items():
            keep = [f for f in fs if f.rule.scope != "host" or f.target in names]
            st = "pass"
            for f in keep:
                if rank[f.status] > rank[st] or (rank[f.status] == rank[st] and f.status != "pass" and st == "skip"):
                    st = f.status
            out[rid] = (st, keep)
        return out

    async def run_rules_step(self, step: Step) -> tuple[bool, str]:
        names = self.step_host_names(step)
        rules = loader.select(list(step.value), None)
        if not names and any(r.scope == "host" for r in rules):
            return True, f"no host for where: {step.on} in the inventory: nothing to check"
        st = self.only_hosts(await self.statuses(list(step.value), self._inv_for(step)), names)
        ok, bad = self.verdict(st, list(step.value), strict=True)
        lines = [f"{f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}" for f in bad[:10]]
        for f in bad[:10]:
            if f.rule.remediation:
                lines.append(f"  -> bkdoctor fix --rule {f.rule.id} --host {shlex.quote(f.target)}")
        return ok, "\n".join(lines)

    async def run_manual_step(self, step: Step, sid: str = "") -> tuple[bool, str]:
        """Something only the operator can do (a web page): show exactly what, wait for the confirmation, then
        verify what bkdoctor can see. Without a terminal (--yes) a step whose checks prove the operator's work
        (`args: {proven_by_verify: true}`: the S-Mart app's pods) is done when they pass; any other (the Redis pool:
        bk-redis exists since §五.3; the GSE environment: nothing to check) waits for the operator unless its id
        is confirmed explicitly (BKDOCTOR_CONFIRM_MANUAL=saas.1,agents.8): never recorded done silently."""
        self.say("    " + "=" * 60)
        for line in render_text(step.value.get(self.lang) or step.value["en"], self).splitlines():
            self.say(f"    {line}")
        self.say("    " + "=" * 60)
        if self.interactive:
            if not self.confirm("done? / 已完成？"):
                return False, "not confirmed"
            return True, ""
        if step.args.get("proven_by_verify"):
            return True, ""
        if sid and sid in self.confirmed_manual:
            self.say(f"    confirmed by the operator ({CONFIRM_MANUAL_ENV}={sid})")
            return True, ""
        return False, (
            f"manual step {sid} waits for the operator: bkdoctor cannot see this work; run install on a "
            f"terminal, or confirm it with {CONFIRM_MANUAL_ENV}={sid} / 该手工步骤无法自动核对：请在终端运行，"
            f"或以 {CONFIRM_MANUAL_ENV}={sid} 明确确认"
        )

    async def check(self, name: str) -> tuple[bool, str]:
        fn = CHECKS[name.split(":")[0]]
        arg = name.split(":", 1)[1] if ":" in name else ""
        try:
            return await fn(self, arg)
        except StepFailed as e:
            return False, f"{name}: {e}"

    async def predicate(self, name: str) -> bool:
        return await PREDICATES[name](self)

    # -- plan -----------------------------------------------------------------------------------------
    async def existing_dirs(self) -> set[str] | None:
        """Which of the install root / blueking/ exist on the control machine now (None: cannot tell)."""
        root, bk = shell_path(root_of(self.inv.install_dir)), shell_path(self.inv.install_dir)
        text = f"test -d {root} && echo root; test -d {bk} && echo blueking; true\n"
        try:
            transport = self.factory(self.control(), self.inv)
            try:
                res = await transport.run_script(text, 30)
            finally:
                await transport.close()
        except Exception:
            return None
        if res.rc != 0:
            return None
        return set(res.stdout.decode("utf-8", "replace").split())

    async def plan_errors(self, phases: list[Phase]) -> list[dict[str, Any]]:
        """Per step: errors that would make it fail for certain (its directory does not exist yet at that point
        of the plan, the hosts it needs are missing, an even number of masters)."""
        found = await self.existing_dirs()
        have = found if found is not None else {"root", "blueking"}  # unreachable: the run will say so
        out = []
        all_ids = [p.id for p in load_phases()]
        creators = {}
        for p in load_phases():
            for i, s in enumerate(p.steps):
                for d in s.creates:
                    creators.setdefault(d, (p.id, i + 1, s.guide))
        for p in phases:
            for i, s in enumerate(p.steps):
                err = None
                if s.dir != "none" and s.dir not in have:
                    by = creators.get(s.dir)
                    path = self.inv.install_dir if s.dir == "blueking" else root_of(self.inv.install_dir)
                    err = f"directory {path} does not exist yet at this point" + (
                        f" (created by {by[0]} step {by[1]}, §{by[2]})"
                        if by and all_ids.index(by[0]) <= all_ids.index(p.id)
                        else ""
                    )
                try:
                    hosts = self.hosts_for(s.on)
                except BadInput as e:
                    hosts, err = [], err or str(e)
                vals = self.values()
                for cmd in (s.value if s.kind in ("run", "check") else "", s.verify_run or ""):
                    for name in PLACEHOLDER_RE.findall(cmd):
                        if not vals.get(name) and name != "registry":
                            err = (
                                err or f"needs @{{{name}}}, which the inventory does not give (no such host or setting)"
                            )
                if s.kind == "builtin" and s.value == "join":
                    n = len([h for h in self.inv.hosts if "master" in h.roles])
                    if n % 2 == 0:
                        err = err or f"{n} masters in the inventory: §三.3.2 wants an odd number (1/3/5)"
                if err:
                    out.append({"phase": p.id, "step": i + 1, "error": err, "hosts": [h.name for h in hosts]})
                have |= set(s.creates)
        return out

    async def plan(self, phases: list[Phase]) -> list[dict[str, Any]]:
        sels = sorted({s for p in phases for s in p.gate + p.verify})
        st = await self.statuses(sels)
        errors = {(e["phase"], e["step"]): e["error"] for e in await self.plan_errors(phases)}
        values = self.values()
        rows = []
        for p in phases:
            gate_ok, gate_bad = self.verdict(st, p.gate, warn_blocks=p.gate_strict)
            ver_ok, _ = self.verdict(st, p.verify, strict=True) if p.verify else (False, [])
            steps = []
            for i, s in enumerate(p.steps):
                try:
                    hosts = [h.name for h in self.hosts_for(s.on)]
                except BadInput:
                    hosts = []
                d = {"none": "-", "root": root_of(self.inv.install_dir), "blueking": self.inv.install_dir}[s.dir]
                steps.append(
                    {
                        "n": i + 1,
                        "kind": s.kind,
                        "on": s.on,
                        "hosts": hosts,
                        "dir": d,
                        "env": list(s.env),
                        "guide": s.guide,
                        "quote": s.quote,
                        "command": _clean(self.describe(s, values)),
                        "unless": s.unless,
                        "error": errors.get((p.id, i + 1)),
                    }
                )
            rows.append(
                {
                    "phase": p.id,
                    "title": p.title.get(self.lang),
                    "guide": p.guide,
                    "optional": p.optional,
                    "gate": "pass" if gate_ok else "fail",
                    "gate_failing": sorted({f"{f.rule.id}@{f.target}" for f in gate_bad}),
                    "verify": "pass" if ver_ok else "not yet",
                    "state": "done" if self.state.phase_done(p.id) else "",
                    "steps": steps,
                }
            )
        return rows

    def describe(self, s: Step, values: dict[str, str]) -> str:
        if s.kind == "builtin" and s.value == "join":
            masters = [h.name for h in self.hosts_for("other-masters", True)]
            nodes = [h.name for h in self.hosts_for("nodes", True)]
            return (
                render("curl -fsSL @{base}/ce7/bcs.sh | bash -s -- -i k8sctrl", values) + "  (on the first master; "
                "output kept from the terminal and the logs: it holds the join tokens)\n"
                f"then its control-plane join command on: {', '.join(masters) or '(no other master)'}\n"
                f"and its node join command on: {', '.join(nodes) or '(no node)'}  (hosts already Nodes are left alone)"
            )
        if s.kind == "builtin" and s.value == "yaml-keys":
            shown = {
                "@domain": values.get("domain") or "<BK_DOMAIN>",
                "@containers_log_path": "<the nodes' Docker Root Dir>/containers",
                "@default_storage_class": "<the default StorageClass>",
            }
            keys = ", ".join(
                f"{k.replace('/', '.')}: {shown.get(v, v) if isinstance(v, str) else str(v).lower()}"
                for k, v in s.args["set"].items()
            )
            return f"bkdoctor: in {s.args['file']} add what is missing (every other line kept): {keys}"
        if s.kind == "builtin" and s.value == "access-info":
            return (
                "bkdoctor: show the hosts entries for your computer (the ingress-nginx node's IP) and the admin "
                "account of bk-user-api-general-envs, once (never logged or stored)"
            )
        if s.kind == "manual":
            return "manual: " + render_text(s.value.get(self.lang) or s.value["en"], self)
        extra = (s.args.get("thresholds") or {}).get("coredns_extra_names")
        if s.kind == "fix" and extra:
            return s.describe(values) + "  (with " + ", ".join(render_value(x, self) for x in extra) + ")"
        return s.describe(values)

    # -- after a failure ------------------------------------------------------------------------------
    async def diagnose(self, phase: Phase) -> list[Any]:
        """After a failure: the failure signatures and the phase's own rules, failing ones first."""
        host_rules = sorted({h for r in loader.select(["faq"], None) for h in r.host_rules})
        sels = ["faq"] + phase.verify + host_rules
        try:
            st = await self.statuses(sels)
        except BadInput:
            return []
        found = [
            f
            for rid, (s, fs) in st.items()
            for f in fs
            if f.status in PROBLEM_STATUSES and (rid.startswith("faq-") or rid in phase.verify or f.related)
        ]
        found.sort(key=lambda f: (f.status != "fail", f.rule.id))
        for f in found[:10]:
            self.say(f"  ! {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
            for rel in f.related:
                if rel.get("fix"):
                    self.say(f"    -> {rel['fix']}")
            if f.rule.remediation:
                self.say(f"    -> bkdoctor fix --rule {f.rule.id} --host {shlex.quote(f.target)}")
        return found

    async def offer_fixes(self, found: list[Any]) -> bool:
        """Offer bkdoctor's own fixes for what the diagnosis found; True when at least one was fixed."""
        from bkdoctor.fix.loop import run_fix
        from bkdoctor.fix.plan import all_remediations

        rems = all_remediations()
        rules = sorted({f.rule.id for f in found if f.rule.remediation in rems and f.status in ("fail", "warn")})
        rules += sorted({r["rule"] for f in found for r in f.related if r.get("fix") and r["rule"] not in rules})
        if not rules:
            return False
        # only where the diagnosis found the problem (the targets just shown), never every host
        targets = {f.target for f in found if f.rule.id in rules} | {
            r["target"] for f in found for r in f.related if r.get("fix") and r.get("target")
        }
        question = f"apply bkdoctor's fixes for {', '.join(rules)} on {', '.join(sorted(targets))} and retry?"
        self.say(f"  {_clean(question)}")
        if not self.confirm(question):
            return False
        sel = loader.select(rules, None)
        cluster = self.cluster_factory() if any(r.scope == "cluster" for r in sel) else None
        outcomes = await run_fix(
            self.inv,
            sel,
            hosts=targets or None,
            cluster=cluster,
            dry_run=False,
            allow_disruptive=False,
            confirm=lambda plans: True,
            say=lambda s: self.say("    " + s),
            history=self.history,
            factory=self.factory,
            lang=self.lang,
        )
        for o in outcomes:
            self.say(f"    {o.status} {o.rule}@{o.target}: {o.message.get(self.lang)}")
        return any(o.status == "fixed" for o in outcomes)

    # -- the run --------------------------------------------------------------------------------------
    async def phase_verified(self, p: Phase) -> tuple[bool, list[Any], list[str]]:
        ok, bad = True, []
        if p.verify:
            st = await self.statuses(p.verify)
            ok, bad = self.verdict(st, p.verify, strict=True)
        msgs = await self.failed_checks(p.checks)
        return ok and not msgs, bad, msgs

    async def failed_checks(self, names: list[str]) -> list[str]:
        """What each built-in check in `names` that does not pass says (none: all pass)."""
        msgs = []
        for name in names:
            ok, msg = await self.check(name)
            if not ok:
                msgs.append(msg)
        return msgs

    async def run(self, phases: list[Phase]) -> list[PhaseReport]:
        reports: list[PhaseReport] = []
        for p in phases:
            self.say(f"== {p.id}: {p.title.get(self.lang)} (§{p.guide})")
            for r in p.requires:
                if not self.state.phase_done(r) and r in {x.id for x in phases}:
                    reports.append(PhaseReport(p.id, "blocked", f"requires {r}, not finished"))
                    return reports
            if self.state.phase_done(p.id) and (p.verify or p.checks):
                ok, _, _ = await self.phase_verified(p)
                if ok:
                    self.say("   already done and its checks still pass, so it is skipped")
                    reports.append(PhaseReport(p.id, "skipped", "already done"))
                    continue
                self.say("   was done, but its checks fail now: running it again")
                self.state.reset_phase(p.id)
            elif self.state.phase_done(p.id):
                self.say("   already done: skipped")
                reports.append(PhaseReport(p.id, "skipped", "already done"))
                continue
            if p.gate or p.gate_builtin:
                st = await self.statuses(p.gate)
                ok, bad = self.verdict(st, p.gate, warn_blocks=p.gate_strict)
                msgs = await self.failed_checks(p.gate_builtin)
                if not ok or msgs:
                    for f in bad[:10]:
                        self.say(f"  gate: {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
                        if f.rule.remediation:
                            self.say(f"    -> bkdoctor fix --rule {f.rule.id} --host {shlex.quote(f.target)}")
                    for m in msgs:
                        self.say(f"  gate: {m}")
                    why = "; ".join(
                        [f"{f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}" for f in bad[:3]] + msgs
                    )
                    reports.append(
                        PhaseReport(
                            p.id, "blocked", "gate: " + why, [{"rule": f.rule.id, "target": f.target} for f in bad]
                        )
                    )
                    return reports
            if not self.confirm(f"run phase {p.id} ({len(p.steps)} step(s))?"):
                reports.append(PhaseReport(p.id, "blocked", "not confirmed"))
                return reports
            for i, step in enumerate(p.steps):
                n = f"[{i + 1}/{len(p.steps)}] §{step.guide}"
                prev = self.state.get(p.id, i)
                if prev and prev["status"] in ("done", "not needed"):
                    self.say(f"  {n} {step.describe(self.values())}: done before, not repeated")
                    continue
                if step.unless:
                    try:
                        skip = await self.predicate(step.unless)
                    except StepFailed as e:
                        self.say(f"  {n} cannot tell whether it is needed ({e})")
                        reports.append(PhaseReport(p.id, "failed", f"step {i + 1}: {e}"))
                        return reports
                    if skip:
                        self.say(f"  {n} {step.describe(self.values())}: not needed ({PREDICATE_TEXT[step.unless]})")
                        self.state.set(p.id, i, "not needed")
                        continue
                self.say(f"  {n} {self.describe(step, self.values()).splitlines()[0]}")
                self.state.set(p.id, i, "running")
                ok, log, detail = await self._step(p, i, step)
                found: list[Any] = []
                if not ok and step.kind != "manual":
                    found = await self.diagnose(p)
                    if await self.offer_fixes(found):
                        self.say(f"  {n} retrying after the fixes")
                        ok, log, detail = await self._step(p, i, step)
                if not ok:
                    self.state.set(p.id, i, "failed", log, detail)
                    if step.kind == "manual":
                        self.say(
                            f"  step {i + 1} waits for the operator: do the above, then run install again"
                            + (f"\n{detail}" if detail else "")
                        )
                        reports.append(PhaseReport(p.id, "failed", f"step {i + 1} waits for the operator (manual)"))
                        return reports
                    self.say(
                        f"  step {i + 1} failed" + (f" (log: {log})" if log else "") + (f"\n{detail}" if detail else "")
                    )
                    reports.append(
                        PhaseReport(
                            p.id,
                            "failed",
                            f"step {i + 1} failed" + (f": {detail.splitlines()[0]}" if detail else ""),
                            [
                                {"rule": f.rule.id, "target": f.target, "status": f.status, "related": f.related}
                                for f in found
                            ],
                        )
                    )
                    return reports
                self.state.set(p.id, i, "done", log, "" if step.args.get("secret") else detail)
            if p.verify or p.checks:
                ok, bad, msgs = await self.phase_verified(p)
                found = []
                if not ok:
                    for f in bad[:10]:
                        self.say(f"  verify: {f.rule.id} @ {f.target}: {f.result.message.get(self.lang)}")
                    for m in msgs:
                        self.say(f"  verify: {m}")
                    found = await self.diagnose(p)
                    if await self.offer_fixes(found or bad):
                        ok, bad, msgs = await self.phase_verified(p)
                if not ok:
                    reports.append(
                        PhaseReport(
                            p.id,
                            "failed",
                            "verify: " + "; ".join([f"{f.rule.id} @ {f.target}" for f in bad[:5]] + msgs),
                            [
                                {"rule": f.rule.id, "target": f.target, "status": f.status, "related": f.related}
                                for f in found or bad
                            ],
                        )
                    )
                    return reports
            self.state.set(p.id, -1, "done")
            self.say(f"   {p.id} done")
            reports.append(PhaseReport(p.id, "done"))
        return reports


def _clean(s: str) -> str:
    """No control characters reach the terminal (a host's output may carry escape sequences)."""
    return "".join(
        ch if ch in "\t\n" or (ord(ch) >= 32 and ord(ch) != 127 and not 0x80 <= ord(ch) < 0xA0) else "?" for ch in s
    )


def render_value(v: Any, inst: Installer) -> Any:
    """`@{name}` inside a value bkdoctor uses itself (not a shell): replaced by the plain value."""
    if not isinstance(v, str):
        return v
    vals = inst.values()
    return PLACEHOLDER_RE.sub(lambda m: vals[m.group(1)], v)


def render_text(v: str, inst: Installer) -> str:
    return render_value(v, inst)


async def run_streaming(transport: Any, script: str, timeout: float, on_out: Callable[[bytes], None]) -> int:
    """Run a script, handing output to `on_out` as it comes when the transport can stream, else at the end."""
    stream = getattr(transport, "run_streaming", None)
    if stream is not None:
        return await stream(script, timeout, on_out)
    # keep_tail: a step that talks much is run to its end (its log keeps the last 64 MiB of each stream), never
    # stopped half way as a probe that prints too much is
    res = await transport.run_script(script, timeout, keep_tail=True)
    on_out(res.stdout + res.stderr)
    return res.rc
