"""Chunks of the preparation: read a chunk's notes and compute their log-mel, here or in worker processes.

A chunk is a fixed run of notes (:data:`vaetone.spectral.prepare.CHUNK_NOTES`); what it gives
never depends on the process that reads it, so the cache is the same for any ``workers``.

Workers start by *forkserver* (spawn where there is none, as on Windows): a fresh server
process imports this module (torch included) once and forks each worker from itself. Plain fork
of the preparing process is not safe, since that process may already run torch's OpenMP thread
pool (a notebook that trained a model), whose locks a forked child would inherit half-held; the
server has never run a torch operation, so its forks are, and they start in milliseconds instead
of the seconds a spawned interpreter needs to import torch. Each worker computes with one torch
thread; at most two chunks per worker are in flight, so finished chunks never pile up in memory.

Chapter: 01_data (through the preparation).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext

import numpy as np
import torch

from vaetone.config import Config
from vaetone.data.nsynth import read_entry
from vaetone.spectral import melspec

LOGMEL_BATCH = 32
"""Notes whose log-mel a worker computes at once (their audio is all it holds: 8 MB)."""


@dataclass(frozen=True)
class Task:
    """One chunk: its index, its notes as (resolved audio folder, note_str), which are train notes, the settings."""

    index: int
    notes: list
    train: list
    cfg: Config


def chunk_results(tasks: Iterable[Task], n: int, workers: int) -> Iterator[dict]:
    """The :func:`read_chunk` results of ``n`` tasks, in task order: here (``workers`` 1), or in worker processes.

    While the workers start (the first time, the fork server imports torch: seconds), this process
    reads the first chunks itself (:data:`READ_WHILE_WORKERS_START`); then it only hands chunks
    out, at most two per worker in flight. Every chunk is computed the same way wherever it is read.

    Args:
        tasks: the chunks (an iterable, consumed as the results come back); n: how many;
        workers: processes (1: this one, with one torch thread while it reads).
    Yields:
        One result dict per task. Chapter: 01_data.
    """
    tasks = iter(tasks)
    if workers <= 1 or n <= 1:
        with _one_thread():
            yield from map(read_chunk, tasks)
        return
    workers = min(workers, n)
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_one_torch_thread)
    started: list = []  # submitting starts the workers, which waits for the server's imports: in a thread
    starter = threading.Thread(target=_start_workers, args=(pool, workers, started), daemon=True)
    starter.start()
    try:
        with _one_thread():
            while READ_WHILE_WORKERS_START and (starter.is_alive() or not all(f.done() for f in started)):
                task = next(tasks, None)
                if task is None:
                    break
                yield read_chunk(task)
        starter.join()
        pending = deque(pool.submit(read_chunk, t) for t in islice(tasks, 2 * workers))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(read_chunk, t) for t in islice(tasks, 1))
            yield result
    finally:
        starter.join()
        pool.shutdown(wait=True, cancel_futures=True)


READ_WHILE_WORKERS_START = True
"""Whether the preparing process reads chunks itself until its workers are up."""


def _start_workers(pool: ProcessPoolExecutor, workers: int, started: list) -> None:
    """Start the pool's processes (one trivial task each), recording the futures in ``started``."""
    for _ in range(workers):
        started.append(pool.submit(os.getpid))


def _context() -> BaseContext:
    """The forkserver context, preloading this module (spawn where forkserver does not exist)."""
    if "forkserver" not in get_all_start_methods():  # pragma: no cover - Windows
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _one_torch_thread() -> None:
    """A worker's initialiser: one torch thread."""
    torch.set_num_threads(1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Compute with one torch thread (as every worker does, so results never depend on ``workers``), then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def read_chunk(task: Task) -> dict:
    """Read a chunk's notes (skipping broken ones with a reason) and compute their log-mel.

    Args:
        task: the chunk.
    Returns:
        ``{"index", "logmel": (loaded, n_mels, frames) float16 dB, "stats": :func:`moments` of the
        loaded train notes' values, "skipped": [[note_str, reason]],
        "records": {note_str: [size, mtime_ns, sha256 or None]}, "maxrss_kb": this process's peak,
        "pid": this process's id, "cpu_seconds": the CPU time the chunk took}``.
        Chapter: 01_data.
    """
    cpu = time.process_time()
    blocks, batch, skipped, records, train = [], [], [], {}, []
    for (audio_dir, name), is_train in zip(task.notes, task.train):
        y, reason, record = read_entry(audio_dir, name)
        if record["size"] is None:  # not read: its stat tells later whether it changed
            records[name] = [*file_stat(os.path.join(audio_dir, f"{name}.wav")), None]
        else:
            records[name] = [record["size"], record["mtime_ns"], record["sha256"]]
        if reason is None:
            batch.append(y)
            train.append(is_train)
        else:
            skipped.append([name, reason])
        if len(batch) == LOGMEL_BATCH:
            blocks.append(_log_mel(batch, task.cfg))
            batch = []
    if batch:
        blocks.append(_log_mel(batch, task.cfg))
    logmel = np.concatenate(blocks) if blocks else np.zeros((0, task.cfg.n_mels, melspec.n_frames(task.cfg)), "<f2")
    return {
        "index": task.index,
        "logmel": logmel,
        "stats": moments(logmel[np.asarray(train, bool)]),
        "skipped": skipped,
        "records": records,
        "maxrss_kb": maxrss_kb(),
        "pid": os.getpid(),
        "cpu_seconds": time.process_time() - cpu,
    }


def _log_mel(batch: list[np.ndarray], cfg: Config) -> np.ndarray:
    """Log-mel (dB) of a few notes on the CPU, as float16 (n, n_mels, frames)."""
    db = melspec.log_mel(np.stack(batch), cfg, device="cpu", batch_size=len(batch), progress=False)
    return db.numpy().astype("<f2")


def file_stat(file: str | os.PathLike) -> tuple[int | None, int | None]:
    """(size in bytes, mtime_ns) of a file, or (None, None). Chapter: 01_data."""
    try:
        st = os.stat(file)
    except (OSError, ValueError):
        return None, None
    return st.st_size, st.st_mtime_ns


def maxrss_kb() -> int:
    """This process's peak resident memory so far, in kB (0 where unknown). Chapter: 01_data."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def moments(values: np.ndarray) -> list:
    """[count, mean, sum of squared deviations] of some values, in float64 (a chunk's train statistics).

    Chapter: 01_data.
    """
    x = values.astype(np.float64).ravel()
    if x.size == 0:
        return [0, 0.0, 0.0]
    mean = float(x.mean())
    return [int(x.size), mean, float(np.square(x - mean).sum())]


def combine(chunks: Iterable[list]) -> tuple[int, float, float]:
    """Chan's pairwise update of (count, mean, M2) over chunks' :func:`moments`, in their order.

    Returns:
        (count, mean, M2); the unbiased variance is M2 / (count - 1). Chapter: 01_data.
    """
    n, mean, m2 = 0, 0.0, 0.0
    for k, mu, s in chunks:
        if k == 0:
            continue
        delta, total = mu - mean, n + k
        mean, m2, n = mean + delta * k / total, m2 + s + delta * delta * n * k / total, total
    return n, mean, m2
