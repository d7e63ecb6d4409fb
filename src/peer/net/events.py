"""The link manager's event queue, bounded in events *and* in bytes.

The node shell reads :class:`EventChannel` like any trio receive channel
(``receive``, ``receive_nowait``, ``async for``, ``EndOfChannel`` at the end).
The links put received messages in with :meth:`EventChannel.put`, which waits
while the queued messages' bytes would exceed ``max_bytes``: that wait stops
the link's reader, so the backpressure reaches the sender through the
websocket queue and TCP instead of piling up in our memory (issue 17.2: a
count alone let 256 x 64 KiB frames queue).  Control events (link up/down,
refusals) take no byte budget and never wait for it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class EventChannel(trio.abc.ReceiveChannel[T], Generic[T]):
    def __init__(self, size: int, max_bytes: int) -> None:
        if size < 1 or max_bytes < 1:
            raise ValueError("the event queue holds at least one event and one byte")
        self.max_bytes = max_bytes
        self.bytes = 0  # payload bytes of the queued events
        self.dropped = 0  # control events dropped by put_nowait on a full queue
        self._send, self._recv = trio.open_memory_channel[tuple[T, int]](size)
        self._room = trio.Event()

    # --- the consumer (node shell) side ---------------------------------------

    async def receive(self) -> T:
        event, size = await self._recv.receive()
        self._took(size)
        return event

    def receive_nowait(self) -> T:
        event, size = self._recv.receive_nowait()
        self._took(size)
        return event

    async def aclose(self) -> None:
        await self._recv.aclose()

    # --- the producer (link manager) side -----------------------------------------

    async def put(self, event: T, size: int = 0) -> None:
        """Queue ``event`` carrying ``size`` payload bytes; waits for room in both bounds.
        A message larger than the whole budget waits for an empty queue, then goes."""
        while size and self.bytes and self.bytes + size > self.max_bytes:
            await self._room.wait()
        self.bytes += size
        try:
            await self._send.send((event, size))
        except BaseException:
            self.bytes -= size
            raise

    def put_nowait(self, event: T) -> bool:
        """Queue a control event if there is room; False (counted) if the queue is full."""
        try:
            self._send.send_nowait((event, 0))
        except trio.WouldBlock:
            self.dropped += 1
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close_sender(self) -> None:
        self._send.close()

    def _took(self, size: int) -> None:
        if size:
            self.bytes -= size
            self._room.set()
            self._room = trio.Event()
