"""Paired comparison of two systems' per-query metrics: means, deltas, significance.

>>> round(paired_t_test([0.1, 0.2, 0.3, 0.4], [0.3, 0.3, 0.6, 0.5]).p_value, 4)
0.0354
>>> paired_randomization_test([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]).p_value  # exact: 2 of 8 sign flips
0.25

The two tests are described in the README (Significance). The t-test's p-value comes from
the regularized incomplete beta computed here: neither polars nor pyarrow has one, and
the integer-df closed-form series loses the relative precision of small p-values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import product
from typing import NamedTuple, cast

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_PERMUTATIONS = 10_000
EXACT_RANDOMIZATION_MAX_QUERIES = 12
# Differences smaller than this are float noise, not a change in the ranking's quality.
UNCHANGED_TOLERANCE = 1e-12

Values = Sequence[float] | pl.Series


class SignificanceResult(NamedTuple):
    p_value: float | None  # None: fewer than 2 paired queries
    statistic: float | None  # t for the t-test, the mean difference for randomization


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The incomplete beta function's continued fraction, by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_front + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast only on this side; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def _differences(baseline: Values, candidate: Values) -> pl.Series:
    if len(baseline) != len(candidate):
        raise ValueError("paired tests need one baseline and one candidate value per query")
    return pl.Series(candidate, dtype=pl.Float64) - pl.Series(baseline, dtype=pl.Float64)


def paired_t_test(baseline: Values, candidate: Values) -> SignificanceResult:
    """Two-sided paired t-test of candidate - baseline."""
    diffs = _differences(baseline, candidate)
    n = len(diffs)
    if n < 2:
        return SignificanceResult(None, None)
    mean, variance = cast(float, diffs.mean()), cast(float, diffs.var(ddof=1))
    if variance == 0.0:
        # Every query moved by the same amount: no spread to test against.
        return SignificanceResult(1.0, 0.0) if mean == 0.0 else SignificanceResult(0.0, None)
    t = mean / math.sqrt(variance / n)
    return SignificanceResult(student_t_two_sided_p(t, n - 1), t)


def paired_randomization_test(
    baseline: Values, candidate: Values, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> SignificanceResult:
    """Two-sided sign-flip randomization test of the mean difference."""
    diffs = _differences(baseline, candidate)
    if len(diffs) < 2:
        return SignificanceResult(None, None)
    total = math.fsum(diffs)
    # A query that did not move sums the same under either sign: leave it out of the flips.
    moved = diffs.filter(diffs != 0.0)
    # Sums of the same numbers in another order differ in the last bits.
    threshold = abs(total) - 1e-12 * max(1.0, math.fsum(moved.abs()))
    n = len(moved)
    if n <= EXACT_RANDOMIZATION_MAX_QUERIES:
        values = moved.to_list()
        sums = [
            abs(math.fsum(s * v for s, v in zip(signs, values, strict=True)))
            for signs in product((1, -1), repeat=n)
        ]
        p = sum(1 for s in sums if s >= threshold) / len(sums)
    else:
        array, rng, extreme = moved.to_arrow(), random.Random(seed), 0
        for _ in range(permutations):
            # Set bits keep their sign, clear bits flip: sum = 2 * kept - total.
            bits = rng.getrandbits(n).to_bytes((n + 7) // 8, "little")
            keep = pa.BooleanArray.from_buffers(pa.bool_(), n, [None, pa.py_buffer(bits)])
            kept = pc.sum(pc.filter(array, keep)).as_py() or 0.0
            extreme += abs(2.0 * kept - total) >= threshold
        p = (extreme + 1) / (permutations + 1)
    return SignificanceResult(p, total / len(diffs))


def paired(baseline: pl.DataFrame, candidate: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of queries both per-query frames score, in the same (query_id) order."""
    if baseline["query_id"].equals(candidate["query_id"]):
        return baseline, candidate  # one output directory's systems: no copy
    ids = [frame["query_id"].implode() for frame in (baseline, candidate)]
    both = pl.col("query_id").is_in(ids[0]) & pl.col("query_id").is_in(ids[1])
    return baseline.filter(both), candidate.filter(both)


def compare_systems(
    baseline: pl.DataFrame, candidate: pl.DataFrame, metrics: Sequence[str], test: str
) -> dict:
    """Per metric, over ``paired`` frames: both means, the mean delta, the test's p-value and
    statistic, and how many queries got better, worse or stayed the same."""
    rows = {}
    for metric in metrics:
        # One chunk per column: sums and variances then do not depend on how rows were read.
        before, after = baseline[metric].rechunk(), candidate[metric].rechunk()
        delta = after - before
        p_value, statistic = (
            paired_randomization_test if test == "randomization" else paired_t_test
        )(before, after)
        rows[metric] = {
            "baseline": before.mean() or 0.0,
            "candidate": after.mean() or 0.0,
            "delta": delta.mean() or 0.0,
            "p_value": p_value,
            "statistic": statistic,
            "improved": (delta > UNCHANGED_TOLERANCE).sum(),
            "worse": (delta < -UNCHANGED_TOLERANCE).sum(),
            "unchanged": (delta.abs() <= UNCHANGED_TOLERANCE).sum(),
        }
    return {"test": test, "queries": baseline.height, "metrics": rows}
