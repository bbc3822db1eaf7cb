"""The training-evaluation stage: how the run trained, and how well it and two baselines reconstruct test notes.

Every note is scored against its ORIGINAL: the log-mel metrics against the original's log-mel
(every test note), the audio metrics against the original wav (a seeded subset of
``cfg.n_eval_audio`` notes spread over the test instruments, :func:`audio_subset`). Beside the
three models, the row "inversion only" scores Griffin-Lim of the original's own log-mel
against the wav: the ceiling that separates inversion error from model error. Per-note scores
(:func:`spectral_scores`, :func:`audio_scores`, :func:`evaluate_models`)
and the stage result :class:`EvaluationResult` with :func:`result`; the summaries with
intervals and paired comparisons are in :mod:`vaetone.analysis.scores`.

Chapter: 03_training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.analysis import curves, generate, scores
from vaetone.analysis.baselines import pca_baseline
from vaetone.analysis.metrics import (
    _pair,
    align_lengths,
    audio_log_spectral_distance,
    f0_error_cents,
    f0_range,
    frequency_scores,
    log_spectral_distance,
    logmel_mse,
    median_f0,
    multires_stft_distance,
    spectral_convergence,
    spectral_peaks,
)
from vaetone.config import Config
from vaetone.errors import DataError
from vaetone.results import StageResult, cached
from vaetone.spectral.inversion import PEAK_DBFS, mel_to_audio, peak_normalise

SPECTRAL_COLUMNS = ("logmel_mse_db2", "lsd_db", "spectral_convergence")
"""Per-note log-mel metrics (every test note)."""

AUDIO_COLUMNS = ("lsd_audio_db", "mrstft", "freq_precision", "freq_recall", "freq_f1", "ref_peaks", "est_peaks")
AUDIO_COLUMNS = (*AUDIO_COLUMNS, "f0_error_cents")
"""Per-note audio metrics against the original wav (the audio subset; NaN elsewhere)."""


def spectral_scores(ref_db, est_db, index=None) -> pd.DataFrame:
    """Log-mel metrics of reconstructions against the originals' log-mel, one row per note.

    Args: ref_db, est_db: ``(n, n_mels, frames)`` dB; index: row labels (note_str).
    Returns: :data:`SPECTRAL_COLUMNS`: ``logmel_mse_db2`` (dB²), ``lsd_db`` (dB), ``spectral_convergence``.
    Chapter: 03_training.
    """
    ref_db, est_db = _pair(ref_db, est_db)
    values = (logmel_mse(ref_db, est_db), log_spectral_distance(ref_db, est_db), spectral_convergence(ref_db, est_db))
    return pd.DataFrame(dict(zip(SPECTRAL_COLUMNS, values)), index=index)


def reference(original, cfg: Config, f0_method: str = "yin") -> dict:
    """What every estimate is scored against, computed once: the originals' spectral peaks and median f0.

    Args: original: ``(n, samples)`` the notes' wavs; cfg: the pitch range (``f0_range``); f0_method: as
        :func:`~vaetone.analysis.metrics.median_f0`.
    Returns: ``{"audio": (n, samples) float64, "peaks": list of Hz arrays, "f0": (n,) Hz}``. Chapter: 03_training.
    """
    audio = np.asarray(original, dtype=np.float64)
    f0 = median_f0(audio, method=f0_method, **f0_range(cfg))
    return {"audio": audio, "peaks": spectral_peaks(audio), "f0": f0}


def audio_scores(original, est_audio, cfg: Config, index=None, f0_method: str = "yin", ref=None) -> pd.DataFrame:
    """Audio metrics of resynthesised notes against the original wavs, one row per note.

    Args:
        original: ``(n, samples)`` the notes' original wavs; est_audio: ``(n, samples')`` their
            resynthesis (``mel_to_audio``), trimmed together by :func:`~vaetone.analysis.metrics.align_lengths`.
        cfg: ``n_fft``, ``hop_length``, ``log_floor``, ``peak_tolerance_cents`` and the pitch range
            (:func:`~vaetone.analysis.metrics.f0_range`); index: row labels; f0_method: "yin" or "pyin";
        ref: :func:`reference` of ``original`` when it is already computed and as long as ``est_audio``.
    Returns: :data:`AUDIO_COLUMNS`: ``lsd_audio_db`` (dB, STFT power), ``mrstft``, ``freq_precision``,
        ``freq_recall``, ``freq_f1`` (0..1), ``ref_peaks``, ``est_peaks`` (counts), ``f0_error_cents``
        (|error|, cents). Chapter: 03_training.
    """
    wav, est = align_lengths(original, est_audio, cfg.hop_length)
    ref = reference(wav, cfg, f0_method) if ref is None or ref["audio"].shape != wav.shape else ref
    table = pd.DataFrame(
        {
            "lsd_audio_db": audio_log_spectral_distance(wav, est, cfg.n_fft, cfg.hop_length, cfg.log_floor),
            "mrstft": multires_stft_distance(wav, est),
        },
        index=index,
    )
    freq = frequency_scores(wav, est, tolerance_cents=cfg.peak_tolerance_cents, ref_peaks=ref["peaks"])
    table[list(freq.columns)] = freq.to_numpy()
    table = table.astype({"ref_peaks": np.int64, "est_peaks": np.int64})
    table["f0_error_cents"] = f0_error_cents(wav, est, method=f0_method, ref_f0=ref["f0"], **f0_range(cfg))
    return table


def audio_subset(instruments: Sequence, n: int, seed: int) -> np.ndarray:
    """Positions of ``n`` notes spread over as many instruments as possible, seeded.

    The instruments are put in a seeded random order and so are the notes of each; then the
    notes are taken round-robin (one note of every instrument, then a second of every
    instrument, ...), so ``n`` notes span ``min(n, instruments)`` instruments.

    Args: instruments: (N,) the instrument of each note; n: how many (0 or >= N: all); seed: of the draw.
    Returns: sorted positions ``(min(n, N),)`` into ``instruments``. Chapter: 03_training.
    """
    labels = np.asarray(instruments)
    if n == 0 or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    queues = [rng.permutation(np.flatnonzero(labels == name)) for name in rng.permutation(pd.unique(labels))]
    order = [q[depth] for depth in range(max(map(len, queues))) for q in queues if depth < len(q)]
    return np.sort(np.asarray(order[:n], dtype=np.int64))


def evaluate_models(
    models: Mapping[str, Callable], features, original, cfg: Config, split: str = "test"
) -> dict[str, pd.DataFrame]:
    """Per-note scores of several models' reconstructions of one split, and of inversion alone, against the originals.

    The log-mel metrics cover every note of the split; the audio metrics (Griffin-Lim, about
    0.25 s per note and model on 2 CPU cores) the :func:`audio_subset` of ``cfg.n_eval_audio``
    notes, NaN elsewhere. The row :data:`~vaetone.analysis.scores.INVERSION` resynthesises the
    original's log-mel (its log-mel metrics are 0 by definition, and are computed as such).

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}.
        features: the Features (``meta`` with ``instrument_str``); original: the notes' wavs,
            indexable by row (``vaetone.data.dataset.dataset(cfg).audio``, meta order), ``(k, samples)``.
        cfg: the configuration; split: which split to score.
    Returns:
        {name: table indexed by note_str, :data:`SPECTRAL_COLUMNS` then :data:`AUDIO_COLUMNS`},
        the models in order, then "inversion only". Chapter: 03_training.
    """
    rows = features.rows(split)
    index = features.meta.index[rows]
    x, ref_db = features.x(split), features.logmel[rows]
    sub = audio_subset(features.meta["instrument_str"].to_numpy()[rows], cfg.n_eval_audio, cfg.seed)
    wav = np.asarray(original[rows[sub]], dtype=np.float32)
    if wav.ndim != 2 or len(wav) != len(sub):
        raise DataError(f"the original audio of {len(sub)} scored notes has shape {wav.shape}, not (notes, samples)")
    inverted = np.zeros((len(wav), cfg.hop_length * (ref_db.shape[-1] - 1)))  # the length Griffin-Lim returns
    wav = align_lengths(wav, inverted, cfg.hop_length)[0]  # checked and trimmed once, then scored against 4 rows
    ref = reference(wav, cfg)
    estimates = {name: generate.to_db(f(x), features) for name, f in models.items()}
    estimates[scores.INVERSION] = ref_db
    tables = {}
    for name, est_db in estimates.items():
        audio = audio_scores(wav, mel_to_audio(est_db[sub], cfg).numpy(), cfg, index=index[sub], ref=ref)
        tables[name] = spectral_scores(ref_db, est_db, index=index).join(audio)
    return tables


# ----------------------------------------------------------------------------- the stage


INTERPOLATION_STEPS = 5
"""Points of each interpolation path, both ends included."""

N_PRIOR_SAMPLES = 4
"""Notes decoded from the prior."""


@dataclass(frozen=True)
class EvaluationResult(StageResult):
    """How the VAE trained, and how it, the autoencoder and PCA reconstruct the test notes against the originals.

    Tables: ``history`` (the run's, per epoch), ``kl_per_dim``, ``comparison`` (rows VAE, autoencoder,
    PCA, inversion only; :func:`vaetone.analysis.scores.comparison`), ``paired``
    (:func:`vaetone.analysis.scores.paired`), ``per_family_lsd``, and the per-note tables
    ``per_note_VAE``, ``per_note_autoencoder``, ``per_note_PCA``, ``per_note_inversion``.
    Findings: ``answer`` (:func:`answer_sentence`); the run summary (``run_id``, ``device``,
    ``parameters``, ``epochs_trained``, ``best_epoch``, ``stop_reason``, ``train_seconds``,
    ``seconds_per_epoch``, ``notes_per_s``, ``valid_total``, ``valid_recon``, ``valid_kl``,
    ``valid_mse``); ``autoencoder_run``, ``n_train``, ``latent_dim``;
    :func:`vaetone.analysis.curves.history_findings`; :func:`evaluation_findings`; the notes shown:
    ``example_notes``, ``example_models``, ``interpolation_from``, ``interpolation_to``,
    ``interpolation_t``; how their sounds are scaled (:func:`scaling_phrase`): ``example_level``,
    ``prior_level``, ``interpolation_level``.
    Arrays: ``recon_db`` (n_examples, 5, n_mels, frames) dB and ``recon_audio`` (n_examples, 5, samples),
    in the order of ``example_models``; ``prior_z``, ``prior_db``, ``prior_audio`` (4 draws);
    ``linear_*`` and ``spherical_*`` (``_z``, ``_db``, ``_audio``; 5 points each). The audio is
    scaled by :func:`scale_rows`: one gain per note (row of ``recon_audio``), one for the prior
    draws, one per interpolation path. Chapter: 03_training.
    """

    stage = "evaluation"
    version = 5
    params = ("griffin_lim_iters", "n_eval_audio", "n_audio_examples", "peak_tolerance_cents", "bootstrap_n")

    def reconstruction_sounds(self) -> dict:
        """The examples as keyword arguments of ``vaetone.book.sound.sound_grid``: rows = notes, columns = versions.

        Returns: {"dbs": (notes, 5, n_mels, frames) dB, "audio": (notes, 5, samples), "columns", "rows"}.
        Chapter: 03_training.
        """
        dbs, audio, f = self.arrays["recon_db"], self.arrays["recon_audio"], self.findings
        return {"dbs": dbs, "audio": audio, "columns": f["example_models"], "rows": list(f["example_notes"])}

    def interpolation_sounds(self) -> dict:
        """Both interpolation paths as keyword arguments of ``sound_grid``: rows = methods, columns = steps.

        Returns: {"dbs": (2, steps, n_mels, frames) dB, "audio": (2, steps, samples), "columns": "t = 0.00", ...,
        "rows": ["linear", "spherical"]}. Chapter: 03_training.
        """
        methods = ("linear", "spherical")
        dbs, audio = (np.stack([self.arrays[f"{m}_{kind}"] for m in methods]) for kind in ("db", "audio"))
        columns = [f"t = {t:.2f}" for t in self.findings["interpolation_t"]]
        return {"dbs": dbs, "audio": audio, "columns": columns, "rows": list(methods)}


def scale_rows(audio, peak: float = PEAK_DBFS) -> tuple[np.ndarray, list[float]]:
    """Scale each row of a set of sounds by one gain, so that the row's loudest sample is at ``peak`` dBFS.

    The sounds of a row (the versions of one note, the points of one path) keep their relative levels.

    Args: audio: ``(rows, ..., samples)`` finite waveforms; peak: dBFS, at most 0.
    Returns: (float32 array of ``audio``'s shape, the gain of each row in dB; NaN for a silent row, left as it is).
    Chapter: 03_training.
    """
    audio = np.asarray(audio, dtype=np.float32)
    scaled, gains = np.empty_like(audio), []
    for i, row in enumerate(audio):
        silent = not np.abs(row).max(initial=0.0) > 0
        scaled[i], gain = (row, 1.0) if silent else peak_normalise(row, peak)
        gains.append(float("nan") if silent else 20 * np.log10(gain))
    return scaled, gains


def scaling_phrase(gains_db: Sequence[float], peak: float = PEAK_DBFS) -> str:
    """How :func:`scale_rows` levelled a set of sounds, in words.

    Args: gains_db: the gain of each row in dB (NaN: a silent row); peak: the level they were scaled to (dBFS).
    Returns: e.g. "Each row is scaled by one gain (+3.0 to +20.0 dB) so that its loudest sample is at
        -1.0 dBFS: the clips of a row keep their relative levels". Chapter: 03_training.
    """
    heard = [g for g in gains_db if np.isfinite(g)]
    if not heard:
        return "No sound is played" if not len(gains_db) else "These sounds are silent"
    span = f"{heard[0]:+.1f} dB" if len(heard) == 1 else f"{min(heard):+.1f} to {max(heard):+.1f} dB"
    text = f"Each row is scaled by one gain ({span}) so that its loudest sample is at {peak:.1f} dBFS"
    text += ": the clips of a row keep their relative levels"
    silent = len(gains_db) - len(heard)
    return text + (f"; {silent} silent row{'s' * (silent != 1)} stay{'s' * (silent == 1)} silent" if silent else "")


def answer_sentence(findings: Mapping) -> str:
    """The training chapter's answer in one sentence: the log-mel comparison, then its frequency F1 and the inversion's.

    Args: findings: with ``summary`` (:func:`~vaetone.analysis.scores.summary_sentence`) and, when scored,
        ``VAE_freq_f1_ci`` and ``inversion_freq_f1_ci``.
    Returns: the sentence, without a final full stop. Chapter: 03_training.
    """
    text = findings["summary"]
    if "VAE_freq_f1_ci" in findings and "inversion_freq_f1_ci" in findings:
        text += (
            f"; against the original wav its frequency F1 is {findings['VAE_freq_f1_ci']}, where the inversion "
            f"alone reaches {findings['inversion_freq_f1_ci']}"
        )
    return text


def table_name(model: str) -> str:
    """The per-note table of a row of the comparison: ``per_note_VAE``, ..., ``per_note_inversion``."""
    return f"per_note_{scores.PREFIX[model]}"


def evaluation_findings(per_note: Mapping[str, pd.DataFrame], meta: pd.DataFrame, cfg: Config) -> tuple[dict, dict]:
    """The comparison tables and the quoted numbers of the evaluation, from the per-note scores.

    Args:
        per_note: {row: per-note table} of :func:`evaluate_models`; meta: the features' meta
            (``instrument_str``, ``instrument_family_str``); cfg: ``bootstrap_n``, ``seed``.
    Returns:
        Tables ``comparison``, ``paired``, ``per_family_lsd`` and findings: those of
        :func:`~vaetone.analysis.scores.comparison` and :func:`~vaetone.analysis.scores.paired`,
        ``vae_vs_ae_reading``, ``summary``, ``n_test``, ``n_test_instruments``, ``n_audio``,
        ``n_audio_instruments``, ``peak_tolerance_cents``, ``gross_cents``, ``bootstrap_n``. Chapter: 03_training.
    """
    groups = meta["instrument_str"]
    table, findings = scores.comparison(per_note, groups, cfg)
    pairs, paired = scores.paired(per_note, groups, cfg)
    models = {k: v for k, v in per_note.items() if k in scores.MODELS}
    first = next(iter(per_note.values()))
    scored = first.index[first["lsd_audio_db"].notna()]
    key = ("VAE", "autoencoder", "lsd_db")
    lsd = [row for _, row in pairs.iterrows() if (row.model_a, row.model_b, row.metric) == key]
    findings |= paired | {
        "vae_vs_ae_reading": scores.vae_vs_ae_reading(lsd[0] if lsd else None),
        "n_test": len(first),
        "n_test_instruments": int(groups.loc[first.index].nunique()),
        "n_audio": len(scored),
        "n_audio_instruments": int(groups.loc[scored].nunique()),
        "peak_tolerance_cents": float(cfg.peak_tolerance_cents),
        "gross_cents": scores.GROSS_CENTS,
        "bootstrap_n": int(cfg.bootstrap_n),
    }
    findings["summary"] = scores.summary_sentence(findings)
    tables = {"comparison": table, "paired": pairs, "per_family_lsd": scores.per_family_lsd(models, meta)}
    return tables, findings


def compute_evaluation(
    models: Mapping[str, Callable], features, original, cfg: Config, split: str = "test"
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Score several models and inversion alone on one split: the tables and quoted findings of the comparison.

    Args:
        models: {name: reconstruct(x (n, 1, n_mels, frames) normalised) -> same shape}, e.g. ``scores.MODELS``.
        features: the Features (``meta`` with ``instrument_str``, ``instrument_family_str``);
        original: the notes' wavs by row (:func:`evaluate_models`); cfg: the configuration; split: the split.
    Returns:
        The tables of :func:`evaluation_findings` and the per-note tables (:func:`table_name`), and the
        findings. Chapter: 03_training.
    """
    per_note = evaluate_models(dict(models), features, original, cfg, split)
    tables, findings = evaluation_findings(per_note, features.meta, cfg)
    return tables | {table_name(m): t for m, t in per_note.items()}, findings


def compute_result(cfg: Config, run, autoencoder, features, mu: np.ndarray, original) -> EvaluationResult:
    """The stage's result from a trained VAE, its autoencoder twin, the features, the VAE's latents and the wavs.

    Args:
        cfg: the configuration; run, autoencoder: ``vaetone.model.runs.Run`` (β = cfg.beta and β = 0);
        features: the Features; mu: the VAE's posterior means ``(n_notes, latent_dim)`` in meta order;
        original: the notes' original wavs, indexable by row in meta order (``dataset(cfg).audio``).
    Returns:
        An :class:`EvaluationResult` (not yet cached; :func:`result` caches it). Chapter: 03_training.
    """
    pca = pca_baseline(features.x("train"), cfg.latent_dim, seed=cfg.seed)
    models = {"VAE": run.reconstruct, "autoencoder": autoencoder.reconstruct, "PCA": pca.reconstruct}
    tables, findings = compute_evaluation(models, features, original, cfg)
    picks = generate.pick_examples(tables["per_note_VAE"], cfg.n_audio_examples)
    rows = [features.meta.index.get_loc(k) for k in picks]
    x = features.normalise(features.logmel[rows])[:, None]
    recon_db, recon_audio = generate.reconstruction_examples(models, x, original[rows], features, cfg)
    a, b = generate.pick_pair(features.meta, "test", seed=cfg.seed)
    za, zb = (mu[features.meta.index.get_loc(k)] for k in (a, b))
    arrays = {
        "recon_db": recon_db,
        **generate.prior_examples(run.decode, cfg.latent_dim, features, cfg, N_PRIOR_SAMPLES),
        **generate.interpolation_examples(run.decode, za, zb, features, cfg, INTERPOLATION_STEPS),
    }
    arrays["recon_audio"], recon_gains = scale_rows(recon_audio)
    (arrays["prior_audio"],), prior_gain = scale_rows(arrays["prior_audio"][None])
    paths, path_gains = scale_rows(np.stack([arrays["linear_audio"], arrays["spherical_audio"]]))
    arrays["linear_audio"], arrays["spherical_audio"] = paths
    findings |= curves.training_findings(run, len(features.rows("train")), cfg.kl_warmup_epochs) | {
        "autoencoder_run": autoencoder.path.name,
        "example_notes": picks,
        "example_models": ["original", scores.INVERSION, *models],
        "example_level": scaling_phrase(recon_gains),
        "prior_level": scaling_phrase(prior_gain),
        "interpolation_level": scaling_phrase(path_gains),
        "interpolation_from": a,
        "interpolation_to": b,
        "interpolation_t": np.linspace(0, 1, INTERPOLATION_STEPS).tolist(),
    }
    findings["answer"] = answer_sentence(findings)
    tables |= {"history": run.history, "kl_per_dim": curves.kl_per_dim(run.history, run.best_epoch)}
    return EvaluationResult(tables=tables, findings=findings, arrays=arrays)


def result(cfg: Config) -> EvaluationResult:
    """The training-evaluation stage of ``cfg``: computed once (training what is missing), then loaded.

    Trains or loads the VAE (``vaetone.model.runs.trained_model``) and the autoencoder
    (``runs.autoencoder``), fits PCA, scores the three and inversion alone on the test notes
    against the originals (``vaetone.data.dataset.dataset(cfg).audio``) and decodes the examples;
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
    from vaetone.data.dataset import dataset
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    features = load_features(cfg)
    notes = dataset(cfg)
    if not notes.meta.index.equals(features.meta.index):
        raise DataError(
            "the dataset's notes and the features' notes differ in order or content; rebuild the features "
            "(python -m vaetone prepare) for this configuration"
        )
    run = runs.trained_model(cfg, features)
    autoencoder = runs.autoencoder(cfg, features)
    mu = runs.latents(cfg, run, features).mu
    return compute_result(cfg, run, autoencoder, features, mu, notes.audio)
