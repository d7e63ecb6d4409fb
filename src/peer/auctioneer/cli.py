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
from peer.cli.conventions import PeerCommand, new_app
from peer.errors import PeerError

auctioneer_app = new_app(
    no_args_is_help=True,
    help="The distributed auctioneer: providers jointly run a bandwidth auction no one of them controls.",
)
console = Console()


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # one line, whatever the width
    return typer.Exit(2)


def _users(raw: str) -> list[int]:
    try:
        out = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"not a comma-separated list of user counts: {raw!r}") from None
    if not out or any(n < 1 or n > 100_000 for n in out):
        raise _fail("user counts must be between 1 and 100000")
    return out


@auctioneer_app.command(cls=PeerCommand)
def sim(
    users: Annotated[int, typer.Option(min=1, max=100_000, help="Number of users.")] = 100,
    providers: Annotated[int, typer.Option(min=1, max=64, help="Executing providers (of the 8 sellers, or more).")] = 3,
    k: Annotated[int, typer.Option(min=0, help="Coalition size tolerated; groups have k+1 providers.")] = 1,
    auction: Annotated[str, typer.Option(help="double | standard")] = "double",
    seed: Annotated[int, typer.Option(help="Seed of the instance and the coin shares.")] = 1,
    deviation: Annotated[str, typer.Option(help="Make --deviants providers deviate: other-vector, withhold-reveal, change-reveal, wrong-result, silent.")] = "",
    deviants: Annotated[int, typer.Option(min=0, help="How many providers deviate (the first ones).")] = 1,
    timed: Annotated[bool, typer.Option(
        "--timed", help="Full Ed25519 and no shared work, each provider charged its own CPU: prints the "
        "round's running time with one core per provider (slower to simulate).")] = False,
) -> None:
    """One round in one process (in-memory router, seeded); prints every provider's output.

    By default the fast mode: symbolic signatures and shared task results, the same outcome as full crypto.
    """
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
        result = run_round(instance, executors=providers, k=k, seed=seed, tamper=tamper, phase_timeout=2.0,
                           cpu_time=timed, fast=not timed)
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
    if timed:
        console.print(
            f"running time {result.makespan * 1000:.1f} ms (one core per provider, Ed25519), simulated in "
            f"{result.cpu * 1000:.1f} ms CPU; {result.messages} messages"
        )
    else:
        console.print(
            f"simulated in {result.cpu * 1000:.1f} ms CPU (fast mode: symbolic signatures, shared task results; "
            f"--timed for the running time with one core per provider); {result.messages} messages"
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


@auctioneer_app.command(cls=PeerCommand)
def setup(
    directory: Annotated[Path, typer.Argument(help="Where to write the keys and cluster.json.")],
    providers: Annotated[int, typer.Option(min=1, max=64)] = 3,
    k: Annotated[int, typer.Option(min=0)] = 1,
    auction: Annotated[str, typer.Option(help="double | standard")] = "double",
    phase_timeout: Annotated[float, typer.Option(min=0.1, max=3600)] = 5.0,
    bid_window: Annotated[float | None, typer.Option(min=0.1, max=86400, help="Seconds a round collects bids "
                                                     "(default 30; with --nodes 4).")] = None,
    nodes: Annotated[bool, typer.Option("--nodes", help="A cluster for `peer run --provider`: scheduled rounds, "
                                        "addresses in DIR/addr (one host, port 0).")] = False,
    interval: Annotated[float, typer.Option(min=0.2, max=86400, help="--nodes: seconds between rounds.")] = 10.0,
    users: Annotated[int, typer.Option(min=0, max=1000, help="--nodes: also write user-N.key for user nodes "
                                       "that may bid (clients, not closers).")] = 0,
) -> None:
    """Generate provider keys, one bid-client key and the cluster file of a local cluster."""
    import math
    import time

    from peer.auctioneer.shell import Cluster
    from peer.net.identity import Identity, IdentityError

    window = bid_window if bid_window is not None else (4.0 if nodes else 30.0)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        keys = []
        for i in range(providers):
            ident = Identity.generate()
            ident.save(directory / f"provider-{i}.key")
            keys.append(ident.public_key)
        client = Identity.generate()
        client.save(directory / "client.key")
        user_keys = []
        for i in range(users if nodes else 0):
            ident = Identity.generate()
            ident.save(directory / f"user-{i}.key")
            user_keys.append(ident.public_hex)
        cluster = Cluster(tuple(sorted(keys)), frozenset({client.public_key}), k, auction, phase_timeout, window)
        from peer.auctioneer.provider import RoundConfig

        RoundConfig(1, auction, cluster.providers, k, 0.0)
        if nodes:
            import json as jsonlib

            if not window < interval:
                raise ValueError("--interval must be longer than --bid-window")
            names = {key: f"provider-{i}" for i, key in enumerate(keys)}
            (directory / "cluster.json").write_text(jsonlib.dumps({
                "providers": [f"{names[key]}=#{key.hex()}" for key in cluster.providers],
                "clients": [client.public_hex, *user_keys], "closers": [client.public_hex],
                "k": k, "auction": auction, "interval": interval, "bid_window": window,
                "phase_timeout": phase_timeout, "epoch": math.ceil(time.time()), "address_dir": "addr",
            }, indent=1))
        else:
            cluster.dump(directory / "cluster.json")
    except (IdentityError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{directory}: {exc.strerror}") from None
    extra = f", {users} user keys" if nodes and users else ""
    console.print(f"wrote {providers} provider keys, client.key{extra} and cluster.json in {directory}")


def _load(key: Path, cluster: Path):
    """The key and the cluster (a :class:`NodeCluster`: either kind of cluster file)."""
    from peer.auctioneer.cluster import NodeCluster
    from peer.auctioneer.shell import ClusterError
    from peer.net.identity import Identity, IdentityError

    try:
        return Identity.load(key), NodeCluster.load(cluster)
    except (IdentityError, ClusterError) as exc:
        raise _fail(str(exc)) from None


@auctioneer_app.command(cls=PeerCommand)
def provider(
    key: Annotated[Path, typer.Option(help="This provider's key file.")],
    cluster: Annotated[Path, typer.Option(help="The cluster file (providers, clients, k, auction).")],
    directory: Annotated[Path, typer.Option("--dir", help="Address directory shared by the cluster.")],
    out: Annotated[Path | None, typer.Option(help="Write round-N.json records here.")] = None,
    rounds: Annotated[int, typer.Option(min=1, max=1_000_000, help="Rounds to run before exiting.")] = 1,
    linger: Annotated[float, typer.Option(min=0, max=600, help="Seconds to stay up after the last round, for late peers.")] = 2.0,
    verbose: Annotated[bool, typer.Option("--verbose")] = False,
) -> None:
    """Run one executing provider as a long-lived process (127.0.0.1, port 0)."""
    import logging

    import trio

    from peer.auctioneer.shell import ProviderShell

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    identity, config = _load(key, cluster)
    if identity.public_key not in config.providers:
        raise _fail(f"{key} is not one of the cluster's providers")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot create a directory: {exc.strerror}") from None
    shell = ProviderShell(identity, config.base, directory, out, rounds=rounds)
    try:
        trio.run(lambda: shell.run(idle_exit=linger))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except OSError as exc:
        raise _fail(f"network: {exc}") from None
    decided = sum(shell.finished.values())
    console.print(f"{identity.name}: {decided} of {rounds} rounds decided")


@auctioneer_app.command(cls=PeerCommand)
def bid(
    key: Annotated[Path, typer.Option(help="The bid client's key file (a client of the cluster).")],
    cluster: Annotated[Path, typer.Option(help="The cluster file (of `peer auctioneer setup`, or of `peer run --provider`).")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Address directory shared by the cluster "
                                                   "(default: the cluster file's address_dir).")] = None,
    users: Annotated[int, typer.Option(min=1, max=100_000, help="Users to generate and sign bids for.")] = 100,
    sellers: Annotated[int, typer.Option(min=0, max=1000, help="Provider asks (capacity, cost) to generate too.")] = 8,
    seed: Annotated[int, typer.Option()] = 1,
    round_no: Annotated[int, typer.Option("--round", min=0, help="The (first) round number; 0: the cluster's "
                                          "next open round if it has a schedule (node providers), else 1.")] = 0,
    rounds: Annotated[int, typer.Option(min=1, max=100_000, help="Run this many consecutive rounds.")] = 1,
    interval: Annotated[float, typer.Option(min=0.0, max=86400, help="Seconds between the starts of rounds "
                                            "(a scheduled cluster's own interval applies instead).")] = 0.0,
    close: Annotated[bool, typer.Option("--close/--no-close", help="Close each round's bids once sent "
                                        "(the client must be one of the cluster's closers).")] = True,
    timeout: Annotated[float, typer.Option(min=0.1, max=3600)] = 60.0,
    connect_timeout: Annotated[float, typer.Option(min=0.1, max=600, help="Seconds to wait for links to every "
                                                   "provider before sending to those that are up.")] = 30.0,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sign bids for many users (and the sellers' asks) and submit them to every provider; time each round."""
    import time

    identity, config = _load(key, cluster)
    addresses = _addresses(config, directory)
    failed = 0
    previous = 0
    for i in range(rounds):
        # A scheduled round is picked once the links are up (connecting must not eat its window).
        r = 0 if config.scheduled and (round_no == 0 or i > 0) else (round_no or 1) + i
        started = time.monotonic()
        ok, r = _one_round(identity, config, addresses, users, sellers, seed + i, r, timeout, json_out, close,
                           connect_timeout, previous)
        failed += not ok
        previous = r
        pause = interval - (time.monotonic() - started)
        if pause > 0 and i < rounds - 1 and not config.scheduled:
            time.sleep(pause)
    if failed:
        raise typer.Exit(1)


# A client's bids go to a round whose window stays open at least this long, or half the window if
# longer: sending many bids takes seconds on a loaded machine, and a window that closes first leaves
# the providers with different views (the slow path of agreement, or missed bids).
MARGIN = 1.0


async def _wait_for_window(config, previous: int) -> int:
    """The next scheduled round after ``previous`` with enough of its window left (waits for its start)."""
    import time

    import trio

    now = time.time()
    r = max(config.open_round(now, max(MARGIN, config.base.bid_window / 2)), previous + 1)
    await trio.sleep(max(0.0, config.start_of(r) - now))
    return r


def _addresses(config, directory: Path | None):
    """Where each provider listens: an address directory to watch, and/or the cluster file's URLs."""
    urls = {s.pubkey: (s.host, s.port) for s in config.specs if s.host is not None}
    directory = directory or config.address_dir
    if directory is None and len(urls) < len(config.providers):
        raise _fail("some providers have no URL in the cluster file: give --dir (their address directory)")
    return directory, urls


def _one_round(
    identity, config, addresses, users: int, sellers: int, seed: int, round_no: int,
    timeout: float, json_out: bool, close: bool, connect_timeout: float = 30.0, previous: int = 0,
) -> tuple[bool, int]:
    """One round (``round_no`` 0: the next scheduled one after ``previous``); (a common outcome?, the round)."""
    import json as jsonlib
    import time

    import trio

    from peer.auctioneer.client import submit
    from peer.auctioneer.scenario import make_instance

    directory, urls = addresses
    signing = 0.0

    async def prepare():
        nonlocal signing
        r = round_no or await _wait_for_window(config, previous)
        began = time.perf_counter()
        instance = make_instance(seed, users, max(sellers, 1), config.base.auction, r)
        bids = instance.bids if sellers else tuple(b for b in instance.bids if b.side == 0)
        signing = time.perf_counter() - began
        return r, bids

    try:
        report = trio.run(lambda: submit(identity, config.base, directory, round_no, (), round_timeout=timeout,
                                         close=close, addresses=urls, connect_timeout=connect_timeout,
                                         prepare=prepare))
    except (TimeoutError, OSError) as exc:
        raise _fail(str(exc)) from None
    out = {
        "round": report.round, "users": users, "bids": report.bids, "signing_s": round(signing, 4),
        "digest": report.digest.hex() if report.digest else None,
        "receipts_s": None if report.receipts_at is None else round(report.receipts_at - report.first_sent, 4),
        "seconds": None if report.seconds is None else round(report.seconds, 4),
        "aborts": {p.hex()[:12]: a.reason for p, a in report.aborts.items()}, "rejected": report.rejected,
    }
    if json_out:
        print(jsonlib.dumps(out))
    elif report.digest:
        console.print(f"round {report.round}: every provider holds outcome {report.digest.hex()[:16]} after "
                      f"{report.seconds * 1000:.1f} ms")
    else:
        console.print(f"round {report.round}: no common outcome: {out['aborts'] or 'timeout'}")
    return report.digest is not None, report.round


def _records_of(path: Path) -> list[tuple[str, dict]]:
    """(where, record) for a round-N.json file, or every line of a node's rounds.ndjson."""
    import json as jsonlib

    from peer.auctioneer.record import read_records

    if path.suffix == ".ndjson" or path.is_dir():
        if path.is_dir():
            path = path / "auctioneer" / "rounds.ndjson"
        records, problems = read_records(path)
        if problems:
            raise _fail(f"{path}: {problems[0]}")
        return [(f"{path} round {r['round']}", r) for r in records]
    try:
        record = jsonlib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"{path}: {exc}") from None
    if not isinstance(record, dict):
        raise _fail(f"{path}: not a record")
    return [(str(path), record)]


@auctioneer_app.command(cls=PeerCommand)
def verify(records: Annotated[list[Path], typer.Argument(
        help="round-N.json files written by providers, or node providers' rounds.ndjson files (or data dirs).")]) -> None:
    """Check recorded outcomes offline: digest recomputed, every provider's signature checked, copies equal.

    Every decided round must verify, and every copy of one round must hold the
    same outcome; a ⊥ round (a node's record of an abort) is listed, not compared.
    """
    from peer.auctioneer.record import verify_record

    by_round: dict[int | None, set[str]] = {}
    checked = bottoms = 0
    for path in records:
        for where, record in _records_of(path):
            if record.get("output") == "bottom":
                bottoms += 1
                continue
            problem = verify_record(record)
            if problem:
                raise _fail(f"{where}: {problem}")
            checked += 1
            key = record["round"] if path.suffix == ".ndjson" or path.is_dir() else None
            by_round.setdefault(key, set()).add(record["digest"])
    differing = [r for r, d in by_round.items() if len(d) > 1]
    if differing:
        raise _fail("the records hold different outcomes" + (f" for round(s) {differing}" if differing != [None] else ""))
    digests = sorted(d for ds in by_round.values() for d in ds)
    summary = f"outcome {digests[0][:16]}" if len(digests) == 1 else f"{len(digests)} rounds"
    console.print(f"{checked} record(s) verify; {summary}" + (f"; {bottoms} ⊥ round(s) not compared" if bottoms else ""))


@auctioneer_app.command(cls=PeerCommand)
def rounds(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="A provider node's data directory.")],
    last: Annotated[int, typer.Option(min=1, max=100_000, help="Show this many of the latest rounds.")] = 20,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a provider node's recorded rounds and verify each offline (no running node needed)."""
    import json as jsonlib

    from peer.auctioneer.record import read_records, verify_record

    path = data_dir / "auctioneer" / "rounds.ndjson"
    if not path.exists():
        raise _fail(f"{data_dir}: no auctioneer rounds recorded ({path} does not exist)")
    records, problems = read_records(path)
    rows = []
    bad = 0
    for r in records[-last:]:
        problem = None if r.get("output") == "bottom" else verify_record(r)
        bad += problem is not None
        rows.append({"round": r["round"], "output": r.get("output"), "digest": r.get("digest"),
                     "bids": r.get("bids"), "trades": len(r.get("trades", [])), "reason": r.get("reason"),
                     "verifies": problem is None if r.get("output") != "bottom" else None, "problem": problem})
    if json_out:
        print(jsonlib.dumps({"records": str(path), "rounds": rows, "problems": problems}))
    else:
        table = Table(title=f"{len(records)} round(s) recorded in {path}")
        for col in ("round", "output", "outcome / reason", "bids", "trades", "verifies"):
            table.add_column(col)
        for row in rows:
            if row["output"] == "bottom":
                table.add_row(str(row["round"]), "⊥", str(row["reason"]), "", "", "")
            else:
                table.add_row(str(row["round"]), "decided", str(row["digest"])[:16], str(row["bids"]),
                              str(row["trades"]), "yes" if row["verifies"] else f"NO: {row['problem']}")
        console.print(table)
        for problem in problems:
            console.print(f"[yellow]{problem}[/yellow]")
    if bad or any("not append-only" in p or "unreadable" in p for p in problems):
        raise typer.Exit(1)
