"""Learning curves in words and in a table: at which training sizes a run beats a baseline, and where
the order changes.

Every system is trained on the same subsamples at each size, so a run and a baseline are compared by
their paired differences over resamples (a t-interval of the mean difference, resamples - 1 degrees of
freedom); at the full size, one value each, by the paired bootstrap test of the report's pair table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from pipeline.render.study_values import CurveSeries

__all__ = ["CurveSeries", "SizeVerdict", "crossover_sentence", "curve_table_rows", "size_verdicts"]

LEVEL = 0.95
State = Literal["run", "baseline", "tie"]


@dataclass(frozen=True)
class SizeVerdict:
    """Who is ahead at one training size: ``difference`` is run - baseline (mean over resamples),
    ``tested`` False where only two point values were compared (a full size with no pair row)."""

    size: int
    state: State
    difference: float
    tested: bool = True


def _paired_state(run: Sequence[float], baseline: Sequence[float]) -> tuple[State, float]:
    """The mean paired difference and which side its 95% t-interval lies on ('tie' where it spans 0)."""
    diff = np.asarray(run, dtype=float) - np.asarray(baseline, dtype=float)
    mean = float(diff.mean())
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)))
    if mean - half > 0:
        return "run", mean
    return ("baseline", mean) if mean + half < 0 else ("tie", mean)


def _point_state(difference: float) -> State:
    return "run" if difference > 0 else "baseline" if difference < 0 else "tie"


def size_verdicts(
    run: CurveSeries, baseline: CurveSeries, full_pair: Mapping[str, Any] | None
) -> list[SizeVerdict]:
    """One verdict per size both series measured. The last size is every training row, one value each:
    its verdict is ``full_pair``'s (an ``all_pairs`` row of run vs baseline). Any other size with one
    value each (one resample), or the full size without a pair, is the point values' order, marked
    untested."""
    theirs = dict(zip(baseline.sizes, baseline.scores, strict=True))
    full = max(run.sizes)
    out = []
    for size, ours in zip(run.sizes, run.scores, strict=True):
        if size not in theirs:
            continue
        other = theirs[size]
        if len(ours) != len(other):
            raise ValueError(f"{run.name} and {baseline.name} have different resamples at {size:,}")
        if len(ours) > 1:
            out.append(SizeVerdict(size, *_paired_state(ours, other)))
            continue
        difference = ours[0] - other[0]
        if full_pair is None or size != full:
            out.append(SizeVerdict(size, _point_state(difference), difference, tested=False))
        else:
            state = _point_state(difference) if full_pair["significant"] else "tie"
            out.append(SizeVerdict(size, state, difference))
    if not out:
        raise ValueError(f"{run.name} and {baseline.name} share no training size")
    return out


def _count(n: int) -> str:
    return f"{n:,}"


def _about(n: int) -> str:
    """A subsample size as people say it: '~1,500' for 1,523; small sizes exactly."""
    if n < 1000:
        return _count(n)
    rounded = round(n, 1 - math.floor(math.log10(n)))
    return _count(rounded) if rounded == n else f"~{_count(rounded)}"


def _points(values: Sequence[float]) -> str:
    """Macro-F1 differences in points: '4.1 points', '2.3–4.1 points' for a regime of several sizes."""
    low, high = (f"{100 * abs(v):.1f}" for v in (min(values, key=abs), max(values, key=abs)))
    return f"{high} points" if low == high else f"{low}–{high} points"


def _regimes(verdicts: list[SizeVerdict]) -> list[list[SizeVerdict]]:
    """Consecutive sizes with the same verdict, grouped; an untested size never joins a tested one."""
    groups: list[list[SizeVerdict]] = []
    for verdict in verdicts:
        last = groups[-1][-1] if groups else None
        if last and (last.state, last.tested) == (verdict.state, verdict.tested):
            groups[-1].append(verdict)
        else:
            groups.append([verdict])
    return groups


def _clause(group: list[SizeVerdict], run: str, baseline: str, tie: str) -> str:
    """What holds within one regime, as a clause: 'A beats B by 4.1 points'."""
    state, diffs = group[0].state, [v.difference for v in group]
    if not group[0].tested:
        ahead, behind = (run, baseline) if state == "run" else (baseline, run)
        if state == "tie":
            return f"{run} and {baseline} score the same (not tested)"
        return f"{ahead} scores {_points(diffs)} above {behind} (one value each, not tested)"
    if state == "tie":
        return tie
    ahead, behind = (run, baseline) if state == "run" else (baseline, run)
    return f"{ahead} beats {behind} by {_points(diffs)}"


def _measured(verdicts: list[SizeVerdict]) -> str:
    """'(152 to 10,000 labelled tweets)': the range of sizes compared, exactly."""
    first, last = verdicts[0].size, verdicts[-1].size
    sizes = _count(first) if first == last else f"{_count(first)} to {_count(last)}"
    return f"({sizes} labelled tweets)"


def _lead_changes(groups: list[list[SizeVerdict]]) -> int:
    """How often the tested leader changes, ties skipped: ahead, tied, behind is one change."""
    leaders = [group[0].state for group in groups if group[0].state != "tie" and group[0].tested]
    return sum(x != y for x, y in itertools.pairwise(leaders))


def _where(group: list[SizeVerdict], position: str) -> str:
    """The sizes a regime covers, said as its place in the sentence needs: 'with up to ~1,500
    labelled tweets', 'from ~1,500 to ~4,700', 'from ~4,700 on', 'at 10,000'."""
    first, last = group[0].size, group[-1].size
    if position == "first":
        return (
            f"with {_count(first)} labelled tweets"
            if first == last
            else f"with up to {_about(last)} labelled tweets"
        )
    if first == last:
        return f"at {_count(first)}" if position == "last" else f"at {_about(first)}"
    return f"from {_about(first)} on" if position == "last" else f"from {_about(first)} to {_about(last)}"


def _single_regime(group: list[SizeVerdict], a: str, b: str, measured: str) -> str:
    if not group[0].tested:
        return f"At the one size measured {measured}, {_clause(group, a, b, '')}."
    if group[0].state == "tie":
        return f"{a} and {b} are indistinguishable at every size measured {measured}."
    ahead = a if group[0].state == "run" else b
    gap = _points([v.difference for v in group])
    return f"No crossover in the measured range: {ahead} is ahead at every size {measured}, by {gap}."


def crossover_sentence(run: CurveSeries, baseline: CurveSeries, full_pair: Mapping[str, Any] | None) -> str:
    """Where the run and the baseline change places, in words: 'With up to ~1,500 labelled tweets,
    e5-small · mean beats TF-IDF by 4.1 points; from ~4,700 on, they are indistinguishable.' Up to three
    regimes are each said; more are summed up by the first and the last (the table has the rest)."""
    verdicts = size_verdicts(run, baseline, full_pair)
    groups, measured = _regimes(verdicts), _measured(verdicts)
    a, b = run.name, baseline.name
    if len(groups) == 1:
        return _single_regime(groups[0], a, b, measured)
    shown = groups if len(groups) <= 3 else [groups[0], groups[-1]]
    places = ["first", *["middle"] * (len(shown) - 2), "last"]
    parts = [
        f"{_where(group, place)}, "
        + _clause(
            group,
            a,
            b,
            f"{a} and {b} are indistinguishable" if place == "first" else "they are indistinguishable",
        )
        for group, place in zip(shown, places, strict=True)
    ]
    if len(shown) == len(groups):
        text = "; ".join(parts)
    else:
        text = f"{parts[0]}; then, after {len(groups) - 1} changes of verdict, {parts[1]}"
    changes = _lead_changes(groups)
    if changes > 1:
        return f"The lead changes {changes} times in the measured range {measured}: {text}."
    return text[0].upper() + text[1:] + "."


def _cell(values: Sequence[float]) -> str:
    """'0.142 ± 0.004' (mean ± sd over resamples); a single value alone."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{float(np.mean(values)):.3f} ± {float(np.std(values, ddof=1)):.3f}"


def curve_table_rows(series: Sequence[CurveSeries]) -> list[dict[str, str]]:
    """One row per training size (every size any system measured), a column per system: macro-F1 as
    mean ± sd over resamples, '—' where a system has no value at that size."""
    sizes = sorted({size for one in series for size in one.sizes})
    by_size = [dict(zip(one.sizes, one.scores, strict=True)) for one in series]
    rows = []
    for size in sizes:
        row = {"labelled tweets": _count(size)}
        for one, values in zip(series, by_size, strict=True):
            row[one.name] = _cell(values[size]) if size in values else "—"
        rows.append(row)
    return rows
