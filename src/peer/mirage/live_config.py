"""A Mirage run on real nodes: the scenario's ``[mirage.live]`` table and the cluster file every process reads.

``[mirage.live]`` (all optional)::

    providers = 3            # provider processes that jointly clear each round
    k = 1                    # coalition size tolerated: tasks run by groups of k+1
    mechanism = "A1"         # A1 | A2 | A2+MIP | A2+rules
    rounds = 8               # hourly rounds
    hour_seconds = 1.0       # the time scale: one market hour lasts this long
    bid_window = 0.5         # share of the hour the providers collect bids
    phase_timeout = 2.0      # seconds, each protocol phase after the bids
    slots = 4                # bid slots (outstanding bids) per user
    [mirage.live.strategies] # user -> truthful | S1 | S2 | S3 | S4 (others truthful)
    u01 = "S1"

The cluster file (JSON, written by the launcher) names every key: providers,
users with their bid slots, and the market's genesis; the start time is not in
it (``start.json`` in the address directory, written once everyone is linked).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from peer.errors import PeerError, ScenarioError
from peer.mirage.agents import STRATEGIES
from peer.mirage.currency import CurrencyPolicy
from peer.mirage.live import MarketSetup
from peer.mirage.model import MECHANISMS, Rules
from peer.mirage.scenario import MirageScenario
from peer.money import SCALE
from peer.net.identity import Identity


class LiveConfigError(PeerError):
    """A cluster file that is missing or malformed."""


@dataclass(frozen=True)
class LiveParams:
    providers: int = 3
    k: int = 1
    mechanism: str = "A1"
    rounds: int = 8
    hour_seconds: float = 1.0
    bid_window: float = 0.5
    phase_timeout: float = 2.0
    slots: int = 4
    strategies: tuple[tuple[str, str], ...] = ()


def live_params(data: dict[str, Any], scenario: MirageScenario) -> LiveParams:
    """``[mirage.live]`` checked against the scenario; ScenarioError naming the key otherwise."""
    src = scenario.source
    raw = data.get("mirage", {}).get("live", {})
    if not isinstance(raw, dict):
        raise ScenarioError(src, "mirage.live", "must be a table")
    defaults, values = LiveParams(), {}
    for key, value in raw.items():
        name = f"mirage.live.{key}"
        if key == "strategies":
            if not isinstance(value, dict):
                raise ScenarioError(src, name, "must be a table of user = strategy")
            users = {f"u{i:02d}" for i in range(scenario.users)}
            for user, strategy in value.items():
                if user not in users:
                    raise ScenarioError(src, f"{name}.{user}", f"no such user (u00..u{scenario.users - 1:02d})")
                if strategy not in STRATEGIES:
                    raise ScenarioError(src, f"{name}.{user}", f"one of {', '.join(STRATEGIES)}")
            values[key] = tuple(sorted(value.items()))
        elif key == "mechanism":
            if value not in MECHANISMS:
                raise ScenarioError(src, name, f"one of {', '.join(MECHANISMS)}")
            values[key] = value
        elif key in ("providers", "k", "rounds", "slots"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "k" else 1):
                raise ScenarioError(src, name, "must be a positive integer" if key != "k" else "must be >= 0")
            values[key] = value
        elif key in ("hour_seconds", "bid_window", "phase_timeout"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 3600:
                raise ScenarioError(src, name, "must be a number of seconds in (0, 3600)")
            values[key] = float(value)
        else:
            raise ScenarioError(src, name, "unknown key")
    params = replace(defaults, **values)
    if params.providers < params.k + 1:
        raise ScenarioError(src, "mirage.live.providers", f"{params.providers} providers cannot tolerate k = {params.k}")
    if params.providers > 16 or params.slots > 16 or params.rounds > 10_000:
        raise ScenarioError(src, "mirage.live", "at most 16 providers, 16 slots and 10000 rounds")
    if not params.bid_window < 1:
        raise ScenarioError(src, "mirage.live.bid_window", "is a share of the hour, below 1")
    return params


def rules_for(mechanism: str, scenario: MirageScenario) -> Rules:
    rules = MECHANISMS[mechanism]
    if rules.one_bid_per_user:  # as the experiment: the rules' fee, in whole units per bid
        rules = replace(rules, fee=scenario.fee * SCALE)
    return rules


@dataclass(frozen=True)
class LiveUserEntry:
    name: str
    key: str  # account (and node) key, hex
    slots: tuple[str, ...]
    strategy: str


@dataclass(frozen=True)
class LiveCluster:
    scenario: str  # the scenario file (users draw their jobs from it)
    seed: int
    providers: tuple[bytes, ...]  # sorted
    k: int
    users: tuple[LiveUserEntry, ...]
    mechanism: str
    capacity: int
    baseline: int  # minor units
    shares: int
    savings_tax: Fraction
    fee: int  # minor units per bid (the rules' fee)
    rounds: int
    hour_seconds: float
    bid_window: float  # share of the hour
    phase_timeout: float

    @property
    def rules(self) -> Rules:
        return replace(MECHANISMS[self.mechanism], fee=self.fee)

    def setup(self) -> MarketSetup:
        return MarketSetup(
            self.rules, CurrencyPolicy(self.savings_tax), self.capacity,
            {u.key: (self.baseline, self.shares) for u in self.users},
            {s: u.key for u in self.users for s in u.slots}, {u.key: u.name for u in self.users},
        )

    def user_keys(self) -> frozenset[bytes]:
        return frozenset(bytes.fromhex(u.key) for u in self.users)

    def round_times(self, start_at: float, round_no: int) -> tuple[float, float]:
        """Wall-clock (opening, bid deadline) of ``round_no`` for a run started at ``start_at``."""
        opens = start_at + (round_no - 1) * self.hour_seconds
        return opens, opens + self.bid_window * self.hour_seconds

    def dump(self, path: Path) -> None:
        data = {
            "scenario": self.scenario, "seed": self.seed, "providers": [p.hex() for p in self.providers], "k": self.k,
            "users": [{"name": u.name, "key": u.key, "slots": list(u.slots), "strategy": u.strategy} for u in self.users],
            "mechanism": self.mechanism, "capacity": self.capacity, "baseline": self.baseline, "shares": self.shares,
            "savings_tax": [self.savings_tax.numerator, self.savings_tax.denominator], "fee": self.fee,
            "rounds": self.rounds, "hour_seconds": self.hour_seconds, "bid_window": self.bid_window,
            "phase_timeout": self.phase_timeout,
        }
        path.write_text(json.dumps(data, indent=1))

    @staticmethod
    def load(path: Path) -> LiveCluster:
        try:
            raw = json.loads(path.read_text())
            cluster = LiveCluster(
                str(raw["scenario"]), int(raw["seed"]), tuple(sorted(bytes.fromhex(p) for p in raw["providers"])),
                int(raw["k"]),
                tuple(LiveUserEntry(str(u["name"]), str(u["key"]), tuple(str(s) for s in u["slots"]), str(u["strategy"]))
                      for u in raw["users"]),
                str(raw["mechanism"]), int(raw["capacity"]), int(raw["baseline"]), int(raw["shares"]),
                Fraction(int(raw["savings_tax"][0]), int(raw["savings_tax"][1])), int(raw["fee"]), int(raw["rounds"]),
                float(raw["hour_seconds"]), float(raw["bid_window"]), float(raw["phase_timeout"]),
            )
            for key in (*(u.key for u in cluster.users), *(s for u in cluster.users for s in u.slots)):
                if len(bytes.fromhex(key)) != 32:
                    raise ValueError("keys are 64 hex characters")
            if cluster.mechanism not in MECHANISMS or any(u.strategy not in STRATEGIES for u in cluster.users):
                raise ValueError("unknown mechanism or strategy")
            cluster.setup()  # the currency and rules check themselves
        except OSError as exc:
            raise LiveConfigError(f"{path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError) as exc:
            raise LiveConfigError(f"{path}: malformed Mirage cluster file ({exc})") from None
        return cluster


def make_cluster(scenario: MirageScenario, params: LiveParams, scenario_path: str, *, seed: int | None = None,
                 ) -> tuple[LiveCluster, dict[str, Identity], dict[str, Identity]]:
    """The cluster of a run, with every key derived from the scenario and the seed (a run replays its keys;
    these are for local runs, as ``peer launch``'s): (cluster, provider name -> key, user name -> key)."""
    from peer.mirage.auctioneer_round import slot_identity
    from peer.mirage.workload import users_of

    seed = scenario.seed if seed is None else seed

    def key(name: str) -> Identity:
        return Identity.from_seed(hashlib.sha256(f"peer/mirage-live/{scenario.name}/{seed}/{name}".encode()).digest())

    providers = {f"provider-{i}": key(f"provider-{i}") for i in range(params.providers)}
    users = {u: key(u) for u in users_of(scenario)}
    strategies = dict(params.strategies)
    entries = tuple(
        LiveUserEntry(u, ident.public_hex, tuple(slot_identity(ident, i).public_hex for i in range(params.slots)),
                      strategies.get(u, "truthful"))
        for u, ident in users.items()
    )
    rules = rules_for(params.mechanism, scenario)
    cluster = LiveCluster(
        scenario_path, seed, tuple(sorted(p.public_key for p in providers.values())), params.k, entries,
        params.mechanism, scenario.nodes, scenario.baseline * SCALE, scenario.shares, scenario.savings_tax, rules.fee,
        params.rounds, params.hour_seconds, params.bid_window, params.phase_timeout,
    )
    return cluster, providers, users


def load_live(path: str | Path) -> tuple[MirageScenario, LiveParams]:
    """A Mirage scenario file and its ``[mirage.live]`` table (ScenarioError on anything wrong)."""
    from peer.mirage.scenario import parse_mirage_scenario
    from peer.scenario.toml_source import parse_toml, read_text

    text, source = read_text(path)
    data = parse_toml(text, source)
    scenario = parse_mirage_scenario(data, source)
    return scenario, live_params(data, scenario)
