"""Tests of the statistics stage (vaetone.analysis.statistics_stage, ``statistics.result``)."""

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaetone import store
from vaetone.analysis import nesting, statistics
from vaetone.analysis import statistics_stage as stage
from vaetone.errors import VaetoneError
from vaetone.results import result_key

N = 120
STD = 0.5


def _notes(rng) -> pd.DataFrame:
    """N notes: pitch 48..72, velocity, 3 families of 2 instruments each, one source."""
    instrument = rng.choice([f"inst{k}" for k in range(6)], N)
    family = np.array(["brass", "reed", "string"])[[int(i[-1]) // 2 for i in instrument]]
    return pd.DataFrame(
        {
            "instrument_family_str": family,
            "instrument_source_str": "acoustic",
            "instrument_str": instrument,
            "pitch": rng.integers(48, 73, N),
            "velocity": rng.choice([25, 75, 127], N),
        },
        index=pd.Index([f"note{k}" for k in range(N)], name="note_str"),
    )


@pytest.fixture(scope="module")
def one_active():
    """Latents with one active dimension, z0 = (pitch − 60) / 4, and three constant ones; and their statistics."""
    rng = np.random.default_rng(0)
    meta = _notes(rng)
    mu = np.zeros((N, 4))
    mu[:, 0] = (meta["pitch"].to_numpy() - 60) / 4
    std = np.full((N, 4), STD)
    with pytest.warns(Warning):  # the constant dimensions have undefined correlations
        res = stage.compute_statistics(mu, std, meta, seed=0, run_id="run-x", n_boot=200)
    return mu, std, meta, res


def test_one_active_dimension_is_found_and_named(one_active):
    mu, _, meta, res = one_active
    f = res.findings
    assert f["n_active"] == 1 and f["n_dims"] == 4 and f["inactive"] == "z1, z2, z3"
    assert f["active"] == [True, False, False, False]
    assert f["pitch_dim"] == "z0" and f["pitch_rho"] == pytest.approx(1.0) and f["pitch_mi"] > 1.0
    assert res.dimension_order == (0, 1, 2, 3)
    assert f["run_id"] == "run-x" and f["n_test"] == N and f["n_test_instruments"] == 6
    # every dimension fails the KS test against N(0, 1): z0 is uniform-like with std ≈ 1.9, the others constant
    assert f["n_rejected"] == 4 and f["n_rejected_notes"] == 4
    assert f["family_dim"] == "z0" and f["source_dim"] == "z0" and f["source_eta"] == 0.0
    assert f["n_families"] == 3
    fam = meta["instrument_family_str"].to_numpy()
    expected_eta = statistics.eta_squared(mu[:, :1], fam)[0]
    assert f["family_eta"] == pytest.approx(expected_eta)


def test_quoted_phrases_are_built_from_the_numbers(one_active):
    mu, std, _, res = one_active
    f = res.findings
    var0 = mu[:, 0].var(ddof=1)
    kl_const = 0.5 * (STD**2 - 1 - np.log(STD**2))
    kl0 = kl_const + 0.5 * (mu[:, 0] ** 2).mean()
    assert f["kl_total"] == pytest.approx(kl0 + 3 * kl_const)
    assert f["kl_top"] == f"z0 ({kl0:.1f} nats), z1 ({kl_const:.1f} nats), z2 ({kl_const:.1f} nats)"
    assert f["var_range"] == f"0.00 to {var0:.2f}"
    assert f["total_var_range"] == f"{STD**2:.2f} to {var0 + STD**2:.2f}"
    # no pair of dimensions has a defined correlation
    assert np.isnan(f["max_corr"]) and f["max_corr_pair"] == "none" and np.isnan(f["mean_corr"])


def test_the_answer_is_one_sentence_built_from_the_numbers(one_active):
    f = dict(one_active[3].findings)
    assert f["kl_top_dim"] == "z0"
    assert f["answer"] == (
        f"1 of the 4 latent units is active on the test notes, with {f['kl_total']:.1f} nats per note of KL to the "
        "prior (most in z0); 4 of the 4 dimensions differ from N(0, 1) with the instrument as unit; pitch is read "
        f"most from z0 (MI {f['pitch_mi']:.2f} nats), and the instrument family explains at most "
        f"{f['family_eta']:.2f} of a dimension's variance."
    )
    known = {"n_active": 3, "n_dims": 16, "kl_total": 41.24, "kl_top_dim": "z5", "n_rejected": float("nan")}
    known |= {"pitch_dim": "z7", "pitch_mi": 0.914, "family_eta": 0.351}
    assert stage.statistics_answer(known) == (
        "3 of the 16 latent units are active on the test notes, with 41.2 nats per note of KL to the prior "
        "(most in z5); whether they differ from N(0, 1) cannot be tested with the instrument as unit; pitch is "
        "read most from z7 (MI 0.91 nats), and the instrument family explains at most 0.35 of a dimension's variance."
    )
    assert stage.statistics_answer(known | {"n_rejected": 0}).count("; 0 of the 16 dimensions differ from N(0, 1)")


def test_tests_take_the_instrument_as_unit_and_say_so(one_active):
    mu, _, meta, res = one_active
    f, normal = res.findings, res.table("normality")
    assert list(normal.columns) == ["ks_stat", "icc", "ks_p", "ks_p_notes"]
    assert (normal["ks_p"] < 0.05 / 4).all() and normal.loc[0, "icc"] < 0.2  # z0 follows pitch, not the instrument
    assert f["normality_test"] == (
        "4 of 4 dimensions differ from N(0, 1) (Kolmogorov–Smirnov against nested N(0, 1) notes of 6 instruments, "
        f"320 simulations, Bonferroni-corrected 5 %); counting the {N} notes as independent, 4 would"
    )
    tests = res.table("group_tests")
    assert list(tests.columns) == [f"{a}_{c}" for a in ("family", "source") for c in ("F", "p", "p_notes")]
    # z0 does not depend on the family (3 families of 2 instruments): defined on 6 instrument means
    p_family = tests.loc[0, "family_p"]
    assert 0 < p_family <= 1 and tests.loc[[1, 2, 3], "family_p"].isna().all()  # constant dims: undefined
    assert f["n_family_differ"] == int(p_family < 0.05 / 4)
    assert f["family_test"].startswith(f"{f['n_family_differ']} of 4 dimensions differ between families (one-way ANOVA")
    assert "on the means of 6 instruments in 3 families" in f["family_test"]
    assert f["source_test"] == (
        f"undefined: the 6 instruments all belong to one of the sources; counting the {N} notes as independent, 0 would"
    )
    assert np.isnan(f["n_source_differ"]) and f["n_source_differ_notes"] == 0
    eta = res.table("eta_squared")
    assert list(eta.columns) == ["family", "source", "instrument"] and eta.loc[0, "instrument"] >= eta.loc[0, "family"]
    assert f["instrument_eta"] == pytest.approx(eta.loc[0, "instrument"])


def test_headline_numbers_carry_instrument_level_intervals(one_active):
    _, _, _, res = one_active
    f, spans = res.findings, res.table("intervals")
    assert list(spans.index) == ["kl_total", "max_corr", "pitch_rho", "velocity_rho", "family_eta", "source_eta"]
    assert (spans["n_instruments"] == 6).all() and (spans["n_notes"] == N).all()
    kl = spans.loc["kl_total"]
    assert kl["estimate"] == pytest.approx(f["kl_total"]) and kl["low"] <= f["kl_total"] <= kl["high"]
    assert f["kl_total_ci"] == f"{f['kl_total']:.2f} (95 % interval {kl['low']:.2f} to {kl['high']:.2f})"
    assert spans.loc["pitch_rho", "estimate"] == pytest.approx(f["pitch_rho"])
    assert f["pitch_rho_low"] == pytest.approx(1.0) and f["pitch_rho_high"] == pytest.approx(1.0)  # z0 is pitch
    assert f["max_corr_ci"] == "undefined: no pair of dimensions has a defined correlation"
    assert np.isnan(f["max_corr_low"]) and f["n_boot"] == 200


def test_two_instruments_give_undefined_intervals_and_the_stage_still_runs():
    rng = np.random.default_rng(3)
    meta = _notes(rng).assign(instrument_str=lambda m: np.where(m["instrument_str"] < "inst3", "a", "b"))
    meta["instrument_family_str"] = np.where(meta["instrument_str"] == "a", "brass", "reed")
    mu = rng.normal(size=(N, 3))
    res = stage.compute_statistics(mu, np.full((N, 3), 0.5), meta, n_boot=200)
    f = res.findings
    assert res.table("intervals")["interval"].str.startswith("undefined: the notes come from 2 instrument(s)").all()
    assert f["kl_total_ci"].startswith("undefined: ") and np.isnan(f["kl_total_low"])
    assert f["family_test"].startswith("undefined: 2 instruments in 2 families leave no instrument to compare")
    assert f["normality_test"].startswith("0 of 3 dimensions differ from N(0, 1)")


def test_tables_and_arrays(one_active):
    mu, std, meta, res = one_active
    pd.testing.assert_frame_equal(res.table("dimensions"), statistics.dimension_table(mu, std))
    groups = meta["instrument_str"].to_numpy()
    assert nesting.simulations(200, 4) == 320  # 4 dims: p must resolve 0.05 / 4
    pd.testing.assert_frame_equal(res.table("normality"), nesting.nested_normality(mu, groups, 320, seed=0))
    split = res.table("variance_split")
    np.testing.assert_allclose(split.sum(axis=1), mu.var(0, ddof=1) + STD**2)
    assert list(res.table("rank_correlation").columns) == ["pitch", "velocity"]
    assert res.table("family_means")["n"].sum() == N
    assert list(res.table("notes").columns) == ["family", "source", "instrument", "pitch", "velocity"]
    assert (res.table("pca").index == meta.index).all() and res.table("tsne").shape == (N, 2)
    assert res.findings["pca_explained_variance"][0] == pytest.approx(1.0)
    np.testing.assert_array_equal(res.arrays["mu"], mu.astype(np.float32))


def test_correlation_findings_name_the_strongest_pair():
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    mu = np.stack([rng.normal(size=500), a, rng.normal(size=500), -a + 0.1 * rng.normal(size=500)], 1)
    corr = statistics.correlation_matrix(mu)
    f = stage.correlation_findings(corr)
    assert f["max_corr_pair"] == "z1 and z3" and f["max_corr"] == pytest.approx(abs(corr.loc[1, 3]))
    off = np.abs(corr.to_numpy())[~np.eye(4, dtype=bool)]
    assert f["mean_corr"] == pytest.approx(off.mean())


def test_dim_list_and_strongest():
    assert stage.dim_list([3, 7]) == "z3, z7" and stage.dim_list([]) == "none"
    assert stage.strongest(pd.Series([np.nan, 0.2, 0.5, 0.5])) == 2
    with pytest.raises(VaetoneError, match="all dimensions constant"):
        stage.strongest(pd.Series([np.nan, np.nan], name="family"))


def test_missing_metadata_and_mismatched_rows_are_clear_errors(one_active):
    mu, std, meta, _ = one_active
    with pytest.raises(VaetoneError, match="instrument_source_str"):
        stage.compute_statistics(mu, std, meta.drop(columns="instrument_source_str"))
    with pytest.raises(VaetoneError, match="rows of metadata"):
        stage.compute_statistics(mu[:10], std[:10], meta)


def test_result_is_cached_in_the_run_folder_and_keyed_by_the_run(tiny_cfg, stage_store):
    first = statistics.result(tiny_cfg)
    folder = store.run_dir(tiny_cfg) / "results"
    [path] = folder.glob("statistics-*")
    assert (path / "findings.json").exists() and (path / "dimensions.csv").exists()
    assert statistics.result(tiny_cfg).findings == first.findings  # loaded, not recomputed
    assert [p.name for p in folder.glob("statistics-*")] == [path.name]
    _, test = statistics.load_test_latents(tiny_cfg)
    pd.testing.assert_frame_equal(first.table("dimensions"), statistics.dimension_table(test.mu, test.std))
    assert first.findings["n_dims"] == tiny_cfg.latent_dim and first.findings["n_test"] == len(test.meta)
    assert first.findings["run_id"] == store.run_dir(tiny_cfg).name
    assert first.dimension_order == tuple(int(d) for d in statistics.kl_order(test.mu, test.std))


def test_result_key_follows_the_run_not_the_other_analyses(tiny_cfg):
    cls, up = statistics.StatisticsResult, store.key("train", tiny_cfg)
    assert stage.StatisticsResult.params == ("bootstrap_n",)
    assert result_key(cls, dataclasses.replace(tiny_cfg, n_anchors=7), up) == result_key(cls, tiny_cfg, up)
    assert result_key(cls, dataclasses.replace(tiny_cfg, bootstrap_n=500), up) != result_key(cls, tiny_cfg, up)
    other = dataclasses.replace(tiny_cfg, beta=0.5)
    assert result_key(cls, other, store.key("train", other)) != result_key(cls, tiny_cfg, up)


def test_chapter_06_quotes_only_findings_the_stages_compute(one_active):
    """Every {glue:text} of chapter 06 is a finding of its stages; a formatted one is a number, not a phrase."""
    from vaetone.analysis import ground_truth, seeds_stage

    mu, std, _, res = one_active
    rng = np.random.default_rng(0)
    factors = pd.DataFrame({"factor_loudness": rng.uniform(0, 1, N), "factor_decay": rng.uniform(0, 1, N)})
    truth = ground_truth.compute_ground_truth(
        np.column_stack([factors.to_numpy(), rng.normal(size=N)]), factors, np.arange(N) // 4, [0, 1, 2], [0, 1, 2]
    )
    table = statistics.dimension_table(mu, std)
    with warnings.catch_warnings():  # constant dimensions: undefined correlations when matching seeds
        warnings.simplefilter("ignore")
        across = seeds_stage.compute("statistics", [mu, mu], [table, table], [0, 1])
    findings = {**res.findings, **truth.findings, **across.findings}
    text = (Path(__file__).resolve().parents[2] / "chapters" / "06_statistics.md").read_text()
    quoted = re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)(:[^`]*)?`", text)
    assert len(quoted) > 40
    missing = sorted({name for name, _ in quoted if name not in findings})
    assert not missing, f"chapter 06 quotes findings no stage computes: {missing}"
    formatted = sorted({name for name, spec in quoted if spec and not isinstance(findings[name], (int, float))})
    assert not formatted, f"chapter 06 formats phrases as numbers: {formatted}"
