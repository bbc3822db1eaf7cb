"""The model-summary stage: the untrained ConvVAE of a configuration, layer by layer, and its loss;
and the decoder's noise scale and β on the calibrated scale of a model.

:func:`result` builds the model exactly as training starts it (seeded with ``cfg.seed``),
tabulates its layers, and scores its loss on the first training batch before any training.
It depends on the features and the model parameters, not on a trained run, so it is cached
beside the data. :func:`decoder_sigma` and :func:`calibrated_beta` read a trained model.

Chapter: 02_model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from vaetone import store
from vaetone.config import Config
from vaetone.errors import ConfigError
from vaetone.model.vae import DECODER_VARIANCES, ConvVAE, layer_table, loss_terms, n_parameters, padded_shape
from vaetone.results import StageResult, cached
from vaetone.spectral.features import load_features

CLOSE = 0.1
"""Relative difference up to which the untrained reconstruction term is "close to" that of predicting zeros."""


@dataclass(frozen=True)
class ModelSummary(StageResult):
    """What chapter 02 quotes and shows about the model: its layers, size and untrained loss.

    Tables: ``layers`` (:func:`vaetone.model.vae.layer_table`: layer, kind, output_shape,
    parameters, from the input to the output).
    Findings: see :func:`architecture_findings`, :func:`untrained_loss` and :func:`answer` ("answer").
    Chapter: 02_model.
    """

    stage: ClassVar[str] = "model_summary"
    version: ClassVar[int] = 3
    params: ClassVar[tuple[str, ...]] = ("batch_size", "beta", "free_bits", "seed", "decoder_variance")


def untrained_model(cfg: Config, n_mels: int, n_frames: int) -> ConvVAE:
    """The ConvVAE of ``cfg`` with the initial weights of seed ``cfg.seed`` (global RNG state untouched).

    Args:
        cfg: model parameters and ``seed``; n_mels, n_frames: the input size.
    Returns:
        The model on the CPU, in eval mode. Chapter: 02_model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        vae = ConvVAE(cfg, n_mels, n_frames)
    return vae.eval()


def architecture_findings(vae: ConvVAE, cfg: Config) -> dict:
    """The model's size and shape as the chapter quotes them.

    Args:
        vae: the model; cfg: the model parameters it was built with.
    Returns:
        {"n_parameters": int; "n_params": the same as text with thousands separators ("187,009");
         "params_line": "<n_params> trainable parameters"; "depth": strided layers;
         "latent_dim": int; "padded": the padded input "<mels>×<frames>";
         "n_bins": mel bands x frames; "n_mels", "n_frames": the input size;
         "input_description": the model's input and settings;
         "decoder_variance": "fixed", "global" or "per_band"}.
    Chapter: 02_model.
    """
    n = n_parameters(vae)
    depth = len(cfg.channels)
    height, width = padded_shape(vae.n_mels, vae.n_frames, depth)
    return {
        "n_parameters": n,
        "n_params": f"{n:,}",
        "params_line": f"{n:,} trainable parameters",
        "depth": depth,
        "latent_dim": vae.latent_dim,
        "padded": f"{height}×{width}",
        "n_bins": vae.n_mels * vae.n_frames,
        "n_mels": vae.n_mels,
        "n_frames": vae.n_frames,
        "input_description": (
            f"input: {vae.n_mels} mel bands × {vae.n_frames} frames; latent_dim={vae.latent_dim}, "
            f"channels={cfg.channels}, kernel={cfg.kernel_size}, norm={cfg.norm}, activation={cfg.activation}"
        ),
        "decoder_variance": vae.decoder_variance,
    }


def untrained_loss(vae: ConvVAE, x: torch.Tensor, beta: float, free_bits: float) -> dict:
    """The loss terms of a batch through the model in eval mode (posterior means), in nats per note.

    Args:
        vae: the model; x: normalised log-mel (batch, 1, n_mels, frames);
        beta, free_bits: as in :func:`vaetone.model.vae.loss_terms`.
    Returns:
        {"untrained_recon", "untrained_kl", "untrained_total": float; "untrained_line": the three
         as one sentence; "zero_recon": the reconstruction term of an output of zeros (the
         train-split mean, i.e. the average spectrum); "recon_comparison": how the first compares
         with it, "close to" (within :data:`CLOSE` of it), "above" or "below"}. Chapter: 02_model.
    """
    was_training = vae.training
    vae.eval()
    try:
        with torch.no_grad():
            recon, mu, logvar = vae(x)
            terms = loss_terms(recon, x, mu, logvar, beta=beta, free_bits=free_bits, log_sigma=vae.log_sigma)
            zero = float(loss_terms(torch.zeros_like(x), x, mu, logvar, beta=0.0)["recon"])
    finally:
        vae.train(was_training)
    rec, kl, total = (float(terms[k]) for k in ("recon", "kl", "total"))
    line = f"untrained: reconstruction {rec:.1f} nats/note, KL {kl:.2f} nats/note, total {total:.1f}"
    comparison = "close to" if abs(rec - zero) <= CLOSE * zero else ("above" if rec > zero else "below")
    return {
        "untrained_recon": rec,
        "untrained_kl": kl,
        "untrained_total": total,
        "untrained_line": line,
        "zero_recon": zero,
        "recon_comparison": comparison,
    }


NOISE = {
    "fixed": "a Gaussian with σ = 1",
    "global": "a Gaussian with one learned σ",
    "per_band": "a Gaussian with one learned σ per mel band",
}
"""How :func:`answer` names the decoder's noise model of each ``decoder_variance``."""


def answer(findings: dict, beta: float, free_bits: float) -> str:
    """The model chapter's answer in one sentence: the model's size, its latent size and the loss it minimises.

    Args:
        findings: :func:`architecture_findings` ("n_params", "n_bins", "latent_dim", "decoder_variance").
        beta: the KL weight (0: the plain autoencoder, no KL term); free_bits: nats per dimension (0: none).
    Returns:
        E.g. "A convolutional VAE of 187,009 parameters encodes the 8,064 log-mel values of a note
        into 16 latent numbers and minimises the reconstruction error (negative log-likelihood under
        a Gaussian with σ = 1) plus β = 1 times the KL divergence of the posterior from N(0, I)."
    Chapter: 02_model.
    """
    noise = NOISE[findings["decoder_variance"]]
    head = (
        f"A convolutional VAE of {findings['n_params']} parameters encodes the {findings['n_bins']:,} log-mel "
        f"values of a note into {findings['latent_dim']} latent numbers and minimises the reconstruction error "
        f"(negative log-likelihood under {noise})"
    )
    if beta == 0:
        return head + " alone: with β = 0 there is no KL term, and the model is a plain autoencoder."
    bits = f", with {free_bits:g} free nats per dimension" if free_bits > 0 else ""
    return head + f" plus β = {beta:g} times the KL divergence of the posterior from N(0, I){bits}."


def compute_summary(vae: ConvVAE, x: torch.Tensor, cfg: Config) -> ModelSummary:
    """The model summary of a built model and a batch of inputs (nothing is read from disk).

    Args:
        vae: the (untrained) model; x: a batch of normalised log-mel (batch, 1, n_mels, frames);
        cfg: the model parameters it was built with, ``beta`` and ``free_bits``.
    Returns:
        A :class:`ModelSummary`. Chapter: 02_model.
    """
    if len(x) == 0:
        raise ConfigError("the model summary needs at least one training note; widen the data filters")
    findings = {**architecture_findings(vae, cfg), **untrained_loss(vae, x, cfg.beta, cfg.free_bits)}
    findings["answer"] = answer(findings, cfg.beta, cfg.free_bits)
    return ModelSummary(tables={"layers": layer_table(vae)}, findings=findings)


def result(cfg: Config) -> ModelSummary:
    """The model summary of ``cfg``: computed once, then loaded from the data cache.

    The model is built with seed ``cfg.seed`` and scored on the first ``cfg.batch_size``
    notes of the train split.

    Args:
        cfg: data, feature and model parameters (the upstream key), batch_size, beta, free_bits, seed.
    Returns:
        A :class:`ModelSummary`, cached under ``store.data_dir()/results/model_summary-<key>/``.
    Chapter: 02_model.
    """

    def compute() -> ModelSummary:
        feats = load_features(cfg)
        vae = untrained_model(cfg, feats.n_mels, feats.n_frames)
        return compute_summary(vae, feats.x("train")[: cfg.batch_size], cfg)

    return cached(ModelSummary, cfg, compute, folder=store.data_dir(), upstream=store.key("model", cfg))


def decoder_sigma(model: torch.nn.Module) -> torch.Tensor | None:
    """The decoder's learned noise standard deviation σ, in normalised units (train-split standard deviations).

    Args:
        model: a ConvVAE (or a module wrapping one as ``.module``, e.g. DistributedDataParallel).
    Returns:
        σ = exp(log_sigma) on the CPU, detached: shape ``()`` ("global") or ``(n_mels,)``
        ("per_band"); None when the variance is fixed (σ = 1). Chapters: 03_training, 08_validity.
    """
    model = getattr(model, "module", model)
    log_sigma = getattr(model, "log_sigma", None)
    return None if log_sigma is None else log_sigma.detach().float().exp().cpu()


def calibrated_beta(beta: float, decoder_variance: str, mse: float, sigma=None) -> float:
    """β on the calibrated scale: the β of the textbook ELBO whose Gaussian decoder has the maximum-likelihood noise.

    Derivation. With a decoder noise σ fixed at 1 (normalised units) and N bins per note, the
    training objective per note is ``0.5·SSE + β·KL`` (SSE: the squared error summed over the
    bins). The maximum-likelihood noise variance of the same decoder is the error per bin,
    ``σ_ML² = SSE / N``, i.e. the validation ``mse`` in normalised units. The ELBO with that
    calibrated noise, weighted by β_cal, is ``0.5·SSE/σ_ML² + β_cal·KL`` (+ terms that do not depend
    on the network). Since

        0.5·SSE + β·KL = σ_ML² · (0.5·SSE/σ_ML² + (β/σ_ML²)·KL),

    both objectives have the same minimisers (a positive factor only rescales the step size), so
    the fixed-σ model trains as the calibrated ELBO with

        β_cal = β / σ_ML² = β / mse.

    For example β = 1 with an error of 0.0625 per bin (σ_ML = 0.25) is β_cal = 16: fixed σ = 1
    weights the KL term 16 times more than the textbook ELBO does. With a learned σ ("global" or
    "per_band") the objective is the full Gaussian NLL and σ is fitted by maximum likelihood along
    with the network, so β already has its textbook meaning: β_cal = β. (This assumes σ reached its
    fitted value; compare ``sigma`` with ``sqrt(mse)`` in the history.)

    Args:
        beta: the KL weight the model was trained with (≥ 0; 0 is the autoencoder, β_cal = 0).
        decoder_variance: "fixed", "global" or "per_band".
        mse: the mean squared error per bin on the validation notes, normalised units (> 0).
        sigma: the learned σ (:func:`decoder_sigma`; float or tensor), checked to be positive and
            finite when given; unused in the formula (None, or 1, for "fixed").
    Returns:
        β_cal (float). Chapters: 03_training, 08_validity.
    Raises:
        ConfigError: an unknown ``decoder_variance``, a negative or non-finite β, a non-positive
            or non-finite ``mse``, or a ``sigma`` that is not positive and finite.
    """
    if decoder_variance not in DECODER_VARIANCES:
        raise ConfigError(
            f"calibrated_beta: decoder_variance={decoder_variance!r} is not one of {list(DECODER_VARIANCES)}"
        )
    if not (math.isfinite(beta) and beta >= 0):
        raise ConfigError(f"calibrated_beta: beta={beta!r} must be finite and >= 0")
    if not (math.isfinite(mse) and mse > 0):
        raise ConfigError(
            f"calibrated_beta: mse={mse!r} must be finite and > 0 (the validation error per bin of a trained run)"
        )
    if sigma is not None:
        values = torch.as_tensor(sigma, dtype=torch.float64)
        if not bool((torch.isfinite(values) & (values > 0)).all()):
            raise ConfigError(f"calibrated_beta: sigma={values.tolist()!r} must be positive and finite")
    if decoder_variance == "fixed":
        return float(beta) / float(mse)
    return float(beta)
