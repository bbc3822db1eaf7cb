"""Figures of chapter 08: recovery of the factors by each method, and the β regimes.

Every function returns the matplotlib Figure; none computes results (they draw tables of
:class:`vaetone.analysis.regimes.RegimesResult`). Text is 9 pt or more at the display size.

Chapter: 08_validity.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vaetone.analysis.regimes import recovery_columns
from vaetone.analysis.regimes_findings import METHOD_NAMES
from vaetone.book import style
from vaetone.book.style import MAX_WIDTH_IN, check_figure

style.use()

FONT = 10
"""Font size (pt) of the labels; figures are drawn at the width of the book's column (8 inches)."""


def recovery_bars(recovery: pd.DataFrame, title: str):
    """Grouped bars of recovery (share of factors whose carrier a method names) per method and model.

    Args:
        recovery: indexed by (model, method), columns mean, low, high, chance
            (:func:`vaetone.analysis.recovery.recovery_table`).
        title: the figure's title.
    Returns:
        Figure: one group of bars per method, one bar per model, the interval over seeds as an
        error bar and the chance level as a dashed line. Chapter: 08_validity.
    """
    models = list(dict.fromkeys(recovery.index.get_level_values("model")))
    methods = list(dict.fromkeys(recovery.index.get_level_values("method")))
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.8))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        rows = recovery.xs(model, level="model").reindex(methods)
        x = np.arange(len(methods)) + (k - (len(models) - 1) / 2) * width
        err = np.vstack([rows["mean"] - rows["low"], rows["high"] - rows["mean"]]).clip(min=0)
        ax.bar(x, rows["mean"], width, yerr=err, capsize=3, label=model)
    ax.axhline(float(recovery["chance"].median()), color="k", ls="--", lw=1, label="chance (permutation null)")
    names = [style.wrap(METHOD_NAMES.get(m, m), (MAX_WIDTH_IN - 1) / len(methods)) for m in methods]
    ax.set_xticks(np.arange(len(methods)), names, fontsize=FONT)
    ax.set_ylabel("factors recovered (share)", fontsize=FONT)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 1, ncols=2, loc="upper right")
    return check_figure(fig)


def _beta_axis(ax, curves: pd.DataFrame) -> None:
    """A log β axis with the swept values as ticks (β = 0, the autoencoder, is drawn at the far left)."""
    ax.set_xscale("log")
    xs = _xs(curves)
    ax.set_xticks(xs, [("AE" if b == 0 else f"{b:g}") for b in curves.index], fontsize=FONT)
    ax.minorticks_off()
    ax.set_xlabel("β (AE: autoencoder, β = 0)", fontsize=FONT)


def _xs(curves: pd.DataFrame) -> np.ndarray:
    """Positions on the log axis: each β, and a quarter of the smallest β > 0 for the autoencoder."""
    betas = curves.index.to_numpy(dtype=float)
    low = betas[betas > 0].min()
    return np.where(betas > 0, betas, low / 4)


def _line(ax, curves: pd.DataFrame, column: str, label: str, **kw) -> None:
    """One score against β with its range over seeds as a band."""
    xs = _xs(curves)
    ax.plot(xs, curves[column], marker="o", label=label, **kw)
    if f"{column}_low" in curves:
        ax.fill_between(xs, curves[f"{column}_low"], curves[f"{column}_high"], alpha=0.2)


def beta_curves(curves: pd.DataFrame, kl_profile: pd.DataFrame, title: str, references: pd.DataFrame | None = None):
    """The β regimes in six panels: reconstruction, active units, KL profile, MIG/DCI/SAP, recovery, seed agreement.

    Args:
        curves: per β (index, 0 = autoencoder): medians and ranges over seeds (RegimesResult "curves").
        kl_profile: β × rank KL (nats) of the k-th most informative dimension.
        title: the figure's title.
        references: the ceiling and floors of the scores (synthetic source), drawn as lines; None on
            the data source, where the panels of scores against known factors are left out.
    Returns:
        Figure, 8 in wide: panels (a)-(f) in three rows of two (four panels in two rows without references).
        Chapter: 08_validity.
    """
    truth = references is not None
    fig, axes = plt.subplots(3 if truth else 2, 2, figsize=(MAX_WIDTH_IN, 9.6 if truth else 6.6))
    axes = axes.ravel()
    _line(axes[0], curves, "valid_mse", "validation MSE")
    axes[0].set_ylabel("reconstruction MSE\n(normalised log-mel units²)", fontsize=FONT)
    _line(axes[1], curves, "active_units", "active units")
    axes[1].set_ylabel("active units (variance of μ > 0.01)", fontsize=FONT)
    axes[1].set_ylim(bottom=0)
    for beta, row in kl_profile.iterrows():
        axes[2].plot(np.arange(1, len(row) + 1), row.to_numpy(), marker=".", label="AE" if beta == 0 else f"β={beta:g}")
    axes[2].set_xlabel("dimension, by KL (most informative first)", fontsize=FONT)
    axes[2].set_ylabel("KL to the prior (nats)", fontsize=FONT)
    axes[2].legend(fontsize=FONT - 1)
    agree = axes[5] if truth else axes[3]
    for column, label in (("matched_r", "matched axes |r|"), ("subspace_r2", "subspace R²"), ("cca_mean", "mean CCA")):
        if column in curves:
            agree.plot(_xs(curves), curves[column], marker="o", label=label)
    agree.set_ylabel("agreement between seeds", fontsize=FONT)
    agree.set_ylim(0, 1.05)
    agree.legend(fontsize=FONT - 1)
    if truth:
        _score_panel(axes[3], curves, references)
        _recovery_panel(axes[4], curves)
    for k, ax in enumerate(axes):
        if ax is not axes[2]:
            _beta_axis(ax, curves)
        ax.tick_params(labelsize=FONT)
        ax.set_title(f"({'abcdef'[k]})", loc="left", fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 2)
    return check_figure(fig)


def _score_panel(ax, curves: pd.DataFrame, references: pd.DataFrame) -> None:
    """MIG, DCI disentanglement and SAP against β, with the perfect code's values as dotted lines."""
    for column, label in (("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"), ("sap", "SAP")):
        _line(ax, curves, column, label)
        color = ax.get_lines()[-1].get_color()
        ax.axhline(float(references.loc["perfect", column]), color=color, ls=":", lw=1)
    ax.set_ylabel("score (dotted: perfect code)", fontsize=FONT)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=FONT - 1)


def _recovery_panel(ax, curves: pd.DataFrame) -> None:
    """Recovery of each method against β (median over seeds, range as a band)."""
    for column in recovery_columns(curves):
        method = column.removeprefix("recovery_")
        _line(ax, curves, column, METHOD_NAMES.get(method, method))
    ax.set_ylabel("factors recovered (share)", fontsize=FONT)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=FONT - 1)
