"""Summaries of the per-note scores of chapter 03: intervals, paired comparisons and the phrases the prose quotes.

Every headline figure is a statistic over test notes with a 95 % instrument-level bootstrap
interval (:mod:`vaetone.analysis.intervals`); every model comparison is paired per note. Where an
interval cannot be computed (fewer than ``intervals.MIN_GROUPS`` instruments with a value) the
tables keep the estimate, leave the interval's ends empty and say why; no phrase then claims a
difference.

Chapter: 03_training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from vaetone.analysis import intervals
from vaetone.analysis.intervals import Interval

MODELS = ("VAE", "autoencoder", "PCA")
"""The three models of the comparison, in the order the chapter shows them."""

INVERSION = "inversion only"
"""The ceiling row: Griffin-Lim of the original's own log-mel, scored against the original wav."""

PREFIX = {"VAE": "VAE", "autoencoder": "autoencoder", "PCA": "PCA", INVERSION: "inversion"}
"""The findings' key prefix of each row of the comparison."""

SHORT = {"VAE": "vae", "autoencoder": "ae", "PCA": "pca"}
"""Short names in the keys of paired comparisons, e.g. ``vae_vs_ae_lsd_db``."""

GROSS_CENTS = 50.0
"""An f0 error above this many cents is a gross error."""


def fine_mean(cents) -> float:
    """Mean |f0 error| (cents) over the notes without a gross error (|error| <= :data:`GROSS_CENTS`); NaN if none."""
    c = np.abs(np.asarray(cents, dtype=np.float64))
    c = c[np.isfinite(c) & (c <= GROSS_CENTS)]
    return float(c.mean()) if len(c) else math.nan


@dataclass(frozen=True)
class Metric:
    """A headline figure: a statistic of one per-note column, with its label, unit and decimals.

    Attributes:
        column: the per-note column; statistic: "mean" or a function of a 1-d array;
        label: its name in tables; unit: "dB", "cents", "" ...; digits: decimals shown;
        fine_only: score only the notes without a gross f0 error.
    """

    column: str
    statistic: str | Callable
    label: str
    unit: str
    digits: int
    fine_only: bool = False


METRICS: dict[str, Metric] = {
    "lsd_db": Metric("lsd_db", "mean", "log-spectral distance, log-mel (dB)", "dB", 2),
    "lsd_audio_db": Metric("lsd_audio_db", "mean", "log-spectral distance, audio (dB)", "dB", 2),
    "mrstft": Metric("mrstft", "mean", "multi-resolution STFT distance", "", 2),
    "freq_precision": Metric("freq_precision", "mean", "frequency precision", "", 3),
    "freq_recall": Metric("freq_recall", "mean", "frequency recall", "", 3),
    "freq_f1": Metric("freq_f1", "mean", "frequency F1", "", 3),
    "f0_median_cents": Metric("f0_error_cents", np.median, "f0 error, median (cents)", "cents", 1),
    "f0_iqr_cents": Metric("f0_error_cents", intervals.iqr, "f0 error, interquartile range (cents)", "cents", 1),
    "f0_gross_rate": Metric(
        "f0_error_cents",
        partial(intervals.gross_error_rate, threshold=GROSS_CENTS),
        f"f0 gross-error rate (> {GROSS_CENTS:.0f} cents)",
        "",
        3,
    ),
    "f0_fine_mean_cents": Metric(
        "f0_error_cents", "mean", "f0 error, mean without gross errors (cents)", "cents", 1, fine_only=True
    ),
}
"""The columns of the comparison table, in order: log-mel first, then audio against the original."""

LABELS = {k: m.label for k, m in METRICS.items()}
"""Table labels of :data:`METRICS` (for ``vaetone.book.tables.interval_table``)."""

PAIRED_METRICS = ("lsd_db", "lsd_audio_db", "freq_f1")
"""The metrics compared per note between models."""

PAIRS = (("VAE", "autoencoder"), ("VAE", "PCA"), ("autoencoder", "PCA"))
"""The paired comparisons: first minus second."""


def undefined_reason(values, groups) -> str:
    """Why no interval can be computed on ``values`` ("" when one can): too few instruments with a value.

    Args: values: (n,) per-note values (NaN: no value); groups: (n,) instruments. Chapter: 03_training.
    """
    n_notes, n_groups = intervals.count_groups(values, groups)
    if n_groups >= intervals.MIN_GROUPS:
        return ""
    return (
        f"undefined: {n_notes} scored notes from {n_groups} instrument(s); "
        f"an instrument-level interval needs at least {intervals.MIN_GROUPS}"
    )


def estimate(values, groups, statistic, cfg, where: str) -> Interval | str:
    """The statistic of the notes' values with its instrument-level interval, or "undefined: <reason>".

    Args:
        values: (n,) per-note values (NaN left out); groups: (n,) the notes' instruments;
        statistic: as ``intervals.bootstrap``; cfg: ``bootstrap_n`` and ``seed``; where: for messages.
    Returns: an :class:`Interval`, or the reason it is undefined (:func:`undefined_reason`). Chapter: 03_training.
    """
    reason = undefined_reason(values, groups)
    if reason:
        return reason
    return intervals.bootstrap(values, groups, statistic, n_boot=cfg.bootstrap_n, seed=cfg.seed, where=where)


def metric_values(table: pd.DataFrame, metric: Metric) -> np.ndarray:
    """The per-note values a metric's statistic runs on (gross f0 errors set to NaN for ``fine_only``)."""
    v = table[metric.column].to_numpy(dtype=np.float64)
    return np.where(np.abs(v) <= GROSS_CENTS, v, np.nan) if metric.fine_only else v


def point(values, statistic) -> float:
    """The statistic on the finite values, without an interval (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return math.nan
    return float(v.mean()) if statistic == "mean" else float(statistic(v))


def cell(result: Interval | str, values, groups, statistic) -> dict:
    """One metric of one row: estimate (key ""), low, high, n_notes, n_instruments (ends NaN when undefined)."""
    if isinstance(result, Interval):
        ends = (result.estimate, result.low, result.high, result.n_notes, result.n_groups)
    else:
        v = np.asarray(values, dtype=np.float64)
        found = np.isfinite(v)
        ends = (point(v, statistic), math.nan, math.nan, int(found.sum()), len(pd.unique(np.asarray(groups)[found])))
    return dict(zip(("", "low", "high", "n_notes", "n_instruments"), ends))


def comparison(per_note: Mapping[str, pd.DataFrame], groups: pd.Series, cfg) -> tuple[pd.DataFrame, dict]:
    """Every row's headline figures with their intervals: the comparison table and its findings.

    Args:
        per_note: {row name (a model or :data:`INVERSION`): per-note table indexed by note_str};
        groups: the instrument of each note_str; cfg: ``bootstrap_n``, ``seed``.
    Returns:
        The table (index ``model``; for each metric ``m`` of :data:`METRICS` the columns ``m``,
        ``m_low``, ``m_high``, ``m_n_notes``, ``m_n_instruments``) and the findings
        ``<prefix>_<m>`` (estimate), ``<prefix>_<m>_ci`` (it in words with its interval, or why
        the interval is undefined), ``intervals_undefined`` (how many are) and ``intervals_note`` (that
        in words). Chapter: 03_training.
    """
    rows, findings, undefined = {}, {}, 0
    for name, table in per_note.items():
        g, row = groups.loc[table.index].to_numpy(), {}
        for key, m in METRICS.items():
            v = metric_values(table, m)
            res = estimate(v, g, m.statistic, cfg, where=f"{m.label} of {name}")
            row |= {(f"{key}_{k}" if k else key): x for k, x in cell(res, v, g, m.statistic).items()}
            findings[f"{PREFIX[name]}_{key}"] = row[key]
            findings[f"{PREFIX[name]}_{key}_ci"] = interval_text(res, row[key], m)
            undefined += isinstance(res, str)
        rows[name] = row
    total = len(per_note) * len(METRICS)
    findings["intervals_undefined"] = undefined
    findings["intervals_note"] = (
        f"All {total} intervals rest on at least {intervals.MIN_GROUPS} instruments."
        if not undefined
        else f"{undefined} of {total} intervals could not be computed (fewer than {intervals.MIN_GROUPS} "
        'instruments had a value) and read "interval undefined".'
    )
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model"), findings


def interval_text(result: Interval | str, value: float, metric: Metric) -> str:
    """A figure in words: "4.52 dB (95 % interval 4.31 to 4.70)", or "4.52 dB (interval undefined: ...)"."""
    if isinstance(result, Interval):
        return result.text(metric.digits, metric.unit)
    unit = f" {metric.unit}" if metric.unit else ""
    shown = "not measured" if not math.isfinite(value) else f"{value:.{metric.digits}f}{unit}"
    return f"{shown} (interval {result})"


def paired(per_note: Mapping[str, pd.DataFrame], groups: pd.Series, cfg) -> tuple[pd.DataFrame, dict]:
    """Per-note paired differences of the models (:data:`PAIRS` × :data:`PAIRED_METRICS`) with intervals.

    Args: as :func:`comparison` (the models' tables on the same notes).
    Returns:
        The table (one row per pair and metric: ``model_a``, ``model_b``, ``metric``,
        ``difference`` (mean of a − b), ``low``, ``high``, ``n_notes``, ``n_instruments``,
        ``significant`` (the interval excludes 0), ``verdict`` (in words)) and the findings
        ``<a>_vs_<b>_<metric>`` (``intervals.significance_phrase``, or why it is undefined),
        ``..._diff`` and ``..._significant``. Chapter: 03_training.
    """
    rows, findings = [], {}
    for a, b in PAIRS:
        if not {a, b} <= set(per_note):
            continue
        for key in PAIRED_METRICS:
            m = METRICS[key]
            diff = (per_note[a][m.column] - per_note[b][m.column]).to_numpy(dtype=np.float64)
            g = groups.loc[per_note[a].index].to_numpy()
            res = estimate(diff, g, "mean", cfg, where=f"{a} minus {b}, {m.label}")
            c = cell(res, diff, g, "mean")
            significant = isinstance(res, Interval) and res.excludes(0.0)
            if isinstance(res, Interval):
                verdict = "significant" if significant else "not significant"
                phrase = intervals.significance_phrase(res, m.unit, m.digits)
            else:
                verdict = phrase = res
            rows.append(
                {"model_a": a, "model_b": b, "metric": key, "difference": c[""], "low": c["low"], "high": c["high"]}
                | {"n_notes": c["n_notes"], "n_instruments": c["n_instruments"]}
                | {"significant": significant, "verdict": verdict}
            )
            stem = f"{SHORT[a]}_vs_{SHORT[b]}_{key}"
            findings |= {stem: phrase, f"{stem}_diff": c[""], f"{stem}_significant": significant}
    return pd.DataFrame(rows), findings


def vae_vs_ae_reading(row: Mapping | None) -> str:
    """What the VAE-minus-autoencoder log-mel LSD says, following its interval.

    Args: row: the ``lsd_db`` row of the VAE/autoencoder pair in :func:`paired` (None: not compared).
    Returns: the reading (no claim of a difference unless the interval excludes 0). Chapter: 03_training.
    """
    if row is None:
        return "the autoencoder was not compared"
    if row["verdict"] not in ("significant", "not significant"):
        return "no interval could be computed on these notes, so no difference is claimed"
    if not row["significant"]:
        return "the difference is not significant, so on these notes the KL term costs no measurable accuracy"
    if row["difference"] > 0:
        return "the VAE reconstructs significantly worse: here the KL term costs reconstruction accuracy"
    return "the VAE reconstructs significantly better than its β = 0 twin on these notes"


def per_family_lsd(per_note: Mapping[str, pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    """Mean log-mel log-spectral distance per instrument family, one column per model, with its n.

    Args: per_note: {model: per-note table indexed by note_str}; meta: the features' meta
        (``instrument_family_str``, ``instrument_str``).
    Returns: rows: the families present, then "all" (index ``family``); one column per model (dB),
        then ``n_notes`` and ``n_instruments``. Chapter: 03_training.
    """
    index = next(iter(per_note.values())).index
    fam = meta.loc[index, "instrument_family_str"].to_numpy()
    means = {m: t["lsd_db"].groupby(fam).mean() for m, t in per_note.items()}
    table = pd.DataFrame(means)
    table.loc["all"] = [float(t["lsd_db"].mean()) for t in per_note.values()]
    notes = meta.loc[index].groupby(fam)["instrument_str"].agg(["size", "nunique"])
    notes.loc["all"] = [len(index), meta.loc[index, "instrument_str"].nunique()]
    table[["n_notes", "n_instruments"]] = notes.loc[table.index].to_numpy()
    return table.astype({"n_notes": np.int64, "n_instruments": np.int64}).rename_axis("family")


def summary_sentence(findings: Mapping) -> str:
    """The chapter's answer in one sentence, from the findings of :func:`comparison` and :func:`paired`.

    Chapter: 03_training.
    """
    if "VAE_lsd_db_ci" not in findings:
        return "No model was scored"
    text = f"On notes of unseen instruments the VAE's log-mel log-spectral distance is {findings['VAE_lsd_db_ci']}"
    if "vae_vs_ae_lsd_db" in findings:
        text += f"; against the plain autoencoder it is {findings['vae_vs_ae_lsd_db']}"
    if "vae_vs_pca_lsd_db" in findings:
        text += f"; against PCA it is {findings['vae_vs_pca_lsd_db']}"
    return text
