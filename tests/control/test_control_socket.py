"""The control socket of an in-memory node: permissions, bad requests, vanishing clients, live changes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import trio

from peer.ledger.store import StoreError
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec
from peer.node.control import socket_path
from tests.node.live import M, ident, make_node, make_nodes, running, wait_everywhere


async def ask(path: Path, payload: Any, *, raw: bytes | None = None) -> dict[str, Any]:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(raw if raw is not None else json.dumps(payload).encode() + b"\n")
        buf = b""
        with trio.fail_after(30):
            while not buf.endswith(b"\n"):
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
    return json.loads(buf)


async def test_socket_is_private_and_bad_requests_get_one_clear_error(tmp_path: Path) -> None:
    nodes = make_nodes([("a", "b")], {"b": 2 * M}, tmp_path, MemoryHub(), control=True)
    async with running(nodes):
        path = socket_path(nodes["a"].data_dir)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert (await ask(path, {"cmd": "status"}))["name"] == "a"
        for payload, raw, expected in [
            ({"cmd": "fly"}, None, "unknown request 'fly'"),
            (None, b"not json\n", "not a JSON object"),
            (None, b"[1, 2]\n", "not a JSON object"),
            ({"cmd": "sell"}, None, "missing 'item'"),
            ({"cmd": "sell", "item": "a/b"}, None, "no '/'"),
            ({"cmd": "value_set", "item": "lamp", "amount": "-1"}, None, "amount: negative"),
            ({"cmd": "neighbour_add", "spec": "x=ws://h:1#zz"}, None, "not hex"),
            # the error names what the operator typed, not the --neighbours option
            ({"cmd": "neighbour_add", "spec": "garbage"}, None, "neighbour 'garbage': expected NAME=ws://"),
            ({"cmd": "neighbour_remove", "name": "nobody"}, None, "no neighbour called 'nobody'"),
            ({"cmd": "wait", "auction": "nope", "timeout": 0.1}, None, "no longer kept"),
        ]:
            answer = await ask(path, payload, raw=raw)
            assert answer["ok"] is False and expected in answer["error"], (payload, raw, answer)
        # A client that goes away mid-request, or never finishes its line, harms nothing.
        stream = await trio.open_unix_socket(str(path))
        await stream.send_all(b'{"cmd": "sell", "item": "lam')
        await stream.aclose()
        stream = await trio.open_unix_socket(str(path))
        await stream.send_all(b'{"cmd": "sell", "item": "lamp", "wait": true}\n')
        await stream.aclose()  # gone before the sale ends
        while not nodes["a"].outcomes:
            await trio.sleep(0.05)
        assert (await ask(path, {"cmd": "status"}))["recent"][0]["outcome"] == "completed"
        assert nodes["a"].internal_errors == 0


async def test_a_second_node_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    nodes = make_nodes([("a", "b")], {}, tmp_path, MemoryHub(), control=True)
    async with running(nodes):
        with pytest.raises(StoreError, match="in use by another process"):
            make_node("a", ["b"], 0, tmp_path, MemoryHub(), control=True)
        assert (await ask(socket_path(nodes["a"].data_dir), {"cmd": "status"}))["ok"]


async def test_values_file_reload_and_value_set(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    values = tmp_path / "b" / "values.toml"
    values.write_text('default = "1"\n[items]\nlamp = "4"\n"book-*" = 6\n')
    nodes = make_nodes([("a", "b")], {}, tmp_path, MemoryHub(), control=True)
    b = nodes["b"]
    assert (b.values.value_for("lamp"), b.values.value_for("book-red"), b.values.value_for("pen")) == (
        4 * M, 6 * M, 1 * M)
    async with running(nodes):
        path = socket_path(nodes["a"].data_dir)
        lamp = (await ask(path, {"cmd": "sell", "item": "lamp", "wait": True, "timeout": 30}))["outcome"]
        assert lamp["winner_name"] == "b" and lamp["price"] == "0"
        values.write_text('default = "2"\n[items]\nlamp = "7"\n')  # an edit: reloaded while running
        while b.values.value_for("lamp") != 7 * M:
            await trio.sleep(0.05)
        answer = await ask(socket_path(b.data_dir), {"cmd": "value_set", "item": "pen", "amount": "2.5"})
        assert answer["ok"] and b.values.value_for("pen") == 2_500_000
        assert 'pen" = "2.5"' in values.read_text()  # saved: a restart keeps it
        values.write_text("default = [")  # a bad edit changes nothing, and is reported
        await trio.sleep(1.5)
        assert b.values.value_for("pen") == 2_500_000
    assert any(e["kind"] == "error" and "values file not reloaded" in e["reason"]
               for e in map(json.loads, (tmp_path / "b.ndjson").read_text().splitlines()))


async def test_neighbours_added_and_removed_without_a_restart(tmp_path: Path) -> None:
    hub = MemoryHub()
    nodes = make_nodes([("a", "b")], {"b": 1 * M}, tmp_path, hub)
    c = make_node("c", ["a"], 9 * M, tmp_path, hub)  # c knows a; a learns of c at run time
    async with running(nodes) as nursery:
        await nursery.start(c.run)
        a = nodes["a"]
        async with a._lock:
            a.add_neighbour(NeighbourSpec(name="c", pubkey=ident("c").public_key, dial="c"))
        with trio.fail_after(20):
            await a.all_linked.wait()
            while ident("c").public_hex not in a.linked:
                await trio.sleep(0.05)
        async with a._lock:
            lamp = await a.sell("lamp")
        await wait_everywhere({**nodes, "c": c}, lamp)
        assert a.outcomes[-1]["winner"] == c.me  # c took part and won
        async with a._lock:
            a.remove_neighbour("c")
        async with a._lock:
            book = await a.sell("book")
        await wait_everywhere({**nodes, "c": c}, book)
        assert a.outcomes[-1]["winner"] == nodes["b"].me  # c is no longer asked
        assert ident("c").public_hex not in a.linked
