"""Tests of vaetone.data.splits with groups: whole groups, family coverage, fractions, seeds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vaetone import config
from vaetone.data import splits

FAMILIES = {f"b{i}": "bass" for i in range(5)} | {f"r{i}": "reed" for i in range(3)} | {"o0": "organ", "o1": "organ"}
GROUPS = {"b0": "B1", "b1": "B1", "b2": "B1", "b3": "B2", "b4": "B3", "r0": "R1", "r1": "R2", "r2": "R3", "o0": "O"}
"""10 instruments: bass in groups of 3, 1, 1; reed in three singletons; organ in one group (o1 has none)."""


def test_without_groups_the_split_is_unchanged():
    families = {"bass_a": "bass", "bass_b": "bass", "bass_c": "bass", "bass_d": "bass"}
    families |= {"reed_a": "reed", "reed_b": "reed", "reed_c": "reed", "organ_a": "organ"}
    assert splits.split_instruments(families, 0.25, 0.25, 7) == {
        "bass_a": "train",
        "bass_b": "valid",
        "bass_c": "test",
        "bass_d": "train",
        "organ_a": "train",
        "reed_a": "valid",
        "reed_b": "train",
        "reed_c": "test",
    }


@pytest.mark.parametrize("seed", range(6))
def test_groups_stay_whole_known_answer(seed):
    split = splits.split_instruments(FAMILIES, 0.2, 0.2, seed, groups=GROUPS)
    # 2 test and 2 valid instruments (20 % of 10): the group of 3 basses is too big, so each of
    # bass and reed (3 groups each) gives one singleton to test and one to valid; organ (one
    # group, and o1 alone) keeps all in train
    assert [split[n] for n in ("b0", "b1", "b2", "o0", "o1")] == ["train"] * 5
    assert sorted(split[n] for n in ("b3", "b4")) == ["test", "valid"]
    assert sorted(split[n] for n in ("r0", "r1", "r2")) == ["test", "train", "valid"]
    assert splits.split_instruments(FAMILIES, 0.2, 0.2, seed, groups=GROUPS) == split


def _random_table(seed: int, n_groups: int = 60) -> tuple[dict, dict]:
    """Groups of 1-5 instruments; most in one family, some spanning two."""
    rng = np.random.default_rng(seed)
    families, groups = {}, {}
    for g in range(n_groups):
        fams = rng.choice(config.FAMILIES[: 4 + seed % 7], size=int(rng.integers(1, 3)), replace=False)
        for k in range(int(rng.integers(1, 6))):
            name = f"g{g:02d}_{k}"
            families[name], groups[name] = str(fams[k % len(fams)]), f"font/{g}"
    return families, groups


@pytest.mark.parametrize("seed", range(8))
def test_group_split_properties(seed):
    families, groups = _random_table(seed)
    split = splits.split_instruments(families, 0.15, 0.2, seed, groups=groups)
    assert set(split) == set(families)
    per_group = {}
    for name, s in split.items():
        per_group.setdefault(groups[name], set()).add(s)
    assert all(len(s) == 1 for s in per_group.values())  # whole groups
    fam_groups = {}
    for name, fam in families.items():
        fam_groups.setdefault(fam, set()).add(groups[name])
    for fam, gs in fam_groups.items():
        held = {s for name, s in split.items() if families[name] == fam}
        if len(gs) >= 3:
            assert held == {"train", "valid", "test"}, fam
        assert "train" in held, fam  # a family never gives its last train group
    counts, sizes = Counter(split.values()), Counter(groups.values())
    for s, fraction in (("test", 0.2), ("valid", 0.15)):
        assert abs(counts[s] - round(len(split) * fraction)) <= max(sizes.values()), (s, counts)
    assert splits.split_instruments(families, 0.15, 0.2, seed, groups=groups) == split
    assert splits.split_instruments(families, 0.15, 0.2, seed + 100, groups=groups) != split


def test_few_big_groups_still_fill_every_split():
    families = {f"{fam}{i}": fam for fam in ("bass", "reed", "organ") for i in range(5)}
    groups = {name: name[:-1] for name in families}  # three groups of 5, one per family
    split = splits.split_instruments(families, 0.1, 0.1, 0, groups=groups)
    assert sorted(Counter(split.values()).values()) == [5, 5, 5]
    two = splits.split_instruments(families, 0.1, 0.1, 0, groups={n: n.startswith("bass") for n in families})
    assert set(two.values()) == {"train", "valid"}  # two groups: no test split
