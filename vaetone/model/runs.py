"""Trained runs: the model trained with a configuration (loaded, resumed or trained), and the latents of every note.

Chapters: 02_model, 03_training and every analysis chapter.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaetone import store
from vaetone.config import Config
from vaetone.data.splits import check_split_sizes
from vaetone.devices import resolve_device
from vaetone.errors import CheckpointError
from vaetone.model import distributed
from vaetone.model.checkpoints import (
    BEST,
    CHECKPOINT,
    LATENTS,
    header,
    history_frame,
    load_weights,
    read_checkpoint,
    save,
)
from vaetone.model.inputs import input_record
from vaetone.model.loader import batch_loader
from vaetone.model.summary import calibrated_beta, decoder_sigma
from vaetone.model.train import EVAL_BATCH, Trainer, fit
from vaetone.model.vae import ConvVAE, n_parameters

log = logging.getLogger(__name__)


@dataclass
class Run:
    """A trained model and how it was trained.

    Attributes:
        model: the ConvVAE with the best validation weights, in eval mode, on ``device``.
        cfg: the configuration it was trained with.
        history: one row per epoch, indexed by ``epoch`` (1-based); columns ``train_total``,
            ``train_recon``, ``train_kl``, ``valid_total``, ``valid_recon``, ``valid_kl`` (nats per
            note), ``valid_mse`` (per bin, normalised units), ``kl_weight``, ``lr``, ``seconds``,
            ``notes_per_s`` (training throughput), ``valid_kl_d00``... (KL per latent dimension),
            ``sigma`` (the decoder's σ, normalised units, mean over bands; 1.0 when fixed).
        path: the run folder.
        device: "cpu" or "cuda".
        train_seconds: total training time over all sessions, s.
        best_epoch: the epoch of the returned weights.
        stop_reason: "completed", "early stopping" or similar.
        trained_on: the device type the run was trained on ("cpu" or "cuda"); ``device`` is where it is loaded.
    """

    model: ConvVAE
    cfg: Config
    history: pd.DataFrame
    path: Path
    device: str
    train_seconds: float
    best_epoch: int
    stop_reason: str
    trained_on: str = ""

    def encode(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)``, each ``(n, latent_dim)`` on the CPU.

        Args:
            x: normalised log-mel ``(n, 1, n_mels, frames)``, array or tensor.
        """
        out = _batched(lambda b: torch.cat(self.model.encode(b), 1), x, self.device)
        return out[:, : self.model.latent_dim], out[:, self.model.latent_dim :]

    def decode(self, z) -> torch.Tensor:
        """Decode latents ``(n, latent_dim)`` (array or tensor) to normalised log-mel ``(n, 1, n_mels, frames)``."""
        return _batched(self.model.decode, z, self.device)

    def reconstruct(self, x) -> torch.Tensor:
        """Reconstruction from the posterior mean, ``(n, 1, n_mels, frames)`` normalised, on the CPU."""
        return _batched(lambda b: self.model.decode(self.model.encode(b)[0]), x, self.device)


@dataclass
class Latents:
    """Posterior means and standard deviations of every note.

    Attributes:
        mu, std: float32 arrays ``(n, latent_dim)`` in the row order of ``meta`` (std is 0 for
            the deterministic autoencoder, β = 0).
        meta: the features' metadata table (with ``split``).
    """

    mu: np.ndarray
    std: np.ndarray
    meta: pd.DataFrame

    def split(self, name: str) -> Latents:
        """The rows of one split ("train", "valid", "test")."""
        mask = (self.meta["split"] == name).to_numpy()
        return Latents(self.mu[mask], self.std[mask], self.meta[mask])


def _batched(fn: Callable, x, device, batch: int = EVAL_BATCH) -> torch.Tensor:
    """Apply ``fn`` in eval mode without gradients, batch by batch on ``device``; float32 CPU result."""
    x = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        outs = [fn(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    return torch.cat(outs) if outs else torch.empty(0)


def _load_features(cfg: Config):
    """The features of ``cfg`` (imported lazily: vaetone.features is another module's work)."""
    from vaetone.spectral.features import load_features

    return load_features(cfg)


def _input_shape(features) -> tuple[int, int]:
    """(n_mels, n_frames) of the features (the shape of ``logmel`` without reading it)."""
    if hasattr(features, "n_mels") and hasattr(features, "n_frames"):
        return int(features.n_mels), int(features.n_frames)
    return int(features.logmel.shape[-2]), int(features.logmel.shape[-1])


def _finished_run(
    cfg: Config, shape: tuple[int, int], ckpt: dict, folder: Path, device: torch.device, inputs: dict | None
) -> Run:
    """The Run of a finished checkpoint, with the weights of best.pt (rebuilt from checkpoint.pt if damaged)."""
    best = _best_weights(cfg, shape, ckpt, folder, inputs)
    model = ConvVAE(cfg, *shape)
    load_weights(model, best["model"], folder / BEST)
    history = history_frame(list(ckpt["history"]))
    seconds = float(history["seconds"].sum()) if len(history) else 0.0
    return Run(
        model.to(device).eval(),
        cfg,
        history,
        folder,
        device.type,
        seconds,
        int(ckpt["best_epoch"]),
        str(ckpt["stop_reason"]),
        str(ckpt.get("device", device.type)),
    )


def _best_weights(cfg: Config, shape: tuple[int, int], ckpt: dict, folder: Path, inputs: dict | None) -> dict:
    """best.pt of a finished run; a missing, corrupt or stale best.pt is rebuilt from checkpoint.pt's best weights.

    Raises:
        CheckpointError: neither file holds the best epoch's weights; the message says which files to delete.
    """
    try:
        best = read_checkpoint(folder / BEST, cfg, shape, inputs) if (folder / BEST).exists() else None
    except CheckpointError as exc:
        log.warning("%s; rebuilding it from %s", exc, CHECKPOINT)
        best = None
    if best is not None and int(best.get("epoch", -1)) == int(ckpt["best_epoch"]):
        return best
    if ckpt.get("best_model") is None:
        raise CheckpointError(
            f"{folder / BEST} is missing or does not hold the best epoch {ckpt['best_epoch']}, and "
            f"{folder / CHECKPOINT} holds no best weights to rebuild it from; delete both files to retrain this "
            "run (the folder's other files are rebuilt as needed)"
        )
    best = {
        **header(cfg, shape, ckpt.get("inputs")),
        "epoch": int(ckpt["best_epoch"]),
        "valid_total": float(ckpt["best_valid"]),
        "model": ckpt["best_model"],
    }
    if not distributed.current().main:  # rank 0 writes it
        return best
    save(folder / BEST, best)
    log.warning("rebuilt %s from the best weights (epoch %d) kept in %s", folder / BEST, best["epoch"], CHECKPOINT)
    return best


def trained_model(
    cfg: Config, features=None, *, progress: bool = True, callback: Callable[[int, dict], None] | None = None
) -> Run:
    """The model trained with ``cfg``: loaded from its run folder, resumed, or trained from scratch.

    Args:
        cfg: the configuration (every data, feature, model and training parameter keys the run).
        features: a ``vaetone.spectral.features.Features`` (default: ``load_features(cfg)``); training
            reads its ``rows("train")`` and ``rows("valid")`` batch by batch (``logmel[rows]``, ``normalise``).
        progress: show a tqdm bar with live losses.
        callback: called as ``callback(epoch, row)`` after each epoch's checkpoint is written.
    Returns:
        A :class:`Run` with the best validation weights, in eval mode.
    Raises:
        CheckpointError: a checkpoint in the run folder is corrupt, from another configuration or code, or
            trained on other features (dataset digest or normalisation; the message says what to delete).
        TrainingError: the loss became NaN or infinite (the last good checkpoint is kept).
        DistributedError: in a torchrun process group whose ranks cannot share the batches
            (:func:`vaetone.model.distributed.check_batches`).

    In a torchrun process group (:mod:`vaetone.model.distributed`) every rank calls this; they train
    one model with DistributedDataParallel, rank 0 writes the files, and all return the same Run.
    Chapters: 02_model, 03_training and every analysis chapter.
    """
    features = _load_features(cfg) if features is None else features
    shape = _input_shape(features)
    device, folder = resolve_device(cfg), store.run_dir(cfg)
    check_split_sizes(features.meta, cfg, "the features of this configuration")  # before any training
    inputs = input_record(features)
    ckpt = distributed.on_main(  # under torchrun rank 0 reads it for all ranks
        lambda: read_checkpoint(folder / CHECKPOINT, cfg, shape, inputs) if (folder / CHECKPOINT).exists() else None
    )
    if ckpt is not None and ckpt.get("finished"):
        return _finished_run(cfg, shape, ckpt, folder, device, inputs)
    distributed.check_batches(len(features.rows("train")), cfg.batch_size, distributed.current().world_size)
    trainer = Trainer(cfg, shape, device, inputs)
    if ckpt is not None:
        trainer.restore(ckpt, folder / CHECKPOINT)
        log.info("resuming %s after epoch %d", folder.name, trainer.epoch)
    fit(trainer, features, folder, progress, callback)
    ckpt = distributed.on_main(lambda: read_checkpoint(folder / CHECKPOINT, cfg, shape, inputs))
    return _finished_run(cfg, shape, ckpt, folder, device, inputs)


def run_summary(run: Run) -> dict:
    """Key numbers of a run for the training evaluation's findings (``vaetone.analysis.evaluation``).

    Returns:
        JSON-able dict: run_id, device, parameters, epochs_trained, best_epoch, stop_reason,
        train_seconds, seconds_per_epoch and notes_per_s (medians over epochs), and the
        validation losses of the best epoch (nats per note; valid_mse per bin); decoder_variance,
        sigma (the decoder's σ of the kept weights in normalised units, averaged over bands; 1.0 when
        fixed) and beta_calibrated (:func:`vaetone.model.summary.calibrated_beta` at the best
        epoch's valid_mse). Chapter: 03_training.
    """
    h = run.history
    best = h.loc[run.best_epoch]
    sigma = decoder_sigma(run.model)
    variance = run.model.decoder_variance
    return {
        "run_id": run.path.name,
        "device": run.trained_on or run.device,
        "parameters": n_parameters(run.model),
        "epochs_trained": int(len(h)),
        "best_epoch": int(run.best_epoch),
        "stop_reason": run.stop_reason,
        "train_seconds": float(run.train_seconds),
        "seconds_per_epoch": float(h["seconds"].median()),
        "notes_per_s": float(h["notes_per_s"].median()),
        **{k: float(best[k]) for k in ("valid_total", "valid_recon", "valid_kl", "valid_mse")},
        "decoder_variance": variance,
        "sigma": 1.0 if sigma is None else float(sigma.mean()),
        "beta_calibrated": calibrated_beta(float(run.cfg.beta), variance, float(best["valid_mse"]), sigma),
    }


def autoencoder(cfg: Config, features=None, *, progress: bool = True) -> Run:
    """The plain-autoencoder baseline: the same model and recipe with β = 0 (deterministic encoder).

    Chapter: 03_training.
    """
    return trained_model(dataclasses.replace(cfg, beta=0.0), features, progress=progress)


def latents(cfg: Config, run: Run | None = None, features=None) -> Latents:
    """Posterior means and standard deviations of every note (cached as ``latents.npz`` in the run folder).

    Args:
        cfg: the configuration.
        run: the trained run (default: :func:`trained_model` of ``cfg``).
        features: the features (default: ``load_features(cfg)``); read and encoded in batches of
            ``EVAL_BATCH`` notes, never all at once.
    Returns:
        :class:`Latents` with ``mu``, ``std`` ``(n, latent_dim)`` in the row order of ``features.meta``.
    Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics, 07_explorer.
    """
    features = _load_features(cfg) if features is None else features
    run = trained_model(cfg, features) if run is None else run
    path, notes = run.path / LATENTS, features.meta.index.to_numpy(dtype=str)
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            if f["notes"].tolist() == notes.tolist() and int(f["best_epoch"]) == run.best_epoch:
                return Latents(f["mu"], f["std"], features.meta)
    parts = [run.encode(xb) for xb in batch_loader(features, features.rows(), EVAL_BATCH, torch.device("cpu"))]
    mu, logvar = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    std = torch.zeros_like(mu) if run.model.deterministic else torch.exp(0.5 * logvar)
    mu, std = mu.numpy().astype(np.float32), std.numpy().astype(np.float32)
    with store.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, std=std, notes=notes, best_epoch=run.best_epoch)
    return Latents(mu, std, features.meta)
