"""torchrun with 2 gloo ranks on the CPU: identical weights on both ranks after every epoch, a killed run that
resumes from its checkpoint, and a job with more ranks than batches refused clearly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vaetone import config, store
from vaetone.model import checkpoints, distributed

from ..conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3


def _torchrun(tmp_path, runs: str, *params: str, **env: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m vaetone train -f tiny.yaml PARAMS`` with its own runs folder."""
    env = {
        **os.environ,
        "VAETONE_DATA": str(tmp_path / "data"),
        "VAETONE_RUNS": str(tmp_path / runs),
        distributed.ENV_CHECK: "1",
        **env,
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "vaetone", "train", "-f", str(tmp_path / "tiny.yaml"), *params]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def _digests(folder: Path) -> list[list[str]]:
    """Per rank, the digest of its weights after each epoch (written by the VAETONE_DDP_CHECK hook)."""
    files = [json.loads((folder / f"ddp-check-rank{r}.json").read_text()) for r in range(2)]
    return [[s["digest"] for s in sorted(seen, key=lambda s: s["epoch"])] for seen in files]


@pytest.fixture
def job(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "epochs": EPOCHS}))
    return tmp_path


def test_two_gloo_ranks_hold_identical_weights_after_every_epoch_and_a_killed_run_resumes(job, monkeypatch):
    killed = _torchrun(job, "runs", **{distributed.ENV_KILL: "2"})
    assert killed.returncode != 0 and killed.stdout == ""  # killed after epoch 2: no JSON line
    monkeypatch.setenv("VAETONE_RUNS", str(job / "runs"))
    folder = store.run_dir(config.make(**{**TINY, "epochs": EPOCHS}))
    ckpt = torch.load(folder / checkpoints.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 2 and not ckpt["finished"] and ckpt["world_size"] == 2
    before = _digests(folder)
    assert len(before[0]) == 2 and before[0] == before[1]

    resumed = _torchrun(job, "runs")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(resumed.stdout.strip().splitlines()) == 1  # rank 0 alone prints
    report = json.loads(resumed.stdout)
    assert report == {
        "run": str(folder),
        "epochs": EPOCHS,
        "notes_per_s": report["notes_per_s"],
        "world_size": 2,
        "device": "cpu",
    }
    assert report["notes_per_s"] > 0
    rank0, rank1 = _digests(folder)
    assert rank0 == rank1 and len(rank0) == EPOCHS  # both ranks hold the same weights after every epoch
    assert rank0[:2] == before[0] and len(set(rank0)) == EPOCHS  # epochs 1-2 kept, epoch 3 trained on
    final = torch.load(folder / checkpoints.CHECKPOINT, weights_only=True)
    assert final["finished"] and [h["epoch"] for h in final["history"]] == [1, 2, 3]
    assert final["history"][:2] == ckpt["history"]  # resumed from the checkpoint, not retrained


def test_more_ranks_than_train_batches_is_refused_clearly(job):
    out = _torchrun(job, "refused", "-p", "batch_size", "128")  # 96 train notes: one batch for two ranks
    assert out.returncode != 0 and out.stdout == "", out.stdout[-2000:] + out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("vaetone train")]
    assert lines, out.stderr[-3000:]  # every rank refuses; torchrun may stop the slower one before it prints
    assert all(
        "torchrun started 2 ranks, but the 96 train notes make only 1 batch(es) of batch_size=128" in line
        for line in lines
    )
    assert not list((job / "refused").glob("*/checkpoint.pt"))
