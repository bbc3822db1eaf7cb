"""Tests of vaetone.book.plots: labels with units, and the n of every family on the family bars."""

import matplotlib.pyplot as plt
import pandas as pd

from vaetone.book import plots


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
