"""Fuzzing a ledger directory on disk, and ``LedgerStore.merge`` with garbage entries.

tests/ledger/test_ledger_store.py covers every crash prefix and every single
flipped byte of one chain file through ``scan``.  Here whole directories are
built from a genuine ledger (two chains and a fraud log) and then damaged at
the byte level (cuts, flips, inserts, zero fill, noise) and at the record level
(records dropped, duplicated, reordered, moved to another auction's file,
well-framed records whose body is garbage or the wrong kind, unknown ``.chain``
files), and opened read-only and writable.  Properties:

* opening never raises anything but IntegrityError (damage is in ``issues``);
* everything that is loaded re-verifies from genesis, in the right file;
* a read-only open changes no byte; a writable open only cuts torn tails or
  sets a lost tail aside (each file becomes a prefix of itself, reported as
  torn, or as lost with the bytes kept in ``<file>.lost``), adds only head and
  ``.lost`` files, and a second open finds nothing left to cut;
* ``verify_all`` never raises and ``ok`` means "no issue but torn tails";
* ``merge`` of unsigned/forged/mutated entries (as a peer could send them)
  rejects each with a reason, accepts nothing, and leaves files and chains as
  they were; ``merge`` of validly signed entries keeps disk and memory equal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import event, given, reject
from hypothesis import strategies as st
from nacl.signing import SigningKey

from peer.ledger.codec import DecodeError, Entries, decode_payload, encode_payload, encode_record
from peer.ledger.entries import (
    Announcement,
    Chain,
    Entry,
    FraudProof,
    SignedHop,
    sign_hop,
    verify_chain,
    verify_fraud_proof,
)
from peer.ledger.heads import HEAD_SUFFIX, HEADS_MARK
from peer.ledger.records import FRAUD_FILE, HEADER, LOST_SUFFIX, chain_file_name, frame, scan
from peer.ledger.store import IntegrityError, LedgerStore
from peer.sra.ledger_entry import HopEntry

from ._common import fuzz, msgpack_values, mutate_bytes

KEYS = [SigningKey(hashlib.sha256(b"fuzz-ledger-%d" % i).digest()) for i in range(8)]
PK = [k.verify_key.encode().hex() for k in KEYS]
KEY_OF = dict(zip(PK, KEYS, strict=True))


def countersign(body: HopEntry) -> SignedHop:
    return SignedHop(body=body, seller_sig=sign_hop(KEY_OF[body.seller], body),
                     buyer_sig=sign_hop(KEY_OF[body.buyer], body))


def make_chain(auction: str, hops: int, seller: int) -> Chain:
    chain = Chain(Announcement.create(KEYS[seller], auction=auction, item="lamp", created_at_ms=1_700_000_000_000))
    for i in range(1, hops + 1):
        chain = chain.appended(countersign(chain.next_body(PK[seller + i], 100 * i)))
    return chain


A1 = make_chain("a1", 3, 0)
B2 = make_chain("b2", 2, 4)
TWIN = countersign(dataclasses.replace(A1.hops[0].body, buyer=PK[7]))  # seller 0 signed two hop-1 deals
PROOF = FraudProof(A1.hops[0], TWIN)
ALL_ENTRIES = [*A1.entries, *B2.entries]


def _build_template() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        with LedgerStore(tmp) as store:
            for entry in ALL_ENTRIES:
                assert store.append(entry)
            assert store.add_fraud_proofs([PROOF]) == [PROOF]
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file() and p.name != ".lock"}


TEMPLATE = _build_template()
A1_FILE, B2_FILE = chain_file_name("a1"), chain_file_name("b2")
A1_HEAD, B2_HEAD = A1_FILE.replace(".chain", HEAD_SUFFIX), B2_FILE.replace(".chain", HEAD_SUFFIX)
assert set(TEMPLATE) == {A1_FILE, B2_FILE, FRAUD_FILE, A1_HEAD, B2_HEAD, HEADS_MARK}  # the mark: chains without a head file are replicas


def records_of(data: bytes) -> list[bytes]:
    """The framed records of a genuine file."""
    return [data[off:off + HEADER.size + len(body)] for off, body in scan(data).records]


@contextmanager
def directory(files: dict[str, bytes]) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="peer-fuzz-ledger-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name != ".lock"}


# ----------------------------------------------------------- damaged files

garbage_bodies = st.one_of(
    msgpack_values.map(msgspec.msgpack.encode),
    st.binary(min_size=1, max_size=64),
    st.sampled_from([encode_record(e) for e in (*ALL_ENTRIES, PROOF)]),  # a valid record of the wrong kind/place
    st.builds(lambda tag, items: msgspec.msgpack.encode([tag, *items]),
              st.sampled_from(["ann", "hop", "fraud"]), st.lists(msgpack_values, max_size=8)),
)


@st.composite
def damaged_file(draw: st.DrawFn, data: bytes) -> bytes:
    op = draw(st.sampled_from(["keep", "cut", "bytes", "noise", "zeros", "records", "records", "reframe", "append"]))
    if op == "keep":
        return data
    if op == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if op == "bytes":
        return mutate_bytes(draw, data)
    if op == "noise":
        return draw(st.binary(max_size=300))
    if op == "zeros":
        return data[: draw(st.integers(0, len(data)))] + bytes(draw(st.integers(1, 200)))
    if op == "append":
        return data + draw(st.binary(min_size=1, max_size=100))
    records = records_of(data)
    if op == "records":
        pool = records + [r for other in TEMPLATE.values() for r in records_of(other)]
        return b"".join(draw(st.lists(st.sampled_from(pool), max_size=6)))
    at = draw(st.integers(0, len(records)))
    records.insert(at, frame(draw(garbage_bodies)))
    return b"".join(records)


@st.composite
def ledger_dirs(draw: st.DrawFn) -> dict[str, bytes]:
    files = {name: data if name.endswith(HEAD_SUFFIX) and draw(st.integers(0, 3)) else draw(damaged_file(data))
             for name, data in TEMPLATE.items()}
    for name in [n for n in files if draw(st.integers(0, 5)) == 0]:
        del files[name]
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([chain_file_name("c3"), "0" * 32 + ".chain", "x.chain", ".chain"]))
        files[name] = draw(damaged_file(draw(st.sampled_from(sorted(TEMPLATE.values())))))
    return files


def check_loaded(store: LedgerStore) -> None:
    for chain in store.chains():
        verify_chain(chain)  # nothing unverified is ever loaded
    for proof in store.fraud_proofs():
        verify_fraud_proof(proof)
    for issue in store.issues:
        assert issue.reason and issue.file


@fuzz(200)
@given(ledger_dirs())
def test_opening_a_damaged_ledger_reports_and_never_crashes(files: dict[str, bytes]) -> None:
    with directory(files) as path:
        before = snapshot(path)
        try:
            ro = LedgerStore(path, read_only=True)
        except IntegrityError:  # the one clear rejection allowed (today damage goes to `issues`)
            event("IntegrityError")
            assert snapshot(path) == before
            return
        with ro:
            check_loaded(ro)
            ro_chains = {c.auction: c for c in ro.chains()}
            ro_issues = [(i.file, i.offset, i.torn) for i in ro.issues]
            report = ro.verify_all()
        assert snapshot(path) == before, "a read-only open must not change a byte"
        assert report.ok == all(i.torn for i in report.issues)
        assert "\n".join(report.lines())
        event("issues" if ro_issues else "clean")

        with LedgerStore(path) as rw:
            check_loaded(rw)
            assert {c.auction: c for c in rw.chains()} == ro_chains
            assert [(i.file, i.offset, i.torn) for i in rw.issues] == ro_issues
            torn = {i.file for i in rw.issues if i.torn}
            set_aside = {i.file for i in rw.issues if i.lost and "kept in" in i.reason}
            rw.verify_all()
        after = snapshot(path)
        assert all(n.endswith((HEAD_SUFFIX, LOST_SUFFIX)) or n == HEADS_MARK for n in set(after) - set(before))
        for name, data in before.items():
            if name.endswith(HEAD_SUFFIX):
                continue  # rewritten to name what is on disk when it named less
            assert data.startswith(after[name]), f"{name}: repair may only cut a tail"
            assert (after[name] != data) == (name in torn | set_aside), name
            if name in set_aside:  # nothing acknowledged is dropped: the cut bytes are kept
                assert after[name + LOST_SUFFIX].endswith(data[len(after[name]):])

        with LedgerStore(path) as again:  # repair is idempotent
            assert not any(i.torn for i in again.issues)
            assert {c.auction: c for c in again.chains()} == ro_chains


# --------------------------------------------------------- merging garbage

keys_hex = st.sampled_from(PK) | st.binary(min_size=32, max_size=32).map(bytes.hex)
sigs = st.one_of(
    st.binary(min_size=64, max_size=64),
    st.sampled_from([A1.announcement.signature, A1.hops[0].seller_sig, A1.hops[1].buyer_sig, B2.hops[0].seller_sig]),
)


@st.composite
def garbage_entries(draw: st.DrawFn) -> Entry:
    """Entries a peer could send that no honest party signed (constructible, so well-formed)."""
    how = draw(st.sampled_from(["mutated", "mutated", "random_hop", "random_ann", "resigned_by_stranger"]))
    base = draw(st.sampled_from(ALL_ENTRIES))
    try:
        if how == "mutated" and isinstance(base, Announcement):
            name = draw(st.sampled_from(["auction", "item", "seller", "mechanism", "created_at_ms", "signature"]))
            value = {"auction": st.sampled_from(["a1", "b2", "c3"]), "item": st.text(max_size=5),
                     "seller": keys_hex, "mechanism": st.sampled_from(["sra/v1", "x"]),
                     "created_at_ms": st.integers(0, 2**40), "signature": sigs}[name]
            return dataclasses.replace(base, **{name: draw(value)})
        if how == "mutated":
            assert isinstance(base, SignedHop)
            name = draw(st.sampled_from(["auction", "hop", "seller", "buyer", "price", "prev", "seller_sig",
                                         "buyer_sig"]))
            if name.endswith("_sig"):
                return dataclasses.replace(base, **{name: draw(sigs)})
            value = {"auction": st.sampled_from(["a1", "b2", "c3"]), "hop": st.integers(1, 6), "seller": keys_hex,
                     "buyer": keys_hex, "price": st.integers(0, 1000),
                     "prev": st.sampled_from([e.hash for e in ALL_ENTRIES]) | keys_hex}[name]
            return dataclasses.replace(base, body=dataclasses.replace(base.body, **{name: draw(value)}))
        if how == "random_ann":
            return Announcement(auction=draw(st.sampled_from(["a1", "b2", "c3"])), item=draw(st.text(max_size=5)),
                                seller=draw(keys_hex), mechanism="sra/v1", created_at_ms=draw(st.integers(0, 2**40)),
                                signature=draw(sigs))
        body = HopEntry(auction=draw(st.sampled_from(["a1", "b2", "c3"])), hop=draw(st.integers(1, 6)),
                        seller=draw(keys_hex), buyer=draw(keys_hex), price=draw(st.integers(0, 1000)),
                        prev=draw(st.sampled_from([e.hash for e in ALL_ENTRIES]) | keys_hex))
        if how == "resigned_by_stranger":  # signed, but by keys that are not the body's parties
            stranger = SigningKey(hashlib.sha256(draw(st.binary(max_size=4))).digest())
            probe = SignedHop(body=body, seller_sig=bytes(64), buyer_sig=bytes(64))
            sig = bytes(stranger.sign(probe.signed_bytes()).signature)
            return SignedHop(body=body, seller_sig=sig, buyer_sig=sig)
        return SignedHop(body=body, seller_sig=draw(sigs), buyer_sig=draw(sigs))
    except Exception as exc:  # noqa: BLE001 - an entry the constructors refuse cannot reach merge
        event(f"not constructible: {type(exc).__name__}")
        reject()


@st.composite
def wire_entries(draw: st.DrawFn) -> list[Entry]:
    """Garbage entries, and genuine ones, as they arrive: through the gossip payload decoder."""
    entries = draw(st.lists(st.one_of(garbage_entries(), st.sampled_from(ALL_ENTRIES)), min_size=1, max_size=6))
    raw = encode_payload(Entries(tuple(entries)))
    if draw(st.booleans()):
        raw = mutate_bytes(draw, raw, max_ops=2)
    try:
        payload = decode_payload(raw)
    except DecodeError:
        return entries
    return list(payload.entries) if isinstance(payload, Entries) else entries


@fuzz(150)
@given(wire_entries(), st.booleans())
def test_merging_garbage_rejects_with_reasons_and_changes_nothing(entries: list[Entry], damaged: bool) -> None:
    files = dict(TEMPLATE)
    if damaged:  # a1's file damaged mid-file, with no head file to say it lost entries: nothing may be merged
        records = records_of(files[A1_FILE])
        files[A1_FILE] = records[0] + b"\xff" * 40 + b"".join(records[1:])
        del files[A1_HEAD]
        # ... in a ledger written before the heads mark, where every record counts as acknowledged (with
        # the mark, a chain without a head file holds replicas only, and recovery cuts the damage:
        # tests/ledger/test_ledger_replicas.py)
        del files[HEADS_MARK]
    with directory(files) as path, LedgerStore(path) as store:
        before, chains = snapshot(path), store.chains()
        result = store.merge(entries)
        assert result.accepted == [] and result.fraud_proofs == []
        assert len(result.rejected) + result.duplicates == len(entries)
        for rejection in result.rejected:
            assert rejection.reason
            if damaged and rejection.entry.auction == "a1":
                assert "damaged" in rejection.reason
        assert snapshot(path) == before and store.chains() == chains
        event(f"rejected={bool(result.rejected)}")


# ------------------------------------------------- signed but wrong entries

@st.composite
def signed_next_hops(draw: st.DrawFn) -> SignedHop:
    """A hop countersigned by the parties it names, possibly breaking a chain rule."""
    chain = draw(st.sampled_from([A1, B2, Chain(A1.announcement, A1.hops[:1])]))
    head = chain.head
    body = HopEntry(auction=chain.auction, hop=head.position + 1,
                    seller=head.body.buyer if isinstance(head, SignedHop) else head.seller,
                    buyer=PK[7], price=0, prev=head.hash)
    seller_ix = PK.index(body.seller)
    changes: dict[str, Any] = {
        "buyer": PK[draw(st.sampled_from([i for i in range(8) if i != seller_ix]))],
        "price": draw(st.sampled_from([0, 99, 100, 200, 299, 300, 10**6])),
    }
    if draw(st.integers(0, 2)) == 0:
        name = draw(st.sampled_from(["hop", "prev", "seller", "auction"]))
        changes[name] = draw({"hop": st.integers(1, 6), "prev": st.sampled_from([e.hash for e in ALL_ENTRIES]),
                              "seller": st.sampled_from(PK), "auction": st.sampled_from(["a1", "b2"])}[name])
    body = dataclasses.replace(body, **changes)
    if body.seller == body.buyer:
        body = dataclasses.replace(body, buyer=PK[(PK.index(body.seller) + 1) % 8])
    return countersign(body)


@fuzz(60)
@given(st.lists(signed_next_hops(), min_size=1, max_size=4))
def test_merging_signed_entries_keeps_disk_and_memory_equal(hops: list[SignedHop]) -> None:
    with directory(TEMPLATE) as path:
        with LedgerStore(path) as store:
            result = store.merge(hops)
            for chain in store.chains():
                verify_chain(chain)
            for proof in result.fraud_proofs:
                verify_fraud_proof(proof)
            assert all(r.reason for r in result.rejected)
            assert set(store.fraud_proofs()) >= set(result.fraud_proofs)
            in_memory = store.chains()
            event(f"accepted={len(result.accepted)}")
        with LedgerStore(path, read_only=True) as reread:
            assert reread.chains() == in_memory
            assert not reread.issues


# ------------------------------------------------------------ names.json

@fuzz(100)
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8).map(lambda v: __import__("json").dumps(v).encode())))
def test_a_garbage_names_file_reads_as_no_names(data: bytes) -> None:
    """``names.json`` sits in the ledger directory; ``peer ledger show`` reads it."""
    with directory({**TEMPLATE, "names.json": data}) as path, LedgerStore(path, read_only=True) as store:
        names = store.names()
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in names.items())


def test_regression_deeply_nested_names_file_no_longer_crashes_names() -> None:
    """Regression, found by fuzzing; fixed.  It used to go like this: ``read_names`` catches OSError and ValueError from json.loads, not
    RecursionError, which ``[`` repeated ~1000 times raises: a damaged
    ``names.json`` crashes ``LedgerStore.names()`` and so ``peer ledger show``."""
    with directory({**TEMPLATE, "names.json": b"[" * 100_000}) as path, LedgerStore(path, read_only=True) as store:
        assert store.names() == {}


# ------------------------------------------------- lost entries (#15.9)

@st.composite
def acknowledged_damage(draw: st.DrawFn) -> dict[str, bytes]:
    """The genuine ledger, head files intact, each chain file cut anywhere, one byte flipped, or removed."""
    files = dict(TEMPLATE)
    for name in (A1_FILE, B2_FILE):
        data = files[name]
        op = draw(st.sampled_from(["keep", "cut", "boundary", "flip", "remove"]))
        if op == "cut":
            files[name] = data[: draw(st.integers(0, len(data)))]
        elif op == "boundary":
            files[name] = data[: draw(st.sampled_from([off for off, _ in scan(data).records]))]
        elif op == "flip":
            at = draw(st.integers(0, len(data) - 1))
            files[name] = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif op == "remove":
            del files[name]
    return files


@fuzz(150)
@given(acknowledged_damage())
def test_nothing_acknowledged_is_silently_lost_and_merge_makes_it_whole(files: dict[str, bytes]) -> None:
    originals = {"a1": A1, "b2": B2}
    with directory(files) as path:
        with LedgerStore(path, read_only=True) as ro:
            report = ro.verify_all()
            for auction, chain in originals.items():
                have = ro.chain(auction)
                if have != chain:  # something acknowledged is missing: it must be reported
                    assert ro.is_lost(auction) or ro.is_damaged(auction), auction
                    assert not report.ok
        with LedgerStore(path) as store:
            store.merge(ALL_ENTRIES)  # what anti-entropy brings back
            for auction, chain in originals.items():
                if store.is_damaged(auction):  # mid-file damage: frozen for an operator
                    event("damaged")
                    continue
                assert store.chain(auction) == chain and not store.is_lost(auction)
            whole = not any(store.is_damaged(a) for a in originals)
            assert store.verify_all().ok == whole
            event("whole" if whole else "needs an operator")
