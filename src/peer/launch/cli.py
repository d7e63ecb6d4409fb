"""``tools/launch SCENARIO.toml``: run a scenario as real processes and watch it live.

Creates keys and ports, forks one ``peer run`` per node on 127.0.0.1, shows the
whole network in a live dashboard, signals the seller once every node is
linked, waits until every node has settled with a complete ledger copy, then
stops every child and checks the outcome against the replay reference and
every ledger copy.  ``--headless --json`` prints the run as ``peer sim --json``
does (plus ``check`` and ``timing``) and exits non-zero if a check fails.
Every child is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import trio
import typer
from rich.console import Console
from rich.live import Live

from peer.errors import ScenarioError
from peer.launch.check import assemble
from peer.launch.monitor import NetworkState
from peer.launch.plan import plan_nodes
from peer.launch.processes import Children
from peer.result import dumps
from peer.scenario.load import load_scenario
from peer.tui.views import network_view

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class LaunchFailed(Exception):
    pass


async def _watch(
    state: NetworkState, children: Children, seller: str, *, headless: bool, console: Console,
    link_timeout: float, timeout: float, title: str,
) -> dict[str, float]:
    t0 = time.monotonic()
    timing: dict[str, float] = {}
    live = None if headless else Live(console=console, auto_refresh=False, transient=False)
    signalled = False
    try:
        if live is not None:
            live.start()
        while True:
            state.poll()
            now = time.monotonic()
            if "up" not in timing and len(state.started) == len(state.nodes):
                timing["up"] = now - t0
            if not signalled and state.all_linked() and state.seller_waiting:
                timing["linked"] = now - t0
                children.signal(seller, signal.SIGUSR1)
                signalled = True
                timing["announce"] = now - t0
            if signalled and state.all_final():
                timing["done"] = now - t0
                break
            dead = children.dead()
            if dead:
                name, code = next(iter(dead.items()))
                raise LaunchFailed(f"node {name} exited with code {code} (see its .out log)")
            if not signalled and now - t0 > link_timeout:
                unlinked = [n for n, s in state.nodes.items() if s.links_up < s.links_total][:8]
                raise LaunchFailed(f"not every node linked within {link_timeout:.0f} s: {', '.join(unlinked)}")
            if signalled and now - t0 - timing["announce"] > timeout:
                waiting = sorted(set(state.nodes) - set(state.finals))[:8]
                raise LaunchFailed(f"auction not finished within {timeout:.0f} s; waiting for {', '.join(waiting)}")
            if live is not None:
                live.update(network_view(list(state.nodes.values()), state.ledger_rows(), title=title,
                                         elapsed=now - t0, message_rate=state.message_rate()), refresh=True)
            await trio.sleep(0.05 if headless else 0.2)
        if live is not None:
            live.update(network_view(list(state.nodes.values()), state.ledger_rows(), title=title,
                                     elapsed=time.monotonic() - t0, message_rate=0.0), refresh=True)
    finally:
        if live is not None:
            live.stop()
    return timing


@app.command()
def launch(
    scenario: Annotated[Path, typer.Argument(help="A scenario TOML file.")],
    headless: Annotated[bool, typer.Option(help="No dashboard.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run as JSON (like peer sim --json).")] = False,
    seed: Annotated[int | None, typer.Option(help="Run seed; defaults to the scenario's.")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep keys, ledgers and logs here (default: a temp dir, removed).")] = None,
    gather_window: Annotated[float, typer.Option(help="Seconds each node gathers inviters.")] = 0.2,
    reply_timeout: Annotated[float, typer.Option(help="The seller's stage-2 wait, seconds.")] = 60.0,
    context_timeout: Annotated[float, typer.Option(help="A host's stage-3 wait, seconds.")] = 30.0,
    link_timeout: Annotated[float, typer.Option(help="Give up if not all nodes link within this.")] = 60.0,
    timeout: Annotated[float, typer.Option(help="Give up if the auction has not finished within this.")] = 120.0,
) -> None:
    """Run SCENARIO as one real node process per node on 127.0.0.1."""
    console = Console(stderr=json_out)
    err = Console(stderr=True, soft_wrap=True)
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    run_seed = loaded.seed if seed is None else seed
    temp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="peer-launch-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    plans = plan_nodes(loaded, root, seed=run_seed, gather_window=gather_window,
                       reply_timeout=reply_timeout, context_timeout=context_timeout)
    safe_names = {p.argv[p.argv.index("--name") + 1]: p.name for p in plans}
    if len(safe_names) != len(plans):
        err.print("error: node names collide once made file-safe", markup=False)
        raise typer.Exit(2)
    state = NetworkState(plans=plans, names=safe_names, by_key={p.key_hex: p.name for p in plans}, seller=loaded.seller)
    children = Children()
    code = 0
    timing: dict[str, float] = {}
    try:
        children.start(plans)  # fork before trio (and any thread) starts
        memory = {}
        timing = trio.run(lambda: _watch(
            state, children, loaded.seller, headless=headless or json_out, console=console,
            link_timeout=link_timeout, timeout=timeout, title=f"{loaded.name} (seed {run_seed})"))
        memory = children.memory_kib()
    except LaunchFailed as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = 1
    except KeyboardInterrupt:
        err.print("interrupted: stopping every node", markup=False)
        code = 130
    finally:
        children.stop()
    if code == 0:
        state.poll()
        result, check = assemble(loaded, run_seed, plans, state)
        result.extra["check"] = check.to_json()
        result.extra["timing"] = {k: round(v, 3) for k, v in timing.items()}
        if memory:
            result.extra["memory_kib_per_node"] = round(sum(memory.values()) / len(memory))
        result.extra["bad_messages"] = sum(s.bad_frames for s in state.nodes.values())
        if json_out:
            sys.stdout.write(dumps(result.to_json()) + "\n")
        else:
            from peer.cli.render import result_view

            console.print(result_view(result))
            _print_check(console, check.to_json(), timing)
        if not check.ok:
            code = 1
    if temp and code == 0:
        shutil.rmtree(root, ignore_errors=True)
    elif temp:
        err.print(f"logs kept in {root}", markup=False)
    raise typer.Exit(code)


def _print_check(console: Console, check: dict[str, Any], timing: dict[str, float]) -> None:
    mark = "[green]ok[/]" if check["ok"] else "[red]FAILED[/]"
    console.print(
        f"check {mark}: replay {'matches' if check['replay_matches'] else 'DIFFERS'}; "
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
