"""Tests of vaetone.book.plots: labels with units, colour scales from 0 or centred, figures that fit the column."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vaetone.book import plots, style  # noqa: E402


def test_descriptor_labels_carry_units():
    assert plots.descriptor_label("decay_db_per_s") == "decay rate (dB/s)"
    assert plots.descriptor_label("centroid_hz") == "centroid (Hz)"
    assert "decay_s" not in plots.DESCRIPTOR_LABELS
    assert plots.descriptor_label("new_thing") == "new thing"


def test_family_bars_state_each_familys_notes_and_instruments():
    per_family = pd.DataFrame(
        {"VAE": [4.0, 5.0], "PCA": [6.0, 7.0], "n_notes": [12, 4], "n_instruments": [3, 1]},
        index=pd.Index(["brass", "reed"], name="family"),
    )
    fig = plots.family_bars(per_family, "title", "log-spectral distance (dB)")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["brass\n12 notes, 3 inst.", "reed\n4 notes, 1 inst."]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["VAE", "PCA"]  # the counts are not bars
    assert [round(p.get_height(), 1) for p in ax.patches] == [4.0, 5.0, 6.0, 7.0]
    assert ax.get_ylabel() == "log-spectral distance (dB)"
    plt.close(fig)


def _frame(values, name="dim"):
    return pd.DataFrame(values, index=pd.Index(range(len(values)), name=name)).rename_axis(columns="what")


def test_a_non_negative_heatmap_starts_at_zero_with_a_labelled_colour_bar():
    fig = plots.heatmap(_frame([[0.2, 0.4], [0.6, 0.8]]), "title", "η² (share)")
    image, bar = fig.axes[0].images[0], fig.axes[1]
    assert image.norm.vmin == 0.0 and image.norm.vmax == 0.8
    assert bar.get_ylabel() == "η² (share)"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.20", "0.40", "0.60", "0.80"]  # cells fit 9-pt text
    assert min(t.get_fontsize() for t in fig.axes[0].texts) >= style.MIN_FONT_PT
    plt.close(fig)


def test_a_signed_heatmap_is_centred_on_zero_in_a_diverging_map():
    fig = plots.heatmap(_frame([[-0.3, 0.1], [0.2, 0.9]]), "title", "Spearman ρ")
    image = fig.axes[0].images[0]
    assert (image.norm.vmin, image.norm.vmax) == (-0.9, 0.9)
    assert image.cmap.name == "RdBu_r"
    plt.close(fig)


def test_one_saturating_cell_caps_the_scale_at_the_95th_percentile():
    values = np.full((4, 10), 0.1)
    values[:, :5] = 0.2
    values[0, 0] = 5.0
    fig = plots.heatmap(_frame(values), "title", "increase / unablated error")
    image = fig.axes[0].images[0]
    assert image.norm.vmin == 0.0 and image.norm.vmax == pytest.approx(np.percentile(values, 95))
    assert image.colorbar.extend == "max"
    plt.close(fig)
    fig = plots.heatmap(_frame(values), "title", "increase", cap_percentile=None)
    assert fig.axes[0].images[0].norm.vmax == 5.0 and fig.axes[0].images[0].colorbar.extend == "neither"
    plt.close(fig)


def test_wide_cells_drop_their_numbers_and_too_many_columns_fail():
    fig = plots.heatmap(_frame(np.full((3, 30), 0.12345)), "title", "x", fmt="{:.4f}")
    assert len(fig.axes[0].texts) == 0 and fig.get_size_inches()[0] <= style.MAX_WIDTH_IN
    plt.close(fig)
    with pytest.raises(style.FigureError, match="transpose"):
        plots.heatmap(_frame(np.ones((3, 80))), "title", "x")
    with pytest.raises(style.FigureError, match="fewer rows"):
        plots.heatmap(_frame(np.ones((200, 3))), "title", "x")


def test_a_series_that_would_be_invisible_gets_a_log_axis():
    split = pd.DataFrame({"variance of the posterior mean": [1.2, 0.8], "mean posterior variance": [0.01, 0.02]})
    fig = plots.bars(split, "title", "latent dimension", "variance (prior units²)")
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_ylabel() == "variance (prior units²) (log scale)"
    plt.close(fig)
    fig = plots.bars(split.assign(**{"mean posterior variance": [0.5, 0.6]}), "t", "x", "variance (prior units²)")
    assert fig.axes[0].get_yscale() == "linear"
    plt.close(fig)


def test_latent_histograms_use_at_most_four_columns_within_the_column():
    fig = plots.latent_histograms(np.random.default_rng(0).normal(size=(50, 16)), "title")
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 16 and {ax.get_subplotspec().get_geometry()[:2] for ax in shown} == {(4, 4)}
    assert fig.get_size_inches()[0] <= style.MAX_WIDTH_IN
    plt.close(fig)
