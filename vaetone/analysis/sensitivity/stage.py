"""The sensitivity stage: every number, table, figure array and sound of chapter 04 from one call.

:func:`result` loads the trained run of a configuration and the posterior means of its test
notes, and :func:`compute_sensitivity` runs the chapter's analysis on them: the decoder's
throughput, one-at-a-time sweeps from anchor points, the net change of each descriptor in units
of its spread over the test notes, the labels of the dimensions, the log-mel change by frequency
band and time region, the decoder's Jacobian, Sobol indices with their sums, the ranking of the
dimensions by the four views and their agreement, intervals over the anchor notes, and the sweep
strips of the most influential dimensions with their audio (peak-normalised by
:func:`vaetone.spectral.inversion.peak_normalise`). The result is cached in the run's folder
(:func:`vaetone.results.cached`).

Chapter: 04_sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone import results, store
from vaetone.analysis.decoding import Decoder, Describe, db_decoder, decode_batched, decode_throughput, default_describe
from vaetone.analysis.sensitivity.oat import descriptor_spread, net_change, sweep_dimension
from vaetone.analysis.sensitivity.ranking import Analysis, analysis
from vaetone.analysis.sensitivity.summary import (
    ranking_findings,
    sobol_findings,
    sweep_counts,
    sweep_intervals,
    view_tables,
)
from vaetone.config import Config
from vaetone.errors import ConfigError

N_TOP = 3
"""How many of the most influential dimensions the chapter names and shows."""
STRIP_STEPS = 5
"""Values of each top dimension in the sweep strips (from -sweep_sigma to +sweep_sigma)."""
STRIP_PEAK_DBFS = -1.0
"""Level of the loudest sample of the strips' audio (dBFS); one gain for all strips."""
THROUGHPUT_N = 512
"""Random latents decoded to measure the decoder's throughput."""
VIEWS = ("oat_logmel", "oat_descriptors", "jacobian", "sobol_ST")
"""The four scores of :func:`rank_dimensions`, in the order of the chapter's table."""
INSTRUMENT = "instrument_str"
"""The column of the notes' metadata that names their instrument (the group of the intervals)."""


@dataclass(frozen=True)
class SensitivityResult(results.StageResult):
    """What the sensitivity analysis found (chapter 04).

    Tables:
        ranking: indexed by ``dim``, sorted by mean rank (most influential first): the columns of
            :func:`rank_dimensions`, with ``label`` (the descriptor that names the dimension by its
            net change in ``moves``, or "mixed", or "none"; see
            :mod:`~vaetone.analysis.sensitivity.labels`) and ``sobol_label``.
        moves: dims × descriptors, the net change of each descriptor along the sweeps (signed
            least-squares slope against z, mean over anchors) divided by its standard deviation
            over the test notes (test-note spreads per unit z).
        where: dims × frequency bands and time regions, mean |slope| of the log-mel (dB per unit z).
        jacobian: dims × output regions ("all", bands, regions), RMS of ∂x/∂z_j (dB per unit z).
        sobol: tidy Sobol indices (descriptor, dim, S1, S1_conf, ST, ST_conf); ``attrs`` N,
            n_evaluations, sigma, conf_level.
        sobol_st: dims × descriptors, total index ST, descriptors without variance left out.
        sobol_sums: per descriptor ΣS1, ΣST, interaction share and counts
            (:func:`~vaetone.analysis.sensitivity.labels.sobol_sums`).
        intervals: the headline scores of the sweeps with 95 % instrument-level intervals over the
            anchor notes (:func:`~vaetone.analysis.sensitivity.summary.sweep_intervals`).
        agreement: views × views, Spearman correlation of the dimension rankings.
        curves: one row per sweep decode (dim, anchor, row, step, z, one column per descriptor).
        sweeps_logmel, sweeps_descriptors, anchor_logmel: the tidy tables of the sweeps (:class:`Sweeps`).
    Arrays:
        strips: (N_TOP·STRIP_STEPS, n_mels, frames) dB, the sweeps of the top dimensions from one
            anchor note (labels in findings["strip_labels"]).
        strip_audio: (N_TOP·STRIP_STEPS, samples) their Griffin-Lim audio at 16 kHz, one gain for
            all, the loudest sample at :data:`STRIP_PEAK_DBFS` (findings["strip_peak_dbfs"] measures it).
    Findings: see :func:`compute_sensitivity`.
    """

    stage = "sensitivity"
    version = 2
    params = ("n_anchors", "sweep_sigma", "sweep_steps", "sobol_n", "griffin_lim_iters", "bootstrap_n")


def result(cfg: Config) -> SensitivityResult:
    """The sensitivity analysis of the model trained with ``cfg``, computed once and cached in its run folder.

    Args:
        cfg: the configuration (its run is loaded or trained; ``n_anchors``, ``sweep_sigma``,
            ``sweep_steps``, ``sobol_n``, ``griffin_lim_iters`` and ``bootstrap_n`` key the result).
    Returns:
        :class:`SensitivityResult`, with ``dimension_order`` the dimensions by mean rank.
    Chapter: 04_sensitivity.
    """
    return results.cached(
        SensitivityResult,
        cfg,
        lambda: _compute_for_run(cfg),
        folder=store.run_dir(cfg),
        upstream=store.key("train", cfg),
    )


def _compute_for_run(cfg: Config) -> SensitivityResult:
    """Load the features, the trained run and its test latents, and run :func:`compute_sensitivity`."""
    from vaetone.model import runs
    from vaetone.spectral.features import load_features

    feats = load_features(cfg)
    run = runs.trained_model(cfg, feats)
    test = runs.latents(cfg, run, feats).split("test")
    decode = db_decoder(run.decode, feats.denormalise)
    real = feats.logmel[torch.as_tensor(feats.meta.index.get_indexer(test.meta.index), dtype=torch.long)]
    groups = test.meta[INSTRUMENT].to_numpy()
    return compute_sensitivity(decode, test.mu, cfg, notes=list(test.meta.index), groups=groups, real_db=real)


def compute_sensitivity(
    decode: Decoder,
    mu,
    cfg: Config,
    notes: Sequence[str] | None = None,
    describe: Describe | None = None,
    groups=None,
    real_db=None,
) -> SensitivityResult:
    """The whole sensitivity analysis of one decoder: tables, quoted findings, intervals, strips and their audio.

    Args:
        decode: latent (n, D) → log-mel (n, [1,] n_mels, frames) in dB (:func:`db_decoder`).
        mu: (n, D) posterior means of the test notes (anchors), n >= 2.
        cfg: ``latent_dim`` (= D), ``n_anchors``, ``sweep_sigma``, ``sweep_steps``, ``sobol_n``,
            ``griffin_lim_iters``, ``bootstrap_n``, ``seed`` (anchor choice, Sobol sample,
            bootstrap) and the layout.
        notes: (n,) names of the notes of ``mu`` (default "test note <row>").
        describe: descriptors of outputs (default the spectral descriptors of the mel spectra).
        groups: (n,) the instrument of each note of ``mu`` (the intervals' clusters); None: the
            intervals are recorded as undefined.
        real_db: (n, [1,] n_mels, frames) dB log-mels of the same notes, whose descriptors' spread is
            the unit of the net changes; default: their reconstructions ``decode(mu)``.
    Returns:
        :class:`SensitivityResult`. Findings: decodes_per_s, decode_device, decode_batch_size,
        decode_threads; :func:`~vaetone.analysis.sensitivity.summary.sweep_counts`,
        :func:`~vaetone.analysis.sensitivity.summary.sobol_findings`,
        :func:`~vaetone.analysis.sensitivity.summary.ranking_findings`, the phrases of
        :func:`~vaetone.analysis.sensitivity.summary.sweep_intervals`; sweep_sigma_txt,
        strip_note, strip_labels, strip_values, strip_gain, strip_peak_dbfs (measured).
    Chapter: 04_sensitivity.
    """
    mu = _checked_latents(mu, cfg)
    describe = describe or default_describe(cfg)
    findings = decoder_speed(decode, cfg.latent_dim)
    spread = descriptor_spread(describe, decode_batched(decode, mu) if real_db is None else real_db)
    views = analysis(decode, mu, cfg, describe=describe, spread=spread)
    moves = net_change(views.sweeps, spread).rename_axis(columns="descriptor")
    ranking = views.ranking
    agreement = view_agreement(ranking)
    top = [int(d) for d in ranking.index[: min(N_TOP, cfg.latent_dim)]]
    strips, strip_findings = top_strips(decode, views, top, cfg, notes)
    interval_table, interval_findings = sweep_intervals(views, ranking, spread, groups, cfg, top)
    findings.update(sweep_counts(views, moves, len(mu)))
    findings.update(sobol_findings(views.sobol, ranking["sobol_label"]))
    findings.update(ranking_findings(ranking, agreement, top), **interval_findings)
    findings.update(strip_findings, sweep_sigma_txt=f"{cfg.sweep_sigma:g}")
    audio, findings["strip_gain"], findings["strip_peak_dbfs"] = strip_sound(strips, cfg)
    return SensitivityResult(
        tables={**view_tables(views, moves, ranking, agreement), "intervals": interval_table},
        findings=findings,
        arrays={"strips": strips.numpy(), "strip_audio": audio},
        dimension_order=tuple(int(d) for d in ranking.index),
    )


def _checked_latents(mu, cfg: Config) -> torch.Tensor:
    """``mu`` as a float32 tensor (n, latent_dim), with a clear error for a wrong shape or no notes."""
    mu = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    if mu.dim() != 2 or mu.shape[1] != cfg.latent_dim or len(mu) < 2:
        raise ConfigError(
            f"the sensitivity analysis needs posterior means of shape (n >= 2, latent_dim={cfg.latent_dim}), "
            f"got {tuple(mu.shape)}; pass the test latents of the run trained with this configuration"
        )
    return mu


def decoder_speed(decode: Decoder, latent_dim: int) -> dict:
    """The decoder's throughput on :data:`THROUGHPUT_N` random latents (a wall-clock figure: it varies).

    Returns:
        {decodes_per_s (1/s), decode_device, decode_batch_size, decode_threads (torch CPU threads)}.
    Chapter: 04_sensitivity.
    """
    speed = decode_throughput(decode, latent_dim, n=THROUGHPUT_N)
    return {
        "decodes_per_s": float(speed["decodes_per_s"]),
        "decode_device": speed["device"],
        "decode_batch_size": int(speed["batch_size"]),
        "decode_threads": int(torch.get_num_threads()),
    }


def view_agreement(ranking: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation between the views' scores of the dimensions: views × views (NaN for a constant score)."""
    scores = [v for v in VIEWS if v in ranking]
    return ranking[scores].corr(method="spearman").rename_axis(index="view", columns="view")


def top_strips(
    decode: Decoder, views: Analysis, top: Sequence[int], cfg: Config, notes: Sequence[str] | None = None
) -> tuple[torch.Tensor, dict]:
    """The sweeps of the top dimensions from one anchor note, :data:`STRIP_STEPS` values each.

    The anchor is the first anchor note (the prior mean when it is the only anchor).

    Args:
        decode: the dB decoder; views: :func:`analysis` (its anchors and their rows of mu);
        top: the dimensions, most influential first; notes: names of the rows of mu.
    Returns:
        (strips (len(top)·STRIP_STEPS, n_mels, frames) dB, {strip_note, strip_labels ("z5 = -3.0"),
        strip_values (the swept values)}). Chapter: 04_sensitivity.
    """
    grid = torch.linspace(-cfg.sweep_sigma, cfg.sweep_sigma, STRIP_STEPS)
    start = 1 if len(views.anchors) > 1 else 0  # the first anchor note (0 is the prior mean)
    row = int(views.rows[start])
    name = "the prior mean" if row < 0 else (str(notes[row]) if notes is not None else f"test note {row}")
    strips = torch.cat([sweep_dimension(decode, views.anchors[start : start + 1], d, grid)[0] for d in top])
    return strips, {
        "strip_note": name,
        "strip_labels": [f"z{d} = {v:+.1f}" for d in top for v in grid.tolist()],
        "strip_values": [float(v) for v in grid.tolist()],
    }


def strip_sound(strips: torch.Tensor, cfg: Config) -> tuple[np.ndarray, float, float]:
    """The strips as audio (Griffin-Lim, ``cfg.griffin_lim_iters``), one gain for all: the loudest peak at -1 dBFS.

    Args:
        strips: (n, n_mels, frames) dB.
    Returns:
        ((n, samples) float32 waveforms at 16 kHz, the gain applied (any size: Griffin-Lim output is
        often quiet), the measured peak of the result in dBFS, :data:`STRIP_PEAK_DBFS` unless silent).
    Chapter: 04_sensitivity.
    """
    from vaetone.spectral.inversion import mel_to_audio, peak_dbfs, peak_normalise

    sound, gain = peak_normalise(mel_to_audio(strips, cfg, n_iter=cfg.griffin_lim_iters), STRIP_PEAK_DBFS)
    return sound, gain, round(peak_dbfs(sound), 2)
