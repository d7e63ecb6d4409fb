"""A Mirage scenario file: the testbed, the currency, the workload and the strategies' parameters.

Every key is optional except ``[mirage]`` itself; a bad value raises a
ScenarioError naming the file and the key, and nothing is run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from peer.errors import ScenarioError
from peer.scenario.toml_source import parse_toml, read_text

DEFAULT_FILE = Path("scenarios") / "mirage" / "paper.toml"


@dataclass(frozen=True)
class Workload:
    arrivals_per_hour: float = 0.12  # jobs per hour over all users, off-peak
    peaks: tuple[tuple[float, float, float], ...] = ((5.0, 9.0, 5.0), (14.0, 20.0, 6.0))  # (day from, day to, x)
    deadline_value_growth: float = 10.0  # value multiplier reached at the end of a peak (Fig. 3's rise)
    nodes: tuple[int, ...] = (97, 48, 32, 16, 8)
    nodes_weights: tuple[float, ...] = (0.3, 0.2, 0.2, 0.15, 0.15)
    peak_nodes_weights: tuple[float, ...] = (0.85, 0.05, 0.05, 0.05, 0.0)  # near a deadline, experiments at scale
    hours: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32)
    hours_weights: tuple[float, ...] = (0.05, 0.05, 0.1, 0.15, 0.15, 0.2, 0.15, 0.15)
    value_per_node_hour: tuple[float, float] = (0.0003, 0.03)  # log-uniform, off-peak
    patience_hours: int = 96  # a job's bid may start up to this long after it arrives


@dataclass(frozen=True)
class StrategyParams:
    strategists: int = 3  # users (of ``users``) who play the strategy under test
    s1_low_demand: float = 0.5  # visible demand below this share of the free window counts as "low"
    s1_underbid: float = 0.02  # ... and then the S1 user bids this share of its value
    s1_margin: float = 1.1  # otherwise: just above the best competing value per node-hour it can see
    s2_first: float = 0.1  # S2's opening bid, as a share of its value
    s2_margin: float = 1.1  # its one revision: this much above the best competing value per node-hour
    s3_undercut: int = 1  # hours below the shortest competing bid, when the window is full
    s4_min_nodes: int = 64  # sandwich only jobs this big
    s4_big_share: float = 0.5  # ... when at least this share of recent winning node-hours could not backfill
    s4_main_share: float = 0.4  # the high bid's share of the nodes (Table 1: 40 of 97)
    s4_main_premium: float = 1.5  # the high bid's value per node-hour over the best recent winner's
    s4_backfill: float = 0.05  # the backfill bids' value per node-hour, as a share of the median recent winner's
    s4_backfill_bids: int = 2
    history_hours: int = 168  # how far back "recent winning bids" go


@dataclass(frozen=True)
class MirageScenario:
    name: str = "mirage"
    seed: int = 1
    source: str = "<defaults>"
    nodes: int = 97
    weeks: float = 3.0
    users: int = 12
    baseline: int = 1000  # whole currency units, as the paper's external users
    shares: int = 1000
    savings_tax: Fraction = Fraction(1, 1000)  # per round, on the excess over the baseline
    fee: int = 1  # whole units per bid, under "A2+rules"
    workload: Workload = field(default_factory=Workload)
    strategy: StrategyParams = field(default_factory=StrategyParams)

    @property
    def rounds(self) -> int:
        return int(round(self.weeks * 7 * 24))


def load_mirage_scenario(path: str | Path | None = None) -> MirageScenario:
    """The scenario at ``path`` (default ``scenarios/mirage/paper.toml`` here, else next to the source tree)."""
    if path is None:
        here = Path.cwd() / DEFAULT_FILE
        path = here if here.is_file() else Path(__file__).resolve().parents[3] / DEFAULT_FILE
    text, source = read_text(path)
    return parse_mirage_scenario(parse_toml(text, source), source)


def parse_mirage_scenario(data: dict[str, Any], source: str) -> MirageScenario:
    table = data.get("mirage")
    if not isinstance(table, dict):
        raise ScenarioError(source, "mirage", "missing table: not a Mirage scenario")
    top: dict[str, Any] = {"source": source}
    for key in ("name", "seed"):
        if key in data:
            top[key] = _typed(source, key, data[key], str if key == "name" else int)
    for key in ("nodes", "users", "baseline", "shares", "fee"):
        if key in table:
            top[key] = _positive_int(source, f"mirage.{key}", table[key], allow_zero=key == "fee")
    if "weeks" in table:
        top["weeks"] = _positive_float(source, "mirage.weeks", table["weeks"])
    if "savings_tax" in table:
        top["savings_tax"] = _fraction(source, "mirage.savings_tax", table["savings_tax"])
    top["workload"] = _section(source, "mirage.workload", table.get("workload", {}), Workload)
    top["strategy"] = _section(source, "mirage.strategy", table.get("strategy", {}), StrategyParams)
    # [mirage.live] is the real-nodes run's table (peer.mirage.live_config), read by its own loader.
    unknown = set(table) - {"nodes", "users", "baseline", "shares", "fee", "weeks", "savings_tax", "workload",
                            "strategy", "live"}
    if unknown:
        raise ScenarioError(source, f"mirage.{sorted(unknown)[0]}", "unknown key")
    scenario = MirageScenario(**top)
    _check(scenario)
    return scenario


def _section(source: str, key: str, raw: Any, kind: type) -> Any:
    if not isinstance(raw, dict):
        raise ScenarioError(source, key, "must be a table")
    defaults = kind()
    values = {}
    names = {f.name for f in fields(kind)}
    for name, value in raw.items():
        if name not in names:
            raise ScenarioError(source, f"{key}.{name}", "unknown key")
        default = getattr(defaults, name)
        values[name] = _like(source, f"{key}.{name}", value, default)
    return kind(**values)


def _like(source: str, key: str, value: Any, default: Any) -> Any:
    """``value`` checked and converted to the type of ``default`` (tuples element by element)."""
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value:
            raise ScenarioError(source, key, "must be a non-empty list")
        return tuple(_like(source, key, v, default[0]) for v in value)
    if isinstance(default, int):
        return _positive_int(source, key, value, allow_zero=True)
    if isinstance(default, float):
        return _positive_float(source, key, value)
    raise ScenarioError(source, key, "unsupported value")  # pragma: no cover - every field is int/float/tuple


def _typed(source: str, key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ScenarioError(source, key, f"must be {kind.__name__}")
    return value


def _positive_int(source: str, key: str, value: Any, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise ScenarioError(source, key, "must be a positive integer" if not allow_zero else "must be an integer >= 0")
    return value


def _positive_float(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ScenarioError(source, key, "must be a finite number >= 0")
    return float(value)


def _fraction(source: str, key: str, value: Any) -> Fraction:
    try:
        dec = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite() or not 0 <= dec <= 1:
        raise ScenarioError(source, key, "must be a decimal in [0, 1], e.g. \"0.001\"")
    return Fraction(dec)


def _check(s: MirageScenario) -> None:
    w, p = s.workload, s.strategy
    if len(w.nodes) != len(w.nodes_weights) or len(w.nodes) != len(w.peak_nodes_weights) or len(w.hours) != len(w.hours_weights):
        raise ScenarioError(s.source, "mirage.workload", "each choice list needs a weight list of the same length")
    if max(w.nodes) > s.nodes:
        raise ScenarioError(s.source, "mirage.workload.nodes", f"a job asks for more than the {s.nodes} nodes")
    if not all(1 <= h <= 32 for h in w.hours):
        raise ScenarioError(s.source, "mirage.workload.hours", "blocks are 1-32 hours")
    if len(w.value_per_node_hour) != 2 or not 0 < w.value_per_node_hour[0] <= w.value_per_node_hour[1]:
        raise ScenarioError(s.source, "mirage.workload.value_per_node_hour", "must be [low, high] with 0 < low <= high")
    if any(len(pk) != 3 or pk[0] > pk[1] for pk in w.peaks):
        raise ScenarioError(s.source, "mirage.workload.peaks", "each peak is [from day, to day, load multiplier]")
    if p.strategists > s.users:
        raise ScenarioError(s.source, "mirage.strategy.strategists", f"more strategists than the {s.users} users")
    if not 0 < p.s4_main_share < 1:
        raise ScenarioError(s.source, "mirage.strategy.s4_main_share", "must be strictly between 0 and 1")
    if s.rounds < 1:
        raise ScenarioError(s.source, "mirage.weeks", "must last at least one hour")
