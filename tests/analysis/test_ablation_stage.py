"""Tests of the ablation stage (vaetone.analysis.ablation.stage, .steps, .choice, .scores): known answers and the cache.

The known-answer decoder of conftest depends on z_0 alone, so every quoted finding has a value
that follows from that: z_0 comes first, the other dimensions are free, Captum agrees exactly,
one dimension recovers the whole error reduction. A second decoder, of z_0 + z_1, with
validation notes that move only z_1 and test notes that move only z_0, shows that every choice
is made on the validation notes and scored on the test notes.
"""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config, store
from vaetone.analysis import ablation
from vaetone.analysis.ablation import choice, scores, stage, steps
from vaetone.analysis.baselines import pca_baseline
from vaetone.analysis.decoding import db_decoder, decode_batched, default_describe
from vaetone.analysis.intervals import bootstrap, significance_phrase
from vaetone.results import result_key, result_path
from vaetone.spectral.inversion import mel_to_audio, peak_dbfs

N_NOTES, N_PICK, N_BOOT = 12, 2, 200
_CACHE = {}


def _notes(decode, gen, prefix: str, n: int = N_NOTES, per_instrument: int = 3, scale=(1.0, 1.0, 1.0, 1.0)):
    """Latents, stds, references (decodes + noise) and metadata of n notes, ``per_instrument`` per instrument."""
    mu = (torch.randn(n, 4, generator=gen) * torch.tensor(scale)).numpy()
    std = np.array([1.0, 0.1, 0.1, 0.1], dtype=np.float32) * np.ones_like(mu)
    ref = decode(torch.as_tensor(mu))[:, 0] + 0.5 * torch.randn(n, 16, 12, generator=gen)
    meta = pd.DataFrame(
        {
            "instrument_family_str": ["brass", "string"] * (n // 2),
            "pitch": 40 + 3 * np.arange(n),
            "instrument_str": [f"{prefix}_instrument{i // per_instrument}" for i in range(n)],
        },
        index=[f"{prefix}{i:02d}" for i in range(n)],
    )
    return mu, std, ref, meta


def _inputs(decode, valid_scale=(1.0, 1.0, 1.0, 1.0), test_scale=(1.0, 1.0, 1.0, 1.0), per_instrument=3):
    """Known-answer inputs: z_0 has the smallest KL (std 1), the others std 0.1; 20 training notes."""
    cfg = config.make(n_mels=16, griffin_lim_iters=2, device="cpu")
    gen = torch.Generator().manual_seed(0)
    mu, std, ref, meta = _notes(decode, gen, "note", scale=test_scale, per_instrument=per_instrument)
    valid = _notes(decode, gen, "valid", scale=valid_scale)
    pca = pca_baseline(ref[:, None], 4)
    return steps.AblationInputs(
        decode=decode,
        mu=mu,
        std=std,
        ref=ref,
        meta=meta,
        valid_mu=valid[0],
        valid_std=valid[1],
        valid_ref=valid[2],
        valid_meta=valid[3],
        reference_mu=(torch.randn(20, 4, generator=gen) + 0.5).numpy(),
        pca_decode=db_decoder(pca.decode, lambda x: x, device="cpu"),
        pca_mu=pca.encode(ref[:, None])[0],
        describe=default_describe(cfg),
        to_audio=lambda db: mel_to_audio(db, cfg).numpy(),
        seed=0,
        n_audio_examples=N_PICK,
        n_boot=N_BOOT,
        run_id="known-answer",
    )


@pytest.fixture
def known(one_dim_decoder):
    """(inputs, result) of the known-answer decoder, computed once for the module."""
    if "known" not in _CACHE:
        inp = _inputs(one_dim_decoder)
        _CACHE["known"] = (inp, ablation.compute_ablation(inp))
    return _CACHE["known"]


@pytest.fixture
def split_apart(one_dim_decoder):
    """(inputs, result) of the bump moved by z_0 + z_1: validation notes move z_1 only, test notes z_0 only."""

    def two_dim_decoder(z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32)
        return one_dim_decoder(torch.cat([z[:, :1] + z[:, 1:2], z[:, 1:]], dim=1))

    if "split" not in _CACHE:
        inp = _inputs(two_dim_decoder, valid_scale=(0.0, 1.0, 1.0, 1.0), test_scale=(1.0, 0.0, 1.0, 1.0))
        _CACHE["split"] = (inp, ablation.compute_ablation(inp))
    return _CACHE["split"]


def test_known_answer_singles_out_z0_in_every_quoted_finding(known):
    inp, r = known
    f = r.findings
    assert r.dimension_order[0] == 0 and sorted(r.dimension_order) == [0, 1, 2, 3]
    assert f["n_test"] == N_NOTES and f["n_dims"] == 4 and f["n_baselines"] == 3
    assert f["n_test_instruments"] == 4 and f["n_valid"] == N_NOTES and f["n_valid_instruments"] == 4
    assert f["n_reference"] == 20
    assert f["n_free"] == 3 and f["free_pct"] == pytest.approx(1.0) and f["free_dims"] == "z1, z2, z3"
    assert f["top_abl"].startswith("z0: +") and "; z1: +0.000 dB² (95 % interval 0.000 to 0.000)" in f["top_abl"]
    assert f["free_cost"].startswith("+0.000 dB² (95 % interval 0.000 to 0.000)")
    assert f["captum_max_abs_diff"] < 1e-9 and f["captum_agrees"] is True and f["captum_diff"] == "0.0e+00"
    assert f["rho_baselines"] == pytest.approx(1.0) and f["baselines_rank"] == "rank the dimensions alike"
    assert f["k90"] == 1 and f["recovered_pct"] == pytest.approx(90.0)
    assert f["recovered_test"] == "100.0 % (95 % interval 100.0 to 100.0)"
    zero = r.table("zero_overall")
    assert list(zero.index) == [0, 1, 2, 3] and zero.loc[0, "increase_mean"] > 1.0
    assert (zero.loc[[1, 2, 3], "increase_mean"] == 0).all()
    assert f["base_mse"] == pytest.approx(float(((inp.decode(torch.as_tensor(inp.mu))[:, 0] - inp.ref) ** 2).mean()))
    assert f["vae_k90"] == pytest.approx(f["base_mse"]) and f["vae_full"] == pytest.approx(f["base_mse"])


def test_choices_are_made_on_the_validation_notes_and_scored_on_the_test_notes(split_apart):
    """z_1 is the only dimension that matters on the validation notes, z_0 the only one on the test notes."""
    inp, r = split_apart
    f = r.findings
    assert r.dimension_order[0] == 1  # chosen on the validation notes, where only z_1 moves
    valid = r.table("valid_overall")
    assert valid.loc[1, "increase_mean"] > 1.0 and (valid.loc[[0, 2, 3], "increase_mean"] == 0).all()
    test = r.table("zero_overall")
    assert test.loc[0, "increase_mean"] > 1.0 and test.loc[1, "increase_mean"] == 0  # scored on test
    assert f["top_abl"].startswith("z1: +0.000 dB²")  # the chosen dimension costs nothing on test
    assert f["free_dims"] == "z0, z2, z3" and f["n_free"] == 3
    cost = float(r.table("intervals").loc["cost of ablating the 3 free dimensions together", "estimate"])
    assert cost == pytest.approx(test.loc[0, "increase_mean"])  # the free z_0 is what the test notes need
    assert (
        f["k90"] == 1 and f["recovered_test"] == "0.000 % (95 % interval 0.000 to 0.000)"
    )  # keeping z_1 recovers nothing on test
    assert f["order_rho"] != "1.00"


def test_the_mean_and_permute_baselines_come_from_the_training_notes(known):
    inp, r = known
    train_mean = torch.as_tensor(inp.reference_mu).mean(0)
    own = ablation.ablation_effects(inp.decode, inp.mu, inp.ref, baseline=train_mean)
    expected = ablation.ablation_matrix(own).mean()
    assert r.table("logmel_increase")["mean"].to_numpy() == pytest.approx(expected.to_numpy())
    test_mean = ablation.ablation_matrix(ablation.ablation_effects(inp.decode, inp.mu, inp.ref, baseline="mean")).mean()
    assert r.table("logmel_increase").loc[0, "mean"] != pytest.approx(test_mean[0])  # not the test notes' mean
    values = ablation.baseline_values(inp.mu, "permute", seed=inp.seed, reference=inp.reference_mu)
    own = ablation.ablation_matrix(ablation.ablation_effects(inp.decode, inp.mu, inp.ref, baseline=values)).mean()
    assert r.table("logmel_increase")["permute"].to_numpy() == pytest.approx(own.to_numpy())


def test_quoted_intervals_are_the_instrument_bootstrap_of_the_per_note_values(known):
    inp, r = known
    table = r.table("intervals")
    assert list(table.columns) == ["unit", "estimate", "95 % interval", "notes", "instruments"]
    assert (table["notes"] == N_NOTES).all() and (table["instruments"] == 4).all()
    assert table.notna().all().all()
    base = ablation.reconstruction_errors(inp.decode, inp.mu, inp.ref)["logmel_mse"]
    expected = bootstrap(base, inp.meta["instrument_str"], n_boot=N_BOOT, seed=inp.seed)
    row = table.loc["unablated log-mel MSE"]
    assert row["estimate"] == pytest.approx(expected.estimate)
    assert row["95 % interval"] == f"{expected.low:.3f} to {expected.high:.3f}"
    assert r.findings["base_mse_ci"] == f"{expected.estimate:.3f} dB² (95 % interval {row['95 % interval']})"
    widths = r.table("logmel_increase_ci")
    assert list(widths.columns) == list(ablation.BASELINES) and widths.loc[0, "zero"] > 0
    assert (widths.loc[[1, 2, 3]] == 0).all().all()
    assert r.findings["error_bars"].startswith("error bars: half the width of the 95 %")


def test_vae_against_pca_is_a_paired_comparison_whose_words_follow_its_sign(known):
    inp, r = known
    k = r.findings["k90"]
    vae = ablation.kept_errors(inp.decode, inp.mu, inp.ref, r.dimension_order, [k])[k]
    pca = ablation.kept_errors(inp.pca_decode, inp.pca_mu, inp.ref, range(4), [k])[k]
    diff = bootstrap(vae - pca, inp.meta["instrument_str"], n_boot=N_BOOT, seed=inp.seed)
    assert r.findings["vae_vs_pca"] == significance_phrase(
        diff, "dB²", scores.digits(diff.estimate, diff.low, diff.high)
    )
    word = "higher" if diff.estimate > 0 else "lower"
    assert f" {word} (" in r.findings["vae_vs_pca"]
    assert r.findings["vae_k90"] - r.findings["pca_k90"] == pytest.approx(diff.estimate)


def test_too_few_test_instruments_give_undefined_intervals_not_nan(one_dim_decoder):
    inp = _inputs(one_dim_decoder, per_instrument=6)  # 2 test instruments
    r = ablation.compute_ablation(inp)
    f = r.findings
    assert f["n_test_instruments"] == 2
    for key in ("base_mse_ci", "top_abl", "recovered_test", "vae_vs_pca", "free_cost"):
        assert "interval undefined: the " in f[key] and "2 test instrument(s)" in f[key], key
    assert f["error_bars"].startswith("no error bars: undefined:")
    table = r.table("intervals")
    assert table["95 % interval"].str.startswith("undefined: ").all() and table["estimate"].notna().all()


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
    assert list(r.table("by_family").index) == ["brass (6 notes, 4 instruments)", "string (6 notes, 4 instruments)"]
    assert r.table("lsd_increase").columns.name == "LSD increase (dB) by baseline; all (12 notes, 4 instruments)"


def test_known_answer_kl_order_and_cumulative_curves(known):
    _, r = known
    f = r.findings
    assert f["kl_order"][-1] == 0  # z_0 has std 1, the others 0.1: the least KL
    curve = r.table("cumulative").pivot(index="k", columns="order", values="error_mean")
    vae, kl = curve["VAE, by ablation effect"], curve["VAE, by KL"]
    assert vae.iloc[0] > vae.iloc[1] and vae.iloc[1:].tolist() == pytest.approx([f["base_mse"]] * 4)
    assert vae.iloc[0] == pytest.approx(kl.iloc[0])  # k = 0: every note decodes to the same output
    assert f["kl_gap"] == pytest.approx(vae.iloc[0] - f["base_mse"])  # KL keeps z_0 only at k = 4
    assert kl.iloc[3] == pytest.approx(vae.iloc[0])
    pca = curve["PCA, by explained variance"]
    assert f["pca_k90"] == pytest.approx(pca.loc[1]) and f["pca_full"] == pytest.approx(pca.iloc[-1])


def test_known_answer_descriptors_and_captum_text(known):
    inp, r = known
    f = r.findings
    moved = r.table("descriptor_effects")
    assert list(moved.index) == list(r.dimension_order)
    assert (moved.loc[[1, 2, 3]].fillna(0) == 0).all().all() and abs(moved.loc[0, "centroid_hz"]) > 0.5
    assert set(f["dimension_descriptor"]) == {"0"}  # the others move nothing: no name
    labels = r.table("zero_overall")["label"]
    assert labels.loc[0] == f["dimension_descriptor"]["0"] and (labels.loc[[1, 2, 3]] == "none").all()
    assert f["dimension_descriptor"]["0"] == ablation.descriptor_labels(moved, r.table("descriptor_rho"))[0]
    assert list(r.table("descriptor_rho").index) == list(r.dimension_order)
    assert f["top_desc"] == f"z0 ({f['dimension_descriptor']['0']}), z1 (none), z2 (none)"
    assert f["captum_largest"] == pytest.approx(
        ablation.ablation_matrix(ablation.ablation_effects(inp.decode, inp.mu, inp.ref)).abs().to_numpy().max()
    )


def test_known_answer_listening_examples_are_played_at_the_stated_level(known):
    inp, r = known
    listen, db, sound = r.table("listening"), r.arrays["listen_db"], r.arrays["listen_audio"]
    variants = ["original", "reconstruction", "z0 ablated", "z3 ablated", "top 3 kept"]
    assert listen["variant"].tolist() == variants * N_PICK and r.findings["listen_columns"] == 5
    assert listen["label"].tolist() == [f"{n}: {v}" for n, v in zip(listen["note"], listen["variant"])]
    assert r.findings["n_listen"] == N_PICK and r.findings["listen_notes"] == ", ".join(pd.unique(listen["note"]))
    rows = inp.meta.index.get_indexer(listen["note"][::5])
    assert np.allclose(db[0], inp.ref[rows[0]].numpy())
    recon = decode_batched(inp.decode, inp.mu[rows]).numpy()
    assert np.allclose(db[1], recon[0]) and np.allclose(db[3], recon[0]) and np.allclose(db[4], recon[0])
    assert not np.allclose(db[2], recon[0])  # z_0 ablated: the bump moves to the centre
    assert sound.shape[0] == len(listen)
    level = 20 * math.log10(float(np.abs(sound).max()))  # measured on the arrays the players play
    assert level == pytest.approx(steps.PEAK_DBFS, abs=1e-3) == r.findings["listen_peak_dbfs"]
    assert r.findings["listen_target_dbfs"] == steps.PEAK_DBFS == pytest.approx(peak_dbfs(sound), abs=1e-3)


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
    f = steps.effect_findings(summary)
    assert f["base_mse"] == 100.0
    assert f["baseline_costs"] == '"permute" 12.3 dB², "zero" 8.5 dB², "mean" 4.73 dB²'
    assert f["costliest_baseline"] == '"permute"'
    assert f["rho_baselines"] == pytest.approx(1.0) and f["baselines_rank"] == "rank the dimensions alike"
    reversed_mean = _summary({"zero": [1.0, 2.0, 3.0], "mean": [3.0, 2.0, 1.0], "permute": [1.0, 2.0, 3.0]})
    f = steps.effect_findings(reversed_mean)
    assert f["rho_baselines"] == pytest.approx(-1.0) and f["baselines_rank"] == "rank the dimensions differently"
    constant = _summary({"zero": [1.0, 1.0, 1.0], "mean": [3.0, 2.0, 1.0], "permute": [1.0, 2.0, 3.0]})
    assert steps.effect_findings(constant)["baselines_rank"] == steps.UNRANKED


def test_free_dimensions_and_k90_from_known_numbers():
    overall = pd.DataFrame({"base_mean": 100.0, "increase_mean": [5.0, 0.5, 20.0, 1.0]}, index=[0, 1, 2, 3])
    assert choice.free_dimensions(overall, [2, 0, 3, 1]) == [1]  # 1.0 is not below 1 % of 100
    assert choice.recovered_k(pd.Series([100.0, 60.0, 30.0, 19.0, 10.0])) == 3  # 100 - 0.9 * 90 = 19
    assert choice.recovered_k(pd.Series([100.0, 60.0, 30.0, 19.1, 10.0])) == 4
    assert choice.recovered_k(pd.Series([5.0, 5.0, 5.0])) == 0  # nothing to recover


def test_cumulative_findings_from_known_errors():
    notes = {
        "VAE, by ablation effect": [100.0, 60.0, 30.0, 19.0, 10.0],
        "VAE, by KL": [100.0, 90.0, 40.0, 20.0, 10.0],
        "PCA, by explained variance": [80.0, 50.0, 30.0, 20.0, 5.0],
    }
    errors = {o: pd.DataFrame([v, v]) for o, v in notes.items()}  # two notes with the same errors
    f = scores.cumulative_findings(errors, 3)
    assert (f["vae_k90"], f["pca_k90"], f["vae_full"], f["pca_full"], f["kl_gap"]) == (19.0, 20.0, 10.0, 5.0, 30.0)


def test_quoted_numbers_and_digits():
    assert scores.digits(634.4) == 1 and scores.digits(12.3) == 1 and scores.digits(0.788) == 3
    assert scores.digits(3.2, 0.5) == 2 and scores.digits(0.0) == 3 and scores.digits(math.nan, 5.0) == 2
    assert scores.quoted(1.5, "undefined: why", "dB²", sign=True) == "+1.50 dB² (interval undefined: why)"
    assert scores.rho_text(0.834) == "0.83" and scores.rho_text(math.nan) == "undefined (constant effects)"
    assert scores.comparison("undefined: why", -2.0) == "2.00 dB² lower (interval undefined: why)"


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
    for change in ({"n_audio_examples": 2}, {"griffin_lim_iters": 4}, {"bootstrap_n": 500}):
        assert result_key(ablation.AblationResult, dataclasses.replace(tiny_cfg, **change), upstream) != key
    assert result_key(ablation.AblationResult, dataclasses.replace(tiny_cfg, n_anchors=5), upstream) == key


def test_result_of_the_tiny_run_is_consistent(tiny_cfg, stage_store):
    r = ablation.result(tiny_cfg)
    f = r.findings
    assert sorted(r.dimension_order) == list(range(tiny_cfg.latent_dim))
    assert f["n_listen"] == tiny_cfg.n_audio_examples and f["n_dims"] == tiny_cfg.latent_dim
    zero, valid = r.table("zero_overall"), r.table("valid_overall")
    assert {"base_mean", "increase_mean", "increase_sem", "relative_increase"} <= set(zero.columns)
    assert list(valid.columns) == ["base_mean", "increase_mean", "increase_sem", "relative_increase"]
    assert zero.index.name == "dim" and (zero["base_mean"] == f["base_mse"]).all()
    by_valid = valid.sort_values("increase_mean", ascending=False, kind="stable").index
    assert list(by_valid) == list(r.dimension_order)  # the order is the validation notes'
    assert f["n_free"] == int((valid["increase_mean"] < 0.01 * valid["base_mean"]).sum())
    assert set(f["dimension_descriptor"]) <= {str(d) for d in range(tiny_cfg.latent_dim)}
    assert r.arrays["listen_db"].shape[0] == len(r.table("listening")) == 5 * f["n_listen"]
    assert f["captum_agrees"] and 0 <= f["k90"] <= tiny_cfg.latent_dim
    assert f["listen_peak_dbfs"] == pytest.approx(peak_dbfs(r.arrays["listen_audio"])) == pytest.approx(-1.0)
    assert not r.table("intervals")["95 % interval"].isna().any()
