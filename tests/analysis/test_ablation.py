"""Tests of vaetone.analysis.ablation.methods: a decoder of z_0 alone, and Captum's FeatureAblation as a cross-check."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone.analysis import ablation as abl
from vaetone.analysis.metrics import logmel_mse
from vaetone.errors import ConfigError, VaetoneError

N, D, N_MELS, N_FRAMES = 30, 4, 8, 6


@pytest.fixture(scope="module")
def case():
    """A nonlinear decoder of z_0 only, latents, and references = reconstructions + noise."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(N_MELS * N_FRAMES, generator=gen)

    def decode(z):
        return torch.tanh(z[:, :1] * w[None, :] + 0.3).reshape(len(z), 1, N_MELS, N_FRAMES)

    z = torch.randn(N, D, generator=gen) + 0.5
    ref = decode(z)[:, 0] + 0.05 * torch.randn(N, N_MELS, N_FRAMES, generator=gen)
    return decode, z, ref


def test_baseline_values():
    z = torch.arange(12.0).reshape(4, 3)
    assert torch.equal(abl.baseline_values(z, "zero"), torch.zeros(4, 3))
    assert torch.allclose(abl.baseline_values(z, "mean"), z.mean(0).expand(4, 3))
    p1, p2 = abl.baseline_values(z, "permute", seed=3), abl.baseline_values(z, "permute", seed=3)
    assert torch.equal(p1, p2)
    assert all(sorted(p1[:, j].tolist()) == z[:, j].tolist() for j in range(3))
    assert not torch.equal(
        abl.baseline_values(torch.randn(50, 3), "permute", seed=0),
        abl.baseline_values(torch.randn(50, 3), "permute", seed=1),
    )
    with pytest.raises(ConfigError):
        abl.baseline_values(z, "median")
    with pytest.raises(ConfigError, match="reference notes"):
        abl.baseline_values(z, "mean", reference=torch.zeros(5, 2))
    ablated = abl.ablate(z, [1], abl.baseline_values(z, "zero"))
    assert torch.equal(ablated[:, 1], torch.zeros(4)) and torch.equal(ablated[:, [0, 2]], z[:, [0, 2]])


def test_mean_and_permute_baselines_from_reference_notes():
    """The "mean" and "permute" baselines read the reference notes (e.g. the training notes), not the ablated ones."""
    z = torch.zeros(5, 2)
    reference = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    assert torch.equal(abl.baseline_values(z, "mean", reference=reference), torch.tensor([[2.0, 20.0]] * 5))
    drawn = abl.baseline_values(z, "permute", seed=1, reference=reference)
    assert drawn.shape == (5, 2) and torch.equal(drawn, abl.baseline_values(z, "permute", seed=1, reference=reference))
    for j in range(2):  # a permutation of the reference, cycled to 5 notes: each value at least once
        assert sorted(drawn[:3, j].tolist()) == reference[:, j].tolist() and torch.equal(drawn[3:, j], drawn[:2, j])
    assert torch.equal(abl.baseline_values(z, "zero", reference=reference), z)
    many = torch.randn(7, 3)  # without a reference: the ablated notes themselves, as before
    assert torch.equal(abl.baseline_values(many, "permute", seed=4), abl.baseline_values(many, "permute", 4, many))


@pytest.mark.parametrize("baseline", ["zero", "mean", "permute"])
def test_ablation_singles_out_dimension_0(case, baseline):
    decode, z, ref = case
    eff = abl.ablation_effects(decode, z, ref, baseline=baseline, seed=0, batch_size=7)
    assert set(eff.columns) == {"note", "dim", "metric", "base", "ablated", "increase", "degradation"}
    assert len(eff) == N * D
    mean = eff.groupby("dim")["increase"].mean()
    assert mean[0] > 0.05 and np.all(eff.query("dim > 0")["increase"] == 0)
    assert abl.importance_order(eff)[0] == 0


@pytest.mark.parametrize("baseline", ["zero", "mean", "permute"])
@pytest.mark.parametrize("per_eval", [1, 3])
def test_package_ablation_equals_captum(case, baseline, per_eval):
    decode, z, ref = case
    ours = abl.ablation_matrix(abl.ablation_effects(decode, z, ref, baseline=baseline, seed=2))
    theirs = abl.captum_ablation(decode, z, ref, baseline=baseline, seed=2, perturbations_per_eval=per_eval)
    assert theirs.shape == (N, D)
    np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-10, atol=1e-12)
    assert np.abs(theirs[:, 0]).max() > 0.01


def test_several_metrics_and_higher_is_better(case):
    decode, z, ref = case

    def accuracy(r, e):  # higher is better
        return 1.0 - logmel_mse(r, e)

    eff = abl.ablation_effects(
        decode,
        z,
        ref,
        metrics={"mse": logmel_mse, "acc": accuracy},
        higher_is_better=["acc"],
        index=[f"n{i}" for i in range(N)],
    )
    acc = eff.query("metric == 'acc' and dim == 0")
    assert (acc["increase"] <= 1e-12).all() and (acc["degradation"] >= -1e-12).all()
    mse = eff.query("metric == 'mse' and dim == 0")
    np.testing.assert_allclose(acc["degradation"].to_numpy(), mse["increase"].to_numpy(), atol=1e-12)
    assert eff["note"].iloc[0] == "n0"


def test_summarise_ablation_overall_and_per_group(case):
    decode, z, ref = case
    eff = abl.ablation_effects(decode, z, ref)
    family = np.array(["brass", "reed"] * (N // 2))
    pitch = np.arange(40, 40 + N)
    ranges = abl.pitch_ranges(pitch, width=12)
    assert ranges[0] == "40-51" and ranges[12] == "52-63" and ranges[-1] == "64-75"
    summ = abl.summarise_ablation(eff, {"family": family, "pitch range": ranges})
    assert set(summ["grouping"]) == {"overall", "family", "pitch range"}
    overall = summ.query("grouping == 'overall'").set_index("dim")
    assert overall.loc[0, "increase_mean"] == pytest.approx(eff.query("dim == 0")["increase"].mean())
    assert overall.loc[0, "n"] == N
    brass = summ.query("grouping == 'family' and group == 'brass' and dim == 0")["increase_mean"].item()
    expected = eff.query("dim == 0")["increase"].to_numpy()[family == "brass"].mean()
    assert brass == pytest.approx(expected)
    assert summ.query("dim > 0")["increase_mean"].abs().max() == 0
    with pytest.raises(VaetoneError):
        abl.summarise_ablation(eff, {"family": family[:-1]})


def test_cumulative_ablation(case):
    decode, z, ref = case
    base = abl.reconstruction_errors(decode, z, ref)["logmel_mse"].mean()
    cum = abl.cumulative_ablation(decode, z, ref, {"good": [0, 1, 2, 3], "bad": [3, 2, 1, 0]})
    good = cum.query("order == 'good'").set_index("k")["error_mean"]
    bad = cum.query("order == 'bad'").set_index("k")["error_mean"]
    assert good[0] > base + 0.05 and np.allclose(good[1:], base)
    assert np.allclose(bad[:D], good[0]) and bad[D] == pytest.approx(base)
    assert set(cum["order"]) == {"good", "bad"} and cum.query("order == 'bad'")["k"].tolist() == list(range(D + 1))
    assert cum.query("order == 'good' and k == 2")["kept"].item() == "0,1"
    with pytest.raises(ConfigError):
        abl.cumulative_ablation(decode, z, ref, {"broken": [0, 0, 1, 2]})


def test_kept_errors_per_note_and_their_curves(case):
    decode, z, ref = case
    base = abl.reconstruction_errors(decode, z, ref)["logmel_mse"].to_numpy()
    errors = abl.kept_errors(decode, z, ref, [0, 1, 2, 3])
    assert list(errors.columns) == [0, 1, 2, 3, 4] and errors.shape == (N, D + 1)
    assert np.allclose(errors[1], base) and np.allclose(errors[4], base) and errors[0].mean() > base.mean() + 0.05
    some = abl.kept_errors(decode, z, ref, [3, 2, 1, 0], ks=[0, 3])
    assert list(some.columns) == [0, 3] and np.allclose(some[3], errors[0])  # z_0 is still ablated
    table = abl.cumulative_table({"good": errors}, {"good": [0, 1, 2, 3]})
    assert table["error_mean"].tolist() == pytest.approx(errors.mean().tolist())
    assert table["error_sem"].tolist() == pytest.approx(errors.sem().tolist())
    assert table["kept"].tolist() == ["", "0", "0,1", "0,1,2", "0,1,2,3"]
    with pytest.raises(ConfigError, match="every dimension"):
        abl.kept_errors(decode, z, ref, [0, 1, 2])


def test_shape_mismatch_is_a_clear_error(case):
    decode, z, ref = case
    with pytest.raises(VaetoneError, match="differs"):
        abl.reconstruction_errors(decode, z, ref[:, :4])


def test_a_metric_returning_a_frame_gives_one_metric_per_column(case):
    decode, z, ref = case

    def parts(r, e):  # the error of the low and of the high mel bins, as two columns
        return pd.DataFrame({"low": logmel_mse(r[:, :4], e[:, :4]), "high": logmel_mse(r[:, 4:], e[:, 4:])})

    eff = abl.ablation_effects(decode, z, ref, {"mse": logmel_mse, "parts": parts}, baseline="zero")
    assert set(eff["metric"]) == {"mse", "parts:low", "parts:high"}
    inc = {m: abl.ablation_matrix(eff, m).to_numpy() for m in ("mse", "parts:low", "parts:high")}
    np.testing.assert_allclose((inc["parts:low"] + inc["parts:high"]) / 2, inc["mse"], atol=1e-12)
    assert np.all(inc["parts:low"][:, 1:] == 0) and np.abs(inc["parts:low"][:, 0]).max() > 0
    with pytest.raises(VaetoneError, match="rows"):
        abl.reconstruction_errors(decode, z, ref, {"bad": lambda r, e: pd.DataFrame({"a": [1.0]})})


def test_importance_order_from_a_summary(case):
    decode, z, ref = case
    eff = abl.ablation_effects(decode, z, ref)
    summ = abl.summarise_ablation(eff, {"family": np.array(["a", "b"] * (N // 2))})
    assert abl.importance_order(summ).tolist() == abl.importance_order(eff).tolist()
    assert abl.importance_order(eff).tolist() == [0, 1, 2, 3]
    with pytest.raises(VaetoneError):
        abl.importance_order(eff, metric="nope")
