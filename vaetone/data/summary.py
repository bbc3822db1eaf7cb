"""What the data chapter shows: counts by family, source, pitch, velocity and split; example notes.

:func:`result` is the data-summary stage: every number chapter 01 quotes, its tables, and the
example notes' audio and log-mel, cached beside the dataset (not tied to a trained run).

Chapter: 01_data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from vaetone import store
from vaetone.config import FAMILIES, SAMPLE_RATE, SOURCES, STAGES, Config
from vaetone.data import fonts
from vaetone.data.dataset import Dataset, dataset
from vaetone.data.splits import SPLITS
from vaetone.errors import DataError
from vaetone.results import StageResult, cached
from vaetone.spectral.features import Features, dataset_digest, load_features
from vaetone.spectral.inversion import mel_to_audio, peak_dbfs
from vaetone.spectral.melspec import log_mel

# ---------------------------------------------------------------------------------------------
# What the data chapter shows
# ---------------------------------------------------------------------------------------------


def summary_tables(meta: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Counts of notes and instruments by family, source, pitch, velocity and split.

    Args:
        meta: ``Dataset.meta`` (a ``split`` column is optional).
    Returns:
        {"family", "source": DataFrame(instruments, notes) in NSynth order, absent ones as 0;
         "pitch", "velocity": DataFrame(notes); "split": DataFrame(instruments, notes, families);
         "family_split": notes by family x split}. Chapter: 01_data.
    """

    def by(column: str, order: Sequence | None = None) -> pd.DataFrame:
        table = meta.groupby(column).agg(instruments=("instrument_str", "nunique"), notes=("note_str", "size"))
        if order is not None:
            table = table.reindex(order, fill_value=0)
        table.index.name = column.replace("instrument_", "").replace("_str", "")
        return table

    tables = {
        "family": by("instrument_family_str", FAMILIES),
        "source": by("instrument_source_str", SOURCES),
        "pitch": by("pitch")[["notes"]],
        "velocity": by("velocity")[["notes"]],
    }
    if "split" in meta:
        split = by("split", SPLITS)
        split["families"] = (
            meta.groupby("split")["instrument_family_str"].nunique().reindex(SPLITS).fillna(0).astype(int)
        )
        tables["split"] = split
        tables["family_split"] = pd.crosstab(meta["instrument_family_str"], meta["split"]).reindex(
            index=FAMILIES, columns=SPLITS, fill_value=0
        )
        tables["family_split"].index.name, tables["family_split"].columns.name = "family", "split"
    return tables


def examples_per_family(
    ds: Dataset, n: int = 1, split: str | None = None, pitch: int = 60, velocity: int = 100
) -> pd.DataFrame:
    """Pick ``n`` example notes per family (from different instruments), near a given pitch and velocity.

    Args:
        ds: the dataset.
        n: notes per family.
        split: only from this split (default: any).
        pitch, velocity: preferred MIDI pitch and velocity; the closest notes are taken.
    Returns:
        Rows of ``ds.meta`` in NSynth family order, with a column ``row``: their position in
        ``ds.audio`` (``ds.audio[df["row"]]``). Chapter: 01_data.
    """
    meta = ds.meta.assign(row=np.arange(len(ds.meta)))
    if split is not None:
        meta = meta[meta["split"] == split]
    meta = meta.assign(
        _dp=(meta["pitch"] - pitch).abs(), _dv=(meta["velocity"] - velocity).abs(), _fam=meta["instrument_family"]
    )
    best = (
        meta.sort_values(["_fam", "_dp", "_dv", "instrument_str", "pitch"])
        .drop_duplicates("instrument_str")
        .groupby("_fam", sort=True)
        .head(n)
    )
    return best.drop(columns=["_dp", "_dv", "_fam"])


# ---------------------------------------------------------------------------------------------
# The stage result of chapter 01
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSummary(StageResult):
    """What chapter 01 quotes and shows about the dataset and its log-mel features.

    Tables: ``family``, ``source``, ``pitch``, ``velocity``, ``split``, ``family_split`` (see
    :func:`summary_tables`), ``skipped`` (note, reason) and ``examples`` (one note per family:
    family, instrument, pitch, velocity, row in the dataset); for the SoundFont corpus also
    ``fonts`` and ``shared_samples`` (see :func:`split_check`).
    Findings: see :func:`count_findings`, :func:`feature_findings`, :func:`example_arrays` and
    :func:`split_check`.
    Arrays: ``example_audio`` (families, samples) in [-1, 1]; ``example_logmel`` (families,
    n_mels, frames) dB; ``roundtrip_original`` (samples,) and ``roundtrip_inverted`` (samples,),
    the middle example and its log-mel → Griffin-Lim resynthesis, both at 16 kHz, and
    ``roundtrip_logmel`` (2, n_mels, frames) dB, the log-mel of each. The sounds are kept as
    recorded and as resynthesised (no normalisation); ``example_level`` and ``roundtrip_level``
    say at what peaks they play.
    Chapter: 01_data.
    """

    stage: ClassVar[str] = "data_summary"
    version: ClassVar[int] = 4
    params: ClassVar[tuple[str, ...]] = ("griffin_lim_iters",)

    def counts(self) -> dict[str, pd.Series]:
        """Notes by family, pitch and velocity, as {panel title: Series} for ``plots.count_bars``."""
        return {
            "by family": self.table("family")["notes"],
            "by pitch (MIDI)": self.table("pitch")["notes"],
            "by velocity (MIDI)": self.table("velocity")["notes"],
        }

    def family_sounds(self) -> dict:
        """The example notes as keyword arguments of ``vaetone.book.sound.sound_cells`` (one titled cell per family).

        Returns: {"dbs": (families, n_mels, frames) dB, "audio": (families, samples) as recorded, "titles": the
        families (the notes are ``example_notes_line``).
        Chapter: 01_data.
        """
        audio, titles = self.arrays["example_audio"], self.findings["example_families"]
        return {"dbs": self.arrays["example_logmel"], "audio": audio, "titles": titles}

    def roundtrip_sounds(self) -> dict:
        """The middle example and its round trip as keyword arguments of ``vaetone.book.sound.sound_grid``.

        Returns: {"dbs": (1, 2, n_mels, frames) dB (the original's log-mel and that of the Griffin-Lim
        audio), "audio": (1, 2, samples) both trimmed to the shorter length, "columns": the two labels}.
        Chapter: 01_data.
        """
        waves = (self.arrays["roundtrip_original"], self.arrays["roundtrip_inverted"])
        n = min(len(w) for w in waves)
        audio = np.stack([w[:n] for w in waves])[None]
        return {
            "dbs": self.arrays["roundtrip_logmel"][None],
            "audio": audio,
            "columns": self.findings["roundtrip_labels"],
        }


def count_findings(ds: Dataset) -> dict:
    """Counts of notes, instruments, families, skipped notes and notes per split.

    Args:
        ds: the dataset (``meta`` with a ``split`` column, ``skipped``).
    Returns:
        {"n_notes", "n_instruments", "n_families", "n_test_instruments", "n_skipped", "n_train", "n_valid",
         "n_test": int;
         "split_notes": {split: notes}; "notes_line": "<n> notes of <k> instruments; <s> skipped"}.
    Chapter: 01_data.
    """
    meta = ds.meta
    split_notes = {s: int((meta["split"] == s).sum()) for s in SPLITS}
    found = {
        "n_notes": len(meta),
        "n_instruments": int(meta["instrument_str"].nunique()),
        "n_families": int(meta["instrument_family_str"].nunique()),
        "n_test_instruments": int(meta.loc[meta["split"] == "test", "instrument_str"].nunique()),
        "n_skipped": len(ds.skipped),
        **{f"n_{s}": n for s, n in split_notes.items()},
        "split_notes": split_notes,
    }
    found["notes_line"] = (
        f"{found['n_notes']} note{'s' * (found['n_notes'] != 1)} of {found['n_instruments']} "
        f"instrument{'s' * (found['n_instruments'] != 1)}; {found['n_skipped']} skipped"
    )
    return found


def feature_findings(feats: Features, cfg: Config) -> dict:
    """The feature settings, the feature tensor's shape and the train-split normalisation.

    Args:
        feats: the features of ``cfg``; cfg: their settings (``STAGES["features"]``).
    Returns:
        {"frames": frames per note; "frame_ms", "window_ms": hop and window in ms;
         "norm_mean", "norm_std": dB; "feature_shape": [notes, n_mels, frames];
         "feature_settings": [[name, value], ...] in the order of ``STAGES["features"]``}.
    Chapter: 01_data.
    """
    return {
        "frames": feats.n_frames,
        "frame_ms": 1000 * cfg.hop_length / SAMPLE_RATE,
        "window_ms": 1000 * cfg.n_fft / SAMPLE_RATE,
        "norm_mean": float(feats.mean),
        "norm_std": float(feats.std),
        "feature_shape": [int(s) for s in feats.logmel.shape],
        "feature_settings": [[name, getattr(cfg, name)] for name in STAGES["features"]],
    }


def example_arrays(ds: Dataset, feats: Features, cfg: Config) -> tuple[pd.DataFrame, dict, dict]:
    """One note per family (near C4, velocity 100), its log-mel, and the middle one's round trip.

    Args:
        ds: the dataset; feats: its features; cfg: the feature settings and ``griffin_lim_iters``.
    Returns:
        ``(examples, findings, arrays)``: the examples table (indexed by note_str); findings
        {"example_notes", "example_titles": "<family>: <note_str>", "example_families", "example_notes_line":
        "<note_str> (<family>), ...", "roundtrip_labels", "example_level",
        "roundtrip_level" (:func:`level_phrase`)}; arrays
        as described in :class:`DataSummary`.
    Raises:
        DataError: an example note has no features (the feature cache belongs to other data).
    Chapter: 01_data.
    """
    picks = examples_per_family(ds)
    frow = feats.meta.index.get_indexer(picks.index)
    if (frow < 0).any():
        missing = list(picks.index[frow < 0])
        raise DataError(
            f"notes {missing} of the dataset {ds.path} have no log-mel features; the feature cache "
            "was made from other data: recompute it with load_features(cfg, refresh=True)"
        )
    rows, mid = picks["row"].to_numpy(), len(picks) // 2
    original = feats.logmel[frow[mid] : frow[mid] + 1]
    inverted = mel_to_audio(original, cfg, n_iter=cfg.griffin_lim_iters)[0]
    inverted_db = log_mel(inverted[None], cfg, device="cpu")[..., : original.shape[-1]]
    found = {
        "example_notes": [str(k) for k in picks.index],
        "example_titles": [f"{fam}: {k}" for k, fam in picks["instrument_family_str"].items()],
        "example_families": [str(fam) for fam in picks["instrument_family_str"]],
        "example_notes_line": ", ".join(f"{k} ({fam})" for k, fam in picks["instrument_family_str"].items()),
        "roundtrip_labels": ["original", f"log-mel → Griffin-Lim ({cfg.griffin_lim_iters} iterations)"],
        "example_level": level_phrase(ds.audio[rows]),
        "roundtrip_level": level_phrase(np.stack([ds.audio[rows[mid]][: len(inverted)], inverted.numpy()])),
    }
    arrays = {
        "example_audio": ds.audio[rows],
        "example_logmel": feats.logmel[torch.as_tensor(frow)].numpy(),
        "roundtrip_original": ds.audio[rows[mid]],
        "roundtrip_inverted": inverted.numpy(),
        "roundtrip_logmel": torch.cat([original, inverted_db]).numpy(),
    }
    columns = ["instrument_family_str", "instrument_str", "pitch", "velocity", "row"]
    return picks[columns].rename_axis("note"), found, arrays


def level_phrase(audio) -> str:
    """How a set of sounds played as given is levelled, in words, from each sound's loudest sample.

    Args: audio: ``(n, samples)`` waveforms, full scale 1.0.
    Returns: e.g. "They play as they are, without normalisation: their peaks lie between -15.3 and
        -7.7 dBFS"; a silent sound or one beyond full scale is named. Chapter: 01_data.
    """
    peaks = [peak_dbfs(a) for a in np.asarray(audio)]
    heard = [p for p in peaks if np.isfinite(p)]
    if not heard:
        return "They are silent"
    low, high = (f"{p:+.1f}" if p > 0 else f"{p:.1f}" for p in (min(heard), max(heard)))
    text = "They play as they are, without normalisation: "
    text += f"the peak is at {high} dBFS" if len(heard) == 1 else f"their peaks lie between {low} and {high} dBFS"
    if len(heard) < len(peaks):
        text += f" ({len(peaks) - len(heard)} silent)"
    if max(heard) > 0:
        text += "; samples beyond full scale are clipped"
    return text


def _count(n: int, one: str, many: str) -> str:
    """``n`` with the singular or plural noun: "1 note", "3 notes"."""
    return f"{n} {one if n == 1 else many}"


def answer_sentence(found: dict) -> str:
    """The data chapter's answer in one sentence, from its counts, feature shape and split check.

    Args: found: the findings of :func:`count_findings`, :func:`feature_findings` and :func:`split_check`.
    Returns: e.g. "The model learns from 96 notes of 22 instruments in 11 families, each a 64 × 126 log-mel
        spectrogram: 60 notes train it and 20 notes of 5 instruments it never hears test it; no sample is
        played in two splits" (no final full stop). Chapter: 01_data.
    """
    _, n_mels, frames = found["feature_shape"]
    text = (
        f"The model learns from {_count(found['n_notes'], 'note', 'notes')} of "
        f"{_count(found['n_instruments'], 'instrument', 'instruments')} in "
        f"{_count(found['n_families'], 'family', 'families')}, each a {n_mels} × {frames} log-mel spectrogram: "
        f"{_count(found['n_train'], 'note', 'notes')} train it and {_count(found['n_test'], 'note', 'notes')} of "
        f"{_count(found['n_test_instruments'], 'instrument', 'instruments')} it never hears test it"
    )
    if "n_shared_samples" in found:
        shared = found["n_shared_samples"]
        verdict = _count(shared, "sample is", "samples are") + " played in more than one split"
        text += "; no sample is played in two splits" if not shared else "; " + verdict
    return text


def split_check(meta: pd.DataFrame, cfg: Config) -> tuple[dict[str, pd.DataFrame], dict]:
    """The fonts of a SoundFont corpus and the check that its splits share no sample.

    Args:
        meta: ``Dataset.meta`` with its ``split`` column (and, for the SoundFont source, the
            columns soundfont, program and sample_group); cfg: its ``soundfonts``.
    Returns:
        ``(tables, findings)``. For the SoundFont source: tables {"fonts": :func:`fonts.font_table`,
        "shared_samples": :func:`fonts.shared_samples`}, findings {"n_fonts", "n_sample_groups",
        "n_shared_samples", "test_families": families with test notes, "families_without_test",
        "split_check_line": one sentence of the outcome}. Other sources: the split is by
        instrument only, which the sentence says, with the test families. Chapter: 01_data.
    """
    families, tested = (
        set(meta["instrument_family_str"]),
        set(meta.loc[meta["split"] == "test", "instrument_family_str"]),
    )
    present = [f for f in FAMILIES if f in families]
    lacking = [f for f in present if f not in tested]
    found = {"test_families": len(present) - len(lacking), "families_without_test": lacking}
    missing = "; no test notes for " + ", ".join(lacking) if lacking else ""
    if "sample_group" not in meta:
        found["split_check_line"] = (
            "Split by instrument: no test instrument is heard in training (this source has no sample "
            "table to check for shared samples); "
            f"{found['test_families']} of {len(present)} families have test notes{missing}."
        )
        return {}, found
    table, shared = fonts.font_table(meta, cfg.soundfonts), fonts.shared_samples(meta, cfg.soundfonts)
    found.update(
        n_fonts=len(table),
        n_sample_groups=int(meta["sample_group"].nunique()),
        n_shared_samples=len(shared),
    )
    verdict = (
        "no sample is played in two splits"
        if shared.empty
        else f"{len(shared)} sample{'s' * (len(shared) != 1)} are played in more than one split"
    )
    found["split_check_line"] = (
        f"{found['n_sample_groups']} sample groups of {found['n_fonts']} fonts, each in one split: {verdict}; "
        f"{found['test_families']} of {len(present)} families have test notes{missing}."
    )
    return {"fonts": table, "shared_samples": shared}, found


def skipped_table(skipped: Sequence[dict]) -> pd.DataFrame:
    """The notes the loader left out, one row each: columns ``note`` and ``reason``. Chapter: 01_data."""
    return pd.DataFrame(
        {"note": [str(s["note"]) for s in skipped], "reason": [str(s["reason"]) for s in skipped]},
        columns=["note", "reason"],
    )


def compute_summary(ds: Dataset, feats: Features, cfg: Config) -> DataSummary:
    """The data summary of a loaded dataset and its features (nothing is read from disk).

    Args:
        ds: the dataset (with splits); feats: its log-mel features; cfg: the settings they were
            made with (and ``griffin_lim_iters`` for the round trip).
    Returns:
        A :class:`DataSummary`. Chapter: 01_data.
    """
    tables = summary_tables(ds.meta)
    examples, example_found, arrays = example_arrays(ds, feats, cfg)
    split_tables, split_found = split_check(ds.meta, cfg)
    tables.update(skipped=skipped_table(ds.skipped), examples=examples, **split_tables)
    findings = {**count_findings(ds), **feature_findings(feats, cfg), **example_found, **split_found}
    findings["answer"] = answer_sentence(findings)
    return DataSummary(tables=tables, findings=findings, arrays=arrays)


def result(cfg: Config) -> DataSummary:
    """The data summary of ``cfg``: computed once, then loaded from the data cache.

    Args:
        cfg: data and feature parameters (with the features' dataset digest, the upstream key)
            and ``griffin_lim_iters``.
    Returns:
        A :class:`DataSummary`, cached under ``store.data_dir()/results/data_summary-<key>/``
        (findings.json and one CSV per table); notes that changed since give another key.
    Chapter: 01_data.
    """

    def compute() -> DataSummary:
        return compute_summary(dataset(cfg), load_features(cfg), cfg)

    upstream = f"{store.key('features', cfg)}-{dataset_digest(cfg)}"
    return cached(DataSummary, cfg, compute, folder=store.data_dir(), upstream=upstream)
