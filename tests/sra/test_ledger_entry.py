"""Ledger entries of resale hops: canonical bytes, hashes and chain verification."""

from __future__ import annotations

import dataclasses

import pytest

from peer.sra.ledger_entry import HopEntry, genesis_hash, verify_chain

GENESIS = genesis_hash("auc", "item", "s")


def chain(*hops: tuple[str, str, int]) -> list[HopEntry]:
    entries, prev = [], GENESIS
    for index, (seller, buyer, price) in enumerate(hops, start=1):
        entry = HopEntry(auction="auc", hop=index, seller=seller, buyer=buyer, price=price, prev=prev)
        entries.append(entry)
        prev = entry.hash
    return entries


def test_genesis_hash_is_a_deterministic_sha256_hex() -> None:
    assert GENESIS == genesis_hash("auc", "item", "s")
    assert len(GENESIS) == 64
    int(GENESIS, 16)


def test_genesis_hash_covers_every_field_without_ambiguity() -> None:
    variants = {
        genesis_hash("auc", "item", "s"),
        genesis_hash("auc2", "item", "s"),
        genesis_hash("auc", "item2", "s"),
        genesis_hash("auc", "item", "t"),
        genesis_hash("auc", "item", "s", mechanism="other/v1"),
        genesis_hash("au", "citem", "s"),  # moving a character across fields changes the hash
        genesis_hash("auci", "tem", "s"),
    }
    assert len(variants) == 7


def test_hop_hash_covers_every_field() -> None:
    base = chain(("s", "a", 5))[0]
    changed = [
        dataclasses.replace(base, auction="other"),
        dataclasses.replace(base, hop=2),
        dataclasses.replace(base, seller="t"),
        dataclasses.replace(base, buyer="b"),
        dataclasses.replace(base, price=6),
        dataclasses.replace(base, prev="00" * 32),
        dataclasses.replace(base, seller="sa", buyer=""),  # length prefixes keep fields apart
    ]
    hashes = {base.hash, *(e.hash for e in changed)}
    assert len(hashes) == len(changed) + 1


def test_canonical_bytes_are_domain_separated_from_genesis() -> None:
    entry = chain(("s", "a", 5))[0]
    assert entry.canonical_bytes().startswith(b"peer/sra/hop/v1\x00")
    assert entry.hash == HopEntry(**dataclasses.asdict(entry)).hash


def test_valid_chains_verify() -> None:
    assert verify_chain(GENESIS, []) is None
    assert verify_chain(GENESIS, chain(("s", "a", 5))) is None
    assert verify_chain(GENESIS, chain(("s", "a", 5), ("a", "b", 5), ("b", "c", 9))) is None


def test_chain_with_wrong_genesis_fails() -> None:
    assert verify_chain(genesis_hash("other", "item", "s"), chain(("s", "a", 5))) is not None


def test_chain_with_wrong_hop_numbers_fails() -> None:
    entries = chain(("s", "a", 5), ("a", "b", 6))
    assert verify_chain(GENESIS, entries[1:]) is not None
    assert verify_chain(GENESIS, [dataclasses.replace(entries[0], hop=2)]) is not None


def test_chain_with_a_broken_link_fails() -> None:
    entries = chain(("s", "a", 5), ("a", "b", 6))
    broken = [entries[0], dataclasses.replace(entries[1], prev=GENESIS)]
    assert "chain" in (verify_chain(GENESIS, broken) or "")
    tampered = [dataclasses.replace(entries[0], price=4), entries[1]]  # hop 2 names the old hash
    assert verify_chain(GENESIS, tampered) is not None


def test_chain_sold_by_someone_who_did_not_buy_fails() -> None:
    assert verify_chain(GENESIS, chain(("s", "a", 5), ("b", "c", 6))) is not None


def test_chain_selling_below_the_purchase_price_fails() -> None:
    assert verify_chain(GENESIS, chain(("s", "a", 5), ("a", "b", 4))) is not None


@pytest.mark.parametrize("price", [0, 1, 10**6, 10**15])
def test_prices_across_the_range_hash(price: int) -> None:
    assert len(chain(("s", "a", price))[0].hash) == 64
