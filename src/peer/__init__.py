"""peer: a peer-to-peer node for auctions on social networks with no trusted auctioneer."""

from __future__ import annotations

__version__ = "0.1.0"
