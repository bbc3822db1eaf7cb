"""Tests of the sensitivity stage (vaetone.analysis.sensitivity.stage): known answers and the cached result."""

import base64
import dataclasses
import io
import json
import re
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, results, store
from vaetone.analysis import intervals
from vaetone.analysis import sensitivity as sens
from vaetone.analysis.sensitivity import labels, stage
from vaetone.book import sound
from vaetone.errors import ConfigError
from vaetone.spectral import inversion

KA_CFG = config.make(
    n_mels=16, latent_dim=4, n_anchors=3, sweep_steps=5, sobol_n=32, griffin_lim_iters=2, bootstrap_n=200, device="cpu"
)
"""The layout of the known-answer decoder (16 mels x 12 frames, 4 latents), small analysis sizes."""


_KNOWN: dict = {}
"""The known-answer result, computed once for this module's tests."""


@pytest.fixture
def known(one_dim_decoder):
    """The stage computed on the one-dimension decoder (output depends on z_0 only) from 20 random notes."""
    if not _KNOWN:
        mu = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
        notes = [f"note-{i:02d}" for i in range(20)]
        r = sens.compute_sensitivity(one_dim_decoder, mu, KA_CFG, notes=notes, groups=notes)  # one note per instrument
        _KNOWN["value"] = r, mu, notes
    return _KNOWN["value"]


def test_the_one_dimension_decoder_ranks_z0_first_in_every_view(known):
    r, _, _ = known
    ranking = r.table("ranking")
    assert r.dimension_order[0] == 0 and sorted(r.dimension_order) == [0, 1, 2, 3]
    assert tuple(ranking.index) == r.dimension_order and ranking.index.name == "dim"
    assert ranking.loc[0, "mean_rank"] == 1 and (ranking.loc[[1, 2, 3], "mean_rank"] == 2).all()
    for view in stage.VIEWS:
        assert ranking.loc[0, view] > 0 and (ranking.loc[[1, 2, 3], view].abs() < 1e-9).all()
    assert list(r.findings["views"]) == list(stage.VIEWS)
    # every view ranks the dimensions alike: every pair of views agrees perfectly
    assert r.findings["rho_min"] == r.findings["rho_max"] == r.findings["rho_oat_jac"] == pytest.approx(1.0)
    assert np.allclose(r.table("agreement").to_numpy(), 1.0)


def test_the_quoted_phrases_name_z0_and_only_z0_moves_a_descriptor(known):
    r, _, _ = known
    f, order, moves, ranking = r.findings, r.dimension_order, r.table("moves"), r.table("ranking")
    label = ranking.loc[0, "label"]
    assert label != labels.NONE and f["dimension_descriptor"] == {"0": label}  # the others move nothing
    assert (ranking.loc[[1, 2, 3], "label"] == labels.NONE).all() and f["n_none"] == 3
    assert f["top_dimensions"] == list(order[:3]) and f["n_top"] == 3
    assert f["top_dims"] == f"z0 ({label}), z{order[1]} (none), z{order[2]} (none)"
    assert f["bottom_dim"] == f"z{order[-1]}" and f["bottom_dim"] != "z0"
    assert (moves.loc[[1, 2, 3]].fillna(0) == 0).all().all() and moves.loc[0].abs().max() > 0
    assert ranking.loc[0, "label_descriptor"] == moves.loc[0].abs().idxmax()
    assert str(labels.LABEL_RATIO) in f["label_rule"] and str(labels.LABEL_MIN_RHO) in f["label_rule"]


def level_decoder(z: torch.Tensor) -> torch.Tensor:
    """A fixed 10-dB bump, the whole spectrogram 6·z_0 dB louder: only the level follows z_0 (linearly)."""
    m = torch.arange(16, dtype=z.dtype)[None, :]
    spec = 10 * torch.exp(-((m - 8.0) ** 2) / 8.0) + 6.0 * z[:, :1]
    return spec[:, None, :, None].expand(-1, 1, -1, 12)


def test_a_decoder_that_only_raises_the_level_names_z0_rms_db_with_a_known_net_change():
    mu = torch.randn(12, 4, generator=torch.Generator().manual_seed(5))
    groups = ["a", "b", "c", "d"] * 3
    r = sens.compute_sensitivity(level_decoder, mu, KA_CFG, groups=groups)
    row, f = r.table("ranking").loc[0], r.findings
    assert row["label"] == "rms_db" and row["label_rho"] == pytest.approx(1.0) and row["label_runner_up"] < 1e-3
    # rms_db rises by 6 dB per unit z_0; its spread over the reconstructions is 6 std(mu_0)
    assert row["label_change"] == pytest.approx(1 / mu[:, 0].std().item(), rel=1e-3)
    assert f["dimension_descriptor"] == {"0": "rms_db"} and f["top_dims"].startswith("z0 (rms_db)")
    assert f["sobol_labels"]["0"] == "rms_db" and f["sobol_named"] == 1
    assert f["label_moves"].startswith("z0 raises rms_db: ") and "the interval excludes 0" in f["label_moves"]
    iv = r.table("intervals").loc["z0 rms_db"]
    assert iv["low"] == pytest.approx(iv["estimate"]) == pytest.approx(iv["high"])  # every anchor alike
    assert (iv["n_notes"], iv["n_instruments"]) == (
        3,
        len({groups[i] for i in r.table("curves").query("row >= 0")["row"]}),
    )


def test_the_headline_scores_get_instrument_level_intervals_over_the_anchor_notes(known):
    r, mu, notes = known
    table, f = r.table("intervals"), r.findings
    assert list(table.index[:4]) == ["all dimensions", "z0", f"z{r.dimension_order[1]}", f"z{r.dimension_order[2]}"]
    rows = r.table("anchor_logmel").query("row >= 0")  # the prior mean is left out
    per_anchor = rows.groupby("anchor")["change"].mean()
    expected = intervals.bootstrap(
        per_anchor.to_numpy(),
        [notes[i] for i in rows.groupby("anchor")["row"].first()],
        n_boot=KA_CFG.bootstrap_n,
        seed=KA_CFG.seed,
    )
    got = table.loc["all dimensions"]
    assert (got["estimate"], got["low"], got["high"]) == pytest.approx((expected.estimate, expected.low, expected.high))
    assert (got["n_notes"], got["n_instruments"]) == (3, 3) and got[
        "interval"
    ] == f"{got['low']:.2f} to {got['high']:.2f}"
    assert (
        f["change_interval"]
        == f"{got['estimate']:.2f} dB per unit z (95 % interval {got['low']:.2f} to {got['high']:.2f})"
    )
    assert "3 anchor notes from 3 instruments" in f["interval_note"] and "prior-mean anchor" in f["interval_note"]
    assert f["top_change_intervals"].startswith("z0: ") and f["n_anchor_notes"] == 3


def test_anchors_from_too_few_instruments_give_an_undefined_interval_not_a_failure(one_dim_decoder):
    mu = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
    r = sens.compute_sensitivity(one_dim_decoder, mu, KA_CFG, groups=["x", "y"] * 10)
    f, table = r.findings, r.table("intervals")
    assert (
        f["interval_note"].startswith("undefined here, because the 3 anchor notes come from")
        and "at least 3" in f["interval_note"]
    )
    assert f["change_interval"].endswith("dB per unit z (interval undefined)")
    assert table["interval"].str.startswith("undefined: ").all() and table["estimate"].notna().all()
    none = sens.compute_sensitivity(one_dim_decoder, mu, KA_CFG).findings  # instruments unknown
    assert none["interval_note"] == "undefined here, because the instruments of the anchor notes are not known"


def test_the_counts_and_tables_follow_the_parameters(known):
    r, mu, _ = known
    f = r.findings
    assert (f["n_test_notes"], f["n_anchor_points"], f["n_steps"]) == (20, 4, 5)  # 3 notes + the prior mean
    assert f["n_oat_decodes"] == 4 * 5 * 4 and len(r.table("curves")) == 4 * 5 * 4
    assert (f["sobol_N"], f["sobol_evals"], f["sobol_conf"]) == (32, 32 * (4 + 2), "95 %")
    assert r.table("sobol").attrs["N"] == 32 and f["sobol_mean_conf"] == pytest.approx(
        r.table("sobol")["ST_conf"].mean()
    )
    overall = r.table("sweeps_logmel").query("scope == 'all'").set_index("dim")["change"]
    assert f["mean_logmel_change"] == pytest.approx(overall[0] / 4) and overall[0] > 0.1
    assert (r.table("where").loc[[1, 2, 3]] == 0).all().all() and r.table("where").loc[0].max() > 0
    assert r.table("jacobian").columns[0] == "all" and (r.table("jacobian").loc[[1, 2, 3]] == 0).all().all()
    assert f["sweep_sigma_txt"] == "3" and f["decodes_per_s"] > 0 and f["decode_device"] == "cpu"


def test_the_strips_sweep_the_top_dimensions_from_the_first_anchor_note(known):
    r, mu, notes = known
    f, strips, sound = r.findings, r.arrays["strips"], r.arrays["strip_audio"]
    order = r.dimension_order
    _, rows = sens.anchor_points(mu, KA_CFG.n_anchors, seed=KA_CFG.seed)
    assert f["strip_note"] == notes[rows[1]]
    assert f["strip_values"] == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert f["strip_labels"][:2] == ["z0 = -3.0", "z0 = -1.5"] and f["strip_labels"][5] == f"z{order[1]} = -3.0"
    assert strips.shape == (15, 16, 12) and sound.shape == (15, KA_CFG.hop_length * 11)
    assert not np.allclose(strips[0], strips[4])  # z0 moves the bump
    assert np.allclose(strips[5], strips[9])  # the next dimension changes nothing
    assert np.abs(sound).max() == pytest.approx(10 ** (stage.STRIP_PEAK_DBFS / 20), rel=1e-5)
    assert f["strip_peak_dbfs"] == stage.STRIP_PEAK_DBFS == inversion.PEAK_DBFS and f["strip_gain"] > 0


def wav_peaks_dbfs(player_html: str) -> list[float]:
    """The peak (dBFS) of every WAV a player's HTML plays, decoded from its data URIs."""
    peaks = []
    for b64 in re.findall(r'src="data:audio/wav;base64,([^"]+)"', player_html):
        with wave.open(io.BytesIO(base64.b64decode(b64))) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        peaks.append(20 * np.log10(np.abs(pcm).max() / 32767))
    return peaks


def test_what_the_strips_player_plays_peaks_at_the_level_the_caption_quotes(known):
    r, _, _ = known
    f = r.findings
    names = pd.Series(["mixed"] * KA_CFG.latent_dim)
    grid = sound.sound_grid(**sens.strip_grid(r.arrays["strips"], r.arrays["strip_audio"], f, names), cfg=KA_CFG)
    peaks = wav_peaks_dbfs(grid.data)
    assert len(peaks) == len(f["strip_labels"])
    assert max(peaks) == pytest.approx(f["strip_peak_dbfs"], abs=0.01)  # what is heard, to 16-bit precision
    assert min(peaks) < max(peaks)  # one gain for all: the quieter strips stay quieter
    chapter = (Path(__file__).resolve().parents[2] / "chapters" / "04_sensitivity.md").read_text()
    caption = chapter.split("```{glue:figure} fig-04-strips", 1)[1].split("\n```", 1)[0]
    assert "{glue:text}`strip_peak_dbfs:.1f` dBFS" in caption and not re.search(r"[−-]\d+ dBFS", caption)
    assert "one gain for the whole" in caption  # the grid is scaled as the caption says


def test_the_findings_are_json_native(known):
    r, _, _ = known
    assert json.loads(json.dumps(dict(r.findings))) == dict(r.findings)


def test_compute_sensitivity_rejects_latents_of_another_size(one_dim_decoder):
    with pytest.raises(ConfigError, match="latent_dim=4"):
        sens.compute_sensitivity(one_dim_decoder, torch.zeros(5, 3), KA_CFG)
    with pytest.raises(ConfigError, match="n >= 2"):
        sens.compute_sensitivity(one_dim_decoder, torch.zeros(1, 4), KA_CFG)


def test_result_is_cached_and_keyed_by_its_parameters(tiny_cfg, stage_store, monkeypatch):
    first = sens.result(tiny_cfg)
    path = results.result_path(sens.SensitivityResult, tiny_cfg, store.run_dir(tiny_cfg), store.key("train", tiny_cfg))
    assert (path / "ranking.csv").exists()
    key = results.result_key(sens.SensitivityResult, tiny_cfg, store.key("train", tiny_cfg))

    def no_compute(cfg):
        raise RuntimeError("computed again")

    monkeypatch.setattr(stage, "_compute_for_run", no_compute)
    second = sens.result(tiny_cfg)  # loaded, not computed
    assert second.findings == first.findings and second.dimension_order == first.dimension_order
    for name in first.tables:
        pd.testing.assert_frame_equal(second.table(name), first.table(name))
    assert np.array_equal(second.arrays["strips"], first.arrays["strips"])
    ranking = second.table("ranking")
    assert tuple(ranking.index) == second.dimension_order and ranking["mean_rank"].is_monotonic_increasing
    assert sorted(second.dimension_order) == list(range(tiny_cfg.latent_dim))
    assert second.findings["top_dims"].startswith(f"z{second.dimension_order[0]}")
    named = {str(d): v for d, v in ranking["label"].items() if v != "none"}
    assert second.findings["dimension_descriptor"] == named
    shown = second.table("intervals")[["estimate", "n_notes", "n_instruments", "interval"]]
    assert shown.notna().all().all()  # the chapter's table: an interval or "undefined: <reason>", never NaN
    assert all(t.startswith("undefined: ") or re.fullmatch(r"-?\d+\.\d\d to -?\d+\.\d\d", t) for t in shown["interval"])
    assert second.table("sobol").attrs["N"] == tiny_cfg.sobol_n == second.findings["sobol_N"]

    # an analysis parameter makes a new key (and a new computation); another stage's does not
    steps = dataclasses.replace(tiny_cfg, sweep_steps=4)
    upstream = store.key("train", tiny_cfg)
    assert results.result_key(sens.SensitivityResult, steps, upstream) != key
    boot = dataclasses.replace(tiny_cfg, bootstrap_n=500)
    assert results.result_key(sens.SensitivityResult, boot, upstream) != key
    assert results.result_key(sens.SensitivityResult, dataclasses.replace(tiny_cfg, n_seeds=5), upstream) == key
    with pytest.raises(RuntimeError, match="computed again"):
        sens.result(steps)
