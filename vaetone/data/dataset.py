"""The dataset of a configuration: its folders (rendered, one NSynth split, or NSynth's three), filtered and split.

Rendered sources are written as NSynth-format folders under ``store.data_dir()`` (atomically:
a temporary folder, then a rename), keyed by a hash of what the audio depends on, and then
read by the same code as a user's NSynth folder. A rendered folder holds a ``manifest.json``
(:mod:`~vaetone.data.manifest`); a folder whose files no longer match it is rendered again.

``nsynth_path`` is either one NSynth-format folder, whose instruments are split by
:func:`vaetone.data.splits.split_instruments`, or a folder holding NSynth's three official
folders ``nsynth-train/``, ``nsynth-valid/`` and ``nsynth-test/``, which are then the splits.
A user's folders are never written to: their manifests are kept under
``store.data_dir()/manifests/``, one per folder.

Which notes are broken is known from the preparation (:mod:`vaetone.spectral.prepare`): it reads
every selected wav once, in chunks, and records the notes it skipped, with their reasons and
folders, beside the features. :func:`dataset` runs it when its cache is missing; otherwise it
reads nothing but that record and the folders' metadata, and its audio is read only when indexed.

Chapter: 01_data (and every later chapter through the features).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import SAMPLE_RATE, Config
from vaetone.data import manifest, soundfont, synthetic
from vaetone.data.nsynth import N_SAMPLES, data_check, meta_frame, read_examples, read_note
from vaetone.data.splits import SPLITS, split_instruments, subset_instruments
from vaetone.data.writer import atomic_folder
from vaetone.errors import DataError

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {split: f"nsynth-{split}" for split in SPLITS}
"""The official NSynth folders and the split each one is."""


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


class NoteAudio:
    """The waveforms of a dataset's notes, read from their wav files when indexed (never all at once).

    ``audio[rows]`` (an int, a slice, a list, an int or bool array, or a tensor) reads those
    notes: float32 (k, 64000), or (64000,) for one int; ``len(audio)`` and ``audio.shape`` work.
    A note that no longer reads as it did when the dataset was prepared raises DataError.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, names: Sequence[str], folders: Sequence[Path], folder_of: np.ndarray):
        self.names, self.folders, self.folder_of = list(names), [Path(f) for f in folders], np.asarray(folder_of)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def shape(self) -> tuple[int, int]:
        """(notes, 64000)."""
        return (len(self.names), N_SAMPLES)

    def file(self, row: int) -> Path:
        """The wav file of one row."""
        return self.folders[int(self.folder_of[row])] / "audio" / f"{self.names[row]}.wav"

    def __getitem__(self, index) -> np.ndarray:
        if hasattr(index, "numpy"):
            index = index.numpy()
        rows = np.arange(len(self.names))[index]
        out = np.empty((rows.size, N_SAMPLES), np.float32)
        for i, row in enumerate(rows.reshape(-1)):
            y, reason = read_note(self.file(row))
            if reason is not None:
                raise DataError(
                    f"note {self.names[row]} of {self.folders[int(self.folder_of[row])]} no longer reads ({reason}); "
                    "the folder changed after it was prepared: load the dataset again to prepare it anew"
                )
            out[i] = y
        return out[0] if rows.ndim == 0 else out


@dataclass
class Dataset:
    """Notes with their metadata, audio and split (chapter 01_data and every later one).

    Attributes:
        meta: DataFrame indexed by note_str: the NSynth fields, ``split`` ("train", "valid",
            "test"), the ``factor_*`` columns of the synthetic source and the ``soundfont``,
            ``program`` and ``sample_group`` columns of the SoundFont corpus. Same notes, same order
            as the features' meta.
        audio: (n, 64000) float32 in [-1, 1] in the row order of ``meta``: a :class:`NoteAudio`
            (read on indexing) or an in-memory array.
        sample_rate: 16000 Hz.
        path: the folder the notes come from (the root of NSynth's three official folders).
        skipped: notes left out, each ``{"note": note_str, "reason": text, "folder": folder name}``.
        digest: the content digest of the selected notes (:func:`notes_manifest`), those skipped
            for broken audio included.
    """

    meta: pd.DataFrame
    audio: NoteAudio | np.ndarray
    sample_rate: int
    path: Path
    skipped: list = field(default_factory=list)
    digest: str = ""

    def __len__(self) -> int:
        return len(self.meta)

    def rows(self, split: str) -> np.ndarray:
        """Row positions (into ``audio``) of the notes of one split ("train", "valid" or "test")."""
        return np.flatnonzero(self.meta["split"].to_numpy() == split)


def dataset(cfg: Config) -> Dataset:
    """The notes ``cfg`` asks for: rendered (cached) or read, filtered, subset and split, audio read lazily.

    Args:
        cfg: the configuration; uses its data parameters (``config.STAGES["data"]``);
            ``pitch_step`` and ``synthetic_instruments`` apply to the rendered sources only.
    Returns:
        A :class:`Dataset` whose meta and skipped notes are those of the prepared features of
        ``cfg`` (:func:`vaetone.spectral.prepare.ensure` prepares them first when they are not cached).
    Raises:
        DataError: a folder is unusable, or no note matches the filters or can be loaded.
        DependencyError: FluidSynth or a SoundFont is missing (soundfont source).
    Chapter: 01_data (and every later chapter through ``features``).
    """
    from vaetone.spectral import prepare  # the preparation reads every note once and records the broken ones

    cache, parts = prepare.ensure(cfg)
    meta, record = prepare.read_cache(cache)
    index = {p.split: i for i, p in enumerate(parts)}
    folder_of = np.zeros(len(meta), np.int16) if len(parts) == 1 else meta["split"].map(index).to_numpy(np.int16)
    audio = NoteAudio(meta.index, [p.folder for p in parts], folder_of)
    path = parts[0].folder if len(parts) == 1 else Path(cfg.nsynth_path).expanduser()
    return Dataset(meta, audio, SAMPLE_RATE, path, list(record["skipped"]), record["digest"])


# ---------------------------------------------------------------------------------------------
# The folders of a configuration and the notes chosen in them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One NSynth-format folder of a configuration, its examples.json entries and the notes chosen in it.

    ``split`` is the official split of the folder (NSynth's three folders), or None when its
    instruments are split by :func:`vaetone.data.splits.split_instruments`.
    """

    folder: Path
    split: str | None
    entries: dict = field(repr=False)
    chosen: list = field(repr=False)


def nsynth_folders(path: str | Path) -> list[tuple[Path, str | None]]:
    """The folders of an ``nsynth_path``: NSynth's three official folders with their splits, or one folder.

    Args:
        path: a folder holding ``nsynth-train/``, ``nsynth-valid/`` and ``nsynth-test/``, or one
            NSynth-format folder (examples.json + audio/), re-split by instrument.
    Returns:
        ``[(folder, split), ...]``: the three official folders in split order, or ``[(path, None)]``.
    Raises:
        DataError: the path holds only one or two of the official folders (naming the missing ones).
    Chapter: 01_data.
    """
    root = Path(path).expanduser()
    present = {s: root / name for s, name in SPLIT_FOLDERS.items() if (root / name).is_dir()}
    if len(present) == len(SPLITS):
        return [(present[s], s) for s in SPLITS]
    if present and not (root / "examples.json").is_file():
        missing = [SPLIT_FOLDERS[s] for s in SPLITS if s not in present]
        raise DataError(
            f"{root} holds {', '.join(SPLIT_FOLDERS[s] + '/' for s in present)} but not "
            f"{', '.join(m + '/' for m in missing)}: download and unpack the missing NSynth split(s) there "
            "(nsynth-<split>.jsonwav.tar.gz), or point nsynth_path at one split folder to split its instruments "
            f"anew (e.g. -p nsynth_path {next(iter(present.values()))})"
        )
    return [(root, None)]


def check_nsynth(path: str | Path, **options) -> dict:
    """Check every note of an ``nsynth_path``: one NSynth-format folder, or the three official ones.

    Args:
        path: as for :func:`nsynth_folders`; options: those of :func:`vaetone.data.nsynth.data_check`.
    Returns:
        One folder: ``data_check``'s ``{"loaded", "skipped"}``. Three folders: the same keys over all
        of them (each skipped note with its ``folder``), plus ``"folders": {name: {"loaded",
        "skipped"}}`` (counts per folder). Used by ``python -m vaetone data-check``; chapter 01_data.
    """
    folders = nsynth_folders(path)
    if folders[0][1] is None:
        return data_check(folders[0][0], **options)
    reports = {folder.name: data_check(folder, **options) for folder, _ in folders}
    return {
        "loaded": sum(r["loaded"] for r in reports.values()),
        "skipped": [{**s, "folder": name} for name, r in reports.items() for s in r["skipped"]],
        "folders": {name: {"loaded": r["loaded"], "skipped": len(r["skipped"])} for name, r in reports.items()},
    }


def selection(cfg: Config) -> list[Part]:
    """The folders of ``cfg`` (rendered and checked first for a rendered source) and the notes chosen in each.

    Returns:
        One :class:`Part` per folder. Raises: DataError when no note matches the filters, or
        when an instrument (or a note name) is in two official folders. Chapter: 01_data.
    """
    folders = nsynth_folders(cfg.nsynth_path) if cfg.dataset == "nsynth" else [(rendered_folder(cfg), None)]
    entries = [read_examples(folder) for folder, _ in folders]
    if len(folders) > 1:
        _check_disjoint(folders, entries)
    chosen = [select_entries(e, cfg, _share(cfg, entries, i)) for i, e in enumerate(entries)]
    if not any(chosen):
        where = ", ".join(str(f) for f, _ in folders)
        raise DataError(
            f"no note of {where} matches the filters (pitch {cfg.pitch_min}..{cfg.pitch_max}, "
            f"velocities {cfg.velocities}, families {cfg.families or 'all'}, sources "
            f"{cfg.sources or 'all'}, instruments {cfg.instruments or 'all'}); widen them"
        )
    return [Part(f, s, e, c) for (f, s), e, c in zip(folders, entries, chosen)]


def _check_disjoint(folders: list[tuple[Path, str | None]], entries: list[dict]) -> None:
    """Raise DataError naming instruments (or note names) found in more than one official folder."""
    for what, key in (("instruments", lambda n, e: e["instrument_str"]), ("note names", lambda n, e: n)):
        seen: dict[str, str] = {}
        shared = {}
        for (folder, _), part in zip(folders, entries):
            for name, entry in part.items():
                k = key(name, entry)
                if seen.setdefault(k, folder.name) != folder.name:
                    shared.setdefault(k, {seen[k]}).add(folder.name)
        if shared:
            show = "; ".join(f"{k} in {' and '.join(sorted(v))}" for k, v in sorted(shared.items())[:5])
            raise DataError(
                f"{len(shared)} {what} of {folders[0][0].parent} are in more than one official split folder ({show}"
                f"{' ...' if len(shared) > 5 else ''}); NSynth's splits share no instrument: remove the duplicates, "
                "or point nsynth_path at one folder to split its instruments anew"
            )


def _share(cfg: Config, entries: list[dict], i: int) -> int:
    """How many instruments ``max_instruments`` keeps in folder ``i``: all of it for one folder, else its share.

    With NSynth's three folders the subset is drawn in each folder in proportion to the
    instruments that pass the filters there (at least one), so every split keeps instruments.
    """
    if cfg.max_instruments <= 0 or len(entries) == 1:
        return cfg.max_instruments
    unlimited = dataclasses.replace(cfg, max_instruments=0)
    counts = [len({e[n]["instrument_str"] for n in select_entries(e, unlimited)}) for e in entries]
    return max(1, round(cfg.max_instruments * counts[i] / max(sum(counts), 1))) if counts[i] else 0


def select_entries(entries: Mapping[str, dict], cfg: Config, max_instruments: int | None = None) -> list[str]:
    """The note names of ``entries`` that pass the filters of ``cfg`` and its instrument subset.

    Filters: pitch in pitch_min..pitch_max, velocity in velocities, family, source and
    instrument_str in the given lists (an empty list keeps all); then, if max_instruments > 0,
    a seeded subset of instruments stratified by family (seed: split_seed).
    Args:
        entries: an examples.json as read; cfg: the filters; max_instruments: instead of
            ``cfg.max_instruments`` (a folder's share of it).
    Returns:
        Sorted note_str values. Chapter: 01_data.
    """
    limit = cfg.max_instruments if max_instruments is None else max_instruments
    keep = [
        name
        for name, e in entries.items()
        if cfg.pitch_min <= e["pitch"] <= cfg.pitch_max
        and e["velocity"] in cfg.velocities
        and (not cfg.families or e["instrument_family_str"] in cfg.families)
        and (not cfg.sources or e["instrument_source_str"] in cfg.sources)
        and (not cfg.instruments or e["instrument_str"] in cfg.instruments)
    ]
    if limit > 0:
        families = {entries[n]["instrument_str"]: entries[n]["instrument_family_str"] for n in keep}
        chosen = set(subset_instruments(families, limit, cfg.split_seed))
        keep = [n for n in keep if entries[n]["instrument_str"] in chosen]
    return sorted(keep)


def selection_meta(parts: Sequence[Part], cfg: Config) -> tuple[pd.DataFrame, np.ndarray]:
    """The metadata of every chosen note with its split, sorted by note_str, and the part each comes from.

    An official folder gives its split; otherwise instruments are split by
    :func:`vaetone.data.splits.split_instruments` over the chosen notes (whole ``sample_group``\\ s
    together when the notes have that column: the SoundFont corpus). An instrument whose notes
    all turn out broken keeps its place in the split.
    Returns:
        ``(meta, part_of_row)``: meta indexed by note_str with a ``split`` column; part index per row.
        Chapter: 01_data.
    """
    frames = []
    for i, p in enumerate(parts):
        frame = meta_frame(p.entries, p.chosen)
        frames.append(frame.assign(split=p.split or "", _part=i))
    meta = pd.concat(frames).sort_index(kind="stable") if len(frames) > 1 else frames[0]
    if parts[0].split is None:
        families = meta.groupby("instrument_str")["instrument_family_str"].first()
        groups = None
        if "sample_group" in meta:
            groups = meta.groupby("instrument_str")["sample_group"].first().to_dict()
        splits = split_instruments(families, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed, groups=groups)
        meta["split"] = meta["instrument_str"].map(splits)
    part_of = meta.pop("_part").to_numpy(np.int16)
    return meta, part_of


def notes_manifest(
    cfg: Config, parts: Sequence[Part], records: Mapping[str, Mapping] | None = None, verify: bool = False
) -> dict:
    """The manifest (:func:`vaetone.data.manifest.build`) of the chosen notes of ``cfg``'s folders.

    Wav hashes are reused from a rendered folder's ``manifest.json`` or, for a user's NSynth
    folder, from ``store.data_dir()/manifests/nsynth-<hash of its path>.json`` (updated here;
    the user's folder itself is never written to), and from ``records``.

    Args:
        cfg: the configuration; parts: :func:`selection` of it;
        records: ``{note_str: {"size", "mtime_ns", "sha256"}}`` just read (by the preparation);
        verify: hash every wav again.
    Returns:
        ``{"notes": {note_str: record}, "digest": hex, "folders": {folder name: its digest}}``. With
        one folder the digest is that folder's :func:`vaetone.data.manifest.digest`; with NSynth's
        three it hashes the three (split, digest) pairs. Chapter: 01_data.
    """
    records = records or {}
    per_part = [_part_manifest(cfg, p, records, verify) for p in parts]
    notes = {n: r for m in per_part for n, r in m["notes"].items()}
    folders = {p.folder.name: m["digest"] for p, m in zip(parts, per_part)}
    if len(parts) == 1:
        return {"notes": notes, "digest": per_part[0]["digest"], "folders": folders}
    pairs = [[p.split, m["digest"]] for p, m in zip(parts, per_part)]
    return {"notes": notes, "digest": hashlib.sha256(json.dumps(pairs).encode()).hexdigest(), "folders": folders}


def _part_manifest(cfg: Config, part: Part, records: Mapping[str, Mapping], verify: bool) -> dict:
    """The manifest of one folder's chosen notes (see :func:`notes_manifest`)."""
    fresh = {n: records[n] for n in part.chosen if n in records and records[n].get("sha256")}
    if cfg.dataset != "nsynth":
        previous = manifest.read(part.folder / manifest.MANIFEST) or {"notes": {}}
        previous = {"notes": {**previous["notes"], **fresh}}
        return manifest.build(part.folder, part.entries, part.chosen, previous, verify)
    where = hashlib.sha256(str(part.folder.resolve()).encode()).hexdigest()[:12]
    cache = store.data_dir() / "manifests" / f"nsynth-{where}.json"
    previous = manifest.read(cache) or {"notes": {}}
    current = manifest.build(part.folder, part.entries, part.chosen, {"notes": {**previous["notes"], **fresh}}, verify)
    if any(previous["notes"].get(n) != r for n, r in current["notes"].items()):
        notes = {**previous["notes"], **current["notes"]}
        record = {**current, "notes": notes, "digest": manifest.digest(notes), "folder": str(part.folder)}
        manifest.write(cache, record)
    return current


# ---------------------------------------------------------------------------------------------
# Rendered sources
# ---------------------------------------------------------------------------------------------


def render_key(cfg: Config) -> str:
    """The cache key of a rendered source: the data parameters less those that only split it.

    The split fractions never change the audio, nor does the split seed unless it picks a
    subset of instruments (``max_instruments`` > 0); so changing only the split reuses the render.
    """
    base = Config()
    neutral = dataclasses.replace(
        cfg,
        valid_fraction=base.valid_fraction,
        test_fraction=base.test_fraction,
        split_seed=cfg.split_seed if cfg.max_instruments else base.split_seed,
    )
    return store.key("data", neutral)


def rendered_folder(cfg: Config) -> Path:
    """The NSynth-format folder of a rendered source, rendering it first when it is not cached.

    Args:
        cfg: a configuration with dataset "soundfont" or "synthetic".
    Returns:
        ``store.data_dir()/<dataset>-<render_key(cfg)>``. Chapter: 01_data.
    """
    folder = store.data_dir() / f"{cfg.dataset}-{render_key(cfg)}"
    if (folder / "examples.json").is_file():
        problem = folder_damage(folder)
        if problem is None:
            log.info("reusing rendered dataset %s", folder)
            return folder
        log.warning("rendered dataset %s is damaged (%s); rendering it again", folder, problem)
    build = {"soundfont": soundfont.build, "synthetic": synthetic.build}[cfg.dataset]
    with atomic_folder(folder, replace=folder.exists()) as tmp:
        build(cfg, tmp)
        entries = read_examples(tmp)
        manifest.write(tmp / manifest.MANIFEST, manifest.build(tmp, entries, list(entries)))
    return folder


def folder_damage(folder: Path, verify: bool = False) -> str | None:
    """How a rendered folder differs from its ``manifest.json``, or None when it is intact.

    Args:
        folder: a rendered NSynth-format folder; verify: hash every wav (not only those whose
            size or mtime changed).
    Returns:
        None, or a short account such as ``"75 wav files missing (e.g. ...)"``. Chapter: 01_data.
    """
    recorded = manifest.read(folder / manifest.MANIFEST)
    if recorded is None:
        return f"no readable {manifest.MANIFEST} (rendered by an older version, or damaged)"
    try:
        entries = read_examples(folder)
    except DataError as exc:
        return f"examples.json is unusable: {exc}"
    problems = manifest.damage(recorded, manifest.build(folder, entries, list(entries), recorded, verify))
    return manifest.describe(problems) if any(problems.values()) else None
