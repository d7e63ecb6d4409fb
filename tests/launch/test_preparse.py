"""A node forked with its argv parsed by the fork server behaves as ``peer run`` on that argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.cli.node_entry import node_command, run_argv
from peer.launch.preparse import invoke, parse
from peer.net.identity import Identity


def test_a_line_that_does_not_parse_is_left_to_the_node() -> None:
    command = node_command()
    assert parse(command, ["run", "--no-such-option"]) is None
    assert parse(command, ["run", "--help"]) is None
    assert parse(command, ["walk"]) is None


def test_a_parsed_line_fails_as_peer_run_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "a.key"
    Identity.from_seed(b"\x01" * 32).save(key)
    argv = ["run", "--port", "0", "--key", str(key), "--value", "1", "--neighbours", "not a neighbour spec",
            "--data-dir", str(tmp_path / "d"), "--no-tui"]
    command = node_command()
    parsed = parse(command, argv)
    assert parsed is not None  # the options parse: the spec is checked when the command runs
    code = invoke(parsed)
    via_parse = capsys.readouterr()
    expected = run_argv(node_command(), argv)
    direct = capsys.readouterr()
    assert code == expected != 0
    assert via_parse.err == direct.err and "neighbour" in via_parse.err.lower()
