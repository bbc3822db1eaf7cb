"""Tests of vaetone.book.tables: estimates with intervals and paired differences as text, never NaN."""

import math

import pandas as pd

from vaetone.book import tables


def test_interval_table_writes_intervals_counts_and_undefined():
    comp = pd.DataFrame(
        {
            "lsd_db": [4.5234, 0.0],
            "lsd_db_low": [4.31, 0.0],
            "lsd_db_high": [4.702, 0.0],
            "lsd_db_n_notes": [64, 64],
            "lsd_db_n_instruments": [15, 15],
            "f0_median_cents": [8.46, math.nan],
            "f0_median_cents_low": [math.nan, math.nan],
            "f0_median_cents_high": [math.nan, math.nan],
            "f0_median_cents_n_notes": [2, 0],
            "f0_median_cents_n_instruments": [2, 0],
        },
        index=pd.Index(["VAE", "inversion only"], name="model"),
    )
    shown = tables.interval_table(comp, {"lsd_db": "LSD (dB)", "f0_median_cents": "f0 median (cents)"})
    assert list(shown.index) == ["LSD (dB)", "f0 median (cents)"] and shown.index.name == "metric"
    assert list(shown.columns) == ["VAE", "inversion only", "n (notes / instruments)"]
    assert shown.loc["LSD (dB)"].tolist() == ["4.52 [4.31, 4.7]", "0 [0, 0]", "64 / 15"]
    assert shown.loc["f0 median (cents)"].tolist() == ["8.46 [interval undefined]", "not measured", "0-2 / 0-2"]


def test_paired_table_states_difference_interval_n_and_verdict():
    paired = pd.DataFrame(
        [
            ["VAE", "autoencoder", "lsd_db", 0.123, 0.03, 0.21, 64, 15, True, "significant"],
            ["VAE", "PCA", "freq_f1", -0.01, math.nan, math.nan, 8, 2, False, "undefined: 2 instruments"],
        ],
        columns=["model_a", "model_b", "metric", "difference", "low", "high", "n_notes", "n_instruments"]
        + ["significant", "verdict"],
    )
    shown = tables.paired_table(paired, {"lsd_db": "LSD (dB)"})
    assert list(shown.index) == [("VAE − autoencoder", "LSD (dB)"), ("VAE − PCA", "freq_f1")]
    assert shown.iloc[0].tolist() == ["0.123 [0.03, 0.21]", "64 / 15", "significant"]
    assert shown.iloc[1].tolist() == ["-0.01 [interval undefined]", "8 / 2", "undefined: 2 instruments"]
    assert tables.paired_table(paired.iloc[:0], {}).empty


def test_numbers_are_written_without_exponents():
    assert [tables.number(x) for x in (2756.16, 123.4, 99.94, 4.5234, 0.0929, 0.0)] == [
        "2756",
        "123",
        "99.9",
        "4.52",
        "0.0929",
        "0",
    ]


def test_readable_rounds_and_writes_missing_values_in_words():
    table = pd.DataFrame({"p": [0.12345, math.nan], "dim": [3.0, math.nan]})
    shown = tables.readable(table, 2, fill={"p": "undefined", "dim": "none"})
    assert shown["p"].tolist() == [0.12, "undefined"] and shown["dim"].tolist() == [3.0, "none"]
    assert tables.readable(table)["p"].tolist() == [0.123, "undefined"]
