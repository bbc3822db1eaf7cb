"""Throughput benchmark of the pipeline's hot paths (a benchmark, not a test: it asserts nothing).

    .venv/bin/python scripts/benchmark.py [--device cpu|cuda] [--out bench.json]

Prints one JSON object: SoundFont rendering (notes/s, one core), log-mel extraction (notes/s),
training (notes/s, default model, a few batches), decoding (notes/s), Griffin-Lim inversion
(s/note), and one live explorer update (ms). Nothing is written under data/ or runs/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

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


def main(argv=None) -> int:
    """Command line: run the benchmark and print (and optionally save) its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = {k: round(v, 4) if isinstance(v, float) else v for k, v in bench(args.device).items()}
    print(json.dumps(result, indent=2))
    if args.out:
        from vaetone.store import write_json

        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
