"""Throughput benchmark of the pipeline's hot paths (a benchmark, not a test: it asserts nothing).

    .venv/bin/python scripts/benchmark.py [--device cpu|cuda] [--out bench.json]
    .venv/bin/python scripts/benchmark.py --prepare [--sizes 6000 24000] [--workers 1 2] [--root DIR]

Without ``--prepare`` it prints one JSON object: SoundFont rendering (notes/s, one core), log-mel
extraction (notes/s), training (notes/s, default model, a few batches), decoding (notes/s),
Griffin-Lim inversion (s/note), and one live explorer update (ms). Nothing is written under data/
or runs/.

With ``--prepare`` it measures ``vaetone.spectral.prepare.prepare`` on NSynth-format data: for
each size it writes (once; reused by later runs) NSynth's three official folders of harmonic
tones under ``--root`` (default: a folder in the system's temp dir; ~3 GB per 24k notes), then
prepares them in a fresh Python process per (size, workers), with its own empty cache folder,
and reports the peak resident memory (of the preparing process, from ``getrusage``, and of its
worker processes, which report their own), the notes/s of reading and log-mel (end to end, and
steady: after the first chunk), and the growth of the peak from the smallest size to the largest.
The wavs are in the page cache (just written or read), so the figures are those of reading from
memory, not from a cold disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _rate(n: int, fn) -> float:
    """Items per second of one call of ``fn`` processing ``n`` items (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench(device: str) -> dict:
    """Measure every hot path on ``device``; returns the figures."""
    from vaetone import config
    from vaetone.data import soundfont
    from vaetone.model import vae as model
    from vaetone.spectral import inversion, melspec

    cfg = config.make(device=device)
    out = {"device": device, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    grid = np.meshgrid(
        soundfont.gm_programs().program[:8].to_numpy(), [40, 48, 56, 64, 72, 80], list(config.VELOCITIES), indexing="ij"
    )
    programs, pitches, velocities = (g.ravel().tolist() for g in grid)
    out["render_notes_per_s"] = _rate(
        len(programs), lambda: soundfont.render_notes(programs, pitches, velocities, cfg.soundfonts[0])
    )
    audio = np.random.default_rng(0).standard_normal((256, 64000)).astype(np.float32) * 0.1
    out["logmel_notes_per_s"] = _rate(256, lambda: melspec.log_mel(audio, cfg, device=device))
    vae = model.ConvVAE(cfg, cfg.n_mels, melspec.n_frames(cfg)).to(device)
    x = torch.randn(cfg.batch_size, 1, cfg.n_mels, melspec.n_frames(cfg), device=device)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr)

    def step(n=5):
        for _ in range(n):
            recon, mu, logvar = vae(x)
            loss = model.loss_terms(recon, x, mu, logvar, cfg.beta)["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    out["model_parameters"] = model.n_parameters(vae)
    out["train_notes_per_s"] = _rate(5 * cfg.batch_size, step)
    vae.eval()
    z = torch.randn(512, cfg.latent_dim, device=device)
    with torch.no_grad():
        out["decode_notes_per_s"] = _rate(512, lambda: vae.decode(z).sum().item())
    db = melspec.log_mel(audio[:8], cfg)
    for n_iter in (8, 32):
        rate = _rate(8, lambda k=n_iter: inversion.mel_to_audio(db, cfg, n_iter=k))
        out[f"griffin_lim_{n_iter}_s_per_note"] = 8 / rate
    return out


# ----------------------------------------------------------------------------- the preparation

NOTES_PER_INSTRUMENT = 100
"""Pitches 30..79 at velocities 25 and 127."""
SPLIT_SHARES = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
BROKEN = {"train": "nan", "valid": "rate", "test": "truncated"}
"""One broken note per folder, so that the skipping path is measured too."""


def write_nsynth(root: Path, n_notes: int) -> Path:
    """NSynth's three official folders of ``n_notes`` harmonic tones under ``root`` (kept when complete)."""
    import pandas as pd

    from vaetone.data.writer import nsynth_rows, write_examples, write_wavs

    if (root / "complete.json").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    n_inst, start = n_notes // NOTES_PER_INSTRUMENT, 0
    families = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "vocal")
    for split, share in SPLIT_SHARES:
        k = round(n_inst * share)
        table = [
            {
                "instrument": i,
                "instrument_str": f"{families[i % len(families)]}_acoustic_{i:03d}",
                "family": families[i % len(families)],
                "source": "acoustic",
                "pitch_min": 30,
                "pitch_max": 79,
            }
            for i in range(start, start + k)
        ]
        start += k
        notes = nsynth_rows(pd.DataFrame(table), list(range(30, 80)), [25, 127])
        folder = root / f"nsynth-{split}"
        for lo in range(0, len(notes), 500):
            part = notes.iloc[lo : lo + 500]
            write_wavs(folder, part["note_str"], _tones(part))
        write_examples(folder, notes)
        _break_one(folder, notes.iloc[0], BROKEN[split])
    (root / "complete.json").write_text(json.dumps({"notes": n_notes}))
    return root


def _tones(notes) -> np.ndarray:
    """Decaying harmonic tones, (n, 64000) float32: partials tilted by the instrument, level by the velocity."""
    t = np.arange(64000, dtype=np.float32) / 16000
    out = np.empty((len(notes), 64000), np.float32)
    for i, (inst, pitch, vel) in enumerate(zip(notes["instrument"], notes["pitch"], notes["velocity"])):
        f0, tilt = 440 * 2 ** ((pitch - 69) / 12), 0.3 + 0.08 * (inst % 7)
        y = sum(tilt**h * np.sin(np.float32(2 * np.pi * f0 * (h + 1)) * t) for h in range(6) if f0 * (h + 1) < 7900)
        out[i] = 0.4 * vel / 127 * np.exp(-t / (0.5 + inst % 3)) * y / 2
    return out


def _break_one(folder: Path, note, kind: str) -> None:
    """Spoil one wav of ``folder``: NaN samples, another sample rate, or a truncated file."""
    import soundfile as sf

    file = folder / "audio" / f"{note['note_str']}.wav"
    y = _tones(note.to_frame().T)[0]
    if kind == "nan":
        y[100] = np.nan
        sf.write(file, y, 16000, subtype="FLOAT")
    elif kind == "rate":
        sf.write(file, np.resize(y, 4 * 44100), 44100, subtype="PCM_16")
    else:
        file.write_bytes(file.read_bytes()[:50000])


_CHILD = """
import json, resource, sys, time
from vaetone import config
from vaetone.spectral.cache import cache_path, read_cache
from vaetone.spectral.prepare import prepare
cfg = config.make(dataset="nsynth", nsynth_path=sys.argv[1], pitch_min=21, pitch_max=108, device="cpu",
                  workers=int(sys.argv[2]))
start = time.perf_counter()
report = prepare(cfg)
seconds = time.perf_counter() - start
record = read_cache(cache_path(cfg))[1]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"report": report, "seconds": seconds, "preparation": record["preparation"],
                  "main_peak_kb": usage.ru_maxrss, "main_cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""
"""One preparation in a fresh process; it prints its report, timings and peak memory as one JSON line."""


def _children_peak_kb(resource) -> int:
    """getrusage(RUSAGE_CHILDREN).ru_maxrss of this process: the largest peak of any child so far, kB.

    Only a bound: a child forked from a large process (e.g. ``ldconfig``, which importing torch runs)
    reports the parent's resident pages at the fork, and forkserver workers are not our children.
    """
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def bench_prepare(sizes: list[int], workers: list[int], root: Path) -> dict:
    """Peak memory and notes/s of the preparation in fresh processes, per size and number of workers."""
    import resource

    runs = []
    for n in sizes:
        data = write_nsynth(root / f"nsynth-{n}", n)
        for w in workers:
            store = Path(tempfile.mkdtemp(prefix="vaetone-bench-store-"))
            env = {**os.environ, "VAETONE_DATA": str(store), "VAETONE_PROGRESS": "0"}
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(data), str(w)], env=env, capture_output=True, text=True
                )
            finally:
                shutil.rmtree(store, ignore_errors=True)
            if done.returncode:
                raise SystemExit(done.stderr)
            child = json.loads(done.stdout.strip().splitlines()[-1])
            prep, notes = child["preparation"], child["report"]["notes"] + child["report"]["skipped"]
            steady = (prep["notes_read"] - 256) / max(prep["seconds"] - prep["first_chunk_seconds"], 1e-9)
            runs.append(
                {
                    "notes": notes,
                    "workers": w,
                    "peak_rss_mb": round(max(child["main_peak_kb"], prep["workers_maxrss_kb"]) / 1024, 1),
                    "main_peak_rss_mb": round(child["main_peak_kb"] / 1024, 1),
                    "workers_peak_rss_mb": round(prep["workers_maxrss_kb"] / 1024, 1),
                    "children_peak_rss_mb_so_far": round(_children_peak_kb(resource) / 1024, 1),
                    "seconds": round(child["seconds"], 2),
                    "notes_per_s": round(notes / child["seconds"], 1),
                    "steady_notes_per_s": round(steady, 1),
                    "chunk_cpu_ms_per_note": round(1000 * prep["chunks_cpu_seconds"] / prep["notes_read"], 3),
                    "main_cpu_seconds": round(child["main_cpu_seconds"], 2),
                    "cpu_seconds_available": round(child["seconds"] * (os.cpu_count() or 1), 1),
                    "chunks_read_by_the_main_process": prep["chunks_read_here"],
                    "skipped": child["report"]["skipped_by_folder"],
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    out = {"runs": runs}
    for w in workers:
        peaks = {r["notes"]: r["peak_rss_mb"] for r in runs if r["workers"] == w}
        small, large = min(peaks), max(peaks)
        out[f"peak_growth_{w}_workers"] = round(peaks[large] / peaks[small] - 1, 4)
    for n in sorted({r["notes"] for r in runs}):
        for kind in ("notes_per_s", "steady_notes_per_s"):
            rate = {r["workers"]: r[kind] for r in runs if r["notes"] == n}
            if 1 in rate and len(rate) > 1:
                out[f"speedup_{n}_notes_{kind}"] = {str(w): round(v / rate[1], 3) for w, v in rate.items()}
    return out


def main(argv=None) -> int:
    """Command line: run the benchmark and print (and optionally save) its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out")
    parser.add_argument("--prepare", action="store_true", help="measure the preparation instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6000, 24000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "vaetone-bench-nsynth"))
    args = parser.parse_args(argv)
    if args.prepare:
        result = bench_prepare(args.sizes, args.workers, Path(args.root))
    else:
        result = {k: round(v, 4) if isinstance(v, float) else v for k, v in bench(args.device).items()}
    return emit(result, args.out)


def emit(result: dict, out: str | None) -> int:
    """Print the figures as JSON on stdout and, with ``out``, write them there (atomically); returns 0."""
    print(json.dumps(result, indent=2))
    if out:
        from vaetone.store import write_json

        write_json(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
