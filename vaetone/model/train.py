"""Training the ConvVAE: the trainer, its epochs, and a checkpoint after every epoch (chapter 03).

A run lives in ``store.run_dir(cfg)`` (``runs/<dataset>-z<d>-b<β>-s<seed>-<hash>/``), keyed by
every data, feature, model and training parameter plus the code versions; its files are described
in :mod:`vaetone.model.checkpoints`:

* ``checkpoint.pt``: written atomically after every epoch: model, optimiser, scheduler, RNG
  states, the best weights so far, the configuration, the code versions and the history.
  An interrupted run (Ctrl-C, a killed process) resumes from it and loses at most one epoch;
  a finished run just loads.
* ``best.pt``: the weights with the lowest validation loss (what ``runs.trained_model`` returns).
* ``history.csv``: one row per epoch (see ``runs.Run``).

Recipe: AdamW (``lr``, ``weight_decay``); cosine annealing of the learning rate over
``cfg.epochs`` epochs down to lr/100, stepped once per epoch; gradient-norm clipping at
``grad_clip`` (0: off; the network's weights, not σ); the KL weight rises linearly per batch from 0 to β over
``kl_warmup_epochs``; early stopping when the validation loss (recon + β·KL, with z = mu) has not
improved for ``patience`` epochs after the warm-up (0: off). A learned decoder σ
(``decoder_variance`` "global" or "per_band") trains with the rest, at ``SIGMA_LR_SCALE`` x ``lr``
and without weight decay; the history's ``sigma`` column follows it (1.0 when fixed).

Batches: the train and validation notes are read batch by batch through a ``DataLoader``
(:mod:`vaetone.model.loader`), never as one tensor, so the features can be a memory map larger
than RAM. On the CPU training is seeded and deterministic (same cfg ⇒ same weights and history;
``torch.use_deterministic_algorithms`` inside training, batches from a seeded generator, no
loader workers). On CUDA it uses bf16 autocast, channels_last and cuDNN autotuning (and
``torch.compile`` when the environment sets ``VAETONE_COMPILE=1``), and is fast rather than
bit-reproducible. Under torchrun the model is wrapped in DistributedDataParallel and rank 0 alone
writes the files (:mod:`vaetone.model.distributed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vaetone import store
from vaetone.config import Config
from vaetone.errors import CheckpointError, TrainingError
from vaetone.model import distributed, loader
from vaetone.model.checkpoints import BEST, CHECKPOINT, HISTORY, LATENTS, header, history_frame, load_weights, save
from vaetone.model.vae import ConvVAE, Objective, loss_terms
from vaetone.progress import tqdm

EVAL_BATCH = 256
"""Notes per batch of validation and encoding."""
DIVERGENCE_FACTOR = 3.0
"""A validation loss above this multiple of the untrained model's is divergence, not learning."""
COMPILE_ENV = "VAETONE_COMPILE"
"""Set to 1 to train through ``torch.compile`` on CUDA (never on the CPU)."""
MAX_LOADER_WORKERS = 8
"""At most this many DataLoader processes per rank (:func:`loader_workers`)."""
SIGMA_LR_SCALE = 10.0
"""The learned decoder log σ trains at this multiple of ``lr``, without weight decay (:func:`optimizer`)."""

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the trainer


@contextlib.contextmanager
def _reproducible(device: torch.device):
    """Deterministic algorithms on the CPU; cuDNN autotuning on CUDA. Restores the global flags."""
    det, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    bench = torch.backends.cudnn.benchmark
    try:
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        else:
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.backends.cudnn.benchmark = bench


class Trainer:
    """Model, optimiser, scheduler, RNG and bookkeeping of one run; (de)serialisable.

    Args:
        cfg: the configuration; shape: (n_mels, frames) of the input; device: where to train;
        inputs: :func:`~vaetone.model.inputs.input_record` of the features (recorded in the files).
    ``model`` is the plain ConvVAE (its state dict is what the files hold); ``net`` is what the
    training steps call: its :class:`~vaetone.model.vae.Objective` (the loss of a batch), in
    DistributedDataParallel under torchrun, with the model compiled if asked.
    Chapter: 03_training.
    """

    def __init__(self, cfg: Config, shape: tuple[int, int], device: torch.device, inputs: dict | None = None):
        self.cfg, self.shape, self.device, self.inputs = cfg, shape, device, inputs
        self.ranks = distributed.current()
        torch.manual_seed(cfg.seed)
        self.model = ConvVAE(cfg, *shape).to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        compiled = device.type == "cuda" and os.environ.get(COMPILE_ENV) == "1"
        step = torch.compile(self.model) if compiled else None
        self.net = distributed.wrap(Objective(self.model, cfg.free_bits, step), device)
        self.opt = optimizer(self.model, cfg)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs, eta_min=cfg.lr / 100)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch, self.history, self.bad_epochs = 0, [], 0
        self.best_epoch, self.best_valid, self.best_state = 0, math.inf, None
        self.finished, self.stop_reason = False, ""
        self.initial_valid = math.nan

    def state(self) -> dict:
        """Everything needed to continue exactly where this epoch ended."""
        rng = {"torch": torch.get_rng_state(), "loader": self.gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            **header(self.cfg, self.shape, self.inputs),
            "config": dataclasses.asdict(self.cfg),
            "torch_version": str(torch.__version__),
            "device": self.device.type,
            "world_size": self.ranks.world_size,
            "epoch": self.epoch,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "model": self.model.state_dict(),
            "best_model": self.best_state,
            "best_epoch": self.best_epoch,
            "best_valid": self.best_valid,
            "initial_valid": self.initial_valid,
            "bad_epochs": self.bad_epochs,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": rng,
            "history": self.history,
        }

    def restore(self, ckpt: dict, path: Path) -> None:
        """Continue from a checkpoint read by :func:`read_checkpoint`."""
        load_weights(self.model, ckpt["model"], path)
        try:
            self.opt.load_state_dict(ckpt["optimizer"])
            self.sched.load_state_dict(ckpt["scheduler"])
            self.gen.set_state(ckpt["rng"]["loader"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if self.device.type == "cuda" and "cuda" in ckpt["rng"]:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)
            self.epoch, self.history = int(ckpt["epoch"]), list(ckpt["history"])
            self.bad_epochs, self.best_state = int(ckpt["bad_epochs"]), ckpt["best_model"]
            self.best_epoch, self.best_valid = int(ckpt["best_epoch"]), float(ckpt["best_valid"])
            self.finished, self.stop_reason = bool(ckpt["finished"]), str(ckpt["stop_reason"])
            self.initial_valid = float(ckpt.get("initial_valid", math.nan))
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} is incomplete or inconsistent ({exc!r}); delete it to retrain"
            ) from exc

    def _autocast(self):
        """bf16 autocast on CUDA, nothing on the CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def kl_weight(self, step: int, steps_per_epoch: int) -> float:
        """Linear KL warm-up: 0 → 1 over ``kl_warmup_epochs`` (per batch); 1 when off."""
        if self.cfg.kl_warmup_epochs == 0:
            return 1.0
        return min(1.0, (step + 1) / (self.cfg.kl_warmup_epochs * steps_per_epoch))

    def _input(self, xb: torch.Tensor) -> torch.Tensor:
        """A batch from the loader on the training device (channels_last on CUDA)."""
        xb = xb.to(self.device, non_blocking=True)
        return xb.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else xb

    def train_epoch(self, batches: DataLoader, bar) -> dict:
        """One pass over this rank's training batches (:func:`~vaetone.model.loader.train_loader`).

        Returns:
            ``{"train_total", "train_recon", "train_kl"}`` (nats per note, averaged over every rank's
            notes) and ``kl_weight`` (of the last batch).
        """
        cfg, model = self.cfg, self.model
        self.net.train()
        steps, w = len(batches), 1.0
        if self.ranks.world_size > 1:
            torch.manual_seed(distributed.noise_seed(cfg.seed, self.epoch, self.ranks.rank))
        sums = torch.zeros(4, device=self.device)  # total, recon, kl (times notes), notes
        for i, xb in enumerate(batches):
            xb = self._input(xb)
            w = self.kl_weight(self.epoch * steps + i, steps)
            with self._autocast():
                terms = self.net(xb, cfg.beta * w)
            self.opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(network_parameters(model), cfg.grad_clip)
            self.opt.step()
            rec, kl = terms["recon"], terms["kl"]
            sums[:3] += torch.stack([rec + cfg.beta * kl, rec, kl]) * len(xb)
            sums[3] += len(xb)
            if self.device.type == "cpu" or i % 20 == 19 or i == steps - 1:
                self._check_finite(sums, f"batch {i + 1} of {steps}")
            bar.update(1)
        distributed.sync_buffers(model)
        sums = distributed.all_reduce_sum(sums, self.device)
        s = (sums[:3] / sums[3]).tolist()
        return {"train_total": s[0], "train_recon": s[1], "train_kl": s[2], "kl_weight": w}

    def evaluate(self, batches: DataLoader) -> dict:
        """Validation losses with z = mu, full β, true KL (nats per note) and KL per dimension.

        Args:
            batches: this rank's share of the validation batches (:func:`~vaetone.model.loader.batch_loader`);
                the sums are added over every rank.
        Returns:
            ``{"valid_total", "valid_recon", "valid_kl", "valid_mse", "valid_kl_d00", ..., "sigma"}``
            (``sigma``: :func:`mean_sigma`, the decoder's σ these losses were computed with).
        """
        self.model.eval()
        d = self.model.latent_dim
        sums = torch.zeros(4 + d, dtype=torch.float64)  # recon, kl (times notes), squared error, notes, kl per dim
        with torch.no_grad():
            for xb in batches:
                xb = self._input(xb)
                with self._autocast():
                    recon, mu, logvar = self.model(xb)
                t = loss_terms(recon, xb, mu, logvar, self.cfg.beta, log_sigma=self.model.log_sigma)
                n = len(xb)
                sums[:2] += torch.stack([t["recon"], t["kl"]]).double().cpu() * n
                sums[2] += float((recon.float() - xb).pow(2).sum())
                sums[3] += n
                sums[4:] += t["kl_per_dim"].double().cpu() * n
        sums = distributed.all_reduce_sum(sums, self.device)
        n = sums[3]
        rec, kl = (sums[:2] / n).tolist()
        mse = float(sums[2] / (n * self.shape[0] * self.shape[1]))
        row = {"valid_total": rec + self.cfg.beta * kl, "valid_recon": rec, "valid_kl": kl, "valid_mse": mse}
        row.update({f"valid_kl_d{j:02d}": v for j, v in enumerate((sums[4:] / n).tolist())})
        row["sigma"] = mean_sigma(self.model)
        self._check_finite(torch.tensor([rec, kl]), "validation")
        return row

    def _check_finite(self, values: torch.Tensor, where: str) -> None:
        """Raise TrainingError if a loss is NaN or infinite (nothing is saved for this epoch)."""
        if bool(torch.isfinite(values).all()):
            return
        kept = (
            f"The last good checkpoint (epoch {self.epoch}) is kept in {store.run_dir(self.cfg)}."
            if self.epoch
            else "No epoch finished, so no checkpoint was written."
        )
        raise TrainingError(
            f"training diverged: a non-finite loss ({values.tolist()}) in epoch {self.epoch + 1}, {where}. "
            f"{kept} Try a lower lr (now {self.cfg.lr}), grad_clip > 0 or a longer kl_warmup_epochs "
            "(a changed parameter trains in a new run folder); check the features for NaN."
        )

    def check_divergence(self, row: dict) -> None:
        """Raise TrainingError when the validation loss grew past the bound set by the untrained model.

        The bound is :data:`DIVERGENCE_FACTOR` times the validation loss before the first step
        (what predicting the mean spectrum costs); nothing of the diverged epoch is saved.
        """
        bound = DIVERGENCE_FACTOR * self.initial_valid
        if not math.isfinite(bound) or row["valid_total"] <= bound:
            return
        kept = (
            f"the last good epoch is {self.best_epoch} (validation loss {self.best_valid:.4g}), kept in "
            f"{store.run_dir(self.cfg) / CHECKPOINT}"
            if self.epoch
            else "no epoch finished, so no checkpoint was written"
        )
        raise TrainingError(
            f"training diverged: the validation loss of epoch {self.epoch + 1} is {row['valid_total']:.4g} nats "
            f"per note, more than {DIVERGENCE_FACTOR:g} times the untrained model's {self.initial_valid:.4g}; "
            f"{kept}. The likely cause is a learning rate too high for this model (lr={self.cfg.lr:g}); try a "
            "value 10 times lower (a changed parameter trains in a new run folder)."
        )

    def end_epoch(self, row: dict) -> None:
        """Record the epoch, track the best weights, step the scheduler, decide on stopping."""
        cfg = self.cfg
        self.epoch += 1
        self.history.append({"epoch": self.epoch, **row})
        if row["valid_total"] < self.best_valid:
            self.best_valid, self.best_epoch = row["valid_total"], self.epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.bad_epochs = 0
        elif self.epoch >= cfg.kl_warmup_epochs:
            self.bad_epochs += 1
        self.sched.step()
        if cfg.patience > 0 and self.bad_epochs >= cfg.patience:
            self.finished, self.stop_reason = True, f"early stopping (no improvement for {cfg.patience} epochs)"
        elif self.epoch >= cfg.epochs:
            self.finished, self.stop_reason = True, "completed"

    def save(self, folder: Path, improved: bool) -> None:
        """Write best.pt (if improved or finished), checkpoint.pt and history.csv, each atomically."""
        if improved or self.finished:
            save(
                folder / BEST,
                {
                    **header(self.cfg, self.shape, self.inputs),
                    "epoch": self.best_epoch,
                    "valid_total": self.best_valid,
                    "model": self.best_state,
                },
            )
            (folder / LATENTS).unlink(missing_ok=True)  # encoded with other weights
        save(folder / CHECKPOINT, self.state())
        store.write_csv(folder / HISTORY, history_frame(self.history))


def optimizer(model: ConvVAE, cfg: Config) -> torch.optim.AdamW:
    """AdamW over the model's parameters (``lr``, ``weight_decay``).

    A learned decoder ``log_sigma`` gets its own group: no weight decay (which would pull σ
    towards 1) and ``SIGMA_LR_SCALE`` x ``lr``, so that σ reaches the size of the reconstruction
    error (about 0.25 in normalised units, log σ ≈ -1.4) in some hundred steps rather than thousands.
    "fixed" models have one group, as before the option existed. Chapter: 03_training.
    """
    if model.log_sigma is None:
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    groups = [
        {"params": network_parameters(model)},
        {"params": [model.log_sigma], "lr": cfg.lr * SIGMA_LR_SCALE, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def network_parameters(model: ConvVAE) -> list[torch.nn.Parameter]:
    """The encoder's and decoder's parameters, without the learned ``log_sigma``; gradient clipping acts on these.

    Chapter: 03_training.
    """
    return [p for name, p in model.named_parameters() if name != "log_sigma"]


def mean_sigma(model: ConvVAE) -> float:
    """The decoder's σ in normalised units, averaged over bands: 1.0 when fixed. Chapter: 03_training."""
    if model.log_sigma is None:
        return 1.0
    return float(model.log_sigma.detach().exp().mean())


def loader_workers(cfg: Config, device: torch.device) -> int:
    """DataLoader processes per rank that read batches ahead on CUDA; none on the CPU.

    On CUDA (with ``cfg.workers`` > 1): ``cfg.workers``, at most :data:`MAX_LOADER_WORKERS` and at
    most this node's cores shared by its ranks. On the CPU the model, not the reading, is the
    bottleneck (the memory map trains within a few per cent of an in-memory tensor), and reading
    in the training process keeps it simple and deterministic. Chapter: 03_training.
    """
    if device.type != "cuda" or cfg.workers <= 1:
        return 0
    per_rank = (os.cpu_count() or 1) // max(1, distributed.from_env().local_world_size)
    return max(0, min(int(cfg.workers), MAX_LOADER_WORKERS, per_rank))


def fit(
    trainer: Trainer,
    features,
    folder: Path,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
) -> None:
    """Train epoch by epoch from ``trainer.epoch`` until finished, checkpointing each epoch.

    Args:
        trainer: a new or restored :class:`Trainer`.
        features: the Features (``rows(split)``, ``logmel[rows]``, ``normalise``); the train and
            valid rows are read batch by batch.
        folder: the run folder (rank 0 writes its files; every rank waits for them after each epoch).
        progress: show a tqdm bar (on rank 0) with live losses.
        callback: called as ``callback(epoch, row)`` on every rank after each epoch's checkpoint is written.
    Raises:
        TrainingError: a non-finite loss or a diverging validation loss (the last good checkpoint is kept).
    Chapter: 03_training.
    """
    cfg, device, ranks = trainer.cfg, trainer.device, trainer.ranks
    n_train, workers = len(features.rows("train")), loader_workers(cfg, device)
    train = loader.train_loader(
        features, features.rows("train"), cfg.batch_size, trainer.gen, device, ranks.rank, ranks.world_size, workers
    )
    valid = loader.batch_loader(
        features, features.rows("valid"), EVAL_BATCH, device, ranks.rank, ranks.world_size, workers
    )
    steps = len(train)
    with (
        _reproducible(device),
        tqdm(
            total=cfg.epochs * steps,
            initial=trainer.epoch * steps,
            unit="batch",
            desc=f"training {folder.name}",
            disable=not (progress and ranks.main),
        ) as bar,
    ):
        if trainer.epoch == 0:
            trainer.initial_valid = trainer.evaluate(valid)["valid_total"]  # no randomness: z = mu, eval mode
        while not trainer.finished:
            start, lr = time.perf_counter(), trainer.opt.param_groups[0]["lr"]
            row = trainer.train_epoch(train, bar)
            train_s = time.perf_counter() - start
            row.update(trainer.evaluate(valid))
            trainer.check_divergence(row)
            row.update(lr=lr, seconds=time.perf_counter() - start, notes_per_s=n_train / train_s)
            best = trainer.best_epoch
            trainer.end_epoch(row)
            if ranks.main:
                trainer.save(folder, improved=trainer.best_epoch != best)
            distributed.barrier()
            distributed.epoch_hooks(folder, trainer.model, trainer.epoch)
            bar.set_postfix(
                epoch=trainer.epoch,
                train=f"{row['train_total']:.1f}",
                valid=f"{row['valid_total']:.1f}",
                kl=f"{row['valid_kl']:.1f}",
            )
            log.info(
                "epoch %d: train %.2f valid %.2f (recon %.2f, kl %.2f), %.0f notes/s",
                trainer.epoch,
                row["train_total"],
                row["valid_total"],
                row["valid_recon"],
                row["valid_kl"],
                row["notes_per_s"],
            )
            if callback is not None:
                callback(trainer.epoch, row)
    log.info(
        "%s: %s after epoch %d; best epoch %d", folder.name, trainer.stop_reason, trainer.epoch, trainer.best_epoch
    )
