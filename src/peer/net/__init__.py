"""The link layer and gossip of a peer node.

Pure, sans-I/O modules (no trio): :mod:`~peer.net.identity`, :mod:`~peer.net.codec`,
:mod:`~peer.net.handshake`, :mod:`~peer.net.frames`, :mod:`~peer.net.gossip`,
:mod:`~peer.net.seqstore`, :mod:`~peer.net.linkstate`.  The trio side:
:mod:`~peer.net.link` (one link) and :mod:`~peer.net.websocket` (transports,
server, dialers, the link registry).  The wire format is in docs/protocol.md.

Importing this package does not import trio; import the trio names from
``peer.net.websocket`` / ``peer.net.link`` directly.
"""

from __future__ import annotations

from peer.net.codec import (
    DecodeError as DecodeError,
    EncodeError as EncodeError,
    GossipEnvelope as GossipEnvelope,
    Heartbeat as Heartbeat,
    LinkMessage as LinkMessage,
    decode_message as decode_message,
    encode_message as encode_message,
)
from peer.net.gossip import Deliver as Deliver, Forward as Forward, Gossip as Gossip, GossipError as GossipError
from peer.net.identity import Identity as Identity, IdentityError as IdentityError
from peer.net.linkstate import (
    LinkDown as LinkDown,
    LinkSnapshot as LinkSnapshot,
    LinkUp as LinkUp,
    Received as Received,
)
from peer.net.seqstore import MemorySeqCounter as MemorySeqCounter, SeqFile as SeqFile
