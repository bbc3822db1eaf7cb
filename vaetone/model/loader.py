"""Batches of notes for training and encoding, read from the features through a ``DataLoader``.

Nothing here holds a split as one tensor. :class:`NoteBatches` is a map-style dataset whose
item is a whole batch: given the positions of a batch it reads ``features.logmel[rows]`` once
(one fancy-index read of the memory map per batch) and normalises it. The samplers say which
positions make each batch, so the ``DataLoader`` runs with ``batch_size=None`` and no collation:

* :class:`EpochBatches` (training): a permutation of the train rows drawn from a seeded
  ``torch.Generator`` once per epoch, cut into global batches of ``batch_size`` notes. The same
  parameters and seed give the same batches in the same order; the generator's state is part of
  the checkpoint, so a resumed run continues the sequence.
* :func:`eval_batches` (validation, encoding): the rows in order, in batches.

**Data parallel** (``world_size`` ranks under torchrun): the global batch stays ``batch_size``
notes, whatever the number of ranks; rank ``r`` of ``W`` takes the ``r``-th of ``W`` equal
slices of it (``batch_size // W`` notes, so ``batch_size`` must be divisible by ``W``), and
DistributedDataParallel averages the gradients of the slices, which is the gradient of the global
batch. Every rank draws the same permutation (same seed, same generator state), so no
communication is needed to agree on the batches. A last global batch whose size is not a
multiple of ``W`` is topped up with the first notes of the epoch's permutation (as
``torch.utils.data.DistributedSampler`` pads), so every slice has the same size. Validation
batches are dealt out round-robin (batch ``i`` to rank ``i % W``) and the sums are all-reduced.

Chapter: 03_training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class NoteBatches(Dataset):
    """Normalised model input of whole batches of notes, read from ``features.logmel``.

    Args:
        features: a ``vaetone.spectral.features.Features`` (``logmel[rows]`` gives the dB rows as a
            float32 tensor ``(b, n_mels, frames)``; ``normalise`` maps dB to model scale).
        rows: the row positions of the notes this dataset covers, ``(n,)`` ints.
    Chapter: 03_training.
    """

    def __init__(self, features, rows):
        self.features, self.rows = features, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions) -> torch.Tensor:
        """The batch at ``positions`` (indices into ``rows``): ``(b, 1, n_mels, frames)`` float32, normalised."""
        db = self.features.logmel[self.rows[np.asarray(positions, dtype=np.int64)]]
        return torch.as_tensor(self.features.normalise(db), dtype=torch.float32).unsqueeze(1)


class EpochBatches(Sampler):
    """Positions of the training batches of one epoch (this rank's slice of each global batch).

    Args:
        n: notes in the train split.
        batch_size: notes per global batch (all ranks together).
        generator: the seeded generator the epoch's permutation is drawn from (None: in order).
        rank, world_size: this process's rank and the number of ranks (1: no data parallelism).
    Chapter: 03_training.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.n, self.batch_size, self.generator = int(n), int(batch_size), generator
        self.rank, self.world_size = int(rank), int(world_size)

    def __len__(self) -> int:
        """Steps per epoch: global batches, the last one possibly smaller."""
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator is None:
            order = torch.arange(self.n)
        else:
            order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.batch_size):
            yield self.share(order[start : start + self.batch_size], order).tolist()

    def share(self, batch: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (padded from the start of ``order`` to a multiple of the ranks)."""
        if self.world_size == 1:
            return batch
        short = -len(batch) % self.world_size
        if short:
            batch = torch.cat([batch, order[:short]])
        size = len(batch) // self.world_size
        return batch[self.rank * size : (self.rank + 1) * size]


def eval_batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Positions of the evaluation batches of ``n`` notes in order that rank ``rank`` of ``world_size`` computes.

    Batch ``i`` (notes ``i*batch_size ...``) goes to rank ``i % world_size``. Chapter: 03_training.
    """
    starts = range(rank * batch_size, n, world_size * batch_size)
    return [list(range(s, min(s + batch_size, n))) for s in starts]


def _loader(dataset: NoteBatches, sampler, device: torch.device, workers: int) -> DataLoader:
    """A DataLoader of whole batches (``batch_size=None``: the sampler's items are batches).

    It gets a generator of its own: each ``iter()`` of a DataLoader draws a base seed from its
    generator, which would otherwise be torch's global one that also draws the posterior samples.
    ``workers`` > 0 reads batches ahead in that many processes (the memory map travels as its path).
    """
    ahead = {"persistent_workers": True, "prefetch_factor": 4} if workers > 0 else {}
    return DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),
        **ahead,
    )


def train_loader(
    features,
    rows,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
) -> DataLoader:
    """The training batches of one rank: shuffled by ``generator`` once per epoch (see the module docstring).

    Args:
        features: the Features; rows: the train rows ``(n,)``; batch_size: the global batch.
        generator: the trainer's seeded generator; device: where batches go (pinned memory on CUDA).
        rank, world_size: the data-parallel rank and the number of ranks.
        workers: loader processes reading batches ahead (0: read in this process). The order of the
            batches does not depend on them.
    Returns:
        A DataLoader yielding ``(batch_size // world_size, 1, n_mels, frames)`` float32 CPU tensors,
        ``len()`` = steps per epoch. Chapter: 03_training.
    """
    sampler = EpochBatches(len(rows), batch_size, generator, rank, world_size)
    return _loader(NoteBatches(features, rows), sampler, device, workers)


def batch_loader(
    features, rows, batch_size: int, device: torch.device, rank: int = 0, world_size: int = 1, workers: int = 0
) -> DataLoader:
    """The batches of ``rows`` in order (this rank's share of them): validation and encoding.

    Returns:
        A DataLoader yielding ``(<= batch_size, 1, n_mels, frames)`` float32 CPU tensors, normalised.
        Chapter: 03_training.
    """
    batches = eval_batches(len(rows), batch_size, rank, world_size)
    return _loader(NoteBatches(features, rows), batches, device, workers)
