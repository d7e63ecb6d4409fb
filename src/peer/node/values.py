"""What the node's owner would pay for each item: ``--values FILE`` and ``peer value set``.

The file is TOML::

    default = "0"            # every item not matched below (else --value)
    [items]
    lamp = "12.5"            # an item name ...
    "book-*" = 3             # ... or a glob pattern (fnmatch); the exact name wins,
                             # then the longest matching pattern

Amounts are exact (strings or integers; a float literal is read through its
shortest decimal form, as in scenarios).  The file is reloaded when it
changes; ``peer value set`` updates the table and rewrites the file, so a
restart keeps it.  A bad file changes nothing: the old table stays and the
error is reported.  An item with no value is taken part in with value 0 (the
node relays and may resell).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from peer.errors import PeerError
from peer.money import MoneyError, format_money, parse_money

MAX_ITEM = 96  # auction ids carry the item and must fit the wire's 128-character texts


class ValuesError(PeerError):
    """A values file or a value does not parse; the message says where."""


def check_item(item: str) -> str:
    if not item or len(item) > MAX_ITEM or "/" in item or not item.isprintable() or item != item.strip():
        raise ValuesError(f"item {item!r}: 1 to {MAX_ITEM} printable characters, no '/', no surrounding space")
    return item


@dataclass
class ValueTable:
    default: int
    items: dict[str, int] = field(default_factory=dict)  # names and glob patterns -> minor units
    path: Path | None = None
    _stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file as last read

    def value_for(self, item: str) -> int:
        if item in self.items:
            return self.items[item]
        matches = [p for p in self.items if fnmatch.fnmatchcase(item, p)]
        if matches:
            return self.items[max(matches, key=lambda p: (len(p), p))]
        return self.default

    def known(self) -> bool:
        """Whether the file has been read (or found bad) at least once: it exists, so watch it."""
        return self._stamp is not None

    @classmethod
    def open(cls, path: Path | None, default: int) -> ValueTable:
        table = cls(default=default, path=path)
        if path is not None and path.exists():
            table.reload()
        return table

    def reload(self) -> bool:
        """Read the file again if it changed.  Raises ValuesError (the table is unchanged then)."""
        if self.path is None:
            return False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ValuesError(f"{self.path}: {exc.strerror or exc}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValuesError(f"{self.path}: {exc}") from None
        default, items = self._parse(data)
        self.default = default if default is not None else self.default
        self.items = items
        self._stamp = stamp
        return True

    def reload_quietly(self) -> str | None:
        """Reload if the file changed; the error if it is bad (then reported once per edit, not per call)."""
        try:
            self.reload()
        except ValuesError as exc:
            try:
                assert self.path is not None
                st = os.stat(self.path)
                self._stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                pass
            return str(exc)
        return None

    def _parse(self, data: dict[str, object]) -> tuple[int | None, dict[str, int]]:
        unknown = set(data) - {"default", "items"}
        if unknown:
            raise ValuesError(f"{self.path}: unknown keys {sorted(unknown)} (expected 'default' and [items])")
        default = None
        if "default" in data:
            try:
                default = parse_money(data["default"])
            except MoneyError as exc:
                raise ValuesError(f"{self.path}: default: {exc}") from None
        raw = data.get("items", {})
        if not isinstance(raw, dict):
            raise ValuesError(f"{self.path}: [items] must be a table of item = amount")
        items = {}
        for name, amount in raw.items():
            try:
                items[name] = parse_money(amount)
            except MoneyError as exc:
                raise ValuesError(f"{self.path}: items.{name}: {exc}") from None
        return default, items

    def set(self, item: str, amount: int) -> None:
        """Set one item's value (a name or a pattern) and persist the table if it has a file."""
        self.items[item] = amount
        if self.path is not None:
            self._write()

    def _write(self) -> None:
        assert self.path is not None
        lines = [f'default = "{format_money(self.default)}"', "", "[items]"]
        lines += [f'{_toml_key(k)} = "{format_money(v)}"' for k, v in sorted(self.items.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        st = os.stat(self.path)
        self._stamp = (st.st_mtime_ns, st.st_size)


def _toml_key(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
