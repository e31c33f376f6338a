"""Paired significance tests over per-query metric values, in pure Python.

>>> from pipeline.evaluate.significance import paired_t_test, paired_randomization_test
>>> round(paired_t_test([0.1, 0.2, 0.3, 0.4], [0.3, 0.3, 0.6, 0.5]).p_value, 4)
0.0354
>>> paired_randomization_test([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]).p_value  # exact: 2 of 8 sign flips
0.25

* ``t-test`` (default): two-sided paired Student t-test on the per-query
  differences; the p-value comes from the Student t CDF computed through the
  regularized incomplete beta function (continued fraction). Deterministic
  and standard in IR (Smucker, Allan & Carterette, CIKM 2007, found it agrees
  closely with the randomization test).
* ``randomization``: two-sided paired randomization (sign-flip) test of the
  mean difference. Exact (all 2**n sign flips) for n <= 12 queries, else
  Monte Carlo with a fixed seed and ``p = (hits + 1) / (permutations + 1)``,
  so a run is reproducible and never reports p = 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

SIGNIFICANCE_TESTS = ("t-test", "randomization")
DEFAULT_TEST = "t-test"
DEFAULT_PERMUTATIONS = 10_000
DEFAULT_SEED = 0
EXACT_RANDOMIZATION_MAX_QUERIES = 12


@dataclass(slots=True)
class TestResult:
    """``statistic`` is t for the t-test, the mean difference for randomization."""

    test: str
    p_value: float | None  # None: fewer than 2 paired queries
    statistic: float | None


def _continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
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
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1.

    >>> regularized_incomplete_beta(1.0, 1.0, 0.3)  # I_x(1, 1) = x
    0.3
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The fraction converges fast only on this side; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom.

    >>> round(student_t_two_sided_p(1.0, 1), 12)  # Cauchy: exactly 1/2
    0.5
    """
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def _differences(baseline: Sequence[float], candidate: Sequence[float]) -> list[float]:
    if len(baseline) != len(candidate):
        raise ValueError("paired tests need one baseline and one candidate value per query")
    return [c - b for b, c in zip(baseline, candidate, strict=True)]


def paired_t_test(baseline: Sequence[float], candidate: Sequence[float]) -> TestResult:
    """Two-sided paired t-test of candidate - baseline."""
    diffs = _differences(baseline, candidate)
    n = len(diffs)
    if n < 2:
        return TestResult("t-test", None, None)
    mean = math.fsum(diffs) / n
    variance = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    if variance == 0.0:
        # Every query moved by the same amount: no spread to test against.
        return TestResult("t-test", 1.0 if mean == 0.0 else 0.0, 0.0 if mean == 0.0 else None)
    t = mean / math.sqrt(variance / n)
    return TestResult("t-test", student_t_two_sided_p(t, n - 1), t)


def _subset_sum_tables(diffs: list[float], width: int = 8) -> list[list[float]]:
    """Per block of ``width`` diffs, the sum of every subset (indexed by bitmask)."""
    tables = []
    for start in range(0, len(diffs), width):
        table = [0.0]
        for d in diffs[start : start + width]:
            table += [s + d for s in table]
        tables.append(table)
    return tables


def paired_randomization_test(
    baseline: Sequence[float],
    candidate: Sequence[float],
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> TestResult:
    """Two-sided sign-flip randomization test of the mean difference."""
    diffs = _differences(baseline, candidate)
    n = len(diffs)
    if n < 2:
        return TestResult("randomization", None, None)
    total = math.fsum(diffs)
    observed = abs(total)
    # Sums of the same numbers in another order differ in the last bits.
    tolerance = 1e-12 * max(1.0, math.fsum(abs(d) for d in diffs))
    tables = _subset_sum_tables(diffs)

    def signed_sum(bits: int) -> float:
        # Set bits keep their sign, clear bits flip: sum = 2 * kept - total.
        kept = 0.0
        for block, table in enumerate(tables):
            kept += table[(bits >> (8 * block)) & 0xFF]
        return 2.0 * kept - total

    if n <= EXACT_RANDOMIZATION_MAX_QUERIES:
        extreme = sum(1 for bits in range(1 << n) if abs(signed_sum(bits)) >= observed - tolerance)
        p = extreme / (1 << n)
    else:
        rng = random.Random(seed)
        extreme = sum(
            1
            for _ in range(permutations)
            if abs(signed_sum(rng.getrandbits(n))) >= observed - tolerance
        )
        p = (extreme + 1) / (permutations + 1)
    return TestResult("randomization", p, total / n)


def run_test(
    name: str, baseline: Sequence[float], candidate: Sequence[float], seed: int = DEFAULT_SEED
) -> TestResult:
    if name == "t-test":
        return paired_t_test(baseline, candidate)
    if name == "randomization":
        return paired_randomization_test(baseline, candidate, seed=seed)
    raise ValueError(
        f"unknown significance test {name!r}; choose from {', '.join(SIGNIFICANCE_TESTS)}"
    )
