"""Benchmark: real node processes through ``tools/launch --headless --json``.

For each size it prints: time until every node is up and linked, the auction
from announcement to the last ledger entry replicated on every node, messages
sent, the per-message cost against the floor (auction time divided by
messages x one Ed25519 sign + verify, measured here in the same run), and the
memory per node process (proportional set size, so shared pages count once),
the CPU that the whole launch used (launcher, fork server and every node, from
the kernel's accounting of reaped children) per node, and the part of it spent
until every node was linked (the launcher reads /proc then), and the load average
before and after (this machine is shared: a figure means little without it).

    python bench/launch_bench.py [100 300 1000 ...] [--spawn fork|exec]
"""

from __future__ import annotations

import json
import os
import resource
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


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(n: int, spawn: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"ba-{n}.toml"
        path.write_text(SCENARIO.format(n=n))
        env = {**os.environ, "PEER_PYTHON": sys.executable}
        before, cpu0 = load(), children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(
            [str(ROOT / "tools" / "launch"), str(path), "--headless", "--json", "--workdir", str(Path(tmp) / "w"),
             "--link-timeout", "300", "--timeout", "300", "--spawn", spawn],
            capture_output=True, text=True, env=env, check=False,
        )
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu0
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
        f"check {'ok' if result['check']['ok'] else 'FAILED'}  hops {len(result['hops'])}  wall {wall:6.1f} s  "
        f"cpu/node {cpu / n * 1000:4.0f} ms (to link {result.get('cpu_ms_per_node_linked', float('nan')):4.0f} ms)  "
        f"load {before} -> {load()}"
    )


def main() -> int:
    args = sys.argv[1:]
    spawn = "fork"
    if "--spawn" in args:
        i = args.index("--spawn")
        spawn = args[i + 1]
        del args[i:i + 2]
    sizes = [int(x) for x in args] or [100, 300, 1000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; Ed25519 sign+verify "
          f"{sign_verify_seconds() * 1e6:.0f} us; spawn {spawn}")
    for n in sizes:
        run(n, spawn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
