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
import torch

from vaetone import store
from vaetone.analysis.ablation.choice import choice_findings, choose_on_valid
from vaetone.analysis.ablation.effects import ablation_labels, descriptor_effects, descriptor_rho
from vaetone.analysis.ablation.methods import baseline_values
from vaetone.analysis.ablation.scores import cumulative_errors, cumulative_findings, error_bars, score
from vaetone.analysis.ablation.steps import (
    AblationInputs,
    audio_pick,
    baseline_effects,
    captum_findings,
    descriptor_findings,
    effect_findings,
    effect_tables,
    listening_examples,
    listening_findings,
    summary_table,
)
from vaetone.analysis.decoding import db_decoder, default_describe
from vaetone.config import Config
from vaetone.results import StageResult, cached


class AblationResult(StageResult):
    """What ablating latent dimensions costs the reconstruction, every number chapter 05 quotes.

    The order of the dimensions, the free dimensions, k90 and the KL order are chosen on the
    validation notes; every score is measured on the test notes, the quoted ones with a 95 %
    instrument-level bootstrap interval; the "mean" and "permute" baselines come from the
    training notes.

    Tables: ``summary`` (:func:`~.steps.summary_table`, test), ``zero_overall`` (its zero-baseline,
    overall, log-mel MSE rows indexed by ``dim``: base_mean, increase_mean, increase_sem,
    relative_increase, ... in dB², and ``label``: the dimension's name, a descriptor, "mixed" or
    "none", :func:`~.effects.ablation_labels`), ``valid_overall`` (the same on the validation notes, from which
    the order is chosen), ``logmel_increase``, ``logmel_increase_sem`` and ``logmel_increase_ci``
    (dim × baseline, dB²; the last: half the width of the 95 % interval), ``lsd_increase`` (dim in
    ablation order × baseline, dB), ``by_family`` and ``by_pitch_range`` (group with its notes and
    instruments × dim, relative increase), ``cumulative`` (order, k, kept, error_mean, error_sem in
    dB², test), ``intervals`` (quantity × unit, estimate, "95 % interval", notes, instruments),
    ``descriptor_effects`` (dim in ablation order × descriptor, signed net change in descriptor
    standard deviations per standard deviation of z_j), ``descriptor_rho`` (the same × Spearman ρ
    of shift and change over the notes), ``listening`` (note, variant, label).

    Findings: run_id, n_dims, n_baselines, n_reference (training notes of the baselines),
    inversions_per_note (D + 1: what scoring every ablation on audio would cost);
    choices on the validation notes (:func:`~.choice.choice_findings`): n_valid,
    n_valid_instruments, n_free, free_pct, free_dims, k90, recovered_pct, kl_order; test scores
    (:func:`~.scores.score`): n_test, n_test_instruments, base_mse_ci, top_abl, free_cost,
    recovered_test, vae_vs_pca, order_rho; base_mse, baseline_costs, costliest_baseline,
    rho_baselines, baselines_rank (:func:`~.steps.effect_findings`); error_bars; captum_max_abs_diff,
    captum_diff, captum_agrees, captum_largest; vae_k90, pca_k90, vae_full, pca_full, kl_gap;
    dimension_descriptor ({str(dim): descriptor or "mixed"}), top_desc, label_ratio, label_min_rho,
    label_min_change (the naming rule of :func:`~.effects.descriptor_labels`: this seed's reading
    only; a name is used only where it holds across seeds,
    :func:`vaetone.analysis.seeds_labels.held_labels` with ``analysis="ablation"``); listen_columns, n_listen,
    listen_notes, listen_peak_dbfs (the measured peak of ``listen_audio``), listen_target_dbfs.

    Arrays: ``listen_db`` (m, n_mels, frames) dB and ``listen_audio`` (m, samples) at one gain.
    ``dimension_order``: dimensions by their zero-baseline log-mel ablation effect on the
    validation notes, costliest first.
    Chapter: 05_ablation.
    """

    stage: ClassVar[str] = "ablation"
    version: ClassVar[int] = 3
    params: ClassVar[tuple[str, ...]] = ("griffin_lim_iters", "n_audio_examples", "bootstrap_n")


def compute_ablation(inp: AblationInputs) -> AblationResult:
    """Every number, table and example of the ablation chapter: choices on the validation notes, scores on test.

    Args:
        inp: the decoders, latents, references and tools (:class:`AblationInputs`).
    Returns:
        :class:`AblationResult`. Chapter: 05_ablation.
    """
    choice = choose_on_valid(inp)
    order = choice.order
    effects = baseline_effects(inp)
    summary = summary_table(effects, inp.meta)
    errors, cumulative = cumulative_errors(inp, choice)
    scores, intervals = score(inp, effects["zero"], choice, errors)
    widths, bars = error_bars(effects, inp)
    shift = baseline_values(inp.mu, "zero") - torch.as_tensor(inp.mu, dtype=torch.float32)
    moved = descriptor_effects(effects["zero"], shift).loc[order]
    rho = descriptor_rho(effects["zero"], shift).loc[order]
    pick = audio_pick(inp)
    listen_db, listen_audio, listening = listening_examples(inp, order, pick)
    findings = {
        "run_id": inp.run_id,
        "n_dims": int(inp.mu.shape[1]),
        "n_baselines": len(effects),
        "n_reference": len(inp.reference_mu),
        "inversions_per_note": int(inp.mu.shape[1]) + 1,
        **choice_findings(choice),
        **scores,
        **effect_findings(summary),
        "error_bars": bars,
        **captum_findings(inp, effects["zero"]),
        **cumulative_findings(errors, choice.k90),
        **descriptor_findings(moved, rho, order),
        **listening_findings(listening, listen_audio),
    }
    shown = effect_tables(summary, order, inp.meta)
    shown["zero_overall"] = shown["zero_overall"].assign(label=ablation_labels(moved, rho)["label"])
    tables = {
        "summary": summary,
        **shown,
        "valid_overall": choice.overall,
        "logmel_increase_ci": widths,
        "cumulative": cumulative,
        "intervals": intervals,
        "descriptor_effects": moved,
        "descriptor_rho": rho,
        "listening": listening,
    }
    arrays = {"listen_db": listen_db, "listen_audio": listen_audio}
    return AblationResult(tables, findings, arrays, tuple(int(d) for d in order))


def inputs(cfg: Config) -> AblationInputs:
    """The trained run's decoder, its test, validation and training latents, PCA fitted on the train notes, audio tools.

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
    every = latents(cfg, run, feats)
    test, valid = every.split("test"), every.split("valid")
    pca = pca_baseline(feats.x("train"), cfg.latent_dim, seed=cfg.seed)
    return AblationInputs(
        decode=db_decoder(run.decode, feats.denormalise),
        mu=test.mu,
        std=test.std,
        ref=feats.logmel[feats.rows("test")],
        meta=test.meta,
        valid_mu=valid.mu,
        valid_std=valid.std,
        valid_ref=feats.logmel[feats.rows("valid")],
        valid_meta=valid.meta,
        reference_mu=every.split("train").mu,
        pca_decode=db_decoder(pca.decode, feats.denormalise, device="cpu"),
        pca_mu=pca.encode(feats.x("test"))[0],
        describe=default_describe(cfg),
        to_audio=functools.partial(_to_audio, cfg=cfg),
        seed=cfg.seed,
        n_audio_examples=cfg.n_audio_examples,
        n_boot=cfg.bootstrap_n,
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
            ``n_audio_examples``, ``bootstrap_n`` (:attr:`AblationResult.params`).
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
