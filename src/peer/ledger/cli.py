"""``peer ledger show|verify DATA_DIR``: offline views of a node's ledger.

Both open the ledger read-only (no lock, no truncation), so they can run next
to a live node.  Both also read the node's QPQ allocation files
(``DATA_DIR/qpq/*.ndjson``), if it took part in a QPQ stream.  Exit codes of
``show`` and ``verify``: 0 every chain verifies, 1 some stored entry does not
(the report says which file, offset and why), 2 the directory cannot be read
as a ledger.  A torn tail (a crash mid-append) or a kept fraud proof is a
note, not damage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from peer.cli.conventions import PeerCommand, new_app
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from peer.cli.ledger_json import chain_json, ledger_json, proof_json, stream_json, verify_json
from peer.cli.qpq_chain import StreamReport, check_data_dir, summary_line
from peer.ledger.entries import Announcement, Chain, Entry, FraudProof, SignedHop, find_culprits
from peer.ledger.records import CHAIN_SUFFIX, FRAUD_FILE, Issue
from peer.sra.equivocation import BID_POSITION
from peer.ledger.store import LEDGER_DIR, LedgerStore, StoreError
from peer.money import format_money
from peer.net.identity import short_name
from peer.node.balances import balances
from peer.result import amount_to_decimal, dumps

EXIT_INVALID = 1
EXIT_UNREADABLE = 2

ledger_app = new_app(name="ledger", help="Inspect and verify a node's ledger, offline.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Argument(help="The node's data directory (or its ledger/ directory).")]
NamesOpt = Annotated[
    Path | None, typer.Option("--names", help=(
        "JSON object mapping public key hex to a display name (added to the names the node recorded)."))
]
JsonOpt = Annotated[bool, typer.Option("--json", help=(
    "Print the ledger as JSON; amounts in whole units as exact decimal JSON numbers, as peer sim --json."))]


def _ledger_path(data_dir: Path) -> Path:
    """``DATA_DIR/ledger``, or DATA_DIR itself when it already is a ledger directory."""
    if (data_dir / LEDGER_DIR).is_dir():
        return data_dir / LEDGER_DIR
    if any(data_dir.glob("*" + CHAIN_SUFFIX)) or (data_dir / FRAUD_FILE).exists():
        return data_dir
    return data_dir / LEDGER_DIR


def _unreadable(message: str) -> typer.Exit:
    # One line on stderr, verbatim (paths and reasons may contain "[...]").
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(EXIT_UNREADABLE)


def _open(data_dir: Path) -> tuple[LedgerStore | None, list[StreamReport]]:
    """The SRA ledger (None for a directory of QPQ allocation files only) and the QPQ streams."""
    try:
        if not data_dir.is_dir():
            raise StoreError(f"{data_dir}: not a directory")
        streams = check_data_dir(data_dir)
        ledger = _ledger_path(data_dir)
        if streams and not ledger.is_dir():
            return None, streams
        return LedgerStore(ledger, read_only=True), streams
    except (StoreError, OSError) as exc:
        raise _unreadable(f"cannot read a ledger: {exc}") from None


class _Names:
    """Display names: the node's names.json, then --names; else the key's short name, as the node shows it."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def __call__(self, key: str) -> str:
        if key in self.known:
            return self.known[key]
        try:
            return short_name(bytes.fromhex(key))
        except ValueError:
            return key[:10] + "…"


def _load_names(store: LedgerStore | None, names_file: Path | None) -> _Names:
    known = store.names() if store is not None else {}
    if names_file is not None:
        try:
            extra = json.loads(names_file.read_text())
            if not isinstance(extra, dict):
                raise ValueError("not a JSON object")
            known.update({str(k): str(v) for k, v in extra.items()})
        except (OSError, ValueError, RecursionError) as exc:
            raise _unreadable(f"--names {names_file}: {exc}") from None
    return _Names(known)


def _tick(ok: bool) -> str:
    return "✓" if ok else "✗"


def _chain_table(chain: Chain, name: _Names, fraud_at: set[int], damage: list[str]) -> Table:
    ann = chain.announcement
    try:
        when = datetime.fromtimestamp(ann.created_at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):  # a valid but absurd timestamp
        when = f"at {ann.created_at_ms} ms"
    # Text, not markup: ids, items and names come from other nodes.
    table = Table(title=Text(f"auction {ann.auction} — item {ann.item!r}, {ann.mechanism}, announced {when}"),
                  title_justify="left")
    for col, justify in (("hop", "right"), ("seller", "left"), ("buyer", "left"), ("price", "right"),
                         ("hash", "left"), ("signatures ok", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    rows: list[tuple[list[str], bool]] = [(
        ["0", name(ann.seller), "(genesis)", "", ann.hash[:16], f"seller {_tick(ann.signature_ok())}"], 0 in fraud_at)]
    for hop in chain.hops:
        b = hop.body
        sigs = f"seller {_tick(hop.seller_sig_ok())} buyer {_tick(hop.buyer_sig_ok())}"
        rows.append(([str(b.hop), name(b.seller), name(b.buyer), format_money(b.price), b.hash[:16], sigs],
                     b.hop in fraud_at))
    for cells, fraud in rows:
        if fraud:
            cells[-1] += "  FRAUD PROOF"
        table.add_row(*(Text(c) for c in cells), style="bold red" if fraud else None)
    if damage:
        table.caption = Text("DAMAGED: " + "; ".join(damage), style="bold red")
        table.caption_justify = "left"
    return table


def _difference(a: Entry, b: Entry, name: _Names) -> str:
    if a.position == BID_POSITION:  # #15.7: two signed stage-2 bid commitments (parents and amounts salted)
        return "two different stage-2 bids (Bid to two inviters)"
    if isinstance(a, SignedHop) and isinstance(b, SignedHop):
        fields = (("buyer", name(a.body.buyer), name(b.body.buyer)),
                  ("price", format_money(a.body.price), format_money(b.body.price)),
                  ("seller", name(a.body.seller), name(b.body.seller)),
                  ("prev", a.body.prev[:12], b.body.prev[:12]))
    elif isinstance(a, Announcement) and isinstance(b, Announcement):
        fields = (("item", a.item, b.item), ("mechanism", a.mechanism, b.mechanism),
                  ("created_at_ms", str(a.created_at_ms), str(b.created_at_ms)))
    else:
        return "different kinds of entry"
    return ", ".join(f"{f}: {x} vs {y}" for f, x, y in fields if x != y) or "same fields"


def _fraud_table(proofs: list[FraudProof], name: _Names) -> Table:
    table = Table(title="FRAUD PROOFS: one party signed two different entries", title_justify="left",
                  title_style="bold red", border_style="red", style="red")
    for col in ("auction", "position", "culprit", "kept", "conflicting", "difference"):
        table.add_column(col)
    for proof in proofs:
        culprits = ", ".join(sorted(name(k) for k in find_culprits(proof.first, proof.second)))
        # Chain hashes match the chain tables; two announcements share one, so use digests there.
        same = proof.first.hash == proof.second.hash
        kept, other = ((e.digest if same else e.hash)[:16] for e in (proof.first, proof.second))
        cells = (proof.auction, "bid" if proof.position == BID_POSITION else str(proof.position), culprits, kept, other,
                 _difference(proof.first, proof.second, name))
        table.add_row(*(Text(c) for c in cells))
    return table


@ledger_app.command(cls=PeerCommand)
def show(data_dir: DataDir, names: NamesOpt = None, json_out: JsonOpt = False) -> None:
    """One table per auction: hops, parties, prices, hashes, signatures; fraud proofs in red; QPQ streams.

    Exit 1 if any stored entry is damaged, 2 if the directory cannot be read.
    """
    store, streams = _open(data_dir)
    name = _load_names(store, names)
    proofs = store.fraud_proofs() if store is not None else []
    chains = store.chains() if store is not None else []
    issues = list(store.issues) if store is not None else []
    damaged = any(not i.torn for i in issues) or any(not s.ok for s in streams)

    def fraud_at(auction: str) -> set[int]:
        return {p.position for p in proofs if p.auction == auction}

    def damage(auction: str) -> list[str]:
        return [i.reason for i in issues if not i.torn and i.auction == auction]

    if json_out:
        payload = ledger_json(
            store.path if store is not None else None,
            [chain_json(c, name, fraud_at(c.auction), damage(c.auction)) for c in chains],
            [proof_json(p, name) for p in proofs], issues, [stream_json(s, name) for s in streams])
        payload["balances"] = [{"key": key, "name": name(key), "balance": amount_to_decimal(amount)}
                               for key, amount in _sorted_balances(chains)]
        sys.stdout.write(dumps(payload) + "\n")
    else:
        _show_tables(store, streams, name, proofs, chains, issues, fraud_at, damage)
    if damaged:
        raise typer.Exit(EXIT_INVALID)


def _show_tables(store: LedgerStore | None, streams: list[StreamReport], name: _Names, proofs: list[FraudProof],
                 chains: list[Chain], issues: list[Issue], fraud_at: Callable[[str], set[int]],
                 damage: Callable[[str], list[str]]) -> None:
    console = Console()
    if store is not None and not chains and not issues:
        console.print(f"no auctions in {store.path}", markup=False)
    for chain in chains:
        console.print(_chain_table(chain, name, fraud_at(chain.auction), damage(chain.auction)))
    if any(chain.hops for chain in chains):
        console.print(_balance_table(chains, name))
    for issue in issues:
        if issue.torn:
            console.print(f"[yellow]note:[/yellow] {escape(issue.file)}: {escape(issue.reason)} (a crash mid-append)")
        elif issue.auction is None:
            console.print(f"[bold red]DAMAGED[/bold red] {escape(issue.file)} at offset {issue.offset}: "
                          f"{escape(issue.reason)}")
    if proofs:
        console.print(_fraud_table(proofs, name))
    for report in streams:
        if report.entries:
            console.print(_stream_table(report, name))
            continue
        console.print(summary_line(report, name), markup=False, highlight=False)
        for problem in report.problems:
            console.print(Text(f"DAMAGED {report.file}: {problem}", style="bold red"))


def _sorted_balances(chains: list[Chain]) -> list[tuple[str, int]]:
    """Each key's net position over every auction (received minus paid), highest first; they sum to zero."""
    return sorted(balances(chains).items(), key=lambda kv: (-kv[1], kv[0]))


def _balance_table(chains: list[Chain], name: _Names) -> Table:
    table = Table(title=Text("balances over every auction"), title_justify="left")
    for col, justify in (("node", "left"), ("key", "left"), ("received - paid", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for key, amount in _sorted_balances(chains):
        table.add_row(Text(name(key)), Text(key[:16]), Text(format_money(amount)))
    return table


def _stream_table(report: StreamReport, name: _Names, max_rows: int = 20) -> Table:
    table = Table(title=Text(summary_line(report, name)), title_justify="left")
    for col in ("round", "winner", "cluster", "hash"):
        table.add_column(col, justify="right" if col == "round" else "left")
    shown = report.entries if len(report.entries) <= max_rows else report.entries[-max_rows:]
    for entry in shown:
        table.add_row(str(entry.round), Text(entry.winner or "(nobody)"), Text(entry.cluster), entry.hash[:16])
    notes = [f"showing the last {max_rows}"] if len(shown) < len(report.entries) else []
    notes += report.notes
    if report.problems:
        table.caption = Text("DAMAGED: " + "; ".join(report.problems), style="bold red")
    elif notes:
        table.caption = Text("; ".join(notes))
    table.caption_justify = "left"
    return table


@ledger_app.command(cls=PeerCommand)
def verify(data_dir: DataDir, json_out: Annotated[bool, typer.Option("--json", help=(
        "Print the verdict as JSON (ok, auctions, issues, QPQ streams); the exit code is the same."))] = False,
           ) -> None:
    """Re-verify every chain from genesis, SRA and QPQ: exit 0 if all verify, 1 if not, 2 if unreadable."""
    console = Console()

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    store, streams = _open(data_dir)
    report = None
    if store is not None:
        try:
            report = store.verify_all()
        except (StoreError, OSError) as exc:
            raise _unreadable(f"cannot read a ledger: {exc}") from None
    name = _load_names(store, None)
    if json_out:
        payload = verify_json(report, [stream_json(s, name, rounds=False) for s in streams])
        sys.stdout.write(dumps(payload) + "\n")
        if not payload["ok"]:
            raise typer.Exit(EXIT_INVALID)
        return
    ok = True
    if report is not None:
        for line in report.lines():
            say(line)
        if report.fraud_proofs:
            say(f"warning: {report.fraud_proofs} fraud proof(s) kept; see `peer ledger show`")
        ok = report.ok
    for stream in streams:
        say(summary_line(stream, name))
        for note in stream.notes:
            say(f"note: {stream.file}: {note}")
        for problem in stream.problems:
            say(f"ERROR: {stream.file}: {problem}")
        ok = ok and stream.ok
    if not ok:
        say("FAILED: the ledger does not verify")
        raise typer.Exit(EXIT_INVALID)
    what = "every chain verifies from genesis" if store is not None else ""
    if streams:
        what += ("; " if what else "") + f"{len(streams)} QPQ allocation chain(s) verify"
    say(f"ok: {what}")
