"""Known-answer tests of the across-seed machinery (vaetone.seeds) on fake runs and latents."""

import numpy as np
import pandas as pd
import pytest

from vaetone import config
from vaetone.analysis import seeds
from vaetone.errors import VaetoneError
from vaetone.model import runs as model_runs

N, D = 200, 4
PERMS = {0: [0, 1, 2, 3], 1: [2, 0, 3, 1], 2: [3, 2, 1, 0]}  # seed s stores reference dim i in PERMS[s][i]
SIGNS = {0: [1, 1, 1, 1], 1: [1, -1, 1, -1], 2: [-1, 1, 1, 1]}
SCALE = np.array([2.0, 1.0, 0.5, 0.05])  # the per-dimension truth, in reference dims


class FakeRun:
    def __init__(self, cfg):
        self.cfg = cfg


def _reference_mu():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)) * SCALE


def _fake_latents(cfg, run, feats=None):
    ref = _reference_mu()
    mu = np.empty_like(ref)
    noise = np.random.default_rng(100 + cfg.seed).standard_normal((N, D)) * 0.01
    for i, (j, s) in enumerate(zip(PERMS[cfg.seed], SIGNS[cfg.seed])):
        mu[:, j] = s * ref[:, i] + noise[:, j] * SCALE[i]
    meta = pd.DataFrame({"split": ["test"] * (N // 2) + ["train"] * (N - N // 2)})
    return model_runs.Latents(mu.astype(np.float32), np.ones_like(mu, dtype=np.float32), meta)


@pytest.fixture
def fake(monkeypatch):
    calls = []

    def trained_model(cfg, feats=None, progress=True):
        calls.append(cfg.seed)
        return FakeRun(cfg)

    monkeypatch.setattr(model_runs, "trained_model", trained_model)
    monkeypatch.setattr(model_runs, "latents", _fake_latents)
    return calls


def test_seed_configs_count_and_seeds():
    cfg = config.make(seed=5, n_seeds=3, latent_dim=7)
    cfgs = seeds.seed_configs(cfg)
    assert [c.seed for c in cfgs] == [5, 6, 7]
    assert cfgs[0] == cfg
    assert all(c.latent_dim == 7 for c in cfgs)


def test_seed_runs_trains_each_seed_once(fake):
    runs = seeds.seed_runs(config.make(n_seeds=3))
    assert fake == [0, 1, 2]
    assert [r.cfg.seed for r in runs] == [0, 1, 2]


def test_match_to_reference_recovers_permutation_and_signs(fake):
    mus = [lat.mu for lat in seeds.seed_latents(config.make(n_seeds=3))]
    matches = seeds.match_to_reference(mus)
    ref = _reference_mu()[: N // 2]
    for s, (perm, signs, corr) in enumerate(matches):
        assert perm.tolist() == PERMS[s]
        assert signs.tolist() == SIGNS[s]
        assert np.all(corr > 0.99)
        aligned = seeds.align(mus[s], perm, signs)
        assert aligned.shape == (N // 2, D)
        np.testing.assert_allclose(aligned, ref, atol=0.05 * SCALE.max())


def test_across_seeds_reuses_the_reference_run_and_latents(fake, monkeypatch):
    cfg = config.make(n_seeds=3)
    run0 = FakeRun(cfg)
    lat0 = _fake_latents(cfg, run0).split("test")
    loaded = []
    monkeypatch.setattr(model_runs, "latents", lambda c, r, f=None: loaded.append(c.seed) or _fake_latents(c, r, f))
    seen = []

    def per_run(c, run, lat):
        seen.append((c.seed, run, lat))
        return pd.DataFrame({"spread": lat.mu.std(0)}, index=pd.RangeIndex(D, name="dim"))

    res = seeds.across_seeds(cfg, None, per_run, reference_run=run0, reference_latents=lat0)
    assert fake == [1, 2] and loaded == [1, 2]  # seed 0 is neither reloaded nor re-encoded
    assert seen[0][1] is run0 and seen[0][2] is lat0
    np.testing.assert_allclose(res.summary[("spread", "mean")], _reference_mu()[: N // 2].std(0), rtol=0.03)


def test_across_seeds_aggregates_on_reference_dimensions(fake):
    def per_run(cfg, run, lat):  # the std of each dim (sign-free) and the mean of the first note (signed)
        return pd.DataFrame(
            {"spread": lat.mu.std(0), "first": lat.mu[0], "label": "x"}, index=pd.RangeIndex(D, name="dim")
        )

    res = seeds.across_seeds(config.make(n_seeds=3), None, per_run, signed=["first"])
    assert res.seeds == [0, 1, 2]
    ref = _reference_mu()[: N // 2]
    np.testing.assert_allclose(res.summary[("spread", "mean")], ref.std(0), rtol=0.03)
    assert np.all(res.summary[("spread", "std")] < 0.03 * SCALE)
    np.testing.assert_allclose(res.summary[("first", "mean")], ref[0], atol=0.05)
    assert ("label", "mean") not in res.summary.columns
    aligned = res.aligned("spread")
    assert list(aligned.columns) == [0, 1, 2] and aligned.shape == (D, 3)
    # seed 1 stores reference dim 0 in its dim 2: the raw table shows it there
    assert res.tables[1]["spread"].iloc[2] == pytest.approx(aligned.loc[0, 1])
    table = res.match_table()
    assert table[(1, "dim")].tolist() == PERMS[1]
    assert table[(2, "sign")].tolist() == SIGNS[2]


def test_rank_agreement_and_top_counts(fake):
    def per_run(cfg, run, lat):
        return pd.DataFrame({"spread": lat.mu.std(0)}, index=pd.RangeIndex(D, name="dim"))

    res = seeds.across_seeds(config.make(n_seeds=3), None, per_run)
    agreement = seeds.rank_agreement(res, "spread")
    assert agreement.tolist() == pytest.approx([1.0, 1.0, 1.0])
    counts = seeds.top_counts(res, "spread", k=1)
    assert counts.tolist() == [3, 0, 0, 0]
    assert seeds.top_counts(res, "spread", k=2).tolist() == [3, 3, 0, 0]


def test_across_seeds_rejects_tables_not_indexed_by_dim(fake):
    def bad(cfg, run, lat):
        return pd.DataFrame({"x": [1.0, 2.0]}, index=[10, 11])

    with pytest.raises(VaetoneError, match="indexed by"):
        seeds.across_seeds(config.make(n_seeds=2), None, bad)


def test_single_seed_is_identity(fake):
    def per_run(c, run, lat):
        return pd.DataFrame({"first": lat.mu[0]}, index=pd.RangeIndex(D, name="dim"))

    res = seeds.across_seeds(config.make(n_seeds=1), None, per_run, signed=["first"])
    assert res.seeds == [0] and res.matches[0][0].tolist() == list(range(D))
    np.testing.assert_array_equal(res.aligned("first")[0], _fake_latents(config.make(), None).split("test").mu[0])
