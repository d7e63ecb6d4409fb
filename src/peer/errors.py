"""The error vocabulary, two-sided as in h11: our misuse versus their misbehaviour."""

from __future__ import annotations


class PeerError(Exception):
    """Base of every error peer raises on purpose."""


class RemoteProtocolError(PeerError):
    """A neighbour sent something illegal here.  The receiving machine is unchanged."""

    def __init__(self, sender: str, reason: str) -> None:
        super().__init__(f"from {sender}: {reason}")
        self.sender = sender
        self.reason = reason


class LocalProtocolError(PeerError):
    """This node's own code asked a machine to do something illegal."""


class ScenarioError(PeerError):
    """A scenario file is malformed; the message names the file and the key."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: [{key}] {reason}")
        self.path = path
        self.key = key
        self.reason = reason
