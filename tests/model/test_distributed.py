"""Tests of vaetone.model.distributed without a process group: the environment, the refusals and the helpers."""

import json

import pytest
import torch

from vaetone.errors import DistributedError
from vaetone.model import distributed
from vaetone.model import train as training

from .test_train import N_FRAMES, N_MELS, tiny

TORCHRUN = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}


def test_the_ranks_come_from_torchruns_environment():
    assert distributed.from_env({}) == distributed.Ranks(0, 0, 1, 1)
    ranks = distributed.from_env(TORCHRUN)
    assert ranks == distributed.Ranks(rank=3, local_rank=1, world_size=4, local_world_size=2) and not ranks.main
    assert distributed.from_env({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}).local_world_size == 2
    with pytest.raises(DistributedError, match="RANK=5.*WORLD_SIZE=4"):
        distributed.from_env({**TORCHRUN, "RANK": "5"})
    with pytest.raises(DistributedError, match="not understood"):
        distributed.from_env({**TORCHRUN, "WORLD_SIZE": "four"})
    assert distributed.current() == distributed.Ranks()  # no process group in this test process


def test_the_backend_is_gloo_on_the_cpu_and_nccl_is_refused_without_cuda(monkeypatch):
    cpu, ranks = torch.device("cpu"), distributed.from_env(TORCHRUN)
    assert distributed.backend_for(cpu, ranks) == "gloo"
    assert distributed.backend_for(cpu, ranks, "gloo") == "gloo"
    with pytest.raises(DistributedError, match="nccl backend needs CUDA GPUs.*--backend gloo"):
        distributed.backend_for(cpu, ranks, "nccl")
    with pytest.raises(DistributedError, match="not one of"):
        distributed.backend_for(cpu, ranks, "mpi")


def test_fewer_gpus_than_local_ranks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(distributed.dist, "is_nccl_available", lambda: True)
    ranks = distributed.from_env(TORCHRUN)
    with pytest.raises(DistributedError, match="2 ranks on this node but torch sees 1 CUDA.*nproc_per_node=1"):
        distributed.backend_for(torch.device("cuda"), ranks)
    one = distributed.Ranks(0, 0, 2, 1)  # two nodes of one GPU each
    assert distributed.backend_for(torch.device("cuda"), one) == "nccl"


def test_the_batch_size_is_shared_by_the_ranks_and_each_rank_needs_a_batch():
    distributed.check_batches(96, 16, 1)
    distributed.check_batches(96, 16, 2)
    distributed.check_batches(97, 16, 4)  # 7 batches, the last of one note (padded to 4)
    with pytest.raises(DistributedError, match=r"batch_size=15 .* divisible by 2; use -p batch_size 16 or 14"):
        distributed.check_batches(96, 15, 2)
    with pytest.raises(DistributedError, match=r"3 ranks, but the 40 train notes make only 2 batch"):
        distributed.check_batches(40, 24, 3)
    with pytest.raises(DistributedError, match=r"make only 7 batch\(es\) .* at most 7 ranks"):
        distributed.check_batches(112, 16, 8)
    distributed.check_batches(0, 24, 3)  # the count is not known yet: only the divisibility


def test_a_single_process_gets_the_plain_model_and_needs_no_communication():
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    values = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum(values, torch.device("cpu")) is values
    distributed.sync_buffers(model)
    distributed.barrier()
    with distributed.process_group(distributed.Ranks(), None, torch.device("cpu")):
        assert not torch.distributed.is_initialized()


def test_noise_seeds_differ_per_rank_and_epoch():
    seeds = {distributed.noise_seed(0, e, r) for e in range(5) for r in range(4)}
    assert len(seeds) == 20 and distributed.noise_seed(1, 0, 0) != distributed.noise_seed(0, 0, 0)


def test_the_state_digest_sees_every_weight_and_buffer():
    cfg = tiny()
    a = training.Trainer(cfg, (N_MELS, N_FRAMES), torch.device("cpu")).model
    b = training.Trainer(cfg, (N_MELS, N_FRAMES), torch.device("cpu")).model
    assert distributed.state_digest(a) == distributed.state_digest(b)
    with torch.no_grad():
        b.encoder[0][1].running_mean[0] += 1e-6  # a buffer, not a parameter
    assert distributed.state_digest(a) != distributed.state_digest(b)


def test_the_check_hook_writes_one_digest_per_epoch_and_rewrites_resumed_epochs(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    distributed.epoch_hooks(tmp_path, model, 1)
    assert not list(tmp_path.iterdir())  # off unless asked for
    monkeypatch.setenv(distributed.ENV_CHECK, "1")
    for epoch in (1, 2, 3, 2):  # the last: a run resumed from epoch 1
        distributed.epoch_hooks(tmp_path, model, epoch)
    seen = json.loads((tmp_path / "ddp-check-rank0.json").read_text())
    assert [s["epoch"] for s in seen] == [1, 2] and {s["digest"] for s in seen} == {distributed.state_digest(model)}


def test_without_a_process_group_the_main_rank_computes_alone():
    assert distributed.on_main(lambda: 41 + 1) == 42
    with pytest.raises(ValueError):
        distributed.on_main(lambda: int("x"))
    with distributed.node_first():
        pass
