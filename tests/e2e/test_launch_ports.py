"""The launcher's node ports: distinct, free, and clear of the kernel's ephemeral range.

A port from the ephemeral range can be given to some node's outgoing connection
before the node planned on it binds it: one of a thousand nodes then failed to start.
"""

from __future__ import annotations

import socket

from peer.launch.plan import _ephemeral_range, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    low, _ = _ephemeral_range()
    ports = free_ports(500)
    assert len(set(ports)) == 500
    if low - 10000 >= 1000:
        assert all(10000 <= p < low for p in ports)
    for port in ports[:20]:  # still free: bindable now
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", free_ports(1)[0]))
        busy.listen()
        taken = busy.getsockname()[1]
        for _ in range(5):
            assert taken not in free_ports(200)
