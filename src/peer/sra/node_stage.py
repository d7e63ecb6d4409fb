"""The stages one node passes through in one auction (what views and logs show)."""

from __future__ import annotations

from enum import Enum


class NodeStage(str, Enum):
    IDLE = "idle"
    GATHERING = "gathering"  # informed, inside the gather window
    AGGREGATING = "aggregating"  # forwarded, waiting for invitees' replies
    REPORTED = "reported"  # bid sent to the parent, waiting for stage 3
    HOSTING = "hosting"  # running a local auction as its seller
    CONFIRMED = "confirmed"  # guarded resale: took an offer, waiting for the sale to be committed
    SETTLED = "settled"  # the auction is over


# The members under plain module names, for the machines' hot paths: on Python 3.11 the Enum
# metaclass defines __getattr__, which sends every attribute read on the class (``NodeStage.IDLE``)
# through a slow hook, four times the cost of a plain class attribute, and a machine tests its
# stage on nearly every message.
IDLE, GATHERING, AGGREGATING, REPORTED, HOSTING, CONFIRMED, SETTLED = NodeStage
