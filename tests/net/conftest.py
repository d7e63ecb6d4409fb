"""Fixtures for the link conformance suite: every test runs once per transport."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture(params=["memory", "tcp"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock(kind: str) -> trio.testing.MockClock | None:
    """Virtual time for memory links (pytest-trio runs the test on it); real time for sockets."""
    return trio.testing.MockClock(autojump_threshold=0) if kind == "memory" else None
