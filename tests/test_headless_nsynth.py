"""Headless, on NSynth's own layout: `prepare` then `train` from the shell; a chapter then reuses both caches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

from vaetone.book import pipeline

from .conftest import TINY
from .data import nsynth_folders

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    **{k: v for k, v in TINY.items() if k not in ("synthetic_instruments", "pitch_step")},
    "dataset": "nsynth",
    "pitch_min": 48,
    "pitch_max": 60,
    "batch_size": 8,
}


def _shell(args: list[str], env: dict) -> dict:
    """Run ``python -m vaetone ARGS``; return its last stdout line as JSON (stderr shown on failure)."""
    out = subprocess.run([sys.executable, "-m", "vaetone", *args], env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_prepare_train_then_a_chapter_on_three_official_folders_with_broken_notes(tmp_path, monkeypatch):
    root = nsynth_folders.official(tmp_path / "nsynth")  # 4 / 2 / 2 instruments x 2 pitches x 2 velocities
    nsynth_folders.add_note(root / "nsynth-train", "guitar_acoustic_090", 60, 127, "nan")
    nsynth_folders.add_note(root / "nsynth-test", "reed_acoustic_091", 48, 25, "truncated", family="reed")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**PARAMS, "nsynth_path": str(root)}))
    for name, where in (("VAETONE_DATA", "data"), ("VAETONE_RUNS", "runs")):
        monkeypatch.setenv(name, str(tmp_path / where))
    env = dict(os.environ)

    report = _shell(["prepare", "-f", str(params)], env)
    assert report["notes"] == 32 and report["skipped"] == 2
    assert report["splits"] == {"train": 16, "valid": 8, "test": 8}
    assert report["instruments"] == {"train": 4, "valid": 2, "test": 2}
    assert report["skipped_by_folder"] == {"nsynth-train": 1, "nsynth-valid": 0, "nsynth-test": 1}
    trained = _shell(["train", "-f", str(params)], env)
    assert trained["epochs"] == TINY["epochs"] and trained["world_size"] == 1 and trained["device"] == "cpu"

    cached = [Path(report["features"]) / "logmel.npy", Path(trained["run"]) / "best.pt"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    chapter = ROOT / "chapters" / "03_training.md"
    notebook = pipeline.execute_chapter(chapter, tmp_path / "out", {**PARAMS, "nsynth_path": str(root)})
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # features and run reused, not rebuilt
    executed = nbformat.read(notebook, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == [] and any(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


def test_data_check_of_the_three_official_folders_reports_each_folder(tmp_path):
    root = nsynth_folders.official(tmp_path / "nsynth")
    nsynth_folders.add_note(root / "nsynth-valid", "flute_acoustic_090", 60, 127, "rate", family="flute")
    out = subprocess.run(
        [sys.executable, "-m", "vaetone", "data-check", str(root)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == 32
    assert [(s["note"], s["folder"]) for s in report["skipped"]] == [("flute_acoustic_090-060-127", "nsynth-valid")]
    assert report["folders"] == {
        "nsynth-train": {"loaded": 16, "skipped": 0},
        "nsynth-valid": {"loaded": 8, "skipped": 1},
        "nsynth-test": {"loaded": 8, "skipped": 0},
    }
    (root / "nsynth-valid").rename(tmp_path / "elsewhere")
    out = subprocess.run(
        [sys.executable, "-m", "vaetone", "data-check", str(root)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 1 and "but not nsynth-valid/" in out.stderr and "Traceback" not in out.stderr
