"""Tests of training with a learned decoder variance (vaetone.model.train, runs.run_summary): σ follows the error,
is saved, resumes, is reported with β on the calibrated scale, and stays identical across data-parallel ranks."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch._dynamo  # noqa: F401 (DistributedDataParallel imports it: once here, not in each forked rank)
from torch import distributed as dist
from torch import multiprocessing as mp

from vaetone import store
from vaetone.model import distributed
from vaetone.model import runs as model_runs
from vaetone.model import train as training
from vaetone.model.vae import ConvVAE, Objective

from .test_train import N_FRAMES, N_MELS, _numbers, _same_weights, tiny


@pytest.mark.parametrize("variance, shape", [("global", ()), ("per_band", (N_MELS,))])
def test_a_learned_sigma_follows_the_error_is_saved_and_reported(runs, feats, variance, shape):
    cfg = tiny(decoder_variance=variance)
    run = model_runs.trained_model(cfg, feats, progress=False)
    h = run.history
    assert h["sigma"].is_monotonic_decreasing and h["sigma"].iloc[-1] < 0.8  # from σ = 1 down towards the error
    assert h["sigma"].iloc[-1] == pytest.approx(np.sqrt(h["valid_mse"].iloc[-1]), rel=0.1)
    assert run.model.log_sigma.shape == shape
    on_disk = pd.read_csv(run.path / "history.csv", index_col="epoch")
    assert np.allclose(on_disk["sigma"], h["sigma"])
    for name in ("checkpoint.pt", "best.pt"):
        ckpt = torch.load(run.path / name, weights_only=True)
        kept = ckpt["model"]["log_sigma"]
        assert kept.shape == shape and torch.equal(kept, run.model.log_sigma.detach())
    again = model_runs.trained_model(cfg, feats, progress=False)  # loaded, not retrained
    assert torch.equal(again.model.log_sigma, run.model.log_sigma) and _same_weights(again.model, run.model)
    summary = model_runs.run_summary(run)
    assert summary["decoder_variance"] == variance and summary["beta_calibrated"] == 1.0
    assert summary["sigma"] == pytest.approx(float(run.model.log_sigma.detach().exp().mean()))
    assert summary["sigma"] == pytest.approx(h.loc[run.best_epoch, "sigma"])


def test_a_fixed_variance_reports_sigma_one_and_beta_over_the_error(runs, feats):
    run = model_runs.trained_model(tiny(beta=0.5, epochs=2), feats, progress=False)
    assert (run.history["sigma"] == 1.0).all() and run.model.log_sigma is None
    assert "log_sigma" not in torch.load(run.path / "checkpoint.pt", weights_only=True)["model"]
    summary = model_runs.run_summary(run)
    assert summary["decoder_variance"] == "fixed" and summary["sigma"] == 1.0
    assert summary["beta_calibrated"] == pytest.approx(0.5 / summary["valid_mse"])


def test_resuming_keeps_the_learned_sigma_and_its_optimiser_state(runs, feats, monkeypatch):
    cfg = tiny(decoder_variance="per_band")
    whole = model_runs.trained_model(cfg, feats, progress=False)
    monkeypatch.setenv("VAETONE_RUNS", str(runs.parent / "interrupted"))

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_runs.trained_model(cfg, feats, progress=False, callback=stop_after_two)
    ckpt = torch.load(store.run_dir(cfg) / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["optimizer"]["param_groups"]) == 2
    assert not torch.equal(ckpt["model"]["log_sigma"], torch.zeros(N_MELS))
    resumed = model_runs.trained_model(cfg, feats, progress=False)
    pd.testing.assert_frame_equal(_numbers(whole.history), _numbers(resumed.history))
    assert _same_weights(whole.model, resumed.model)


def test_the_optimiser_gives_log_sigma_its_own_rate_and_no_weight_decay():
    cfg = tiny(decoder_variance="global", weight_decay=0.1)
    model = ConvVAE(cfg, N_MELS, N_FRAMES)
    groups = training.optimizer(model, cfg).param_groups
    assert len(groups) == 2 and groups[1]["params"] == [model.log_sigma]
    assert groups[1]["lr"] == pytest.approx(cfg.lr * training.SIGMA_LR_SCALE) and groups[1]["weight_decay"] == 0.0
    assert groups[0]["weight_decay"] == 0.1 and len(groups[0]["params"]) == len(list(model.parameters())) - 1
    fixed = training.optimizer(ConvVAE(tiny(), N_MELS, N_FRAMES), tiny()).param_groups
    assert len(fixed) == 1


def test_the_autoencoder_with_one_learned_sigma_learns_what_the_fixed_one_does(runs, feats):
    """With β = 0 one σ only rescales the loss; clipped, Adam-normalised steps do not see the scale."""
    fixed = model_runs.trained_model(tiny(beta=0.0, epochs=3), feats, progress=False)
    learned = model_runs.trained_model(tiny(beta=0.0, epochs=3, decoder_variance="global"), feats, progress=False)
    assert learned.model.deterministic and learned.history["sigma"].iloc[-1] < 0.9
    assert np.allclose(learned.history["valid_mse"], fixed.history["valid_mse"], rtol=1e-3)
    assert model_runs.run_summary(learned)["beta_calibrated"] == 0.0


def _ddp_steps(rank: int, world: int, init: str, out: str) -> None:
    """Three DDP steps of a per-band VAE and autoencoder on rank-specific data; saves each rank's log σ and digest."""
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        for beta in (1.0, 0.0):
            torch.manual_seed(0)
            cfg = tiny(beta=beta, decoder_variance="per_band")
            model = ConvVAE(cfg, N_MELS, N_FRAMES)
            net, opt = distributed.wrap(Objective(model), torch.device("cpu")), training.optimizer(model, cfg)
            g = torch.Generator().manual_seed(rank)
            for _ in range(3):
                opt.zero_grad()
                net(torch.randn(4, 1, N_MELS, N_FRAMES, generator=g), beta)["total"].backward()
                opt.step()
            distributed.sync_buffers(model)  # BatchNorm statistics, as after every epoch
            state = {"log_sigma": model.log_sigma.detach(), "digest": distributed.state_digest(model)}
            torch.save(state, f"{out}-b{beta:g}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_learn_the_same_sigma_with_and_without_the_kl_term(tmp_path):
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_ddp_steps, args=(2, init, str(tmp_path / "rank")), nprocs=2, join=True, start_method="fork")
    for beta in ("1", "0"):
        a, b = (torch.load(tmp_path / f"rank-b{beta}-{r}.pt", weights_only=True) for r in range(2))
        assert a["digest"] == b["digest"] and torch.equal(a["log_sigma"], b["log_sigma"])
        assert not torch.equal(a["log_sigma"], torch.zeros(N_MELS))  # it trained
