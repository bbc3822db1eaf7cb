"""Reading one note's wav: 4 s, 16 kHz, mono, finite, within [-1, 1] and not silent, or a reason why not.

:func:`read_note` decodes with libsndfile; :func:`read_note_file` reads the file's bytes once,
hashes them (for the manifests) and decodes NSynth's own format (16-bit PCM, mono, 16 kHz)
directly, falling back to libsndfile for anything else. Both give the same samples and the
same reasons.

Chapter: 01_data.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import soundfile as sf

from vaetone.config import NOTE_SECONDS, SAMPLE_RATE
from vaetone.data.manifest import NO_RECORD, file_sha256

N_SAMPLES = int(SAMPLE_RATE * NOTE_SECONDS)
"""Samples of one note: 64000 (4 s at 16 kHz)."""
SILENCE_PEAK = 1.0 / 32768
"""A note whose peak is at most one 16-bit step is silent."""
MAX_NOTE_SECONDS = 60.0
"""A wav longer than this is refused from its header, before any sample is read."""


def read_note(
    file: str | Path, resample: bool = False, mix_to_mono: bool = False, normalise: bool = False
) -> tuple[np.ndarray | None, str | None]:
    """Read one note's wav and check it is 4 s, 16 kHz, mono, finite and not silent.

    Args:
        file: the wav path.
        resample: resample another sample rate to 16 kHz (soxr) instead of refusing it.
        mix_to_mono: average several channels instead of refusing them.
        normalise: scale a note whose samples leave [-1, 1] to a peak of 1 instead of refusing it.
    Returns:
        ``(audio float32 (64000,), None)`` or ``(None, reason)``. The length is checked from the
        header first, so a long file is refused without reading it.
    Chapter: 01_data (through :func:`read_note_file` and ``data-check``).
    """
    file = os.fspath(file)
    _, reason = _stat_file(file)
    if reason is not None:
        return None, reason
    return _decode_file(file, resample, mix_to_mono, normalise)


def read_note_file(
    file: str | Path, resample: bool = False, mix_to_mono: bool = False, normalise: bool = False
) -> tuple[np.ndarray | None, str | None, dict]:
    """Read one note's wav once: its checked audio (as :func:`read_note`) and the record of its bytes.

    The bytes are read once, hashed, and decoded directly when the file is a plain 16-bit mono
    16-kHz wav (NSynth's format); any other file goes through libsndfile like :func:`read_note`.

    Args:
        file: the wav path; resample, mix_to_mono, normalise: as in :func:`read_note`.
    Returns:
        ``(audio (64000,) float32 or None, reason or None, record)``, record being
        ``{"size": bytes, "mtime_ns": int, "sha256": hex}`` as :func:`vaetone.data.manifest.wav_record`
        gives it (all None for a missing file). Chapter: 01_data (through the preparation).
    """
    file = os.fspath(file)
    st, reason = _stat_file(file)
    if reason is not None:
        return None, reason, dict(NO_RECORD)
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": None}
    if st.st_size > MAX_READ_BYTES:  # hash it in blocks; its header refuses it below
        record["sha256"] = file_sha256(Path(file))
        return *_decode_file(file, resample, mix_to_mono, normalise), record
    with open(file, "rb") as fh:
        data = fh.read()
    record["sha256"] = hashlib.sha256(data).hexdigest()
    samples = _pcm16_mono(data)
    if samples is None:
        return *_decode_file(file, resample, mix_to_mono, normalise), record
    return *_check_pcm16(samples), record


MAX_READ_BYTES = 1 << 20
"""Larger files are hashed in blocks and decoded by libsndfile, never read whole (an NSynth note is 128 kB)."""


def _stat_file(file: str) -> tuple[os.stat_result | None, str | None]:
    """One ``stat`` of a note's wav, or why it is none (missing, a folder, not openable)."""
    shown = f"{os.path.basename(os.path.dirname(file))}/{os.path.basename(file)}"
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return None, f"audio file missing: expected {shown}"
    except (OSError, ValueError) as exc:  # symlink loops, long names, permissions
        return None, f"cannot open the audio file ({type(exc).__name__}: {str(exc)[:200]})"
    if stat.S_ISDIR(st.st_mode):
        return None, f"{shown} is a folder, not a wav file"
    if not stat.S_ISREG(st.st_mode):
        return None, f"audio file missing: expected {shown}"
    return st, None


def _pcm16_mono(data: bytes) -> np.ndarray | None:
    """The int16 samples of a canonical 16-bit mono 16-kHz PCM wav (a view of ``data``), else None.

    Only a well-formed RIFF/WAVE with a PCM ``fmt `` chunk and a complete ``data`` chunk is
    decoded here; anything else (other formats, truncation, odd chunks) returns None.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    view, pos, fmt = memoryview(data), 12, None
    while pos + 8 <= len(view):
        tag, size = bytes(view[pos : pos + 4]), int.from_bytes(view[pos + 4 : pos + 8], "little")
        body = view[pos + 8 : pos + 8 + size]
        if len(body) < size:
            return None
        if tag == b"fmt ":
            fmt = bytes(body[:16])
        elif tag == b"data":
            if fmt is None or (fmt[0:2], fmt[2:4], fmt[4:8], fmt[14:16]) != (_PCM, _MONO, _RATE, _BITS) or size % 2:
                return None
            return np.frombuffer(body, "<i2")
        pos += 8 + size + (size & 1)
    return None


_PCM, _MONO, _BITS = (1).to_bytes(2, "little"), (1).to_bytes(2, "little"), (16).to_bytes(2, "little")
_RATE = SAMPLE_RATE.to_bytes(4, "little")


def _decode_file(file: str, resample: bool, mix_to_mono: bool, normalise: bool) -> tuple[np.ndarray | None, str | None]:
    """Decode a wav with libsndfile (refusing a long one from its header) and check its samples."""
    try:
        with sf.SoundFile(file) as snd:
            if snd.frames > MAX_NOTE_SECONDS * snd.samplerate:
                return None, (
                    f"{snd.frames / snd.samplerate:.1f} s long, expected {NOTE_SECONDS:g} s: refused from its "
                    "header without reading it"
                )
            y, sr = snd.read(dtype="float32", always_2d=True), snd.samplerate
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        return None, f"unreadable or corrupt audio file ({exc})"
    if y.shape[1] != 1:
        if not mix_to_mono:
            return None, f"{y.shape[1]} channels, expected mono (pass mix_to_mono=True to mix down)"
        y = y.mean(axis=1, keepdims=True)
    y = y[:, 0]
    if sr != SAMPLE_RATE:
        if not resample:
            return None, f"sample rate {sr} Hz, expected {SAMPLE_RATE} Hz (pass resample=True to resample)"
        y, sr = _resample(y, sr)
    return _check_samples(y, normalise)


def _resample(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Resample to 16 kHz, fixing a one- or two-sample rounding of a 4-s note's length."""
    import soxr  # installed with librosa

    out = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
    if abs(len(y) / sr - NOTE_SECONDS) < 1.0 / sr and abs(len(out) - N_SAMPLES) <= 2:
        out = np.pad(out, (0, max(0, N_SAMPLES - len(out))))[:N_SAMPLES]
    return out.astype(np.float32), SAMPLE_RATE


def _check_pcm16(samples: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """:func:`_check_samples` of 16-bit samples, which are finite and within [-1, 1]: their length and level only.

    Returns the float32 samples as libsndfile scales them (x / 32768, exact), or the same reason.
    """
    if len(samples) != N_SAMPLES:
        return None, _duration_reason(len(samples))
    peak = max(int(samples.max()), -int(samples.min())) / 32768
    if peak <= SILENCE_PEAK:
        return None, _silence_reason(peak)
    y = samples.astype(np.float32)
    y *= np.float32(1 / 32768)
    return y, None


def _duration_reason(n: int) -> str:
    """Why a note of ``n`` samples is refused."""
    return (
        f"{n} samples ({n / SAMPLE_RATE:.3f} s), expected {N_SAMPLES} "
        f"({NOTE_SECONDS:g} s at {SAMPLE_RATE} Hz): truncated or of another duration"
    )


def _silence_reason(peak: float) -> str:
    """Why a note peaking at ``peak`` is refused."""
    return f"silent (peak {peak:.1e}, at most one 16-bit step)"


def _check_samples(y: np.ndarray, normalise: bool = False) -> tuple[np.ndarray | None, str | None]:
    """Refuse a note that is not 64000 samples, holds NaN/inf, leaves [-1, 1] (unless normalised), or is silent."""
    if len(y) != N_SAMPLES:
        return None, _duration_reason(len(y))
    if not np.isfinite(y).all():
        return None, "holds NaN or infinite samples"
    peak = float(np.abs(y).max())
    if peak > 1.0:
        if not normalise:
            return None, f"samples outside [-1, 1] (peak {peak:.3g}); pass --normalise to scale the note to a peak of 1"
        y, peak = (y / peak).astype(np.float32), 1.0
    if peak <= SILENCE_PEAK:
        return None, _silence_reason(peak)
    return y, None
