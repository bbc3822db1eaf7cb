"""Training throughput from the features' memory map against an in-memory tensor (a benchmark: it asserts nothing).

    .venv/bin/python scripts/bench_training.py [--device cpu|cuda] [-f params/corpus.yaml] [--notes N]
                                               [--n-mels 64] [--repeats N] [--compile] [--workers N]
                                               [--out bench.json]

Both variants train the same model (the default ConvVAE, from the same seed) on the same batches
through the same code (``vaetone.model.train.Trainer.train_epoch`` over
``vaetone.model.loader.train_loader``); only ``Features.logmel`` differs: a ``LogmelArray`` on a
float16 ``logmel.npy`` memory map, or a float32 tensor of the same values. The memory map is
timed twice: with its pages in the page cache ("warm", as after the first epoch when the data fit
in RAM) and with its pages evicted before each epoch (``posix_fadvise(DONTNEED)``: "cold", read
from disk as when the data exceed RAM). One short epoch of ``--notes`` notes per measurement, the
three variants one after the other in a rotating order, ``--repeats`` times; the ratios are the
medians of the paired ratios (each memmap epoch against the in-memory epoch beside it), which a
busy shared machine disturbs far less than the rates themselves.

On CUDA it also times a plain fp32 eager loop (the batches already on the GPU, no autocast, no
channels_last) against the trainer's bf16 autocast + channels_last (+ ``torch.compile`` with
``--compile``).

Prints one JSON object; nothing is written under data/ or runs/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml


class _NoBar:
    """A progress bar that shows nothing."""

    def update(self, n: int) -> None:
        """Ignore the progress."""


def _features(folder: Path, notes: int, n_mels: int, frames: int):
    """The same dB values as a memory-mapped Features and as an in-memory one (all notes in the train split)."""
    from vaetone.spectral.features import Features, LogmelArray

    rng = np.random.default_rng(0)
    db = (rng.standard_normal((notes, n_mels, frames), dtype=np.float32) * 15 - 40).astype(np.float16)
    with open(folder / "logmel.npy", "wb") as fh:
        np.save(fh, db)
        fh.flush()
        os.fsync(fh.fileno())  # clean pages: the page cache can drop them (see _evict)
    meta = pd.DataFrame(
        {"split": "train", "instrument_str": [f"i{i % 50}" for i in range(notes)]},
        index=pd.Index([f"n{i}" for i in range(notes)], name="note_str"),
    )
    mapped = Features(meta, LogmelArray.open(folder / "logmel.npy"), -40.0, 15.0)
    in_memory = Features(meta, torch.from_numpy(db.astype(np.float32)), -40.0, 15.0)
    return mapped, in_memory


def _evict(path: Path) -> None:
    """Drop a file's pages from the page cache (the next read comes from disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _epoch_rate(cfg, features, device: torch.device, shape: tuple[int, int]) -> float:
    """Notes per second of one training epoch of a fresh seeded Trainer over ``features``' train rows."""
    from vaetone.model import loader, train

    trainer = train.Trainer(cfg, shape, device)
    rows = features.rows("train")
    batches = loader.train_loader(
        features, rows, cfg.batch_size, trainer.gen, device, workers=train.loader_workers(cfg, device)
    )
    with train._reproducible(device):
        start = time.perf_counter()
        trainer.train_epoch(batches, _NoBar())
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(rows) / (time.perf_counter() - start)


def _plain_fp32_rate(cfg, features, device: torch.device, shape: tuple[int, int], steps: int) -> float:
    """Notes per second of a plain fp32 eager loop on batches already on ``device`` (the GPU baseline)."""
    from vaetone.model.vae import ConvVAE, loss_terms

    torch.manual_seed(cfg.seed)
    model = ConvVAE(cfg, *shape).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = features.x("train")[: cfg.batch_size * 8].to(device)

    def step(i: int) -> None:
        xb = x[(i % 8) * cfg.batch_size : (i % 8 + 1) * cfg.batch_size]
        recon, mu, logvar = model(xb)
        loss = loss_terms(recon, xb, mu, logvar, cfg.beta)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(10):
        step(i)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    torch.cuda.synchronize()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def bench(device: str, notes: int, repeats: int, compile_: bool, params: dict) -> dict:
    """Measure the variants with the model and batch of ``params``; returns the figures (notes/s, medians)."""
    from vaetone import config
    from vaetone.model import train
    from vaetone.model.train import COMPILE_ENV
    from vaetone.model.vae import ConvVAE, n_parameters
    from vaetone.spectral import melspec

    cfg = config.make(**{**params, "device": device})
    dev, frames = torch.device(device), melspec.n_frames(cfg)
    shape = (cfg.n_mels, frames)
    out = {
        "device": device,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "notes": notes,
        "n_mels": cfg.n_mels,
        "frames": frames,
        "channels": cfg.channels,
        "batch_size": cfg.batch_size,
        "loader_workers": train.loader_workers(cfg, torch.device(device)),
        "model_parameters": n_parameters(ConvVAE(cfg, *shape)),
    }
    if compile_:
        os.environ[COMPILE_ENV] = "1"
    names = ("in_memory", "memmap_warm", "memmap_cold")
    rates: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        mapped, in_memory = _features(Path(tmp), notes, cfg.n_mels, frames)
        variants = {"in_memory": in_memory, "memmap_warm": mapped, "memmap_cold": mapped}
        _epoch_rate(cfg, in_memory, dev, shape)  # warm-up: allocator, cuDNN autotuning, compilation
        for i in range(repeats):
            for name in names[i % 3 :] + names[: i % 3]:  # rotate the order: no variant always runs first
                if name == "memmap_cold":
                    _evict(Path(tmp) / "logmel.npy")
                rates[name].append(_epoch_rate(cfg, variants[name], dev, shape))
        if dev.type == "cuda":
            rates["plain_fp32_eager"] = [_plain_fp32_rate(cfg, in_memory, dev, shape, 200) for _ in range(3)]
    for name, values in rates.items():
        out[f"{name}_notes_per_s"] = statistics.median(values)
    for name in ("memmap_warm", "memmap_cold"):  # paired: each epoch against the in-memory epoch beside it
        ratios = [a / b for a, b in zip(rates[name], rates["in_memory"])]
        out[f"{name}_over_in_memory"] = statistics.median(ratios)
        quartiles = statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else ratios
        out[f"{name}_over_in_memory_quartiles"] = [round(q, 4) for q in quartiles]
    if dev.type == "cuda":
        out["trainer"] = "bf16 autocast + channels_last" + (" + torch.compile" if compile_ else "")
        out["memmap_warm_over_plain_fp32"] = out["memmap_warm_notes_per_s"] / out["plain_fp32_eager_notes_per_s"]
    return out


def main(argv=None) -> int:
    """Command line: run the benchmark and print (and optionally save) its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("-f", "--params", help="a parameters file for the model and batch (e.g. params/corpus.yaml)")
    parser.add_argument("--notes", type=int, help="notes per measured epoch (default 128 on the CPU, 16384 on CUDA)")
    parser.add_argument("--n-mels", type=int, help="mel bands (default: the parameters', else 64)")
    parser.add_argument("--repeats", type=int, help="measurements per variant (default 30 on the CPU, 5 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile (CUDA)")
    parser.add_argument("--workers", type=int, help="the workers parameter (DataLoader processes on CUDA)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text()) if args.params else {}
    params.update({k: v for k, v in (("n_mels", args.n_mels), ("workers", args.workers)) if v is not None})
    cuda = args.device == "cuda"
    notes = args.notes or (16384 if cuda else 128)
    repeats = args.repeats or (5 if cuda else 30)
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON
        result = bench(args.device, notes, repeats, args.compile, params)
    from benchmark import emit  # scripts/ is on the path when this script runs

    return emit({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, args.out)


if __name__ == "__main__":
    sys.exit(main())
