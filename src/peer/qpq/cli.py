"""Typer apps for QPQ: ``qpq_app`` (mount as ``peer qpq``: ``app.add_typer(qpq_app, name="qpq")``) and
``qpq_experiment_app`` (merge its commands into ``peer experiment``:
``experiment_app.add_typer(qpq_experiment_app)``, no name; it has no callback, so
typer merges it without a warning).  Bad input: one line on stderr, exit 2."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from peer.cli.conventions import PeerCommand, fail, new_app, prepare_out_dir
from rich.console import Console

from peer.errors import ScenarioError
from peer.parallel import ParallelError

# The simulator derives keys and secrets from the seed as 16 signed bytes (peer.qpq.commit, peer.qpq.ledger).
SEED_MIN, SEED_MAX = -(2**127), 2**127 - 1

qpq_app = new_app(help="Multilevel QPQ: payment-free allocation of a stream of resources.", no_args_is_help=True)
qpq_experiment_app = new_app(help="The multilevel QPQ paper's experiments.", no_args_is_help=True)


@qpq_app.callback()
def _qpq() -> None:
    """Multilevel QPQ: payment-free allocation of a stream of resources."""


def _fail(message: str) -> NoReturn:
    fail(message)


# Top-level keys only an SRA scenario has (peer.scenario.load); a QPQ scenario puts its settings under [qpq].
_SRA_ONLY_KEYS = ("seller", "values", "value_model", "behaviours")


def _load_setup(scenario: Path) -> object:
    """The QPQ setup of ``scenario``; an SRA scenario gets a hint, as ``peer sim`` gives the reverse case."""
    from peer.qpq.scenario import load_qpq_scenario

    try:
        return load_qpq_scenario(scenario)
    except ScenarioError as exc:
        if exc.key in _SRA_ONLY_KEYS:
            _fail(f"{exc.path}: [{exc.key}] this is an SRA scenario (no [qpq] table): "
                  "run it with `peer sim` (or tools/launch)")
        _fail(str(exc))


class Mode(str, Enum):
    fast = "fast"
    machines = "machines"


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        _fail(f"{option} must be a comma-separated list of integers, got {text!r}")
    if not values or min(values) < 2:
        _fail(f"{option} needs integers >= 2")
    return values


@qpq_app.command(cls=PeerCommand)
def sim(
    scenario: Annotated[Path, typer.Argument(help="A QPQ scenario TOML file (see docs/qpq.md).")],
    rounds: Annotated[int | None, typer.Option(min=1, help="Resources to allocate; default the scenario's.")] = None,
    seed: Annotated[int | None, typer.Option(min=SEED_MIN, max=SEED_MAX, help=(
        "Run seed (default: the scenario's): the players' value draws and commitment secrets. The graph and "
        "the clusters come from the scenario's own seed and never change with it."))] = None,
    mode: Annotated[Mode, typer.Option(
        help="fast: one decision per cluster; machines: every node's QpqNode.")] = Mode.fast,
    measure_from: Annotated[int, typer.Option(min=0, help="Count utilities from this round on (warm-up).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    ledger: Annotated[Path | None, typer.Option(help="Write the allocation chain as JSON lines here.")] = None,
) -> None:
    """Run every player of a scenario in one process: thousands of rounds over the same decision code."""
    from dataclasses import replace

    from peer.qpq.fast import run_fast
    from peer.qpq.router import run_machines
    from peer.qpq.setup import QpqSetup

    setup = _load_setup(scenario)
    assert isinstance(setup, QpqSetup)
    if seed is not None:
        setup = replace(setup, seed=seed)
    elif not SEED_MIN <= setup.seed <= SEED_MAX:
        _fail(f"{scenario}: [seed] must be a 128-bit signed integer, got {setup.seed}")
    if rounds is not None:
        setup = replace(setup, rounds=rounds)
    if measure_from >= setup.rounds:
        _fail(f"--measure-from {measure_from} leaves no measured round out of {setup.rounds}")
    runner = run_fast if Mode(mode) is Mode.fast else run_machines
    run = runner(setup, measure_from=measure_from)
    if ledger is not None:
        try:
            _write_ledger(run, ledger)
        except OSError as exc:
            _fail(f"--ledger {ledger}: cannot write: {exc.strerror or exc}")
    if json_out:
        sys.stdout.write(json.dumps(run.to_json(), indent=2, sort_keys=True) + "\n")
        return
    from peer.qpq.view import run_view

    Console().print(run_view(run))


def _write_ledger(run: object, path: Path) -> None:
    """One JSON line per allocation, signed as the node that recorded it would sign its copy.

    The simulator has no real keys: each entry is signed by the winner's simulated key
    (derived from the seed and the node id; the first node's when nobody won).
    """
    from peer.qpq.ledger import sign_allocation, sim_signing_key
    from peer.qpq.result import QpqRun

    assert isinstance(run, QpqRun)
    first = run.setup.membership.nodes[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for entry in run.entries:
            signed = sign_allocation(sim_signing_key(run.setup.seed, entry.winner or first), entry)
            line = {**entry.to_json(), "signer": signed.signer, "signature": signed.signature.hex()}
            fh.write(json.dumps(line, sort_keys=True) + "\n")


@qpq_experiment_app.command("qpq-props", cls=PeerCommand)
def qpq_props(
    ns: Annotated[str, typer.Option(help="Player counts, comma-separated.")] = "4,8,16,32,64",
    rounds: Annotated[int, typer.Option(min=10, help="Resources per run.")] = 10_000,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured first rounds.")] = 200,
    beta: Annotated[float, typer.Option(min=1.0, help="beta of the test-failing players' Beta(beta,1) declarations.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of every draw.")] = 1,
    out: Annotated[Path, typer.Option(help="Directory for qpq-props.csv and .png.")] = Path("out/qpq-props"),
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for the independent runs (default: every core).")] = None,
    dask: Annotated[str | None, typer.Option(help="Run on a Dask scheduler (tcp://HOST:PORT, or 'local').")] = None,
) -> None:
    """Props. 7 and 8: honest utility vs 1/(n+1), test-failing utility vs 1/(2n), QPQ and multilevel."""
    from peer.qpq.exp_props import run_props, write_props
    from peer.qpq.view import props_table

    console = Console()
    if warmup >= rounds:
        _fail("--warmup must be below --rounds")
    prepare_out_dir(out)
    try:
        rows = run_props(_ints(ns, "--ns"), rounds=rounds, warmup=warmup, seed=seed, beta=beta,
                         workers=workers, dask=dask)
    except (ValueError, ParallelError) as exc:
        _fail(str(exc))
    try:
        paths = write_props(rows, out)
    except OSError as exc:
        _fail(f"--out {out}: cannot write: {exc.strerror or exc}")
    console.print(props_table(rows))
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


@qpq_experiment_app.command("qpq-traffic", cls=PeerCommand)
def qpq_traffic(
    ns: Annotated[str, typer.Option(help="Player counts, comma-separated.")] = "16,64,256,1024",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds counted per configuration.")] = 2,
    machines_up_to: Annotated[int, typer.Option(help="Also run every node's machine for n up to this.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of every draw.")] = 1,
    out: Annotated[Path, typer.Option(help="Directory for the CSVs and the PNG.")] = Path("out/qpq-traffic"),
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for the independent runs (default: every core).")] = None,
    dask: Annotated[str | None, typer.Option(help="Run on a Dask scheduler (tcp://HOST:PORT, or 'local').")] = None,
) -> None:
    """Prop. 11: values and frames per resource, QPQ vs multilevel, and the sweep over k."""
    from peer.qpq.exp_common import write_json
    from peer.qpq.exp_traffic import optimum_summary, run_traffic, write_traffic
    from peer.qpq.view import traffic_table

    console = Console()
    counts = _ints(ns, "--ns")
    prepare_out_dir(out)
    try:
        compare, sweep = run_traffic(counts, rounds=rounds, seed=seed, machines_up_to=machines_up_to,
                                     workers=workers, dask=dask)
    except (ValueError, ParallelError) as exc:
        _fail(str(exc))
    optimum = optimum_summary(sweep)
    try:
        paths = write_traffic(compare, sweep, out)
        paths["optimum"] = out / "qpq-traffic-optimum.json"
        write_json(optimum, paths["optimum"])
    except OSError as exc:
        _fail(f"--out {out}: cannot write: {exc.strerror or exc}")
    console.print(traffic_table(compare))
    for o in optimum:
        console.print(f"n={o['n']}: measured optimum k={o['measured_optimum_relay']} (relay values), "
                      f"k={o['measured_optimum_frames']} (direct frames); sqrt(n)={o['sqrt_n']:.2f}, "
                      f"formula optimum {o['formula_optimum']:.2f}", highlight=False)
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


@qpq_experiment_app.command("qpq-cheaters", cls=PeerCommand)
def qpq_cheaters(
    n: Annotated[int, typer.Option(min=4, help="Players.")] = 64,
    k: Annotated[int, typer.Option(min=2, help="Clusters of the multilevel runs.")] = 8,
    cheaters: Annotated[int, typer.Option(min=1, help="Cheating players per run (in different clusters).")] = 4,
    profiles: Annotated[str, typer.Option(help="Cheating profiles, separated by ';'.")] = (
        "beta_cheater(1.25);beta_cheater(1.5);beta_cheater(2);beta_cheater(3);uniform_liar"),
    rounds: Annotated[int, typer.Option(min=10, help="Resources per run.")] = 5000,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured first rounds.")] = 200,
    window: Annotated[int, typer.Option(min=1, help="Multilevel window (and QPQ's at equal window).")] = 100,
    threshold: Annotated[float, typer.Option(help="KS significance level.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of every draw.")] = 1,
    out: Annotated[Path, typer.Option(help="Directory for qpq-cheaters.csv and .png.")] = Path("out/qpq-cheaters"),
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for the independent runs (default: every core).")] = None,
    dask: Annotated[str | None, typer.Option(help="Run on a Dask scheduler (tcp://HOST:PORT, or 'local').")] = None,
) -> None:
    """Sec. VI: honest vs dishonest players with the real KS test; does multilevel punish cheaters more?"""
    from peer.qpq.exp_cheaters import run_cheaters, write_cheaters
    from peer.qpq.view import cheaters_table

    console = Console()
    specs = [p.strip() for p in profiles.split(";") if p.strip()]
    if warmup >= rounds:
        _fail("--warmup must be below --rounds")
    if not 0 < threshold < 1:
        _fail("--threshold must be in (0, 1)")
    prepare_out_dir(out)
    try:
        rows = run_cheaters(n=n, k=k, cheaters=cheaters, profiles=specs, rounds=rounds, warmup=warmup, window=window,
                            threshold=threshold, seed=seed, workers=workers, dask=dask)
    except (ValueError, ParallelError) as exc:
        _fail(str(exc))
    try:
        paths = write_cheaters(rows, out)
    except OSError as exc:
        _fail(f"--out {out}: cannot write: {exc.strerror or exc}")
    console.print(cheaters_table(rows))
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)
