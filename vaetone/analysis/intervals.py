"""Instrument-level bootstrap intervals and paired comparisons (chapters 03-06).

Notes of one instrument are not independent draws: they share a source sample, a register
and a timbre. Every interval of the book therefore resamples *instruments* (the clusters)
with replacement and keeps all the notes of each drawn instrument (the cluster bootstrap),
then takes the percentile interval of the statistic. Paired comparisons resample the
per-note differences of two models on the same notes in the same way.

Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone.errors import ConfigError

MIN_GROUPS = 3
"""Fewest instruments an interval is computed from; fewer raise :class:`ConfigError`."""
BOOTSTRAP_RANGE = (100, 1_000_000)
"""Allowed numbers of bootstrap resamples (inclusive)."""
LEVEL = 0.95
"""Coverage of every interval of the book."""


@dataclass(frozen=True)
class Interval:
    """A statistic with its instrument-level bootstrap interval.

    Attributes:
        estimate: the statistic on all notes; low, high: the percentile interval's ends;
        n_notes, n_groups: notes and instruments it rests on; level: the coverage (0.95).
    """

    estimate: float
    low: float
    high: float
    n_notes: int
    n_groups: int
    level: float = LEVEL

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (e.g. a difference significantly away from 0)."""
        return bool(value < self.low or value > self.high)

    def text(self, digits: int = 2, unit: str = "", sign: bool = False) -> str:
        """The interval in words, e.g. "4.52 dB (95 % interval 4.31 to 4.70)"; ``sign`` writes "+" too (a cost).

        Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics.
        """
        u = f" {unit}" if unit else ""
        return (
            f"{self.estimate:{'+' if sign else ''}.{digits}f}{u} ({round(100 * self.level)} % interval "
            f"{self.low:.{digits}f} to {self.high:.{digits}f})"
        )

    def as_dict(self, prefix: str = "") -> dict:
        """The fields as ``{prefix + "estimate": ..., prefix + "low": ..., ...}`` (for tables and findings)."""
        names = ("estimate", "low", "high", "n_notes", "n_groups")
        return {f"{prefix}{n}": getattr(self, n) for n in names}


def check_bootstrap(n_boot: int, level: float = LEVEL) -> None:
    """Raise :class:`ConfigError` unless ``n_boot`` is within :data:`BOOTSTRAP_RANGE` and 0 < level < 1."""
    lo, hi = BOOTSTRAP_RANGE
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not lo <= n_boot <= hi:
        raise ConfigError(f"bootstrap_n={n_boot!r} must be an integer from {lo} to {hi}; set it with -p bootstrap_n")
    if not (isinstance(level, float) and 0.0 < level < 1.0):
        raise ConfigError(f"interval level={level!r} must be a number strictly between 0 and 1")


def count_groups(values, groups) -> tuple[int, int]:
    """The notes with a value and the instruments they come from, as :func:`bootstrap` counts them.

    Args:
        values: (n,) per-note values, or (n, c) (a row counts when all its columns are finite);
        groups: (n,) the instrument of each note.
    Returns:
        (n_notes, n_instruments). Fewer than :data:`MIN_GROUPS` instruments: no interval.
    Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v) if v.ndim == 1 else np.isfinite(v).all(axis=1)
    return int(finite.sum()), int(pd.unique(np.asarray(groups)[finite]).size)


def group_codes(values: np.ndarray, groups, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite values and their group codes; raise when fewer than :data:`MIN_GROUPS` groups remain."""
    if groups is None:
        raise ConfigError(f"{where}: an instrument-level interval needs the instrument of every note (groups=None)")
    labels = np.asarray(groups)
    if labels.shape[0] != values.shape[0]:
        raise ConfigError(f"{where}: {values.shape[0]} values but {labels.shape[0]} group labels")
    keep = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    values, labels = values[keep], labels[keep]
    codes, uniques = pd.factorize(labels, sort=True)
    if len(uniques) < MIN_GROUPS:
        raise ConfigError(
            f"{where}: the notes come from {len(uniques)} instrument(s) with a finite value; an instrument-level "
            f"interval needs at least {MIN_GROUPS}. Use more instruments (raise max_instruments or test_fraction) "
            "or more scored notes (n_eval_audio)"
        )
    return values, codes


def draw_counts(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_groups) counts: how often each instrument is drawn in each resample."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.zeros((n_boot, n_groups), dtype=np.int64)
    np.add.at(counts, (np.arange(n_boot)[:, None], picks), 1)
    return counts


def bootstrap(
    values,
    groups,
    statistic: str | Callable[[np.ndarray], float] = "mean",
    n_boot: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
    where: str = "interval",
) -> Interval:
    """A statistic over notes with its instrument-level (cluster) bootstrap percentile interval.

    Args:
        values: (n,) per-note values (NaN notes are left out first).
        groups: (n,) the instrument of each note (any hashable labels).
        statistic: "mean" (fast, exact weighting), or a function of a 1-d array → float
            (e.g. ``np.median``, :func:`gross_error_rate`).
        n_boot: resamples (:data:`BOOTSTRAP_RANGE`); level: coverage; seed: of the resampling.
        where: what is measured, for error messages (e.g. "LSD of the VAE").
    Returns:
        :class:`Interval` (estimate on all finite notes). Raises ConfigError for fewer than
        :data:`MIN_GROUPS` instruments or a bad ``n_boot``.
    Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics.
    """
    check_bootstrap(n_boot, level)
    x, codes = group_codes(np.asarray(values, dtype=np.float64), groups, where)
    n_groups = int(codes.max()) + 1
    counts = draw_counts(n_groups, n_boot, seed)
    if statistic == "mean":
        sums, sizes = np.bincount(codes, x, n_groups), np.bincount(codes, minlength=n_groups)
        stats = (counts @ sums) / (counts @ sizes)
        estimate = float(x.mean())
    else:
        fn = statistic if callable(statistic) else getattr(np, str(statistic))
        members = [x[codes == g] for g in range(n_groups)]
        stats = np.array([fn(np.concatenate([members[g] for g in np.repeat(np.arange(n_groups), c)])) for c in counts])
        estimate = float(fn(x))
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(low), float(high), int(len(x)), n_groups, level)


def paired_difference(
    a, b, groups, n_boot: int = 1000, level: float = LEVEL, seed: int = 0, where: str = ""
) -> Interval:
    """Mean of the per-note differences ``a - b`` of two models on the same notes, with its interval.

    Args:
        a, b: (n,) per-note values of two models, aligned; groups: (n,) the instrument of each note.
        n_boot, level, seed: as :func:`bootstrap`; where: the comparison, for error messages.
    Returns:
        :class:`Interval` of the mean difference (notes where either side is NaN are left out).
    Chapter: 03_training.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError(f"paired difference {where}: the two sides have {a.shape} and {b.shape} values")
    return bootstrap(a - b, groups, "mean", n_boot, level, seed, where or "paired difference")


def gross_error_rate(cents, threshold: float = 50.0) -> float:
    """Share of notes whose |pitch error| exceeds ``threshold`` cents (NaN notes left out).

    Args: cents: (n,) pitch errors in cents; threshold: cents. Returns: a share in [0, 1]
    (NaN when no note has a value). Chapter: 03_training.
    """
    c = np.asarray(cents, dtype=np.float64)
    c = c[np.isfinite(c)]
    return float(np.mean(np.abs(c) > threshold)) if len(c) else math.nan


def iqr(values) -> float:
    """Interquartile range (75th minus 25th percentile) of the finite values. Chapter: 03_training."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.subtract(*np.quantile(v, [0.75, 0.25]))) if len(v) else math.nan


def significance_phrase(interval: Interval, unit: str = "", digits: int = 2, larger: str = "higher") -> str:
    """A paired difference in words, with its interval and whether it excludes 0.

    E.g. "0.12 dB higher (95 % interval 0.03 to 0.21; the interval excludes 0)" or
    "0.05 dB lower (95 % interval -0.20 to 0.10; not significant: the interval contains 0)".

    Args:
        interval: from :func:`paired_difference`; unit: its unit; digits: decimals;
        larger: the word for a positive difference ("lower" when lower is the sign).
    Returns:
        The phrase. Chapters: 03_training, 05_ablation.
    """
    smaller = {"higher": "lower", "lower": "higher", "larger": "smaller", "smaller": "larger"}.get(larger, "less")
    u = f" {unit}" if unit else ""
    word = larger if interval.estimate > 0 else smaller
    size = abs(interval.estimate)
    head = f"{size:.{digits}f}{u} {word}" if round(size, digits) else f"the same to within {0.5 * 10**-digits:g}{u}"
    verdict = "the interval excludes 0" if interval.excludes(0.0) else "not significant: the interval contains 0"
    return (
        f"{head} ({round(100 * interval.level)} % interval {interval.low:.{digits}f} to "
        f"{interval.high:.{digits}f}{u}; {verdict})"
    )
