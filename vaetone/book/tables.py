"""Tables of the book as text: estimates with their intervals, and paired differences, never NaN.

Every function takes a stage result's table and returns a DataFrame of strings for ``display``;
none of them computes results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def number(x: float) -> str:
    """A number as the tables write it: three significant digits, whole numbers from 100 on (2756, not 2.76e+03)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _with_interval(estimate: float, low: float, high: float, fmt=number) -> str:
    """Text "4.52 [4.31, 4.7]"; "4.52 [interval undefined]" without ends; "not measured" without an estimate."""
    if not np.isfinite(estimate):
        return "not measured"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{fmt(estimate)} [interval undefined]"
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def _counts(notes: pd.Series, instruments: pd.Series) -> str:
    """ "64 / 15" (notes / instruments), or "60-64 / 15" when the rows differ."""

    def span(v: pd.Series) -> str:
        lo, hi = int(v.min()), int(v.max())
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    return f"{span(notes)} / {span(instruments)}"


def interval_table(comparison: pd.DataFrame, labels: dict[str, str], fmt=number) -> pd.DataFrame:
    """A comparison of models as text "estimate [low, high]", one row per metric and one column per model.

    Args:
        comparison: rows = models; for each metric ``m`` the columns ``m``, ``m_low``, ``m_high``,
            ``m_n_notes``, ``m_n_instruments`` (``vaetone.analysis.scores.comparison``).
        labels: {metric: row label}, in the order shown; fmt: how each number is written (:func:`number`).
    Returns:
        A DataFrame of strings indexed by ``metric``, one column per model and a last column
        "n (notes / instruments)"; an interval that could not be computed reads "[interval
        undefined]", never NaN. Chapter: 03_training.
    """
    rows = {}
    for m, label in labels.items():
        cells = {model: _with_interval(r[m], r[f"{m}_low"], r[f"{m}_high"], fmt) for model, r in comparison.iterrows()}
        rows[label] = cells | {
            "n (notes / instruments)": _counts(comparison[f"{m}_n_notes"], comparison[f"{m}_n_instruments"])
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")


def paired_table(paired: pd.DataFrame, labels: dict[str, str], fmt=number) -> pd.DataFrame:
    """Paired differences of models as text: "difference [low, high]", its n and whether it is significant.

    Args:
        paired: ``vaetone.analysis.scores.paired`` (columns model_a, model_b, metric, difference,
            low, high, n_notes, n_instruments, verdict); labels: {metric: label};
        fmt: how each number is written (:func:`number`).
    Returns:
        A DataFrame of strings indexed by (comparison "A − B", metric label), columns "mean
        difference [95 % interval]", "n (notes / instruments)" and "verdict". Chapter: 03_training.
    """
    if paired.empty:
        return pd.DataFrame(columns=["mean difference [95 % interval]", "n (notes / instruments)", "verdict"])
    rows = {
        (f"{r.model_a} − {r.model_b}", labels.get(r.metric, r.metric)): {
            "mean difference [95 % interval]": _with_interval(r.difference, r.low, r.high, fmt),
            "n (notes / instruments)": f"{r.n_notes} / {r.n_instruments}",
            "verdict": r.verdict,
        }
        for r in paired.itertuples()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["comparison", "metric"])


def readable(table: pd.DataFrame, digits: int = 3, fill="undefined") -> pd.DataFrame:
    """A result table rounded for display, with missing values in words ("undefined"), never NaN.

    Args:
        table: a stage result's table; digits: decimals kept;
        fill: the word for a missing value, or {column: word}.
    Returns:
        The rounded table as objects, missing values filled. Chapter: 06_statistics.
    """
    return table.round(digits).astype(object).fillna(fill)
