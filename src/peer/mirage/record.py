"""The signed, hash-chained balance record: one entry per round that any provider can recompute.

A round's entry holds the digest of its inputs (window state, bids, fees), the
allocation, and the balances after settlement, plus the hash of the previous
entry.  Everything in it is a pure function of the previous entry's balances
and the round's inputs (:func:`compute_entry`), so each provider of the
distributed auctioneer computes the entry itself, signs its hash, and the
providers compare hashes: an honest copy is one whose hash every provider
signed.  :func:`verify_chain` re-derives every entry from the inputs and
checks the links and the signatures; it changes nothing and raises
:class:`RecordError` naming the first round that does not verify.

The encoding is canonical JSON (sorted keys, no spaces, integers only), so the
hash does not depend on who built the entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from peer.mirage.clearing import clear
from peer.mirage.currency import Account, CurrencyPolicy, settle
from peer.mirage.model import Bid, Clearing, MarketError, RoundState, Rules
from peer.net.identity import Identity, verify

GENESIS = "0" * 64


class RecordError(MarketError):
    """A balance record that does not verify."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


@dataclass(frozen=True, slots=True)
class RoundInputs:
    """Everything a provider needs to clear and settle one round."""

    state: RoundState
    bids: tuple[Bid, ...]
    fees: tuple[tuple[str, int], ...]

    def as_data(self) -> dict[str, Any]:
        return {"state": asdict(self.state), "bids": [asdict(b) for b in self.bids], "fees": [list(f) for f in self.fees]}


@dataclass(frozen=True, slots=True)
class Entry:
    round: int
    prev: str
    body: dict[str, Any]
    signatures: tuple[tuple[str, str], ...] = ()  # (provider public hex, signature hex)

    @property
    def hash(self) -> str:
        return digest({"round": self.round, "prev": self.prev, "body": self.body})

    def accounts(self) -> tuple[Account, ...]:
        return tuple(Account(**a) for a in self.body["accounts"])


def genesis_entry(accounts: tuple[Account, ...], rules: Rules, policy: CurrencyPolicy) -> Entry:
    body = {"rules": asdict(rules), "savings_tax": [policy.savings_tax.numerator, policy.savings_tax.denominator],
            "accounts": [asdict(a) for a in accounts]}
    return Entry(0, GENESIS, body)


def compute_entry(prev: Entry, inputs: RoundInputs, rules: Rules, policy: CurrencyPolicy,
                  clearing: Clearing | None = None) -> tuple[Entry, Clearing]:
    """The next entry: clear the round (unless ``clearing`` is given, e.g. by the market), then settle it."""
    if clearing is None:
        clearing = clear(inputs.state, inputs.bids, rules)
    settlement = settle(prev.accounts(), dict(clearing.payments), dict(inputs.fees), policy)
    body = {
        "inputs": digest(inputs.as_data()),
        "now": inputs.state.now,
        "algorithm": clearing.algorithm,
        "allocations": [asdict(a) for a in clearing.allocations],
        "debits": [list(x) for x in settlement.debits],
        "taxes": [list(x) for x in settlement.taxes],
        "dividends": [list(x) for x in settlement.dividends],
        "accounts": [asdict(a) for a in settlement.accounts],
    }
    return Entry(prev.round + 1, prev.hash, body), clearing


def sign_entry(entry: Entry, provider: Identity) -> Entry:
    sig = provider.sign(bytes.fromhex(entry.hash))
    signatures = dict(entry.signatures)
    signatures[provider.public_hex] = sig.hex()
    return Entry(entry.round, entry.prev, entry.body, tuple(sorted(signatures.items())))


def verify_chain(entries: Sequence[Entry], inputs: Iterable[RoundInputs], rules: Rules, policy: CurrencyPolicy,
                 providers: Iterable[str], quorum: int | None = None) -> None:
    """Check every link, recompute every round from its inputs, and require ``quorum`` provider signatures.

    ``quorum`` defaults to all ``providers``.  Raises RecordError on the first entry that fails.
    """
    try:
        _verify_chain(entries, inputs, rules, policy, providers, quorum)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"malformed record: {type(exc).__name__}: {exc}") from None


def _verify_chain(entries: Sequence[Entry], inputs: Iterable[RoundInputs], rules: Rules, policy: CurrencyPolicy,
                  providers: Iterable[str], quorum: int | None) -> None:
    keys = sorted(set(providers))
    need = len(keys) if quorum is None else quorum
    if not entries:
        raise RecordError("empty record")
    first = entries[0]
    expected_genesis = genesis_entry(first.accounts(), rules, policy)
    if first.round != 0 or first.prev != GENESIS or first.hash != expected_genesis.hash:
        raise RecordError("round 0: not the genesis of these rules and accounts")
    rounds = list(inputs)
    if len(rounds) != len(entries) - 1:
        raise RecordError(f"{len(entries) - 1} rounds recorded but {len(rounds)} rounds of inputs given")
    for prev, entry, round_inputs in zip(entries, entries[1:], rounds):
        if entry.round != prev.round + 1 or entry.prev != prev.hash:
            raise RecordError(f"round {entry.round}: does not link to round {prev.round}")
        try:
            again, _ = compute_entry(prev, round_inputs, rules, policy)
        except MarketError as exc:
            raise RecordError(f"round {entry.round}: inputs do not clear: {exc}") from None
        if again.hash != entry.hash:
            raise RecordError(f"round {entry.round}: recomputed entry differs from the recorded one")
    for entry in entries:
        _check_signatures(entry, keys, need)


def _check_signatures(entry: Entry, keys: Sequence[str], need: int) -> None:
    good = 0
    message = bytes.fromhex(entry.hash)
    for key, sig in entry.signatures:
        if key not in keys:
            raise RecordError(f"round {entry.round}: signed by {key[:16]}, not a provider")
        try:
            ok = verify(bytes.fromhex(key), message, bytes.fromhex(sig))
        except ValueError:
            ok = False
        if not ok:
            raise RecordError(f"round {entry.round}: bad signature from {key[:16]}")
        good += 1
    if good < need:
        raise RecordError(f"round {entry.round}: {good} provider signatures, {need} needed")


def balances(entry: Entry) -> Mapping[str, int]:
    return {a["user"]: a["balance"] for a in entry.body["accounts"]}
