"""Seed agreement as one view: per-pair tables with floors, instrument-level intervals, rank nulls and findings.

The measures themselves are in :mod:`vaetone.analysis.subspace`. The bootstrap of
:func:`seed_intervals` resamples instruments (:mod:`vaetone.analysis.intervals`) and recomputes
every statistic on the resampled notes. It does so from per-instrument sums and sums of outer
products of the two codes, not from the repeated rows: every statistic here (correlations,
canonical correlations, least-squares maps and their R²) depends on the notes only through
these second moments, so a resample costs a few small matrix operations whatever the number
of notes. The canonical correlations of a resample come from its scatter matrix through the
same function as those of real codes (``subspace.cca_from_scatter``), and its matching from a
small pseudo-code with exactly the resample's covariance, passed to ``seeds.match_dimensions``.

Chapter: 08_validity
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from vaetone.analysis import intervals, seeds, subspace_findings
from vaetone.analysis.subspace import (
    _checked_split,
    _codes,
    _ranks,
    _rows,
    _weighted_r2,
    canonical_correlations,
    cca_from_scatter,
    rank_agreement_null,
    stable_directions,
)
from vaetone.errors import ConfigError

STATISTICS = ("matched_r_median", "cca_mean", "subspace_r2")
"""The bootstrapped statistics, in the order of :func:`seed_intervals`' rows."""


def _pair_stats(ref: np.ndarray, other: np.ndarray, tr: np.ndarray, te: np.ndarray) -> dict[str, float]:
    """Median matched |r| and mean CCA on all notes; subspace R² (ref → other) fitted on tr, scored on te."""
    return {
        "matched_r_median": float(np.median(seeds.match_dimensions(ref, other)[2])),
        "cca_mean": float(canonical_correlations(ref, other).mean()),
        "subspace_r2": _weighted_r2(ref, other, tr, te),
    }


def _group_moments(z: np.ndarray, gcode: np.ndarray, rows: np.ndarray, n_groups: int):
    """Per instrument, over ``rows``: note counts (G,), sums (G, k) and sums of outer products (G, k, k)."""
    k = z.shape[1]
    counts, s1, s2 = np.zeros(n_groups), np.zeros((n_groups, k)), np.zeros((n_groups, k, k))
    for g in np.unique(gcode[rows]):
        zg = z[rows[gcode[rows] == g]]
        counts[g], s1[g], s2[g] = len(zg), zg.sum(axis=0), zg.T @ zg
    return counts, s1, s2


def _resampled(moments, draws: np.ndarray):
    """The moments of every resample: counts (B,), sums (B, k), outer sums (B, k, k)."""
    counts, s1, s2 = moments
    k = s1.shape[1]
    return draws @ counts, draws @ s1, (draws @ s2.reshape(len(counts), -1)).reshape(-1, k, k)


def _scatter(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """(B, k, k) centred scatter matrices of the resamples from their moments."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return s2 - s1[:, :, None] * s1[:, None, :] / n[:, None, None]


def _matched_medians(scatter: np.ndarray, d: int) -> np.ndarray:
    """(B,) median matched |r| of each scatter, by ``seeds.match_dimensions`` on a pseudo-code.

    The pseudo-code has rows ±F with FᵀF = scatter, so its correlations are exactly the resample's.
    """
    e, v = np.linalg.eigh((scatter + np.swapaxes(scatter, 1, 2)) / 2)
    f = np.sqrt(np.clip(e, 0.0, None))[:, :, None] * np.swapaxes(v, 1, 2)
    return np.array(
        [np.median(seeds.match_dimensions(np.vstack([y, -y])[:, :d], np.vstack([y, -y])[:, d:])[2]) for y in f]
    )


def _held_out_r2(train, test, d: int) -> np.ndarray:
    """(B,) variance-weighted R² of dims d: from dims :d, fitted on the train moments, scored on the test moments."""
    (nt, s1t, s2t), (ne, s1e, s2e) = train, test
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s1t / np.maximum(nt, 1)[:, None]
        ct = s2t - nt[:, None, None] * m[:, :, None] * m[:, None, :]
        beta = np.linalg.pinv(ct[:, :d, :d]) @ ct[:, :d, d:]
        q = (
            s2e
            - s1e[:, :, None] * m[:, None, :]
            - m[:, :, None] * s1e[:, None, :]
            + ne[:, None, None] * (m[:, :, None] * m[:, None, :])
        )
        qxx, qxy, qyy = q[:, :d, :d], q[:, :d, d:], q[:, d:, d:]
        sse = np.trace(qyy, axis1=1, axis2=2) - 2 * np.einsum("bij,bij->b", beta, qxy)
        sse += np.einsum("bij,bik,bkj->b", beta, qxx, beta)
        sst = np.einsum("bjj->b", s2e[:, d:, d:]) - np.sum(s1e[:, d:] ** 2, axis=1) / ne
        r2 = 1.0 - sse / sst
    return np.where((nt > d + 1) & (ne >= 2) & (sst > 0), r2, np.nan)


def _boot_stats(ref, other, gcode, n_groups, draws, tr, te) -> pd.DataFrame:
    """(B, 3) statistics of :data:`STATISTICS` on every resample (rows of ``draws``)."""
    d = ref.shape[1]
    z = np.hstack([ref, other])
    z = z - z.mean(axis=0)
    scatter = _scatter(*_resampled(_group_moments(z, gcode, np.arange(len(z)), n_groups), draws))
    r2 = _held_out_r2(*(_resampled(_group_moments(z, gcode, r, n_groups), draws) for r in (tr, te)), d)
    return pd.DataFrame(
        {
            "matched_r_median": _matched_medians(scatter, d),
            "cca_mean": cca_from_scatter(scatter, d).mean(axis=1),
            "subspace_r2": r2,
        }
    )


def seed_intervals(
    mus, groups, n_boot: int = 1000, seed: int = 0, level: float = 0.95, train=None, test=None
) -> pd.DataFrame:
    """Instrument-level bootstrap intervals of seed agreement, each other seed against the reference ``mus[0]``.

    Each resample draws instruments with replacement (:mod:`vaetone.analysis.intervals`), keeps
    all notes of each drawn instrument, and recomputes on those notes (see the module
    docstring): the median matched |r| (re-matching the axes), the mean canonical correlation,
    and the subspace R² (reference → seed). With ``train``/``test`` the map is fitted on the
    resampled training notes and scored on the resampled test notes (the estimate equals
    :func:`vaetone.analysis.subspace.subspace_r2`); without them it is the in-sample R² on all
    notes (biased up by about D / n). Resamples without enough training or test notes are left
    out of the percentiles. The statistics are biased at chance level (see
    :func:`vaetone.analysis.subspace.canonical_correlations`) and a resample repeats notes, which
    shifts that bias: for codes that barely agree the percentile interval can miss the estimate;
    compare such codes with the shuffled floor of :func:`seed_agreement` instead.

    Args:
        mus: one (n, D) code per seed, the same notes in the same order; ``mus[0]`` is the reference.
        groups: (n,) the instrument of each note.
        n_boot, level, seed: resamples, coverage, seed (see :func:`vaetone.analysis.intervals.bootstrap`).
        train, test: optional boolean masks / index arrays (n,) for the subspace R².
    Returns:
        DataFrame, one row per (other seed, statistic): seed (index in ``mus``), statistic
        ("matched_r_median" | "cca_mean" | "subspace_r2"), estimate, low, high, n_notes,
        n_instruments. Chapter: 08_validity
    """
    with threadpool_limits(limits=1):  # many small matrices: BLAS threads only add contention
        return _seed_intervals(_codes(mus, "seed_intervals"), groups, n_boot, seed, level, train, test)


def _seed_intervals(codes, groups, n_boot, seed, level, train, test) -> pd.DataFrame:
    """:func:`seed_intervals` on checked codes."""
    intervals.check_bootstrap(n_boot, level)
    n = len(codes[0])
    _, gcode = intervals.group_codes(np.zeros(n), groups, "seed agreement interval")
    n_groups = int(gcode.max()) + 1
    if (train is None) != (test is None):
        raise ConfigError("seed_intervals: give both train and test, or neither")
    tr, te = (np.arange(n),) * 2 if train is None else (_rows(train, n, "train"), _rows(test, n, "test"))
    draws = intervals.draw_counts(n_groups, n_boot, seed).astype(np.float64)
    rows = []
    for s, other in enumerate(codes[1:], start=1):
        full = _pair_stats(codes[0], other, tr, te)
        boot = _boot_stats(codes[0], other, gcode, n_groups, draws, tr, te)
        for name in STATISTICS:
            low, high = np.nanquantile(boot[name].to_numpy(), [(1 - level) / 2, (1 + level) / 2])
            rows.append({"seed": s, "statistic": name, "estimate": full[name], "low": float(low), "high": float(high),
                         "n_notes": n, "n_instruments": n_groups})  # fmt: skip
    return pd.DataFrame(rows)


def _pairs(codes: list[np.ndarray], tr: np.ndarray, te: np.ndarray, seed: int) -> pd.DataFrame:
    """Per other seed: agreement with the reference, and the same against a row-shuffled copy (the floor)."""
    shuffle = np.random.default_rng(seed).permutation(len(codes[0]))
    rows = []
    for s, other in enumerate(codes[1:], start=1):
        row = {"seed": s, **_pair_stats(codes[0], other, tr, te)}
        row["subspace_r2_reverse"] = _weighted_r2(other, codes[0], tr, te)
        floor = _pair_stats(codes[0], other[shuffle], tr, te)
        rows.append(row | {f"{k}_shuffled": v for k, v in floor.items()})
    return pd.DataFrame(rows)


def _rank_table(codes: list[np.ndarray], orders: Sequence, n_null: int, seed: int) -> pd.DataFrame:
    """Rank agreement with the reference per other seed, each seed's ranking put on the reference's dims."""
    if len(orders) != len(codes):
        raise ConfigError(f"seed_agreement: {len(orders)} importance orders for {len(codes)} seeds; give one per seed")
    ref = -_ranks(orders[0], None)
    rows = []
    for s, (code, order) in enumerate(zip(codes[1:], orders[1:]), start=1):
        perm = seeds.match_dimensions(codes[0], code)[0]
        on_ref = -_ranks(order, None)[perm]
        rows.append({"seed": s, **rank_agreement_null(ref, on_ref, n_null, seed + s, scores=True)})
    return pd.DataFrame(rows)


def seed_agreement(
    mus, groups, targets, train, test, orders=None, n_null: int = 1000, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every seed-agreement measure of chapter 08 in one call: tables and the findings the chapter quotes.

    Args:
        mus: one (n, D) code per seed (posterior means of the same notes), ``mus[0]`` the reference.
        groups: (n,) the instrument of each note (for the intervals).
        targets: (n, k) DataFrame of per-note targets for :func:`stable_directions`, or None.
        train, test: boolean masks (n,) or row-index arrays (maps fitted on train, scored on test).
        orders: optional one importance ranking per seed, each in that seed's *own* dims (a
            ``dimension_order`` or per-dim scores); put on the reference's dims by matching.
        n_null: permutations of the rank null; n_boot: bootstrap resamples; seed: of both and of
            the shuffled floor.
    Returns:
        (tables, findings). tables: "pairs" (per other seed: matched_r_median, cca_mean,
        subspace_r2 (reference explains seed), subspace_r2_reverse, and the ``*_shuffled`` floors),
        "directions" (:func:`stable_directions`, when ``targets`` is given), "intervals"
        (:func:`seed_intervals`), "ranks" (:func:`rank_agreement_null` per other seed, when
        ``orders`` is given). findings: see :func:`vaetone.analysis.subspace_findings.findings`.
        Raises ConfigError for fewer than 2 seeds. Chapter: 08_validity
    """
    with threadpool_limits(limits=1):  # many small matrices: BLAS threads only add contention
        return _seed_agreement(
            _codes(mus, "seed_agreement"), groups, targets, train, test, orders, n_null, n_boot, seed
        )


def _seed_agreement(codes, groups, targets, train, test, orders, n_null, n_boot, seed):
    """:func:`seed_agreement` on checked codes."""
    tr, te = _checked_split(codes[0], train, test, "seed_agreement")
    tables = {"pairs": _pairs(codes, tr, te, seed)}
    if targets is not None and len(targets.columns):
        tables["directions"] = stable_directions(codes, targets, tr, te)
    tables["intervals"] = seed_intervals(codes, groups, n_boot, seed, intervals.LEVEL, tr, te)
    if orders is not None:
        tables["ranks"] = _rank_table(codes, orders, n_null, seed)
    return tables, subspace_findings.findings(tables)
