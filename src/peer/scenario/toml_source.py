"""Reading a scenario file as TOML, with every failure as one ScenarioError (shared by SRA and QPQ)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from peer.errors import ScenarioError


def read_text(path: str | Path) -> tuple[str, str]:
    """(text, source) of a scenario file; ScenarioError naming the file if it cannot be read."""
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8"), source
    except OSError as exc:
        raise ScenarioError(source, "file", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(source, "file", "not UTF-8 text") from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "toml", f"not valid TOML: {exc}") from None


class TableReader:
    """Base of the scenario builders: the parsed document, and errors that name the file and key."""

    def __init__(self, source: str, data: dict[str, Any]) -> None:
        self.source = source
        self.data = data

    def fail(self, key: str, reason: str) -> ScenarioError:
        return ScenarioError(self.source, key, reason)
