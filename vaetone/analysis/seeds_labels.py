"""Do the names of the dimensions hold across training seeds? A name the matched dimensions do not share is "mixed".

The sensitivity stage names each dimension of the reference seed after the descriptor its sweep
changes (:mod:`vaetone.analysis.sensitivity.labels`), and the per-run analysis of every other
seed names that seed's own dimensions the same way. After matching the seeds' dimensions to the
reference's (:func:`vaetone.analysis.seeds.match_to_reference`), a reference dimension keeps its
name across seeds only when the matched dimension of every seed carries the same name; otherwise
it is "mixed". A reference dimension that moves no descriptor ("none") stays "none" only when
every matched dimension moves none either. Names are sign-free: a matched dimension that runs the
other way still moves the same descriptor. With a single seed nothing can be checked, so no
descriptor name holds: every one is "mixed".

This is the book's one rule for naming a dimension: chapters 04, 05 and 07 give a dimension a
meaning only through :func:`held_labels` (the names of chapter 04's sweeps, or of chapter 05's
ablations, that hold across the seeds), and restate what the reference seed's stage says about its
most important dimensions with those names (:func:`held_findings`).

Chapters: 04_sensitivity, 05_ablation, 06_statistics, 07_explorer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaetone.analysis import seeds as seeds_mod
from vaetone.analysis.sensitivity.labels import MIXED, NOT_NAMES
from vaetone.config import Config
from vaetone.errors import VaetoneError

LABEL = "label"
"""The column of a per-dimension table that holds a dimension's name."""

MIN_SEEDS = 2
"""A descriptor name holds only where at least this many seeds share it (one seed checks nothing)."""

NAMED_ANALYSES = ("sensitivity", "ablation")
"""The across-seeds analyses whose per-dimension tables carry names (chapters 04 and 05)."""


def label_table(across: seeds_mod.AcrossSeeds, column: str = LABEL) -> pd.DataFrame:
    """Every seed's name of the matched dimension, and the name that holds across seeds.

    Args:
        across: the aligned seeds (:func:`vaetone.analysis.seeds.across_seeds`); every table has ``column``.
        column: the name column.
    Returns:
        DataFrame indexed by reference dim: "seed <s>" (the name of the matched dimension in each
        seed, reference first), held_in (how many seeds share the reference's name),
        min_abs_r (the weakest match of the dimension over the seeds, |r| of the posterior means),
        label (the reference's name where every seed shares it and there are at least
        :data:`MIN_SEEDS` seeds; else "mixed"; "none" stays "none" where every seed moves none).
        Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    names = {}
    for seed, table, (perm, _signs, _r) in zip(across.seeds, across.tables, across.matches):
        names[f"seed {seed}"] = table[column].astype(str).loc[list(perm)].to_numpy()
    frame = pd.DataFrame(names, index=pd.RangeIndex(len(across.matches[0][0]), name="dim"))
    reference = frame.iloc[:, 0]
    same = frame.eq(reference, axis=0)
    frame["held_in"] = same.sum(axis=1).astype(int)
    frame["min_abs_r"] = np.min(np.stack([np.asarray(m[2], dtype=float) for m in across.matches]), axis=0)
    checked = len(across.seeds) >= MIN_SEEDS or reference.isin(NOT_NAMES)
    frame["label"] = reference.where(same.all(axis=1) & checked, MIXED)
    return frame


def label_findings(table: pd.DataFrame) -> dict:
    """The quoted names across seeds: which hold, how many the reference had, how many became "mixed".

    Args:
        table: :func:`label_table`.
    Returns:
        JSON-native dict: seed_labels ({str(dim): name across seeds}), labels_held ("z5 (centroid_hz),
        z2 (rms_db)", or "none": the descriptor names that hold in every seed), n_labels_held,
        n_labels_reference (descriptor names of the reference seed), n_labels_lost (of those, the ones
        the other seeds do not share: "mixed" across seeds). Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    reference = table.iloc[:, 0]
    named = ~reference.isin(NOT_NAMES)
    held = named & ~table["label"].isin(NOT_NAMES)
    return {
        "seed_labels": {str(int(d)): str(v) for d, v in table["label"].items()},
        "labels_held": ", ".join(f"z{int(d)} ({table.loc[d, 'label']})" for d in table.index[held]) or "none",
        "n_labels_held": int(held.sum()),
        "n_labels_reference": int(named.sum()),
        "n_labels_lost": int((named & ~held).sum()),
    }


def reference_top(reference: pd.DataFrame, column: str, largest: bool, tiebreak: str | None, k: int) -> list[int]:
    """The reference seed's ``k`` most important dimensions, ordered as its own stage orders them.

    Args:
        reference: the reference seed's per-dimension table (indexed by dim); column: the score;
        largest: whether larger is more important; tiebreak: a column ordering ties (larger first), or None;
        k: how many.
    Returns:
        The dims, most important first. Chapter: 04_sensitivity.
    """
    keys, ascending = [column], [not largest]
    if tiebreak is not None and tiebreak in reference.columns:
        keys, ascending = [column, tiebreak], [not largest, False]
    return [int(d) for d in reference.sort_values(keys, ascending=ascending, kind="stable").index[:k]]


def top_names(dims: Sequence[int], table: pd.DataFrame | pd.Series) -> str:
    """The dimensions with the names that hold across seeds, e.g. "z5 (flatness), z0 (mixed)".

    Args:
        dims: reference dims; table: :func:`label_table` (or its ``label`` column, :func:`held_labels`).
    Returns:
        The phrase. Chapters: 04_sensitivity, 05_ablation.
    """
    names = table[LABEL] if isinstance(table, pd.DataFrame) else table
    return ", ".join(f"z{int(d)} ({names.loc[int(d)]})" for d in dims)


def held_labels(cfg: Config, analysis: str = "sensitivity") -> pd.Series:
    """The name of every dimension of the reference seed that holds across the training seeds, else "mixed".

    The one place the book names a dimension: chapter 04's name of a dimension (the descriptor
    its sweep moves, :mod:`vaetone.analysis.sensitivity.labels`) where the matched dimension of
    every seed carries it (:func:`label_table`); "none" where no seed's dimension moves a
    descriptor; "mixed" otherwise, and for every name when there is only one seed.

    Args:
        cfg: the configuration (``cfg.seed`` is the reference seed, ``cfg.n_seeds`` seeds are
            compared; runs and results not yet computed are computed).
        analysis: "sensitivity" (the sweeps' names, chapters 04 and 07) or "ablation" (the names
            of what ablating a dimension changes, chapter 05).
    Returns:
        Series indexed by reference dim 0..D-1 (name "label"): a descriptor name, "mixed" or "none".
    Raises:
        VaetoneError: ``analysis`` names no dimensions.
    Chapters: 04_sensitivity, 05_ablation, 07_explorer.
    """
    if analysis not in NAMED_ANALYSES:
        raise VaetoneError(
            f"held_labels: the {analysis!r} analysis names no dimensions; use one of {list(NAMED_ANALYSES)}"
        )
    found = seeds_mod.result(cfg, analysis)
    if "labels" not in found.tables:
        raise VaetoneError(
            f"the across-seeds {analysis} result (reference seed {cfg.seed}) has no labels table; its per-run "
            f"tables must carry a {LABEL!r} column (delete that result's folder under the run's results/ to recompute)"
        )
    return found.table("labels")[LABEL].astype(str).rename(LABEL)


@dataclass(frozen=True)
class ReferenceReading:
    """What the reference seed's own stage says about its dimensions, to be restated with the names that hold.

    Attributes:
        top: the stage's most important dimensions, most important first (chapter 04: the top
            dimensions of the sweeps, curves and strips; chapter 05: the costliest, chosen on the
            validation notes).
        strip_values: the swept values of chapter 04's strips (prior standard deviations), or ().
        intervals: chapter 04's "intervals" table (indexed by quantity; rows "z<d> <descriptor>"
            for the net change of a named top dimension), or None.
    """

    top: tuple[int, ...]
    strip_values: tuple[float, ...] = ()
    intervals: pd.DataFrame | None = None

    def digest(self) -> str:
        """A 12-hex-digit hash of the reading (it is part of the across-seeds result's cache key)."""
        text = json.dumps({"top": list(self.top), "values": list(self.strip_values)})
        if self.intervals is not None:
            text += self.intervals.to_json(orient="split", double_precision=15)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def held_moves(intervals: pd.DataFrame, top: Sequence[int], names: pd.Series) -> str:
    """How each top dimension moves its descriptor, for the top dimensions whose name holds across seeds.

    Args:
        intervals: chapter 04's "intervals" table (rows "z<d> <descriptor>": estimate, low, high, ...).
        top: the top dims; names: :func:`held_labels` (each move phrased by
        :func:`vaetone.analysis.sensitivity.summary.move_phrase`).
    Returns:
        "z5 raises centroid_hz: 0.41 ... ; z2 lowers rms_db: ...", or a sentence saying that no top
        dimension has a name that holds. Chapter: 04_sensitivity.
    """
    from vaetone.analysis.sensitivity.summary import move_phrase  # the reference stage's phrasing

    moves = []
    for d in top:
        name = str(names.loc[int(d)])
        if name in NOT_NAMES:
            continue
        if f"z{d} {name}" not in intervals.index:
            raise VaetoneError(
                f"the sensitivity intervals have no row 'z{d} {name}' for a name that holds across seeds; the "
                "reference stage and the across-seeds result disagree: delete both results' folders to recompute"
            )
        moves.append(move_phrase(d, name, intervals.loc[f"z{d} {name}"]))
    return "; ".join(moves) or "none of the most influential dimensions has a name that holds across seeds"


def held_findings(names: pd.Series, reading: ReferenceReading, analysis: str) -> dict:
    """The reference stage's quoted phrases about its top dimensions, restated with the names that hold.

    Args:
        names: :func:`held_labels` (dim → name across seeds); reading: :class:`ReferenceReading`;
        analysis: "sensitivity" or "ablation".
    Returns:
        JSON-native dict. sensitivity: label_moves_held (:func:`held_moves`), strip_labels_held
        (["z5 (mixed) = -3.0", ...]: one per strip panel, dimension-major); ablation:
        top_desc_held ("z5 (centroid_hz), z3 (mixed), z1 (none)": the costliest dimensions).
        Chapters: 04_sensitivity, 05_ablation.
    """
    if analysis == "ablation":
        return {"top_desc_held": top_names(reading.top, names)}

    held = {
        "strip_labels_held": [
            f"z{d} ({names.loc[int(d)]}) = {v:+.1f}" for d in reading.top for v in reading.strip_values
        ]
    }
    if reading.intervals is not None:
        held["label_moves_held"] = held_moves(reading.intervals, reading.top, names)
    return held


def ablation_named_per_run(feats, baseline: str = "zero", seed: int = 0, describe: Callable | None = None):
    """The per-run analysis of chapter 05 with each dimension's name: what ablating it costs and changes.

    One ablation pass per seed decodes every test note with each dimension ablated; it gives the
    log-mel MSE increases of :func:`vaetone.analysis.seeds.ablation_per_run` and the descriptors
    of the same decodes, from which the dimension is named as chapter 05's stage names it
    (:func:`vaetone.analysis.ablation.ablation_labels`).

    Args:
        feats: the Features (references: the notes' own log-mels in dB).
        baseline, seed: as in :func:`vaetone.analysis.ablation.baseline_values`.
        describe: dB log-mels (m, n_mels, frames) → descriptors (default: the seed's spectral descriptors).
    Returns:
        ``fn(seed_cfg, run, latents) -> DataFrame`` indexed by dim: base_mean, increase_mean,
        increase_sem, relative_increase (log-mel MSE, dB²) and label (a descriptor, "mixed" or "none").
        Chapter: 05_ablation.
    """
    import torch

    from vaetone.analysis import ablation, decoding
    from vaetone.analysis.metrics import logmel_mse

    def fn(c: Config, run, lat) -> pd.DataFrame:
        decode = decoding.db_decoder(run.decode, feats.denormalise)
        ref = feats.logmel[seeds_mod.split_rows(feats, lat)]
        metrics = {"logmel_mse": logmel_mse, "descriptors": ablation.descriptor_metric(c, describe)}
        effects = ablation.ablation_effects(decode, lat.mu, ref, metrics, baseline=baseline, seed=seed)
        errors = ablation.summarise_ablation(effects[effects["metric"] == "logmel_mse"])
        cols = ["base_mean", "increase_mean", "increase_sem", "relative_increase"]
        table = errors.query("grouping == 'overall'").set_index("dim")[cols].sort_index()
        shift = ablation.baseline_values(lat.mu, baseline, seed) - torch.as_tensor(lat.mu, dtype=torch.float32)
        moved, rho = ablation.descriptor_effects(effects, shift), ablation.descriptor_rho(effects, shift)
        return table.assign(label=ablation.ablation_labels(moved, rho)[LABEL])

    return fn
