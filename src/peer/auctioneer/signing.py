"""The bytes a provider signs for a transferred task result (evidence if the result is wrong)."""

from __future__ import annotations

import hashlib

from peer.net.identity import verify

_RESULT = b"peer/auctioneer/v1/task-result"


def result_bytes(round_no: int, task: str, payload: bytes) -> bytes:
    raw = task.encode()
    return _RESULT + round_no.to_bytes(8, "big") + len(raw).to_bytes(2, "big") + raw + hashlib.sha256(payload).digest()


def result_ok(sender: bytes, round_no: int, task: str, payload: bytes, sig: bytes) -> bool:
    if len(task) > 64:
        return False
    return verify(sender, result_bytes(round_no, task, payload), sig)
