"""Tests of vaetone.analysis.curves: every phrase of the training-curve caption follows the numbers."""

import pandas as pd

from vaetone.analysis import curves

EPOCHS = pd.Index([1, 2, 3], name="epoch")


def test_trend_phrases_follow_the_curve():
    assert curves.trend_phrase(pd.Series([0.12, 1.6, 5.11], index=EPOCHS)) == (
        "rises from 0.1 (epoch 1) to 5.1 nats per note (epoch 3)"
    )
    assert curves.trend_phrase(pd.Series([3902.9, 3883.4, 3827.4], index=EPOCHS)) == (
        "falls from 3902.9 (epoch 1) to 3827.4 nats per note (epoch 3)"
    )
    # the KL of the issue: it falls from 209 to 40 while its weight warms up
    assert curves.trend_phrase(pd.Series([209.0, 120.0, 40.0], index=EPOCHS), digits=0).startswith("falls from 209")
    assert (
        curves.trend_phrase(pd.Series([2.01, 2.0, 1.98], index=EPOCHS)) == "stays at 2.0 nats per note (epochs 1 to 3)"
    )
    assert curves.trend_phrase(pd.Series([2.0], index=EPOCHS[:1])) == "is 2.0 nats per note (epoch 1)"


def test_a_curve_with_a_turn_names_it():
    peak = pd.Series([2.01, 5.0, 1.98], index=EPOCHS)
    assert (
        curves.trend_phrase(peak)
        == "rises from 2.0 (epoch 1) to a peak of 5.0 (epoch 2), then falls to 2.0 nats per note (epoch 3)"
    )
    dip = pd.Series([4.0, 1.0, 3.0, 3.5], index=pd.Index([1, 2, 3, 4]))
    assert (
        curves.trend_phrase(dip, unit="dB")
        == "falls from 4.0 (epoch 1) to a low of 1.0 (epoch 2), then rises to 3.5 dB (epoch 4)"
    )
    both = pd.Series([5.0, 9.0, 1.0, 4.0], index=pd.Index([1, 2, 3, 4]))  # the peak is 4 above the ends, the low 3
    assert curves.trend_phrase(both).startswith("rises from 5.0 (epoch 1) to a peak of 9.0 (epoch 2)")
    deeper = pd.Series([5.0, 7.0, 0.0, 4.0], index=pd.Index([1, 2, 3, 4]))  # the peak 2 above, the low 4 below
    assert curves.trend_phrase(deeper).startswith("falls from 5.0 (epoch 1) to a low of 0.0 (epoch 3)")


def test_the_kl_reading_follows_the_net_change():
    assert "closer to the prior" in curves.kl_reading(pd.Series([209.0, 120.0, 40.0], index=EPOCHS))
    assert "away from the prior" in curves.kl_reading(pd.Series([0.1, 2.0, 5.0], index=EPOCHS))
    assert "ended where it started" in curves.kl_reading(pd.Series([5.01, 9.0, 4.99], index=EPOCHS))


def test_warmup_and_history_phrases():
    assert curves.warmup_phrase(1) == "is warmed up linearly from 0 over the first epoch"
    assert curves.warmup_phrase(5) == "is warmed up linearly from 0 over the first 5 epochs"
    assert curves.warmup_phrase(0).startswith("is not warmed up")
    history = pd.DataFrame({"valid_kl": [209.0, 120.0, 40.0], "valid_recon": [3902.9, 3883.4, 3827.4]}, index=EPOCHS)
    f = curves.history_findings(history, 2)
    assert f == {
        "kl_warmup": "is warmed up linearly from 0 over the first 2 epochs",
        "kl_trend": "falls from 209.0 (epoch 1) to 40.0 nats per note (epoch 3)",
        "kl_reading": curves.kl_reading(history["valid_kl"]),
        "recon_trend": "falls from 3902.9 (epoch 1) to 3827.4 nats per note (epoch 3)",
    }


def test_kl_per_dim_reads_the_kept_epoch():
    history = pd.DataFrame(
        {"valid_kl": [1.0, 6.0], "valid_kl_d00": [0.5, 1.0], "valid_kl_d01": [0.5, 5.0]},
        index=pd.Index([1, 2], name="epoch"),
    )
    kl = curves.kl_per_dim(history, 2)
    assert list(kl.index) == [0, 1] and kl.index.name == "dimension"
    assert kl["kl_nats"].tolist() == [1.0, 5.0]
