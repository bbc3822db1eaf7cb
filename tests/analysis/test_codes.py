"""Tests of vaetone.analysis.codes: SAP, and the ceiling and floors of every score on a factorial design."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import digamma
from scipy.stats import special_ortho_group

from vaetone.analysis import codes
from vaetone.analysis.disentanglement import _entropy_weights, dci, mig
from vaetone.errors import VaetoneError


@pytest.fixture(scope="module")
def design():
    """Like the factorial synthetic source: 44 instruments × 8 notes, 7 factors drawn independently per note."""
    rng = np.random.default_rng(0)
    n = 44 * 8
    factors = pd.DataFrame(
        {
            "factor_pitch": rng.choice([40.0, 52.0, 64.0, 76.0], n),
            "factor_loudness": rng.choice([-30.0, 0.0], n),
            "factor_brightness": rng.choice(np.linspace(-15, -3, 5), n),
            "factor_attack": rng.choice(np.geomspace(0.02, 0.4, 5), n),
            "factor_decay": rng.choice(np.geomspace(0.5, 8.0, 5), n),
            "factor_inharmonicity": rng.choice(np.linspace(0, 0.002, 5), n),
            "factor_noise": rng.choice(np.linspace(-50, -10, 5), n),
        }
    )
    return factors, np.repeat(np.arange(44), 8)


@pytest.fixture(scope="module")
def references(design):
    return codes.reference_scores(*design, seed=0)


def test_sap_of_a_perfect_a_duplicated_and_a_noise_code():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    score, table = codes.sap(np.c_[3 * b, -a, np.ones(2000)], pd.DataFrame({"a": a, "b": b}))
    assert score > 0.99 and table["top_dim"].to_dict() == {"a": 1, "b": 0}
    assert table.loc["a", "top_r2"] == pytest.approx(1.0) and table.loc["a", "second_r2"] < 0.01
    # dim 1 explains exactly r² = 0.8 of a (its noise is made orthogonal to a): the gap is 1 − 0.8
    za, e = (a - a.mean()) / a.std(), rng.normal(size=2000)
    e -= e.mean() + (e @ za) / len(a) * za
    noisy = np.sqrt(0.8) * za + np.sqrt(0.2) * e / e.std()
    score, table = codes.sap(np.c_[a, noisy], pd.DataFrame({"a": a}))
    assert table.loc["a", "second_r2"] == pytest.approx(0.8) and score == pytest.approx(0.2)
    assert codes.sap(np.c_[a, a], {"a": a})[0] == pytest.approx(0.0)  # two copies: nothing separates them
    assert codes.sap(rng.normal(size=(2000, 4)), {"a": a, "b": b})[0] < 0.01
    with pytest.raises(VaetoneError, match="D >= 2"):
        codes.sap(a, {"a": a})


def test_the_perfect_code_standardises_each_factor_in_order():
    factors = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "family": ["a", "b", "a", "b"], "const": [5, 5, 5, 5]})
    code = codes.perfect_code(factors)
    assert code.shape == (4, 3)
    np.testing.assert_allclose(code[:, 0], (np.arange(4) - 1.5) / np.std(np.arange(4)))
    np.testing.assert_allclose(code[:, 1], [-1, 1, -1, 1])  # category codes, standardised
    np.testing.assert_array_equal(code[:, 2], 0.0)  # a constant factor carries nothing
    np.testing.assert_allclose(codes.perfect_code({"x": [1.0, 3.0]}), [[-1.0], [1.0]])


def test_rotated_and_shuffled_codes_keep_the_information_and_are_reproducible():
    code = np.random.default_rng(0).normal(size=(50, 4))
    rot = codes.rotated_code(code, seed=3)
    np.testing.assert_allclose(np.linalg.norm(rot, axis=1), np.linalg.norm(code, axis=1))  # lengths kept
    q = np.linalg.lstsq(code, rot, rcond=None)[0]
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-9)
    assert np.linalg.det(q) == pytest.approx(1.0)
    np.testing.assert_array_equal(rot, codes.rotated_code(code, seed=3))
    assert not np.allclose(rot, codes.rotated_code(code, seed=4))
    shuf = codes.shuffled_code(code, seed=1)
    assert not np.array_equal(shuf, code)
    np.testing.assert_array_equal(np.sort(shuf, axis=0), np.sort(code, axis=0))
    np.testing.assert_array_equal(shuf, codes.shuffled_code(code, seed=1))
    with pytest.raises(VaetoneError, match="at least 2 dimensions"):
        codes.rotated_code(code[:, :1])


def test_the_rotation_floor_matches_its_closed_form_and_random_rotations():
    assert codes.rotation_floor(2) == pytest.approx(1 / np.log(2) - 1)  # ψ(2) − ψ(3/2) = 2 ln 2 − 1
    assert codes.rotation_floor(7) == pytest.approx(1 - (digamma(4.5) - digamma(1.5)) / np.log(7))
    draws = [np.mean(_entropy_weights(special_ortho_group.rvs(7, random_state=s) ** 2, 7)) for s in range(400)]
    assert np.mean(draws) == pytest.approx(codes.rotation_floor(7), abs=0.01)
    with pytest.raises(VaetoneError, match="at least 2 factors"):
        codes.rotation_floor(1)


def test_the_perfect_code_scores_the_ceiling(references):
    perfect = references.loc["perfect"]
    assert list(references.index) == ["perfect", "rotated", "shuffled"]
    assert list(references.columns) == list(codes.SCORE_NAMES)
    assert perfect["mig"] > 0.95  # 0.976: the second MI of a 5-level factor is biased by ~16/(2n) nats
    assert perfect["dci_disentanglement"] > 0.99 and perfect["dci_completeness"] > 0.99
    assert perfect["dci_informativeness"] > 0.99
    assert perfect["sap"] > 0.98  # 0.99: independent factors correlate at ~1/√n in a sample


def test_the_rotated_code_is_complete_but_entangled(references):
    rotated = references.loc["rotated"]
    assert rotated["mig"] < 0.15 and rotated["sap"] < 0.25
    # a random rotation sits near its expected floor (0.31 for 7 factors), far below the ceiling
    floor = codes.rotation_floor(7)
    assert floor - 0.05 < rotated["dci_disentanglement"] < floor + 0.12
    assert floor - 0.05 < rotated["dci_completeness"] < floor + 0.12
    assert rotated["dci_informativeness"] > 0.85  # nothing lost: trees fit a linear map from 7 dims


def test_the_shuffled_code_scores_chance(references):
    shuffled = references.loc["shuffled"]
    assert shuffled["mig"] < 0.05 and shuffled["sap"] < 0.05
    assert shuffled["dci_disentanglement"] < 0.1 and shuffled["dci_informativeness"] < 0.05


def test_reference_scores_need_two_factors():
    with pytest.raises(VaetoneError, match="at least 2 factors"):
        codes.reference_scores({"a": np.arange(10.0)}, np.arange(10))
    with pytest.raises(VaetoneError, match="latent_dim >= 2"):
        codes.code_scores(np.arange(10.0), {"a": np.arange(10.0)}, np.arange(10))


def test_a_perfect_code_with_a_noise_dimension_keeps_its_scores(design):
    factors, groups = design
    code = np.c_[codes.perfect_code(factors), np.random.default_rng(5).normal(size=len(factors))]
    scores = codes.code_scores(code, factors, groups, seed=0, dci_method="lasso")  # lasso: fast; gbt above
    assert list(scores) == list(codes.SCORE_NAMES)
    assert scores["mig"] > 0.9  # 0.93: 20 bins of the noise dimension bias its MI by ~(19 × 4)/(2n) nats
    assert scores["dci_disentanglement"] > 0.95 and scores["dci_completeness"] > 0.95
    assert scores["dci_informativeness"] > 0.99 and scores["sap"] > 0.98
    assert scores["mig"] == mig(code, factors)[0]
    assert scores["dci_disentanglement"] == dci(code, factors, groups, method="lasso")[0]["disentanglement"]


def test_scores_agree_with_disent(design):
    """Cross-check with disent (disentanglement_lib's metrics in PyTorch) where it is installed."""
    disent_mig = pytest.importorskip("disent.metrics._mig")
    disent_sap = pytest.importorskip("disent.metrics._sap")
    disent_dci = pytest.importorskip("disent.metrics._dci")
    factors, groups = design
    perfect = codes.perfect_code(factors)
    code = np.c_[codes.rotated_code(perfect, seed=1)[:, :4], perfect[:, 4:]]
    y = factors.to_numpy().T
    expected_mig = disent_mig._compute_mig(code.T, y)["mig.discrete_score"]
    assert mig(code, factors)[0] == pytest.approx(expected_mig, abs=1e-12)
    expected_sap = disent_sap._compute_sap(code.T, y, code.T, y, continuous_factors=True)["sap.score"]
    assert codes.sap(code, factors)[0] == pytest.approx(expected_sap, abs=1e-9)
    scores, importance = dci(code, factors, groups, method="lasso")
    assert scores["disentanglement"] == pytest.approx(disent_dci._disentanglement(importance.to_numpy()), abs=1e-6)
    per_factor = disent_dci._completeness_per_factor(importance.to_numpy())  # disent weights the mean; we do not
    assert scores["completeness"] == pytest.approx(per_factor.mean(), abs=1e-6)
