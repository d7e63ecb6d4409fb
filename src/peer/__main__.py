from __future__ import annotations

from peer.cli.app import main

main()
