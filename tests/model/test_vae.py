"""Tests of vaetone.model (shapes, refusal of bad shapes, the loss) and vaetone.generate."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import generate
from vaetone.errors import ConfigError
from vaetone.model.vae import ConvVAE, Objective, layer_table, loss_terms, n_parameters, padded_shape


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize(
    "latent_dim, channels, norm, kernel, activation, n_mels, n_frames",
    [
        (16, [4, 8], "batch", 4, "leaky_relu", 16, 32),
        (1, [4], "none", 3, "relu", 16, 31),
        (3, [4, 8, 12], "group", 5, "gelu", 17, 33),
        (8, [6, 8, 10], "batch", 3, "silu", 20, 50),
        (5, [4, 8], "group", 2, "leaky_relu", 13, 126),
    ],
)
def test_shapes_for_several_configurations(latent_dim, channels, norm, kernel, activation, n_mels, n_frames):
    cfg = config.make(latent_dim=latent_dim, channels=channels, norm=norm, kernel_size=kernel, activation=activation)
    model = ConvVAE(cfg, n_mels, n_frames)
    x = torch.randn(3, 1, n_mels, n_frames)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, latent_dim)
    recon, mu2, _ = model(x)
    assert recon.shape == x.shape and mu2.shape == (3, latent_dim)
    assert model.decode(torch.randn(2, latent_dim)).shape == (2, 1, n_mels, n_frames)
    step = 2 ** len(channels)
    assert model.bottleneck == (channels[-1], math.ceil(n_mels / step), math.ceil(n_frames / step))
    table = layer_table(model)
    assert table["output_shape"].iloc[-1] == f"1×{n_mels}×{n_frames}"
    assert table["parameters"].sum() == n_parameters(model)


def test_layer_table_of_the_16_to_128_channel_model():
    model = ConvVAE(config.make(channels=[16, 32, 64, 128]), 64, 126)
    table = layer_table(model).set_index("layer")
    assert table.loc["pad", "output_shape"] == "1×64×128"
    assert table.loc["encoder.3", "output_shape"] == "128×4×8"
    assert table.loc["to_mu", "output_shape"] == "16"
    assert table.loc["decoder.6", "output_shape"] == "1×64×126"
    assert table.loc["to_mu", "parameters"] == 4096 * 16 + 16
    assert n_parameters(model) == table["parameters"].sum() == 546017


def test_padding_does_not_leak_into_the_output():
    """Padded cells are cropped: the output is exactly (n_mels, n_frames) and gradients reach every input cell."""
    model = ConvVAE(config.make(channels=[4, 8], latent_dim=2, norm="none"), 10, 30)
    assert padded_shape(10, 30, 2) == (12, 32)
    x = torch.randn(2, 1, 10, 30, requires_grad=True)
    recon, _, _ = model(x)
    recon.sum().backward()
    assert recon.shape == (2, 1, 10, 30) and x.grad.shape == x.shape


@pytest.mark.parametrize("n_mels, n_frames", [(7, 32), (16, 5), (0, 32)])
def test_inputs_the_strides_cannot_take_are_refused(n_mels, n_frames):
    cfg = config.make(channels=[4, 8, 16], latent_dim=2)
    with pytest.raises(ConfigError, match="at least 8"):
        ConvVAE(cfg, n_mels, n_frames)


def test_wrong_input_or_latent_shape_is_refused():
    model = ConvVAE(config.make(channels=[4, 8], latent_dim=3), 16, 32)
    with pytest.raises(ConfigError, match=r"expects input \(n, 1, 16, 32\)"):
        model.encode(torch.zeros(2, 1, 16, 30))
    with pytest.raises(ConfigError, match=r"expects input"):
        model(torch.zeros(2, 16, 32))
    with pytest.raises(ConfigError, match=r"\(n, 3\)"):
        model.decode(torch.zeros(2, 4))


def test_encoder_is_stochastic_in_training_only_and_deterministic_for_beta_zero():
    x = torch.randn(4, 1, 16, 32)
    vae = ConvVAE(config.make(channels=[4, 8], latent_dim=3), 16, 32).train()
    with torch.no_grad():
        assert not torch.equal(vae(x)[0], vae(x)[0])
        vae.eval()
        assert torch.equal(vae(x)[0], vae(x)[0])
    ae = ConvVAE(config.make(channels=[4, 8], latent_dim=3, beta=0), 16, 32).train()
    with torch.no_grad():
        assert ae.deterministic and torch.equal(ae(x)[0], ae(x)[0])


def test_loss_terms_known_answers():
    x = torch.zeros(2, 1, 4, 5)
    zeros = torch.zeros(2, 3)
    t = loss_terms(x + 1.0, x, zeros, zeros, beta=1.0)
    assert float(t["recon"]) == pytest.approx(0.5 * 20)  # 0.5 * 20 bins * 1², per note
    assert float(t["kl"]) == 0.0 and float(t["total"]) == pytest.approx(10.0)
    mu = torch.ones(2, 3)
    t = loss_terms(x, x, mu, zeros, beta=2.0)
    assert t["kl_per_dim"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert float(t["kl"]) == pytest.approx(1.5) and float(t["total"]) == pytest.approx(3.0)
    t = loss_terms(x, x, mu, zeros, beta=2.0, free_bits=1.0)  # each dimension counted as 1 nat
    assert float(t["kl"]) == pytest.approx(1.5) and float(t["total"]) == pytest.approx(6.0)
    t = loss_terms(x + 1.0, x, mu, zeros, beta=0.0)
    assert float(t["total"]) == pytest.approx(10.0) and float(t["kl"]) == pytest.approx(1.5)
    logvar = torch.full((2, 3), math.log(4.0))  # KL(N(0,4) || N(0,1)) per dim
    t = loss_terms(x, x, zeros, logvar, beta=1.0)
    assert float(t["kl"]) == pytest.approx(3 * 0.5 * (4 - 1 - math.log(4)))


# ------------------------------------------------------------------ generation


def test_linear_and_spherical_interpolation():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    line, arc = generate.lerp(a, b, 5), generate.slerp(a, b, 5)
    assert line.shape == arc.shape == (5, 2)
    for path in (line, arc):
        assert torch.allclose(path[0], torch.tensor(a, dtype=path.dtype))
        assert torch.allclose(path[-1], torch.tensor(b, dtype=path.dtype))
    assert float(line[2].norm()) == pytest.approx(math.sqrt(0.5))
    assert torch.allclose(arc.norm(dim=1), torch.ones(5, dtype=arc.dtype))
    assert torch.allclose(arc[2], torch.tensor([1.0, 1.0], dtype=arc.dtype) / math.sqrt(2))
    same = generate.slerp(a, 2 * a, 3)  # parallel: falls back to lerp
    assert torch.allclose(same[1], torch.tensor([1.5, 0.0], dtype=same.dtype))
    with pytest.raises(ConfigError):
        generate.lerp(a, np.zeros(3), 3)


def test_prior_samples_and_interpolations_decode():
    model = ConvVAE(config.make(channels=[4, 8], latent_dim=3), 16, 32).eval()
    decode = torch.no_grad()(model.decode)
    z, x = generate.prior_samples(decode, 4, 3, seed=1)
    z2, x2 = generate.prior_samples(decode, 4, 3, seed=1)
    assert z.shape == (4, 3) and x.shape == (4, 1, 16, 32)
    assert torch.equal(z, z2) and torch.equal(x, x2)
    for method in ("linear", "spherical"):
        zi, xi = generate.interpolate(decode, z[0], z[1], steps=6, method=method)
        assert zi.shape == (6, 3) and xi.shape == (6, 1, 16, 32)
        assert torch.allclose(xi[0], x[0], atol=1e-5) and torch.allclose(xi[-1], x[1], atol=1e-5)
    with pytest.raises(ConfigError, match="method"):
        generate.interpolate(decode, z[0], z[1], method="cubic")


def test_pick_pair_chooses_two_families_at_one_pitch():
    meta = pd.DataFrame(
        {
            "split": ["test"] * 6 + ["train"],
            "instrument_family_str": ["brass", "brass", "flute", "reed", "reed", "flute", "organ"],
            "pitch": [60, 64, 60, 64, 70, 70, 60],
            "velocity": 100,
        },
        index=[f"n{i}" for i in range(7)],
    )
    for seed in range(5):
        a, b = generate.pick_pair(meta, "test", seed)
        ra, rb = meta.loc[a], meta.loc[b]
        assert ra["instrument_family_str"] != rb["instrument_family_str"] and ra["pitch"] == rb["pitch"]
        assert ra["split"] == rb["split"] == "test"
    with pytest.raises(ConfigError, match="fewer than two"):
        generate.pick_pair(meta, "train")


def test_to_db_uses_the_features_statistics():
    class Feats:
        def denormalise(self, x):
            return x * 10 - 40

    x = torch.zeros(3, 1, 16, 32)
    assert torch.equal(generate.to_db(x, Feats()), torch.full((3, 16, 32), -40.0))


# ------------------------------------------------------------- decoder variance


@pytest.mark.parametrize("log_sigma", [torch.zeros(()), torch.zeros(4)])
def test_the_gaussian_nll_with_sigma_one_is_the_fixed_loss(log_sigma):
    g = torch.Generator().manual_seed(3)
    x, recon = torch.randn(3, 1, 4, 5, generator=g), torch.randn(3, 1, 4, 5, generator=g)
    mu, logvar = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    fixed = loss_terms(recon, x, mu, logvar, beta=2.0)
    learned = loss_terms(recon, x, mu, logvar, beta=2.0, log_sigma=log_sigma)
    for k in ("total", "recon", "kl"):
        assert float(learned[k]) == pytest.approx(float(fixed[k]), rel=1e-6)


def test_the_gaussian_nll_known_answers():
    x = torch.zeros(2, 1, 4, 5)
    zeros = torch.zeros(2, 3)
    t = loss_terms(x + 1.0, x, zeros, zeros, beta=1.0, log_sigma=torch.tensor(math.log(0.5)))
    assert float(t["recon"]) == pytest.approx(0.5 * 20 * 4 + 20 * math.log(0.5))  # error 1 = 2 σ in 20 bins
    per_band = torch.log(torch.tensor([1.0, 2.0, 0.5, 1.0]))  # one σ per mel band, 5 frames each
    t = loss_terms(x + 1.0, x, zeros, zeros, beta=1.0, log_sigma=per_band)
    want = sum(5 * (0.5 / s**2 + math.log(s)) for s in (1.0, 2.0, 0.5, 1.0))
    assert float(t["recon"]) == pytest.approx(want)
    with pytest.raises(ConfigError, match="3 bands but the input has 4"):
        loss_terms(x, x, zeros, zeros, beta=1.0, log_sigma=torch.zeros(3))


def _fit_log_sigma(recon, x, shape, steps=400):
    """Adam on log σ alone (recon fixed): the maximum-likelihood σ of the residuals."""
    log_sigma = torch.zeros(shape, requires_grad=True)
    opt = torch.optim.Adam([log_sigma], lr=0.05)
    zeros = torch.zeros(len(x), 2)
    for _ in range(steps):
        opt.zero_grad()
        loss_terms(recon, x, zeros, zeros, beta=1.0, log_sigma=log_sigma)["total"].backward()
        opt.step()
    return log_sigma.detach().exp()


def test_a_learned_global_sigma_converges_to_the_noise_level():
    g = torch.Generator().manual_seed(0)
    recon = torch.randn(64, 1, 8, 16, generator=g)
    x = recon + 0.25 * torch.randn(recon.shape, generator=g)
    sigma = _fit_log_sigma(recon, x, ())
    assert float(sigma) == pytest.approx(0.25, rel=0.03)
    assert float(sigma) == pytest.approx(float((x - recon).pow(2).mean().sqrt()), rel=1e-3)  # the ML estimate


def test_a_per_band_sigma_learns_each_bands_noise_level():
    g = torch.Generator().manual_seed(1)
    noise = torch.linspace(0.1, 0.8, 8)
    recon = torch.randn(64, 1, 8, 16, generator=g)
    x = recon + noise[:, None] * torch.randn(recon.shape, generator=g)
    sigma = _fit_log_sigma(recon, x, (8,))
    assert sigma.shape == (8,)
    assert torch.allclose(sigma, noise, rtol=0.05)
    assert torch.allclose(sigma, (x - recon).pow(2).mean((0, 1, 3)).sqrt(), rtol=2e-3)


def test_log_sigma_exists_only_when_learned_and_leaves_the_other_weights_alone():
    models = {}
    for variance in ("fixed", "global", "per_band"):
        torch.manual_seed(5)
        models[variance] = ConvVAE(config.make(channels=[4, 8], latent_dim=3, decoder_variance=variance), 16, 32)
    fixed, one, bands = (models[v].state_dict() for v in ("fixed", "global", "per_band"))
    assert "log_sigma" not in fixed and models["fixed"].log_sigma is None
    assert one["log_sigma"].shape == () and bands["log_sigma"].shape == (16,)
    assert float(one["log_sigma"]) == 0.0 and not bands["log_sigma"].any()
    for state in (one, bands):
        assert set(state) - set(fixed) == {"log_sigma"}
        assert all(torch.equal(state[k], fixed[k]) for k in fixed)
    assert n_parameters(models["per_band"]) == n_parameters(models["fixed"]) + 16
    table = layer_table(models["per_band"])
    assert table["layer"].iloc[-1] == "log_sigma" and table["output_shape"].iloc[-1] == "16"
    assert table["parameters"].sum() == n_parameters(models["per_band"])
    assert layer_table(models["global"])["output_shape"].iloc[-1] == "1"


def test_an_unknown_decoder_variance_is_refused():
    cfg = dataclasses.replace(config.make(channels=[4, 8], latent_dim=3), decoder_variance="per_frame")
    with pytest.raises(ConfigError, match="decoder_variance='per_frame' is not one of"):
        ConvVAE(cfg, 16, 32)


@pytest.mark.parametrize("beta", [1.0, 0.0])
def test_the_objective_module_gives_the_loss_and_gradients_reach_log_sigma(beta):
    torch.manual_seed(0)
    vae = ConvVAE(config.make(channels=[4, 8], latent_dim=3, beta=beta, decoder_variance="global"), 16, 32).eval()
    x = torch.randn(4, 1, 16, 32)
    out = Objective(vae, free_bits=0.0)(x, beta)
    recon, mu, logvar = vae(x)
    want = loss_terms(recon, x, mu, logvar, beta, log_sigma=vae.log_sigma)
    assert float(out["total"].detach()) == pytest.approx(float(want["total"].detach()))
    assert not out["recon"].requires_grad and not out["kl"].requires_grad
    out["total"].backward()
    assert vae.log_sigma.grad is not None and float(vae.log_sigma.grad) != 0.0
    assert (vae.to_logvar.weight.grad is None) == (beta == 0)  # the autoencoder never uses its log-variance head
