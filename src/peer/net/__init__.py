"""The link layer and gossip of a peer node.

Pure, sans-I/O modules (no trio): :mod:`~peer.net.identity`, :mod:`~peer.net.codec`,
:mod:`~peer.net.handshake`, :mod:`~peer.net.frames`, :mod:`~peer.net.gossip`,
:mod:`~peer.net.seqstore`, :mod:`~peer.net.linkstate`, :mod:`~peer.net.admission`,
:mod:`~peer.net.abuse`, :mod:`~peer.net.failures`, :mod:`~peer.net.outbox`.  The
trio side: :mod:`~peer.net.link` (one link), :mod:`~peer.net.transport` (TCP and
memory transports), :mod:`~peer.net.events` (the byte-bounded event queue) and
:mod:`~peer.net.websocket` (server, dialers, the link registry).  The wire format is in docs/protocol.md.

Importing this package does not import trio; import the trio names from
``peer.net.websocket`` / ``peer.net.link`` directly.
"""

from __future__ import annotations

from peer.net.codec import (
    DecodeError as DecodeError,
)
from peer.net.codec import (
    EncodeError as EncodeError,
)
from peer.net.codec import (
    GossipEnvelope as GossipEnvelope,
)
from peer.net.codec import (
    Heartbeat as Heartbeat,
)
from peer.net.codec import (
    LinkMessage as LinkMessage,
)
from peer.net.codec import (
    decode_message as decode_message,
)
from peer.net.codec import (
    encode_message as encode_message,
)
from peer.net.gossip import Deliver as Deliver
from peer.net.gossip import Forward as Forward
from peer.net.gossip import Gossip as Gossip
from peer.net.gossip import GossipError as GossipError
from peer.net.identity import Identity as Identity
from peer.net.identity import IdentityError as IdentityError
from peer.net.linkstate import (
    HandshakeFailed as HandshakeFailed,
)
from peer.net.linkstate import (
    LinkDown as LinkDown,
)
from peer.net.linkstate import (
    LinkSnapshot as LinkSnapshot,
)
from peer.net.linkstate import (
    LinkUp as LinkUp,
)
from peer.net.linkstate import (
    PeerBanned as PeerBanned,
)
from peer.net.linkstate import (
    Received as Received,
)
from peer.net.outbox import Outbox as Outbox
from peer.net.outbox import Priority as Priority
from peer.net.seqstore import MemorySeqCounter as MemorySeqCounter
from peer.net.seqstore import SeqFile as SeqFile
