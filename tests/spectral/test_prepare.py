"""Tests of vaetone.spectral.prepare: chunks, workers, resuming, a full disk, and the report."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

from vaetone import config
from vaetone.data import dataset as datasets
from vaetone.errors import DataError
from vaetone.spectral import cache, chunks, prepare
from vaetone.spectral.features import load_features

from ..data.nsynth_folders import add_note, official

CHUNK = 5
"""Notes per chunk in these tests, so that 32 notes make 7 chunks."""


@pytest.fixture
def root(tmp_path_factory):
    """NSynth's three folders (4, 2 and 2 instruments x 2 pitches x 2 velocities) plus three broken notes."""
    root = official(tmp_path_factory.mktemp("nsynth"))
    add_note(root / "nsynth-train", "guitar_acoustic_000", 72, 127, "nan")
    add_note(root / "nsynth-valid", "flute_acoustic_004", 72, 127, "rate")
    add_note(root / "nsynth-test", "reed_acoustic_006", 72, 127, "truncated")
    return root


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_NOTES", CHUNK)


def _cfg(root, **params):
    return config.make(dataset="nsynth", nsynth_path=str(root), velocities=[25, 127], n_mels=16, device="cpu", **params)


def _store(tmp_path, monkeypatch, name: str):
    """Point the cache at a fresh folder ``tmp_path/name``."""
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path / name))
    return tmp_path / name


def _cache(cfg) -> dict:
    """Everything a finished cache holds that must not depend on workers or interruptions."""
    folder = cache.cache_path(cfg)
    meta, record = cache.read_cache(folder)
    keep = ("digest", "notes", "mean", "std", "skipped", "shape", "folder_digests")
    return {"logmel": (folder / cache.LOGMEL).read_bytes(), "meta": meta, **{k: record[k] for k in keep}}


def _assert_same(a: dict, b: dict) -> None:
    pd.testing.assert_frame_equal(a.pop("meta"), b.pop("meta"))
    assert a == b


def test_the_report_counts_notes_instruments_and_skipped_notes_per_folder(root, tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch, "data")
    report = prepare.prepare(_cfg(root))
    assert set(report) == {"notes", "skipped", "splits", "instruments", "features", "seconds", "skipped_by_folder"}
    assert report["notes"] == 32 and report["skipped"] == 3
    assert report["splits"] == {"train": 16, "valid": 8, "test": 8}
    assert report["instruments"] == {"train": 4, "valid": 2, "test": 2}
    assert report["skipped_by_folder"] == {"nsynth-train": 1, "nsynth-valid": 1, "nsynth-test": 1}
    assert report["features"] == str(cache.cache_path(_cfg(root))) and report["seconds"] >= 0
    json.dumps(report)  # JSON-ready
    again = prepare.prepare(_cfg(root))
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in report.items() if k != "seconds"}


def test_features_are_identical_for_one_and_two_workers(root, tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch, "one")
    prepare.prepare(_cfg(root, workers=1))
    one = _cache(_cfg(root))
    monkeypatch.setattr(chunks, "READ_WHILE_WORKERS_START", False)  # every chunk read by the two workers
    _store(tmp_path, monkeypatch, "two")
    prepare.prepare(_cfg(root, workers=2))
    record = json.loads((cache.cache_path(_cfg(root)) / cache.MANIFEST).read_text())["preparation"]
    assert (record["workers"], record["chunks_read_here"]) == (2, 0) and record["workers_maxrss_kb"] > 0
    _assert_same(_cache(_cfg(root)), one)


def test_an_interrupted_preparation_resumes_from_its_finished_chunks(root, tmp_path, monkeypatch):
    cfg = _cfg(root)
    _store(tmp_path, monkeypatch, "reference")
    prepare.prepare(cfg)
    reference = _cache(cfg)

    data = _store(tmp_path, monkeypatch, "interrupted")
    real_write, written = prepare._write_rows, []

    def interrupt_after_three(fd, offset, block):
        if len(written) == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C while chunk 3 is being written
        written.append(offset)
        real_write(fd, offset, block)

    monkeypatch.setattr(prepare, "_write_rows", interrupt_after_three)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare(cfg)
    partial = data / f".{cache.cache_path(cfg).name}.partial"
    assert not cache.cache_path(cfg).exists()
    assert [json.loads(line)["chunk"] for line in (partial / "progress.jsonl").read_text().splitlines()] == [0, 1, 2]

    monkeypatch.setattr(prepare, "_write_rows", real_write)
    read = []
    real_read = chunks.read_chunk
    monkeypatch.setattr(chunks, "read_chunk", lambda task: read.append(task.index) or real_read(task))
    prepare.prepare(cfg)
    assert read == [3, 4, 5, 6] and not partial.exists()  # 35 notes in chunks of 5: only the unfinished ones
    _assert_same(_cache(cfg), reference)


def test_a_changed_wav_in_a_finished_chunk_is_read_again_when_resuming(root, tmp_path, monkeypatch):
    cfg = _cfg(root)
    _store(tmp_path, monkeypatch, "data")
    monkeypatch.setattr(prepare, "_write_rows", _failing_after(4, RuntimeError("crash")))
    with pytest.raises(RuntimeError, match="crash"):
        prepare.prepare(cfg)
    monkeypatch.undo()
    monkeypatch.setattr(prepare, "CHUNK_NOTES", CHUNK)
    _store(tmp_path, monkeypatch, "data")
    meta, _ = datasets.selection_meta(datasets.selection(cfg), cfg)
    wav = root / f"nsynth-{meta['split'].iloc[7]}" / "audio" / f"{meta.index[7]}.wav"  # a note of chunk 1
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    read = []
    real_read = chunks.read_chunk
    monkeypatch.setattr(chunks, "read_chunk", lambda task: read.append(task.index) or real_read(task))
    prepare.prepare(cfg)
    assert read == [1, 2, 3, 4, 5, 6]


def _failing_after(chunks: int, error: BaseException):
    """A stand-in for prepare._write_rows that writes ``chunks`` chunks, then raises ``error``."""
    real, calls = prepare._write_rows, []

    def write(fd, offset, block):
        if len(calls) == chunks:
            raise error
        calls.append(offset)
        real(fd, offset, block)

    return write


Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_says_how_much_is_needed_and_keeps_the_finished_chunks(root, tmp_path, monkeypatch):
    cfg = _cfg(root)
    _store(tmp_path, monkeypatch, "reference")
    prepare.prepare(cfg)
    reference = _cache(cfg)

    data, real_usage, real_write = _store(tmp_path, monkeypatch, "full"), shutil.disk_usage, prepare._write_rows
    monkeypatch.setattr(prepare.shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - 123456789, 123456789))
    monkeypatch.setattr(prepare, "_write_rows", _failing_after(2, OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(DataError) as err:
        prepare.prepare(cfg)
    partial = data / f".{cache.cache_path(cfg).name}.partial"
    needed = (35 - 2 * CHUNK) * 2 * 16 * 126 + 35 * 1024  # the notes left's log-mel, and every note's metadata
    message = str(err.value)
    assert f"{needed} bytes" in message and "123456789 bytes" in message and "are free there" in message
    assert str(data) in message and f"the 2 finished chunks ({2 * CHUNK} notes) in {partial} are kept" in message
    assert isinstance(err.value.__cause__, OSError)

    monkeypatch.setattr(prepare.shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - 100, 100))
    monkeypatch.setattr(prepare, "_write_rows", _failing_after(0, AssertionError("nothing is written")))
    with pytest.raises(DataError, match="100 bytes"):
        prepare.prepare(cfg)  # refused before reading: the disk cannot hold the rest

    monkeypatch.setattr(prepare.shutil, "disk_usage", real_usage)
    monkeypatch.setattr(prepare, "_write_rows", real_write)
    read = []
    real_read = chunks.read_chunk
    monkeypatch.setattr(chunks, "read_chunk", lambda task: read.append(task.index) or real_read(task))
    prepare.prepare(cfg)
    assert read == [2, 3, 4, 5, 6]
    _assert_same(_cache(cfg), reference)


def test_normalisation_is_accumulated_chunk_by_chunk_as_over_the_whole_train_split(root, tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch, "data")
    feats = load_features(_cfg(root))
    train = feats.logmel[feats.rows("train")].numpy().astype(np.float64)
    assert feats.mean == pytest.approx(train.mean(), rel=1e-12)
    assert feats.std == pytest.approx(train.std(ddof=1), rel=1e-12)
