"""The wiring of the command line: ``peer ledger show``'s balances, and ``peer run --values`` in a node."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from peer.ledger.cli import ledger_app
from peer.ledger.store import LedgerStore
from peer.net.identity import short_name
from tests.ledger._helpers import NAMES, PK, make_chain

M = 10**6
CHAIN = make_chain("a1", hops=3, prices=[1_500_000, 2_000_000, 2_250_000])  # 0 -> 1 -> 2 -> 3
OTHER = make_chain("b2", hops=1, seller=5, prices=[700_000])  # 5 -> 6
runner = CliRunner()


def _ledger(tmp_path: Path) -> Path:
    with LedgerStore.open_data_dir(tmp_path) as store:
        for entry in (*CHAIN.entries, *OTHER.entries):
            store.append(entry)
        store.remember_names({k: v for k, v in NAMES.items() if v != "node6"})
    return tmp_path


def test_ledger_show_json_gives_every_nodes_balance_summing_to_zero(tmp_path: Path) -> None:
    result = runner.invoke(ledger_app, ["show", str(_ledger(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output, parse_float=Decimal)["balances"]
    got = {row["key"]: row["balance"] for row in rows}
    assert got == {PK[0]: Decimal("1.5"), PK[1]: Decimal("0.5"), PK[2]: Decimal("0.25"), PK[3]: Decimal("-2.25"),
                   PK[5]: Decimal("0.7"), PK[6]: Decimal("-0.7")}
    assert sum(got.values()) == 0
    names = {row["key"]: row["name"] for row in rows}
    assert names[PK[1]] == "node1" and names[PK[6]] == short_name(bytes.fromhex(PK[6]))  # named where known


def test_ledger_show_prints_a_balance_table(tmp_path: Path) -> None:
    result = runner.invoke(ledger_app, ["show", str(_ledger(tmp_path))], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table = result.output.split("balances over every auction")[1]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    rows = {name: amount for name, _key, amount in cells}
    assert rows["node0"] == "1.5" and rows["node3"] == "-2.25" and rows["node5"] == "0.7" and len(rows) == 6
    assert sum(Decimal(v) for v in rows.values()) == 0


def test_an_empty_ledger_has_no_balances(tmp_path: Path) -> None:
    LedgerStore.open_data_dir(tmp_path).close()
    result = runner.invoke(ledger_app, ["show", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["balances"] == []


def _config_from_cli(tmp_path: Path, monkeypatch, name: str, seed: bytes, *args: str):  # type: ignore[no-untyped-def]
    """The NodeConfig ``peer run ARGS`` would start a node with (the node itself is not started here)."""
    from peer.cli.app import app
    from peer.net.identity import Identity

    seen = {}

    def fake_run(config, identity, *, tui, outcome=None):  # type: ignore[no-untyped-def]
        seen["config"], seen["identity"] = config, identity
        return outcome

    monkeypatch.setattr("peer.node.runner.run_node_blocking", fake_run)
    key = tmp_path / f"{name}.key"
    Identity.from_seed(seed).save(key)
    result = runner.invoke(app, ["run", "--port", "0", "--key", str(key), "--no-tui", "--name", name,
                                 "--data-dir", str(tmp_path / name), "--log-json", str(tmp_path / f"{name}.ndjson"),
                                 "--gather-window", "0.05", "--reply-timeout", "10", "--context-timeout", "5",
                                 *args])
    assert result.exit_code == 0, result.output
    return seen["config"], seen["identity"]


async def test_values_file_and_limits_from_the_command_line_drive_a_real_node(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # s sells "lamp" to a and b.  a runs with --value 0 but a values file that prices lamp-like
    # items at 7; b runs with --value 3.  a must win at 3: the file, not --value, is a's value.
    import dataclasses

    import trio

    from peer.net.identity import Identity
    from peer.net.websocket import MemoryHub
    from peer.node.config import NeighbourSpec
    from peer.node.node import Node
    from tests.node.harness import FAST_LINKS

    seeds = {"s": b"s" * 32, "a": b"a" * 32, "b": b"b" * 32}
    pubs = {n: Identity.from_seed(s).public_key for n, s in seeds.items()}
    values = tmp_path / "a-values.toml"
    values.write_text('default = "1"\n[items]\n"lamp*" = "7"\n', encoding="utf-8")
    argv = {"s": ["--sell", "lamp", "--max-auctions", "9"],
            "a": ["--value", "0", "--values", str(values), "--max-per-seller", "2", "--max-per-neighbour", "3"],
            "b": ["--value", "3"]}
    links = {"s": ["a", "b"], "a": ["s"], "b": ["s"]}
    hub = MemoryHub()
    nodes = {}
    for name in ("s", "a", "b"):
        config, identity = _config_from_cli(tmp_path, monkeypatch, name, seeds[name], *argv[name])
        config = dataclasses.replace(config, neighbours=[NeighbourSpec(name=n, pubkey=pubs[n], dial=n)
                                                         for n in links[name]], control=False)
        nodes[name] = Node(config, identity, transport=hub.transport(name), link_config=FAST_LINKS)
    assert (nodes["a"].instances.limits.per_owner, nodes["a"].instances.limits.per_neighbour) == (2, 3)
    assert nodes["s"].instances.limits.total == 9
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            for node in nodes.values():
                await node.done.wait()
            nursery.cancel_scope.cancel()
    assert nodes["a"].machine.value == 7 * M and nodes["b"].machine.value == 3 * M
    (auction,) = [c.auction for c in nodes["s"].store.chains()]
    chain = nodes["s"].store.chain(auction)
    assert chain is not None
    assert [(h.body.buyer, h.body.price) for h in chain.hops] == [(nodes["a"].me, 3 * M)]
