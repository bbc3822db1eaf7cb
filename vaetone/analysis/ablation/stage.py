"""The ablation stage: one cached result with every number, table, picture and sound of chapter 05.

:func:`result` loads what the stage needs from the trained run (:func:`inputs`) and hands it to
:func:`compute_ablation`, which works from decoders, latents and arrays alone (the steps are in
:mod:`~vaetone.analysis.ablation.steps`), so that the known-answer tests call it without training.

Chapter: 05_ablation.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from vaetone import store
from vaetone.analysis.ablation.effects import audio_metrics, descriptor_effects
from vaetone.analysis.ablation.methods import importance_order
from vaetone.analysis.ablation.steps import (
    AblationInputs,
    audio_findings,
    audio_pick,
    audio_subset_effects,
    baseline_effects,
    captum_findings,
    cumulative_curves,
    cumulative_findings,
    descriptor_findings,
    effect_findings,
    effect_tables,
    listening_examples,
    summary_table,
)
from vaetone.analysis.decoding import db_decoder, default_describe
from vaetone.config import Config
from vaetone.results import StageResult, cached


class AblationResult(StageResult):
    """What ablating latent dimensions costs the reconstruction, every number chapter 05 quotes.

    Tables: ``summary`` (:func:`~.steps.summary_table`), ``zero_overall`` (its zero-baseline,
    overall, log-mel MSE rows indexed by ``dim``: base_mean, increase_mean, increase_sem,
    relative_increase, ... in dB²), ``logmel_increase`` and ``logmel_increase_sem`` (dim ×
    baseline, dB²), ``lsd_increase`` (dim in ablation order × baseline, dB), ``by_family`` and
    ``by_pitch_range`` (group × dim, relative increase), ``audio_effects`` (tidy) and
    ``audio_subset`` (dim in ablation order × audio metric), ``cumulative`` (order, k, kept,
    error_mean, error_sem in dB²), ``descriptor_effects`` (dim in ablation order × descriptor, in
    descriptor standard deviations), ``listening`` (note, variant, label of each listening example).

    Findings: run_id, n_test, n_dims, n_baselines; base_mse, top_abl, n_free, free_pct, baseline_costs,
    costliest_baseline, rho_baselines, baselines_rank (:func:`~.steps.effect_findings`);
    captum_max_abs_diff, captum_diff, captum_agrees, captum_largest; n_sub, sub_notes,
    audio_subset, base_fa, base_f0; k90, recovered_pct, vae_k90, pca_k90, vae_full, pca_full, kl_gap;
    dimension_descriptor ({str(dim): descriptor}), top_desc; kl_order; listen_columns.

    Arrays: ``listen_db`` (m, n_mels, frames) dB and ``listen_audio`` (m, samples) at one gain.
    ``dimension_order``: dimensions by their zero-baseline log-mel ablation effect, costliest first.
    Chapter: 05_ablation.
    """

    stage: ClassVar[str] = "ablation"
    version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = ("griffin_lim_iters", "n_audio_examples")


def compute_ablation(inp: AblationInputs) -> AblationResult:
    """Every number, table and example of the ablation chapter, from a decoder and the test notes.

    Args:
        inp: the decoders, latents, references and tools (:class:`AblationInputs`).
    Returns:
        :class:`AblationResult`. Chapter: 05_ablation.
    """
    effects = baseline_effects(inp)
    summary = summary_table(effects, inp.meta)
    order = importance_order(effects["zero"], "logmel_mse")
    pick = audio_pick(inp)
    audio_effects = audio_subset_effects(inp, pick)
    audio, audio_table = audio_findings(audio_effects, order)
    cumulative, kl = cumulative_curves(inp, order)
    moved = descriptor_effects(effects["zero"]).loc[order]
    listen_db, listen_audio, listening = listening_examples(inp, order, pick)
    findings = {
        "run_id": inp.run_id,
        "n_test": len(inp.meta),
        "n_dims": int(inp.mu.shape[1]),
        "n_baselines": len(effects),
        **effect_findings(summary, order),
        **captum_findings(inp, effects["zero"]),
        **audio,
        **cumulative_findings(cumulative),
        **descriptor_findings(moved, order),
        "kl_order": [int(d) for d in kl],
        "listen_columns": int(listening["variant"].nunique()),
    }
    tables = {
        "summary": summary,
        **effect_tables(summary, order),
        "audio_effects": audio_effects,
        "audio_subset": audio_table,
        "cumulative": cumulative,
        "descriptor_effects": moved,
        "listening": listening,
    }
    arrays = {"listen_db": listen_db, "listen_audio": listen_audio}
    return AblationResult(tables, findings, arrays, tuple(int(d) for d in order))


def inputs(cfg: Config) -> AblationInputs:
    """The trained run's decoder and test notes, the PCA baseline fitted on the train notes, and the audio tools.

    Args:
        cfg: the configuration (trains the run, or loads it from ``runs/``).
    Returns:
        :class:`AblationInputs`. Chapter: 05_ablation.
    """
    from vaetone.analysis.baselines import pca_baseline
    from vaetone.model.runs import latents, trained_model
    from vaetone.spectral.features import load_features

    feats = load_features(cfg)
    run = trained_model(cfg, feats)
    test = latents(cfg, run, feats).split("test")
    pca = pca_baseline(feats.x("train"), cfg.latent_dim, seed=cfg.seed)
    return AblationInputs(
        decode=db_decoder(run.decode, feats.denormalise),
        mu=test.mu,
        std=test.std,
        ref=feats.logmel[feats.rows("test")],
        meta=test.meta,
        pca_decode=db_decoder(pca.decode, feats.denormalise, device="cpu"),
        pca_mu=pca.encode(feats.x("test"))[0],
        describe=default_describe(cfg),
        to_audio=functools.partial(_to_audio, cfg=cfg),
        audio_metrics=audio_metrics(cfg),
        seed=cfg.seed,
        n_audio_examples=cfg.n_audio_examples,
        run_id=run.path.name,
    )


def _to_audio(db, cfg: Config) -> np.ndarray:
    """dB log-mels (m, n_mels, frames) → (m, samples) float32 waveforms (``cfg.griffin_lim_iters`` iterations)."""
    from vaetone.spectral.inversion import mel_to_audio

    return mel_to_audio(db, cfg).numpy()


def result(cfg: Config) -> AblationResult:
    """The ablation stage of the run trained with ``cfg``: computed once, then loaded from the run's folder.

    Args:
        cfg: the configuration; the result is keyed by the trained run and ``griffin_lim_iters``,
            ``n_audio_examples`` (:attr:`AblationResult.params`).
    Returns:
        :class:`AblationResult`, as stored under ``runs/<run>/results/ablation-<key>/``.
    Chapter: 05_ablation.
    """
    return cached(
        AblationResult,
        cfg,
        lambda: compute_ablation(inputs(cfg)),
        folder=store.run_dir(cfg),
        upstream=store.key("train", cfg),
    )
