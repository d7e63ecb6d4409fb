"""``peer ledger show|verify DATA_DIR``: offline views of a node's ledger.

Both open the ledger read-only (no lock, no truncation), so they can run next
to a live node.  Exit codes of ``verify``: 0 every chain verifies, 1 some
stored entry does not (the report says which file, offset and why), 2 the
directory cannot be read as a ledger.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from peer.cli.conventions import PeerCommand, new_app
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from peer.ledger.entries import Announcement, Chain, Entry, FraudProof, SignedHop, find_culprits
from peer.ledger.records import CHAIN_SUFFIX, FRAUD_FILE
from peer.ledger.store import LEDGER_DIR, LedgerStore, StoreError
from peer.money import format_money

EXIT_INVALID = 1
EXIT_UNREADABLE = 2

ledger_app = new_app(name="ledger", help="Inspect and verify a node's ledger, offline.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Argument(help="The node's data directory (or its ledger/ directory).")]
NamesOpt = Annotated[
    Path | None, typer.Option("--names", help="JSON object mapping public key hex to a display name.")
]


def _ledger_path(data_dir: Path) -> Path:
    """``DATA_DIR/ledger``, or DATA_DIR itself when it already is a ledger directory."""
    if (data_dir / LEDGER_DIR).is_dir():
        return data_dir / LEDGER_DIR
    if any(data_dir.glob("*" + CHAIN_SUFFIX)) or (data_dir / FRAUD_FILE).exists():
        return data_dir
    return data_dir / LEDGER_DIR


def _open(data_dir: Path, console: Console) -> LedgerStore:
    try:
        if not data_dir.is_dir():
            raise StoreError(f"{data_dir}: not a directory")
        return LedgerStore(_ledger_path(data_dir), read_only=True)
    except (StoreError, OSError) as exc:
        console.print(f"[red]error:[/red] cannot read a ledger: {escape(str(exc))}")
        raise typer.Exit(EXIT_UNREADABLE) from None


class _Names:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def __call__(self, key: str) -> str:
        return self.known.get(key) or key[:10] + "…"


def _load_names(store: LedgerStore, names_file: Path | None, console: Console) -> _Names:
    known = store.names()
    if names_file is not None:
        try:
            extra = json.loads(names_file.read_text())
            if not isinstance(extra, dict):
                raise ValueError("not a JSON object")
            known.update({str(k): str(v) for k, v in extra.items()})
        except (OSError, ValueError) as exc:
            console.print(f"[red]error:[/red] --names {escape(str(names_file))}: {escape(str(exc))}")
            raise typer.Exit(EXIT_UNREADABLE) from None
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
        cells = (proof.auction, str(proof.position), culprits, kept, other,
                 _difference(proof.first, proof.second, name))
        table.add_row(*(Text(c) for c in cells))
    return table


@ledger_app.command(cls=PeerCommand)
def show(data_dir: DataDir, names: NamesOpt = None) -> None:
    """One table per auction: hops, parties, prices, hashes, signatures; fraud proofs in red."""
    console = Console()
    store = _open(data_dir, console)
    name = _load_names(store, names, console)
    proofs = store.fraud_proofs()
    chains = store.chains()
    if not chains and not store.issues:
        console.print(f"no auctions in {store.path}", markup=False)
    for chain in chains:
        fraud_at = {p.position for p in proofs if p.auction == chain.auction}
        damage = [i.reason for i in store.issues if not i.torn and i.auction == chain.auction]
        console.print(_chain_table(chain, name, fraud_at, damage))
    for issue in store.issues:
        if issue.torn:
            console.print(f"[yellow]note:[/yellow] {issue.file}: {escape(issue.reason)} (a crash mid-append)")
        elif issue.auction is None:
            console.print(f"[bold red]DAMAGED[/bold red] {issue.file} at offset {issue.offset}: "
                          f"{escape(issue.reason)}")
    if proofs:
        console.print(_fraud_table(proofs, name))


@ledger_app.command(cls=PeerCommand)
def verify(data_dir: DataDir) -> None:
    """Re-verify every chain from genesis: exit 0 if all verify, 1 if not, 2 if unreadable."""
    console = Console()
    store = _open(data_dir, console)
    try:
        report = store.verify_all()
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot read a ledger: {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    for line in report.lines():
        console.print(line, markup=False, highlight=False)
    if report.fraud_proofs:
        console.print(f"warning: {report.fraud_proofs} fraud proof(s) kept; see `peer ledger show`",
                      markup=False, highlight=False)
    if not report.ok:
        console.print("FAILED: the ledger does not verify", markup=False, highlight=False)
        raise typer.Exit(EXIT_INVALID)
    console.print("ok: every chain verifies from genesis", markup=False, highlight=False)
