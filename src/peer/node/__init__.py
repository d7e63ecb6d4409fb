"""The node shell: the only place that touches trio, sockets, clocks and disk."""
