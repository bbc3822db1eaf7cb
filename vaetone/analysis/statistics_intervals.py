"""Instrument-level bootstrap intervals of the statistics chapter 06 quotes as headline numbers.

Each quoted number that is computed over notes (the total KL per note, the correlation of the
most correlated pair of dimensions, the rank correlations with pitch and velocity, the η² of
family and source) gets a 95 %
percentile interval from :func:`vaetone.analysis.intervals.bootstrap`: instruments are
resampled with all their notes, so the interval reflects how much the number depends on
which instruments happen to be in the test split. Where an interval cannot be computed
(fewer than 3 instruments, or an undefined statistic), it reads "undefined: <reason>".

Chapter: 06_statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaetone.analysis import intervals
from vaetone.analysis.statistics import kl_terms

KEYS = ("kl_total", "max_corr", "pitch_rho", "velocity_rho", "family_eta", "source_eta")
"""The headline statistics with an interval, in the order of the intervals table."""


def pearson(a: np.ndarray) -> float:
    """Pearson r between the two columns of a (m, 2) array (NaN for a constant column). Chapter: 06_statistics."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])


def abs_corr(a: np.ndarray) -> float:
    """|Pearson r| between the two columns of a (m, 2) array. Chapter: 06_statistics."""
    return abs(pearson(a))


def spearman(a: np.ndarray) -> float:
    """Spearman ρ between the two columns of a (m, 2) array (NaN for a constant column). Chapter: 06_statistics."""
    from scipy.stats import rankdata

    return pearson(rankdata(a, axis=0))


def eta(a: np.ndarray) -> float:
    """η² of column 0 of a (m, 2) array between the integer groups in column 1 (NaN for a constant column).

    Chapter: 06_statistics.
    """
    x, codes = a[:, 0], a[:, 1].astype(int)
    sizes = np.bincount(codes)
    means = np.bincount(codes, x) / np.maximum(sizes, 1)
    total = ((x - x.mean()) ** 2).sum()
    return float((sizes * (means - x.mean()) ** 2).sum() / total) if total > 0 else float("nan")


def interval_row(label: str, values, groups, statistic, n_boot: int, seed: int, digits: int = 2) -> dict:
    """One row of the intervals table: the statistic, its bootstrap interval, and the interval in words.

    Args:
        label: what is measured ("Spearman ρ of z10 with pitch"); values: (n,) or (n, m) per note;
        groups: (n,) instruments; statistic: "mean" or a function of the values' rows;
        n_boot, seed: of the bootstrap; digits: decimals of the text.
    Returns:
        {"quantity", "estimate", "low", "high", "n_notes", "n_instruments", "interval"}: the
        interval as "6.10 to 6.90", or "undefined: <reason>" with low = high = NaN.
    Chapter: 06_statistics.
    """
    values = np.asarray(values, dtype=float)
    n_notes, k = intervals.count_groups(values, groups)
    row = {"quantity": label, "n_notes": n_notes, "n_instruments": k}
    if k < intervals.MIN_GROUPS:
        reason = (
            f"undefined: the notes come from {k} instrument(s); an instrument-level interval needs at least "
            f"{intervals.MIN_GROUPS} (raise max_instruments or test_fraction)"
        )
        return row | {"estimate": np.nan, "low": np.nan, "high": np.nan, "interval": reason}
    with np.errstate(invalid="ignore", divide="ignore"):
        iv = intervals.bootstrap(values, groups, statistic, n_boot=n_boot, seed=seed, where=label)
    if not np.isfinite([iv.estimate, iv.low, iv.high]).all():
        reason = f"undefined: {label} is not defined on every resample of instruments (a constant dimension?)"
        return row | {"estimate": iv.estimate, "low": np.nan, "high": np.nan, "interval": reason}
    return row | {
        "estimate": iv.estimate,
        "low": iv.low,
        "high": iv.high,
        "n_notes": iv.n_notes,
        "n_instruments": iv.n_groups,
        "interval": f"{iv.low:.{digits}f} to {iv.high:.{digits}f}",
    }


def _dim(text: str) -> int:
    """The dimension of a quoted "z10"."""
    return int(str(text).removeprefix("z"))


def headline_intervals(mu, std, notes: pd.DataFrame, findings: dict, n_boot: int = 1000, seed: int = 0):
    """Bootstrap intervals of the headline statistics that chapter 06 quotes, over instruments.

    Args:
        mu, std: (n, D) posterior means and standard deviations of the notes.
        notes: (n rows) family, source, instrument, pitch, velocity
            (:func:`~vaetone.analysis.statistics_stage.note_table`).
        findings: the point findings (max_corr_pair, pitch_dim, velocity_dim, family_dim, source_dim).
        n_boot, seed: resamples and seed of the bootstrap.
    Returns:
        (DataFrame indexed by key (kl_total, max_corr, pitch_rho, velocity_rho,
        family_eta, source_eta): quantity, estimate, low, high, n_notes, n_instruments, interval;
        findings {"<key>_ci": "6.52 (95 % interval 6.10 to 6.90)" or "undefined: ...",
        "<key>_low", "<key>_high": floats, NaN where undefined}). Chapter: 06_statistics.
    """
    mu, groups = np.asarray(mu, dtype=float), notes["instrument"].to_numpy()

    def col(name: str) -> np.ndarray:
        return notes[name].to_numpy(dtype=float)

    def codes(name: str) -> np.ndarray:
        return pd.factorize(notes[name])[0].astype(float)

    plan = {"kl_total": ("total KL to the prior (nats per note)", kl_terms(mu, std).sum(1), "mean")}
    if findings["max_corr_pair"] != "none":
        i, j = (_dim(z) for z in findings["max_corr_pair"].split(" and "))
        plan["max_corr"] = (f"|r| between {findings['max_corr_pair']}", mu[:, [i, j]], abs_corr)
    for name in ("pitch", "velocity"):
        d = findings[f"{name}_dim"]
        plan[f"{name}_rho"] = (f"Spearman ρ of {d} with {name}", np.column_stack([mu[:, _dim(d)], col(name)]), spearman)
    for name in ("family", "source"):
        d = findings[f"{name}_dim"]
        plan[f"{name}_eta"] = (f"η² of {d} with {name}", np.column_stack([mu[:, _dim(d)], codes(name)]), eta)
    rows = {k: interval_row(label, v, groups, fn, n_boot, seed) for k, (label, v, fn) in plan.items()}
    if "max_corr" not in rows:
        reason = "undefined: no pair of dimensions has a defined correlation"
        rows["max_corr"] = rows["kl_total"] | {"quantity": "|r| of the strongest pair", "interval": reason}
        rows["max_corr"] |= {"estimate": np.nan, "low": np.nan, "high": np.nan}
    table = pd.DataFrame.from_dict(rows, orient="index").loc[list(KEYS)].rename_axis(index="key")
    table = table[["quantity", "estimate", "low", "high", "n_notes", "n_instruments", "interval"]]
    out = {}
    for key, r in table.iterrows():
        defined = not str(r["interval"]).startswith("undefined")
        level = f"{round(100 * intervals.LEVEL)} % interval"
        text = f"{r['estimate']:.2f} ({level} {r['interval']})" if defined else r["interval"]
        out |= {f"{key}_ci": text, f"{key}_low": float(r["low"]), f"{key}_high": float(r["high"])}
    return table, out
