from __future__ import annotations

import sys

if sys.argv[1:2] == ["run"]:
    # A node: load the run command alone, not the whole CLI (see peer.cli.node_entry).
    from peer.cli.node_entry import main
else:
    from peer.cli.app import main

main()
