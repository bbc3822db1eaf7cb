"""The dataset of a configuration: rendered (cached) or read, filtered, subset and split.

Rendered sources are written as NSynth-format folders under ``store.data_dir()`` (atomically:
a temporary folder, then a rename), keyed by a hash of what the audio depends on, and then
read back by the same loader as a user's NSynth folder. A rendered folder holds a
``manifest.json`` (:mod:`~vaetone.data.manifest`); a folder whose files no longer match it is
rendered again. A user's NSynth folder is never written to: its manifest is kept under
``store.data_dir()/manifests/``. Every :class:`Dataset` carries the digest of its notes.

Chapter: 01_data (and every later chapter through the features).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import SAMPLE_RATE, Config
from vaetone.data import manifest, soundfont, synthetic
from vaetone.data.nsynth import load_split, read_examples, reason_counts
from vaetone.data.splits import split_instruments, subset_instruments
from vaetone.data.writer import atomic_folder, render_skips
from vaetone.errors import DataError

# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Notes with their metadata, audio and split (chapter 01_data and every later one).

    Attributes:
        meta: DataFrame indexed by note_str: the NSynth fields, ``split`` ("train", "valid",
            "test", by instrument) and, for the synthetic source, the ``factor_*`` columns.
        audio: float32 array (n, 64000), samples in [-1, 1], in the row order of ``meta``.
        sample_rate: 16000 Hz.
        path: the NSynth-format folder the notes were read from.
        skipped: notes left out, each ``{"note": note_str, "reason": text}``.
        digest: the content digest (:func:`vaetone.data.manifest.digest`) of the selected notes,
            those skipped for broken audio included.
    """

    meta: pd.DataFrame
    audio: np.ndarray
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
    """Load the notes ``cfg`` asks for: render (cached) or read, filter, subset and split them.

    Args:
        cfg: the configuration; uses its data parameters (``config.STAGES["data"]``);
            ``pitch_step`` and ``synthetic_instruments`` apply to the rendered sources only.
    Returns:
        A :class:`Dataset`. Rendered sources are cached under
        ``store.data_dir()/<dataset>-<render_key(cfg)>/``; a second call reuses the folder.
    Raises:
        DataError: the folder is unusable or no note matches the filters.
        DependencyError: FluidSynth or the SoundFont is missing (soundfont source).
    Chapter: 01_data (and every later chapter through ``features``).
    """
    folder, entries, chosen = _selection(cfg)
    digest = notes_manifest(cfg, folder, entries, chosen)["digest"]
    meta, audio, skipped = load_split(folder, notes=chosen)
    skipped = render_skips(folder) + skipped
    if meta.empty:
        raise DataError(
            f"none of the {len(chosen)} selected notes of {folder} could be loaded: "
            f"{reason_counts(skipped)}; check the folder with `python -m vaetone data-check {folder}`"
        )
    families = meta.groupby("instrument_str")["instrument_family_str"].first()
    splits = split_instruments(families, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    meta["split"] = meta["instrument_str"].map(splits)
    log.info(
        "dataset %s: %d notes of %d instruments (%s), %d skipped",
        folder.name,
        len(meta),
        len(families),
        dict(Counter(splits.values())),
        len(skipped),
    )
    return Dataset(meta=meta, audio=audio, sample_rate=SAMPLE_RATE, path=folder, skipped=skipped, digest=digest)


def _selection(cfg: Config) -> tuple[Path, dict[str, dict], list[str]]:
    """The folder of ``cfg`` (rendered and checked if need be), its entries and the selected note names."""
    folder = Path(cfg.nsynth_path).expanduser() if cfg.dataset == "nsynth" else rendered_folder(cfg)
    entries = read_examples(folder)
    chosen = select_entries(entries, cfg)
    if not chosen:
        raise DataError(
            f"no note of {folder} matches the filters (pitch {cfg.pitch_min}..{cfg.pitch_max}, "
            f"velocities {cfg.velocities}, families {cfg.families or 'all'}, sources "
            f"{cfg.sources or 'all'}, instruments {cfg.instruments or 'all'}); widen them"
        )
    return folder, entries, chosen


def notes_manifest(
    cfg: Config, folder: Path, entries: Mapping[str, dict], chosen: list[str], verify: bool = False
) -> dict:
    """The manifest (:func:`vaetone.data.manifest.build`) of the selected notes of ``cfg``'s folder.

    Wav hashes are reused from the rendered folder's ``manifest.json``, or, for a user's NSynth
    folder, from ``store.data_dir()/manifests/nsynth-<hash of its path>.json`` (updated here;
    the user's folder itself is never written to).

    Args:
        cfg: the configuration; folder, entries, chosen: as :func:`dataset` selects them;
        verify: hash every wav again.
    Returns:
        The manifest of ``chosen``. Chapter: 01_data.
    """
    if cfg.dataset != "nsynth":
        return manifest.build(folder, entries, chosen, manifest.read(folder / manifest.MANIFEST), verify)
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    cache = store.data_dir() / "manifests" / f"nsynth-{where}.json"
    previous = manifest.read(cache) or {"notes": {}}
    current = manifest.build(folder, entries, chosen, previous, verify)
    if any(previous["notes"].get(n) != r for n, r in current["notes"].items()):
        notes = {**previous["notes"], **current["notes"]}
        manifest.write(cache, {**current, "notes": notes, "digest": manifest.digest(notes), "folder": str(folder)})
    return current


def select_entries(entries: Mapping[str, dict], cfg: Config) -> list[str]:
    """The note names of ``entries`` that pass the filters of ``cfg`` and its instrument subset.

    Filters: pitch in pitch_min..pitch_max, velocity in velocities, family, source and
    instrument_str in the given lists (an empty list keeps all); then, if max_instruments > 0,
    a seeded subset of instruments stratified by family (seed: split_seed).
    Returns:
        Sorted note_str values. Chapter: 01_data.
    """
    keep = [
        name
        for name, e in entries.items()
        if cfg.pitch_min <= e["pitch"] <= cfg.pitch_max
        and e["velocity"] in cfg.velocities
        and (not cfg.families or e["instrument_family_str"] in cfg.families)
        and (not cfg.sources or e["instrument_source_str"] in cfg.sources)
        and (not cfg.instruments or e["instrument_str"] in cfg.instruments)
    ]
    if cfg.max_instruments > 0:
        families = {entries[n]["instrument_str"]: entries[n]["instrument_family_str"] for n in keep}
        chosen = set(subset_instruments(families, cfg.max_instruments, cfg.split_seed))
        keep = [n for n in keep if entries[n]["instrument_str"] in chosen]
    return sorted(keep)


# ---------------------------------------------------------------------------------------------
# Writing NSynth-format folders (rendered sources)
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
