"""Instruments: seeded subsets stratified by family, and the train/valid/test split by instrument.

Chapter: 01_data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from vaetone.config import Config
from vaetone.errors import DataError

SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Instruments: subsets and splits
# ---------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


def _stratified_order(families: Mapping[str, str], rng: np.random.Generator, reserve_first: bool) -> list[str]:
    """Instruments in an order that spreads over families in proportion to their sizes.

    Each family is shuffled; instrument r >= 1 of a family of n gets the key (r + u) / n with
    u uniform in [0, 1), and the order is by key. The first instrument of each family comes
    before all others (so a subset covers every family it can) or, with ``reserve_first``,
    after all others (so a family keeps one instrument in train as long as possible).
    """
    names = sorted(families)
    by_family: dict[str, list[str]] = {}
    for name in names:
        by_family.setdefault(families[name], []).append(name)
    keys = {}
    for fam in sorted(by_family):
        members = [by_family[fam][i] for i in rng.permutation(len(by_family[fam]))]
        for r, name in enumerate(members):
            u = rng.random()
            keys[name] = (r + u) / len(members) if r else (1.0 + u if reserve_first else u - 1.0)
    return sorted(names, key=lambda n: keys[n])


def subset_instruments(families: Mapping[str, str], n: int, seed: int) -> list[str]:
    """A seeded subset of ``n`` instruments, stratified by family (``max_instruments``).

    One instrument of each family first (as long as n allows), the rest in proportion to the
    families' sizes.

    Args:
        families: {instrument_str: family}.
        n: how many to keep (all when n >= len(families)).
        seed: the random seed (``split_seed``).
    Returns:
        Sorted instrument_str values. Chapter: 01_data.
    """
    order = _stratified_order(families, np.random.default_rng([seed, 1]), reserve_first=False)
    return sorted(order[:n])


def split_instruments(
    families: Mapping[str, str] | pd.Series,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    groups: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Assign every instrument to "train", "valid" or "test", seeded and stratified by family.

    No instrument is in two splits. With at least 3 instruments every split is non-empty and
    held-out instruments come first from large families, so each family keeps an instrument in
    train while it can. With ``groups`` (e.g. the SoundFont programs that share samples) the
    split is by group: all instruments of a group go to one split (:func:`split_groups`).
    Args:
        families: {instrument_str: family} (a dict or a Series).
        valid_fraction, test_fraction: shares of instruments held out.
        seed: ``split_seed``.
        groups: optional {instrument_str: group id}; an instrument without one is its own group.
    Returns:
        {instrument_str: split}. Chapter: 01_data.
    """
    families = dict(families)
    if groups is not None:
        return split_groups(families, valid_fraction, test_fraction, seed, groups)
    total = len(families)
    n_test, n_valid = _held_out(total, valid_fraction, test_fraction)
    if total < 3:
        log.warning("only %d instrument(s): the test%s split is empty", total, "" if total == 2 else " and valid")
    order = _stratified_order(families, np.random.default_rng([seed, 2]), reserve_first=True)
    splits = dict.fromkeys(order, "train")
    quota = {"test": n_test, "valid": n_valid}
    turn = ["test", "valid"]
    for name in order[: n_test + n_valid]:
        pick = turn[0] if quota[turn[0]] > 0 else turn[1]
        splits[name] = pick
        quota[pick] -= 1
        turn.reverse()
    return {name: splits[name] for name in sorted(splits)}


def _held_out(total: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many of ``total`` units go to test and to valid (at least one each while train keeps one)."""
    n_test = max(1, round(total * test_fraction)) if total >= 3 else 0
    n_valid = max(1, round(total * valid_fraction)) if total >= 2 else 0
    while n_test + n_valid > max(total - 1, 0):
        n_test, n_valid = (n_test - 1, n_valid) if n_test >= n_valid else (n_test, n_valid - 1)
    return n_test, n_valid


def split_groups(
    families: Mapping[str, str], valid_fraction: float, test_fraction: float, seed: int, groups: Mapping[str, object]
) -> dict[str, str]:
    """Split instruments by group (all of a group in one split), seeded and stratified by family.

    The fractions apply to instruments, approximately: whole groups are allocated. First every
    family with at least 3 groups (groups holding one of its instruments) gets a group in test
    and one in valid, the smallest family first; then groups are taken in a seeded order
    stratified by each group's main family (the first group of each family last) while a
    group brings its split closer to its share. A family never gives its last train group,
    and with at least 3 groups no split is empty.
    Args:
        families: {instrument_str: family}; groups: {instrument_str: group id} (an
            instrument without one is its own group); the rest as :func:`split_instruments`.
    Returns:
        {instrument_str: split}. Chapter: 01_data.
    """
    group_of = {n: ("group", str(groups[n])) if n in groups else ("instrument", n) for n in sorted(families)}
    plan = _GroupPlan(families, group_of)
    n_test, n_valid = _held_out(len(families), valid_fraction, test_fraction)
    n_groups = len(plan.size)
    if n_groups < 3:
        log.warning("only %d group(s): the test%s split is empty", n_groups, "" if n_groups == 2 else " and valid")
        n_test, n_valid = 0, n_valid if n_groups == 2 else 0
    plan.target = {"test": n_test, "valid": n_valid}
    order = _stratified_order(plan.main_family, np.random.default_rng([seed, 3]), reserve_first=True)
    plan.cover_families(order)
    plan.fill(order)
    plan.fill_empty(order)
    return {name: plan.split.get(group_of[name], "train") for name in sorted(families)}


class _GroupPlan:
    """The state of :func:`split_groups`: group sizes and families, assignments and train groups left per family."""

    def __init__(self, families: Mapping[str, str], group_of: Mapping[str, tuple]):
        members: dict[tuple, list[str]] = {}
        for name, g in group_of.items():
            members.setdefault(g, []).append(name)
        self.size = {g: len(m) for g, m in members.items()}
        self.families = {g: sorted({families[n] for n in m}) for g, m in members.items()}
        counts = {g: Counter(families[n] for n in m) for g, m in members.items()}
        self.main_family = {g: min(c, key=lambda f: (-c[f], f)) for g, c in counts.items()}
        self.of_family: dict[str, list[tuple]] = {}
        for g in sorted(members):
            for f in self.families[g]:
                self.of_family.setdefault(f, []).append(g)
        self.left = {f: len(gs) for f, gs in self.of_family.items()}
        self.split: dict[tuple, str] = {}
        self.count = {"test": 0, "valid": 0}
        self.target = {"test": 0, "valid": 0}

    def can_leave(self, g: tuple) -> bool:
        """Whether group ``g`` can leave train without taking a family's last train group."""
        return g not in self.split and all(self.left[f] > 1 for f in self.families[g])

    def assign(self, g: tuple, split: str) -> None:
        """Put group ``g`` in ``split``."""
        self.split[g] = split
        self.count[split] += self.size[g]
        for f in self.families[g]:
            self.left[f] -= 1

    def cover_families(self, order: list[tuple]) -> None:
        """Give every family with at least 3 groups one group in test and one in valid."""
        big = sorted((f for f, gs in self.of_family.items() if len(gs) >= 3), key=lambda f: (len(self.of_family[f]), f))
        for split in ("test", "valid"):
            for f in big if self.target[split] > 0 else ():
                if any(self.split.get(g) == split for g in self.of_family[f]):
                    continue
                members = set(self.of_family[f])
                candidates = [g for g in order if g in members and self.can_leave(g)]
                if not candidates:
                    log.warning("family %s keeps all its sample groups out of the %s split", f, split)
                    continue
                need = self.target[split] - self.count[split]
                fitting = [g for g in candidates if self.size[g] <= max(need, 1)]
                self.assign(fitting[0] if fitting else min(candidates, key=self.size.get), split)

    def fill(self, order: list[tuple]) -> None:
        """Take groups in ``order`` while one brings the split with the larger shortfall closer to its target."""
        for g in order:
            short = {s: self.target[s] - self.count[s] for s in ("test", "valid")}
            if max(short.values()) <= 0:
                return
            if not self.can_leave(g):
                continue
            for s in sorted(short, key=lambda s: -short[s]):
                if 0 < self.size[g] < 2 * short[s]:
                    self.assign(g, s)
                    break

    def fill_empty(self, order: list[tuple]) -> None:
        """With at least 3 groups, put the smallest group that can go into a split that is still empty."""
        for s in ("test", "valid"):
            if self.target[s] == 0 or self.count[s] > 0:
                continue
            free = [g for g in order if g not in self.split]
            if len(free) < 2:
                return
            polite = [g for g in free if self.can_leave(g)]
            self.assign(min(polite or free, key=self.size.get), s)


def split_minimums(cfg: Config) -> dict[str, tuple[int, int]]:
    """The fewest (notes, instruments) each split needs for the later stages of ``cfg``.

    train: PCA with ``latent_dim`` components needs at least ``latent_dim`` notes (and two);
    valid: early stopping and the best weights need one note; test: every analysis needs two
    notes to have a spread. Each split needs an instrument. Chapters: 01_data, 03_training.
    """
    return {"train": (max(2, cfg.latent_dim), 1), "valid": (1, 1), "test": (2, 1)}


def check_split_sizes(meta: pd.DataFrame, cfg: Config, where: str) -> None:
    """Raise DataError when a split has fewer notes or instruments than later stages need.

    Called before any training (``vaetone.model.runs.trained_model``), so a dataset too small
    for the analyses fails in seconds, not after two trainings.

    Args:
        meta: the notes with their ``split`` column.
        cfg: the configuration (its ``latent_dim`` sets the training minimum).
        where: the folder the notes come from, for the message.
    Chapter: 01_data.
    """
    for split, (min_notes, min_instruments) in split_minimums(cfg).items():
        rows = meta[meta["split"] == split]
        notes, instruments = len(rows), rows["instrument_str"].nunique()
        if notes < min_notes or instruments < min_instruments:
            raise DataError(
                f"the {split} split of {where} has {notes} notes of {instruments} instruments; the later stages "
                f"need at least {min_notes} notes of {min_instruments} instrument(s) there. Select more notes "
                "(wider pitch range, more velocities or instruments) or change valid_fraction/test_fraction."
            )
