"""Known-answer tests of the one naming rule (vaetone.analysis.seeds_labels): a name holds where every seed has it."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import seeds, seeds_labels, seeds_stage
from vaetone.errors import VaetoneError
from vaetone.model import runs as model_runs

from .test_seeds_stage import FakeRun

N, D = 90, 3
PERMS = {0: [0, 1, 2], 1: [2, 0, 1], 2: [1, 2, 0]}  # seed s stores reference dim i in its dim PERMS[s][i]
SIGNS = {0: [1, 1, 1], 1: [-1, 1, 1], 2: [1, 1, -1]}


def seed_mu(seed: int, d: int = D) -> np.ndarray:
    """The reference's latents (well-separated spreads), permuted and sign-flipped as seed ``seed`` stores them."""
    ref = np.random.default_rng(1).standard_normal((N, d)) * np.array([2.0, 1.0, 0.5, 0.25])[:d]
    mu = np.empty_like(ref)
    for i, (j, s) in enumerate(zip(PERMS[seed], SIGNS[seed])):
        mu[:, j] = s * ref[:, i]
    return mu


def named_table(seed: int, names: list[str]) -> pd.DataFrame:
    """A sensitivity-like table in seed ``seed``'s own dims: reference dim i has rank i + 1, name ``names[i]``."""
    rank, label = np.empty(D), [""] * D
    for i, j in enumerate(PERMS[seed]):
        rank[j], label[j] = i + 1.0, names[i]
    return pd.DataFrame({"mean_rank": rank, "label": label}, index=pd.RangeIndex(D, name="dim"))


REFERENCE_NAMES = ["centroid_hz", "rms_db", "none"]


def three_seeds(analysis: str = "sensitivity", reading=None):
    """Seeds 0 and 1 name the dims as the reference; seed 2 names reference dim 1's partner after flatness."""
    tables = [named_table(0, REFERENCE_NAMES), named_table(1, REFERENCE_NAMES)]
    tables.append(named_table(2, ["centroid_hz", "flatness", "none"]))
    if analysis == "ablation":
        tables = [t.rename(columns={"mean_rank": "increase_mean"}).assign(base_mean=10.0) for t in tables]
    return seeds_stage.compute(analysis, [seed_mu(s) for s in range(3)], tables, [0, 1, 2], reading)


@pytest.mark.parametrize("analysis", ["sensitivity", "ablation"])
def test_held_labels_keeps_the_shared_name_and_mixes_the_disputed_one(analysis, monkeypatch):
    found = three_seeds(analysis)
    monkeypatch.setattr(seeds_stage, "result", lambda cfg, a: found if a == analysis else None)
    held = seeds_labels.held_labels(config.make(), analysis)
    assert held.tolist() == ["centroid_hz", "mixed", "none"] and held.name == "label"
    assert list(held.index) == [0, 1, 2]
    labels = found.table("labels")
    assert labels["seed 2"].tolist() == ["centroid_hz", "flatness", "none"] and labels["held_in"].tolist() == [3, 2, 3]
    f = found.findings
    assert (f["labels_held"], f["n_labels_held"], f["n_labels_lost"]) == ("z0 (centroid_hz)", 1, 1)


def test_held_labels_refuses_an_analysis_without_names_and_a_result_without_labels(monkeypatch):
    with pytest.raises(VaetoneError, match="'statistics' analysis names no dimensions"):
        seeds_labels.held_labels(config.make(), "statistics")
    table = named_table(0, REFERENCE_NAMES).drop(columns="label")
    unnamed = seeds_stage.compute("sensitivity", [seed_mu(0)], [table], [0])
    monkeypatch.setattr(seeds_stage, "result", lambda cfg, a: unnamed)
    with pytest.raises(VaetoneError, match="has no labels table"):
        seeds_labels.held_labels(config.make())


def test_one_seed_checks_nothing_so_no_descriptor_name_holds():
    found = seeds_stage.compute("sensitivity", [seed_mu(0)], [named_table(0, ["centroid_hz", "mixed", "none"])], [0])
    assert found.table("labels")["label"].tolist() == ["mixed", "mixed", "none"]
    f = found.findings
    assert (f["n_labels_reference"], f["n_labels_held"], f["n_labels_lost"], f["labels_held"]) == (1, 0, 1, "none")


def intervals() -> pd.DataFrame:
    """Chapter 04's intervals for reference top dims z0 (centroid_hz, held) and z1 (rms_db, not held)."""
    rows = {
        "z0 centroid_hz": ("net change of centroid_hz", 0.4, 0.3, 0.5, "0.30 to 0.50"),
        "z1 rms_db": ("net change of rms_db", -0.2, -0.3, 0.1, "-0.30 to 0.10"),
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["measure", "estimate", "low", "high", "interval"])
    return table.assign(unit="spreads per unit z")


def test_held_findings_restate_the_reference_readings_with_the_names_that_hold():
    names = pd.Series(["centroid_hz", "mixed", "none"], index=pd.RangeIndex(3, name="dim"))
    reading = seeds_labels.ReferenceReading((1, 0, 2), (-3.0, 3.0), intervals())
    held = seeds_labels.held_findings(names, reading, "sensitivity")
    assert held["label_moves_held"] == (
        "z0 raises centroid_hz: 0.40 spreads per unit z (95 % interval 0.30 to 0.50; the interval excludes 0)"
    )
    assert held["strip_labels_held"] == [
        "z1 (mixed) = -3.0", "z1 (mixed) = +3.0", "z0 (centroid_hz) = -3.0", "z0 (centroid_hz) = +3.0",
        "z2 (none) = -3.0", "z2 (none) = +3.0",
    ]  # fmt: skip
    lost = seeds_labels.held_findings(pd.Series(["mixed"] * 3), reading, "sensitivity")
    assert lost["label_moves_held"] == "none of the most influential dimensions has a name that holds across seeds"
    assert seeds_labels.held_findings(names, reading, "ablation") == {
        "top_desc_held": "z1 (mixed), z0 (centroid_hz), z2 (none)"
    }
    assert reading.digest() != seeds_labels.ReferenceReading((1, 0, 2), (-3.0, 3.0), None).digest()


def test_the_stage_quotes_the_held_readings():
    reading = seeds_labels.ReferenceReading((0, 1), (-3.0, 3.0), intervals())
    f = three_seeds("sensitivity", reading).findings
    assert f["strip_labels_held"][:3] == ["z0 (centroid_hz) = -3.0", "z0 (centroid_hz) = +3.0", "z1 (mixed) = -3.0"]
    assert f["label_moves_held"].startswith("z0 raises centroid_hz: 0.40") and "rms_db" not in f["label_moves_held"]
    assert three_seeds("ablation", seeds_labels.ReferenceReading((1, 0))).findings["top_desc_held"] == (
        "z1 (mixed), z0 (centroid_hz)"
    )


class FakeFeats:
    """Features whose log-mel of every note is the one-dimension decoder's output of reference z_0."""

    def __init__(self, decoder, mu):
        self.meta = pd.DataFrame({"split": "test"}, index=[f"note{i}" for i in range(len(mu))])
        self.logmel = decoder(torch.as_tensor(mu[:, :1], dtype=torch.float32))

    @staticmethod
    def denormalise(x):
        return x


def centre(est) -> pd.DataFrame:
    """One descriptor: the dB-weighted mean mel bin of each decoded note."""
    est = torch.as_tensor(est, dtype=torch.float64).reshape(len(est), -1, est.shape[-1]).mean(-1)
    bins = torch.arange(est.shape[1], dtype=torch.float64)
    return pd.DataFrame({"centre_bin": ((est * bins).sum(1) / est.sum(1)).numpy()})


def test_ablation_names_the_dimension_the_decoder_reads_in_every_seed(one_dim_decoder):
    mu0 = seed_mu(0, 4)[:, :D] * 0.5  # the bump stays inside the 16 bands
    feats = FakeFeats(one_dim_decoder, mu0)
    fn = seeds_labels.ablation_named_per_run(feats, describe=centre)
    mus, tables = [], []
    for s in range(3):
        mu = np.empty_like(mu0)
        for i, (j, sign) in enumerate(zip(PERMS[s], SIGNS[s])):
            mu[:, j] = sign * mu0[:, i]
        j, sign = PERMS[s][0], SIGNS[s][0]
        decode = lambda z, j=j, sign=sign: one_dim_decoder(sign * torch.as_tensor(z)[:, [j]])  # noqa: E731
        mus.append(mu.astype(np.float32))
        lat = model_runs.Latents(mus[-1], np.ones_like(mus[-1]), feats.meta)
        tables.append(fn(None, FakeRun(decode), lat))
        assert tables[-1].loc[j, "label"] == "centre_bin" and (tables[-1].drop(index=j)["label"] == "none").all()
    plain = seeds.ablation_per_run(feats)(None, FakeRun(decode), lat)
    pd.testing.assert_frame_equal(tables[-1].drop(columns="label"), plain)
    found = seeds_stage.compute("ablation", mus, tables, [0, 1, 2], seeds_labels.ReferenceReading((0, 1)))
    assert found.table("labels")["label"].tolist() == ["centre_bin", "none", "none"]
    assert found.findings["top_desc_held"] == "z0 (centre_bin), z1 (none)"
