"""Tests of the data-summary stage (vaetone.data.summary): known counts of a hand-built dataset, caching."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, store
from vaetone.data import summary
from vaetone.data.dataset import Dataset, dataset
from vaetone.errors import DataError
from vaetone.results import result_key
from vaetone.spectral import melspec
from vaetone.spectral.features import Features, load_features, train_statistics
from vaetone.spectral.inversion import mel_to_audio

SR, N = 16000, 16000
INSTRUMENTS = {  # instrument_str: (family, source, split)
    "bass_synthetic_000": ("bass", "synthetic", "train"),
    "bass_electronic_001": ("bass", "electronic", "valid"),
    "flute_acoustic_002": ("flute", "acoustic", "train"),
    "guitar_acoustic_003": ("guitar", "acoustic", "test"),
}
PITCHES, VELOCITIES = (48, 60), (25, 127)
SKIPPED = [{"note": "reed_acoustic_004-060-127", "reason": "silent"}, {"note": "x-048-025", "reason": "unreadable"}]


@pytest.fixture
def cfg():
    """Feature settings small enough for a quick round trip."""
    return config.make(n_mels=16, griffin_lim_iters=2, device="cpu")


def _meta() -> pd.DataFrame:
    """Every instrument of INSTRUMENTS x PITCHES x VELOCITIES, indexed by note_str."""
    rows = [
        {
            "note_str": f"{inst}-{p:03d}-{v:03d}",
            "instrument_str": inst,
            "pitch": p,
            "velocity": v,
            "instrument_family": config.FAMILIES.index(fam),
            "instrument_family_str": fam,
            "instrument_source_str": src,
            "split": split,
        }
        for inst, (fam, src, split) in INSTRUMENTS.items()
        for p in PITCHES
        for v in VELOCITIES
    ]
    meta = pd.DataFrame(rows)
    return meta.set_index(pd.Index(meta["note_str"].tolist()))


def _audio(meta: pd.DataFrame) -> np.ndarray:
    """A decaying sine per note at its pitch, its level following the velocity; (n, N) float32."""
    t = np.arange(N) / SR
    f0 = 440 * 2 ** ((meta["pitch"].to_numpy()[:, None] - 69) / 12)
    level = 0.5 * meta["velocity"].to_numpy()[:, None] / 127
    return (level * np.exp(-3 * t) * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


@pytest.fixture
def fake(cfg):
    """A hand-built dataset and its features, the feature rows in another order than the audio."""
    meta = _meta()
    ds = Dataset(meta=meta, audio=_audio(meta), sample_rate=SR, path=Path("/fake"), skipped=list(SKIPPED))
    order = np.random.default_rng(0).permutation(len(meta))
    logmel = melspec.log_mel(ds.audio[order], cfg, device="cpu")
    fmeta = meta.iloc[order].copy()
    return ds, Features(fmeta, logmel, *train_statistics(logmel, fmeta))


def test_findings_are_the_counts_of_the_dataset(fake, cfg):
    ds, feats = fake
    f = summary.compute_summary(ds, feats, cfg).findings
    counts = {"n_notes": 16, "n_instruments": 4, "n_families": 3, "n_skipped": 2, "n_train": 8, "n_valid": 4}
    assert {k: f[k] for k in counts} == counts and f["n_test"] == 4
    assert f["split_notes"] == {"train": 8, "valid": 4, "test": 4}
    assert f["notes_line"] == "16 notes of 4 instruments; 2 skipped"
    assert f["frames"] == 1 + N // cfg.hop_length == 32 and f["feature_shape"] == [16, 16, 32]
    assert f["frame_ms"] == 32.0 and f["window_ms"] == 64.0
    assert (f["norm_mean"], f["norm_std"]) == (feats.mean, feats.std)
    assert f["feature_settings"][0] == ["n_fft", 1024] and f["feature_settings"][-1] == ["log_floor", 1e-6]
    assert [k for k, _ in f["feature_settings"]] == list(config.STAGES["features"])


def test_tables_count_notes_and_instruments(fake, cfg):
    ds, feats = fake
    t = summary.compute_summary(ds, feats, cfg).tables
    fam = t["family"]
    assert list(fam.index) == list(config.FAMILIES)
    assert fam.loc["bass"].tolist() == [2, 8] and fam.loc["flute"].tolist() == [1, 4]
    assert fam.loc["guitar"].tolist() == [1, 4] and fam["notes"].sum() == 16
    assert t["source"]["notes"].to_dict() == {"acoustic": 8, "electronic": 4, "synthetic": 4}
    assert t["split"].to_dict("index") == {
        "train": {"instruments": 2, "notes": 8, "families": 2},
        "valid": {"instruments": 1, "notes": 4, "families": 1},
        "test": {"instruments": 1, "notes": 4, "families": 1},
    }
    assert t["family_split"].loc["bass"].tolist() == [4, 4, 0]
    assert t["pitch"]["notes"].to_dict() == {48: 8, 60: 8}
    assert t["skipped"].to_dict("records") == SKIPPED


def test_examples_are_the_notes_nearest_c4_velocity_100_one_per_family(fake, cfg):
    ds, feats = fake
    r = summary.compute_summary(ds, feats, cfg)
    notes = ["bass_electronic_001-060-127", "flute_acoustic_002-060-127", "guitar_acoustic_003-060-127"]
    assert r.findings["example_notes"] == notes == list(r.tables["examples"].index)
    assert r.findings["example_titles"] == [f"{n.split('_')[0]}: {n}" for n in notes]
    rows = ds.meta.index.get_indexer(notes)
    np.testing.assert_array_equal(r.arrays["example_audio"], ds.audio[rows])
    frows = feats.meta.index.get_indexer(notes)
    np.testing.assert_array_equal(r.arrays["example_logmel"], feats.logmel[frows].numpy())
    cells = r.family_sounds()
    assert cells["titles"] == ["bass", "flute", "guitar"] and cells["audio"] is r.arrays["example_audio"]
    assert r.findings["example_notes_line"] == ", ".join(f"{n} ({n.split('_')[0]})" for n in notes)
    assert cells["dbs"].shape == (3, 16, 32)
    peaks = 20 * np.log10(np.abs(ds.audio[rows]).max(axis=1))  # measured: velocity 127 is amplitude 0.5, -6 dBFS
    assert -6.1 < peaks.min() <= peaks.max() < -6.0
    assert r.findings["example_level"] == (
        f"They play as they are, without normalisation: their peaks lie between {peaks.min():.1f} and "
        f"{peaks.max():.1f} dBFS"
    )


def test_round_trip_is_the_middle_example_through_griffin_lim(fake, cfg):
    ds, feats = fake
    r = summary.compute_summary(ds, feats, cfg)
    middle = "flute_acoustic_002-060-127"
    np.testing.assert_array_equal(r.arrays["roundtrip_original"], ds.audio[ds.meta.index.get_loc(middle)])
    k = feats.meta.index.get_loc(middle)
    expected = mel_to_audio(feats.logmel[k : k + 1], cfg, n_iter=2)[0].numpy()
    np.testing.assert_array_equal(r.arrays["roundtrip_inverted"], expected)
    assert r.findings["roundtrip_labels"] == ["original", "log-mel → Griffin-Lim (2 iterations)"]
    grid = r.roundtrip_sounds()
    assert grid["columns"] == r.findings["roundtrip_labels"]
    n = min(len(expected), N)
    assert grid["dbs"].shape == (1, 2, 16, 32) and grid["audio"].shape == (1, 2, n)
    np.testing.assert_array_equal(grid["dbs"][0, 0], feats.logmel[k].numpy())  # the original's log-mel ...
    inverted_db = melspec.log_mel(torch.as_tensor(expected)[None], cfg, device="cpu")[0, :, :32].numpy()
    np.testing.assert_allclose(grid["dbs"][0, 1], inverted_db, atol=1e-4)  # ... and that of its Griffin-Lim audio
    np.testing.assert_array_equal(grid["audio"][0, 1], expected[:n])


def test_features_of_other_data_are_refused(fake, cfg):
    ds, feats = fake
    keep = ~feats.meta.index.str.startswith("flute")
    other = Features(feats.meta[keep], feats.logmel[torch.as_tensor(keep)], feats.mean, feats.std)
    with pytest.raises(DataError, match=r"flute_acoustic_002-060-127.*refresh=True"):
        summary.compute_summary(ds, other, cfg)


def _upstream(cfg):
    """The data summary's upstream key: the features' key and the dataset digest they record."""
    return f"{store.key('features', cfg)}-{load_features(cfg).digest}"


def test_result_is_cached_and_keyed_by_its_parameters(tiny_cfg, stage_store, monkeypatch):
    first = summary.result(tiny_cfg)
    folder = store.data_dir() / "results"
    key = result_key(summary.DataSummary, tiny_cfg, _upstream(tiny_cfg))
    assert (folder / f"data_summary-{key}" / "findings.json").is_file()
    assert (folder / f"data_summary-{key}" / "split.csv").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("a cached result was recomputed")

    with monkeypatch.context() as patched:
        patched.setattr(summary, "compute_summary", refuse)
        again = summary.result(tiny_cfg)
    assert again.findings == first.findings and set(again.tables) == set(first.tables)
    np.testing.assert_array_equal(again.arrays["example_logmel"], first.arrays["example_logmel"])

    ds, feats = dataset(tiny_cfg), load_features(tiny_cfg)
    pd.testing.assert_frame_equal(first.table("split"), summary.summary_tables(ds.meta)["split"])
    assert first.findings["n_notes"] == len(ds) == 132 and first.findings["n_instruments"] == 22
    assert first.findings["norm_mean"] == feats.mean

    more = dataclasses.replace(tiny_cfg, griffin_lim_iters=3)
    other = result_key(summary.DataSummary, more, _upstream(more))
    assert other != key
    changed = summary.result(more)
    assert (folder / f"data_summary-{other}").is_dir()
    assert changed.findings["roundtrip_labels"][1] == "log-mel → Griffin-Lim (3 iterations)"
    assert not np.array_equal(changed.arrays["roundtrip_inverted"], first.arrays["roundtrip_inverted"])
    trained_longer = dataclasses.replace(tiny_cfg, epochs=5)
    assert result_key(summary.DataSummary, trained_longer, _upstream(trained_longer)) == key


def _corpus_meta() -> pd.DataFrame:
    """Instrument rows of the real four-font corpus, split by sample group (no rendering)."""
    from vaetone.data.soundfont import corpus_instruments
    from vaetone.data.splits import split_instruments

    table = corpus_instruments(config.CORPUS_SOUNDFONTS)
    families = dict(zip(table["instrument_str"], table["family"]))
    groups = dict(zip(table["instrument_str"], table["sample_group"]))
    split = split_instruments(families, 0.15, 0.15, 0, groups=groups)
    return pd.DataFrame(
        {
            "note_str": table["instrument_str"] + "-060-127",
            "instrument_str": table["instrument_str"],
            "instrument_family_str": table["family"],
            "instrument_source_str": table["source"],
            "soundfont": table["soundfont"],
            "program": table["program"],
            "sample_group": table["sample_group"],
            "split": table["instrument_str"].map(split),
        }
    ).set_index("note_str", drop=False)


def test_split_check_of_the_corpus_finds_no_shared_sample_and_every_family_in_test():
    meta = _corpus_meta()
    tables, found = summary.split_check(meta, config.make())
    assert found["n_shared_samples"] == 0 and tables["shared_samples"].empty
    assert found["n_fonts"] == 4 and found["n_sample_groups"] == meta["sample_group"].nunique() > 200
    assert found["test_families"] == 11 and found["families_without_test"] == []
    assert "no sample is played in two splits; 11 of 11 families have test notes." in found["split_check_line"]
    assert list(tables["fonts"].index) == [Path(p).name for p in config.CORPUS_SOUNDFONTS]


def test_split_check_reports_an_instrument_moved_out_of_its_sample_group():
    meta = _corpus_meta()
    sizes = meta.groupby("sample_group")["instrument_str"].transform("size")
    moved = meta.index[(sizes > 1) & (meta["split"] == "train")][0]
    meta.loc[moved, "split"] = "test"
    tables, found = summary.split_check(meta, config.make())
    assert found["n_shared_samples"] == len(tables["shared_samples"]) > 0
    assert set(tables["shared_samples"]["splits"]) == {"test, train"}
    assert f"{found['n_shared_samples']} samples are played in more than one split" in found["split_check_line"]


def test_split_check_of_a_source_without_fonts_says_the_split_is_by_instrument():
    meta = _corpus_meta().drop(columns=["soundfont", "program", "sample_group"])
    meta.loc[meta["instrument_family_str"] == "vocal", "split"] = "train"
    tables, found = summary.split_check(meta, config.make())
    assert tables == {} and found["families_without_test"] == ["vocal"]
    assert found["split_check_line"].startswith("Split by instrument")
    assert found["split_check_line"].endswith("10 of 11 families have test notes; no test notes for vocal.")


def test_level_phrase_states_the_peaks_as_played():
    two = np.stack([0.5 * np.ones(4), 0.1 * np.ones(4)])
    assert (
        summary.level_phrase(two)
        == "They play as they are, without normalisation: their peaks lie between -20.0 and -6.0 dBFS"
    )
    assert summary.level_phrase(0.5 * np.ones((1, 4))).endswith("the peak is at -6.0 dBFS")
    assert summary.level_phrase(np.stack([2 * np.ones(4), np.zeros(4)])).endswith(
        "the peak is at +6.0 dBFS (1 silent); samples beyond full scale are clipped"
    )
    assert summary.level_phrase(np.zeros((2, 4))) == "They are silent"


def test_answer_sentence_is_built_from_the_counts():
    found = {
        "n_notes": 96,
        "n_instruments": 22,
        "n_families": 11,
        "n_train": 60,
        "n_test": 20,
        "n_test_instruments": 5,
        "feature_shape": [96, 64, 126],
    }
    base = (
        "The model learns from 96 notes of 22 instruments in 11 families, each a 64 × 126 log-mel spectrogram: "
        "60 notes train it and 20 notes of 5 instruments it never hears test it"
    )
    assert summary.answer_sentence(found) == base
    assert summary.answer_sentence(found | {"n_shared_samples": 0}) == base + "; no sample is played in two splits"
    one = found | {"n_families": 1, "n_test_instruments": 1, "n_shared_samples": 1}
    assert summary.answer_sentence(one).endswith(
        "in 1 family, each a 64 × 126 log-mel spectrogram: 60 notes train it and 20 notes of 1 instrument it never "
        "hears test it; 1 sample is played in more than one split"
    )


def test_the_answer_of_a_computed_summary_quotes_its_counts(fake, cfg):
    ds, feats = fake
    f = summary.compute_summary(ds, feats, cfg).findings
    assert f["n_test_instruments"] == 1
    assert f["answer"] == (
        "The model learns from 16 notes of 4 instruments in 3 families, each a 16 × 32 log-mel spectrogram: "
        "8 notes train it and 4 notes of 1 instrument it never hears test it"
    )
