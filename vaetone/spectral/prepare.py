"""The preparation: every selected note read once, in chunks, by worker processes, into a float16 memory map.

The feature cache of a configuration is the folder ``store.data_dir()/features-<key>/`` (key:
every data and feature parameter, :func:`vaetone.store.key`):

* ``logmel.npy``: log-mel in dB, float16 (notes, n_mels, frames), ``np.lib.format``, read with
  ``np.load(mmap_mode="r")``;
* ``meta.json``: the loaded notes in row order, with their ``split`` column;
* ``manifest.json``: format, key, the dataset digest and per-note hashes
  (:func:`vaetone.data.dataset.notes_manifest`), the train split's mean and standard deviation
  (dB, accumulated chunk by chunk in float64), and the skipped notes with reasons and folders.

Notes are read in chunks of :data:`CHUNK_NOTES` in note_str order, the same for any number of
workers, so the cache is identical for any ``workers``. ``workers`` > 1 reads and computes in
that many worker processes with one torch thread each (:mod:`vaetone.spectral.chunks` says how
they start and why); ``workers`` = 1 reads here. This process writes the chunks in order.

The cache is built in a sibling folder ``.features-<key>.partial/``: each finished chunk's rows
are written at their offset (plain writes, flushed to disk, so written pages never pile up in
memory), then a line is appended to ``progress.jsonl``. An interrupted preparation resumes after
the last finished chunk whose wavs are unchanged; a full disk stops it with a DataError that says
how much space is needed, keeping the finished chunks. The finished folder is renamed into place.

Chapter: 01_data (and every later chapter through the features).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import Config
from vaetone.data import manifest
from vaetone.data.dataset import Part, notes_manifest, selection, selection_meta
from vaetone.data.nsynth import reason_counts
from vaetone.data.splits import SPLITS
from vaetone.data.writer import render_skips
from vaetone.errors import DataError
from vaetone.progress import tqdm
from vaetone.spectral import melspec
from vaetone.spectral.cache import (
    LOGMEL,
    MANIFEST,
    META,
    cache_path,
    meta_to_json,
    npy_header,
    read_cache,
    stale,
    write_manifest,
)
from vaetone.spectral.chunks import Task, chunk_results, combine, file_stat, maxrss_kb

CHUNK_NOTES = 256
"""Notes per chunk: read, computed and written together (about 4 MB of float16 log-mel at 64 x 126)."""
PROGRESS, PLAN = "progress.jsonl", "plan.json"

log = logging.getLogger(__name__)


def prepare(cfg: Config) -> dict:
    """Prepare (or find) the features of ``cfg``: render or read every note once, log-mel into the memory map.

    Args:
        cfg: data and feature parameters, and ``workers`` (processes that read and compute).
    Returns:
        The JSON-ready report ``{"notes", "skipped", "splits": {"train", "valid", "test"},
        "instruments": {"train", "valid", "test"}, "features": cache folder, "seconds",
        "skipped_by_folder": {folder name: count}}`` (notes and instruments per split).
    Raises:
        DataError: unusable folders, no loadable note, no train note, or a full disk.
    Chapter: 01_data (``python -m vaetone prepare``).
    """
    start = time.perf_counter()
    folder, parts = ensure(cfg)
    meta, record = read_cache(folder)
    split = meta["split"]
    by_folder = Counter({p.folder.name: 0 for p in parts}) + Counter(s["folder"] for s in record["skipped"])
    return {
        "notes": len(meta),
        "skipped": len(record["skipped"]),
        "splits": {s: int((split == s).sum()) for s in SPLITS},
        "instruments": {s: int(meta.loc[split == s, "instrument_str"].nunique()) for s in SPLITS},
        "features": str(folder),
        "seconds": round(time.perf_counter() - start, 3),
        "skipped_by_folder": {p.folder.name: by_folder[p.folder.name] for p in parts},
    }


def ensure(cfg: Config, refresh: bool = False) -> tuple[Path, list[Part]]:
    """The finished feature cache of ``cfg``, checked against the notes now, and built (or resumed) if need be.

    Args:
        cfg: the configuration; refresh: rebuild even an up-to-date cache (and drop a partial one).
    Returns:
        ``(cache folder, parts)``: the folder (:func:`vaetone.spectral.cache.cache_path`) and
        :func:`vaetone.data.dataset.selection` of ``cfg``. Chapter: 01_data.
    """
    final = cache_path(cfg)
    parts = selection(cfg)  # renders a rendered source first (atomically, outside the lock)
    current = functools.cache(lambda: notes_manifest(cfg, parts))  # the notes do not change in between: build it once
    problem = "is missing" if not final.is_dir() else ("is refreshed" if refresh else stale(final, cfg, current))
    if problem is None:
        log.info("features loaded from %s", final)
        return final, parts
    with _locked(final):
        if not refresh and final.is_dir() and stale(final, cfg, current) is None:
            return final, parts  # prepared meanwhile by another process
        if final.is_dir() and not refresh:
            log.warning("feature cache %s %s; recomputing it", final, problem)
        _build(cfg, parts, final, refresh)
    return final, parts


@contextlib.contextmanager
def _locked(final: Path) -> Iterator[None]:
    """Hold an exclusive lock for preparing ``final`` (POSIX; elsewhere no lock), so two processes never write it."""
    lock = final.parent / "locks" / f"{final.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """What is prepared: the chosen notes in row order, their folders and splits, the array's layout."""

    meta: pd.DataFrame  # every chosen note, sorted by note_str, with its split
    audio_dirs: list  # the resolved audio/ folder of each part
    part_of: np.ndarray  # part index per note
    shape: tuple  # (n_mels, frames)
    signature: str  # hash of everything the chunks depend on

    @property
    def row_bytes(self) -> int:
        """Bytes of one note's float16 log-mel."""
        return 2 * self.shape[0] * self.shape[1]

    def chunk(self, i: int) -> range:
        """Note positions of chunk ``i``."""
        return range(i * CHUNK_NOTES, min((i + 1) * CHUNK_NOTES, len(self.meta)))

    @property
    def n_chunks(self) -> int:
        """How many chunks."""
        return -(-len(self.meta) // CHUNK_NOTES)


def _plan(cfg: Config, parts: list[Part]) -> _Plan:
    """The plan of ``cfg``'s preparation; DataError when no chosen note is in the train split."""
    meta, part_of = selection_meta(parts, cfg)
    if not (meta["split"] == "train").any():
        raise DataError(
            "the dataset has no notes in the train split, so features cannot be normalised; widen the data "
            "filters (pitch range, families, instruments)"
        )
    shape = (cfg.n_mels, melspec.n_frames(cfg))
    described = {
        "format": 1,
        "key": store.key("features", cfg),
        "chunk_notes": CHUNK_NOTES,
        "shape": shape,
        "parts": [[str(p.folder.resolve()), p.split, manifest.file_sha256(p.folder / "examples.json")] for p in parts],
        "notes": manifest.entry_sha256({"names": meta.index.tolist(), "splits": meta["split"].tolist()}),
    }
    dirs = [str((p.folder / "audio").resolve()) for p in parts]
    return _Plan(meta, dirs, part_of, shape, manifest.entry_sha256(described))


def _tasks(cfg: Config, plan: _Plan, chunks: range) -> Iterator[Task]:
    """The chunks' tasks, made as they are handed out."""
    names, train = plan.meta.index, (plan.meta["split"] == "train").to_numpy()
    for i in chunks:
        rows = plan.chunk(i)
        yield Task(i, [(plan.audio_dirs[plan.part_of[r]], names[r]) for r in rows], train[rows].tolist(), cfg)


# ----------------------------------------------------------------------------- building


def _build(cfg: Config, parts: list[Part], final: Path, refresh: bool) -> None:
    """Build the cache of ``cfg`` in its partial folder (resuming finished chunks) and rename it into place."""
    start = time.perf_counter()
    plan = _plan(cfg, parts)
    partial = final.parent / f".{final.name}.partial"
    done = None if refresh else _resume(partial, plan)
    if done is None:
        _start(partial, plan)
        done = []
    elif done:
        log.info("resuming the preparation of %s after %d finished chunks", final.name, len(done))
    rows = sum(c["rows"] for c in done)
    _check_space(partial, plan, len(done), rows)
    total, first = len(plan.meta), len(done) * CHUNK_NOTES
    bar = tqdm(total=total, initial=first, desc="preparing features", unit="note", disable=total < 2000)
    peak = {"workers_maxrss_kb": 0, "chunks_read_here": 0, "chunks_cpu_seconds": 0.0}
    try:
        with open(partial / LOGMEL, "r+b") as fh, open(partial / PROGRESS, "a") as progress, bar:
            todo = range(len(done), plan.n_chunks)
            with contextlib.closing(chunk_results(_tasks(cfg, plan, todo), len(todo), cfg.workers)) as results:
                for result in results:
                    peak.setdefault("first_chunk_seconds", round(time.perf_counter() - start, 3))
                    line = _store(fh, progress, plan, result, rows)
                    done.append(line)
                    rows += line["rows"]
                    here = result["pid"] == os.getpid()
                    peak["chunks_cpu_seconds"] += result["cpu_seconds"]
                    peak["chunks_read_here"] += here
                    if not here:
                        peak["workers_maxrss_kb"] = max(peak["workers_maxrss_kb"], result["maxrss_kb"])
                    bar.update(len(plan.chunk(result["index"])))
        timing = {"seconds": round(time.perf_counter() - start, 3), "notes_read": total - first, **peak}
        _finish(cfg, parts, plan, partial, final, done, {**timing, "workers": cfg.workers})
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise _disk_full(partial, plan, len(done), rows) from exc


def _start(partial: Path, plan: _Plan) -> None:
    """An empty partial folder: the array's header (for every chosen note; shrunk at the end) and the plan."""
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / LOGMEL).write_bytes(npy_header((len(plan.meta), *plan.shape)))
    (partial / PLAN).write_text(json.dumps({"signature": plan.signature, "notes": len(plan.meta)}))


def _resume(partial: Path, plan: _Plan) -> list[dict] | None:
    """The finished chunks of a partial folder of the same plan whose wavs are unchanged; None to start anew."""
    try:
        if json.loads((partial / PLAN).read_text())["signature"] != plan.signature:
            log.info("%s was begun for other notes or settings; starting anew", partial)
            return None
        lines = (partial / PROGRESS).read_text().splitlines() if (partial / PROGRESS).exists() else []
        header = len(npy_header((len(plan.meta), *plan.shape)))
        size = (partial / LOGMEL).stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done, rows = [], 0
    for text in lines:
        try:
            line = json.loads(text)
            ok = line["chunk"] == len(done) and header + (rows + line["rows"]) * plan.row_bytes <= size
        except (ValueError, KeyError, TypeError):
            break  # a line cut short by a crash: that chunk is done again
        if not ok or not _unchanged(line["records"], plan, line["chunk"]):
            break
        done.append(line)
        rows += line["rows"]
    with open(partial / LOGMEL, "r+b") as fh:
        fh.truncate(header + rows * plan.row_bytes)
    with store.atomic_path(partial / PROGRESS) as tmp:
        tmp.write_text("".join(json.dumps(line) + "\n" for line in done))
    return done


def _unchanged(records: dict, plan: _Plan, chunk: int) -> bool:
    """Whether every wav of a finished chunk still has the size and mtime it was read with."""
    names = plan.meta.index
    for i in plan.chunk(chunk):
        size, mtime = file_stat(os.path.join(plan.audio_dirs[plan.part_of[i]], f"{names[i]}.wav"))
        if records.get(names[i], [None, None])[:2] != [size, mtime]:
            return False
    return True


def _check_space(partial: Path, plan: _Plan, chunks_done: int, rows: int) -> None:
    """Raise the disk-full DataError before reading when the disk cannot hold the remaining notes."""
    free = shutil.disk_usage(partial).free
    if free < _needed(plan, chunks_done):
        raise _disk_full(partial, plan, chunks_done, rows)


def _needed(plan: _Plan, chunks_done: int) -> int:
    """Bytes still to write: the remaining notes' log-mel, and about 1 kB of metadata per note at the end."""
    return (len(plan.meta) - chunks_done * CHUNK_NOTES) * plan.row_bytes + len(plan.meta) * 1024


def _disk_full(partial: Path, plan: _Plan, chunks_done: int, rows: int) -> DataError:
    """The DataError of a full disk: bytes needed, bytes free, where, and that the finished chunks are kept."""
    needed, free = _needed(plan, chunks_done), shutil.disk_usage(partial).free
    left = len(plan.meta) - chunks_done * CHUNK_NOTES
    return DataError(
        f"not enough disk space for the features in {partial.parent}: {needed} bytes ({needed / 1e9:.2f} GB) are "
        f"still needed for {left} notes, {free} bytes ({free / 1e9:.2f} GB) are free there. Free some space (or "
        f"set VAETONE_DATA to a larger disk) and run again: the {chunks_done} finished chunks ({rows} notes) in "
        f"{partial} are kept and the preparation resumes from them"
    )


def _store(fh, progress, plan: _Plan, result: dict, row0: int) -> dict:
    """Write one chunk's rows at their offset, flush them to disk, then record the chunk in the progress file."""
    block = np.ascontiguousarray(result["logmel"], dtype="<f2")
    _write_rows(fh.fileno(), len(npy_header((len(plan.meta), *plan.shape))) + row0 * plan.row_bytes, block)
    os.fsync(fh.fileno())
    line = {
        "chunk": result["index"],
        "rows": len(block),
        "skipped": result["skipped"],
        "records": result["records"],
        "stats": result["stats"],
    }
    progress.write(json.dumps(line) + "\n")
    progress.flush()
    os.fsync(progress.fileno())
    return line


def _write_rows(fd: int, offset: int, block: np.ndarray) -> None:
    """Write a chunk's float16 rows at ``offset`` of the open array file (plain writes, no mapping)."""
    data = memoryview(block).cast("B")
    if not hasattr(os, "pwrite"):  # pragma: no cover - Windows
        os.lseek(fd, offset, os.SEEK_SET)
    while data:
        written = os.pwrite(fd, data, offset) if hasattr(os, "pwrite") else os.write(fd, data)
        data, offset = data[written:], offset + written


# ----------------------------------------------------------------------------- finishing


def _finish(
    cfg: Config, parts: list[Part], plan: _Plan, partial: Path, final: Path, done: list[dict], timing: dict
) -> None:
    """Check the loaded notes, shrink the array to them, write meta and manifest, and rename the folder into place."""
    rows = sum(c["rows"] for c in done)
    folder_of = {i: p.folder.name for i, p in enumerate(parts)}
    position = {name: i for i, name in enumerate(plan.meta.index)}
    read_skips = [
        {"note": name, "reason": reason, "folder": folder_of[int(plan.part_of[position[name]])]}
        for c in done
        for name, reason in c["skipped"]
    ]
    if rows == 0:
        where = ", ".join(str(p.folder) for p in parts)
        raise DataError(
            f"none of the {len(plan.meta)} selected notes of {where} could be loaded: {reason_counts(read_skips)}; "
            f"check the folder with `python -m vaetone data-check {parts[0].folder}`"
        )
    count, mean, m2 = combine([c["stats"] for c in done])
    std = float(np.sqrt(m2 / (count - 1))) if count > 1 else 0.0
    if not std > 0:
        raise DataError(
            "the train split's notes could not be loaded or their log-mel values are all equal (silent notes?), so "
            f"features cannot be normalised; check the folders with `python -m vaetone data-check {parts[0].folder}`"
        )
    with open(partial / LOGMEL, "r+b") as fh:
        header = npy_header((rows, *plan.shape))
        if len(header) != len(npy_header((len(plan.meta), *plan.shape))):
            raise DataError(f"cannot rewrite the header of {partial / LOGMEL}; delete {partial} and run again")
        fh.write(header)
        fh.truncate(len(header) + rows * plan.row_bytes)
        os.fsync(fh.fileno())
    meta = plan.meta[~plan.meta.index.isin([s["note"] for s in read_skips])]
    records = {name: dict(zip(("size", "mtime_ns", "sha256"), r)) for c in done for name, r in c["records"].items()}
    notes = notes_manifest(cfg, parts, records)
    render = [{**s, "folder": p.folder.name} for p in parts for s in render_skips(p.folder)]
    record = {
        "key": store.key("features", cfg),
        "digest": notes["digest"],
        "folder_digests": notes["folders"],
        "notes": manifest.note_hashes(notes),
        "rows": rows,
        "shape": [rows, *plan.shape],
        "mean": mean,
        "std": std,
        "skipped": render + read_skips,
        "chunk_notes": CHUNK_NOTES,
        "preparation": {**timing, "main_maxrss_kb": maxrss_kb()},
    }
    with store.atomic_path(partial / META) as tmp:
        tmp.write_text(meta_to_json(meta))
    write_manifest(partial / MANIFEST, record)
    _replace(partial, final)
    for name in (PROGRESS, PLAN):
        (final / name).unlink(missing_ok=True)
    log.info(
        "features of %d notes (%d skipped) cached in %s; %d notes read in %.1f s by %d worker(s)",
        rows,
        len(record["skipped"]),
        final,
        timing["notes_read"],
        timing["seconds"],
        timing["workers"],
    )


def _replace(partial: Path, final: Path) -> None:
    """Rename the finished partial folder onto ``final``; an older ``final`` is moved aside, then deleted."""
    aside = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists() or final.is_symlink():
        os.rename(final, aside)
    os.rename(partial, final)
    if aside.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
    elif aside.exists():
        aside.unlink()
