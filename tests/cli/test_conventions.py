"""Every ``peer`` command: -h, shell completion, usage lines and help that read like a manual, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from peer.cli.app import app

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def _commands() -> list[list[str]]:
    """The path of every group and command under ``peer``."""
    out: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        out.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return out


COMMANDS = _commands()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=ENV)


def test_every_command_is_walked() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"sim", "run", "keygen", "ledger show", "ledger verify", "qpq sim", "experiment figure2",
            "experiment qpq-props"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "peer")
def test_dash_h_is_help_everywhere(path: list[str]) -> None:
    short, long = invoke(*path, "-h"), invoke(*path, "--help")
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert short.stdout.startswith("Usage: peer")
    assert "-h, --help" in short.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "peer")
def test_help_reads_like_a_manual(path: list[str]) -> None:
    text = invoke(*path, "-h").stdout
    usage = text.splitlines()[0]
    assert "{" not in usage and "<" not in usage, usage  # not {scenario}
    for typer_label in ("<str>", "<bool>", "<int>", "<float>", "<int range>"):
        assert typer_label not in text, (typer_label, text)
    assert "…" not in text  # nothing cut off (rich panels truncated peer run's --neighbours help)
    # (The usage line may end in "NAME...": a variadic argument, not a cut.)
    assert not any(line.rstrip().endswith("...") for line in text.splitlines()[1:]), text


def test_usage_lines_name_the_arguments() -> None:
    assert invoke("sim", "-h").stdout.startswith("Usage: peer sim [OPTIONS] SCENARIO\n")
    assert invoke("qpq", "sim", "-h").stdout.startswith("Usage: peer qpq sim [OPTIONS] SCENARIO\n")
    assert invoke("ledger", "show", "-h").stdout.startswith("Usage: peer ledger show [OPTIONS] DATA_DIR\n")


def test_choices_are_listed() -> None:
    assert "--mechanism [sra|replay|crm|idm|vcg-neighbours]" in invoke("sim", "-h").stdout


def test_command_lists_show_whole_first_paragraphs() -> None:
    # They were cut at the first full stop: "figure2  The SRA paper's Sec."
    text = invoke("experiment", "-h").stdout
    assert "Sec. 5.2 experiment" in text and "Props. 7 and 8" in text


def test_shell_completion_is_offered() -> None:
    text = invoke("-h").stdout
    assert "--install-completion" in text and "--show-completion" in text


def test_completion_script_completes_subcommands() -> None:
    result = CliRunner().invoke(app, [], env={**ENV, "_PEER_COMPLETE": "complete_bash", "COMP_WORDS": "peer le",
                                              "COMP_CWORD": "1"}, prog_name="peer")
    assert "ledger" in result.stdout


# ----------------------------------------------------------------------------- wrong input, no traceback

UNWRITABLE = "/proc/peer-no-such-dir/out"
WRONG = [
    ("sim", str(SCENARIOS / "small-tree.toml"), "--async", "--gather-window", "-1"),
    ("qpq", "sim", str(SCENARIOS / "qpq-small.toml"), "--rounds", "3", "--ledger", UNWRITABLE + "/l.jsonl"),
    ("qpq", "sim", str(SCENARIOS / "qpq-small.toml"), "--rounds", "3", "--seed", str(2**130)),
    ("experiment", "figure2", "--samples", "1", "--runs", "1", "--out", UNWRITABLE),
    ("experiment", "deviations", "--quick", "--out", UNWRITABLE),
    ("experiment", "qpq-props", "--ns", "4", "--out", UNWRITABLE),
    ("experiment", "qpq-traffic", "--ns", "4", "--out", UNWRITABLE),
    ("experiment", "qpq-cheaters", "--out", UNWRITABLE),
    ("ledger", "show", str(SCENARIOS / "small-tree.toml")),
    ("ledger", "verify", "/proc/peer-no-such-dir"),
]


@pytest.mark.parametrize("args", WRONG, ids=lambda a: " ".join(a[:2]))
def test_wrong_input_is_one_error_and_exit_2(args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_huge_seed_in_a_qpq_scenario_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(f"seed = {2**130}\n[qpq]\nplayers = 4\n")
    result = invoke("qpq", "sim", str(path))
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr.startswith(f"error: {path}: [seed]")


def test_an_unwritable_out_dir_fails_before_the_run() -> None:
    # figure2 with its defaults takes minutes; the directory is checked first.
    result = invoke("experiment", "figure2", "--out", UNWRITABLE)
    assert result.exit_code == 2 and "cannot write there" in result.stderr
