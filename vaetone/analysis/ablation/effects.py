"""What ablating a dimension changes: descriptors of the ablated decodes, and audio metrics.

Chapter: 05_ablation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from vaetone.analysis import metrics
from vaetone.analysis.ablation import methods as ablation
from vaetone.analysis.decoding import Decoder, decode_batched, default_describe
from vaetone.config import Config
from vaetone.errors import VaetoneError


def descriptor_metric(cfg: Config | None, describe: Callable | None = None) -> Callable:
    """An ablation "metric" that returns the descriptors of the decoded notes (the references are ignored).

    Put it beside the error metrics of :func:`vaetone.analysis.ablation.ablation_effects` (e.g. under the
    name "descriptors"): each descriptor ``c`` becomes a metric ``"descriptors:c"`` whose
    ``increase`` is the change of the descriptor when a dimension is ablated. Summarise with
    :func:`descriptor_effects`.

    Args:
        cfg: for the default descriptors (:func:`vaetone.spectral.descriptors.spectral_descriptors`);
            None when ``describe`` is given.
        describe: outputs (n, n_mels, frames) → DataFrame of n rows (default the spectral descriptors).
    Returns:
        ``metric(ref, est) -> DataFrame`` of one row per note, one column per descriptor. Chapter: 05_ablation.
    """
    if describe is None and cfg is None:
        raise VaetoneError("descriptor_metric needs a configuration (for the spectral descriptors) or describe=...")
    describe = describe or default_describe(cfg)

    def descriptors(ref, est) -> pd.DataFrame:
        return describe(est).reset_index(drop=True).astype(float)

    return descriptors


def descriptor_effects(effects: pd.DataFrame, name: str = "descriptors") -> pd.DataFrame:
    """How much ablating each dimension moves each descriptor, from effects that include :func:`descriptor_metric`.

    For dimension j: the mean over notes of |descriptor(decode(z with z_j ablated)) −
    descriptor(decode(z))|, divided by the descriptor's standard deviation (ddof=0) over the
    unablated decodes (unitless, comparable across descriptors; a descriptor constant up to
    rounding, standard deviation below 1e-6 of its magnitude, gives NaN).

    Args:
        effects: from :func:`vaetone.analysis.ablation.ablation_effects` with ``{name: descriptor_metric(cfg)}``
            among its metrics.
        name: the name the descriptor metric was given.
    Returns:
        DataFrame indexed by dim, one column per descriptor. Chapter: 05_ablation.
    """
    rows = effects[effects["metric"].str.startswith(f"{name}:")]
    if rows.empty:
        raise VaetoneError(
            f"no {name!r} metrics in the ablation effects; pass "
            f"{{{name!r}: vaetone.analysis.ablation.descriptor_metric(cfg)}} among the metrics"
        )
    columns = list(pd.unique(rows["metric"]))
    base = rows[rows["dim"] == rows["dim"].iloc[0]].pivot(index="note", columns="metric", values="base")[columns]
    scale = base.std(ddof=0)
    scale = scale.where(scale > 1e-6 * np.maximum(1.0, base.abs().mean()))  # constant up to rounding: NaN
    change = rows.assign(change=rows["increase"].abs()).groupby(["dim", "metric"])["change"].mean()
    frame = (change.unstack("metric")[columns] / scale).rename(columns=lambda c: c[len(name) + 1 :])
    frame.columns.name = None
    frame.index.name = "dim"
    return frame


def ablation_descriptor_effects(
    decode: Decoder,
    z,
    cfg: Config,
    baseline="zero",
    seed: int = 0,
    describe: Callable | None = None,
    batch_size: int = 512,
) -> pd.DataFrame:
    """How much ablating each dimension moves each descriptor of the decoded output.

    The table of :func:`descriptor_effects` on its own ablation pass (when the reconstruction
    errors are needed too, add :func:`descriptor_metric` to their metrics instead and decode once).

    Args:
        decode: latent (n, D) → dB output (:func:`vaetone.analysis.decoding.db_decoder`).
        z: (n, D) posterior means.
        cfg: for the default descriptors (:func:`vaetone.spectral.descriptors.spectral_descriptors`).
        baseline, seed: as in :func:`vaetone.analysis.ablation.baseline_values`.
        describe: outputs (n, n_mels, frames) → DataFrame of n rows (default the spectral descriptors).
    Returns:
        DataFrame indexed by dim, one column per descriptor. Chapter: 05_ablation.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    ref = decode_batched(decode, z, batch_size)  # only sets the layout: the descriptor metric ignores it
    effects = ablation.ablation_effects(
        decode,
        z,
        ref,
        {"descriptors": descriptor_metric(cfg, describe)},
        baseline=baseline,
        seed=seed,
        batch_size=batch_size,
    )
    return descriptor_effects(effects, "descriptors")


def audio_metrics(cfg: Config) -> dict[str, Callable]:
    """Frequency accuracy and f0 error (cents) of audio, as in chapter 03, for :func:`audio_ablation_effects`.

    Returns:
        {"frequency_accuracy": metric (higher is better, 0..1), "f0_error_cents": metric (f0 search
        range of :func:`vaetone.analysis.metrics.f0_range`)}, each ``metric(ref_audio, est_audio) -> (n,)``.
    Chapter: 05_ablation.
    """
    return {
        "frequency_accuracy": metrics.frequency_accuracy,
        "f0_error_cents": functools.partial(metrics.f0_error_cents, **metrics.f0_range(cfg)),
    }


def audio_ablation_effects(
    decode: Decoder,
    z,
    ref_audio,
    to_audio: Callable,
    audio_metrics: Mapping[str, Callable],
    baseline="zero",
    seed: int = 0,
    higher_is_better: Sequence[str] = (),
    index=None,
    batch_size: int = 512,
) -> pd.DataFrame:
    """Per note and dimension, the change of audio metrics when that dimension is ablated, in one batch.

    The same quantities as :func:`vaetone.analysis.ablation.ablation_effects` with each metric applied to
    ``to_audio`` of the decoded log-mels, but the unablated and the D ablated versions of every
    note are decoded and turned into audio in a single batch (one Griffin-Lim run instead of D + 1).

    Args:
        decode: latent (n, D) → dB output.
        z: (n, D) posterior means.
        ref_audio: (n, samples) reference waveforms (best the references' own resynthesis).
        to_audio: dB log-mels (m, n_mels, frames) → audio (m, samples), e.g.
            ``lambda db: mel_to_audio(db, cfg).numpy()``.
        audio_metrics: {name: metric(ref_audio, est_audio) -> (m,)} (see :func:`audio_metrics`).
        baseline, seed: as in :func:`vaetone.analysis.ablation.baseline_values`.
        higher_is_better: metric names whose ``degradation`` is ``-increase``.
        index: (n,) note labels.
    Returns:
        Tidy DataFrame: note, dim, metric, base, ablated, increase, degradation (as
        :func:`vaetone.analysis.ablation.ablation_effects`). Chapter: 05_ablation.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    n, d = z.shape
    values = ablation.baseline_values(z, baseline, seed)
    variants = torch.cat([z] + [ablation.ablate(z, [j], values) for j in range(d)])  # ((d+1)·n, D)
    est = np.asarray(to_audio(decode_batched(decode, variants, batch_size)))
    ref = np.concatenate([np.asarray(ref_audio)] * (d + 1))
    index = np.arange(n) if index is None else np.asarray(index)
    frames = []
    for name, metric in audio_metrics.items():
        score = np.asarray(metric(ref, est), dtype=float).reshape(d + 1, n)
        inc = score[1:] - score[0]
        frames.append(
            pd.DataFrame(
                {
                    "note": np.tile(index, d),
                    "dim": np.repeat(np.arange(d), n),
                    "metric": name,
                    "base": np.tile(score[0], d),
                    "ablated": score[1:].ravel(),
                    "increase": inc.ravel(),
                    "degradation": (-inc if name in higher_is_better else inc).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
