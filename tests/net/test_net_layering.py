"""The sans-I/O modules must not import trio (the layering rule of model-codebases.md sec. 10)."""

from __future__ import annotations

import subprocess
import sys


def test_pure_modules_do_not_import_trio() -> None:
    code = (
        "import sys\n"
        "import peer.net, peer.net.identity, peer.net.codec, peer.net.handshake, peer.net.frames, "
        "peer.net.gossip, peer.net.seqstore, peer.net.linkstate, peer.net.admission, peer.net.abuse, "
        "peer.net.failures, peer.net.outbox\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'trio', 'trio_websocket', 'wsproto'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
