"""Benchmark: real node processes through ``tools/launch --headless --json``.

For each size it prints: time until every node is up and linked, the auction
from announcement to the last ledger entry replicated on every node, messages
sent, the per-message cost against the floor (auction time divided by
messages x one Ed25519 sign + verify, measured here in the same run), and the
memory per node process (proportional set size, so shared pages count once).

    python bench/launch_bench.py [100 500 ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
name = "ba-{n}"
seller = "max_degree"
seed = 3
[graph]
generator = "barabasi_albert"
n = {n}
m = 2
[value_model]
kind = "uniform"
low = 0
high = 1000
"""


def sign_verify_seconds(rounds: int = 2000) -> float:
    key = SigningKey(b"\x01" * 32)
    verify_key = key.verify_key
    message = b"x" * 200
    start = time.perf_counter()
    for _ in range(rounds):
        signed = key.sign(message)
        verify_key.verify(signed)
    return (time.perf_counter() - start) / rounds


def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"ba-{n}.toml"
        path.write_text(SCENARIO.format(n=n))
        env = {**os.environ, "PEER_PYTHON": sys.executable}
        start = time.perf_counter()
        proc = subprocess.run(
            [str(ROOT / "tools" / "launch"), str(path), "--headless", "--json", "--workdir", str(Path(tmp) / "w"),
             "--link-timeout", "300", "--timeout", "300"],
            capture_output=True, text=True, env=env, check=False,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"n={n}: launch failed ({proc.returncode}): {proc.stderr[-800:]}")
            return
        result = json.loads(proc.stdout)
    timing = result["timing"]
    messages = sum(result["messages"].values())
    auction = timing["done"] - timing["announce"]
    floor = messages * sign_verify_seconds()
    print(
        f"n={n:>4}  up {timing['up']:6.2f} s  linked {timing['linked']:6.2f} s  "
        f"auction {auction:6.2f} s (announce -> last ledger copy)  messages {messages}  "
        f"cost/floor {auction / floor:6.1f}  memory/node {result.get('memory_kib_per_node', 0) / 1024:5.1f} MiB  "
        f"check {'ok' if result['check']['ok'] else 'FAILED'}  hops {len(result['hops'])}  wall {wall:6.1f} s"
    )


def main() -> int:
    sizes = [int(x) for x in sys.argv[1:]] or [100, 500]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; Ed25519 sign+verify "
          f"{sign_verify_seconds() * 1e6:.0f} us")
    for n in sizes:
        run(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
