"""``peer run`` and ``peer key`` as an operator meets them: real processes, signals, exit codes.

Each test starts at most one or two ``peer run`` processes on 127.0.0.1 with
port 0 and bounds every wait.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.net.identity import Identity
from peer.node.config import parse_neighbours

PEER = [sys.executable, "-m", "peer"]


def keyfile(tmp_path: Path, name: str = "a", seed: bytes = b"a" * 32) -> Path:
    path = tmp_path / f"{name}.key"
    Identity.from_seed(seed).save(path)
    return path


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*PEER, "run", "--no-tui", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30.0) -> list[str]:
    """Lines of stdout up to and including the first one containing ``marker``."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:  # a thread: a pipe read cannot time out by itself
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if marker in line:
                found.set()
        found.set()  # end of output: stop waiting

    threading.Thread(target=pump, daemon=True).start()
    found.wait(timeout)
    if not any(marker in line for line in lines):
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"no {marker!r} within {timeout} s; got {lines!r}")
    return list(lines)


def finish(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[int, str]:
    """Wait for the exit; return the code and stderr."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise
    assert proc.stderr is not None
    err = proc.stderr.read()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return proc.returncode, err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_quietly_with_130_and_a_closed_ledger(tmp_path: Path) -> None:
    # Defect 1: trio wrapped the KeyboardInterrupt in an exception group; the CLI printed
    # a 55-line traceback and exited 1.
    key = keyfile(tmp_path)
    proc = start(tmp_path, "--port", "0", "--key", str(key), "--sell", "lamp", "--data-dir", str(tmp_path / "d"))
    read_until(proc, "done:")  # a lone seller settles at once, then keeps serving
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.splitlines()) <= 1, err
    verify = subprocess.run([*PEER, "ledger", "verify", str(tmp_path / "d")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_with_143(tmp_path: Path) -> None:
    proc = start(tmp_path, "--port", "0", "--key", str(keyfile(tmp_path)), "--data-dir", str(tmp_path / "d"))
    read_until(proc, "listening on")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 143 and "Traceback" not in err, err


def test_port_in_use_is_one_error_line_naming_the_port(tmp_path: Path) -> None:
    # Defect 2: an 88-line traceback ending in OSError: [Errno 98].
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = start(tmp_path, "--port", str(port), "--key", str(keyfile(tmp_path)), "--data-dir", str(tmp_path / "d"))
        code, err = finish(proc)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(port) in lines[0] and "in use" in lines[0]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = start(tmp_path, "--port", str(port), "--key", str(keyfile(tmp_path)), "--data-dir",
                     str(tmp_path / "d"), "--debug")
        code, err = finish(proc)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_unusable_data_dir_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = start(tmp_path, "--port", "0", "--key", str(keyfile(tmp_path)), "--data-dir", str(blocker / "d"))
    code, err = finish(proc)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(blocker) in err, err


def test_port_zero_prints_the_chosen_port_key_and_neighbour_string(tmp_path: Path) -> None:
    key = keyfile(tmp_path)
    proc = start(tmp_path, "--port", "0", "--key", str(key), "--name", "alice", "--data-dir", str(tmp_path / "d"))
    lines = read_until(proc, "neighbours link here with:")
    proc.send_signal(signal.SIGTERM)
    finish(proc)
    spec_text = lines[-1].split("with: ", 1)[1]
    (spec,) = parse_neighbours(spec_text)
    identity = Identity.load(key)
    assert spec.name == "alice" and spec.pubkey.hex() == identity.public_hex
    assert spec.host == "127.0.0.1" and spec.port not in (None, 0)
    assert any(f"ws://127.0.0.1:{spec.port}" in line for line in lines)
    assert any(identity.public_hex in line and line.startswith("public key") for line in lines)


def test_key_show_prints_the_public_key_and_short_name(tmp_path: Path) -> None:
    key = keyfile(tmp_path)
    identity = Identity.load(key)
    result = CliRunner().invoke(app, ["key", "show", str(key), "--port", "9001", "--name", "a"])
    assert result.exit_code == 0, result.output
    assert identity.public_hex in result.output and identity.name in result.output
    assert f"a=ws://127.0.0.1:9001#{identity.public_hex}" in result.output
    secret = key.read_text().strip()
    assert secret not in result.output
    missing = CliRunner().invoke(app, ["key", "show", str(tmp_path / "nope.key")])
    assert missing.exit_code == 2 and "nope.key" in missing.output


def _captured_config(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(config: Any, identity: Any, *, tui: bool, outcome: Any = None) -> Any:
        seen["config"] = config
        return outcome

    monkeypatch.setattr("peer.node.runner.run_node_blocking", fake_run)
    return seen


def test_neighbours_given_twice_keeps_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Defect 7: a second --neighbours silently replaced the first.
    seen = _captured_config(monkeypatch)
    b, c = Identity.from_seed(b"b" * 32).public_hex, Identity.from_seed(b"c" * 32).public_hex
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui",
                                      "--neighbours", f"b=ws://127.0.0.1:9002#{b}",
                                      "--neighbours", f"c=ws://127.0.0.1:9003#{c}"])
    assert result.exit_code == 0, result.output
    assert [n.name for n in seen["config"].neighbours] == ["b", "c"]


def test_same_neighbour_in_two_options_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured_config(monkeypatch)
    b = Identity.from_seed(b"b" * 32).public_hex
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui",
                                      "--neighbours", f"b=ws://127.0.0.1:9002#{b}",
                                      "--neighbours", f"b=ws://127.0.0.1:9004#{b}"])
    assert result.exit_code == 2 and "given twice" in result.output
    assert "config" not in seen


def test_values_limits_and_coins_reach_the_node_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured_config(monkeypatch)
    values = tmp_path / "values.toml"
    values.write_text('default = "1"\n[items]\nlamp = "12.5"\n"book-*" = 3\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui",
                                      "--values", str(values), "--max-auctions", "5", "--max-per-neighbour", "4",
                                      "--max-per-seller", "3", "--verifiable-coins"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.values_file, config.max_auctions, config.max_per_neighbour, config.max_per_seller) == (
        values, 5, 4, 3)
    assert config.verifiable_coins is True


def test_defaults_keep_plain_coins_and_the_node_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peer.node.config import NodeConfig

    seen = _captured_config(monkeypatch)
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui"])
    assert result.exit_code == 0, result.output
    config, default = seen["config"], NodeConfig(key_path=Path("k"), port=0, value=0)
    assert config.verifiable_coins is False and config.values_file is None
    assert (config.max_auctions, config.max_per_neighbour, config.max_per_seller) == (
        default.max_auctions, default.max_per_neighbour, default.max_per_seller)


@pytest.mark.parametrize("text, expected", [
    (None, "no such file"),
    ("default = [", "values.toml"),
    ('[items]\nlamp = "x"', "items.lamp"),
    ('colour = "red"', "unknown keys"),
])
def test_a_bad_values_file_is_one_error_line_and_no_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, expected: str) -> None:
    seen = _captured_config(monkeypatch)
    values = tmp_path / "values.toml"
    if text is not None:
        values.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui",
                                      "--values", str(values)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert "config" not in seen


def test_limits_below_one_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured_config(monkeypatch)
    result = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(keyfile(tmp_path)), "--no-tui",
                                      "--max-per-seller", "0"])
    assert result.exit_code == 2 and "config" not in seen
