"""``peer auctioneer ...`` and ``peer experiment auctioneer``: parse options, delegate, print.

Domain errors become one printed line and exit code 2; no traceback reaches a user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from peer.auctioneer.effects import Decided
from peer.errors import PeerError

auctioneer_app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="The distributed auctioneer: providers jointly run a bandwidth auction no one of them controls.",
)
console = Console()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _users(raw: str) -> list[int]:
    try:
        out = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"not a comma-separated list of user counts: {raw!r}") from None
    if not out or any(n < 1 or n > 100_000 for n in out):
        raise _fail("user counts must be between 1 and 100000")
    return out


@auctioneer_app.command()
def sim(
    users: Annotated[int, typer.Option(min=1, max=100_000, help="Number of users.")] = 100,
    providers: Annotated[int, typer.Option(min=1, max=64, help="Executing providers (of the 8 sellers, or more).")] = 3,
    k: Annotated[int, typer.Option(min=0, help="Coalition size tolerated; groups have k+1 providers.")] = 1,
    auction: Annotated[str, typer.Option(help="double | standard")] = "double",
    seed: Annotated[int, typer.Option(help="Seed of the instance and the coin shares.")] = 1,
    deviation: Annotated[str, typer.Option(help="Make --deviants providers deviate: other-vector, withhold-reveal, change-reveal, wrong-result, silent.")] = "",
    deviants: Annotated[int, typer.Option(min=0, help="How many providers deviate (the first ones).")] = 1,
) -> None:
    """One round in one process (in-memory router, seeded); prints every provider's output."""
    from peer.auctioneer.deviations import by_name
    from peer.auctioneer.scenario import make_instance
    from peer.auctioneer.sim import run_round

    if auction not in ("double", "standard"):
        raise _fail("--auction is double or standard")
    if providers < k + 1:
        raise _fail(f"{providers} providers cannot tolerate k = {k}: need at least k+1")
    instance = make_instance(seed, users, max(8, providers), auction)
    tamper = {}
    if deviation:
        ids = {p.public_key: p for p in instance.providers}
        try:
            tamper = {p.public_key: by_name(deviation, ids.__getitem__) for p in instance.providers[: min(deviants, providers)]}
        except ValueError as exc:
            raise _fail(str(exc)) from None
    try:
        result = run_round(instance, executors=providers, k=k, seed=seed, tamper=tamper, phase_timeout=2.0, cpu_time=True)
    except PeerError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{auction} auction, {users} users, {providers} providers, k = {k}")
    for col in ("provider", "output", "outcome / reason", "culprits"):
        table.add_column(col)
    for p, r in sorted(result.results.items()):
        if isinstance(r, Decided):
            o = r.outcome.outcome
            table.add_row(p.hex()[:12], "decided", f"{o.digest().hex()[:16]}  {len(o.allocation.trades)} trades", "")
        elif r is None:
            table.add_row(p.hex()[:12], "no output", "", "")
        else:
            who = ", ".join(c.hex()[:12] for c in r.culprits) + (" (proved)" if r.proved and r.culprits else "")
            table.add_row(p.hex()[:12], "⊥", r.reason, who)
    console.print(table)
    console.print(
        f"running time {result.makespan * 1000:.1f} ms (one core per provider), simulated in {result.seconds * 1000:.1f} ms; "
        f"{result.messages} messages"
    )


def experiment(
    out: Annotated[Path, typer.Option(help="Directory for the CSV and the plots.")] = Path("results/auctioneer"),
    double_users: Annotated[str, typer.Option(help="User counts for Figure 4.")] = "100,200,400,600,800,1000",
    standard_users: Annotated[str, typer.Option(help="User counts for Figure 5.")] = "25,50,75,100,125",
    rounds: Annotated[int, typer.Option(min=1, max=100, help="Rounds per point (the paper: 100).")] = 3,
    seed: Annotated[int, typer.Option()] = 1,
    latency: Annotated[float, typer.Option(min=0.0, max=1.0, help="One-way message latency, seconds.")] = 0.0005,
) -> None:
    """Sec. 6: running time against users, double auction (Fig. 4) and standard auction (Fig. 5)."""
    from peer.auctioneer import experiment as exp

    d_users, s_users = _users(double_users), _users(standard_users) if standard_users else []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"{out}: {exc.strerror}") from None

    def show(row: exp.Row) -> None:
        console.print(f"{row.auction:8} {row.series:20} n={row.users:5} round {row.round}: {row.seconds * 1000:9.1f} ms  {row.outcome}")

    rows = exp.run("double", d_users, rounds, seed, latency, show)
    exp.plot(rows, out / "figure4_double.png", "Double auction (Fig. 4)")
    if s_users:
        s_rows = exp.run("standard", s_users, rounds, seed, latency, show)
        exp.plot(s_rows, out / "figure5_standard.png", "Standard auction, exact VCG (Fig. 5)")
        rows += s_rows
    exp.write_csv(rows, out / "auctioneer.csv")
    table = Table(title="mean running time")
    for col in ("auction", "series", "users", "seconds"):
        table.add_column(col)
    for a, s, n, sec in exp.summary(rows):
        table.add_row(a, s, str(n), f"{sec:.4f}")
    console.print(table)
    console.print(f"wrote {out / 'auctioneer.csv'} and the plots in {out}")
