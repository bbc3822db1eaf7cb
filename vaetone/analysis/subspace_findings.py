"""The numbers and phrases chapter 08 quotes from the seed-agreement tables (``subspace_agreement.seed_agreement``).

Chapter: 08_validity
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_STATS = ("matched_r_median", "subspace_r2", "subspace_r2_reverse", "cca_mean")
"""Columns of the "pairs" table summarised over the other seeds."""


def span(values, digits: int = 2) -> str:
    """The range of some values as text, e.g. "0.83–0.99" (one value: "0.91"; none: "n/a").

    Args:
        values: numbers (NaNs left out); digits: decimals.
    Returns:
        str. Chapter: 08_validity
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return "n/a"
    lo, hi = f"{v.min():.{digits}f}", f"{v.max():.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _median(values) -> float:
    """Median of the finite values (NaN if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def findings(tables: dict[str, pd.DataFrame]) -> dict:
    """The findings of the seed-agreement tables.

    Args:
        tables: from :func:`vaetone.analysis.subspace_agreement.seed_agreement` ("pairs", "intervals", and
            optionally "directions", "ranks").
    Returns:
        dict: ``n_seeds``; for each of matched_r_median, subspace_r2, subspace_r2_reverse, cca_mean:
        ``<stat>_median`` over the other seeds (the statistic's own name for the matched |r|:
        ``matched_r_median``), ``<stat>_range`` (text, e.g. "0.83–0.99") and, where bootstrapped,
        ``<stat>_interval_range`` (text, lowest low to highest high); the shuffled floors
        ``<stat>_shuffled_median``; with ranks: ``rank_rho_median``, ``rank_rho_range``,
        ``rank_p_max``, ``rank_chance``, ``rank_null_q95``; with directions, per target ``t``:
        ``direction_r2_median_<t>`` (all seeds), ``direction_cosine_median_<t>`` and
        ``direction_cosine_min_<t>`` (other seeds). Chapter: 08_validity
    """
    pairs = tables["pairs"]
    out: dict = {"n_seeds": int(len(pairs) + 1)}
    boot = tables.get("intervals")
    for stat in PAIR_STATS:
        key = stat if stat.endswith("_median") else f"{stat}_median"
        out[key] = _median(pairs[stat])
        out[f"{stat}_range"] = span(pairs[stat])
        if f"{stat}_shuffled" in pairs:
            out[f"{stat}_shuffled_median"] = _median(pairs[f"{stat}_shuffled"])
        if boot is not None and (boot["statistic"] == stat).any():
            rows = boot[boot["statistic"] == stat]
            out[f"{stat}_interval_range"] = span([rows["low"].min(), rows["high"].max()])
    ranks = tables.get("ranks")
    if ranks is not None and len(ranks):
        out |= {
            "rank_rho_median": _median(ranks["rho"]),
            "rank_rho_range": span(ranks["rho"]),
            "rank_p_max": float(ranks["p_value"].max()),
            "rank_chance": _median(ranks["chance"]),
            "rank_null_q95": _median(ranks["null_q95"]),
        }
    directions = tables.get("directions")
    if directions is not None:
        for target, rows in directions.groupby("target", sort=False):
            others = rows[rows["seed"] != 0]["cosine_to_reference"]
            out[f"direction_r2_median_{target}"] = _median(rows["r2"])
            out[f"direction_cosine_median_{target}"] = _median(others)
            out[f"direction_cosine_min_{target}"] = float(others.min())
    return out
