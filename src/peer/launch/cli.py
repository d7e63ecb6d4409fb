"""``tools/launch SCENARIO.toml``: run a scenario as real processes and watch it live.

Creates keys and ports, forks one ``peer run`` per node on 127.0.0.1, shows the
whole network in a live dashboard, signals the seller once every node is
linked, waits until every node has settled with a complete ledger copy, then
stops every child and checks the outcome against the replay reference and
every ledger copy.  ``--headless --json`` prints the run as ``peer sim --json``
does (plus ``check`` and ``timing``) and exits non-zero if a check fails.
Every child is stopped on exit, on error and on Ctrl-C.

Fault injection (``--kill``, ``--behaviour``, ``--restart-after``; see
:mod:`peer.launch.faults` and ``docs/adversaries-real.md``) changes what "done"
means: every honest node that joined the auction has settled or aborted with a
reason (and any restarted node had a moment to catch its ledger up).  The check
then reports the outcome (completed, aborted, stalled) and judges the honest
ledger copies; a run exits 0 when the outcome is a defined one and every
ledger check passes, 1 when it stalled or a check failed.  Every wait is
bounded: the launcher never hangs.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import tomllib
import time
from pathlib import Path
from typing import Annotated, Any

import trio
import typer
from rich.console import Console
from rich.live import Live

from peer.errors import ScenarioError
from peer.launch.check import assemble, assemble_with_faults
from peer.launch.budgets import Topology, disconnected_message, timeout_problems
from peer.launch.faults import Faults, FaultSpecError
from peer.launch.hosts import HostsError
from peer.launch.linger import close_view, stdout_closed as _stdout_closed
from peer.launch.remote import RemoteChildren
from peer.launch.spread import spread_over_hosts
from peer.launch.monitor import NetworkState
from peer.launch.plan import plan_nodes
from peer.launch.processes import Children
from peer.result import dumps
from peer.scenario.load import load_scenario
from peer.tui.views import network_view

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class LaunchFailed(Exception):
    pass


CATCHUP_WAIT = 5.0  # seconds a restarted node gets to catch its ledger up once the honest nodes are done
QUIET = 0.5  # seconds without new events before a faulty run counts as finished
# Nodes per wave of a staged start (peer.launch.plan.start_order): a wave starts once every node
# before it listens, so its dials never meet a closed port, and a thousand nodes never start (and
# handshake) at once: with all of them runnable on two cores, handshakes outlasted their 5 s timeout
# and were dialled again, several times over.
WAVE = 50


class _Watch:
    """Follows the logs until the run is done.  ``run`` returns "done", or "restart" when a
    killed node is due to be forked again: the caller leaves trio to fork (see processes.py)
    and calls ``run`` again; all progress is kept here."""

    def __init__(
        self, state: NetworkState, children: Any, seller: str, *, live: Live | None, link_timeout: float,
        timeout: float, title: str, faults: Faults,
    ) -> None:
        self.state, self.children, self.seller, self.live = state, children, seller, live
        self.link_timeout, self.timeout, self.title, self.faults = link_timeout, timeout, title, faults
        self.t0 = time.monotonic()
        self.timing: dict[str, float] = {}
        self.signalled = False
        self.stalled = False
        self._honest_done_at: float | None = None
        self.cpu_linked: float | None = None  # seconds of CPU (nodes, fork server, launcher) when all linked

    async def run(self, headless: bool) -> str:
        state, children, timing, faults = self.state, self.children, self.timing, self.faults
        while True:
            state.poll()
            now = time.monotonic()
            if isinstance(children, Children):
                children.release_waves(state.started, state.dialled())
            if "up" not in timing and len(state.started) == len(state.nodes):
                timing["up"] = now - self.t0
            if not self.signalled and now - self.t0 > self.link_timeout:
                # Checked first: linking that completes after the deadline has still missed it.
                unlinked = [n for n, s in state.nodes.items() if s.links_up < s.links_total][:8]
                raise LaunchFailed(f"not every node linked within {self.link_timeout:g} s: "
                                   f"{', '.join(unlinked) or 'every link came up only after it'}")
            if not self.signalled and state.all_linked() and state.seller_waiting:
                timing["linked"] = now - self.t0
                if isinstance(children, Children):  # what getting up and linked cost, for the bench
                    self.cpu_linked = children.cpu_seconds() + time.process_time()
                children.signal(self.seller, signal.SIGUSR1)
                self.signalled = True
                timing["announce"] = now - self.t0
            if self.signalled and self._finished(now):
                timing["done"] = now - self.t0
                return "done"
            if faults.active:
                self._inject(now)
            dead = children.dead()
            for name, code in dead.items():
                if faults.expected_death(name, code):
                    faults.died.setdefault(name, now)
                elif name not in faults.died or name in faults.restarted:
                    hint = getattr(children, "log_hint", lambda _: "see its .out log")(name)  # hosts: maybe the agent
                    raise LaunchFailed(f"node {name} exited with code {code} ({hint})")
            if faults.restarts_due(now):
                return "restart"
            if self.signalled and now - self.t0 - timing["announce"] > self.timeout:
                waiting = sorted(set(state.nodes) - set(state.finals) - set(state.aborts))[:8]
                if faults.active:  # reported as the outcome "stalled", with the ledgers still checked
                    self.stalled = True
                    timing["stalled"] = now - self.t0
                    return "done"
                raise LaunchFailed(
                    f"auction not finished within {self.timeout:.0f} s; waiting for {', '.join(waiting)}")
            self._draw(now, rate=None)
            await trio.sleep(0.05 if headless else 0.2)

    def _finished(self, now: float) -> bool:
        state, faults = self.state, self.faults
        if not faults.active:
            return state.all_final()
        honest = [n for n in state.nodes if n not in faults.faulty]
        joined = [n for n in honest if state.stages_seen.get(n)]
        if not joined or any(n not in state.finals and n not in state.aborts for n in joined):
            self._honest_done_at = None
            return False
        if faults.restarts_pending():
            return False
        partitioned: set[str] = set()
        if isinstance(self.children, RemoteChildren):
            if self.children.partition_pending():
                return False  # the run is not over before the cut host is healed
            partitioned = self.children.cut_nodes()
        self._honest_done_at = self._honest_done_at or now
        if now - self._honest_done_at > CATCHUP_WAIT:
            return True  # bounded: what is still missing then is reported, not waited for
        last = max(state.last_event.values(), default=now)
        if now - last < QUIET:
            return False
        # A restarted node catches its ledger up (it asks its neighbours); give it a moment.
        target = max((state.nodes[n].ledger_entries for n in honest), default=0)
        return all(state.nodes[n].ledger_entries >= target for n in set(faults.restarted) | partitioned)

    def _inject(self, now: float) -> None:
        for name, stage in self.faults.kills.items():
            if name in self.faults.killed or stage not in self.state.stages_seen.get(name, []):
                continue
            self.children.kill(name)
            self.faults.killed[name] = {"stage": stage, "last_logged": self.state.nodes[name].stage,
                                        "at": round(now - self.t0, 3)}

    def _draw(self, now: float, rate: float | None, footer: str | None = None) -> None:
        if self.live is None:
            return
        state = self.state
        elapsed = self.timing.get("done", now - self.t0)  # the clock stops when the run is done
        self.live.update(network_view(list(state.nodes.values()), state.ledger_rows(), title=self.title,
                                      elapsed=elapsed, footer=footer, height=self.live.console.size.height,
                                      width=self.live.console.size.width,
                                      message_rate=state.message_rate() if rate is None else rate), refresh=True)


def _is_qpq_scenario(path: Path) -> bool:
    """A scenario with a [qpq] table (the SRA loader reports unreadable files properly)."""
    try:
        return "qpq" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


@app.command()
def launch(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="A scenario TOML file.")],
    headless: Annotated[bool, typer.Option(help="No dashboard.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run as JSON (like peer sim --json).")] = False,
    seed: Annotated[int | None, typer.Option(help="Run seed; defaults to the scenario's.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep keys, ledgers and logs here (default: a temp dir, removed).")] = None,
    gather_window: Annotated[float, typer.Option(min=0, help="Seconds each node gathers inviters.")] = 0.2,
    reply_timeout: Annotated[float, typer.Option(help="The seller's stage-2 wait, seconds.")] = 60.0,
    context_timeout: Annotated[float, typer.Option(help="A host's stage-3 wait, seconds.")] = 30.0,
    confirm_timeout: Annotated[float | None, typer.Option(
        help="The seller's wait for her buyer's answer, seconds (default 3 x the context timeout).")] = None,
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 instead of guarded resale.")] = False,
    verifiable_coins: Annotated[bool, typer.Option(help="Every node picks its parent by a verifiable coin.")] = False,
    link_timeout: Annotated[float, typer.Option(help="Give up if not all nodes link within this.")] = 60.0,
    timeout: Annotated[float, typer.Option(help="Give up if the auction has not finished within this.")] = 120.0,
    linger: Annotated[float, typer.Option(
        min=0, help="Dashboard: keep the final view until a key is pressed or this many seconds pass "
                    "(no wait off a terminal).")] = 30.0,
    qpq_rounds: Annotated[int, typer.Option("--rounds", min=1, help="QPQ scenarios: resources to allocate.")] = 5,
    qpq_phase: Annotated[float, typer.Option("--phase", min=0.05, help="QPQ scenarios: seconds per phase.")] = 1.0,
    kill: Annotated[list[str] | None, typer.Option(
        "--kill", metavar="NAME@STAGE", help="Fault: SIGKILL node NAME once its log shows STAGE (repeatable).")] = None,
    restart_after: Annotated[float | None, typer.Option(
        min=0, help="Fault: fork a killed or crashed node again, same argv, this many seconds after it died.")] = None,
    behaviour: Annotated[list[str] | None, typer.Option(
        "--behaviour", metavar="NAME=SPEC",
        help="Fault: run NAME as an adversary, e.g. b=crash@hosting (see docs/adversaries-real.md).")] = None,
    hosts: Annotated[Path | None, typer.Option(
        "--hosts", metavar="HOSTS.toml", help="Spread the nodes over these hosts (see docs/hosts.md).")] = None,
    partition: Annotated[list[str] | None, typer.Option(
        "--partition", metavar="HOST@AT+FOR",
        help="Fault (with --hosts): cut HOST off AT s after the sale starts, heal it FOR s later.")] = None,
    auctions: Annotated[int | None, typer.Option(
        min=1, help="Workload: keep the network up and run this many auctions (see peer.launch.workload).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Workload: auctions in flight at most.")] = 1,
    rate: Annotated[float | None, typer.Option(min=0.001, help="Workload: new auctions per second at most.")] = None,
    spawn: Annotated[str, typer.Option(
        "--spawn", metavar="fork|exec", help="How each node process starts: forked by a fork server that has "
        "imported the node once (fast, shared memory), or a fresh python -m peer run.")] = "fork",
) -> None:
    """Run SCENARIO as one real node process per node on 127.0.0.1 (an SRA auction, a QPQ stream, or Mirage's market)."""
    err = Console(stderr=True, soft_wrap=True)
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, _stop_as_interrupt)
    if spawn not in ("fork", "exec"):
        _error(err, f"--spawn {spawn!r}: expected fork or exec")
        raise typer.Exit(2)
    from peer.launch.mirage_mode import is_mirage_live

    if is_mirage_live(scenario):  # Mirage's market: provider and user processes (peer.launch.mirage_mode)
        from peer.launch.mirage_mode import launch_mirage

        raise typer.Exit(launch_mirage(scenario, headless=headless, json_out=json_out, workdir=workdir, seed=seed,
                                       link_timeout=link_timeout, timeout=timeout, behaviours=behaviour or []))
    if _is_qpq_scenario(scenario):
        if kill or behaviour or restart_after is not None:
            _error(err, "--kill, --behaviour and --restart-after apply to SRA scenarios only")
            raise typer.Exit(2)
        from peer.launch.qpq_mode import launch_qpq  # scipy and the QPQ code: only for QPQ runs

        raise typer.Exit(launch_qpq(scenario, rounds=qpq_rounds, phase=qpq_phase, headless=headless,
                                    json_out=json_out, workdir=workdir, link_timeout=link_timeout, timeout=timeout,
                                    linger=linger))
    try:
        loaded = load_scenario(scenario)
        faults = Faults.parse(kill or [], behaviour or [], restart_after, set(loaded.graph.nodes))
    except (ScenarioError, FaultSpecError) as exc:
        _error(err, str(exc))
        raise typer.Exit(2) from None
    if auctions is not None:
        if hosts is not None or partition or faults.active:
            _error(err, "--auctions runs on 127.0.0.1 without faults: leave out --hosts, --partition and the faults")
            raise typer.Exit(2)
        from peer.launch.workload import run_workload

        raise typer.Exit(run_workload(
            loaded, seed=loaded.seed if seed is None else seed, auctions=auctions, concurrency=concurrency,
            rate=rate, workdir=workdir, json_out=json_out, headless=headless, linger=linger,
            gather_window=gather_window,
            reply_timeout=reply_timeout, context_timeout=context_timeout, confirm_timeout=confirm_timeout,
            paper_resale=paper_resale, link_timeout=link_timeout, timeout=timeout, verifiable_coins=verifiable_coins))
    spread = None
    if hosts is not None or partition:
        try:
            spread = spread_over_hosts(loaded, hosts, partition or [], loaded.seed if seed is None else seed, restart_after)
        except HostsError as exc:
            _error(err, str(exc))
            raise typer.Exit(2) from None
        faults.partitioned = bool(partition)
    topology = Topology.of(loaded)
    if topology.unreachable:
        _error(err, disconnected_message(loaded, topology))
        raise typer.Exit(2)
    confirm = 3 * context_timeout if confirm_timeout is None else confirm_timeout
    problems = timeout_problems(topology, gather_window=gather_window, reply_timeout=reply_timeout,
                                context_timeout=context_timeout, confirm_timeout=confirm, guarded=not paper_resale)
    if problems and faults.active:
        # Fault runs test aborts and recovery, where short waits are the point; the replay
        # guarantee is about honest runs, so say it, and go on.
        for problem in problems:
            _error(err, problem.replace(" use at least", " an honest run needs at least"), prefix="warning: ")
    elif problems:
        for problem in problems:
            _error(err, problem)
        raise typer.Exit(2)
    temp = workdir is None
    try:
        root = Path(tempfile.mkdtemp(prefix="peer-launch-")) if workdir is None else workdir
    except OSError as exc:
        _error(err, f"cannot make a temporary directory: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    code = 1
    try:
        root.mkdir(parents=True, exist_ok=True)
        code = _launch_sra(
            loaded, root, faults, err, seed=seed, headless=headless, json_out=json_out,
            gather_window=gather_window, reply_timeout=reply_timeout, context_timeout=context_timeout,
            confirm_timeout=confirm, paper_resale=paper_resale, link_timeout=link_timeout, timeout=timeout,
            linger=linger, spread=spread, verifiable_coins=verifiable_coins, spawn=spawn,
        )
    except OSError as exc:  # the work directory (or a file in it) cannot be written
        _error(err, f"{exc.filename or root}: {exc.strerror or exc}")
        code = 2
    except KeyboardInterrupt:  # Ctrl-C before the nodes started (planning, forking)
        code = 130
    finally:
        # The keys are private keys: a temp dir never outlives the launch with them inside, whatever
        # happened (a failed check, Ctrl-C, a closed pipe); logs and ledgers stay for a failed run.
        if temp:
            if code == 0:
                shutil.rmtree(root, ignore_errors=True)
            else:
                shutil.rmtree(root / "keys", ignore_errors=True)
                if root.exists():
                    _error(err, f"logs kept in {root} (keys removed)", prefix="")
    raise typer.Exit(code)


def _error(err: Console, message: str, prefix: str = "error: ") -> None:
    try:
        err.print(prefix + message, markup=False, highlight=False)
    except (OSError, ValueError):  # a closed pipe, or a terminal that hung up
        pass


def _stop_as_interrupt(signum: int, frame: object) -> None:
    """SIGHUP (the terminal closed) and SIGTERM stop a launch like Ctrl-C: every node is stopped
    and the private keys are removed.  Re-raised as SIGINT so that inside trio it arrives as
    trio delivers Ctrl-C, at a safe point."""
    signal.raise_signal(signal.SIGINT)


def _launch_sra(
    loaded: Any, root: Path, faults: Faults, err: Console, *, seed: int | None, headless: bool, json_out: bool,
    gather_window: float, reply_timeout: float, context_timeout: float, confirm_timeout: float,
    paper_resale: bool, link_timeout: float, timeout: float, linger: float, spread: Any = None,
    verifiable_coins: bool = False, spawn: str = "fork",
) -> int:
    console = Console(stderr=json_out)
    run_seed = loaded.seed if seed is None else seed
    plans = plan_nodes(loaded, root, seed=run_seed, gather_window=gather_window,
                       reply_timeout=reply_timeout, context_timeout=context_timeout,
                       confirm_timeout=confirm_timeout, paper_resale=paper_resale, verifiable_coins=verifiable_coins,
                       addresses=None if spread is None else spread.addresses,
                       wave_size=WAVE if spawn == "fork" and spread is None else None)
    safe_names = {p.argv[p.argv.index("--name") + 1]: p.name for p in plans}
    if len(safe_names) != len(plans):
        _error(err, "node names collide once made file-safe")
        return 2
    for plan in plans:  # an adversary is the same `peer run` with one more (hidden) option
        if plan.name in faults.behaviours:
            plan.argv.extend(["--behaviour", str(faults.behaviours[plan.name])])
    state = NetworkState(plans=plans, names=safe_names, by_key={p.key_hex: p.name for p in plans}, seller=loaded.seller)
    children: Children | RemoteChildren = Children(spawn) if spread is None else spread.children(root)
    code = 0
    timing: dict[str, float] = {}
    live = None if headless or json_out else Live(console=console, auto_refresh=False, transient=False)
    watch = _Watch(state, children, loaded.seller, live=live, link_timeout=link_timeout, timeout=timeout,
                   title=f"{loaded.name} (seed {run_seed})", faults=faults)
    plan_of = {p.name: p for p in plans}
    memory: dict[str, int] = {}
    try:
        if isinstance(children, Children):  # fork before trio (and any thread) starts
            children.start(plans, staged=True)
        else:
            children.start(plans)
        if live is not None:
            live.start()
        while trio.run(watch.run, headless or json_out) == "restart":
            # Out of trio again, so forking is safe: re-fork the dead node with its argv.
            for name in faults.restarts_due(time.monotonic()):
                children.restart(plan_of[name])
                faults.restarted[name] = time.monotonic()
        timing = watch.timing
        if live is not None:
            watch._draw(time.monotonic(), rate=0.0)
        memory = children.memory_kib()
    except LaunchFailed as exc:
        _error(err, str(exc))
        code = 1
    except KeyboardInterrupt:
        _error(err, "interrupted: stopping every node", prefix="")
        code = 130
    finally:
        children.stop()
    close_view(live, code == 0, linger, lambda footer: watch._draw(time.monotonic(), rate=0.0, footer=footer),
               "result")
    if code != 0:
        return code
    state.poll()
    if faults.active:
        stops = {n for n, a in faults.behaviours.items() if a.kind == "false-reserve"}
        result, check = assemble_with_faults(loaded, run_seed, plans, state, faulty=faults.faulty,
                                             notes=faults.notes(), stops_at=stops, stalled=watch.stalled,
                                             verifiable_coins=verifiable_coins)
        result.extra["faults"] = faults.to_json(watch.t0)
        result.extra["refusals"] = dict(sorted(state.refusals.items()))
        result.extra["aborted"] = {n: e.get("reason") for n, e in sorted(state.aborts.items())}
        result.extra["adversary"] = {n: [e.get("what") for e in ev] for n, ev in sorted(state.adversary.items())}
    else:
        result, check = assemble(loaded, run_seed, plans, state, verifiable_coins=verifiable_coins)
    result.extra["check"] = check.to_json()
    result.extra["timing"] = {k: round(v, 3) for k, v in timing.items()}
    if memory:
        result.extra["memory_kib_per_node"] = round(sum(memory.values()) / len(memory))
    if watch.cpu_linked is not None:
        result.extra["cpu_ms_per_node_linked"] = round(watch.cpu_linked / len(plans) * 1000, 1)
    result.extra["bad_messages"] = sum(s.bad_frames for s in state.nodes.values())
    if spread is not None:
        result.extra["hosts"] = spread.report(children)
    try:
        if json_out:
            sys.stdout.write(dumps(result.to_json()) + "\n")
            sys.stdout.flush()
        else:
            from peer.cli.render import result_view

            console.print(result_view(result))
            _print_check(console, check.to_json(), timing)
            console.file.flush()
    except (OSError, SystemExit):  # rich turns a broken pipe into SystemExit(1)
        _stdout_closed()
    return 0 if check.ok else 1


def _print_check(console: Console, check: dict[str, Any], timing: dict[str, float]) -> None:
    mark = "[green]ok[/]" if check["ok"] else "[red]FAILED[/]"
    replay = ("matches" if check["replay_matches"] else
              "not applicable" if str(check.get("replay_basis", "")).startswith("not applicable") else "DIFFERS")
    if check.get("replay_basis") or check["outcome"] != "completed":
        console.print(f"outcome: {check['outcome']}; replay basis: {check.get('replay_basis')}", highlight=False)
        for reason in check.get("reasons", []):
            console.print(f"  - {reason}", markup=False, highlight=False)
        for name, what in check.get("excluded", {}).items():
            relation = check.get("ledger_relations", {}).get(name, "?")
            console.print(f"  faulty {name}: {what}; its ledger copy: {relation}", markup=False, highlight=False)
    console.print(
        f"check {mark}: replay {replay}; "
        f"ledger copies verified {check['ledger_verified']}/{check['ledger_copies']}, "
        f"{'identical' if check['ledger_identical'] else 'NOT identical'}"
    )
    for problem in check["problems"]:
        console.print(f"  [red]- {problem}[/]", highlight=False)
    if timing:
        console.print("timing (s since launch): " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items()))


def main() -> int:
    try:
        app(prog_name="tools/launch")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
