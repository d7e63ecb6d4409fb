"""Rich rendering of the deviation sweep's report.

The sweep's instances have small integer values on purpose: exhaustive
search needs few, tie-rich values.  They are printed as those integers (minor
units), and the table title says so, rather than as 0.000002-style amounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peer.experiments.deviation_model import Finding, Outcome
    from peer.experiments.deviations import SweepReport


def render(report: SweepReport) -> list[object]:
    """Rich renderables: the per-kind table, then the smallest counterexample of each kind and category."""
    from rich.table import Table
    from rich.text import Text

    from peer.experiments.deviation_model import KINDS  # here: deviations imports this module

    table = Table(title=f"SRA unilateral deviations ({report.instances} instances, {report.seconds:.1f} s; "
                        "values, utilities and gains in minor units)")
    columns = ("kind", "Thm 5.3 proof", "tried", "changed outcome", "profitable: mechanism", "max gain",
               "smallest (n, m)", "with timeouts", "max gain", "artefact", "aborted", "detectable")
    for col in columns:
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, in_proof in KINDS.items():
        s = report.stats[kind]
        small = report.smallest.get((kind, "mechanism"))
        table.add_row(
            kind, "yes" if in_proof else "extra", str(s.tried), str(s.changed),
            str(s.profitable["mechanism"]), str(s.max_gain["mechanism"]),
            "-" if small is None else str(small.instance.size),
            str(s.profitable["timeout"]), str(s.max_gain["timeout"]),
            str(s.profitable["artefact"]), str(s.aborted), str(s.rejected_runs),
        )
    out: list[object] = [table]
    if report.honest_replay_mismatches:
        out.append(Text(f"honest runs that differ from their replay: {len(report.honest_replay_mismatches)}", style="red"))
    for (kind, category), f in report.smallest.items():
        out.append(Text(f"smallest {category} counterexample, {describe_finding(f)}"))
    return out


def describe_finding(f: Finding) -> str:
    return (
        f"[{f.deviation.kind}] {f.instance.describe()}\n"
        f"  node {f.node} (value {f.instance.value_map[f.node]}) deviates: {f.deviation.describe()}\n"
        f"  honest : {f.honest.path()}  -> u_{f.node} = {f.honest.utility}\n"
        f"  deviant: {f.deviant.path()}  -> u_{f.node} = {f.deviant.utility}  (gain {f.gain})\n"
        f"  honest parents : {_parents(f.honest)}\n"
        f"  deviant parents: {_parents(f.deviant)}\n"
        f"  replay agrees: {f.replay_agrees}; messages rejected by others: {f.rejected}; "
        f"timeouts: {f.timeouts}"
    )


def _parents(o: Outcome) -> str:
    return " ".join(f"{n}<-{p}" for n, p in o.parents)
