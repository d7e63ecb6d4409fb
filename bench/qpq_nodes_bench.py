"""Benchmark: QPQ rounds on real node processes (``tools/launch`` on a QPQ scenario).

For each phase length it launches ``scenarios/qpq-64.toml`` (64 nodes, 8
connected clusters) for a few rounds and prints how long a round takes from
its start to the moment the last node recorded its allocation, whether every
node's allocation file verified and matched the simulator, and the flags.

    python bench/qpq_nodes_bench.py [PHASE ...]      # default: 0.4 0.5 0.7 1.0
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    phases = [float(x) for x in sys.argv[1:]] or [0.4, 0.5, 0.7, 1.0]
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; scenarios/qpq-64.toml, 5 rounds")
    for phase in phases:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [str(ROOT / "tools" / "launch"), str(ROOT / "scenarios" / "qpq-64.toml"), "--headless", "--json",
                 "--rounds", "5", "--phase", str(phase), "--workdir", tmp],
                capture_output=True, text=True, env=env, check=False,
            )
        if not proc.stdout.strip():
            print(f"phase {phase}: launch failed: {proc.stderr[-400:]}")
            continue
        run = json.loads(proc.stdout)
        t, c = run["timing"], run["check"]
        print(
            f"phase {phase:4.2f} s  linked {t.get('linked', 0):5.2f} s  round (start -> last allocation) "
            f"mean {t.get('round_seconds_mean', 0):5.2f} s max {t.get('round_seconds_max', 0):5.2f} s  "
            f"copies {c['copies_verified']}/{c['copies']} identical {c['identical']} "
            f"= simulator {c['matches_simulator']}  flags {run.get('flags', {})}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
