"""What ablating a dimension changes: the net change of the descriptors of the ablated decodes, and its name.

Chapter: 05_ablation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from vaetone.analysis.ablation import methods as ablation
from vaetone.analysis.decoding import Decoder, decode_batched, default_describe
from vaetone.analysis.sensitivity.labels import NONE, dimension_labels
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


def _changes(effects: pd.DataFrame, shift, name: str):
    """(descriptor names, their scales, {dim: (shift (n,), changes (n, k))}) of the descriptor rows of ablation effects.

    The scales are those of the unablated decodes (NaN for a descriptor constant up to rounding).
    """
    rows = effects[effects["metric"].str.startswith(f"{name}:")]
    if rows.empty:
        raise VaetoneError(
            f"no {name!r} metrics in the ablation effects; pass "
            f"{{{name!r}: vaetone.analysis.ablation.descriptor_metric(cfg)}} among the metrics"
        )
    notes = pd.Index(pd.unique(rows["note"]))
    shift = np.asarray(torch.as_tensor(shift, dtype=torch.float64))
    if shift.shape[0] != len(notes):
        raise VaetoneError(f"descriptor effects: {shift.shape[0]} shifts for {len(notes)} notes; pass one row per note")
    columns = list(pd.unique(rows["metric"]))
    base = rows[rows["dim"] == rows["dim"].iloc[0]].pivot(index="note", columns="metric", values="base")[columns]
    scale = base.std(ddof=0)
    scale = scale.where(scale > 1e-6 * np.maximum(1.0, base.abs().mean()))  # constant up to rounding: NaN
    per_dim = {
        int(dim): (shift[:, int(dim)], g.pivot(index="note", columns="metric", values="increase").loc[notes, columns])
        for dim, g in rows.groupby("dim")
    }
    return (
        [c[len(name) + 1 :] for c in columns],
        scale.to_numpy(),
        {d: (s, c.to_numpy()) for d, (s, c) in per_dim.items()},
    )


def _frame(values: dict[int, np.ndarray], names: list[str]) -> pd.DataFrame:
    """dims × descriptors from {dim: (k,) values}."""
    frame = pd.DataFrame.from_dict(values, orient="index", columns=names)
    frame.index.name = "dim"
    return frame


def descriptor_effects(effects: pd.DataFrame, shift, name: str = "descriptors") -> pd.DataFrame:
    """The net signed change of each descriptor per unit of a dimension, from effects with :func:`descriptor_metric`.

    For dimension j an ablation shifts each note's ``z_j`` by ``s = baseline − z_j`` (``shift``) and
    its descriptor by ``Δ``; the least-squares slope through the origin ``b = Σ Δ·s / Σ s²`` is the
    net change per unit of ``z_j``: positive when the descriptor grows with ``z_j``, near 0 when the
    changes of the notes cancel (no monotonic relation), whatever their size. It is reported
    standardised, ``b · std(s) / std(descriptor)``: descriptor standard deviations (over the
    unablated decodes, ddof=0) per standard deviation of the shift (of ``z_j`` for the "zero" and
    "mean" baselines). A descriptor linear in ``z_j`` alone scores ±1; a descriptor constant up to
    rounding (standard deviation below 1e-6 of its magnitude) or a dimension that never moves gives NaN.

    Args:
        effects: from :func:`vaetone.analysis.ablation.ablation_effects` with ``{name: descriptor_metric(cfg)}``
            among its metrics.
        shift: (n, D) ablated minus original latents (``baseline_values(z, ...) − z``), in the
            order of the effects' notes.
        name: the name the descriptor metric was given.
    Returns:
        DataFrame indexed by dim, one column per descriptor (signed, unitless). Chapter: 05_ablation.
    """
    names, scale, per_dim = _changes(effects, shift, name)
    out = {}
    for dim, (s, change) in per_dim.items():
        power = float((s**2).sum())
        slope = (s @ change) / power if power > 0 else np.full(len(names), np.nan)
        out[dim] = slope * s.std() / scale
    return _frame(out, names)


def descriptor_rho(effects: pd.DataFrame, shift, name: str = "descriptors") -> pd.DataFrame:
    """How monotonic each descriptor's change is in the shift of a dimension: Spearman ρ over the notes.

    Args:
        effects, shift, name: as :func:`descriptor_effects`.
    Returns:
        DataFrame indexed by dim, one column per descriptor: Spearman ρ of the notes' shifts
        ``s`` and changes ``Δ`` (+1: the descriptor rises with ``z_j`` note by note; NaN where
        either is constant). Chapter: 05_ablation.
    """
    names, _, per_dim = _changes(effects, shift, name)
    out = {}
    for dim, (s, change) in per_dim.items():
        rs = rankdata(s) - (len(s) + 1) / 2
        rc = rankdata(change, axis=0) - (len(s) + 1) / 2
        norm = np.sqrt((rs**2).sum() * (rc**2).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[dim] = np.where(norm > 0, rs @ rc / np.where(norm > 0, norm, 1.0), np.nan)
    return _frame(out, names)


def ablation_labels(moved: pd.DataFrame, rho: pd.DataFrame) -> pd.DataFrame:
    """Name each dimension by the descriptor its ablation changes dominantly and monotonically, "mixed" otherwise.

    The rule of :func:`vaetone.analysis.sensitivity.labels.dimension_labels` (the sweeps' rule of
    chapter 04), on the ablation's net changes: the descriptor of largest |net change| names the
    dimension if that change is at least ``LABEL_MIN_CHANGE``, at least ``LABEL_RATIO`` times the
    runner-up's, and monotonic (|ρ| at least ``LABEL_MIN_RHO``); else the dimension is "mixed", or
    "none" when it moves no descriptor.

    Args:
        moved: dims × descriptors, :func:`descriptor_effects`; rho: the same of :func:`descriptor_rho`.
    Returns:
        DataFrame indexed by dim: label, label_descriptor, label_change, label_runner_up, label_rho
        (see :func:`~vaetone.analysis.sensitivity.labels.dimension_labels`). Chapter: 05_ablation.
    """
    return dimension_labels(moved, rho.reindex(index=moved.index, columns=moved.columns))


def descriptor_labels(moved: pd.DataFrame, rho: pd.DataFrame) -> dict[int, str]:
    """The names of :func:`ablation_labels` as ``{dim: descriptor or "mixed"}``, dimensions that move nothing left out.

    Args:
        moved: dims × descriptors, :func:`descriptor_effects`; rho: the same of :func:`descriptor_rho`.
    Returns:
        {dim: name}. Chapter: 05_ablation.
    """
    labels = ablation_labels(moved, rho)["label"]
    return {int(d): str(label) for d, label in labels.items() if label != NONE}


def ablation_descriptor_effects(
    decode: Decoder,
    z,
    cfg: Config,
    baseline="zero",
    seed: int = 0,
    describe: Callable | None = None,
    batch_size: int = 512,
) -> pd.DataFrame:
    """The net signed change of each descriptor of the decoded output when a dimension is ablated.

    The table of :func:`descriptor_effects` on its own ablation pass (when the reconstruction
    errors are needed too, add :func:`descriptor_metric` to their metrics instead and decode once).

    Args:
        decode: latent (n, D) → dB output (:func:`vaetone.analysis.decoding.db_decoder`).
        z: (n, D) posterior means.
        cfg: for the default descriptors (:func:`vaetone.spectral.descriptors.spectral_descriptors`).
        baseline, seed: as in :func:`vaetone.analysis.ablation.baseline_values`.
        describe: outputs (n, n_mels, frames) → DataFrame of n rows (default the spectral descriptors).
    Returns:
        DataFrame indexed by dim, one column per descriptor (signed, unitless; see
        :func:`descriptor_effects`). Chapter: 05_ablation.
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
    return descriptor_effects(effects, ablation.baseline_values(z, baseline, seed) - z, "descriptors")
