"""The papers' experiments, as library functions (the CLI only parses options and calls them)."""

from __future__ import annotations
