"""Tests of vaetone.data.synthetic: the factorial design (independent, uniform, stable draws) and visible factors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from vaetone import config
from vaetone.analysis.disentanglement import FACTOR_DESCRIPTORS
from vaetone.data import synthetic
from vaetone.data.nsynth import FACTORS, QUALITIES
from vaetone.errors import ConfigError
from vaetone.spectral.descriptors import spectral_descriptors
from vaetone.spectral.melspec import log_mel

SR = 16000


def _cfg(**kw) -> config.Config:
    base = dict(dataset="synthetic", pitch_min=40, pitch_max=76, pitch_step=12, velocities=[25, 127], device="cpu")
    return config.make(**{**base, **kw})


@pytest.fixture(scope="module")
def design() -> pd.DataFrame:
    """The notes of 44 instruments x 4 pitches x 2 velocities (352 notes), without audio."""
    return synthetic.synthetic_notes(_cfg(synthetic_instruments=44))


def test_factor_values_span_each_range_on_its_scale():
    cfg = _cfg(factor_levels=5)
    values = synthetic.factor_values(cfg)
    assert list(values) == [f for f in FACTORS if f not in ("factor_pitch", "factor_loudness")]
    np.testing.assert_allclose(values["factor_attack"], [0.02, 0.0422949, 0.0894427, 0.189148, 0.4])
    np.testing.assert_allclose(values["factor_decay"], [0.5, 1.0, 2.0, 4.0, 8.0])  # equal ratios
    np.testing.assert_allclose(values["factor_brightness"], [-15, -12, -9, -6, -3])  # equal steps
    np.testing.assert_allclose(values["factor_inharmonicity"], [0, 5e-4, 1e-3, 1.5e-3, 2e-3])
    np.testing.assert_allclose(values["factor_noise"], [-50, -40, -30, -20, -10])
    three = synthetic.factor_values(_cfg(factor_levels=3, attack_range=[0.05, 0.2]))
    np.testing.assert_allclose(three["factor_attack"], [0.05, 0.1, 0.2])


def test_every_note_draws_each_timbre_factor_from_its_levels(design):
    cfg = _cfg(synthetic_instruments=44)
    assert len(design) == 352 and design["instrument"].nunique() == 44
    for column, levels in synthetic.factor_values(cfg).items():
        counts = design[column].value_counts()
        assert sorted(counts.index) == list(levels)  # exactly factor_levels values, all inside the range
        assert counts.min() > 0.6 * 352 / 5 and counts.max() < 1.4 * 352 / 5  # uniform
        per_instrument = design.groupby("instrument")[column].nunique()
        assert per_instrument.mean() > 3  # an instrument's notes differ (8 draws of 5 levels: 4.2 distinct)
    assert set(design["factor_pitch"]) == {40.0, 52.0, 64.0, 76.0}
    np.testing.assert_allclose(sorted(set(design["factor_loudness"])), synthetic.loudness_db([25, 127]))


def test_factors_are_mutually_independent_and_independent_of_family(design):
    rho = design[list(FACTORS)].corr("spearman").to_numpy()
    off = rho[~np.eye(len(FACTORS), dtype=bool)]
    assert np.abs(off).max() < 0.2
    assert rho[0, 1] == pytest.approx(0.0, abs=1e-12)  # pitch x velocity is a full grid
    for column in synthetic.TIMBRE_FACTORS:  # share of a factor's variance explained by the family
        x = design[column]
        eta2 = design.groupby("instrument_family_str")[column].transform("mean").var() / x.var()
        assert eta2 < 0.1, column


def test_an_instruments_notes_do_not_change_when_instruments_are_added_or_filtered():
    small = synthetic.synthetic_notes(_cfg(synthetic_instruments=11)).set_index("note_str")
    large = synthetic.synthetic_notes(_cfg(synthetic_instruments=33)).set_index("note_str")
    pd.testing.assert_frame_equal(large.loc[small.index, list(FACTORS)], small[list(FACTORS)])
    bass = synthetic.synthetic_notes(_cfg(synthetic_instruments=33, families=["bass"])).set_index("note_str")
    assert sorted(bass["instrument"].unique()) == [0, 11, 22]
    pd.testing.assert_frame_equal(large.loc[bass.index, list(FACTORS)], bass[list(FACTORS)])
    few = synthetic.synthetic_notes(_cfg(synthetic_instruments=2, pitch_step=36, velocities=[127]))
    more = synthetic.synthetic_notes(_cfg(synthetic_instruments=4, pitch_step=36, velocities=[127]))
    assert np.array_equal(synthetic.synthesize_notes(few, 3), synthetic.synthesize_notes(more, 3)[: len(few)])


def test_instruments_are_a_grouping_without_factors():
    table = synthetic.synthetic_instruments(14)
    assert list(table.columns) == ["instrument", "instrument_str", "family", "source", "pitch_min", "pitch_max"]
    assert table["instrument_str"].iloc[0] == "bass_acoustic_000" and table["instrument_str"].iloc[13] == (
        f"{config.FAMILIES[2]}_electronic_013"
    )


def test_qualities_follow_each_notes_factors(design):
    bits = pd.DataFrame(design["qualities"].tolist(), columns=QUALITIES, index=design.index)
    assert (bits["bright"] == (design["factor_brightness"] > -5)).all()
    assert (bits["dark"] == (design["factor_brightness"] < -12)).all()
    assert (bits["fast_decay"] == (design["factor_decay"] < 1.5)).all()
    assert (bits["percussive"] == ((design["factor_attack"] < 0.03) & (design["factor_decay"] < 3))).all()
    assert bits[["bright", "dark", "fast_decay", "percussive"]].sum().min() > 0  # each quality occurs
    assert not bits.drop(columns=["bright", "dark", "fast_decay", "percussive"]).to_numpy().any()
    assert all(q == [n for n, b in zip(QUALITIES, row) if b] for q, row in zip(design["qualities_str"], bits.values))


# The direction in which each factor moves its mel-domain descriptor (decay is a T60: longer is slower).
DIRECTION = {"factor_loudness": 1, "factor_brightness": 1, "factor_attack": 1, "factor_decay": -1, "factor_noise": 1}


def test_each_factor_moves_its_mel_descriptor_across_its_range():
    cfg = _cfg(n_mels=32)
    values = synthetic.factor_values(cfg)
    values["factor_loudness"] = synthetic.loudness_db([25, 50, 75, 100, 127])
    rng, rows = np.random.default_rng(0), []
    for context, pitch in enumerate((40, 64, 76)):  # three random settings of the other factors
        base = {c: rng.choice(v) for c, v in values.items()} | {"factor_pitch": float(pitch)}
        for factor in DIRECTION:
            rows += [base | {factor: v, "varied": factor, "context": context} for v in values[factor]]
    notes = pd.DataFrame(rows)
    desc = spectral_descriptors(log_mel(synthetic.synthesize_notes(notes), cfg), cfg)
    for (factor, _), group in notes.groupby(["varied", "context"]):
        rho = spearmanr(group[factor], desc.loc[group.index, FACTOR_DESCRIPTORS[factor]]).statistic
        assert DIRECTION[factor] * rho > 0.5, (factor, rho)


def test_attack_and_decay_are_measured_close_to_their_values():
    cfg = _cfg(n_mels=32)
    values = synthetic.factor_values(cfg)
    base = dict(factor_pitch=52.0, factor_loudness=0.0, factor_brightness=-9.0, factor_inharmonicity=0.0)
    notes = pd.DataFrame(
        [base | {"factor_attack": a, "factor_decay": 8.0, "factor_noise": -50.0} for a in values["factor_attack"]]
        + [base | {"factor_attack": 0.02, "factor_decay": d, "factor_noise": -50.0} for d in values["factor_decay"]]
    )
    desc = spectral_descriptors(log_mel(synthetic.synthesize_notes(notes), cfg), cfg)
    attack, decay = desc["attack_s"].to_numpy()[:5], desc["decay_db_per_s"].to_numpy()[5:]
    hop_s = cfg.hop_length / SR  # 10-90 % of a linear ramp is 0.8 of it, seen within half a feature hop
    np.testing.assert_allclose(attack, 0.8 * values["factor_attack"], atol=hop_s / 2)
    assert (np.diff(attack) > 0).all()
    np.testing.assert_allclose(decay, 60 / values["factor_decay"], rtol=0.15)  # 60 dB per T60, before the release


FACTORS_BASE = dict(
    factor_pitch=48.0,
    factor_loudness=0.0,
    factor_brightness=-6.0,
    factor_attack=0.02,
    factor_decay=8.0,
    factor_inharmonicity=0.0,
    factor_noise=-50.0,
)
"""One held note at C3 whose partials stand clear of noise."""


@pytest.mark.parametrize("b", [0.0, 1e-3, 2e-3])
def test_inharmonicity_moves_the_partials_as_a_stiff_string(b):
    notes = pd.DataFrame([dict(FACTORS_BASE, factor_inharmonicity=b)])
    y = synthetic.synthesize_notes(notes)[0, SR : 2 * SR]  # 1 s while held: 1 Hz bins
    spec = np.abs(np.fft.rfft(y * np.hanning(SR)))
    f0 = 440 * 2 ** ((48 - 69) / 12)
    for k in (5, 10):
        expected = k * f0 * np.sqrt((1 + b * k**2) / (1 + b))
        lo, hi = int(expected - 0.4 * f0), int(expected + 0.4 * f0)
        assert abs(lo + np.argmax(spec[lo:hi]) - expected) <= 1.0


def test_draws_and_renders_are_deterministic():
    cfg = _cfg(synthetic_instruments=3, pitch_step=36, velocities=[127])
    first, second = synthetic.synthetic_notes(cfg), synthetic.synthetic_notes(cfg)
    pd.testing.assert_frame_equal(first, second)
    assert np.array_equal(synthetic.synthesize_notes(first, 5), synthetic.synthesize_notes(second, 5))
    assert not np.array_equal(synthetic.synthesize_notes(first, 5), synthetic.synthesize_notes(first, 6))  # the noise


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("attack_range", [0.02, 0.03], "span at least one hop"),
        ("decay_range", [0.0, 8.0], "must be positive"),
        ("noise_range", [-10.0, -50.0], "low < high"),
        ("inharmonicity_range", [-1e-3, 1e-3], "must not go below 0"),
        ("factor_levels", 1, "from 2 to 64"),
    ],
)
def test_a_range_the_features_cannot_see_is_refused(name, value, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**{name: value})


def test_chapter_01_quotes_the_default_ranges():
    text = " ".join((Path(__file__).parents[2] / "chapters" / "01_data.md").read_text().split())
    base = config.Config()

    def span(name, scale=1.0, unit=""):
        low, high = (f"{v * scale:g}".replace("-", "−") for v in getattr(base, name))
        return f"`{name}`, {'by default ' if name == 'brightness_range' else ''}{low} to {high} {unit}".rstrip()

    for quoted in (
        span("brightness_range", unit="dB per octave"),
        span("attack_range", 1000, "ms"),
        span("decay_range", unit="s"),
        span("inharmonicity_range"),
        span("noise_range", unit="dB"),
        f"`factor_levels` values (default {base.factor_levels})",
        f"`synthetic_instruments` instruments (default {base.synthetic_instruments})",
        f"{base.hop_length / SR * 1000:g}-ms feature frame",
    ):
        assert quoted in text, quoted


@pytest.fixture(scope="module")
def grid() -> synthetic.FactorGrid:
    """Every factor at 5 levels (the design's own values), the others at their middle level."""
    return synthetic.factor_grid(_cfg(factor_levels=5), factors=tuple(synthetic.GRID_ROWS))


def test_factor_grid_varies_one_factor_at_a_time_over_the_designs_values(grid):
    cfg = _cfg(factor_levels=5)
    n = len(synthetic.GRID_ROWS)
    assert grid.audio.shape == (n, 5, 64000) and grid.logmel.shape == (n, 5, 64, 126)
    assert grid.rows[0] == "brightness" and grid.columns[0] == "lowest" and grid.columns[2] == "level 3 (middle)"
    assert grid.cell_titles[0] == ["-15 dB/oct", "-12 dB/oct", "-9 dB/oct", "-6 dB/oct", "-3 dB/oct"]
    assert grid.cell_titles[-1] == ["40 MIDI", "49 MIDI", "58 MIDI", "67 MIDI", "76 MIDI"]
    values = synthetic.factor_values(cfg)
    middle = {"factor_pitch": 58.0, "factor_loudness": float(synthetic.loudness_db(76))}
    middle |= {c: v[2] for c, v in values.items()}
    for row, notes in grid.factors.groupby("row", sort=False):
        if row in values:
            np.testing.assert_allclose(notes[row], values[row])  # the design's own levels
        for other, mid in middle.items():
            if other != row:
                np.testing.assert_allclose(notes[other], mid)  # every other factor at its middle level
    np.testing.assert_allclose(
        grid.factors.query("row == 'factor_loudness'")["factor_loudness"], synthetic.loudness_db([25, 50, 76, 102, 127])
    )


def test_each_grid_row_moves_its_descriptor_the_right_way(grid):
    cfg = _cfg(factor_levels=5)
    d = spectral_descriptors(grid.logmel.reshape(-1, 64, 126), cfg)
    rows = list(synthetic.GRID_ROWS)

    def row(factor, column):
        return d[column].to_numpy()[rows.index(factor) * 5 : rows.index(factor) * 5 + 5]

    assert np.all(np.diff(row("factor_brightness", "centroid_hz")) > 0)
    attack = row("factor_attack", "attack_s")
    assert np.all(np.diff(attack) > 0) and attack[-1] > 5 * attack[0]
    assert np.all(np.diff(row("factor_decay", "decay_db_per_s")) < 0)  # a longer T60 decays more slowly
    assert np.all(np.diff(row("factor_noise", "flatness")) > 0)
    assert np.all(np.diff(row("factor_pitch", "centroid_hz")) > 0)
    loud = row("factor_loudness", "rms_db")
    np.testing.assert_allclose(np.diff(loud), np.diff(synthetic.loudness_db([25, 50, 76, 102, 127])), atol=0.1)


def test_factor_grid_has_one_gain_and_its_findings_say_so(grid):
    peaks = 20 * np.log10(np.abs(grid.audio).max(-1))
    assert peaks.max() == pytest.approx(-1.0, abs=1e-3)  # the loudest clip at -1 dBFS, the rest as rendered
    raw = synthetic.synthesize_notes(grid.factors, seed=synthetic.SYNTH_SEED)
    gain = 10 ** (grid.findings["gain_db"] / 20)
    np.testing.assert_allclose(grid.audio.reshape(raw.shape), raw * gain, rtol=1e-4, atol=1e-6)
    assert grid.findings["peak_range"] == f"{peaks.min():.0f} to -1 dBFS"
    assert grid.findings["middle"].startswith("brightness -9 dB/oct; attack 0.089 s; decay (T60) 2 s")


def test_factor_grid_refuses_bad_levels_and_factors():
    assert synthetic.GRID_DEFAULT == tuple(synthetic.GRID_ROWS)[:-1] and "factor_pitch" not in synthetic.GRID_DEFAULT
    with pytest.raises(ConfigError, match="odd number of levels"):
        synthetic.grid_levels(_cfg(), 4)
    with pytest.raises(ConfigError, match="choose one or more"):
        synthetic.factor_grid(_cfg(), factors=("factor_colour",))
    three = synthetic.factor_grid(_cfg(), n_levels=3, factors=("factor_attack",))
    assert three.audio.shape == (1, 3, 64000) and three.columns == ["lowest", "level 2 (middle)", "highest"]
