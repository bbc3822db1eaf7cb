"""Ranking the dimensions by the three views, and the whole analysis of one decoder.

Chapters: 04_sensitivity, 06_statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone.analysis.decoding import Decoder, Describe
from vaetone.analysis.sensitivity.jacobian import jacobian_norms
from vaetone.analysis.sensitivity.labels import dimension_labels, sobol_labels
from vaetone.analysis.sensitivity.oat import (
    Sweeps,
    anchor_points,
    net_change,
    one_at_a_time,
    sensitivity_matrix,
    sweep_grid,
)
from vaetone.analysis.sensitivity.sobol import sobol_indices
from vaetone.config import Config
from vaetone.errors import VaetoneError

# --------------------------------------------------------------------------- summary


def rank_dimensions(
    sweeps: Sweeps | None = None,
    jacobian: pd.DataFrame | None = None,
    sobol: pd.DataFrame | None = None,
    spread: pd.Series | None = None,
) -> pd.DataFrame:
    """Rank the dimensions by each available view of sensitivity, and label them by their net change.

    Args:
        sweeps: :func:`one_at_a_time` result → ``oat_logmel`` (overall change) and
            ``oat_descriptors`` (mean slope_norm over descriptors: influence, never a label),
            and the labels of :func:`~vaetone.analysis.sensitivity.labels.dimension_labels`.
        jacobian: :func:`jacobian_norms` result → ``jacobian`` (overall RMS).
        sobol: :func:`sobol_indices` result → ``sobol_ST`` (mean total index over descriptors)
            and ``sobol_label`` (:func:`~vaetone.analysis.sensitivity.labels.sobol_labels`).
        spread: the descriptors' spread over real notes (:func:`~.oat.descriptor_spread`), the unit of
            the net changes the labels compare; default: their standard deviation over all
            sweep outputs (``net_norm``).
    Returns:
        DataFrame indexed by dim, sorted by ``mean_rank`` (1 = most influential): the scores
        above, ``rank_<score>`` for each, ``mean_rank`` (the mean of the available ranks: four
        with all three arguments, two of them from the sweeps), with sweeps the columns of
        ``dimension_labels`` (label, label_descriptor, label_change, label_runner_up, label_rho),
        with Sobol indices ``sobol_label``. Chapters: 04_sensitivity, 06_statistics.
    """
    scores, labels = {}, []
    if sweeps is not None:
        scores["oat_logmel"] = sweeps.logmel.query("scope == 'all'").set_index("dim")["change"]
        scores["oat_descriptors"] = sensitivity_matrix(sweeps).mean(axis=1)
        change = sensitivity_matrix(sweeps, "net_norm") if spread is None else net_change(sweeps, spread)
        labels.append(dimension_labels(change, sensitivity_matrix(sweeps, "rho")))
    if jacobian is not None:
        scores["jacobian"] = jacobian.query("scope == 'all'").set_index("dim")["jacobian_rms"]
    if sobol is not None:
        st = sobol.pivot(index="dim", columns="descriptor", values="ST")
        scores["sobol_ST"] = st.mean(axis=1)
        labels.append(sobol_labels(sobol).to_frame())
    if not scores:
        raise VaetoneError("rank_dimensions needs at least one of sweeps, jacobian, sobol")
    table = pd.DataFrame(scores)
    for name in scores:
        table[f"rank_{name}"] = table[name].rank(ascending=False, method="min")
    table["mean_rank"] = table[[f"rank_{s}" for s in scores]].mean(axis=1)
    table = table.join(labels) if labels else table
    table.index.name = "dim"
    return table.sort_values(["mean_rank"] + list(scores)[:1], ascending=[True, False])


def top_descriptor(matrix: pd.DataFrame) -> dict[int, str]:
    """The column of each row's largest value, ``{dim: descriptor}``; rows that are all NaN are left out.

    A plain arg-max, with no test of dominance or direction: dimension labels come from
    :func:`~vaetone.analysis.sensitivity.labels.dimension_labels` instead.

    Args:
        matrix: dims × descriptors, e.g. :func:`sensitivity_matrix`, :func:`normalised_moves` or
            :func:`vaetone.analysis.ablation.ablation_descriptor_effects`.
    Returns:
        {dim: name of the descriptor with the largest value}. Chapters: 04_sensitivity, 05_ablation.
    """
    return {int(d): str(row.idxmax()) for d, row in matrix.iterrows() if row.notna().any()}


@dataclass
class Analysis:
    """All three views of one decoder (:func:`analysis`).

    Attributes:
        anchors: (a, D) anchor latents; rows: (a,) their rows of mu (-1: the prior mean).
        grid: (g,) sweep values.
        sweeps: :func:`one_at_a_time` result.
        jacobian: :func:`jacobian_norms` result at the anchors.
        sobol: :func:`sobol_indices` result, or None.
        ranking: :func:`rank_dimensions` of the views, sorted by mean rank.
    """

    anchors: torch.Tensor
    rows: np.ndarray
    grid: torch.Tensor
    sweeps: Sweeps
    jacobian: pd.DataFrame
    sobol: pd.DataFrame | None
    ranking: pd.DataFrame


def analysis(
    decode: Decoder,
    mu,
    cfg: Config,
    seed: int | None = None,
    sobol: bool = True,
    describe: Describe | None = None,
    spread: pd.Series | None = None,
) -> Analysis:
    """The sensitivity analysis of chapter 04 in one call: anchors → sweeps → Jacobian → Sobol → ranking.

    Args:
        decode: latent (n, D) → dB output (:func:`db_decoder`).
        mu: (n, D) posterior means the anchors are chosen from (``cfg.n_anchors`` of them, plus
            the prior mean).
        cfg: gives ``n_anchors``, ``sweep_sigma``, ``sweep_steps``, ``sobol_n`` and the layout.
        seed: seed of the anchor choice and of the Sobol sample (default ``cfg.seed``).
        sobol: include Sobol indices (the slowest part).
        describe: default :func:`default_describe`.
        spread: the descriptors' spread over real notes, the unit of the labels' net changes
            (see :func:`rank_dimensions`).
    Returns:
        :class:`Analysis`. Chapter: 06_statistics (ground-truth check), and per seed through
        :func:`vaetone.analysis.seeds.sensitivity_per_run` (chapter 04).
    """
    seed = cfg.seed if seed is None else seed
    anchors, rows = anchor_points(mu, cfg.n_anchors, seed=seed)
    grid = sweep_grid(cfg.sweep_sigma, cfg.sweep_steps)
    sweeps = one_at_a_time(decode, anchors, grid, cfg, describe, rows=rows)
    jac = jacobian_norms(decode, anchors, cfg)
    sob = sobol_indices(decode, anchors.shape[1], cfg, describe, seed=seed) if sobol else None
    return Analysis(anchors, rows, grid, sweeps, jac, sob, rank_dimensions(sweeps, jac, sob, spread))
