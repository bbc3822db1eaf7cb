"""Data-parallel training under torchrun: ranks, the backend, the process group and the checks.

``torchrun --standalone --nproc_per_node=N -m vaetone train ...`` starts N processes whose
environment holds ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``
(:func:`from_env`). With more than one rank the command line joins a process group
(:func:`process_group`: nccl on CUDA, one GPU per local rank; gloo on the CPU), the first rank of
each node prepares the data while the others wait (:func:`node_first`: the data folder may be
local to a node), and the trainer wraps the model in ``DistributedDataParallel``. Rank 0 alone
reads and writes the run folder: it sends the checkpoint it resumes from to every rank
(:func:`on_main`), so all ranks resume from the same ``checkpoint.pt`` even when the other nodes
cannot see it.

**Batch size.** ``batch_size`` is the global batch: each of the ``W`` ranks computes
``batch_size // W`` notes of every batch and the gradients are averaged, so a run takes the same
steps on any number of ranks (:mod:`vaetone.model.loader`). ``batch_size`` must be divisible by
``W``, and ``W`` may not exceed the train batches of an epoch (:func:`check_batches`).

**Per-rank state.** BatchNorm normalises with each rank's slice; its running statistics are
broadcast from rank 0 after every epoch (:func:`sync_buffers`), so all ranks hold identical
weights. The posterior samples of rank ``r`` in epoch ``e`` come from a generator seeded with
:func:`noise_seed`, so a killed run resumes exactly.

Test hooks (environment variables, read after every epoch's checkpoint):

* ``VAETONE_DDP_CHECK=1``: each rank writes the digest of its weights per epoch to
  ``ddp-check-rank<r>.json`` in the run folder (:func:`state_digest`);
* ``VAETONE_KILL_AFTER_EPOCH=k``: every rank kills itself (SIGKILL) once epoch ``k`` is saved.

Chapter: 03_training.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import distributed as dist
from torch import nn

from vaetone import store
from vaetone.errors import DistributedError, VaetoneError

BACKENDS = ("auto", "nccl", "gloo")
ENV_CHECK = "VAETONE_DDP_CHECK"
ENV_KILL = "VAETONE_KILL_AFTER_EPOCH"
TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits for the others (e.g. while the first rank of its node prepares the data).
A preparation that takes longer: run ``python -m vaetone prepare`` on each node first."""


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the ranks of a torchrun job (all 0 / 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def main(self) -> bool:
        """True on rank 0, the rank that writes files and prints."""
        return self.rank == 0


def from_env(environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks torchrun announces in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``).

    Args:
        environ: the environment (default ``os.environ``).
    Returns:
        :class:`Ranks`; ``Ranks()`` (one process) when ``WORLD_SIZE`` is unset.
    Raises:
        DistributedError: a variable is not an integer or the values contradict each other.
    Chapter: 03_training.
    """
    env = os.environ if environ is None else environ
    names = {"world_size": "WORLD_SIZE", "rank": "RANK", "local_rank": "LOCAL_RANK"}
    if "WORLD_SIZE" not in env:
        return Ranks()
    try:
        values = {k: int(env.get(v, "0")) for k, v in names.items()}
        values["local_world_size"] = int(env.get("LOCAL_WORLD_SIZE", values["world_size"]))
    except ValueError as exc:
        raise DistributedError(
            f"torchrun's environment is not understood ({exc}); start the job with torchrun"
        ) from None
    ranks = Ranks(**values)
    if not (0 <= ranks.rank < ranks.world_size and 0 <= ranks.local_rank < ranks.local_world_size <= ranks.world_size):
        raise DistributedError(
            f"inconsistent torchrun environment: RANK={ranks.rank}, LOCAL_RANK={ranks.local_rank}, "
            f"WORLD_SIZE={ranks.world_size}, LOCAL_WORLD_SIZE={ranks.local_world_size}; start the job with torchrun"
        )
    return ranks


def current() -> Ranks:
    """The ranks of the process group this process has joined (``Ranks()`` when it has joined none).

    Chapter: 03_training.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    env = from_env()
    return Ranks(dist.get_rank(), env.local_rank, dist.get_world_size(), env.local_world_size)


def backend_for(device: torch.device, ranks: Ranks, requested: str = "auto") -> str:
    """The process-group backend for ``device``: nccl on CUDA, gloo on the CPU, or ``requested``.

    Args:
        device: the training device ("cpu" or "cuda").
        ranks: this job's ranks (``local_world_size`` GPUs are needed on CUDA).
        requested: "auto", "nccl" or "gloo".
    Raises:
        DistributedError: the backend is unknown or missing from this torch build, nccl without a
            CUDA device, or fewer CUDA devices than ranks on this node.
    Chapter: 03_training.
    """
    if requested not in BACKENDS:
        raise DistributedError(f"backend {requested!r} is not one of {list(BACKENDS)}")
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed; run without torchrun or install torch")
    backend = ("nccl" if device.type == "cuda" else "gloo") if requested == "auto" else requested
    if backend == "nccl" and (device.type != "cuda" or not torch.cuda.is_available()):
        raise DistributedError(
            "the nccl backend needs CUDA GPUs, but this run trains on the CPU "
            f"({'torch sees no CUDA GPU' if not torch.cuda.is_available() else 'device=cpu'}); "
            "use --backend gloo (or auto) on the CPU"
        )
    available = {"nccl": dist.is_nccl_available, "gloo": dist.is_gloo_available}[backend]()
    if not available:
        raise DistributedError(f"this torch build has no {backend} backend; use --backend auto or the other one")
    if device.type == "cuda" and torch.cuda.device_count() < ranks.local_world_size:
        raise DistributedError(
            f"torchrun started {ranks.local_world_size} ranks on this node but torch sees "
            f"{torch.cuda.device_count()} CUDA device(s); one rank needs one GPU: use "
            f"--nproc_per_node={torch.cuda.device_count()} or fewer (or -p device cpu)"
        )
    return backend


def check_batches(n_train: int, batch_size: int, world_size: int) -> None:
    """Refuse a data-parallel run that cannot share its batches among ``world_size`` ranks.

    Args:
        n_train: notes in the train split (None or 0 skips the count check).
        batch_size: the global batch; world_size: the ranks.
    Raises:
        DistributedError: ``batch_size`` not divisible by ``world_size``, or more ranks than train batches.
    Chapter: 03_training.
    """
    if world_size == 1:
        return
    if batch_size % world_size:
        lower, upper = batch_size // world_size * world_size, math.ceil(batch_size / world_size) * world_size
        raise DistributedError(
            f"batch_size={batch_size} is the global batch, shared by the {world_size} ranks "
            f"(batch_size // {world_size} notes each), so it must be divisible by {world_size}; use -p batch_size "
            f"{upper}" + (f" or {lower}" if lower else "")
        )
    batches = math.ceil(n_train / batch_size) if n_train else None
    if batches is not None and world_size > batches:
        raise DistributedError(
            f"torchrun started {world_size} ranks, but the {n_train} train notes make only {batches} "
            f"batch(es) of batch_size={batch_size} per epoch: more ranks than batches leaves ranks without "
            f"work; use at most {batches} ranks (--nproc_per_node x --nnodes) or a smaller batch_size"
        )


@contextlib.contextmanager
def process_group(ranks: Ranks, backend: str | None, device: torch.device) -> Iterator[None]:
    """Join the torchrun job's process group for the block (nothing to do for one rank).

    On CUDA each rank takes the GPU of its local rank. Chapter: 03_training.
    """
    if ranks.world_size == 1:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing without a process group). Chapter: 03_training."""
    if current().world_size > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


@contextlib.contextmanager
def node_first() -> Iterator[None]:
    """Run the block on the first rank of every node, then on the other ranks (preparing data: they find the cache).

    Chapter: 03_training.
    """
    first = from_env().local_rank == 0
    if not first:
        barrier()
    yield
    if first:
        barrier()


def on_main(compute: Callable[[], object]) -> object:
    """``compute()`` run on rank 0 and sent to every rank; a VaetoneError it raises is raised on every rank.

    Args:
        compute: what only rank 0 may do (read the run folder); its value must pickle.
    Returns:
        Rank 0's value, on every rank (``compute()`` itself without a process group).
    Chapter: 03_training.
    """
    if current().world_size == 1:
        return compute()
    box: list = [None]
    if current().main:
        try:
            box[0] = (True, compute())
        except VaetoneError as exc:
            box[0] = (False, exc)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def all_reduce_sum(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The sum of ``values`` over all ranks (``values`` itself with one rank), on the CPU.

    Args:
        values: any tensor; it is reduced on ``device`` (nccl reduces CUDA tensors only).
    Chapter: 03_training.
    """
    if current().world_size == 1:
        return values
    out = values.to(device).contiguous()
    dist.all_reduce(out)
    return out.cpu()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when this process is one of several ranks, else ``model``.

    The plain autoencoder (β = 0) never uses its log-variance head, so its unused parameters are
    looked for. Chapter: 03_training.
    """
    if current().world_size == 1:
        return model
    ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    unused = bool(getattr(model, "deterministic", False))
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)


def sync_buffers(model: nn.Module) -> None:
    """Broadcast the buffers (BatchNorm running statistics) of rank 0 to every rank. Chapter: 03_training."""
    if current().world_size == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def noise_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of rank ``rank``'s posterior samples in epoch ``epoch`` (0-based) of a data-parallel run.

    Chapter: 03_training.
    """
    return (int(seed) * 1_000_003 + int(epoch) * 1_009 + int(rank)) % 2**63


def state_digest(model: nn.Module) -> str:
    """sha256 of a model's parameters and buffers (names, shapes, dtypes and bytes), in hex.

    Chapter: 03_training.
    """
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def epoch_hooks(folder: Path, model: nn.Module, epoch: int) -> None:
    """The test hooks of the module docstring, run on every rank after epoch ``epoch`` (1-based) is saved.

    Chapter: 03_training.
    """
    if os.environ.get(ENV_CHECK, "") not in ("", "0"):
        rank = current().rank
        path = Path(folder) / f"ddp-check-rank{rank}.json"
        seen = json.loads(path.read_text()) if path.exists() else []
        seen = [s for s in seen if s["epoch"] < epoch]  # a resumed run rewrites the epochs after its checkpoint
        store.write_json(path, seen + [{"epoch": epoch, "rank": rank, "digest": state_digest(model)}])
    if os.environ.get(ENV_KILL, "") == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)
