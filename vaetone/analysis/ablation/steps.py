"""The steps of the ablation stage on the test notes: each a short function of the stage's inputs or of an earlier step.

:class:`AblationInputs` holds what the stage computes from (decoders, latents of the test,
validation and training notes, references and audio tools, no configuration), so that the
known-answer tests call the steps on a synthetic decoder. What is *chosen* (the order of the
dimensions, the free dimensions, k90) is chosen on the validation notes in
:mod:`~vaetone.analysis.ablation.choice`; what is *scored*, with instrument-level intervals, is scored
here and in :mod:`~vaetone.analysis.ablation.scores` on the test notes. In the order of chapter
05: one dimension at a time under three baselines taken from the training notes
(:func:`baseline_effects` to :func:`effect_tables`, with the wording of :func:`baselines_rank`),
the Captum cross-check, the listening examples and the descriptors an ablation moves.

Chapter: 05_ablation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone.analysis.ablation.effects import descriptor_labels, descriptor_metric
from vaetone.analysis.ablation.methods import (
    BASELINES,
    ablate,
    ablation_effects,
    ablation_matrix,
    baseline_values,
    captum_ablation,
    pitch_ranges,
    summarise_ablation,
)
from vaetone.analysis.decoding import Decoder, Describe, decode_batched
from vaetone.analysis.metrics import log_spectral_distance, logmel_mse
from vaetone.spectral.inversion import peak_dbfs, peak_normalise

FREE_SHARE = 0.01
"""A dimension is "free" when ablating it costs less than this share of the unablated error (validation notes)."""

RECOVERED_SHARE = 0.9
"""k90: the fewest dimensions, kept in ablation order, that recover this share of the error reduction (validation)."""

N_QUOTED = 3
"""How many of the costliest dimensions the prose names; also the top dimensions kept in the listening examples."""

PEAK_DBFS = -1.0
"""Level of the loudest sample of the listening examples, dBFS; one gain for all of them."""

GROUP = "instrument_str"
"""The column of the notes' metadata that names their instrument: the cluster of every interval."""

RANK_WORDING = (
    (0.8, "rank the dimensions alike"),
    (0.5, "rank the dimensions broadly alike"),
    (0.0, "rank the dimensions only loosely alike"),
    (-math.inf, "rank the dimensions differently"),
)
"""(lowest Spearman ρ between any two baselines, phrase): the first row whose bound ρ reaches."""

UNRANKED = "cannot be compared by rank (constant effects)"
"""The phrase when ρ is undefined (a baseline's effects are all equal)."""

ORDERS = ("VAE, by ablation effect", "VAE, by KL", "PCA, by explained variance")
"""The curves of the cumulative ablation (the VAE's orders chosen on the validation notes)."""


@dataclass(frozen=True)
class AblationInputs:
    """What the ablation stage computes from: a decoder to dB, the test, validation and training notes, PCA, audio.

    Attributes:
        decode: latents (n, D) → dB log-mels (n, [1,] n_mels, frames), e.g. :func:`db_decoder` of a run.
        mu, std: (n, D) posterior means and standard deviations of the test notes.
        ref: (n, n_mels, frames) the test notes' own log-mels, dB.
        meta: n rows indexed by note name, with ``instrument_str`` (:data:`GROUP`),
            ``instrument_family_str`` and ``pitch`` (MIDI).
        valid_mu, valid_std, valid_ref, valid_meta: the same of the validation notes (the choices).
        reference_mu: (r, D) posterior means of the training notes, the source of the "mean" and
            "permute" baselines.
        pca_decode: PCA scores (n, D) → dB log-mels; pca_mu: (n, D) PCA scores of the test notes.
        describe: dB log-mels (m, n_mels, frames) → descriptors, a DataFrame of m rows.
        to_audio: dB log-mels (m, n_mels, frames) → waveforms (m, samples) (Griffin-Lim).
        seed: seed of the permute baseline, of the listening notes and of the bootstrap.
        n_audio_examples: notes of the listening examples (at least 1 is used).
        n_boot: resamples of every instrument-level bootstrap interval.
        run_id: the trained run's folder name.
    Chapter: 05_ablation.
    """

    decode: Decoder
    mu: np.ndarray
    std: np.ndarray
    ref: torch.Tensor
    meta: pd.DataFrame
    valid_mu: np.ndarray
    valid_std: np.ndarray
    valid_ref: torch.Tensor
    valid_meta: pd.DataFrame
    reference_mu: np.ndarray
    pca_decode: Decoder
    pca_mu: torch.Tensor
    describe: Describe
    to_audio: Callable
    seed: int = 0
    n_audio_examples: int = 3
    n_boot: int = 1000
    run_id: str = ""


def baseline_effects(inp: AblationInputs) -> dict[str, pd.DataFrame]:
    """Per test note and dimension, the log-mel MSE and LSD increases under each baseline (descriptors too for "zero").

    Args:
        inp: the decoder, the test notes' latents and log-mels, the training notes' latents (the
            "mean" and "permute" baselines), the descriptor function and the seed.
    Returns:
        {baseline: tidy effects of :func:`~vaetone.analysis.ablation.methods.ablation_effects`}; the
        zero baseline's also hold ``descriptors:<name>`` rows (one decoding pass for both). Chapter: 05_ablation.
    """
    errors = {"logmel_mse": logmel_mse, "lsd_db": log_spectral_distance}
    with_descriptors = {**errors, "descriptors": descriptor_metric(None, inp.describe)}
    return {
        b: ablation_effects(
            inp.decode,
            inp.mu,
            inp.ref,
            with_descriptors if b == "zero" else errors,
            baseline=b,
            seed=inp.seed,
            index=inp.meta.index,
            reference=inp.reference_mu,
        )
        for b in BASELINES
    }


def summary_table(effects: Mapping[str, pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    """The summaries of every baseline's effects, overall, per family and per 12-semitone pitch range.

    Args:
        effects: from :func:`baseline_effects`.
        meta: the notes (``instrument_family_str``, ``pitch``), in the order of the effects' notes.
    Returns:
        :func:`~vaetone.analysis.ablation.methods.summarise_ablation` of each baseline, stacked, with
        a ``baseline`` column. Chapter: 05_ablation.
    """
    groups = {"family": meta["instrument_family_str"].to_numpy(), "pitch range": pitch_ranges(meta["pitch"])}
    parts = {b: summarise_ablation(e, groups) for b, e in effects.items()}
    return pd.concat(parts, names=["baseline", None]).reset_index(0)


def baselines_rank(rho: float) -> str:
    """The phrase for how alike the baselines rank the dimensions, from the lowest Spearman ρ between two.

    Args:
        rho: the lowest pairwise Spearman correlation of the baselines' mean effects (NaN: undefined).
    Returns:
        A phrase of :data:`RANK_WORDING`, or :data:`UNRANKED`. Chapter: 05_ablation.
    """
    return next((words for lowest, words in RANK_WORDING if rho >= lowest), UNRANKED)


def _by_baseline(overall: pd.DataFrame, value: str) -> pd.DataFrame:
    """One column of the overall rows as dim × baseline, baselines in the order of :data:`BASELINES`."""
    return overall.pivot(index="dim", columns="baseline", values=value)[list(BASELINES)]


def effect_findings(summary: pd.DataFrame) -> dict:
    """The quoted numbers of the one-dimension ablation on the test notes: the unablated error and the baselines.

    Args:
        summary: from :func:`summary_table`.
    Returns:
        {base_mse (dB², the mean over the test notes), baseline_costs, costliest_baseline,
        rho_baselines, baselines_rank}. Chapter: 05_ablation.
    """
    overall = summary.query("grouping == 'overall' and metric == 'logmel_mse'")
    zero = overall.query("baseline == 'zero'").set_index("dim")
    by_baseline = overall.groupby("baseline")["increase_mean"].mean().sort_values(ascending=False)
    rho = float(_by_baseline(overall, "increase_mean").corr(method="spearman").to_numpy().min())
    return {
        "base_mse": float(zero["base_mean"].iloc[0]),
        "baseline_costs": ", ".join(f'"{b}" {v:.3g} dB²' for b, v in by_baseline.items()),
        "costliest_baseline": f'"{by_baseline.index[0]}"',
        "rho_baselines": rho,
        "baselines_rank": baselines_rank(rho),
    }


def _with_n(group: str, notes: pd.DataFrame) -> str:
    """A group's label with its numbers of notes and instruments, e.g. "brass (40 notes, 6 instruments)"."""
    n, k = len(notes), notes[GROUP].nunique()
    return f"{group} ({n} note{'s' * (n != 1)}, {k} instrument{'s' * (k != 1)})"


def effect_tables(summary: pd.DataFrame, order: Sequence[int], meta: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables the chapter shows of the one-dimension ablation on the test notes.

    Args:
        summary: from :func:`summary_table`.
        order: dimensions, costliest first (chosen on the validation notes).
        meta: the test notes (``instrument_family_str``, ``pitch``, :data:`GROUP`), in the order of the effects.
    Returns:
        {zero_overall, logmel_increase, logmel_increase_sem, lsd_increase, by_family, by_pitch_range}
        (see :class:`~vaetone.analysis.ablation.stage.AblationResult`); the groups of by_family and
        by_pitch_range, and the columns of lsd_increase, are labelled with their numbers of notes and
        instruments. Chapter: 05_ablation.
    """
    overall = summary.query("grouping == 'overall'")
    mse, lsd = overall.query("metric == 'logmel_mse'"), overall.query("metric == 'lsd_db'")
    rel = summary.query("baseline == 'zero' and metric == 'logmel_mse'")

    def groups(grouping: str, label: str, column: np.ndarray) -> pd.DataFrame:
        table = rel.query("grouping == @grouping").pivot(index="group", columns="dim", values="relative_increase")
        names = {g: _with_n(g, meta[column == g]) for g in table.index}
        return table.rename(index=names).rename_axis(index=label, columns="ablated latent dimension")

    return {
        "zero_overall": mse.query("baseline == 'zero'").set_index("dim"),
        "logmel_increase": _by_baseline(mse, "increase_mean"),
        "logmel_increase_sem": _by_baseline(mse, "increase_sem"),
        "lsd_increase": _by_baseline(lsd, "increase_mean")
        .loc[order]
        .rename_axis(columns=f"LSD increase (dB) by baseline; {_with_n('all', meta)}"),
        "by_family": groups("family", "instrument family", meta["instrument_family_str"].to_numpy()),
        "by_pitch_range": groups("pitch range", "MIDI pitch range", pitch_ranges(meta["pitch"])),
    }


def captum_findings(inp: AblationInputs, zero_effects: pd.DataFrame) -> dict:
    """Captum's ``FeatureAblation`` against the package's per-note increases of the log-mel MSE (zero baseline).

    Args:
        inp: the decoder, the test notes' latents and log-mels.
        zero_effects: the zero baseline's effects from :func:`baseline_effects`.
    Returns:
        {captum_max_abs_diff (dB²), captum_diff (its text, "0.0e+00"), captum_agrees (within 1e-6 dB²),
        captum_largest (largest |increase|, dB²)}. Chapter: 05_ablation.
    """
    theirs = captum_ablation(inp.decode, inp.mu, inp.ref, logmel_mse, baseline="zero")
    ours = ablation_matrix(zero_effects, "logmel_mse").loc[inp.meta.index].to_numpy()
    max_diff = float(np.abs(theirs - ours).max())
    return {
        "captum_max_abs_diff": max_diff,
        "captum_diff": f"{max_diff:.1e}",
        "captum_agrees": bool(max_diff < 1e-6),
        "captum_largest": float(np.abs(ours).max()),
    }


def audio_pick(inp: AblationInputs) -> np.ndarray:
    """Rows of the seeded listening notes among the test notes.

    Args:
        inp: its ``mu`` (n, D), ``seed`` and ``n_audio_examples``.
    Returns:
        (max(1, n_audio_examples),) sorted int rows (at most n). Chapter: 05_ablation.
    """
    from vaetone.analysis.sensitivity.oat import anchor_points

    return anchor_points(inp.mu, max(1, inp.n_audio_examples), seed=inp.seed, prior_mean=False)[1]


def listening_examples(
    inp: AblationInputs, order: Sequence[int], pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Each listening note: original, reconstruction, costliest and cheapest dimension ablated, top dimensions kept.

    Args:
        inp: the decoder, latents, log-mels and ``to_audio``.
        order: dimensions, costliest first.
        pick: rows of the notes (:func:`audio_pick`).
    Returns:
        (dB log-mels (m, n_mels, frames), their Griffin-Lim audio (m, samples) scaled by one gain so
        that the loudest sample of all is at :data:`PEAK_DBFS`, table ``listening`` of m rows: note,
        variant, label).
        Chapter: 05_ablation.
    """
    keep, z = min(N_QUOTED, len(order)), inp.mu[pick]
    zero = baseline_values(z, "zero")
    variants = {
        "reconstruction": z,
        f"z{order[0]} ablated": ablate(z, [order[0]], zero),
        f"z{order[-1]} ablated": ablate(z, [order[-1]], zero),
        f"top {keep} kept": ablate(z, order[keep:], zero),
    }
    decoded = {name: decode_batched(inp.decode, v) for name, v in variants.items()}
    dbs, rows = [], []
    for i, note in enumerate(inp.meta.index[pick]):
        dbs += [inp.ref[pick][i]] + [d[i] for d in decoded.values()]
        rows += [(note, "original")] + [(note, name) for name in decoded]
    db = np.stack([np.asarray(d) for d in dbs])
    sound, _ = peak_normalise(np.asarray(inp.to_audio(db), dtype=np.float32), PEAK_DBFS)
    table = pd.DataFrame(rows, columns=["note", "variant"])
    return db, sound, table.assign(label=table["note"] + ": " + table["variant"])


def listening_findings(listening: pd.DataFrame, audio: np.ndarray) -> dict:
    """What the listening grid's caption quotes: its notes and the level of the loudest sample, measured.

    Args:
        listening: the table of :func:`listening_examples`; audio: its (m, samples) waveforms.
    Returns:
        {listen_columns (variants per note), n_listen, listen_notes ("a, b"), listen_peak_dbfs (the
        measured peak of ``audio``, dBFS), listen_target_dbfs (:data:`PEAK_DBFS`)}. Chapter: 05_ablation.
    """
    return {
        "listen_columns": int(listening["variant"].nunique()),
        "n_listen": int(listening["note"].nunique()),
        "listen_notes": ", ".join(str(n) for n in pd.unique(listening["note"])),
        "listen_peak_dbfs": peak_dbfs(audio),
        "listen_target_dbfs": PEAK_DBFS,
    }


def descriptor_findings(moved: pd.DataFrame, rho: pd.DataFrame, order: Sequence[int]) -> dict:
    """The descriptor each dimension's ablation changes dominantly ("mixed" if none), and the costliest ones' names.

    These are this seed's readings; chapter 05 quotes a name only where it holds across the
    training seeds (:func:`vaetone.analysis.seeds_labels.held_labels`, ``top_desc_held`` of the
    across-seeds ablation result).

    Args:
        moved: :func:`~vaetone.analysis.ablation.effects.descriptor_effects` (dim × descriptor, signed).
        rho: :func:`~vaetone.analysis.ablation.effects.descriptor_rho` (dim × descriptor).
        order: dimensions, costliest first.
    Returns:
        {dimension_descriptor: {str(dim): descriptor or "mixed"} (dimensions that move nothing left
        out), top_desc: "z5 (centroid_hz), z3 (mixed), z1 (none)", label_ratio, label_min_rho,
        label_min_change (the rule's constants)}. Chapter: 05_ablation.
    """
    from vaetone.analysis.sensitivity import labels as rule

    labels = descriptor_labels(moved, rho)
    return {
        "label_ratio": rule.LABEL_RATIO,
        "label_min_rho": rule.LABEL_MIN_RHO,
        "label_min_change": rule.LABEL_MIN_CHANGE,
        "dimension_descriptor": {str(d): name for d, name in labels.items()},
        "top_desc": ", ".join(f"z{d} ({labels.get(int(d), 'none')})" for d in order[:N_QUOTED]),
    }
