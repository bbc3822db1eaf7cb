"""Tests of vaetone.model.loader: whole batches read once from the features, seeded order, rank slices."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone.model import loader
from vaetone.model import runs as model_runs
from vaetone.model import train as training

from .test_train import N_FRAMES, N_MELS, _same_weights, synthetic_features, tiny


class CountingRows:
    """``logmel`` stand-in: rows of a float16 memory map as float32 tensors, counting the reads."""

    def __init__(self, path, values: np.ndarray):
        self.map = np.memmap(path, dtype=np.float16, mode="w+", shape=values.shape)
        self.map[:] = values
        self.map.flush()
        self.shape, self.reads = values.shape, []

    def __getitem__(self, rows):
        self.reads.append(np.asarray(rows).copy())
        return torch.from_numpy(np.asarray(self.map[rows], dtype=np.float32))


@dataclasses.dataclass
class DbFeatures:
    """Features in dB with a scalar normalisation, as vaetone.spectral.features.Features has them."""

    meta: pd.DataFrame
    logmel: object
    mean: float = -40.0
    std: float = 10.0

    def rows(self, split=None):
        if split is None:
            return np.arange(len(self.meta))
        return np.flatnonzero((self.meta["split"] == split).to_numpy())

    def normalise(self, db):
        return (db - self.mean) / self.std


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETONE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAETONE_DATA", str(tmp_path / "data"))
    torch.set_num_threads(1)
    return tmp_path


@pytest.fixture(scope="module")
def db_values():
    """The synthetic notes in dB, rounded to float16 (what the memory map stores)."""
    feats = synthetic_features()
    db = (feats.data[:, 0] * 10.0 - 40.0).numpy().astype(np.float16)
    return feats.meta, db


def test_a_batch_is_one_read_of_its_rows_normalised(tmp_path, db_values):
    meta, db = db_values
    rows = CountingRows(tmp_path / "logmel.f16", db)
    feats = DbFeatures(meta, rows)
    train = feats.rows("train")
    data = loader.NoteBatches(feats, train)
    batch = data[[5, 0, 7]]
    assert batch.shape == (3, 1, N_MELS, N_FRAMES) and batch.dtype == torch.float32
    assert [r.tolist() for r in rows.reads] == [train[[5, 0, 7]].tolist()]
    want = (db[train[[5, 0, 7]]].astype(np.float32) + 40.0) / 10.0
    assert np.allclose(batch[:, 0].numpy(), want, atol=1e-6)


def test_epoch_batches_are_a_seeded_permutation_in_global_batches():
    gen = torch.Generator().manual_seed(3)
    batches = list(loader.EpochBatches(37, 16, gen))
    assert [len(b) for b in batches] == [16, 16, 5]
    assert sorted(sum(batches, [])) == list(range(37))
    again = list(loader.EpochBatches(37, 16, torch.Generator().manual_seed(3)))
    assert again == batches
    assert list(loader.EpochBatches(37, 16, gen)) != batches  # the next epoch draws another order
    assert list(loader.EpochBatches(5, 2, None)) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("world", [2, 3, 4])
def test_the_ranks_slices_make_each_global_batch_padded_from_the_epochs_start(world):
    n, bs = 45, 12
    per_rank = [list(loader.EpochBatches(n, bs, torch.Generator().manual_seed(1), r, world)) for r in range(world)]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1)).tolist()
    assert all(len(p) == 4 for p in per_rank)  # every rank takes the same steps
    for step in range(4):
        glued = sum((per_rank[r][step] for r in range(world)), [])
        batch = order[step * bs : (step + 1) * bs]
        pad = -len(batch) % world
        assert glued == batch + order[:pad]
        assert len({len(per_rank[r][step]) for r in range(world)}) == 1


def test_evaluation_batches_are_dealt_round_robin_and_cover_every_note_once():
    assert loader.eval_batches(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    shares = [loader.eval_batches(10, 3, r, 2) for r in range(2)]
    assert shares == [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9]]]
    assert loader.eval_batches(2, 3, 1, 2) == []


def test_iterating_a_loader_leaves_the_global_random_stream_alone(db_values, tmp_path):
    meta, db = db_values
    feats = DbFeatures(meta, torch.from_numpy(db.astype(np.float32)))
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    batches = loader.train_loader(feats, feats.rows("train"), 16, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert len(list(batches)) == len(batches) == 6
    list(loader.batch_loader(feats, feats.rows("valid"), 8, torch.device("cpu")))
    assert torch.equal(torch.rand(3), want)  # the posterior samples come from this stream


def test_training_from_a_float16_memory_map_equals_training_from_the_same_values_in_memory(runs, db_values):
    meta, db = db_values
    mapped = DbFeatures(meta, CountingRows(runs / "logmel.f16", db))
    in_memory = DbFeatures(meta, torch.from_numpy(db.astype(np.float32)))
    a = model_runs.trained_model(tiny(epochs=2), mapped, progress=False)
    train = set(mapped.rows("train"))
    train_reads = [r for r in mapped.logmel.reads if set(r) <= train]
    assert len(train_reads) == 2 * 6 and {len(r) for r in train_reads} == {16}  # 96 notes: 6 batches per epoch
    assert all(set(r) <= set(mapped.rows("valid")) for r in mapped.logmel.reads if set(r) - train)
    store_b = runs / "other"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAETONE_RUNS", str(store_b))
        b = model_runs.trained_model(tiny(epochs=2), in_memory, progress=False)
    assert _same_weights(a.model, b.model)
    assert np.allclose(a.history["valid_total"], b.history["valid_total"], rtol=0, atol=0)


def test_the_loader_epoch_equals_the_in_memory_reference_loop(runs):
    """One epoch through the DataLoader is the epoch of a plain loop over one in-memory tensor (the former trainer)."""
    feats = synthetic_features()
    cfg = tiny(epochs=1, kl_warmup_epochs=0)
    trainer = training.Trainer(cfg, (N_MELS, N_FRAMES), torch.device("cpu"))
    batches = loader.train_loader(feats, feats.rows("train"), cfg.batch_size, trainer.gen, torch.device("cpu"))

    class Bar:
        def update(self, n):
            pass

    with training._reproducible(torch.device("cpu")):
        got = trainer.train_epoch(batches, Bar())
    reference = training.Trainer(cfg, (N_MELS, N_FRAMES), torch.device("cpu"))  # re-seeds the global stream
    x = feats.x("train")
    order = torch.randperm(len(x), generator=reference.gen)
    model, total = reference.model.train(), 0.0
    with training._reproducible(torch.device("cpu")):
        for i in range(0, len(x), cfg.batch_size):
            xb = x[order[i : i + cfg.batch_size]]
            recon, mu, logvar = model(xb)
            terms = training.loss_terms(recon, xb, mu, logvar, cfg.beta, cfg.free_bits)
            reference.opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            reference.opt.step()
            total += float((terms["recon"] + cfg.beta * terms["kl"]).detach()) * len(xb)
    assert _same_weights(trainer.model, reference.model)
    assert got["train_total"] == pytest.approx(total / len(x), rel=1e-5)


def _real_features(tmp_path, meta, db, on_disk: bool):
    """vaetone's own Features on a ``logmel.npy`` memory map (on_disk) or on the same values in memory."""
    from vaetone.spectral.features import Features, LogmelArray

    if on_disk:
        np.save(tmp_path / "logmel.npy", db)
        logmel = LogmelArray.open(tmp_path / "logmel.npy")
    else:
        logmel = torch.from_numpy(db.astype(np.float32))
    return Features(meta, logmel, -40.0, 10.0, "d" * 64)


def test_loader_processes_give_the_batches_of_the_loading_process(tmp_path, db_values):
    meta, db = db_values
    feats = _real_features(tmp_path, meta, db, on_disk=True)
    rows = feats.rows("train")
    cpu = torch.device("cpu")
    here = list(loader.train_loader(feats, rows, 16, torch.Generator().manual_seed(4), cpu))
    ahead = list(loader.train_loader(feats, rows, 16, torch.Generator().manual_seed(4), cpu, workers=2))
    assert len(here) == len(ahead) == 6 and all(torch.equal(a, b) for a, b in zip(here, ahead))
    cuda = dataclasses.replace(tiny(), workers=3)
    assert training.loader_workers(cuda, cpu) == 0
    assert training.loader_workers(dataclasses.replace(cuda, workers=1), torch.device("cuda")) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("os.cpu_count", lambda: 16)
        assert training.loader_workers(cuda, torch.device("cuda")) == 3
        assert training.loader_workers(dataclasses.replace(cuda, workers=16), torch.device("cuda")) == 8
        mp.setenv("WORLD_SIZE", "8")
        mp.setenv("LOCAL_WORLD_SIZE", "8")
        assert training.loader_workers(cuda, torch.device("cuda")) == 2  # 16 cores shared by 8 ranks


def test_the_memory_mapped_features_train_the_weights_of_the_in_memory_ones(runs, db_values):
    meta, db = db_values
    mapped = _real_features(runs, meta, db, on_disk=True)
    a = model_runs.trained_model(tiny(epochs=2), mapped, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAETONE_RUNS", str(runs / "other"))
        b = model_runs.trained_model(tiny(epochs=2), _real_features(runs, meta, db, on_disk=False), progress=False)
    assert _same_weights(a.model, b.model)
    lat = model_runs.latents(tiny(epochs=2), a, mapped)
    assert np.array_equal(lat.mu, model_runs.latents(tiny(epochs=2), b, mapped).mu)
    assert np.allclose(lat.mu, a.encode(mapped.x())[0].numpy(), atol=1e-6)
