"""Preferences: raw values, each node's own CDF (the PIT), and the player profiles.

A node's raw value for resource r comes from its own distribution; the node
normalises it with that distribution's CDF (the probability integral
transform), which makes an honest declaration U[0, 1] whatever the
distribution.  Raw values are drawn per (seed, node, round) from a hash, by
inverse-CDF sampling, so any round of any run replays on its own.

Profiles say what a player declares:

- ``honest``: its normalised value;
- ``beta_cheater(b)``: ``value ** (1/b)``: it still ranks resources as it
  values them, but inflates them; the declarations are Beta(b, 1), not uniform,
  so a good enough test catches it (the paper's Sec. VI);
- ``uniform_liar``: a uniform draw unrelated to its value: it passes any test;
- protocol faults: ``silent`` (commits, never reveals), ``mismatch`` (reveals
  the top value, not the one it committed to), ``absent`` (never takes part).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from peer.qpq.commit import liar_value, lp
from peer.qpq.fixed import MAX_VALUE, ONE, to_fixed

_RAW = b"peer/qpq/v1/raw"


@dataclass(frozen=True, slots=True)
class Distribution:
    """A node's law for raw values: ``uniform(low, high)``, ``normal(mu, sigma)``, ``exponential(rate)``."""

    kind: str
    params: tuple[float, ...]

    @property
    def spec(self) -> str:
        return f"{self.kind}({', '.join(f'{p:g}' for p in self.params)})"

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "uniform":
            low, high = self.params
            return np.clip((x - low) / (high - low), 0.0, 1.0)
        if self.kind == "normal":
            mu, sigma = self.params
            return ndtr((x - mu) / sigma)
        rate = self.params[0]
        return np.where(x > 0, -np.expm1(-rate * np.maximum(x, 0.0)), 0.0)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        if self.kind == "uniform":
            low, high = self.params
            return low + u * (high - low)
        if self.kind == "normal":
            mu, sigma = self.params
            return mu + sigma * ndtri(u)
        return -np.log1p(-u) / self.params[0]


DISTRIBUTIONS = {"uniform": 2, "normal": 2, "exponential": 1}
_CALL = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def _call(text: object, what: str) -> tuple[str, list[float]]:
    if not isinstance(text, str):
        raise ValueError(f"must be a string like {what}, got {text!r}")
    match = _CALL.match(text)
    if not match:
        raise ValueError(f"cannot parse {text!r}; expected {what}")
    name, args = match.group(1), match.group(2)
    values: list[float] = []
    if args is not None and args.strip():
        for part in args.split(","):
            try:
                value = float(part)
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not a number in {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"{part.strip()!r} is not a finite number in {text!r}")
            values.append(value)
    return name, values


def parse_distribution(text: object) -> Distribution:
    name, args = _call(text, "'uniform(0, 1)', 'normal(10, 2)' or 'exponential(0.5)'")
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r}; known: {', '.join(DISTRIBUTIONS)}")
    if name == "uniform" and not args:
        args = [0.0, 1.0]
    if len(args) != DISTRIBUTIONS[name]:
        raise ValueError(f"{name} takes {DISTRIBUTIONS[name]} parameter(s), got {len(args)}")
    if name == "uniform" and not args[0] < args[1]:
        raise ValueError("uniform(low, high) needs low < high")
    if name == "normal" and not args[1] > 0:
        raise ValueError("normal(mu, sigma) needs sigma > 0")
    if name == "exponential" and not args[0] > 0:
        raise ValueError("exponential(rate) needs rate > 0")
    return Distribution(name, tuple(args))


UNIFORM = Distribution("uniform", (0.0, 1.0))


def raw_uniforms(seed: int, node: str, first: int, count: int) -> np.ndarray:
    """Uniforms in (0, 1) for rounds first..first+count-1 of ``node``: one hash per (seed, node, round)."""
    prefix = lp(_RAW) + seed.to_bytes(16, "big", signed=True) + lp(node.encode())
    out = np.empty(count)
    for i in range(count):
        digest = hashlib.sha256(prefix + (first + i).to_bytes(8, "big")).digest()
        out[i] = ((int.from_bytes(digest[:8], "big") >> 11) + 0.5) / 2.0**53  # never 0 or 1
    return out


def preferences(dist: Distribution, seed: int, node: str, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw values, fixed-point normalised preferences) of ``node`` for ``count`` rounds."""
    raw = dist.ppf(raw_uniforms(seed, node, first, count))
    pit = dist.cdf(raw)  # what the node itself computes from its raw value
    fixed = np.minimum(np.floor(np.clip(pit, 0.0, 1.0) * ONE), MAX_VALUE).astype(np.int64)
    return raw, fixed


PROFILES = ("honest", "beta_cheater", "uniform_liar", "silent", "mismatch", "absent")


@dataclass(frozen=True, slots=True)
class Profile:
    kind: str = "honest"
    beta: float = 1.0

    @property
    def spec(self) -> str:
        return f"beta_cheater({self.beta:g})" if self.kind == "beta_cheater" else self.kind

    @property
    def honest(self) -> bool:
        return self.kind == "honest"

    @property
    def takes_part(self) -> bool:
        return self.kind != "absent"

    @property
    def reveals(self) -> bool:
        return self.kind not in ("silent", "absent")

    def declare(self, pref: int, secret: bytes, stream: str, round_no: int) -> int:
        """The value this player commits to, given its normalised preference."""
        if self.kind == "beta_cheater":
            return to_fixed((pref / ONE) ** (1.0 / self.beta))
        if self.kind == "uniform_liar":
            return liar_value(secret, stream, round_no)
        return pref

    def reveal_value(self, committed: int) -> int:
        """The value it reveals: the committed one, except for a ``mismatch`` liar."""
        if self.kind == "mismatch":
            return MAX_VALUE if committed != MAX_VALUE else MAX_VALUE - 1
        return committed


HONEST = Profile()


def parse_profile(text: object) -> Profile:
    name, args = _call(text, "'honest', 'beta_cheater(3)', 'uniform_liar', 'silent', 'mismatch' or 'absent'")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    if name == "beta_cheater":
        if len(args) != 1 or not args[0] > 0:
            raise ValueError("beta_cheater(beta) needs one parameter beta > 0")
        return Profile(name, args[0])
    if args:
        raise ValueError(f"{name} takes no parameters")
    return Profile(name)
