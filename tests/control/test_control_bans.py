"""Operator control of bans (issue #16.2): ``peer status`` lists them, ``peer neighbour unban`` lifts one."""

from __future__ import annotations

from pathlib import Path

import trio
from typer.testing import CliRunner

from peer.cli.app import app
from peer.net.websocket import MemoryHub
from peer.node.control import socket_path
from tests.control.test_control_socket import ask
from tests.node.live import ident, make_nodes, running


async def test_a_ban_is_listed_with_its_reason_and_an_operator_lifts_it(tmp_path: Path) -> None:
    nodes = make_nodes([("a", "b")], {}, tmp_path, MemoryHub(), control=True)
    a = nodes["a"]
    b_key = ident("b").public_key.hex()
    async with running(nodes):
        path = socket_path(a.data_dir)
        assert (await ask(path, {"cmd": "status"}))["bans"] == []
        answer = await ask(path, {"cmd": "neighbour_unban", "name": "b"})
        assert answer == {"ok": False, "error": "b is not banned"}
        answer = await ask(path, {"cmd": "neighbour_unban", "name": "zed"})
        assert answer["ok"] is False and "no neighbour called 'zed'" in answer["error"]

        async with a._lock:
            a.manager.ban(b_key, "sent junk for the test")
        with trio.fail_after(10):
            while b_key in a.linked:
                await trio.sleep(0.02)
        status = await ask(path, {"cmd": "status"})
        assert [(x["name"], x["key"], x["reason"]) for x in status["bans"]] == [("b", b_key, "sent junk for the test")]
        await trio.sleep(0.5)  # b keeps redialling: refused while banned
        assert b_key not in a.linked

        # The human view says why and how to lift it.
        result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(app, ["status", "--data-dir", str(a.data_dir)]))
        assert result.exit_code == 0, result.output
        assert "banned: b" in result.output and "sent junk for the test" in result.output
        assert "peer neighbour unban b" in result.output

        result = await trio.to_thread.run_sync(
            lambda: CliRunner().invoke(app, ["neighbour", "unban", "b", "--data-dir", str(a.data_dir)]))
        assert result.exit_code == 0, result.output
        assert result.output.startswith("unbanned b")
        with trio.fail_after(10):
            while b_key not in a.linked:
                await trio.sleep(0.02)
        assert (await ask(path, {"cmd": "status"}))["bans"] == []
        assert a.internal_errors == 0
