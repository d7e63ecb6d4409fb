"""Coverage-guided (libFuzzer-style) fuzzing of every decoder with atheris.

Not part of CI and not a project dependency: ``pip install atheris`` first.
Each target runs in its own process (libFuzzer owns the process and exits when
it is done), seeded with valid encodings, and with the ``peer`` package
instrumented for coverage.  A target's harness lets through only the decoder's
documented clear rejection; anything else is a *crash*, recorded under a
signature (exception type and the innermost ``peer`` frame) with the smallest
input that produced it, and fuzzing goes on so one known bug does not hide the
next.  ``--strict`` instead lets the first crash stop the target the libFuzzer
way (it writes a crash-* artifact).

    python bench/fuzz_atheris.py --seconds 60              # every target, 60 s each
    python bench/fuzz_atheris.py --runs 20000 --targets net_codec,frames
    python bench/fuzz_atheris.py --list

Results: a table on stdout, and ``--out DIR`` (default: a temporary
directory) keeps per-target JSON with each crash's smallest input in hex.
See docs/fuzzing.md for the targets and the last recorded results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TARGETS = {
    "net_codec": "decode_message / decode_handshake: DecodeError only",
    "frames": "FrameOpener.open on raw and validly signed frames: FrameError only, state per the counters",
    "handshake": "ListenerHandshake / DialerHandshake.receive: HandshakeError only, then FAILED",
    "gossip": "Gossip.receive on decoded envelopes: GossipError only, seen cache unchanged on refusal",
    "ledger_codec": "decode_payload / decode_record: DecodeError only",
    "ledger_store": "LedgerStore on a directory of fuzzed files, verify_all, names, merge: IntegrityError only",
    "scenario": "parse_scenario on fuzzed TOML text: ScenarioError only",
    "sra_machine": "SraNode.receive with fuzzed messages: RemoteProtocolError only, state unchanged",
    "eventlog": "Tail.read_new on fuzzed log bytes: never raises",
}


# ===================================================================== worker

class Crash(Exception):
    """A property of the harness failed (not an exception from the code under test)."""


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}peer{os.sep}" in f.filename] or frames
    where = ours[-1] if ours else None
    at = f"{Path(where.filename).name}:{where.lineno} {where.name}" if where else "?"
    return f"{type(exc).__name__} at {at}"


class Recorder:
    """Keeps the smallest input per crash signature in a JSON file, and a run count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs = 0
        self.crashes: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self._flushed = 0.0

    def ran(self) -> None:
        self.runs += 1
        now = time.monotonic()
        if now - self._flushed > 2.0:
            self.flush()

    def crash(self, exc: BaseException, data: bytes) -> None:
        sig = _signature(exc)
        entry = self.crashes.setdefault(sig, {"count": 0, "input": data.hex(), "message": str(exc)[:300]})
        entry["count"] += 1
        if len(data) < len(bytes.fromhex(entry["input"])):
            entry["input"], entry["message"] = data.hex(), str(exc)[:300]
        if entry["count"] == 1:
            print(f"\n=== new crash: {sig}: {str(exc)[:200]}", file=sys.stderr, flush=True)
        if entry["count"] & (entry["count"] - 1) == 0:  # 1, 2, 4, 8, ...: counts stay roughly current
            self.flush()

    def flush(self) -> None:
        self._flushed = time.monotonic()
        self.path.write_text(json.dumps({"runs": self.runs, "seconds": round(self._flushed - self.started, 1),
                                         "crashes": self.crashes}, indent=1))


def _build_target(name: str, work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    """The harness for ``name`` and its seed inputs.  Imports happen here, under instrumentation."""
    return _BUILDERS[name](work)


def _net_codec(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    from peer.net.codec import (
        Confirm,
        DecodeError,
        GossipEnvelope,
        Heartbeat,
        Hello,
        decode_handshake,
        decode_message,
        encode_handshake,
        encode_message,
    )
    from peer.sra import messages as sra

    def one(data: bytes) -> None:
        for decoder in (decode_message, decode_handshake):
            try:
                decoder(data)
            except DecodeError:
                pass

    seeds = [encode_message(m) for m in _sra_samples(sra)] + [
        encode_message(Heartbeat(n=7)),
        encode_message(GossipEnvelope(origin=b"o" * 32, seq=1, expires_ms=5, topic="t", payload=b"p", sig=b"s" * 64)),
        encode_handshake(Hello(v=1, pk=b"k" * 32, to=b"l" * 32, nonce=b"n" * 32)),
        encode_handshake(Confirm(sig=b"s" * 64)),
    ]
    return one, seeds


def _sra_samples(sra: Any) -> list[Any]:
    h = "ab" * 32
    return [
        sra.Invite(auction="a", item="i", seller="s", genesis=h, budget=1.5), sra.Bid(auction="a", amount=3),
        sra.Decline(auction="a"), sra.Open(auction="a", hop=1, reserve=0, prev=h),
        sra.ContextRequest(auction="a", hop=1, host="s"), sra.ContextReply(auction="a", hop=1, amount=None),
        sra.ContextBid(auction="a", hop=1, amount=2), sra.Award(auction="a", hop=1, price=2, entry=h),
        sra.Settled(auction="a", winner="b", hops=1, price=2),
    ]


def _sessions() -> tuple[Any, Any, Any, Any]:
    from peer.net.handshake import DialerHandshake, ListenerHandshake
    from peer.net.identity import Identity

    d, lis = Identity.from_seed(b"d" * 32), Identity.from_seed(b"l" * 32)
    dialer = DialerHandshake(d, lis.public_key, nonce=b"1" * 32)
    listener = ListenerHandshake(lis, {d.public_key}, nonce=b"2" * 32)
    ack = listener.receive(dialer.start())
    listener.receive(dialer.receive(ack))
    return d, lis, dialer.session, listener.session


def _frames(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    from collections import Counter

    import atheris

    from peer.net.codec import Heartbeat, encode_message
    from peer.net.frames import FrameError, FrameErrorKind, FrameOpener, FrameSealer
    from peer.sra import messages as sra

    d, _, dialer_session, listener_session = _sessions()

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        sent = fdp.ConsumeIntInRange(0, 3)
        signed = fdp.ConsumeBool()
        sealer, opener = FrameSealer(dialer_session, d), FrameOpener(listener_session, max_frame=4096)
        for i in range(sent):
            opener.open(sealer.seal(Heartbeat(n=i)))
        frame = sealer.seal_body(fdp.ConsumeBytes(fdp.remaining_bytes())) if signed else fdp.ConsumeBytes(fdp.remaining_bytes())
        before = (opener.last_seq, opener.frames_in, Counter(opener.rejected))
        try:
            opener.open(frame)
        except FrameError as exc:
            after = (opener.last_seq, opener.frames_in, Counter(opener.rejected))
            expected = Counter(before[2])
            expected[exc.kind] += 1
            consumed = 1 if exc.kind is FrameErrorKind.GARBAGE and signed else 0
            if after != (before[0] + consumed, before[1] + consumed, expected):
                raise Crash(f"state after a {exc.kind.value} frame: {before} -> {after}") from None

    sealer = FrameSealer(dialer_session, d)
    seeds = [b"\x00" + sealer.seal(m) for m in _sra_samples(sra)] + [b"\x01" + encode_message(Heartbeat(n=1))]
    return one, seeds


def _handshake(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    import atheris

    from peer.net.handshake import DialerHandshake, HandshakeError, ListenerHandshake, State
    from peer.net.identity import Identity

    d, lis = Identity.from_seed(b"d" * 32), Identity.from_seed(b"l" * 32)

    def feed(machine: Any, chunk: bytes) -> bool:
        try:
            machine.receive(chunk)
        except HandshakeError:
            if machine.state is not State.FAILED:
                raise Crash("HandshakeError but the machine is not FAILED") from None
            return False
        return True

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        first, second = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)), fdp.ConsumeBytes(fdp.remaining_bytes())
        listener = ListenerHandshake(lis, {d.public_key}, nonce=b"2" * 32)
        if feed(listener, first):
            feed(listener, second)
        dialer = DialerHandshake(d, lis.public_key, nonce=b"1" * 32)
        dialer.start()
        feed(dialer, first)

    hello = DialerHandshake(d, lis.public_key, nonce=b"1" * 32).start()
    ack = ListenerHandshake(lis, {d.public_key}, nonce=b"2" * 32).receive(hello) or b""
    seeds = [bytes([len(hello) % 256]) + hello + ack, bytes([len(ack) % 256]) + ack]
    return one, seeds


def _gossip(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    import copy
    import dataclasses

    from peer.net.codec import DecodeError, GossipEnvelope, decode_message, encode_message
    from peer.net.gossip import Gossip, GossipError, SeenCache, sign_envelope
    from peer.net.identity import Identity
    from peer.net.seqstore import MemorySeqCounter

    me, origin = Identity.from_seed(b"r" * 32), Identity.from_seed(b"o" * 32)
    now = 1_700_000_000.0
    history = [sign_envelope(origin, s, int(now * 1000) + 60_000, "t", b"x") for s in (1, 2, 5)]

    def one(data: bytes) -> None:
        try:
            env = decode_message(data)
        except DecodeError:
            return
        if not isinstance(env, GossipEnvelope):
            return
        node = Gossip(me, MemorySeqCounter(), frozenset({origin.public_hex}), seen=SeenCache(capacity=3))
        for h in history:
            node.receive(origin.public_hex, h, now)
        seen, stats = copy.deepcopy(node.seen.__dict__), dataclasses.asdict(node.stats)
        try:
            node.receive(origin.public_hex, env, now)
        except GossipError:
            if node.seen.__dict__ != seen:
                raise Crash("a refused envelope changed the seen cache") from None
            stats["invalid"] += 1
            if dataclasses.asdict(node.stats) != stats:
                raise Crash("a refused envelope moved other statistics") from None

    seeds = [encode_message(sign_envelope(origin, s, int(now * 1000) + 10_000, "auction", b"payload"))
             for s in (3, 4)] + [encode_message(history[0])]
    return one, seeds


def _ledger_samples() -> tuple[Any, Any, list[Any]]:
    import dataclasses
    import hashlib

    from nacl.signing import SigningKey

    from peer.ledger.entries import Announcement, Chain, FraudProof, SignedHop, sign_hop

    keys = [SigningKey(hashlib.sha256(b"atheris-%d" % i).digest()) for i in range(5)]
    pk = [k.verify_key.encode().hex() for k in keys]
    key_of = dict(zip(pk, keys, strict=True))

    def countersign(body: Any) -> Any:
        return SignedHop(body=body, seller_sig=sign_hop(key_of[body.seller], body),
                         buyer_sig=sign_hop(key_of[body.buyer], body))

    chain = Chain(Announcement.create(keys[0], auction="a1", item="lamp", created_at_ms=1))
    for i in (1, 2):
        chain = chain.appended(countersign(chain.next_body(pk[i], 10 * i)))
    twin = countersign(dataclasses.replace(chain.hops[0].body, buyer=pk[4]))
    return chain, FraudProof(chain.hops[0], twin), keys


def _ledger_codec(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    from peer.ledger.codec import DecodeError, Entries, FraudProofs, Summaries, decode_payload, decode_record, \
        encode_payload, encode_record
    from peer.ledger.replicate import summarize

    chain, proof, _ = _ledger_samples()

    def one(data: bytes) -> None:
        for decoder in (decode_payload, decode_record):
            try:
                decoder(data)
            except DecodeError:
                pass

    seeds = [encode_record(e) for e in chain.entries] + [encode_record(proof), encode_payload(Entries(chain.entries)),
                                                         encode_payload(Summaries((summarize(chain),))),
                                                         encode_payload(FraudProofs((proof,)))]
    return one, seeds


def _ledger_store(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    import shutil

    import atheris

    from peer.ledger.codec import DecodeError, decode_payload, encode_record
    from peer.ledger.records import FRAUD_FILE, chain_file_name, frame
    from peer.ledger.store import IntegrityError, LedgerStore

    chain, proof, _ = _ledger_samples()
    base = work / "ledger"
    a1 = chain_file_name("a1")

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        chain_bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
        fraud_bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 1024))
        names_bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        (base / a1).write_bytes(chain_bytes)
        if fraud_bytes:
            (base / FRAUD_FILE).write_bytes(fraud_bytes)
        if names_bytes:
            (base / "names.json").write_bytes(names_bytes)
        try:
            with LedgerStore(base) as store:
                store.verify_all()
                store.names()
                try:
                    entries = decode_payload(payload)
                except DecodeError:
                    return
                before = {p.name: p.read_bytes() for p in base.iterdir()}
                chains = store.chains()
                result = store.merge(list(getattr(entries, "entries", ())))
                if not result.accepted and not result.fraud_proofs:
                    if {p.name: p.read_bytes() for p in base.iterdir()} != before or store.chains() != chains:
                        raise Crash("a merge that accepted nothing changed the store")
        except IntegrityError:
            pass

    def seed(chain_bytes: bytes, fraud: bytes = b"", names: bytes = b"", payload: bytes = b"") -> bytes:
        # FuzzedDataProvider reads ConsumeIntInRange from the end of the input; seeds
        # only need to be plausible starting points, not exact layouts.
        return chain_bytes + fraud + names + payload

    records = b"".join(frame(encode_record(e)) for e in chain.entries)
    seeds = [seed(records), seed(records[:-7]), seed(records, frame(encode_record(proof)), b'{"ab": "x"}')]
    return one, seeds


def _scenario(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    from peer.errors import ScenarioError
    from peer.scenario.load import parse_scenario

    # Known resource exhaustion (not a crash, see docs/fuzzing.md): a graph
    # generator with ~10**5 dense nodes.  Digit runs of five or more are
    # skipped so the fuzzer explores the rest instead of timing out on them.
    too_big = re.compile(r"\d{5,}")

    def one(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        if too_big.search(text):
            return
        try:
            parse_scenario(text, source="fuzz.toml")
        except ScenarioError as exc:
            if not str(exc).startswith("fuzz.toml: [") or not exc.key:
                raise Crash(f"ScenarioError without source and key: {exc}") from None

    seeds = [p.read_bytes() for p in sorted((ROOT / "scenarios").glob("*.toml")) if p.stat().st_size < 4096]
    seeds.append(b'seller = "s"\n[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"]]\n'
                 b'[behaviours.a]\nbid = 2\ninvite_only = ["s"]\n')
    return one, seeds


def _sra_machine(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    import copy

    import atheris

    from peer.errors import RemoteProtocolError
    from peer.sra import messages as sra
    from peer.sra.ledger_entry import HopEntry, genesis_hash
    from peer.sra.machine import SraConfig, SraNode

    auction, item = "fz", "item"
    genesis = genesis_hash(auction, item, "s")
    h1 = HopEntry(auction=auction, hop=1, seller="s", buyer="a", price=3, prev=genesis).hash
    config = SraConfig(gather_window=0.5, reply_timeout=10.0, context_timeout=20.0, margin=0.5)
    names = ["s", "a", "b", "c", "zz"]
    hashes = [genesis, h1, "0" * 64]
    kinds = [sra.Invite, sra.Bid, sra.Decline, sra.Open, sra.ContextRequest, sra.ContextReply, sra.ContextBid,
             sra.Award, sra.Settled]

    def value(fdp: Any, field: str) -> Any:
        choice = fdp.ConsumeIntInRange(0, 9)
        if choice == 9:  # anything at all
            return fdp.PickValueInList([None, True, -1, 2**63, 2**64, float("nan"), float("inf"), "", b"", [], {},
                                        1.5, "x" * 200])
        if field == "auction":
            return auction
        if field in ("genesis", "prev", "entry"):
            return fdp.PickValueInList(hashes)
        if field in ("host", "winner", "seller"):
            return fdp.PickValueInList(names)
        if field == "item":
            return item
        if field == "budget":
            return fdp.PickValueInList([None, 0.0, 5.0, 19.5, 1e9])
        if field == "seller_sig":
            return b""
        return fdp.ConsumeIntInRange(0, 12)

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        is_seller = fdp.ConsumeBool()
        machine = SraNode("s" if is_seller else "a", ["a", "b"] if is_seller else ["s", "b", "c"], 4,
                          auction=auction, seed=1, seller="s", item=item, config=config)
        if is_seller:
            machine.start(0.0)
        now = 1.0
        for _ in range(fdp.ConsumeIntInRange(1, 10)):
            if fdp.ConsumeIntInRange(0, 4) == 0:
                now += fdp.ConsumeIntInRange(0, 30) / 4
                machine.on_timer(now)
                continue
            sender = fdp.PickValueInList(names)
            k = fdp.ConsumeIntInRange(0, len(kinds))
            if k == len(kinds):
                msg: Any = fdp.PickValueInList([None, 5, "x", object()])
            else:
                cls = kinds[k]
                msg = cls(**{f: value(fdp, f) for f in cls.__dataclass_fields__})
            before = copy.deepcopy(machine.__dict__)
            try:
                machine.receive(sender, msg, now)
            except RemoteProtocolError:
                if machine.__dict__ != before:
                    raise Crash(f"rejected {msg!r} but the machine changed") from None

    return one, [bytes(range(64)), b"\x01" * 64, b"\x00\x05" * 40]


def _eventlog(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    import atheris

    from peer.node.eventlog import Tail

    path = work / "events.ndjson"

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        cut = fdp.ConsumeIntInRange(0, 4096)
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        path.write_bytes(body[:cut])
        tail = Tail(path)
        events = tail.read_new()
        with open(path, "ab") as fh:
            fh.write(body[cut:])
        events += tail.read_new()
        if not all(isinstance(e, dict) for e in events):
            raise Crash("read_new returned a non-object")

    seeds = [b'{"t":0.5,"node":"a","kind":"send"}\n{"t":1,"node":"a","kind":"final"}\n', b'{"kind":"x"}\n[1,2]\n']
    return one, seeds


_BUILDERS: dict[str, Callable[[Path], tuple[Callable[[bytes], None], list[bytes]]]] = {
    "net_codec": _net_codec, "frames": _frames, "handshake": _handshake, "gossip": _gossip,
    "ledger_codec": _ledger_codec, "ledger_store": _ledger_store, "scenario": _scenario,
    "sra_machine": _sra_machine, "eventlog": _eventlog,
}


def worker(target: str, seconds: int | None, runs: int | None, out: Path, strict: bool) -> None:
    import atheris

    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    with atheris.instrument_imports(include=["peer"]):  # coverage for the peer package only
        harness, seeds = _build_target(target, work)
    corpus = work / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)
    recorder = Recorder(out / f"{target}.json")

    def test_one_input(data: bytes) -> None:
        recorder.ran()
        if strict:
            harness(data)
            return
        try:
            harness(data)
        except Exception as exc:  # noqa: BLE001 - every unexpected exception is a finding
            recorder.crash(exc, data)

    args = [sys.argv[0], str(corpus), f"-artifact_prefix={out}/{target}-", "-timeout=20", "-rss_limit_mb=4096",
            "-max_len=8192", "-print_final_stats=1"]
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    if runs is not None:
        args.append(f"-runs={runs}")
    recorder.flush()
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


# ===================================================================== driver

def run_target(target: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", target, "--out", str(out)]
    if args.seconds is not None:
        cmd += ["--seconds", str(args.seconds)]
    if args.runs is not None:
        cmd += ["--runs", str(args.runs)]
    if args.strict:
        cmd.append("--strict")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    limit = None if args.seconds is None else args.seconds * 3 + 120
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit, check=False)
        stderr, code = proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stderr, code = (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or ""), -1
    (out / f"{target}.log").write_text(stderr)
    result: dict[str, Any] = {"target": target, "exit": code, "wall": round(time.monotonic() - started, 1)}
    data_file = out / f"{target}.json"
    if data_file.exists():
        result.update(json.loads(data_file.read_text()))
    done = re.findall(r"Done (\d+) runs in (\d+) second", stderr)
    if done:
        result["runs"], result["seconds"] = int(done[-1][0]), int(done[-1][1])
    cov = re.findall(r"cov: (\d+) ft: (\d+)", stderr)
    if cov:
        result["cov"], result["ft"] = int(cov[-1][0]), int(cov[-1][1])
    artifacts = sorted(p.name for p in out.glob(f"{target}-*"))
    if artifacts:
        result["artifacts"] = artifacts
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--seconds", type=int, help="wall-clock budget per target (libFuzzer -max_total_time)")
    limit.add_argument("--runs", type=int, help="number of inputs per target (libFuzzer -runs)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated, default: all")
    parser.add_argument("--out", type=Path, help="where to keep results and artifacts")
    parser.add_argument("--strict", action="store_true", help="stop a target at its first crash (libFuzzer style)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        for name, what in TARGETS.items():
            print(f"{name:14} {what}")
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install atheris (it is not a project dependency)", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="peer-atheris-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        worker(args.worker, args.seconds, args.runs, out, args.strict)
        return 0
    if args.seconds is None and args.runs is None:
        args.seconds = 60
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}; see --list")
    print(f"results in {out}")
    print(f"{'target':14} {'runs':>9} {'secs':>6} {'cov':>6}  crashes")
    results = []
    for target in targets:
        r = run_target(target, args, out)
        results.append(r)
        crashes = r.get("crashes", {})
        summary = "none" if not crashes else "; ".join(f"{sig} (>= {c['count']}x, smallest {len(c['input']) // 2} B)"
                                                       for sig, c in crashes.items())
        if r.get("artifacts"):
            summary += f"; artifacts: {', '.join(r['artifacts'])}"
        print(f"{target:14} {r.get('runs', '?'):>9} {r.get('seconds', r['wall']):>6} {r.get('cov', '?'):>6}  {summary}",
              flush=True)
    (out / "summary.json").write_text(json.dumps(results, indent=1))
    return 1 if any(r.get("crashes") or r.get("artifacts") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
