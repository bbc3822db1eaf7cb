"""Tests of the model-summary stage (vaetone.model.summary): size, layers, untrained loss, caching."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vaetone import config, store
from vaetone.errors import ConfigError
from vaetone.model import summary
from vaetone.model.vae import ConvVAE, layer_table, loss_terms, n_parameters
from vaetone.results import result_key
from vaetone.spectral.features import load_features

MELS, FRAMES = 16, 30


@pytest.fixture
def cfg():
    """A small model: depth 2, latent size 3."""
    return config.make(latent_dim=3, channels=[4, 8], beta=1.0, device="cpu")


@pytest.fixture
def x():
    """A seeded batch of normalised log-mel, (5, 1, MELS, FRAMES)."""
    return torch.randn(5, 1, MELS, FRAMES, generator=torch.Generator().manual_seed(1))


def _silence_output(vae: ConvVAE, value: float) -> None:
    """Make the decoder output ``value`` everywhere: the last transposed convolution's weights 0, its bias ``value``."""
    last = vae.decoder[-2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


def test_architecture_findings_are_those_of_the_model(cfg, x):
    vae = summary.untrained_model(cfg, MELS, FRAMES)
    r = summary.compute_summary(vae, x, cfg)
    n = n_parameters(vae)
    assert r.findings["n_parameters"] == n and r.findings["n_params"] == f"{n:,}"
    assert r.findings["params_line"] == f"{n:,} trainable parameters"
    assert r.findings["depth"] == 2 and r.findings["latent_dim"] == 3
    assert r.findings["padded"] == "16×32" and r.findings["n_bins"] == MELS * FRAMES
    assert r.findings["input_description"] == (
        f"input: {MELS} mel bands × {FRAMES} frames; latent_dim=3, channels=[4, 8], kernel=4, "
        "norm=batch, activation=leaky_relu"
    )
    assert r.table("layers").equals(layer_table(vae))
    assert r.table("layers")["parameters"].sum() == n


def test_n_params_has_thousands_separators():
    big = config.make(latent_dim=16, channels=[8, 16, 32, 64])
    f = summary.architecture_findings(ConvVAE(big, 64, 126), big)
    assert f["n_params"] == f"{f['n_parameters']:,}" and "," in f["n_params"]


def test_untrained_loss_is_what_loss_terms_gives(cfg, x):
    vae = summary.untrained_model(cfg, MELS, FRAMES)
    vae.train()
    f = summary.compute_summary(vae, x, cfg).findings
    assert vae.training, "the summary must leave the model's mode as it found it"
    vae.eval()
    with torch.no_grad():
        recon, mu, logvar = vae(x)
        terms = loss_terms(recon, x, mu, logvar, beta=cfg.beta, free_bits=cfg.free_bits)
    assert f["untrained_recon"] == float(terms["recon"]) and f["untrained_kl"] == float(terms["kl"])
    assert f["untrained_total"] == float(terms["total"]) == pytest.approx(f["untrained_recon"] + f["untrained_kl"])
    assert f["zero_recon"] == pytest.approx(0.5 * float(x.pow(2).sum()) / len(x), rel=1e-6)
    rec, kl, total = f["untrained_recon"], f["untrained_kl"], f["untrained_total"]
    assert f["untrained_line"] == (
        f"untrained: reconstruction {rec:.1f} nats/note, KL {kl:.2f} nats/note, total {total:.1f}"
    )


def test_a_decoder_of_zeros_costs_exactly_the_average_spectrum(cfg, x):
    vae = summary.untrained_model(cfg, MELS, FRAMES)
    _silence_output(vae, 0.0)
    f = summary.compute_summary(vae, x, cfg).findings
    assert f["untrained_recon"] == f["zero_recon"] and f["recon_comparison"] == "close to"
    _silence_output(vae, 3.0)
    f = summary.compute_summary(vae, x, cfg).findings
    expected = 0.5 * float((3.0 - x).pow(2).sum()) / len(x)
    assert f["untrained_recon"] == pytest.approx(expected, rel=1e-6) and f["recon_comparison"] == "above"


def test_free_bits_and_beta_enter_the_total(cfg, x):
    vae = summary.untrained_model(cfg, MELS, FRAMES)
    plain = summary.compute_summary(vae, x, cfg).findings
    with_bits = summary.compute_summary(vae, x, dataclasses.replace(cfg, free_bits=5.0)).findings
    assert with_bits["untrained_recon"] == plain["untrained_recon"]
    assert with_bits["untrained_total"] >= plain["untrained_recon"] + 3 * 5.0 - 1e-3
    autoencoder = summary.compute_summary(vae, x, dataclasses.replace(cfg, beta=0.0)).findings
    assert autoencoder["untrained_total"] == autoencoder["untrained_recon"]


def test_untrained_model_is_seeded_and_leaves_the_global_generator_alone(cfg):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = summary.untrained_model(cfg, MELS, FRAMES)
    assert torch.equal(torch.rand(3), expected)
    b = summary.untrained_model(cfg, MELS, FRAMES)
    c = summary.untrained_model(dataclasses.replace(cfg, seed=1), MELS, FRAMES)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.to_mu.weight, c.to_mu.weight)
    torch.manual_seed(cfg.seed)
    assert torch.equal(a.to_mu.weight, ConvVAE(cfg, MELS, FRAMES).to_mu.weight)


def test_result_is_cached_and_keyed_by_its_parameters(tiny_cfg, stage_store, monkeypatch):
    first = summary.result(tiny_cfg)
    key = result_key(summary.ModelSummary, tiny_cfg, store.key("model", tiny_cfg))
    folder = store.data_dir() / "results" / f"model_summary-{key}"
    assert (folder / "findings.json").is_file() and (folder / "layers.csv").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("a cached result was recomputed")

    with monkeypatch.context() as patched:
        patched.setattr(summary, "compute_summary", refuse)
        again = summary.result(tiny_cfg)
    assert again.findings == first.findings and again.table("layers").equals(first.table("layers"))

    feats = load_features(tiny_cfg)
    vae = summary.untrained_model(tiny_cfg, feats.n_mels, feats.n_frames)
    assert first.findings["n_parameters"] == n_parameters(vae)
    x = feats.x("train")[: tiny_cfg.batch_size]
    with torch.no_grad():
        recon, mu, logvar = vae(x)
        terms = loss_terms(recon, x, mu, logvar, beta=tiny_cfg.beta, free_bits=tiny_cfg.free_bits)
    assert first.findings["untrained_recon"] == float(terms["recon"])

    for change in ({"beta": 4.0}, {"seed": 1}, {"batch_size": 8}, {"free_bits": 0.5}, {"latent_dim": 3}):
        other = dataclasses.replace(tiny_cfg, **change)
        assert result_key(summary.ModelSummary, other, store.key("model", other)) != key, change
    reseeded = summary.result(dataclasses.replace(tiny_cfg, seed=1))
    assert reseeded.findings["untrained_recon"] != first.findings["untrained_recon"]
    assert reseeded.findings["n_parameters"] == first.findings["n_parameters"]
    longer = dataclasses.replace(tiny_cfg, epochs=9, lr=3e-4)
    assert result_key(summary.ModelSummary, longer, store.key("model", longer)) == key


def test_calibrated_beta_known_answers():
    assert summary.calibrated_beta(1.0, "fixed", 0.0625) == pytest.approx(16.0)  # σ_ML = 0.25: β/σ_ML²
    assert summary.calibrated_beta(0.25, "fixed", 0.5) == pytest.approx(0.5)
    assert summary.calibrated_beta(0.0, "fixed", 0.0625) == 0.0  # the autoencoder stays at 0
    assert summary.calibrated_beta(4.0, "global", 0.0625, sigma=torch.tensor(0.25)) == 4.0
    assert summary.calibrated_beta(4.0, "per_band", 0.0625, sigma=torch.full((16,), 0.3)) == 4.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.0, "per_frame", 0.1), "decoder_variance='per_frame'"),
        ((-1.0, "fixed", 0.1), "beta=-1.0 must be finite"),
        ((float("nan"), "fixed", 0.1), "beta=nan"),
        ((1.0, "fixed", 0.0), "mse=0.0 must be finite and > 0"),
        ((1.0, "global", float("inf")), "mse=inf"),
    ],
)
def test_calibrated_beta_refuses_bad_input(args, match):
    with pytest.raises(ConfigError, match=match):
        summary.calibrated_beta(*args)
    with pytest.raises(ConfigError, match="sigma"):
        summary.calibrated_beta(1.0, "global", 0.1, sigma=torch.tensor([0.2, 0.0]))


def test_decoder_sigma_is_exp_log_sigma_or_none(cfg):
    assert summary.decoder_sigma(ConvVAE(cfg, MELS, FRAMES)) is None
    vae = ConvVAE(dataclasses.replace(cfg, decoder_variance="per_band"), MELS, FRAMES)
    with torch.no_grad():
        vae.log_sigma.copy_(torch.log(torch.linspace(0.1, 1.6, MELS)))
    sigma = summary.decoder_sigma(vae)
    assert sigma.shape == (MELS,) and not sigma.requires_grad
    assert torch.allclose(sigma, torch.linspace(0.1, 1.6, MELS))
    wrapped = torch.nn.Module()
    wrapped.module = vae  # as DistributedDataParallel holds it
    assert torch.equal(summary.decoder_sigma(wrapped), sigma)


def test_the_summary_of_a_learned_variance_counts_log_sigma_and_starts_at_sigma_one(cfg, x):
    fixed = summary.compute_summary(summary.untrained_model(cfg, MELS, FRAMES), x, cfg)
    band_cfg = dataclasses.replace(cfg, decoder_variance="per_band")
    bands = summary.compute_summary(summary.untrained_model(band_cfg, MELS, FRAMES), x, band_cfg)
    assert bands.findings["n_parameters"] == fixed.findings["n_parameters"] + MELS
    assert bands.findings["decoder_variance"] == "per_band" and fixed.findings["decoder_variance"] == "fixed"
    for k in ("untrained_recon", "untrained_kl", "untrained_total"):
        assert bands.findings[k] == pytest.approx(fixed.findings[k], rel=1e-6)  # σ = 1 at the start


def test_answer_states_size_latent_and_loss_for_known_findings():
    f = {"n_params": "187,009", "n_bins": 8064, "latent_dim": 16, "decoder_variance": "fixed"}
    head = (
        "A convolutional VAE of 187,009 parameters encodes the 8,064 log-mel values of a note into 16 latent "
        "numbers and minimises the reconstruction error (negative log-likelihood under a Gaussian with "
    )
    assert (
        summary.answer(f, 1.0, 0.0) == head + "σ = 1) plus β = 1 times the KL divergence of the posterior from N(0, I)."
    )
    per_band = {**f, "decoder_variance": "per_band"}
    assert summary.answer(per_band, 4.0, 0.5) == (
        head + "one learned σ per mel band) plus β = 4 times the KL divergence of the posterior from N(0, I), "
        "with 0.5 free nats per dimension."
    )
    assert summary.answer({**f, "decoder_variance": "global"}, 0.0, 0.0) == (
        head + "one learned σ) alone: with β = 0 there is no KL term, and the model is a plain autoencoder."
    )


def test_the_summary_glues_the_answer_of_its_own_numbers(cfg, x):
    f = summary.compute_summary(summary.untrained_model(cfg, MELS, FRAMES), x, cfg).findings
    assert f["answer"] == summary.answer(f, cfg.beta, cfg.free_bits)
    assert f"VAE of {f['n_params']} parameters" in f["answer"] and "into 3 latent numbers" in f["answer"]
    assert f["n_mels"] == MELS and f["n_frames"] == FRAMES
