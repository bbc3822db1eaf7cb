"""Training the ConvVAE, caching the trained run, and encoding every note (chapter 03).

A run lives in ``store.run_dir(cfg)`` (``runs/<dataset>-z<d>-b<β>-s<seed>-<hash>/``), keyed by
every data, feature, model and training parameter plus the code versions:

* ``checkpoint.pt``: written atomically after every epoch: model, optimiser, scheduler, RNG
  states, the best weights so far, the configuration, the code versions and the history.
  An interrupted run (Ctrl-C, a killed process) resumes from it and loses at most one epoch;
  a finished run just loads.
* ``best.pt``: the weights with the lowest validation loss (what :func:`trained_model` returns).
* ``history.csv``: one row per epoch (see :func:`trained_model`).

Both .pt files record the inputs the run was trained on (:func:`~vaetone.model.inputs.input_record`:
the features' dataset digest and normalisation); a run whose record differs from the current
features is refused rather than reused (a file without the record, of an older version, is accepted).

Recipe: AdamW (``lr``, ``weight_decay``); cosine annealing of the learning rate over
``cfg.epochs`` epochs down to lr/100, stepped once per epoch; gradient-norm clipping at
``grad_clip`` (0: off); the KL weight rises linearly per batch from 0 to β over
``kl_warmup_epochs``; early stopping when the validation loss (recon + β·KL, with z = mu) has not
improved for ``patience`` epochs after the warm-up (0: off). On the CPU training is seeded and
deterministic (same cfg ⇒ same weights and history; ``torch.use_deterministic_algorithms`` inside
training, batches from a seeded generator, no workers). On CUDA it uses bf16 autocast,
channels_last and cuDNN autotuning, and is fast rather than bit-reproducible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from vaetone import store
from vaetone.config import Config, stage_params
from vaetone.errors import CheckpointError, DataError, TrainingError
from vaetone.model.inputs import input_changes
from vaetone.model.vae import ConvVAE, loss_terms
from vaetone.progress import tqdm

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
HISTORY = "history.csv"
LATENTS = "latents.npz"
"""The cached posterior means and standard deviations of every note (written by runs.latents)."""
FORMAT = 1
"""Layout version of checkpoint.pt / best.pt."""
EVAL_BATCH = 256
DIVERGENCE_FACTOR = 3.0
"""A validation loss above this multiple of the untrained model's is divergence, not learning."""


# ---------------------------------------------------------------- checkpoints


log = logging.getLogger(__name__)


def _header(cfg: Config, shape: tuple[int, int], inputs: dict | None = None) -> dict:
    """What identifies a run in its files: parameters, code versions, input size and inputs (``input_record``)."""
    return {
        "format": FORMAT,
        "run_id": store.run_id(cfg),
        "params": stage_params(cfg, "train"),
        "code_versions": dict(store.CODE_VERSIONS),
        "input_shape": [int(s) for s in shape],
        "inputs": inputs,
    }


def _save(path: Path, obj: dict) -> None:
    """torch.save atomically (tensors, dicts, lists, numbers and strings only)."""
    with store.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_checkpoint(path: Path, cfg: Config, shape: tuple[int, int], inputs: dict | None = None) -> dict:
    """Load ``checkpoint.pt`` or ``best.pt`` with ``weights_only=True`` and check it belongs to ``cfg``.

    Args:
        path: the file; cfg: the configuration; shape: (n_mels, frames) of the features;
        inputs: :func:`~vaetone.model.inputs.input_record` of the current features (None: not checked).
    Raises:
        CheckpointError: the file is unreadable, not a vaetone checkpoint, or from another code
            version, configuration, input size or input data (dataset digest, normalisation);
            the message names the mismatch and what to delete.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on corrupt files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: "
            f"{str(exc)[:200]}); delete this file to retrain the run (a damaged best.pt is rebuilt from "
            "checkpoint.pt by itself)"
        ) from exc
    want = _header(cfg, shape)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a vaetone checkpoint of format {FORMAT}; delete it to retrain")
    if ckpt.get("code_versions") != want["code_versions"]:
        raise CheckpointError(
            f"checkpoint {path} was written by code versions {ckpt.get('code_versions')}, "
            f"this code is {want['code_versions']}; delete it to retrain"
        )
    theirs = ckpt.get("params", {})
    diff = [
        f"{k}={theirs.get(k)!r} (this configuration: {v!r})" for k, v in want["params"].items() if theirs.get(k) != v
    ]
    if diff:
        raise CheckpointError(
            f"checkpoint {path} is from another configuration: "
            + "; ".join(diff)
            + ". It does not belong in this run folder; move or delete it."
        )
    if ckpt.get("input_shape") != want["input_shape"]:
        raise CheckpointError(
            f"checkpoint {path} was trained on inputs {ckpt.get('input_shape')} "
            f"(n_mels, frames), the features are {want['input_shape']}; delete it to retrain"
        )
    changes = input_changes(ckpt.get("inputs"), inputs)
    if changes:
        raise CheckpointError(
            f"run {path.parent} was trained on other features than this configuration's now: "
            + "; ".join(changes)
            + ". The notes (their audio or examples.json) changed since it was trained. To retrain it on the "
            f"current features, delete {path.parent / CHECKPOINT} and {path.parent / BEST}."
        )
    return ckpt


def _load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    """``model.load_state_dict`` with a CheckpointError on any mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"weights in {path} do not fit the model: {str(exc)[:300]}") from exc


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


class _Trainer:
    """Model, optimiser, scheduler, RNG and bookkeeping of one run; (de)serialisable."""

    def __init__(self, cfg: Config, shape: tuple[int, int], device: torch.device, inputs: dict | None = None):
        self.cfg, self.shape, self.device, self.inputs = cfg, shape, device, inputs
        torch.manual_seed(cfg.seed)
        self.model = ConvVAE(cfg, *shape).to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
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
            **_header(self.cfg, self.shape, self.inputs),
            "config": dataclasses.asdict(self.cfg),
            "torch_version": str(torch.__version__),
            "device": self.device.type,
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
        _load_weights(self.model, ckpt["model"], path)
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

    def train_epoch(self, x: torch.Tensor, bar) -> dict:
        """One pass over the training tensor (on ``device``) in seeded random batches."""
        cfg, model = self.cfg, self.model
        model.train()
        n, bs = len(x), cfg.batch_size
        steps = math.ceil(n / bs)
        order = torch.randperm(n, generator=self.gen).to(x.device)
        sums = torch.zeros(3, device=self.device)
        for i in range(steps):
            xb = x[order[i * bs : (i + 1) * bs]]
            w = self.kl_weight(self.epoch * steps + i, steps)
            with self._autocast():
                recon, mu, logvar = model(xb)
            terms = loss_terms(recon, xb, mu, logvar, cfg.beta * w, cfg.free_bits)
            self.opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.opt.step()
            rec, kl = terms["recon"].detach(), terms["kl"].detach()
            sums += torch.stack([rec + cfg.beta * kl, rec, kl]) * len(xb)
            if self.device.type == "cpu" or i % 20 == 19 or i == steps - 1:
                self._check_finite(sums, f"batch {i + 1} of {steps}")
            bar.update(1)
        s = (sums / n).tolist()
        return {"train_total": s[0], "train_recon": s[1], "train_kl": s[2], "kl_weight": w}

    def evaluate(self, x: torch.Tensor) -> dict:
        """Validation losses with z = mu, full β, true KL (nats per note) and KL per dimension."""
        self.model.eval()
        sums, kl_dims, sq = torch.zeros(2), torch.zeros(self.model.latent_dim), 0.0
        with torch.no_grad():
            for i in range(0, len(x), EVAL_BATCH):
                xb = x[i : i + EVAL_BATCH]
                with self._autocast():
                    recon, mu, logvar = self.model(xb)
                t = loss_terms(recon, xb, mu, logvar, self.cfg.beta)
                sums += torch.stack([t["recon"], t["kl"]]).cpu() * len(xb)
                kl_dims += t["kl_per_dim"].cpu() * len(xb)
                sq += float((recon.float() - xb).pow(2).sum())
        rec, kl = (sums / len(x)).tolist()
        row = {"valid_total": rec + self.cfg.beta * kl, "valid_recon": rec, "valid_kl": kl, "valid_mse": sq / x.numel()}
        row.update({f"valid_kl_d{j:02d}": v for j, v in enumerate((kl_dims / len(x)).tolist())})
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
            _save(
                folder / BEST,
                {
                    **_header(self.cfg, self.shape, self.inputs),
                    "epoch": self.best_epoch,
                    "valid_total": self.best_valid,
                    "model": self.best_state,
                },
            )
            (folder / LATENTS).unlink(missing_ok=True)  # encoded with other weights
        _save(folder / CHECKPOINT, self.state())
        store.write_csv(folder / HISTORY, history_frame(self.history))


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The history records as a DataFrame indexed by epoch."""
    return pd.DataFrame(history).set_index("epoch") if history else pd.DataFrame()


def _splits(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation tensors; the train split stands in for an empty validation split."""
    present = set(features.meta["split"])
    if "train" not in present:
        raise DataError(
            "the train split is empty: no notes to train on; widen the data parameters "
            "(families, pitch range, max_instruments)"
        )
    x_train = features.x("train").float()
    if "valid" not in present:
        log.warning("the valid split is empty; early stopping and best weights use the train split")
        return x_train, x_train
    return x_train, features.x("valid").float()


def _fit(
    trainer: _Trainer,
    x_train: torch.Tensor,
    x_valid: torch.Tensor,
    folder: Path,
    progress: bool,
    callback: Callable | None,
) -> None:
    """Train epoch by epoch from ``trainer.epoch`` until finished, checkpointing each epoch."""
    cfg, device = trainer.cfg, trainer.device
    steps = math.ceil(len(x_train) / cfg.batch_size)
    x_train, x_valid = x_train.to(device), x_valid.to(device)
    with (
        _reproducible(device),
        tqdm(
            total=cfg.epochs * steps,
            initial=trainer.epoch * steps,
            unit="batch",
            desc=f"training {folder.name}",
            disable=not progress,
        ) as bar,
    ):
        if trainer.epoch == 0:
            trainer.initial_valid = trainer.evaluate(x_valid)["valid_total"]  # no randomness: z = mu, eval mode
        while not trainer.finished:
            start, lr = time.perf_counter(), trainer.opt.param_groups[0]["lr"]
            row = trainer.train_epoch(x_train, bar)
            train_s = time.perf_counter() - start
            row.update(trainer.evaluate(x_valid))
            trainer.check_divergence(row)
            row.update(lr=lr, seconds=time.perf_counter() - start, notes_per_s=len(x_train) / train_s)
            best = trainer.best_epoch
            trainer.end_epoch(row)
            trainer.save(folder, improved=trainer.best_epoch != best)
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
