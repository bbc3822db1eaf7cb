"""Names of latent dimensions: from the net change along the sweeps, and from significant Sobol first-order indices.

A dimension is named after a descriptor only where the evidence singles that descriptor out:

* **Sweeps** (:func:`dimension_labels`): the descriptor whose net change (:func:`~.oat.net_change`,
  in spreads of the descriptor over real notes per unit z) is largest in magnitude names the
  dimension if (1) that change is at least :data:`LABEL_MIN_CHANGE`, (2) it is at least
  :data:`LABEL_RATIO` times the runner-up's, and (3) the change is monotonic: the anchors' mean
  Spearman |ρ| between z and the descriptor is at least :data:`LABEL_MIN_RHO`. A dimension that
  fails (2) or (3) is :data:`MIXED`; one that fails (1) moves no descriptor: :data:`NONE`. The
  mean absolute slope (influence, jitter included) plays no part.
* **Sobol** (:func:`sobol_labels`): the descriptor of the largest first-order index S1 among
  those significantly above zero (S1 − S1_conf > 0, SALib's bootstrap half-width), else
  :data:`INTERACTIONS` when some total index is significantly above zero, else :data:`NONE`.
  A dimension is never named by its total index ST.
* **Across seeds** (:mod:`vaetone.analysis.seeds_stage`): a name that the matched dimensions
  of the other seeds do not share becomes :data:`MIXED`.

:func:`sobol_sums` gives the per-descriptor sums: ΣS1 = 1 for a decoder without interactions,
and the share of the variance due to interactions is 1 − ΣS1 (Saltelli et al. 2008, §1.2.5),
shown clipped to [0, 1] since estimates of S1 can be slightly negative (estimator noise around a
true index of 0).

Chapters: 04_sensitivity, 05_ablation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LABEL_RATIO = 1.5
"""A descriptor names a dimension only if its net change is at least this many times the runner-up's."""
LABEL_MIN_RHO = 0.7
"""... and the change is monotonic: mean Spearman |ρ| over the anchors at least this."""
LABEL_MIN_CHANGE = 0.05
"""... and at least this large (spreads over real notes per unit z; 0.3 spreads over ±3 prior std)."""
MIXED = "mixed"
"""The label of a dimension whose change no single descriptor dominates (or that seeds do not share)."""
NONE = "none"
"""The label of a dimension that moves no descriptor by :data:`LABEL_MIN_CHANGE`."""
INTERACTIONS = "interactions"
"""The Sobol label of a dimension that acts only with others (no first-order index significantly above 0)."""
NOT_NAMES = (MIXED, NONE, INTERACTIONS)
"""Labels that are not descriptor names."""


def dimension_labels(
    change: pd.DataFrame,
    rho: pd.DataFrame,
    ratio: float = LABEL_RATIO,
    min_rho: float = LABEL_MIN_RHO,
    min_change: float = LABEL_MIN_CHANGE,
) -> pd.DataFrame:
    """Label each dimension by the descriptor its sweep changes most, where that descriptor dominates.

    Args:
        change: dims × descriptors net change (:func:`~vaetone.analysis.sensitivity.oat.net_change`,
            signed or not; NaN columns are skipped).
        rho: dims × descriptors mean Spearman ρ of the sweeps (``sensitivity_matrix(sweeps, "rho")``).
        ratio, min_rho, min_change: the rule of the module docstring.
    Returns:
        DataFrame indexed by dim: label (a descriptor, "mixed" or "none"), label_descriptor (the
        descriptor of largest |change|, "" where none is finite), label_change (its signed
        change), label_runner_up (the runner-up's |change| over the largest's, in [0, 1]),
        label_rho (its mean ρ). Chapters: 04_sensitivity, 05_ablation.
    """
    rows = {}
    for dim, row in change.iterrows():
        size = row.abs().dropna().sort_values(ascending=False, kind="stable")
        if size.empty:
            rows[dim] = (NONE, "", 0.0, 0.0, 0.0)
            continue
        name, top = str(size.index[0]), float(size.iloc[0])
        second = float(size.iloc[1]) if len(size) > 1 else 0.0
        r = float(rho.loc[dim, name]) if np.isfinite(rho.loc[dim, name]) else 0.0
        runner_up = second / top if top > 0 else 0.0
        if top < min_change:
            label = NONE
        elif top >= ratio * second and abs(r) >= min_rho:
            label = name
        else:
            label = MIXED
        rows[dim] = (label, name, float(row[name]), runner_up, r)
    columns = ["label", "label_descriptor", "label_change", "label_runner_up", "label_rho"]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame.index.name = "dim"
    return frame


def sobol_labels(sobol: pd.DataFrame) -> pd.Series:
    """Each dimension's Sobol name: the descriptor of its largest significant S1, else "interactions" or "none".

    Args:
        sobol: tidy Sobol indices (descriptor, dim, S1, S1_conf, ST, ST_conf) of
            :func:`~vaetone.analysis.sensitivity.sobol.sobol_indices`.
    Returns:
        Series indexed by dim (see the module docstring). Chapter: 04_sensitivity.
    """
    out = {}
    for dim, part in sobol.groupby("dim", sort=True):
        significant = part[(part["S1"] - part["S1_conf"]) > 0]
        if len(significant):
            out[int(dim)] = str(significant.loc[significant["S1"].idxmax(), "descriptor"])
        else:
            out[int(dim)] = INTERACTIONS if ((part["ST"] - part["ST_conf"]) > 0).any() else NONE
    return pd.Series(out, name="sobol_label", dtype=object).rename_axis("dim")


def sobol_sums(sobol: pd.DataFrame) -> pd.DataFrame:
    """Per descriptor: ΣS1, ΣST over the dimensions, the share of variance due to interactions, and counts.

    Args:
        sobol: tidy Sobol indices (:func:`~vaetone.analysis.sensitivity.sobol.sobol_indices`).
    Returns:
        DataFrame indexed by descriptor (only those with variance, in their order): sum_S1,
        sum_ST, interaction_share (1 − ΣS1 clipped to [0, 1]), negative_S1 (S1 below 0),
        negative_S1_noise (of those, S1 + S1_conf >= 0: within the interval of 0),
        significant_S1 (S1 − S1_conf > 0), n_dims. Chapter: 04_sensitivity.
    """
    rows = {}
    for name, part in sobol.groupby("descriptor", sort=False):
        if part["S1"].isna().all():
            continue
        s1, conf = part["S1"], part["S1_conf"]
        rows[name] = {
            "sum_S1": float(s1.sum()),
            "sum_ST": float(part["ST"].sum()),
            "interaction_share": float(np.clip(1.0 - s1.sum(), 0.0, 1.0)),
            "negative_S1": int((s1 < 0).sum()),
            "negative_S1_noise": int(((s1 < 0) & (s1 + conf >= 0)).sum()),
            "significant_S1": int(((s1 - conf) > 0).sum()),
            "n_dims": int(s1.notna().sum()),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "descriptor"
    return frame
