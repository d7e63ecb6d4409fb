from __future__ import annotations

from peer.launch.cli import main

raise SystemExit(main())
