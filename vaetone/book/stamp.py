"""The build's stamp: chapter times per preset, the commit and the environment, as MyST substitutions.

``python -m vaetone.book execute`` records each chapter's wall time in ``timings.json`` beside
the executed notebooks; ``build`` turns those records, the git commit and the versions of the
main packages into substitutions (``{{ time_04_sensitivity }}``, ``{{ book_commit }}``, ...) in the
staged ``_config.yml``, so every page quotes the run it shows.

Chapters: all (their Overview's time), and the Reproduce page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from vaetone import store

TIMINGS = "timings.json"
PACKAGES = ("torch", "torchaudio", "librosa", "numpy", "jupyter-book", "papermill")
"""Packages whose versions the Reproduce page shows (the lock file pins every one)."""


def machine() -> str:
    """This machine in words: CPU cores and the accelerator, e.g. "2 CPU cores, no GPU"."""
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return f"{os.cpu_count()} CPU cores, " + (", ".join(gpus) if gpus else "no GPU")


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def read_timings(folder: Path) -> dict:
    """The timings recorded in ``folder`` ({} when none): preset, machine, finished, chapters {stem: seconds}."""
    path = Path(folder) / TIMINGS
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("chapters"), dict) else {}


def record_time(folder: Path, preset: str, chapter: str, seconds: float) -> dict:
    """Record one chapter's wall time (s) for ``preset`` in ``<folder>/timings.json``, atomically.

    Times of another preset in the same folder are dropped (the notebooks there were overwritten).
    Returns:
        The updated record.
    """
    data = read_timings(folder)
    if data.get("preset") != preset:
        data = {"preset": preset, "chapters": {}}
    data["chapters"][chapter] = round(float(seconds), 1)
    data["machine"] = machine()
    data["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    Path(folder).mkdir(parents=True, exist_ok=True)
    _atomic_json(Path(folder) / TIMINGS, data)
    return data


def duration(seconds: float) -> str:
    """Seconds as text: "42 s", "3 min 05 s", "1 h 02 min"."""
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def commit(root: Path | None = None) -> str:
    """The git commit of the book's sources (short hash, "+ uncommitted changes" when dirty), or why it is unknown."""
    root = root or store.root()
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        )
    except OSError:
        return "unknown (git is not installed)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def environment(root: Path | None = None) -> dict[str, str]:
    """Python and the main packages' versions, and the hash of the lock file ``requirements.txt``."""
    root = root or store.root()
    env = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = "not installed"
    lock = root / "requirements.txt"
    env["lock"] = hashlib.sha256(lock.read_bytes()).hexdigest()[:12] if lock.exists() else "missing"
    return env


def times_table(executed: Path) -> str:
    """A Markdown table of the chapter times of every preset executed beside ``executed`` (its sibling folders)."""
    rows = []
    for folder in sorted(p for p in Path(executed).parent.iterdir() if p.is_dir()):
        t = read_timings(folder)
        if t:
            chapters = ", ".join(f"{k[:2]}: {duration(v)}" for k, v in sorted(t["chapters"].items()))
            total = duration(sum(t["chapters"].values()))
            rows.append(
                f"| `{t['preset']}` | {total} | {chapters} | {t.get('machine', '')} | {t.get('finished', '')} |"
            )
    if not rows:
        return "No chapter times were recorded for this build."
    head = "| preset | all chapters | per chapter | machine | finished |\n| --- | --- | --- | --- | --- |"
    return head + "\n" + "\n".join(rows)


def substitutions(executed: Path, chapters: list[str]) -> dict[str, str]:
    """The MyST substitutions of a build from ``executed``: preset, chapter times, commit, environment.

    Args:
        executed: the folder of executed notebooks (with its ``timings.json``); chapters: their stems.
    Returns:
        {"preset", "time_<stem>" for each chapter, "book_commit", "build_date", "machine",
        "times_table", "env_<package>" for Python and :data:`PACKAGES`, "env_lock"}.
    """
    t = read_timings(executed)
    subs = {"preset": f"`{t.get('preset', 'unknown')}`", "machine": t.get("machine", machine())}
    for stem in chapters:
        seconds = t.get("chapters", {}).get(stem)
        subs[f"time_{stem}"] = duration(seconds) if seconds is not None else "not measured in this build"
    subs["book_commit"] = commit()
    subs["build_date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subs["times_table"] = times_table(executed)
    subs.update({"env_" + k.replace("-", "_"): v for k, v in environment().items()})
    return subs


def write_substitutions(config_path: Path, executed: Path, chapters: list[str]) -> dict[str, str]:
    """Add :func:`substitutions` to a staged ``_config.yml`` (``parse: myst_substitutions``); returns them."""
    cfg = yaml.safe_load(Path(config_path).read_text()) or {}
    subs = substitutions(executed, chapters)
    cfg.setdefault("parse", {})["myst_substitutions"] = subs
    Path(config_path).write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return subs
