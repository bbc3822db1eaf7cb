"""Chapter 08's figures: every panel labelled, text legible, the chance and ceiling lines drawn."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vaetone.book import style, validity_plots  # noqa: E402


def _curves() -> pd.DataFrame:
    betas = [0.0, 0.25, 1.0, 4.0]
    frame = pd.DataFrame(index=pd.Index(betas, name="beta"))
    for col, values in {
        "valid_mse": [0.05, 0.06, 0.07, 0.09],
        "active_units": [16, 16, 12, 4],
        "mig": [0.02, 0.05, 0.1, 0.2],
        "dci_disentanglement": [0.1, 0.2, 0.3, 0.4],
        "sap": [0.01, 0.02, 0.05, 0.1],
        "recovery_oat": [0.2, 0.2, 0.4, 0.6],
        "recovery_sobol": [0.0, 0.2, 0.2, 0.4],
    }.items():
        frame[col] = values
        frame[f"{col}_low"], frame[f"{col}_high"] = np.array(values) * 0.9, np.array(values) * 1.1
    frame["matched_r"], frame["subspace_r2"], frame["cca_mean"] = 0.5, 0.9, 0.8
    return frame


def _kl() -> pd.DataFrame:
    return pd.DataFrame(np.sort(np.random.default_rng(0).random((4, 6)))[:, ::-1], index=[0.0, 0.25, 1.0, 4.0])


def test_beta_curves_draw_six_labelled_panels_with_the_ceilings():
    refs = pd.DataFrame(
        {"mig": [0.97, 0.1, 0.0], "dci_disentanglement": [1, 0.3, 0], "sap": [0.99, 0.2, 0]},
        index=["perfect", "rotated", "shuffled"],
    )
    fig = validity_plots.beta_curves(_curves(), _kl(), "title", refs)
    axes = fig.axes
    assert len(axes) == 6 and all(ax.get_ylabel() for ax in axes) and all(ax.get_xlabel() for ax in axes)
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["AE", "0.25", "1", "4"]
    dotted = [line.get_ydata()[0] for line in axes[3].get_lines() if line.get_linestyle() == ":"]
    assert sorted(dotted) == [0.97, 0.99, 1.0]
    sizes = [t.get_fontsize() for ax in axes for t in (ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels())]
    assert min(sizes) >= 9
    plt.close(fig)


def test_beta_curves_on_the_data_source_leave_out_the_truth_panels():
    curves = _curves().drop(columns=[c for c in _curves() if c.startswith(("mig", "dci", "sap", "recovery"))])
    fig = validity_plots.beta_curves(curves, _kl(), "title")
    assert len(fig.axes) == 4
    plt.close(fig)


def test_recovery_bars_show_each_model_with_intervals_and_the_chance_line():
    idx = pd.MultiIndex.from_product([["autoencoder", "VAE β=1"], ["oat", "ablation"]], names=["model", "method"])
    table = pd.DataFrame(
        {"mean": [0.2, 0.4, 0.6, 0.8], "low": [0.1, 0.3, 0.5, 0.7], "high": [0.3, 0.5, 0.7, 0.9], "chance": 0.0625},
        index=idx,
    )
    fig = validity_plots.recovery_bars(table, "title")
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [0.2, 0.4, 0.6, 0.8]
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == 0.0625 for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["one-at-a-time sweeps", "ablation"]
    plt.close(fig)


def test_validity_figures_fit_the_column_with_legible_text():
    refs = pd.DataFrame(
        {"mig": [0.97, 0.1, 0.0], "dci_disentanglement": [1, 0.3, 0], "sap": [0.99, 0.2, 0]},
        index=["perfect", "rotated", "shuffled"],
    )
    fig = validity_plots.beta_curves(_curves(), _kl(), "title", refs)
    assert fig.get_size_inches()[0] <= style.MAX_WIDTH_IN
    assert style.check_figure(fig) is fig  # raises FigureError on text under 9 pt
    fig.savefig(buffer := io.StringIO(), format="svg")
    assert style.svg_problems(buffer.getvalue(), "beta_curves.svg") == []
    plt.close(fig)
