"""``peer launch SCENARIO`` for a Mirage scenario with a ``[mirage.live]`` table: the market on real processes.

Forks one ``peer mirage provider`` per provider and one ``peer mirage user``
per user (the same commands an operator runs by hand), on 127.0.0.1, port 0,
each with its own key; waits until every process is linked, writes the start
time, lets the hourly rounds run (one market hour = ``hour_seconds``), then
stops every child and checks that every provider's copy of the records (bids,
allocations, payments, balances) verifies on its own and that all copies are
identical.  It prints each round's clearing and the final balances
(``--json``: one JSON object).  Every wait is bounded; every child is stopped on
exit, on error and on Ctrl-C, and a temporary work directory never keeps the keys.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from peer.errors import ScenarioError
from peer.launch.linger import stdout_closed
from peer.launch.workdir import run_in_workdir
from peer.launch.plan import NodePlan
from peer.money import format_money


class MirageLaunchError(Exception):
    pass


def is_mirage_live(path: Path) -> bool:
    """A scenario with a ``[mirage.live]`` table (unreadable files are left to the other loaders to report)."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("mirage"), dict) and "live" in data["mirage"]


def parse_lies(behaviours: list[str], providers: list[str]) -> dict[str, str]:
    """``provider-1=wrong-result@3`` or ``...@3,5`` -> {provider: "3,5"}: that provider reports wrong task results."""
    out = {}
    for spec in behaviours:
        name, _, what = spec.partition("=")
        kind, _, rounds = what.partition("@")
        if name not in providers or kind != "wrong-result" or not rounds:
            raise MirageLaunchError(f"--behaviour {spec!r}: Mirage runs take PROVIDER=wrong-result@ROUND[,ROUND] "
                                    f"with PROVIDER one of {', '.join(providers)}")
        if not all(r.strip().isdigit() for r in rounds.split(",")):
            raise MirageLaunchError(f"--behaviour {spec!r}: rounds are whole numbers")
        out[name] = rounds
    return out


def plan_mirage(scenario_path: Path, root: Path, *, seed: int | None, behaviours: list[str]) -> tuple[Any, list[NodePlan]]:
    from peer.mirage.live_config import load_live, make_cluster

    scenario, params = load_live(scenario_path)
    live, providers, users = make_cluster(scenario, params, str(scenario_path.resolve()), seed=seed)
    lies = parse_lies(behaviours, list(providers))
    for sub in ("keys", "addr", "records", "users", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cluster_path = root / "cluster.json"
    live.dump(cluster_path)
    plans = []
    for name, ident in [*providers.items(), *users.items()]:
        key_path = root / "keys" / f"{name}.key"
        if not key_path.exists():
            ident.save(key_path)
        if name in providers:
            argv = ["mirage", "provider", "--key", str(key_path), "--cluster", str(cluster_path),
                    "--dir", str(root / "addr"), "--out", str(root / "records" / name)]
            if name in lies:
                argv += ["--lie", lies[name]]
        else:
            argv = ["mirage", "user", "--key", str(key_path), "--cluster", str(cluster_path),
                    "--dir", str(root / "addr"), "--out", str(root / "users" / f"{name}.json")]
        out = root / "logs" / f"{name}.out"
        plans.append(NodePlan(name=name, identity=ident, port=0, key_path=key_path, data_dir=root / "records" / name,
                              log_path=out, out_path=out, argv=argv))
    return live, plans


def _wait(children: Any, plans: list[NodePlan], root: Path, live: Any, *, link_timeout: float, timeout: float,
          progress: Console | None) -> dict[str, float]:
    from peer.mirage.live_shell import write_start

    t0 = time.monotonic()
    timing: dict[str, float] = {}
    ready = {p.name: root / "addr" / f"{p.identity.public_hex}.ready" for p in plans}
    while not all(path.exists() for path in ready.values()):
        dead = children.dead()
        if dead:
            name, code = next(iter(dead.items()))
            raise MirageLaunchError(f"{name} exited with code {code} before the start (see {root / 'logs' / name}.out)")
        if time.monotonic() - t0 > link_timeout:
            late = [n for n, path in ready.items() if not path.exists()][:8]
            raise MirageLaunchError(f"not every process linked within {link_timeout:g} s: {', '.join(late)}")
        time.sleep(0.05)
    timing["linked"] = time.monotonic() - t0
    start_at = time.time() + 0.3
    write_start(root / "addr", start_at)
    end = start_at + live.rounds * live.hour_seconds + timeout
    first = next(p for p in plans if p.argv[1] == "provider")
    shown = 0
    while len(children.dead()) < len(plans):
        bad = {n: c for n, c in children.dead().items() if c != 0}
        if bad:
            name, code = next(iter(bad.items()))
            raise MirageLaunchError(f"{name} exited with code {code} (see {root / 'logs' / name}.out)")
        if time.time() > end:
            raise MirageLaunchError(f"the run did not finish within {timeout:g} s after its last round")
        if progress is not None:  # the first provider's per-round lines, as they come
            try:
                lines = [ln for ln in first.out_path.read_text().splitlines() if ln.startswith("round ")]
            except OSError:
                lines = []
            for line in lines[shown:]:
                progress.print(f"{first.name}: {line}", markup=False, highlight=False)
            shown = len(lines)
        time.sleep(0.05)
    bad = {n: c for n, c in children.dead().items() if c != 0}
    if bad:
        name, code = next(iter(bad.items()))
        raise MirageLaunchError(f"{name} exited with code {code} (see {root / 'logs' / name}.out)")
    timing["done"] = time.monotonic() - t0
    timing["rounds_s"] = time.time() - start_at
    return timing


def launch_mirage(scenario: Path, *, headless: bool, json_out: bool, workdir: Path | None, seed: int | None,
                  link_timeout: float, timeout: float, behaviours: list[str]) -> int:
    err = Console(stderr=True, soft_wrap=True)
    return run_in_workdir("peer-launch-mirage-", workdir, err,
                          lambda root: _launch(scenario, root, err, json_out=json_out, seed=seed, link_timeout=link_timeout,
                                        timeout=timeout, behaviours=behaviours, quiet=headless or json_out))


def _launch(scenario: Path, root: Path, err: Console, *, json_out: bool, seed: int | None, link_timeout: float,
            timeout: float, behaviours: list[str], quiet: bool) -> int:
    from peer.mirage.live_check import check_copies

    console = Console(stderr=json_out)
    try:
        live, plans = plan_mirage(scenario, root, seed=seed, behaviours=behaviours)
    except (ScenarioError, MirageLaunchError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    from peer.launch.processes import Children

    # exec, not the fork server: it hosts `peer run` nodes only, and these are
    # `peer mirage provider|user` processes (a handful, so start-up cost is small).
    children = Children("exec")
    code = 0
    timing: dict[str, float] = {}
    try:
        children.start(plans)  # fork before anything starts a thread
        timing = _wait(children, plans, root, live, link_timeout=link_timeout, timeout=timeout,
                       progress=None if quiet else console)
    except MirageLaunchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = 1
    except KeyboardInterrupt:
        err.print("interrupted: stopping every process", markup=False)
        code = 130
    finally:
        children.stop()
    if code:
        return code
    # The check is about honest providers' copies; a deviant's own copy is reported beside it.
    deviants = {p.name for p in plans if "--lie" in p.argv}
    report = check_copies(live, [root / "records" / p.name for p in plans
                                 if p.argv[1] == "provider" and p.name not in deviants])
    if deviants:
        report["deviants"] = {n: check_copies(live, [root / "records" / n])["problems"] for n in sorted(deviants)}
    report["users"] = [_read_user(root / "users" / f"{p.name}.json") for p in plans if p.argv[1] == "user"]
    report["timing"] = {k: round(v, 3) for k, v in timing.items()}
    report["mechanism"], report["providers"], report["k"] = live.mechanism, len(live.providers), live.k
    report["hour_seconds"] = live.hour_seconds
    try:
        if json_out:
            sys.stdout.write(json.dumps(report) + "\n")
            sys.stdout.flush()
        else:
            _print(console, report)
            console.file.flush()
    except (OSError, SystemExit):
        stdout_closed()
    return 0 if report["ok"] else 1


def _read_user(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"name": path.stem, "missing": True}


def _print(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"Mirage {report['mechanism']} on {report['providers']} providers (k = {report['k']}), "
                        f"one hour = {report['hour_seconds']:g} s")
    for col in ("round", "hour", "output", "bids", "clearing: user start+hours x nodes @ price"):
        table.add_column(col)
    for r in report["rounds"]:
        if r["output"] == "outcome":
            won = "; ".join(f"{a['user']} {a['start']}+{a['hours']}h x{a['nodes']} @{format_money(a['price'])}"
                            for a in r["allocations"]) or "-"
            table.add_row(str(r["round"]), str(r["hour"]), f"decided ({r['algorithm']})", str(r["bids"]), won)
        else:
            table.add_row(str(r["round"]), str(r["hour"]), "⊥", "", str(r.get("reason") or ""))
    console.print(table)
    users = {u.get("name"): u for u in report.get("users", [])}
    bal = Table(title="final balances (every provider's copy)")
    for col in ("user", "strategy", "balance", "blocks won", "paid", "true value received"):
        bal.add_column(col)
    for name, balance in sorted(report["balances"].items()):
        u = users.get(name, {})
        bal.add_row(name, str(u.get("strategy", "?")), format_money(balance), str(len(u.get("won", []))),
                    format_money(u.get("paid", 0)), format_money(u.get("realised", 0)))
    console.print(bal)
    mark = "ok" if report["ok"] else "FAILED"
    for name, problems in report.get("deviants", {}).items():
        console.print(f"deviant {name}'s own copy: {'; '.join(problems) or 'verifies'}", markup=False, highlight=False)
    console.print(f"check {mark}: {report['verified']}/{report['copies']} honest provider copies verify, "
                  f"identical: {report['identical']}", highlight=False)
    for problem in report["problems"]:
        console.print(f"  - {problem}", markup=False, highlight=False)
    console.print("timing (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report["timing"].items()), highlight=False)
