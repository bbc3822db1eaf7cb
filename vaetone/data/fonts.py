"""SoundFont structure: bank-0 presets, the keys they sound and the samples they play (sf2utils).

A General MIDI program of a ``.sf2`` file is a preset of bank 0. Its preset zones point at
instruments, whose zones point at samples; each zone may restrict the MIDI keys it answers.
This module reads those tables (never the sample data), groups the programs of a font that
share any sample (:func:`sample_groups`), and checks a split for samples played in two splits
(:func:`shared_samples`). A ``.sf3`` file (Ogg-compressed samples, e.g. MuseScore_General)
cannot be parsed by sf2utils, so it cannot take part in sample-disjoint splits.

Chapter: 01_data.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vaetone.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DEBIAN_SF2_DIR = Path("/usr/share/sounds/sf2")
"""Where Debian's SoundFont packages install their files."""

APT_PACKAGES = {
    "FluidR3_GM.sf2": "fluid-soundfont-gm",
    "TimGM6mb.sf2": "timgm6mb-soundfont",
    "OPL-3_FM_128M.sf2": "opl3-soundfont",
    "sf_GMbank.sf2": "csound-soundfont",
    "MuseScore_General*.sf3": "musescore-general-soundfont",
}
"""The Debian package of each known SoundFont file name (shell patterns)."""

SYNTHETIC_FONTS = ("OPL-3_FM_128M.sf2",)
"""Fonts whose every program is NSynth's "synthetic" source (the OPL-3 is an FM chip)."""

_GEN_KEY_RANGE, _GEN_INSTRUMENT, _GEN_SAMPLE = 43, 41, 53
"""SoundFont 2.04 generator numbers: keyRange, instrument, sampleID."""


@dataclass(frozen=True)
class Preset:
    """A bank-0 preset (GM program): its name, the MIDI keys it sounds and the samples it plays."""

    program: int
    name: str
    keys: frozenset
    samples: frozenset


@dataclass(frozen=True)
class ParsedFont:
    """The preset → instrument → sample table of one ``.sf2`` file (no sample data).

    Attributes:
        path: the file as given (a link keeps its own name); name: its file name
            (``"FluidR3_GM.sf2"``), stem: without suffix.
        presets: {program: :class:`Preset`} of bank 0.
        sample_names: the name of every sample, by sample index.
    """

    path: Path
    presets: Mapping
    sample_names: tuple

    @property
    def name(self) -> str:
        """The file name, e.g. ``"FluidR3_GM.sf2"``."""
        return self.path.name

    @property
    def stem(self) -> str:
        """The file name without suffix, e.g. ``"FluidR3_GM"`` (the prefix of sample groups)."""
        return self.path.stem


def apt_package(path: str | Path) -> str | None:
    """The Debian package that installs a SoundFont file of this name, or None if unknown.

    Args:
        path: a SoundFont path (only its file name matters).
    Returns:
        e.g. ``"fluid-soundfont-gm"`` for ``FluidR3_GM.sf2``. Chapter: 01_data.
    """
    name = Path(path).name
    return next((pkg for pattern, pkg in APT_PACKAGES.items() if fnmatch.fnmatch(name, pattern)), None)


def require_sf2(path: str | Path) -> None:
    """Raise ConfigError unless ``path`` names a ``.sf2`` file (a ``.sf3`` cannot be split by sample).

    Args:
        path: an entry of ``soundfonts``.
    Chapter: 01_data.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".sf3":
        raise ConfigError(
            f"soundfonts holds {path}, a .sf3 file: sample-disjoint splits need the preset → sample table "
            "that only .sf2 parsing gives (sf2utils cannot read .sf3). Leave it out of soundfonts, or "
            "convert it to .sf2 first (e.g. with Polyphone)."
        )
    if suffix != ".sf2":
        raise ConfigError(f"soundfonts holds {path}, which is not a .sf2 file; give SoundFont 2 (.sf2) paths")


def parse_font(path: str | Path) -> ParsedFont:
    """Parse the preset and sample tables of a ``.sf2`` file with sf2utils (cached per file).

    Only the RIFF ``pdta`` chunk is read; the sample data is skipped. The cache is keyed by the
    resolved path, size and modification time, so a changed file is parsed again.
    Args:
        path: a ``.sf2`` file.
    Returns:
        A :class:`ParsedFont`; ``keys`` of a preset follow :func:`preset_keys_and_samples`.
    Raises:
        ConfigError: not a ``.sf2`` path. DataError: the file is missing or not a SoundFont 2.
    Chapter: 01_data.
    """
    require_sf2(path)
    path = Path(path).expanduser()
    try:
        stat = path.resolve().stat()
    except OSError as exc:
        raise DataError(f"SoundFont {path} cannot be read ({exc}); check the path in soundfonts") from None
    presets, names = _parse_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return ParsedFont(path, presets, names)


@functools.lru_cache(maxsize=32)
def _parse_cached(path: str, size: int, mtime_ns: int) -> tuple[Mapping, tuple]:
    """The bank-0 presets and sample names of a resolved path (size and mtime only key the cache)."""
    from sf2utils.sf2parse import Sf2File

    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise DataError(f"{path} is not a SoundFont 2 file (no RIFF 'sfbk' header); replace or remove it")
        fh.seek(0)
        try:
            pdta = Sf2File(fh).raw.pdta
            tables = {k: pdta[k] for k in ("Phdr", "Pbag", "Pgen", "Inst", "Ibag", "Igen", "Shdr")}
        except Exception as exc:  # sf2utils raises bare exceptions of many kinds on damaged files
            raise DataError(
                f"{path} could not be parsed as a SoundFont 2 file ({exc!r}); replace or remove it"
            ) from None
    presets = {}
    for i, header in enumerate(tables["Phdr"][:-1]):  # the last header is the EOP sentinel
        if header.bank == 0 and header.preset not in presets:
            keys, samples = preset_keys_and_samples(tables, i)
            presets[header.preset] = Preset(header.preset, _cstr(header.name), frozenset(keys), frozenset(samples))
    names = tuple(_cstr(s.sample_name) for s in tables["Shdr"])
    return types.MappingProxyType(dict(sorted(presets.items()))), names


def preset_keys_and_samples(tables: Mapping[str, Sequence], index: int) -> tuple[set, set]:
    """The MIDI keys preset ``index`` sounds and the samples it can play, from the raw hydra tables.

    The rule: key k sounds when a preset zone's key range holds k and one zone of that zone's
    instrument holds k too; a zone without keyRange takes its global zone's range (else 0-127).
    The samples are those of every instrument zone whose range meets its preset zone's range.
    Velocity ranges are ignored (a key counts when any velocity sounds it).
    Args:
        tables: sf2utils' raw ``pdta`` lists Phdr, Pbag, Pgen, Inst, Ibag, Igen, Shdr.
        index: the preset's row in Phdr.
    Returns:
        (keys, sample indices). Chapter: 01_data.
    """
    phdr, inst = tables["Phdr"], tables["Inst"]
    zones = _zones(tables["Pbag"], tables["Pgen"], phdr[index].bag, phdr[index + 1].bag, _GEN_INSTRUMENT)
    keys, samples = set(), set()
    n_samples = len(tables["Shdr"]) - 1  # the last is the EOS sentinel
    for plo, phi, i in zones:
        if i + 1 >= len(inst):
            continue
        for ilo, ihi, s in _zones(tables["Ibag"], tables["Igen"], inst[i].bag, inst[i + 1].bag, _GEN_SAMPLE):
            lo, hi = max(plo, ilo), min(phi, ihi)
            if lo <= hi and s < n_samples:
                keys.update(range(lo, hi + 1))
                samples.add(s)
    return keys, samples


def _zones(bags: Sequence, gens: Sequence, start: int, end: int, terminal: int) -> list[tuple[int, int, int]]:
    """(key_lo, key_hi, target) of the local zones of bags start..end-1; a global zone's range is the default."""
    default, zones = (0, 127), []
    for j in range(start, min(end, len(bags) - 1)):
        key_range, target = None, None
        for gen in gens[bags[j].gen : bags[j + 1].gen]:
            if gen.oper == _GEN_KEY_RANGE:
                key_range = (gen.amount & 0xFF, gen.amount >> 8)
            elif gen.oper == terminal:
                target = gen.amount
        if target is None:
            if j == start and key_range is not None:
                default = key_range  # the global zone
            continue
        zones.append((*(key_range or default), target))
    return zones


def _cstr(raw: bytes) -> str:
    """A NUL-terminated SoundFont name as text."""
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def sample_groups(samples: Mapping[int, Iterable]) -> dict[int, int]:
    """Group programs that share any sample, transitively (union-find over program → samples).

    Args:
        samples: {program: the sample ids it plays} of one font.
    Returns:
        {program: group}, groups numbered 0, 1, ... in the order of their smallest program.
    Chapter: 01_data.
    """
    parent = {p: p for p in samples}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    owner = {}
    for program in sorted(samples):
        for s in samples[program]:
            if s in owner:
                a, b = find(owner[s]), find(program)
                parent[max(a, b)] = min(a, b)
            else:
                owner[s] = program
    roots = sorted({find(p) for p in samples})
    number = {r: i for i, r in enumerate(roots)}
    return {p: number[find(p)] for p in sorted(samples)}


def _font_for(name: str, soundfonts: Sequence[str | Path] | None) -> ParsedFont:
    """The parsed font of file ``name``: found among ``soundfonts``, else in :data:`DEBIAN_SF2_DIR`."""
    for path in soundfonts or ():
        if Path(path).name == name:
            return parse_font(path)
    return parse_font(DEBIAN_SF2_DIR / name)


def shared_samples(meta: pd.DataFrame, soundfonts: Sequence[str | Path] | None = None) -> pd.DataFrame:
    """Samples played by instruments of more than one split: the check that splits are sample-disjoint.

    Args:
        meta: note (or instrument) rows with columns soundfont (file name), program,
            instrument_str and split.
        soundfonts: paths where the fonts named in ``meta`` are; a name not found there is
            looked up in /usr/share/sounds/sf2.
    Returns:
        One row per shared sample, columns soundfont, sample (its name), sample_id, splits
        (e.g. "test, train") and instruments (the instrument_str values that play it, by
        split); an empty frame when the splits are sample-disjoint.
    Chapter: 01_data.
    """
    rows = []
    instruments = meta.drop_duplicates("instrument_str")
    for name, part in instruments.groupby("soundfont", sort=True):
        font = _font_for(name, soundfonts)
        players: dict[int, dict[str, list[str]]] = {}
        for inst in part.itertuples(index=False):
            for s in font.presets[int(inst.program)].samples if int(inst.program) in font.presets else ():
                players.setdefault(s, {}).setdefault(inst.split, []).append(inst.instrument_str)
        for s, by_split in sorted(players.items()):
            if len(by_split) > 1:
                listing = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in sorted(by_split.items()))
                rows.append(
                    {
                        "soundfont": name,
                        "sample": font.sample_names[s],
                        "sample_id": s,
                        "splits": ", ".join(sorted(by_split)),
                        "instruments": listing,
                    }
                )
    return pd.DataFrame(rows, columns=["soundfont", "sample", "sample_id", "splits", "instruments"])


def font_table(meta: pd.DataFrame, soundfonts: Sequence[str | Path] | None = None) -> pd.DataFrame:
    """Per font: its instruments, notes, sources, sample groups, samples played and instruments per split.

    Args:
        meta: note rows with columns soundfont, program, instrument_str, sample_group,
            instrument_source_str and (optionally) split.
        soundfonts: where the fonts are (as in :func:`shared_samples`).
    Returns:
        One row per font (file name as index, in the order of ``soundfonts``) with columns
        presets (bank-0 programs of the file), instruments, notes, sources (e.g. "acoustic 60,
        electronic 30"), sample_groups (the ``sample_group`` values of its instruments), samples
        (distinct samples they play) and, with a split column, train/valid/test (instruments per split).
    Chapter: 01_data.
    """
    rows = {}
    for name, part in meta.groupby("soundfont", sort=False):
        font = _font_for(name, soundfonts)
        insts = part.drop_duplicates("instrument_str")
        programs = [int(p) for p in insts["program"] if int(p) in font.presets]
        n_groups = insts["sample_group"].nunique()
        sources = insts["instrument_source_str"].value_counts()
        row = {
            "presets": len(font.presets),
            "instruments": len(insts),
            "notes": len(part),
            "sources": ", ".join(f"{s} {n}" for s, n in sorted(sources.items())),
            "sample_groups": n_groups,
            "samples": len(set().union(*(font.presets[p].samples for p in programs))),
        }
        if "split" in insts:
            row.update({s: int((insts["split"] == s).sum()) for s in ("train", "valid", "test")})
        rows[name] = row
    order = [Path(p).name for p in soundfonts or () if Path(p).name in rows]
    order += [n for n in rows if n not in order]
    return pd.DataFrame.from_dict(rows, orient="index").loc[order].rename_axis("soundfont")
