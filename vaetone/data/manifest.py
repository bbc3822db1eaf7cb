"""Manifests of NSynth-format folders: what the selected notes were, so that a changed folder is noticed.

A manifest records the sha256 of a folder's ``examples.json`` and, per selected note, the
sha256 of its entry (canonical JSON) and its wav's size, mtime_ns and sha256 (None when the
wav is missing). Checking a folder against a manifest is cheap: a wav whose size and mtime are
the recorded ones keeps its recorded sha256, and only the others are read and hashed again
(``verify=True`` hashes every wav). The manifest's ``digest`` (sha256 of the note names, entry
hashes and wav hashes, never of sizes or mtimes) identifies the notes' content: equal digests
mean the same notes with the same metadata and the same audio bytes.

Chapter: 01_data (and every later chapter, through the features and runs that record the digest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from vaetone import store

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
"""The manifest's file name inside a rendered folder."""
FORMAT = 1
"""Layout version of a manifest."""
_CHUNK = 1 << 20


NO_RECORD = {"size": None, "mtime_ns": None, "sha256": None}
"""The record of a wav that could not be stat'ed or read (copy it: ``dict(NO_RECORD)``)."""


def file_sha256(path: Path) -> str | None:
    """The sha256 (hex) of a file's bytes, or None when it is missing or unreadable.

    Args:
        path: the file.
    Returns:
        64 hex digits, or None. Chapter: 01_data.
    """
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def entry_sha256(entry: Mapping) -> str:
    """The sha256 of an examples.json entry as canonical JSON (sorted keys), so key order does not matter."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=store.jsonable).encode()).hexdigest()


def wav_record(path: str | Path, previous: Mapping | None = None, verify: bool = False) -> dict:
    """Size, mtime_ns and sha256 of one wav, reusing ``previous``'s sha256 when size and mtime match.

    Args:
        path: the wav file.
        previous: the record of the same file in an older manifest (or None).
        verify: hash the file even when size and mtime match.
    Returns:
        ``{"size": bytes, "mtime_ns": int, "sha256": hex}``; all three None when the file is
        missing (or not a plain file). Chapter: 01_data.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        return dict(NO_RECORD)
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    same = previous is not None and all(previous.get(k) == v for k, v in record.items())
    record["sha256"] = previous["sha256"] if same and not verify else file_sha256(Path(path))
    return record


def build(
    folder: str | Path,
    entries: Mapping[str, dict],
    names: Sequence[str],
    previous: Mapping | None = None,
    verify: bool = False,
) -> dict:
    """The manifest of the notes ``names`` of an NSynth-format folder.

    Args:
        folder: the folder (``examples.json`` + ``audio/<note_str>.wav``).
        entries: its examples.json as read (``nsynth.read_examples``).
        names: the selected note_str values (notes with broken audio included).
        previous: an older manifest of the folder; its wav hashes are reused where size and mtime match.
        verify: hash every wav.
    Returns:
        ``{"format", "examples_sha256", "notes": {note_str: {"entry", "size", "mtime_ns",
        "sha256"}}, "digest"}``. Chapter: 01_data.
    """
    folder = Path(folder)
    old, audio = (previous or {}).get("notes", {}), os.path.join(folder, "audio")
    notes = {}
    for name in sorted(names):
        record = wav_record(os.path.join(audio, f"{name}.wav"), old.get(name), verify)
        notes[name] = {"entry": entry_sha256(entries[name]), **record}
    return {
        "format": FORMAT,
        "examples_sha256": file_sha256(folder / "examples.json"),
        "notes": notes,
        "digest": digest(notes),
    }


def digest(notes: Mapping[str, Mapping]) -> str:
    """The content digest of a manifest's notes: sha256 of (name, entry hash, wav hash), sorted by name.

    Args:
        notes: ``manifest["notes"]``.
    Returns:
        64 hex digits; independent of sizes, mtimes and the folder's location. Chapter: 01_data.
    """
    rows = [[name, notes[name]["entry"], notes[name]["sha256"]] for name in sorted(notes)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def note_hashes(manifest: Mapping) -> dict[str, str]:
    """One short hash per note (its entry and wav together), to tell later which notes changed."""
    return {
        name: hashlib.sha256(f"{r['entry']}:{r['sha256']}".encode()).hexdigest()[:16]
        for name, r in manifest["notes"].items()
    }


def differences(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, list[str]]:
    """The notes that differ between two :func:`note_hashes` mappings.

    Returns:
        ``{"changed": [...], "added": [...], "removed": [...]}`` (sorted note_str values).
    """
    return {
        "changed": sorted(n for n in old.keys() & new.keys() if old[n] != new[n]),
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
    }


def damage(recorded: Mapping, current: Mapping) -> dict[str, list[str] | bool]:
    """How a folder differs from the manifest written when it was built.

    Args:
        recorded: the folder's manifest at build time; current: :func:`build` of it now.
    Returns:
        ``{"missing": wavs gone, "changed": wavs with other bytes, "entries": notes added,
        removed or edited in examples.json, "examples": examples.json edited (bool)}``;
        every value empty/False for an intact folder.
    """
    old, new = recorded.get("notes", {}), current["notes"]
    both = sorted(old.keys() & new.keys())
    return {
        "missing": [n for n in both if new[n]["sha256"] is None and old[n]["sha256"] is not None],
        "changed": [n for n in both if new[n]["sha256"] not in (None, old[n]["sha256"])],
        "entries": sorted((old.keys() ^ new.keys()) | {n for n in both if old[n]["entry"] != new[n]["entry"]}),
        "examples": recorded.get("examples_sha256") != current["examples_sha256"],
    }


def describe(problems: Mapping[str, list[str] | bool]) -> str:
    """A short account of :func:`damage` or :func:`differences`, e.g. ``"75 wav files missing (e.g. ...)"``."""
    words = {
        "missing": "wav files missing",
        "changed": "notes changed",
        "entries": "notes added, removed or edited in examples.json",
        "added": "notes added",
        "removed": "notes removed",
    }
    parts = [f"{len(v)} {words[k]} (e.g. {v[0]})" for k, v in problems.items() if k in words and v]
    if problems.get("examples"):
        parts.append("examples.json edited")
    return ", ".join(parts) or "no difference"


def read(path: str | Path) -> dict | None:
    """A manifest written by :func:`write`, or None when it is missing, unreadable or of another format."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    if not isinstance(manifest.get("notes"), dict):
        return None
    return manifest


def write(path: str | Path, manifest: Mapping) -> Path:
    """Write a manifest atomically (compact JSON); returns the path."""
    with store.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, sort_keys=True) + "\n")
    return Path(path)
