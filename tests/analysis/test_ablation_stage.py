"""Tests of the ablation stage (vaetone.analysis.ablation.stage and .steps): known answers and the cache.

The known-answer decoder of conftest depends on z_0 alone, so every quoted finding has a value
that follows from that: z_0 comes first, the other dimensions are free, Captum agrees exactly,
one dimension recovers the whole error reduction.
"""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, store
from vaetone.analysis import ablation
from vaetone.analysis.ablation import stage, steps
from vaetone.analysis.baselines import pca_baseline
from vaetone.analysis.decoding import db_decoder, decode_batched, default_describe
from vaetone.errors import VaetoneError
from vaetone.results import result_key, result_path
from vaetone.spectral.inversion import mel_to_audio

N_NOTES, N_PICK = 12, 2
_CACHE = {}


def _inputs(decode) -> steps.AblationInputs:
    """Known-answer inputs: references = decodes + noise; z_0 has the smallest KL (std 1), the others std 0.1."""
    cfg = config.make(n_mels=16, griffin_lim_iters=2, device="cpu")
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(N_NOTES, 4, generator=gen).numpy()
    std = np.array([1.0, 0.1, 0.1, 0.1], dtype=np.float32) * np.ones_like(mu)
    ref = decode(torch.as_tensor(mu))[:, 0] + 0.5 * torch.randn(N_NOTES, 16, 12, generator=gen)
    meta = pd.DataFrame(
        {"instrument_family_str": ["brass", "string"] * (N_NOTES // 2), "pitch": 40 + 3 * np.arange(N_NOTES)},
        index=[f"note{i:02d}" for i in range(N_NOTES)],
    )
    pca = pca_baseline(ref[:, None], 4)
    return steps.AblationInputs(
        decode=decode,
        mu=mu,
        std=std,
        ref=ref,
        meta=meta,
        pca_decode=db_decoder(pca.decode, lambda x: x, device="cpu"),
        pca_mu=pca.encode(ref[:, None])[0],
        describe=default_describe(cfg),
        to_audio=lambda db: mel_to_audio(db, cfg).numpy(),
        audio_metrics=ablation.audio_metrics(cfg),
        seed=0,
        n_audio_examples=N_PICK,
        run_id="known-answer",
    )


@pytest.fixture
def known(one_dim_decoder):
    """(inputs, result) of the known-answer decoder, computed once for the module."""
    if "known" not in _CACHE:
        inp = _inputs(one_dim_decoder)
        _CACHE["known"] = (inp, ablation.compute_ablation(inp))
    return _CACHE["known"]


def test_known_answer_singles_out_z0_in_every_quoted_finding(known):
    inp, r = known
    f = r.findings
    assert r.dimension_order[0] == 0 and sorted(r.dimension_order) == [0, 1, 2, 3]
    assert f["n_test"] == N_NOTES and f["n_dims"] == 4 and f["n_baselines"] == 3
    assert f["n_free"] == 3 and f["free_pct"] == pytest.approx(1.0)
    assert f["top_abl"].startswith("z0 (+") and ", z1 (+0 dB²), z2 (+0 dB²)" in f["top_abl"]
    assert f["captum_max_abs_diff"] < 1e-9 and f["captum_agrees"] is True and f["captum_diff"] == "0.0e+00"
    assert f["rho_baselines"] == pytest.approx(1.0) and f["baselines_rank"] == "rank the dimensions alike"
    assert f["k90"] == 1 and f["recovered_pct"] == pytest.approx(90.0)
    zero = r.table("zero_overall")
    assert list(zero.index) == [0, 1, 2, 3] and zero.loc[0, "increase_mean"] > 1.0
    assert (zero.loc[[1, 2, 3], "increase_mean"] == 0).all()
    assert f["base_mse"] == pytest.approx(float(((inp.decode(torch.as_tensor(inp.mu))[:, 0] - inp.ref) ** 2).mean()))
    assert f["vae_k90"] == pytest.approx(f["base_mse"]) and f["vae_full"] == pytest.approx(f["base_mse"])


def test_known_answer_baseline_costs_are_sorted_and_the_costliest_is_named(known):
    _, r = known
    means = r.table("logmel_increase").mean()
    words = [f'"{b}" {means[b]:.3g} dB²' for b in means.sort_values(ascending=False).index]
    assert r.findings["baseline_costs"] == ", ".join(words)
    assert r.findings["costliest_baseline"] == f'"{means.idxmax()}"'
    assert list(r.table("logmel_increase").columns) == list(ablation.BASELINES)
    summary = r.table("summary")
    assert set(summary["baseline"]) == set(ablation.BASELINES)
    assert set(summary["grouping"]) == {"overall", "family", "pitch range"}
    assert list(r.table("by_family").index) == ["brass", "string"]


def test_known_answer_kl_order_and_cumulative_curves(known):
    _, r = known
    f = r.findings
    assert f["kl_order"][-1] == 0  # z_0 has std 1, the others 0.1: the least KL
    curve = r.table("cumulative").pivot(index="k", columns="order", values="error_mean")
    vae, kl = curve["VAE, by ablation effect"], curve["VAE, by KL"]
    assert vae.iloc[0] > vae.iloc[1] and vae.iloc[1:].tolist() == pytest.approx([f["base_mse"]] * 4)
    assert f["kl_gap"] == pytest.approx(vae.iloc[0] - f["base_mse"])  # KL keeps z_0 only at k = 4
    assert kl.iloc[3] == pytest.approx(vae.iloc[0])
    pca = curve["PCA, by explained variance"]
    assert f["pca_k90"] == pytest.approx(pca.loc[1]) and f["pca_full"] == pytest.approx(pca.iloc[-1])


def test_known_answer_audio_descriptors_and_captum_text(known):
    inp, r = known
    f = r.findings
    assert f["n_sub"] == N_PICK and f["sub_notes"] == ", ".join(f["audio_subset"])
    assert set(f["audio_subset"]) <= set(inp.meta.index)
    audio = r.table("audio_subset")
    assert list(audio.index) == list(r.dimension_order)
    assert (audio.loc[[1, 2, 3]] == 0).all().all()
    assert 0 <= f["base_fa"] <= 100 and f["base_f0"] >= 0
    moved = r.table("descriptor_effects")
    assert list(moved.index) == list(r.dimension_order)
    assert (moved.loc[[1, 2, 3]].fillna(0) == 0).all().all() and moved.loc[0, "centroid_hz"] > 0.1
    assert set(f["dimension_descriptor"]) == {"0", "1", "2", "3"}
    assert f["top_desc"].startswith(f"z0 ({f['dimension_descriptor']['0']})")
    assert f["captum_largest"] == pytest.approx(
        ablation.ablation_matrix(ablation.ablation_effects(inp.decode, inp.mu, inp.ref)).abs().to_numpy().max()
    )


def test_known_answer_listening_examples(known):
    inp, r = known
    listen, db, sound = r.table("listening"), r.arrays["listen_db"], r.arrays["listen_audio"]
    variants = ["original", "reconstruction", "z0 ablated", "z3 ablated", "top 3 kept"]
    assert listen["variant"].tolist() == variants * N_PICK and r.findings["listen_columns"] == 5
    assert listen["label"].tolist() == [f"{n}: {v}" for n, v in zip(listen["note"], listen["variant"])]
    rows = inp.meta.index.get_indexer(listen["note"][::5])
    assert np.allclose(db[0], inp.ref[rows[0]].numpy())
    recon = decode_batched(inp.decode, inp.mu[rows]).numpy()
    assert np.allclose(db[1], recon[0]) and np.allclose(db[3], recon[0]) and np.allclose(db[4], recon[0])
    assert not np.allclose(db[2], recon[0])  # z_0 ablated: the bump moves to the centre
    assert sound.shape[0] == len(listen) and np.abs(sound).max() <= steps.PEAK + 1e-6


@pytest.mark.parametrize(
    "rho, words",
    [
        (1.0, "rank the dimensions alike"),
        (0.8, "rank the dimensions alike"),
        (0.6, "rank the dimensions broadly alike"),
        (0.1, "rank the dimensions only loosely alike"),
        (-0.5, "rank the dimensions differently"),
        (math.nan, steps.UNRANKED),
    ],
)
def test_baselines_rank_wording(rho, words):
    assert steps.baselines_rank(rho) == words


def _summary(increases: dict[str, list[float]], base: float = 100.0) -> pd.DataFrame:
    """A summary with only the overall log-mel rows of each baseline."""
    rows = [
        {"baseline": b, "grouping": "overall", "group": "all", "dim": d, "metric": "logmel_mse"}
        | {"base_mean": base, "increase_mean": v}
        for b, values in increases.items()
        for d, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_effect_findings_from_a_known_summary():
    summary = _summary({"zero": [5.0, 0.5, 20.0], "mean": [4.0, 0.2, 10.0], "permute": [6.0, 1.0, 30.0]})
    f = steps.effect_findings(summary, [2, 0, 1])
    assert f["base_mse"] == 100.0 and f["n_free"] == 1
    assert f["top_abl"] == "z2 (+20 dB²), z0 (+5 dB²), z1 (+0 dB²)"
    assert f["baseline_costs"] == '"permute" 12.3 dB², "zero" 8.5 dB², "mean" 4.73 dB²'
    assert f["costliest_baseline"] == '"permute"'
    assert f["rho_baselines"] == pytest.approx(1.0) and f["baselines_rank"] == "rank the dimensions alike"
    reversed_mean = _summary({"zero": [1.0, 2.0, 3.0], "mean": [3.0, 2.0, 1.0], "permute": [1.0, 2.0, 3.0]})
    f = steps.effect_findings(reversed_mean, [2, 1, 0])
    assert f["rho_baselines"] == pytest.approx(-1.0) and f["baselines_rank"] == "rank the dimensions differently"
    constant = _summary({"zero": [1.0, 1.0, 1.0], "mean": [3.0, 2.0, 1.0], "permute": [1.0, 2.0, 3.0]})
    assert steps.effect_findings(constant, [0, 1, 2])["baselines_rank"] == steps.UNRANKED


def test_cumulative_findings_from_known_curves():
    curves = {
        "VAE, by ablation effect": [100.0, 60.0, 30.0, 19.0, 10.0],
        "VAE, by KL": [100.0, 90.0, 40.0, 20.0, 10.0],
        "PCA, by explained variance": [80.0, 50.0, 30.0, 20.0, 5.0],
    }
    table = pd.DataFrame(
        [{"order": o, "k": k, "error_mean": v} for o, values in curves.items() for k, v in enumerate(values)]
    )
    f = steps.cumulative_findings(table)
    assert f["k90"] == 3  # 100 - 0.9 * 90 = 19: reached at k = 3
    assert (f["vae_k90"], f["pca_k90"], f["vae_full"], f["pca_full"], f["kl_gap"]) == (19.0, 20.0, 10.0, 5.0, 30.0)


def test_audio_metrics_must_be_named(known):
    inp, _ = known
    bad = dataclasses.replace(inp, audio_metrics={"frequency_accuracy": inp.audio_metrics["frequency_accuracy"]})
    with pytest.raises(VaetoneError, match="f0_error_cents"):
        steps.audio_subset_effects(bad, np.array([0]))


def test_result_is_cached_and_keyed_by_its_params(tiny_cfg, stage_store, monkeypatch):
    first = ablation.result(tiny_cfg)
    upstream = store.key("train", tiny_cfg)
    folder = result_path(ablation.AblationResult, tiny_cfg, store.run_dir(tiny_cfg), upstream)
    assert (folder / "manifest.json").is_file() and (folder / "summary.csv").is_file()

    def no_compute(inp):
        raise AssertionError("the second call must load the cached result")

    monkeypatch.setattr(stage, "compute_ablation", no_compute)
    second = ablation.result(tiny_cfg)
    assert second.findings == first.findings and second.dimension_order == first.dimension_order
    for name, table in first.tables.items():
        pd.testing.assert_frame_equal(second.table(name), table)
    key = result_key(ablation.AblationResult, tiny_cfg, upstream)
    for change in ({"n_audio_examples": 2}, {"griffin_lim_iters": 4}):
        assert result_key(ablation.AblationResult, dataclasses.replace(tiny_cfg, **change), upstream) != key
    assert result_key(ablation.AblationResult, dataclasses.replace(tiny_cfg, n_anchors=5), upstream) == key


def test_result_of_the_tiny_run_is_consistent(tiny_cfg, stage_store):
    r = ablation.result(tiny_cfg)
    f = r.findings
    assert sorted(r.dimension_order) == list(range(tiny_cfg.latent_dim))
    assert f["n_sub"] == tiny_cfg.n_audio_examples and f["n_dims"] == tiny_cfg.latent_dim
    zero = r.table("zero_overall")
    assert {"base_mean", "increase_mean", "increase_sem", "relative_increase"} <= set(zero.columns)
    assert zero.index.name == "dim" and (zero["base_mean"] == f["base_mse"]).all()
    assert list(zero.sort_values("increase_mean", ascending=False, kind="stable").index) == list(r.dimension_order)
    assert set(f["dimension_descriptor"]) <= {str(d) for d in range(tiny_cfg.latent_dim)}
    assert r.arrays["listen_db"].shape[0] == len(r.table("listening")) == 5 * f["n_sub"]
    assert f["captum_agrees"] and 0 <= f["k90"] <= tiny_cfg.latent_dim
