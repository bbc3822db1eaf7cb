"""The steps of the ablation stage: each a short function of the stage's inputs or of an earlier step.

:class:`AblationInputs` holds what the stage computes from (decoders, latents, references and
audio tools, no configuration), so that the known-answer tests call the steps on a synthetic
decoder. In the order of chapter 05: one dimension at a time under three baselines
(:func:`baseline_effects` to :func:`effect_tables`, with the wording of :func:`baselines_rank`),
the Captum cross-check, the audio subset, the cumulative curves, the listening examples and the
descriptors an ablation moves.

Chapter: 05_ablation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vaetone.analysis.ablation.effects import audio_ablation_effects, descriptor_metric
from vaetone.analysis.ablation.methods import (
    BASELINES,
    ablate,
    ablation_effects,
    ablation_matrix,
    baseline_values,
    captum_ablation,
    cumulative_ablation,
    pitch_ranges,
    summarise_ablation,
)
from vaetone.analysis.decoding import Decoder, Describe, decode_batched
from vaetone.analysis.metrics import log_spectral_distance, logmel_mse
from vaetone.errors import VaetoneError

FREE_SHARE = 0.01
"""A dimension is "free" when ablating it costs less than this share of the unablated error."""

RECOVERED_SHARE = 0.9
"""k90: the fewest dimensions, kept in ablation order, that recover this share of the error reduction."""

N_QUOTED = 3
"""How many of the costliest dimensions the prose names; also the top dimensions kept in the listening examples."""

PEAK = 0.89
"""Peak amplitude of the loudest listening example (−1 dBFS); one gain for all of them."""

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
"""The curves of the cumulative ablation."""

AUDIO_COLUMNS = {
    "frequency_accuracy": "frequency accuracy lost (points of %)",
    "f0_error_cents": "f0 error added (cents)",
}
"""The audio metrics of the subset and their column names in the table ``audio_subset``."""


@dataclass(frozen=True)
class AblationInputs:
    """What the ablation stage computes from: a decoder to dB, the test notes, PCA, and the audio tools.

    Attributes:
        decode: latents (n, D) → dB log-mels (n, [1,] n_mels, frames), e.g. :func:`db_decoder` of a run.
        mu, std: (n, D) posterior means and standard deviations of the test notes.
        ref: (n, n_mels, frames) the test notes' own log-mels, dB.
        meta: n rows indexed by note name, with ``instrument_family_str`` and ``pitch`` (MIDI).
        pca_decode: PCA scores (n, D) → dB log-mels; pca_mu: (n, D) PCA scores of the test notes.
        describe: dB log-mels (m, n_mels, frames) → descriptors, a DataFrame of m rows.
        to_audio: dB log-mels (m, n_mels, frames) → waveforms (m, samples) (Griffin-Lim).
        audio_metrics: {name: metric(ref_audio, est_audio) -> (m,)} with the keys of :data:`AUDIO_COLUMNS`.
        seed: seed of the permute baseline and of the audio subset.
        n_audio_examples: notes of the audio subset and of the listening examples (at least 1 is used).
        run_id: the trained run's folder name.
    Chapter: 05_ablation.
    """

    decode: Decoder
    mu: np.ndarray
    std: np.ndarray
    ref: torch.Tensor
    meta: pd.DataFrame
    pca_decode: Decoder
    pca_mu: torch.Tensor
    describe: Describe
    to_audio: Callable
    audio_metrics: Mapping[str, Callable]
    seed: int = 0
    n_audio_examples: int = 3
    run_id: str = ""


def baseline_effects(inp: AblationInputs) -> dict[str, pd.DataFrame]:
    """Per note and dimension, the log-mel MSE and LSD increases under each baseline (descriptors too for "zero").

    Args:
        inp: the decoder, the test notes' latents and log-mels, the descriptor function and the seed.
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


def effect_findings(summary: pd.DataFrame, order: Sequence[int]) -> dict:
    """The quoted numbers of the one-dimension ablation: the unablated error, the costliest dimensions, the baselines.

    Args:
        summary: from :func:`summary_table`.
        order: dimensions, costliest first.
    Returns:
        {base_mse (dB²), top_abl, n_free, free_pct (the threshold of n_free, % of base_mse), baseline_costs,
        costliest_baseline, rho_baselines, baselines_rank}.
        Chapter: 05_ablation.
    """
    overall = summary.query("grouping == 'overall' and metric == 'logmel_mse'")
    zero = overall.query("baseline == 'zero'").set_index("dim")
    base_mse = float(zero["base_mean"].iloc[0])
    by_baseline = overall.groupby("baseline")["increase_mean"].mean().sort_values(ascending=False)
    rho = float(_by_baseline(overall, "increase_mean").corr(method="spearman").to_numpy().min())
    return {
        "base_mse": base_mse,
        "top_abl": ", ".join(f"z{d} ({zero.loc[d, 'increase_mean']:+.0f} dB²)" for d in order[:N_QUOTED]),
        "n_free": int((zero["increase_mean"] < FREE_SHARE * base_mse).sum()),
        "free_pct": 100 * FREE_SHARE,
        "baseline_costs": ", ".join(f'"{b}" {v:.3g} dB²' for b, v in by_baseline.items()),
        "costliest_baseline": f'"{by_baseline.index[0]}"',
        "rho_baselines": rho,
        "baselines_rank": baselines_rank(rho),
    }


def effect_tables(summary: pd.DataFrame, order: Sequence[int]) -> dict[str, pd.DataFrame]:
    """The tables the chapter shows of the one-dimension ablation.

    Args:
        summary: from :func:`summary_table`.
        order: dimensions, costliest first.
    Returns:
        {zero_overall, logmel_increase, logmel_increase_sem, lsd_increase, by_family, by_pitch_range}
        (see :class:`~vaetone.analysis.ablation.stage.AblationResult`). Chapter: 05_ablation.
    """
    overall = summary.query("grouping == 'overall'")
    mse, lsd = overall.query("metric == 'logmel_mse'"), overall.query("metric == 'lsd_db'")
    rel = summary.query("baseline == 'zero' and metric == 'logmel_mse'")

    def groups(grouping: str, label: str) -> pd.DataFrame:
        table = rel.query("grouping == @grouping").pivot(index="group", columns="dim", values="relative_increase")
        return table.rename_axis(index=label, columns="ablated latent dimension")

    return {
        "zero_overall": mse.query("baseline == 'zero'").set_index("dim"),
        "logmel_increase": _by_baseline(mse, "increase_mean"),
        "logmel_increase_sem": _by_baseline(mse, "increase_sem"),
        "lsd_increase": _by_baseline(lsd, "increase_mean")
        .loc[order]
        .rename_axis(columns="LSD increase (dB) by baseline"),
        "by_family": groups("family", "instrument family"),
        "by_pitch_range": groups("pitch range", "MIDI pitch range"),
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
    """Rows of the seeded audio subset of the test notes.

    Args:
        inp: its ``mu`` (n, D), ``seed`` and ``n_audio_examples``.
    Returns:
        (max(1, n_audio_examples),) sorted int rows (at most n). Chapter: 05_ablation.
    """
    from vaetone.analysis.sensitivity.oat import anchor_points

    return anchor_points(inp.mu, max(1, inp.n_audio_examples), seed=inp.seed, prior_mean=False)[1]


def audio_subset_effects(inp: AblationInputs, pick: np.ndarray) -> pd.DataFrame:
    """Frequency accuracy and f0 error of the subset's ablated reconstructions, zero baseline, through Griffin-Lim.

    Args:
        inp: the decoder, latents, log-mels, ``to_audio`` and ``audio_metrics``.
        pick: rows of the subset (:func:`audio_pick`).
    Returns:
        Tidy table of :func:`~vaetone.analysis.ablation.effects.audio_ablation_effects`. Chapter: 05_ablation.
    """
    missing = set(AUDIO_COLUMNS) - set(inp.audio_metrics)
    if missing:
        raise VaetoneError(
            f"the ablation stage's audio_metrics lack {sorted(missing)}; pass "
            "vaetone.analysis.ablation.audio_metrics(cfg) or metrics under those names"
        )
    ref_audio = inp.to_audio(inp.ref[pick])
    return audio_ablation_effects(
        inp.decode,
        inp.mu[pick],
        ref_audio,
        inp.to_audio,
        inp.audio_metrics,
        baseline="zero",
        higher_is_better=("frequency_accuracy",),
        index=inp.meta.index[pick],
    )


def audio_findings(audio_effects: pd.DataFrame, order: Sequence[int]) -> tuple[dict, pd.DataFrame]:
    """The subset's unablated frequency accuracy (%) and f0 error (cents), and its table by dimension.

    Args:
        audio_effects: from :func:`audio_subset_effects`.
        order: dimensions, costliest first.
    Returns:
        ({n_sub, sub_notes, audio_subset (note names), base_fa (%), base_f0 (cents)}, the table
        ``audio_subset``: dims in ``order`` × mean degradation, frequency accuracy in points of %).
        Chapter: 05_ablation.
    """
    table = audio_effects.groupby(["dim", "metric"])["degradation"].mean().unstack("metric")
    table = table.assign(frequency_accuracy=100 * table["frequency_accuracy"]).loc[order].rename(columns=AUDIO_COLUMNS)
    base = audio_effects.groupby("metric")["base"].mean()
    notes = [str(n) for n in pd.unique(audio_effects["note"])]
    return {
        "n_sub": len(notes),
        "sub_notes": ", ".join(notes),
        "audio_subset": notes,
        "base_fa": 100 * float(base["frequency_accuracy"]),
        "base_f0": float(base["f0_error_cents"]),
    }, table


def cumulative_curves(inp: AblationInputs, order: Sequence[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """Error with only the first k dimensions kept, k = 0..D: the VAE by ablation effect and by KL, PCA by variance.

    Args:
        inp: the decoders, latents (``std`` for the KL order), PCA scores and log-mels.
        order: the VAE's dimensions, costliest first.
    Returns:
        (tidy table of :func:`~vaetone.analysis.ablation.methods.cumulative_ablation` with the
        orders of :data:`ORDERS`, the KL order (D,)). Chapter: 05_ablation.
    """
    from vaetone.analysis.statistics import kl_order

    kl = kl_order(inp.mu, inp.std)
    vae = cumulative_ablation(inp.decode, inp.mu, inp.ref, {ORDERS[0]: order, ORDERS[1]: kl})
    pca = cumulative_ablation(inp.pca_decode, inp.pca_mu, inp.ref, {ORDERS[2]: range(inp.mu.shape[1])})
    return pd.concat([vae, pca], ignore_index=True), kl


def cumulative_findings(cumulative: pd.DataFrame) -> dict:
    """k90 and the errors the prose quotes from the cumulative curves (dB²).

    Args:
        cumulative: from :func:`cumulative_curves` (columns order, k, error_mean).
    Returns:
        {k90, recovered_pct (the share of k90, %), vae_k90, pca_k90, vae_full, pca_full,
        kl_gap (largest |KL order − ablation order|)}.
        Chapter: 05_ablation.
    """
    curve = cumulative.pivot(index="k", columns="order", values="error_mean")
    vae, pca = curve[ORDERS[0]], curve[ORDERS[2]]
    k90 = int((vae <= vae.iloc[0] - RECOVERED_SHARE * (vae.iloc[0] - vae.iloc[-1])).idxmax())
    return {
        "k90": k90,
        "recovered_pct": 100 * RECOVERED_SHARE,
        "vae_k90": float(vae.loc[k90]),
        "pca_k90": float(pca.loc[k90]),
        "vae_full": float(vae.iloc[-1]),
        "pca_full": float(pca.iloc[-1]),
        "kl_gap": float((curve[ORDERS[1]] - vae).abs().max()),
    }


def listening_examples(
    inp: AblationInputs, order: Sequence[int], pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Each subset note: original, reconstruction, costliest and cheapest dimension ablated, top dimensions kept.

    Args:
        inp: the decoder, latents, log-mels and ``to_audio``.
        order: dimensions, costliest first.
        pick: rows of the notes (:func:`audio_pick`).
    Returns:
        (dB log-mels (m, n_mels, frames), their Griffin-Lim audio (m, samples) scaled by one gain so
        that the loudest peak is :data:`PEAK`, table ``listening`` of m rows: note, variant, label).
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
    sound = np.asarray(inp.to_audio(db))
    sound = sound * min(1.0, PEAK / max(float(np.abs(sound).max()), 1e-9))
    table = pd.DataFrame(rows, columns=["note", "variant"])
    return db, sound, table.assign(label=table["note"] + ": " + table["variant"])


def descriptor_findings(moved: pd.DataFrame, order: Sequence[int]) -> dict:
    """The descriptor each dimension's ablation moves most, and the costliest dimensions with theirs.

    Args:
        moved: :func:`~vaetone.analysis.ablation.effects.descriptor_effects` (dim × descriptor).
        order: dimensions, costliest first.
    Returns:
        {dimension_descriptor: {str(dim): descriptor}, top_desc: "z5 (centroid_hz), ..."}. Chapter: 05_ablation.
    """
    from vaetone.analysis.sensitivity.ranking import top_descriptor

    descriptor = top_descriptor(moved)
    return {
        "dimension_descriptor": {str(d): name for d, name in descriptor.items()},
        "top_desc": ", ".join(f"z{d} ({descriptor.get(int(d), '?')})" for d in order[:N_QUOTED]),
    }
