"""Feature ablation of the latent dimensions: how much worse is a reconstruction without z_j?

Used in chapter ``05_ablation``. For each dimension ``j`` the posterior means ``z`` of the notes
get column ``j`` replaced by a baseline, are decoded, and each reconstruction metric is
compared with that of the unablated reconstruction, note by note:

* baselines (:data:`BASELINES`): ``"zero"`` (the prior mean), ``"mean"`` (the mean of ``z_j``
  over reference notes), ``"permute"`` (values of ``z_j`` of reference notes in a seeded random
  order: keeps the marginal, breaks the link to the note). The reference notes are the ablated
  notes themselves unless ``reference`` is given; the book passes the training notes, so that no
  baseline is computed from the notes it is scored on;
* ``increase = metric(ref, decode(z_ablated)) - metric(ref, decode(z))`` per note, where ``ref`` is
  the note's own (input) spectrogram; ``degradation`` is the increase with its sign flipped for
  metrics where higher is better (e.g. a frequency F1);
* :func:`captum_ablation` recomputes the same increases with Captum's ``FeatureAblation``
  (its attribution is ``original - ablated``, so ours is minus Captum's);
* :func:`cumulative_ablation`: keep the k most important dimensions, ablate the rest.

Metrics are callables ``metric(ref, est) -> (n,)`` per-note array, ``ref`` and ``est`` of shape
``(n, n_mels, frames)`` (the decoder's output with its channel axis dropped); the default is
:func:`vaetone.analysis.metrics.logmel_mse`. A metric may also return a DataFrame of n rows: each of its
columns ``c`` is then a metric named ``"<name>:<c>"`` (e.g. the audio descriptors of the
decoded notes, :func:`vaetone.analysis.ablation.descriptor_metric`), so that one decoding pass gives
the reconstruction errors and the descriptors together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from vaetone.analysis.decoding import Decoder, decode_batched, decoder_device
from vaetone.analysis.metrics import logmel_mse as _logmel_mse
from vaetone.errors import ConfigError, VaetoneError
from vaetone.progress import tqdm

BASELINES = ("zero", "mean", "permute")

Metric = Callable[[torch.Tensor, torch.Tensor], np.ndarray]
"""A per-note metric: ``metric(ref, est) -> (n,)``."""


def _as_metrics(metrics) -> dict[str, Metric]:
    """Normalise the metrics argument to {name: callable}; default ``{"logmel_mse": metrics.logmel_mse}``."""
    if metrics is None:
        return {"logmel_mse": _logmel_mse}
    if callable(metrics):
        return {getattr(metrics, "__name__", "metric"): metrics}
    return dict(metrics)


def _as_ref(ref) -> torch.Tensor:
    """The references as a float32 CPU tensor (n, n_mels, frames), channel axis dropped."""
    ref = torch.as_tensor(ref, dtype=torch.float32).cpu()
    return ref[:, 0] if ref.dim() == 4 else ref


def baseline_values(z, baseline: str | torch.Tensor = "zero", seed: int = 0, reference=None) -> torch.Tensor:
    """The value each entry of z takes when its dimension is ablated.

    Args:
        z: (n, D) latents (posterior means).
        baseline: "zero" (prior mean), "mean" (each dimension's mean over the reference notes),
            "permute" (each column of the reference notes in its own seeded random order, its
            first n values; cycled when the reference has fewer than n notes), or a tensor
            broadcastable to (n, D).
        seed: seed of the permutations.
        reference: (r, D) latents the "mean" and "permute" baselines are taken from (e.g. the
            training notes'); default ``z`` itself.
    Returns:
        (n, D) float32 tensor. Chapter: 05_ablation.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    if isinstance(baseline, (torch.Tensor, np.ndarray)):
        return torch.as_tensor(baseline, dtype=torch.float32).expand_as(z).clone()
    ref = z if reference is None else torch.as_tensor(reference, dtype=torch.float32)
    if baseline != "zero" and (ref.dim() != 2 or ref.shape[1] != z.shape[1] or len(ref) == 0):
        raise ConfigError(
            f"the ablation baseline's reference notes have shape {tuple(ref.shape)}; they must be (r >= 1, "
            f"{z.shape[1]}) latents of the same model as the ablated notes"
        )
    if baseline == "zero":
        return torch.zeros_like(z)
    if baseline == "mean":
        return ref.mean(0, keepdim=True).expand_as(z).clone()
    if baseline == "permute":
        gen = torch.Generator().manual_seed(seed)
        rows = torch.arange(len(z)) % len(ref)
        perms = torch.stack([torch.randperm(len(ref), generator=gen)[rows] for _ in range(z.shape[1])], 1)
        return torch.gather(ref, 0, perms)
    raise ConfigError(f"unknown ablation baseline {baseline!r}; use one of {list(BASELINES)} or a tensor")


def ablate(z, dims: Sequence[int], values: torch.Tensor) -> torch.Tensor:
    """A copy of z with the columns ``dims`` replaced by those of ``values`` (n, D)."""
    z = torch.as_tensor(z, dtype=torch.float32).clone()
    dims = torch.as_tensor(list(dims), dtype=torch.long)
    z[:, dims] = values[:, dims].to(z)
    return z


def reconstruction_errors(decode: Decoder, z, ref, metrics=None, batch_size: int = 512, device=None) -> pd.DataFrame:
    """Each metric of every note's reconstruction ``decode(z)`` against its reference.

    Args:
        decode: latent (n, D) → (n, [1,] n_mels, frames).
        z: (n, D) latents.
        ref: (n, [1,] n_mels, frames) references, in the decoder's output units.
        metrics: {name: metric(ref, est) -> (n,) array or DataFrame of n rows} or one callable;
            default :func:`vaetone.analysis.metrics.logmel_mse`.
    Returns:
        DataFrame of n rows, one column per metric (``"<name>:<column>"`` for each column of a
        metric that returns a DataFrame). Chapter: 05_ablation.
    """
    ref, metrics = _as_ref(ref), _as_metrics(metrics)
    est = decode_batched(decode, z, batch_size, device)
    if est.shape != ref.shape:
        raise VaetoneError(
            f"decoded shape {tuple(est.shape)} differs from the references' "
            f"{tuple(ref.shape)}; pass references in the decoder's output layout"
        )
    cols = {}
    for name, metric in metrics.items():
        value = metric(ref, est)
        if isinstance(value, pd.DataFrame):
            if len(value) != len(est):
                raise VaetoneError(f"metric {name!r} returned {len(value)} rows for {len(est)} notes")
            cols.update({f"{name}:{c}": value[c].to_numpy(dtype=float) for c in value.columns})
        else:
            cols[name] = np.asarray(value, dtype=float)
    return pd.DataFrame(cols)


def ablation_effects(
    decode: Decoder,
    z,
    ref,
    metrics=None,
    baseline="zero",
    seed: int = 0,
    dims: Sequence[int] | None = None,
    higher_is_better: Sequence[str] = (),
    index=None,
    batch_size: int = 512,
    device=None,
    reference=None,
) -> pd.DataFrame:
    """Per note and dimension, the change of each metric when that one dimension is ablated.

    Args:
        decode, z, ref, metrics: as in :func:`reconstruction_errors`.
        baseline, seed, reference: as in :func:`baseline_values`.
        dims: dimensions to ablate (default all).
        higher_is_better: metric names whose ``degradation`` is ``-increase``.
        index: (n,) note labels (e.g. ``meta.index``); default 0..n-1.
    Returns:
        Tidy DataFrame, one row per (note, dim, metric): note, dim, metric, base (error of
        the unablated reconstruction), ablated, increase (ablated − base), degradation. Chapter: 05_ablation.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    values = baseline_values(z, baseline, seed, reference)
    base = reconstruction_errors(decode, z, ref, metrics, batch_size, device)
    dims = range(z.shape[1]) if dims is None else dims
    index = np.arange(len(z)) if index is None else np.asarray(index)
    frames = []
    for j in tqdm(dims, desc="ablation", leave=False):
        errs = reconstruction_errors(decode, ablate(z, [j], values), ref, metrics, batch_size, device)
        for name in errs.columns:
            inc = errs[name].to_numpy() - base[name].to_numpy()
            frames.append(
                pd.DataFrame(
                    {
                        "note": index,
                        "dim": j,
                        "metric": name,
                        "base": base[name].to_numpy(),
                        "ablated": errs[name].to_numpy(),
                        "increase": inc,
                        "degradation": -inc if name in higher_is_better else inc,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def ablation_matrix(effects: pd.DataFrame, metric: str = "logmel_mse", value: str = "increase") -> pd.DataFrame:
    """Notes × dimensions table of one metric's ``increase`` (or another column) from :func:`ablation_effects`."""
    return effects[effects["metric"] == metric].pivot(index="note", columns="dim", values=value)


def pitch_ranges(pitch, width: int = 12, start: int | None = None) -> np.ndarray:
    """Label MIDI pitches by range of ``width`` semitones, e.g. "40-51".

    Args:
        pitch: (n,) MIDI numbers.
        width: semitones per range.
        start: lowest range start (default the lowest pitch).
    Returns:
        (n,) array of str labels. Chapter: 05_ablation.
    """
    pitch = np.asarray(pitch, dtype=int)
    start = int(pitch.min()) if start is None else start
    lo = start + (pitch - start) // width * width
    return np.array([f"{a}-{a + width - 1}" for a in lo])


def summarise_ablation(effects: pd.DataFrame, groups: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """Aggregate per-note ablation effects overall and per group of notes.

    Args:
        effects: from :func:`ablation_effects`.
        groups: {grouping name: (n,) labels in the note order of ``z``}, e.g.
            ``{"family": meta.instrument_family_str.values, "pitch range": pitch_ranges(meta.pitch)}``.
    Returns:
        Tidy DataFrame: grouping ("overall" or a name of ``groups``), group, dim, metric, n,
        base_mean, increase_mean, increase_sem (standard error over notes),
        relative_increase (increase_mean / base_mean), degradation_mean. Chapter: 05_ablation.
    """
    notes = pd.Index(pd.unique(effects["note"]))
    labels = {"overall": np.full(len(notes), "all", dtype=object)}
    for name, lab in (groups or {}).items():
        if len(lab) != len(notes):
            raise VaetoneError(f"group {name!r} has {len(lab)} labels for {len(notes)} notes")
        labels[name] = np.asarray(lab, dtype=object)
    position = notes.get_indexer(effects["note"])
    out = []
    for name, lab in labels.items():
        g = effects.assign(grouping=name, group=lab[position]).groupby(
            ["grouping", "group", "dim", "metric"], sort=True
        )
        agg = g.agg(
            n=("increase", "size"),
            base_mean=("base", "mean"),
            increase_mean=("increase", "mean"),
            increase_sem=("increase", "sem"),
            degradation_mean=("degradation", "mean"),
        )
        out.append(agg.reset_index())
    out = pd.concat(out, ignore_index=True)
    out["relative_increase"] = out["increase_mean"] / out["base_mean"].replace(0.0, np.nan)
    return out


def importance_order(effects: pd.DataFrame, metric: str = "logmel_mse") -> np.ndarray:
    """Dimensions sorted by mean degradation of one metric, most important first (ties: lower dim first).

    Args:
        effects: from :func:`ablation_effects` (or the "overall" rows of :func:`summarise_ablation`).
    Returns:
        (D,) int array of dimensions. Chapter: 05_ablation.
    """
    col = "degradation" if "degradation" in effects else "degradation_mean"
    if "grouping" in effects:
        effects = effects[effects["grouping"] == "overall"]
    rows = effects[effects["metric"] == metric]
    if rows.empty:
        raise VaetoneError(f"no ablation effects for metric {metric!r}; have {sorted(set(effects['metric']))}")
    mean = rows.groupby("dim")[col].mean()
    return np.array(sorted(mean.index, key=lambda d: (-mean[d], d)), dtype=int)


class _ErrorModule(torch.nn.Module):
    """Wrapper for Captum: latents (m, D) → each note's reconstruction error (m,) against its reference."""

    def __init__(self, decode: Decoder, ref: torch.Tensor, metric: Metric, batch_size: int, device):
        super().__init__()
        self.decode, self.ref, self.metric = decode, ref, metric
        self.batch_size, self.device = batch_size, device

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        reps = len(z) // len(self.ref)  # Captum stacks perturbations_per_eval copies
        ref = self.ref.repeat(reps, *([1] * (self.ref.dim() - 1)))
        est = decode_batched(self.decode, z, self.batch_size, self.device)
        return torch.as_tensor(np.asarray(self.metric(ref, est), dtype=np.float64))


def captum_ablation(
    decode: Decoder,
    z,
    ref,
    metric: Metric | None = None,
    baseline="zero",
    seed: int = 0,
    perturbations_per_eval: int = 1,
    batch_size: int = 512,
    device=None,
) -> np.ndarray:
    """The same per-note increases computed by Captum's ``FeatureAblation`` (a cross-check).

    Each latent dimension is one feature; Captum replaces it by the baseline in all notes at
    once and attributes ``error(original) - error(ablated)`` to it; this returns minus that.

    Args:
        decode, z, ref: as in :func:`ablation_effects`.
        metric: one metric callable (default :func:`vaetone.analysis.metrics.logmel_mse`).
        baseline, seed: as in :func:`baseline_values` (all three baselines are expressible).
    Returns:
        (n, D) float64 array of increases, comparable with
        ``ablation_matrix(ablation_effects(...)).to_numpy()``. Chapter: 05_ablation.
    """
    from captum.attr import FeatureAblation

    z = torch.as_tensor(z, dtype=torch.float32)
    values = baseline_values(z, baseline, seed)
    module = _ErrorModule(decode, _as_ref(ref), metric or _logmel_mse, batch_size, decoder_device(decode, device))
    with torch.no_grad():
        attr = FeatureAblation(module).attribute(z, baselines=values, perturbations_per_eval=perturbations_per_eval)
    return -attr.double().numpy()


def kept_errors(
    decode: Decoder,
    z,
    ref,
    order: Sequence[int],
    ks: Sequence[int] | None = None,
    metric: Metric | None = None,
    baseline="zero",
    seed: int = 0,
    batch_size: int = 512,
    device=None,
) -> pd.DataFrame:
    """Each note's error with only the first k dimensions of ``order`` kept (the others ablated), for each k.

    Args:
        decode, z, ref: as in :func:`ablation_effects`.
        order: every dimension once, most important first.
        ks: the numbers of kept dimensions (default 0..D).
        metric: one metric (default :func:`vaetone.analysis.metrics.logmel_mse`).
        baseline, seed: as in :func:`baseline_values`.
    Returns:
        DataFrame (n notes, one column per k, named k), in the metric's units. Chapter: 05_ablation.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    values, metric, n_dims = baseline_values(z, baseline, seed), metric or _logmel_mse, z.shape[1]
    order = [int(d) for d in order]
    if sorted(order) != list(range(n_dims)):
        raise ConfigError(f"an ablation order must list every dimension 0..{n_dims - 1} once, got {order}")
    ks = range(n_dims + 1) if ks is None else [int(k) for k in ks]
    cols = {}
    for k in tqdm(ks, desc="cumulative ablation", leave=False):
        kept = ablate(z, order[k:], values)
        cols[k] = reconstruction_errors(decode, kept, ref, {"e": metric}, batch_size, device)["e"].to_numpy()
    return pd.DataFrame(cols)


def cumulative_table(errors: Mapping[str, pd.DataFrame], orders: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """The tidy curves of :func:`cumulative_ablation` from each order's :func:`kept_errors`.

    Args:
        errors: {order name: kept_errors table (n notes × k)}; orders: {order name: its dimensions}.
    Returns:
        Tidy DataFrame: order, k, kept (dims as "3,0,5"), error_mean, error_sem (over notes). Chapter: 05_ablation.
    """
    rows = [
        {
            "order": name,
            "k": int(k),
            "kept": ",".join(str(int(d)) for d in list(orders[name])[: int(k)]),
            "error_mean": float(table[k].mean()),
            "error_sem": float(table[k].sem()),
        }
        for name, table in errors.items()
        for k in table.columns
    ]
    return pd.DataFrame(rows)


def cumulative_ablation(
    decode: Decoder,
    z,
    ref,
    orders: Mapping[str, Sequence[int]],
    metric: Metric | None = None,
    baseline="zero",
    seed: int = 0,
    batch_size: int = 512,
    device=None,
) -> pd.DataFrame:
    """Keep the k first dimensions of each order, ablate the others, for k = 0..D.

    Args:
        decode, z, ref: as in :func:`ablation_effects`.
        orders: {name: dimensions most important first}, e.g. ``{"ablation":
            importance_order(effects), "KL": latent_stats.kl_order(mu, std)}``.
        metric: one metric (default :func:`vaetone.analysis.metrics.logmel_mse`).
        baseline, seed: as in :func:`baseline_values`.
    Returns:
        Tidy DataFrame: order, k, kept (dims as "3,0,5"), error_mean, error_sem (over notes). Chapter: 05_ablation.
    """
    for name, order in orders.items():
        n_dims = torch.as_tensor(z).shape[1]
        if sorted(int(d) for d in order) != list(range(n_dims)):
            raise ConfigError(f"order {name!r} must list every dimension 0..{n_dims - 1} once, got {list(order)}")
    errors = {
        name: kept_errors(decode, z, ref, order, None, metric, baseline, seed, batch_size, device)
        for name, order in orders.items()
    }
    return cumulative_table(errors, orders)
