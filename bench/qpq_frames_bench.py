"""Benchmark: the frames QPQ really sends on real node processes, beside Prop. 11's formula.

For each (n, k) it writes a scenario (Watts-Strogatz, degree 4, p = 0.1, all
honest, the KS test off, k clusters of consecutive nodes or ``--clusters auto``;
k = 1 is plain QPQ),
launches it with ``tools/launch`` (one ``peer run`` process per node on
127.0.0.1) for a few rounds, and reads every node's event log: each node
counts the QPQ gossip frames it hands its links (:mod:`peer.qpq.frames`), its
own messages and its relays of others' apart, and its links' total frames out.

Per round, over all nodes:

* ``Prop.11``: the paper's values V (n + n^2, or n + sum n_c^2 + k + nk) and
  messages (2n, or 3n + k) through a central relay;
* ``logical``: one frame per (message, member): what ``peer experiment
  qpq-traffic`` counts (:func:`peer.qpq.traffic.direct_frames`);
* ``own`` and ``relay``: measured QPQ frames (the node's own messages to its
  neighbours; other origins' messages it forwards);
* ``flood bound``: the most a flood can cost given who published what: for a
  message of origin o relayed by the set R (its cluster when the plan scopes
  cluster messages, else every node), deg(o) + sum over v in R - {o} of
  (deg(v) - 1).  A relay that first hears a message from a node other than
  the origin, while being the origin's neighbour, saves one frame;
* ``other``: the links' remaining frames out (heartbeats; no ledger traffic:
  each node records the allocation it computes itself).

    python bench/qpq_frames_bench.py [--sizes 16:1,16:4,32:1,32:6,64:1,64:8] [--rounds 4] [--phase 2.0]

Frames are counted per round by the round number in each payload (logged
one round behind), over rounds 0 .. rounds - 2; the kickoff is left out.
The check column says whether every node's
allocations equalled the simulator's; under load a late message changes an
allocation (its member forfeits) but not what a flood costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from peer.qpq.traffic import direct_frames, equal_sizes, mqpq_values  # noqa: E402

SCENARIO = """name = "frames-{n}-{k}"
seed = {seed}
description = "frame-count bench: {n} honest players, k = {k}"

[graph]
generator = "watts_strogatz"
n = {n}
k = 4
p = 0.1

[qpq]
rounds = {rounds}
test = "off"
{clusters}"""


def clusters_toml(n: int, k: int, mode: str) -> str:
    """``auto``: Louvain rebalanced to k (may split a cluster's subgraph); ``blocks``: k runs of
    consecutive nodes, which the ring lattice keeps connected unless rewiring cuts one (as
    scenarios/qpq-64.toml)."""
    if mode == "auto" or k == 1:
        return f'clusters = "auto"\nk = {k}\n'
    lines, start = ["[qpq.clusters]"], 0
    for index, size in enumerate(equal_sizes(n, k)):
        lines += [f'"{v}" = "c{index}"' for v in range(start, start + size)]
        start += size
    return "\n".join(lines) + "\n"


def read_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a torn last line
    return events


def load(path: Path, rounds: int, phase: float):  # type: ignore[no-untyped-def]
    from peer.node.qpq_shell import QpqPlan, setup_for

    return setup_for(QpqPlan(scenario=path, me="?", keys={}, rounds=rounds, phase=phase, coordinator="?"))


def pick_seed(n: int, ks: list[int], mode: str, tmp: Path) -> int:
    """The first graph seed from 5 on whose clusters are connected for every k of this n.

    Only then does the launcher scope cluster messages to their cluster (a message
    relayed by its members alone must still reach them all); one graph per n, so
    plain QPQ and multilevel run on the same links.
    """
    for seed in range(5, 200):
        ok = True
        for k in ks:
            path = tmp / f"probe-{n}-{k}-{seed}.toml"
            path.write_text(SCENARIO.format(n=n, k=k, rounds=2, seed=seed, clusters=clusters_toml(n, k, mode)),
                            encoding="utf-8")
            setup = load(path, 2, 1.0)
            ok = ok and all(nx.is_connected(setup.graph.subgraph(m)) for m in setup.membership.clusters.values())
        if ok:
            return seed
    raise SystemExit(f"no seed below 200 gives n={n} connected clusters for k in {ks}")


def run_one(n: int, k: int, rounds: int, phase: float, mode: str, seed: int) -> dict | None:
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = root / f"frames-{n}-{k}.toml"
        scenario.write_text(SCENARIO.format(n=n, k=k, rounds=rounds, seed=seed, clusters=clusters_toml(n, k, mode)),
                            encoding="utf-8")
        work = root / "work"
        proc = subprocess.run(
            [str(ROOT / "tools" / "launch"), str(scenario), "--headless", "--json", "--rounds", str(rounds),
             "--phase", str(phase), "--workdir", str(work)],
            capture_output=True, text=True, env=env, check=False, timeout=900,
        )
        if not proc.stdout.strip():
            print(f"n={n} k={k}: launch failed: {proc.stderr[-600:]}")
            return None
        report = json.loads(proc.stdout)
        setup = load(scenario, rounds, phase)
        graph: nx.Graph = setup.graph
        cluster_of = setup.membership.cluster_of
        members = {c: set(ms) for c, ms in setup.membership.clusters.items()}
        scoped = json.loads(next((work / "plans").glob("*.json")).read_text()).get("scoped", False)
        sizes = [len(ms) for ms in members.values()]
        # Per round: each node logs round r - 1's frames (counted by the round in the payload, so a
        # late relay still counts for its round) with its qpq_round event for round r.  Rounds
        # 0 .. rounds - 2 are measured; the kickoff flood has no round and stays out.
        measured: Counter[str] = Counter()
        other_frames, spans = 0, []
        cluster_bound, winner_bound, winner_publishes = 0, 0, 0
        for name in graph.nodes:
            events = read_events(work / "logs" / f"{name}.ndjson")
            marks = [e for e in events if e.get("kind") == "qpq_round" and "link_frames_out" in e]
            logged = [e for e in marks if "round_frames" in e]
            spans.append(len(logged))
            for e in logged:
                measured.update(e["round_frames"])
            if len(marks) >= 2:  # the links' other frames: heartbeats (time-based, not per message)
                first, last = marks[0], marks[-1]
                qpq = sum(last["frames"].values()) - sum(first["frames"].values())
                other_frames += (last["link_frames_out"] - first["link_frames_out"] - qpq) / max(
                    last["round"] - first["round"], 1)
            # The flood bound: every node publishes a cluster commit and reveal each round; the
            # cluster winners' top-level publishes vary, so they are averaged over the whole run.
            cluster = members[cluster_of[name]] if scoped else set(graph.nodes)
            cluster_bound += 2 * (graph.degree(name) + sum(graph.degree(v) - 1 for v in cluster if v != name))
            for e in events:
                if e.get("kind") == "send" and e.get("type") in ("Commit", "Reveal") and e.get("peer") == "all":
                    winner_publishes += 1
                    winner_bound += graph.degree(name) + sum(graph.degree(v) - 1 for v in graph if v != name)
        span = max(spans)  # rounds logged (a node that stalled logs fewer: its frames are still in)
        if span == 0:
            print(f"n={n} k={k}: no round logged")
            return None
        check = report.get("check", {})
        own = sum(v for key, v in measured.items() if key.startswith("own/"))
        relay = sum(v for key, v in measured.items() if key.startswith("relay/"))
        return {
            "n": n, "k": len(sizes), "seed": seed, "edges": graph.number_of_edges(), "scoped": scoped, "rounds": span,
            "V": mqpq_values(sizes), "msgs": 2 * n if len(sizes) == 1 else 3 * n + len(sizes),
            "logical": direct_frames(sizes), "own": own / span, "relay": relay / span,
            "bound": cluster_bound + winner_bound / rounds, "winner_publishes": winner_publishes / rounds,
            "other": other_frames,
            "by_kind": {key: round(v / span, 1) for key, v in sorted(measured.items()) if v},
            "ok": bool(check.get("ok")) and bool(check.get("matches_simulator")),
            "flags": report.get("flags", {}), "round_s": report.get("timing", {}).get("round_seconds_mean"),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16:1,16:4,32:1,32:6,64:1,64:8", help="n:k pairs, comma-separated")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--phase", type=float, default=2.0)
    parser.add_argument("--clusters", choices=("blocks", "auto"), default="blocks",
                        help="k > 1: consecutive blocks (default) or the scenario loader's auto clustering")
    parser.add_argument("--json", action="store_true", help="also print each row as JSON")
    args = parser.parse_args()
    pairs = [tuple(int(x) for x in item.split(":")) for item in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.0f}; Watts-Strogatz "
          f"degree 4, p 0.1; clusters {args.clusters}; {args.rounds} rounds, phase {args.phase} s; "
          f"frames per round, all nodes")
    print("    n   k  |E| scoped | Prop.11 V  msgs | logical |    own   relay   total | flood bound | "
          "total/logical total/V |  other | check")
    seeds: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({n for n, _ in pairs}):
            ks = [k for m, k in pairs if m == n and k > 1]
            seeds[n] = pick_seed(n, ks, args.clusters, Path(tmp)) if args.clusters == "blocks" and ks else 5
    print("graph seeds: " + ", ".join(f"n={n}: {s}" for n, s in seeds.items()))
    for n, k in pairs:
        row = run_one(n, k, args.rounds, args.phase, args.clusters, seeds[n])
        if row is None:
            continue
        total = row["own"] + row["relay"]
        print(f"{row['n']:>5} {row['k']:>3} {row['edges']:>4} {'yes' if row['scoped'] else 'no':>6} | "
              f"{row['V']:>9} {row['msgs']:>5} | {row['logical']:>7} | {row['own']:>6.0f} {row['relay']:>7.0f} "
              f"{total:>7.0f} | {row['bound']:>11.0f} | {total / row['logical']:>13.2f} {total / row['V']:>7.2f} | "
              f"{row['other']:>6.0f} | {'= simulator' if row['ok'] else 'differs'} {row['flags'] or ''}")
        if args.json:
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
