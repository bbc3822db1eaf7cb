"""The training-evaluation stage: how the run trained, and how well it and two baselines reconstruct test notes.

Per-note metrics (:func:`evaluate`, :func:`evaluate_models`), their summaries (:func:`summarise`,
:func:`compare`), the findings the chapter quotes (built from the numbers, phrases included),
and the stage result :class:`EvaluationResult` with :func:`result`.

Chapter: 03_training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis import generate
from vaetone.analysis.baselines import pca_baseline
from vaetone.analysis.metrics import (
    _pair,
    f0_error_cents,
    f0_range,
    frequency_accuracy,
    log_spectral_distance,
    logmel_mse,
    multires_stft_distance,
    spectral_convergence,
)
from vaetone.config import Config
from vaetone.results import StageResult, cached
from vaetone.spectral.inversion import mel_to_audio


def evaluate(
    ref_db,
    est_db,
    cfg,
    *,
    n_iter: int | None = None,
    index=None,
    ref_audio=None,
    f0_method: str = "yin",
    audio: bool = True,
) -> pd.DataFrame:
    """All metrics of reconstructions against their originals, one row per note.

    Args:
        ref_db, est_db: log-mel in dB ``(n, n_mels, frames)`` (originals, reconstructions).
        cfg: the configuration (inversion parameters).
        n_iter: Griffin-Lim iterations (default ``cfg.griffin_lim_iters``).
        index: row labels (e.g. the notes' ``note_str``).
        ref_audio: the originals' resynthesised audio if already computed (reuse across models).
        f0_method: "yin" or "pyin" (see :func:`median_f0`); the search range is :func:`f0_range`.
        audio: False skips the three audio metrics (resynthesis costs ~0.2 s per note on 2 CPU cores).
    Returns:
        DataFrame with ``logmel_mse_db2`` (dB²), ``lsd_db`` (dB), ``spectral_convergence``, and
        with audio ``mrstft``, ``frequency_accuracy`` (0..1), ``f0_error_cents``. Chapter: 03_training.
    """
    ref_db, est_db = _pair(ref_db, est_db)
    table = pd.DataFrame(
        {
            "logmel_mse_db2": logmel_mse(ref_db, est_db),
            "lsd_db": log_spectral_distance(ref_db, est_db),
            "spectral_convergence": spectral_convergence(ref_db, est_db),
        },
        index=index,
    )
    if audio:
        a = mel_to_audio(ref_db, cfg, n_iter).numpy() if ref_audio is None else np.asarray(ref_audio)
        b = mel_to_audio(est_db, cfg, n_iter).numpy()
        table["mrstft"] = multires_stft_distance(a, b)
        table["frequency_accuracy"] = frequency_accuracy(a, b)
        table["f0_error_cents"] = f0_error_cents(a, b, method=f0_method, **f0_range(cfg))
    return table


def summarise(per_note: pd.DataFrame, groups=None) -> pd.DataFrame:
    """Mean, standard deviation and median over notes of each metric, per group and over all notes.

    Args:
        per_note: a table from :func:`evaluate`.
        groups: labels aligned with its rows (e.g. ``meta["instrument_family_str"]``), or None.
    Returns:
        Rows: the groups then "all"; columns: (metric, "mean" | "std" | "median"). NaN entries
        (e.g. the frequency accuracy of a silent note) are left out. Chapter: 03_training.
    """
    stats = ["mean", "std", "median"]
    overall = per_note.agg(stats).T.stack().to_frame("all").T
    if groups is None:
        return overall
    labels = np.asarray(groups)
    by = per_note.groupby(labels).agg(stats)
    return pd.concat([by, overall])


def compare(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Side-by-side summary of several models' per-note tables (e.g. VAE, autoencoder, PCA).

    Args:
        tables: {model name: table from :func:`evaluate`} on the same notes.
    Returns:
        One row per model; columns (metric, "mean" | "std" | "median") over all notes. Chapter: 03_training.
    """
    return pd.concat({name: summarise(t).loc["all"] for name, t in tables.items()}, axis=1).T


def evaluate_models(models: dict[str, Callable], features, cfg, split: str = "test") -> dict[str, pd.DataFrame]:
    """Per-note metrics of several models' reconstructions of one split, against the same originals.

    The spectral metrics cover every note of the split; the audio metrics (Griffin-Lim, about
    0.25 s per note and model on 2 CPU cores) a seeded subset of ``cfg.n_eval_audio`` notes
    (all when 0), NaN elsewhere. The originals are resynthesised once and shared.

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}.
        features: the Features; cfg: the configuration; split: which split to score.
    Returns:
        {name: table of :func:`evaluate` indexed by note_str}. Chapter: 03_training.
    """
    rows = features.rows(split)
    index = features.meta.index[rows]
    x, ref_db = features.x(split), features.logmel[rows]
    n_audio = len(rows) if cfg.n_eval_audio == 0 else min(cfg.n_eval_audio, len(rows))
    sub = np.sort(np.random.default_rng(cfg.seed).choice(len(rows), n_audio, replace=False))
    ref_audio = mel_to_audio(ref_db[sub], cfg).numpy()
    tables = {}
    for name, reconstruct in models.items():
        est_db = generate.to_db(reconstruct(x), features)
        table = evaluate(ref_db, est_db, cfg, index=index, audio=False)
        audio = evaluate(ref_db[sub], est_db[sub], cfg, index=index[sub], ref_audio=ref_audio)
        tables[name] = table.join(audio.drop(columns=table.columns))
    return tables


# ----------------------------------------------------------------------------- findings

MODELS = ("VAE", "autoencoder", "PCA")
"""The three models of the comparison, in the order the chapter shows them."""

INTERPOLATION_STEPS = 5
"""Points of each interpolation path, both ends included."""

N_PRIOR_SAMPLES = 4
"""Notes decoded from the prior."""


def gap_phrase(gap: float, unit: str = "dB", digits: int = 2) -> str:
    """A signed difference in words: "0.04 dB higher", "1.20 dB lower", or "the same to within 0.005 dB".

    Args:
        gap: a difference (e.g. the VAE's mean error minus the autoencoder's), in ``unit``.
        unit: its unit; digits: decimals shown.
    Returns:
        The phrase ("not measured" for NaN). Chapter: 03_training.
    """
    if not math.isfinite(gap):
        return "not measured"
    if round(abs(gap), digits) == 0:
        return f"the same to within {0.5 * 10**-digits:g} {unit}"
    return f"{abs(gap):.{digits}f} {unit} {'higher' if gap > 0 else 'lower'}"


def trend_phrase(values: pd.Series, unit: str = "nats per note", digits: int = 1) -> str:
    """How a curve moves from first to last point: "rises from 0.1 (epoch 1) to 5.1 nats per note (epoch 3)".

    Args:
        values: one value per epoch, indexed by epoch.
        unit: the values' unit; digits: decimals shown (equal when rounded means "stays at").
    Returns:
        "rises from ...", "falls from ...", "stays at ..." or, for one epoch, "is ...". Chapter: 03_training.
    """
    (e0, v0), (e1, v1) = (values.index[0], values.iloc[0]), (values.index[-1], values.iloc[-1])
    if len(values) == 1:
        return f"is {v0:.{digits}f} {unit} (epoch {e0})"
    if round(v0, digits) == round(v1, digits):
        return f"stays at {v0:.{digits}f} {unit} (epochs {e0} to {e1})"
    word = "rises" if v1 > v0 else "falls"
    return f"{word} from {v0:.{digits}f} (epoch {e0}) to {v1:.{digits}f} {unit} (epoch {e1})"


def warmup_phrase(kl_warmup_epochs: int) -> str:
    """How the KL weight is scheduled, e.g. "is warmed up linearly from 0 over the first 5 epochs".

    Chapter: 03_training.
    """
    if kl_warmup_epochs == 0:
        return "is not warmed up (it is full from the first batch)"
    span = "epoch" if kl_warmup_epochs == 1 else f"{kl_warmup_epochs} epochs"
    return f"is warmed up linearly from 0 over the first {span}"


def history_findings(history: pd.DataFrame, kl_warmup_epochs: int) -> dict:
    """The phrases of the training-curve caption: the KL schedule and how the validation terms moved.

    Args:
        history: the run's history (indexed by epoch; columns ``valid_kl``, ``valid_recon``, nats per note).
        kl_warmup_epochs: the warm-up length of the KL weight.
    Returns:
        ``{"kl_warmup", "kl_trend", "recon_trend"}`` (phrases). Chapter: 03_training.
    """
    return {
        "kl_warmup": warmup_phrase(kl_warmup_epochs),
        "kl_trend": trend_phrase(history["valid_kl"]),
        "recon_trend": trend_phrase(history["valid_recon"]),
    }


def kl_per_dim(history: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """The validation KL of each latent dimension at one epoch.

    Args:
        history: the run's history (columns ``valid_kl_d00``, ...); epoch: e.g. the kept epoch.
    Returns:
        One row per dimension (index ``dimension``), column ``kl_nats`` (nats per note). Chapter: 03_training.
    """
    kl = history.loc[epoch].filter(like="valid_kl_d")
    dims = pd.Index([int(c.removeprefix("valid_kl_d")) for c in kl.index], name="dimension")
    return pd.DataFrame({"kl_nats": kl.to_numpy(dtype=float)}, index=dims)


def per_family_lsd(tables: Mapping[str, pd.DataFrame], families: pd.Series) -> pd.DataFrame:
    """Mean log-spectral distance per instrument family and over all notes, one column per model.

    Args:
        tables: {model: table of :func:`evaluate` indexed by note_str}; families: family per note_str.
    Returns:
        Rows: the families present, then "all" (index ``family``); values in dB. Chapter: 03_training.
    """
    means = {m: summarise(t, families.loc[t.index]).xs("mean", axis=1, level=1)["lsd_db"] for m, t in tables.items()}
    return pd.DataFrame(means).rename_axis("family")


def model_findings(tables: Mapping[str, pd.DataFrame]) -> dict:
    """The quoted numbers of the comparison: every model's mean of every metric, and VAE against autoencoder.

    Args:
        tables: {model: table of :func:`evaluate`} on the same notes.
    Returns:
        ``<model>_<metric>`` (means over the test notes), ``n_audio`` (notes with audio metrics) and,
        when both are present, ``vae_vs_ae_db`` (VAE minus autoencoder log-spectral distance, dB),
        ``vae_vs_ae`` (that gap in words) and ``vae_vs_ae_reading`` (what it says). Chapter: 03_training.
    """
    means = compare(dict(tables)).xs("mean", axis=1, level=1)
    findings = {f"{m}_{metric}": float(means.loc[m, metric]) for m in means.index for metric in means.columns}
    first = next(iter(tables.values()))
    findings["n_audio"] = int(first["mrstft"].notna().sum()) if "mrstft" in first else 0
    if {"VAE", "autoencoder"} <= set(tables):
        gap = float(means.loc["VAE", "lsd_db"] - means.loc["autoencoder", "lsd_db"])
        phrase = gap_phrase(gap)
        findings |= {
            "vae_vs_ae_db": gap,
            "vae_vs_ae": phrase,
            "vae_vs_ae_reading": "the KL term trades reconstruction for a regular latent space"
            if phrase.endswith("higher")
            else "here the KL term costs no reconstruction accuracy",
        }
    return findings


def compute_evaluation(
    models: Mapping[str, Callable], features, cfg: Config, split: str = "test"
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Score several models on one split: the tables and quoted findings of the comparison.

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}, e.g. :data:`MODELS`.
        features: the Features (``meta`` with ``instrument_family_str``); cfg: the configuration.
        split: the split to score.
    Returns:
        Tables ``comparison`` (rows: models; columns (metric, mean | std | median)), ``per_family_lsd``
        (:func:`per_family_lsd`) and ``per_note_<model>`` (:func:`evaluate`), and :func:`model_findings`.
    Chapter: 03_training.
    """
    per_note = evaluate_models(dict(models), features, cfg, split)
    tables = {
        "comparison": compare(per_note),
        "per_family_lsd": per_family_lsd(per_note, features.meta["instrument_family_str"]),
        **{f"per_note_{m}": t for m, t in per_note.items()},
    }
    return tables, model_findings(per_note)


# ----------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class EvaluationResult(StageResult):
    """How the VAE trained, and how it, the autoencoder and PCA reconstruct the test notes.

    Tables: ``history`` (the run's, per epoch), ``kl_per_dim``, ``comparison``, ``per_family_lsd``,
    ``per_note_VAE``, ``per_note_autoencoder``, ``per_note_PCA``.
    Findings: the run summary (``run_id``, ``device``, ``parameters``, ``epochs_trained``, ``best_epoch``,
    ``stop_reason``, ``train_seconds``, ``seconds_per_epoch``, ``notes_per_s``, ``valid_total``,
    ``valid_recon``, ``valid_kl``, ``valid_mse``), ``autoencoder_run``, ``n_train``, ``latent_dim``,
    :func:`history_findings`, :func:`model_findings`, and the notes shown: ``example_notes``,
    ``example_models``, ``interpolation_from``, ``interpolation_to``, ``interpolation_t``.
    Arrays: ``recon_db`` (n_examples, 4, n_mels, frames) dB and ``recon_audio`` (n_examples, 4, samples),
    in the order of ``example_models``; ``prior_z``, ``prior_db``, ``prior_audio`` (4 draws);
    ``linear_*`` and ``spherical_*`` (``_z``, ``_db``, ``_audio``; 5 points each).
    Chapter: 03_training.
    """

    stage = "evaluation"
    version = 1
    params = ("griffin_lim_iters", "n_eval_audio", "n_audio_examples")


def training_findings(run, n_train: int, kl_warmup_epochs: int) -> dict:
    """The quoted numbers of a training run: its summary, the train size, latent size and curve phrases.

    Args:
        run: a ``vaetone.model.runs.Run``; n_train: notes in the train split; kl_warmup_epochs: the schedule.
    Returns:
        ``vaetone.model.runs.run_summary(run)`` with ``n_train``, ``latent_dim`` and :func:`history_findings`.
    Chapter: 03_training.
    """
    from vaetone.model.runs import run_summary

    return {
        **run_summary(run),
        "n_train": int(n_train),
        "latent_dim": int(run.model.latent_dim),
        **history_findings(run.history, kl_warmup_epochs),
    }


def compute_result(cfg: Config, run, autoencoder, features, mu: np.ndarray) -> EvaluationResult:
    """The stage's result from a trained VAE, its autoencoder twin, the features and the VAE's latents.

    Args:
        cfg: the configuration; run, autoencoder: ``vaetone.model.runs.Run`` (β = cfg.beta and β = 0);
        features: the Features; mu: the VAE's posterior means ``(n_notes, latent_dim)`` in meta order.
    Returns:
        An :class:`EvaluationResult` (not yet cached; :func:`result` caches it). Chapter: 03_training.
    """
    pca = pca_baseline(features.x("train"), cfg.latent_dim, seed=cfg.seed)
    models = {"VAE": run.reconstruct, "autoencoder": autoencoder.reconstruct, "PCA": pca.reconstruct}
    tables, findings = compute_evaluation(models, features, cfg)
    picks = generate.pick_examples(tables["per_note_VAE"], cfg.n_audio_examples)
    x = features.normalise(features.logmel[[features.meta.index.get_loc(k) for k in picks]])[:, None]
    recon_db, recon_audio = generate.reconstruction_examples(models, x, features, cfg)
    a, b = generate.pick_pair(features.meta, "test", seed=cfg.seed)
    za, zb = (mu[features.meta.index.get_loc(k)] for k in (a, b))
    findings |= training_findings(run, len(features.rows("train")), cfg.kl_warmup_epochs) | {
        "autoencoder_run": autoencoder.path.name,
        "example_notes": picks,
        "example_models": ["original", *models],
        "interpolation_from": a,
        "interpolation_to": b,
        "interpolation_t": np.linspace(0, 1, INTERPOLATION_STEPS).tolist(),
    }
    arrays = {
        "recon_db": recon_db,
        "recon_audio": recon_audio,
        **generate.prior_examples(run.decode, cfg.latent_dim, features, cfg, N_PRIOR_SAMPLES),
        **generate.interpolation_examples(run.decode, za, zb, features, cfg, INTERPOLATION_STEPS),
    }
    tables |= {"history": run.history, "kl_per_dim": kl_per_dim(run.history, run.best_epoch)}
    return EvaluationResult(tables=tables, findings=findings, arrays=arrays)


def result(cfg: Config) -> EvaluationResult:
    """The training-evaluation stage of ``cfg``: computed once (training what is missing), then loaded.

    Trains or loads the VAE (``vaetone.model.runs.trained_model``) and the autoencoder
    (``runs.autoencoder``), fits PCA, scores the three on the test notes and decodes the examples;
    cached in the run's folder under ``results/evaluation-<key>/``.

    Args:
        cfg: the configuration (the run's parameters and :attr:`EvaluationResult.params`).
    Returns:
        The :class:`EvaluationResult`, as loaded from its folder.
    Chapter: 03_training.
    """
    return cached(
        EvaluationResult, cfg, lambda: _compute(cfg), folder=store.run_dir(cfg), upstream=store.key("train", cfg)
    )


def _compute(cfg: Config) -> EvaluationResult:
    """Load (or train) what the stage needs, then :func:`compute_result`."""
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    features = load_features(cfg)
    run = runs.trained_model(cfg, features)
    autoencoder = runs.autoencoder(cfg, features)
    return compute_result(cfg, run, autoencoder, features, runs.latents(cfg, run, features).mu)
