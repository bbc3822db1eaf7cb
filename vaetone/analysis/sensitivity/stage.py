"""The sensitivity stage: every number, table, figure array and sound of chapter 04 from one call.

:func:`result` loads the trained run of a configuration and the posterior means of its test
notes, and :func:`compute_sensitivity` runs the chapter's analysis on them: the decoder's
throughput, one-at-a-time sweeps from anchor points, the descriptor moves in units of the
spread over real notes, the log-mel change by frequency band and time region, the decoder's
Jacobian, Sobol indices, the ranking of the dimensions by the four views and their agreement,
and the sweep strips of the most influential dimensions with their audio. The result is cached
in the run's folder (:func:`vaetone.results.cached`).

Chapter: 04_sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone import results, store
from vaetone.analysis.decoding import Decoder, Describe, db_decoder, decode_throughput
from vaetone.analysis.sensitivity.oat import normalised_moves, sweep_dimension
from vaetone.analysis.sensitivity.ranking import Analysis, analysis, top_descriptor
from vaetone.config import Config
from vaetone.errors import ConfigError

N_TOP = 3
"""How many of the most influential dimensions the chapter names and shows."""
STRIP_STEPS = 5
"""Values of each top dimension in the sweep strips (from -sweep_sigma to +sweep_sigma)."""
STRIP_PEAK = 0.89
"""Peak amplitude of the loudest strip (-1 dBFS); one gain for all strips."""
THROUGHPUT_N = 512
"""Random latents decoded to measure the decoder's throughput."""
VIEWS = ("oat_logmel", "oat_descriptors", "jacobian", "sobol_ST")
"""The four scores of :func:`rank_dimensions`, in the order of the chapter's table."""


@dataclass(frozen=True)
class SensitivityResult(results.StageResult):
    """What the sensitivity analysis found (chapter 04).

    Tables:
        ranking: indexed by ``dim``, sorted by mean rank (most influential first): the columns of
            :func:`rank_dimensions` and ``top_descriptor`` (the descriptor the dimension moves most
            in ``moves``; NaN where it moves none).
        moves: dims × descriptors, mean |slope| of each descriptor along the sweeps divided by its
            standard deviation over the reconstructions of the test notes (unitless, per unit z).
        where: dims × frequency bands and time regions, mean |slope| of the log-mel (dB per unit z).
        jacobian: dims × output regions ("all", bands, regions), RMS of ∂x/∂z_j (dB per unit z).
        sobol: tidy Sobol indices (descriptor, dim, S1, S1_conf, ST, ST_conf); ``attrs`` N,
            n_evaluations, sigma, conf_level.
        sobol_st: dims × descriptors, total index ST, descriptors without variance left out.
        agreement: views × views, Spearman correlation of the dimension rankings.
        curves: one row per sweep decode (dim, anchor, row, step, z, one column per descriptor).
        sweeps_logmel, sweeps_descriptors: the tidy tables of the sweeps (:class:`Sweeps`).
    Arrays:
        strips: (N_TOP·STRIP_STEPS, n_mels, frames) dB, the sweeps of the top dimensions from one
            anchor note (labels in findings["strip_labels"]).
        strip_audio: (N_TOP·STRIP_STEPS, samples) their Griffin-Lim audio at 16 kHz, one gain for all.
    Findings: see :func:`compute_sensitivity`.
    """

    stage = "sensitivity"
    version = 1
    params = ("n_anchors", "sweep_sigma", "sweep_steps", "sobol_n", "griffin_lim_iters")


def result(cfg: Config) -> SensitivityResult:
    """The sensitivity analysis of the model trained with ``cfg``, computed once and cached in its run folder.

    Args:
        cfg: the configuration (its run is loaded or trained; ``n_anchors``, ``sweep_sigma``,
            ``sweep_steps``, ``sobol_n`` and ``griffin_lim_iters`` key the result).
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
    return compute_sensitivity(decode, test.mu, cfg, notes=list(test.meta.index))


def compute_sensitivity(
    decode: Decoder, mu, cfg: Config, notes: Sequence[str] | None = None, describe: Describe | None = None
) -> SensitivityResult:
    """The whole sensitivity analysis of one decoder: tables, quoted findings, strips and their audio.

    Args:
        decode: latent (n, D) → log-mel (n, [1,] n_mels, frames) in dB (:func:`db_decoder`).
        mu: (n, D) posterior means of the test notes (anchors and the spread of the descriptors).
        cfg: ``latent_dim`` (= D), ``n_anchors``, ``sweep_sigma``, ``sweep_steps``, ``sobol_n``,
            ``griffin_lim_iters``, ``seed`` (anchor choice and Sobol sample) and the layout.
        notes: (n,) names of the notes of ``mu`` (default "test note <row>").
        describe: descriptors of outputs (default the spectral descriptors of the mel spectra).
    Returns:
        :class:`SensitivityResult`. Findings: decodes_per_s, decode_device, decode_batch_size,
        decode_threads; n_test_notes, n_anchor_points, n_steps, n_oat_decodes, n_desc,
        mean_logmel_change (dB per unit z), descriptors_moved; sobol_N, sobol_evals, sobol_conf,
        sobol_nan, sobol_mean_conf; views, rho_min, rho_max, rho_oat_jac, n_top, top_dimensions,
        top_dims, bottom_dim, dimension_descriptor {str(dim): descriptor}; sweep_sigma_txt,
        strip_note, strip_labels, strip_values, strip_gain.
    Chapter: 04_sensitivity.
    """
    mu = _checked_latents(mu, cfg)
    findings = decoder_speed(decode, cfg.latent_dim)
    views = analysis(decode, mu, cfg, describe=describe)
    moves = normalised_moves(views.sweeps, decode, mu, cfg, describe).rename_axis(columns="descriptor")
    ranking = ranked(views, moves)
    agreement = view_agreement(ranking)
    top = [int(d) for d in ranking.index[: min(N_TOP, cfg.latent_dim)]]
    strips, strip_findings = top_strips(decode, views, top, cfg, notes)
    findings.update(sweep_counts(views, moves, len(mu)))
    findings.update(sobol_findings(views.sobol))
    findings.update(ranking_findings(ranking, agreement, top))
    findings.update(strip_findings, sweep_sigma_txt=f"{cfg.sweep_sigma:g}")
    audio, findings["strip_gain"] = strip_sound(strips, cfg)
    return SensitivityResult(
        tables=view_tables(views, moves, ranking, agreement),
        findings=findings,
        arrays={"strips": strips.numpy(), "strip_audio": audio},
        dimension_order=tuple(int(d) for d in ranking.index),
    )


def _checked_latents(mu, cfg: Config) -> torch.Tensor:
    """``mu`` as a float32 tensor (n, latent_dim), with a clear error for a wrong shape or no notes."""
    mu = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    if mu.dim() != 2 or mu.shape[1] != cfg.latent_dim or len(mu) == 0:
        raise ConfigError(
            f"the sensitivity analysis needs posterior means of shape (n >= 1, latent_dim={cfg.latent_dim}), "
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


def ranked(views: Analysis, moves: pd.DataFrame) -> pd.DataFrame:
    """The ranking of the four views, with the descriptor each dimension moves most in ``moves``.

    Args:
        views: :func:`analysis` of the decoder (with Sobol indices).
        moves: :func:`normalised_moves`, dims × descriptors.
    Returns:
        :func:`rank_dimensions` sorted by mean rank, ``top_descriptor`` replaced by the largest
        normalised move of the dimension (NaN where it moves no descriptor). Chapter: 04_sensitivity.
    """
    ranking = views.ranking.copy()  # rank_dimensions of the three views, sorted by mean rank
    ranking["top_descriptor"] = ranking.index.map(moved_descriptor(moves))
    return ranking


def moved_descriptor(moves: pd.DataFrame) -> dict[int, str]:
    """The descriptor each dimension moves most, ``{dim: descriptor}``; dimensions that move none are left out.

    Args:
        moves: dims × descriptors of non-negative moves (:func:`normalised_moves`).
    Returns:
        :func:`top_descriptor` of the positive moves. Chapter: 04_sensitivity.
    """
    return top_descriptor(moves.where(moves > 0))


def view_agreement(ranking: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation between the views' scores of the dimensions: views × views (NaN for a constant score)."""
    scores = [v for v in VIEWS if v in ranking]
    return ranking[scores].corr(method="spearman").rename_axis(index="view", columns="view")


def sweep_counts(views: Analysis, moves: pd.DataFrame, n_notes: int) -> dict:
    """How many anchors, steps, decodes and descriptors the sweeps used, and their mean log-mel change.

    Returns:
        {n_test_notes, n_anchor_points, n_steps, n_oat_decodes, n_desc, mean_logmel_change (dB per
        unit z, over dimensions), descriptors_moved (descriptors some dimension moves)}.
    Chapter: 04_sensitivity.
    """
    n_anchors, n_steps, n_dims = len(views.anchors), len(views.grid), views.anchors.shape[1]
    overall = views.sweeps.logmel.query("scope == 'all'")["change"]
    return {
        "n_test_notes": int(n_notes),
        "n_anchor_points": int(n_anchors),
        "n_steps": int(n_steps),
        "n_oat_decodes": int(n_anchors * n_steps * n_dims),
        "n_desc": int(moves.shape[1]),
        "mean_logmel_change": float(overall.mean()),
        "descriptors_moved": [str(c) for c in moves.columns if moves[c].notna().any()],
    }


def sobol_st(sobol: pd.DataFrame) -> pd.DataFrame:
    """Total Sobol indices, dims × descriptors in the descriptors' order (all-NaN columns kept)."""
    st = sobol.pivot(index="dim", columns="descriptor", values="ST")
    return st[list(dict.fromkeys(sobol["descriptor"]))]


def sobol_findings(sobol: pd.DataFrame) -> dict:
    """The quoted numbers of the Sobol analysis.

    Returns:
        {sobol_N, sobol_evals (decodes), sobol_conf (e.g. "95 %"), sobol_nan (descriptors without
        variance, joined, or "none"), sobol_mean_conf (mean ST confidence half-width)}.
    Chapter: 04_sensitivity.
    """
    st = sobol_st(sobol)
    nan_desc = [str(d) for d in st.columns if st[d].isna().all()]
    return {
        "sobol_N": int(sobol.attrs["N"]),
        "sobol_evals": int(sobol.attrs["n_evaluations"]),
        "sobol_conf": f"{100 * sobol.attrs['conf_level']:.0f} %",
        "sobol_nan": ", ".join(nan_desc) if nan_desc else "none",
        "sobol_mean_conf": float(sobol["ST_conf"].mean()),
    }


def ranking_findings(ranking: pd.DataFrame, agreement: pd.DataFrame, top: Sequence[int]) -> dict:
    """The quoted agreement of the views and the most and least influential dimensions.

    Args:
        ranking: :func:`ranked`; agreement: :func:`view_agreement`; top: the first dimensions of the ranking.
    Returns:
        {views, rho_min, rho_max (over pairs of views), rho_oat_jac (sweeps vs gradients), n_top,
        top_dimensions (ints), top_dims ("z5 (centroid_hz), z8 (flatness), ..."), bottom_dim ("z4"),
        dimension_descriptor ({str(dim): descriptor})}.
    Chapter: 04_sensitivity.
    """
    off = agreement.to_numpy()[np.triu_indices(len(agreement), 1)]
    descriptor = ranking["top_descriptor"]
    return {
        "views": [str(v) for v in agreement.columns],
        "rho_min": float(off.min()),
        "rho_max": float(off.max()),
        "rho_oat_jac": float(agreement.loc["oat_logmel", "jacobian"]),
        "n_top": len(top),
        "top_dimensions": [int(d) for d in top],
        "top_dims": ", ".join(f"z{d} ({descriptor[d]})" if pd.notna(descriptor[d]) else f"z{d}" for d in top),
        "bottom_dim": f"z{int(ranking.index[-1])}",
        "dimension_descriptor": {str(int(d)): str(v) for d, v in descriptor.items() if pd.notna(v)},
    }


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


def strip_sound(strips: torch.Tensor, cfg: Config) -> tuple[np.ndarray, float]:
    """The strips as audio (Griffin-Lim, ``cfg.griffin_lim_iters``), one gain for all: the loudest peak at -1 dBFS.

    Args:
        strips: (n, n_mels, frames) dB.
    Returns:
        ((n, samples) float32 waveforms at 16 kHz, the gain applied (at most 1)). Chapter: 04_sensitivity.
    """
    from vaetone.spectral.inversion import mel_to_audio

    sound = mel_to_audio(strips, cfg, n_iter=cfg.griffin_lim_iters).numpy()
    gain = min(1.0, STRIP_PEAK / max(float(np.abs(sound).max()), 1e-9))
    return (sound * gain).astype(np.float32), float(gain)


def view_tables(views: Analysis, moves: pd.DataFrame, ranking: pd.DataFrame, agreement: pd.DataFrame) -> dict:
    """The tables of :class:`SensitivityResult` from the views, the moves, the ranking and the agreement."""
    st = sobol_st(views.sobol)
    return {
        "ranking": ranking,
        "moves": moves,
        "where": _by_part(views.sweeps.logmel.query("scope != 'all'"), "change", "frequency band / time region"),
        "jacobian": _by_part(views.jacobian, "jacobian_rms", "output region"),
        "sobol": views.sobol,
        "sobol_st": st.drop(columns=[d for d in st.columns if st[d].isna().all()]),
        "agreement": agreement,
        "curves": views.sweeps.curves,
        "sweeps_logmel": views.sweeps.logmel,
        "sweeps_descriptors": views.sweeps.descriptors,
    }


def _by_part(tidy: pd.DataFrame, value: str, axis: str) -> pd.DataFrame:
    """A tidy per-(dim, part) table as dims × parts, the parts in their order of appearance."""
    wide = tidy.pivot(index="dim", columns="part", values=value)[list(dict.fromkeys(tidy["part"]))]
    return wide.rename_axis(columns=axis)
