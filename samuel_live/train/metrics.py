"""Musical agreement between a vocal and an accompaniment, from semitone-band energies.

Every metric works on the harmonic codec's 64 semitone bands (MIDI 36..99), whatever codec
the model itself uses, so generated and real accompaniments are measured the same way:

- ``chroma_agreement``: mean per-frame correlation of chroma (12 pitch classes, mean-removed,
  so flat noise scores ~0) between two accompaniments (generated vs the real lower voices),
  over frames where the real one sounds.
- ``consonance``: share of sung frames where at least 75% of the accompaniment's chroma energy
  lies on pitch classes consonant with the sung note (unison/octave, thirds, fourth, fifth,
  sixths).
- ``key``: MIREX-weighted agreement of the Krumhansl-Kessler keys of vocal and accompaniment
  (same key 1, a fifth apart 0.5, relative 0.3, parallel 0.2, else 0).
- ``onset_agreement``: correlation of the onset envelopes (positive spectral flux) of vocal and
  accompaniment: high when the accompaniment moves on the singer's beats.
- ``key_profile_correlation``: correlation of the accompaniment's whole-clip chroma with the
  Krumhansl-Kessler profile of the key found in the vocal: how well it stays in the singer's key
  (a continuous cousin of ``key``).
- ``clarity``: on frames where the accompaniment sounds, the share of its chroma energy in the
  3 strongest pitch classes: ~1 for clean triads, 0.25 for energy on every semitone (a wash).
- ``echo``: ``chroma_agreement`` of the accompaniment against the vocal itself: high when it
  copies the singer's line rather than accompanying it.

``bootstrap_ci`` gives a percentile bootstrap interval of a mean over clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samuel_live.codec.harmonic import SILENCE, HarmonicCodec
from samuel_live.codec.pitch import FIRST_MIDI, MAJOR, MINOR, chroma, key_of  # noqa: F401 (re-exported)

CONSONANT = np.array([1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)  # intervals 0..11
# Krumhansl-Kessler key profiles (C major / C minor).
SOUNDING_DB = -50.0  # a frame sounds when its loudest band is within this of the clip peak


@dataclass(frozen=True)
class Scores:
    """Metric values for one clip (NaN where undefined, e.g. a silent accompaniment)."""

    chroma: float
    consonance: float
    key: float
    onset: float
    key_corr: float = float("nan")
    clarity: float = float("nan")
    echo: float = float("nan")


_codec: HarmonicCodec | None = None


def bands(audio: np.ndarray) -> np.ndarray:
    """Linear band energies (64, frames) of (2, n) audio."""
    global _codec  # a fixed DSP analyser: build its tables once per process
    if _codec is None:
        _codec = HarmonicCodec()
    z = _codec.encode(audio.astype(np.float32)).numpy()
    return np.exp(np.maximum(z, SILENCE)) - np.exp(SILENCE)


def sounding(energy: np.ndarray) -> np.ndarray:
    """Boolean (frames,) mask of frames with sound relative to the clip's peak."""
    peak = energy.max(axis=0)
    ref = peak.max()
    if ref <= 0:
        return np.zeros(energy.shape[1], dtype=bool)
    return 20 * np.log10(np.maximum(peak, 1e-12) / ref) > SOUNDING_DB


def sung_pitch_class(energy: np.ndarray) -> np.ndarray:
    """Per-frame pitch class of the sung note: the lowest strong band (the fundamental)."""
    strong = energy >= 0.5 * energy.max(axis=0, keepdims=True)
    lowest = strong.argmax(axis=0)
    return (FIRST_MIDI + lowest) % 12


def chroma_agreement(gen: np.ndarray, ref: np.ndarray) -> float:
    """Mean per-frame chroma correlation over frames where the reference sounds.

    Frames where the generated accompaniment is silent count as 0 (no agreement)."""
    cg, cr = chroma(gen) * sounding(gen), chroma(ref)
    cg, cr = cg - cg.mean(axis=0), cr - cr.mean(axis=0)
    mask = sounding(ref)
    if not mask.any():
        return float("nan")
    num = (cg * cr).sum(axis=0)
    den = np.linalg.norm(cg, axis=0) * np.linalg.norm(cr, axis=0) + 1e-12
    return float((num / den)[mask].mean())


def consonance(vocal: np.ndarray, accomp: np.ndarray, share: float = 0.75) -> float:
    """Share of sung frames whose accompaniment chroma is >= ``share`` consonant.

    Sung frames with a silent accompaniment count as not consonant."""
    mask = sounding(vocal)
    if not mask.any():
        return float("nan")
    note = sung_pitch_class(vocal)
    ca = chroma(accomp)
    intervals = (np.arange(12)[:, None] - note[None, :]) % 12
    cons = (ca * CONSONANT[intervals]).sum(axis=0) / (ca.sum(axis=0) + 1e-12)
    ok = (cons >= share) & sounding(accomp)
    return float(ok[mask].mean())


def mirex_key_score(a: int, b: int) -> float:
    """MIREX key-estimation weighting between key indices (0..11 major, 12..23 minor)."""
    if a < 0 or b < 0:
        return 0.0
    ta, ma, tb, mb = a % 12, a >= 12, b % 12, b >= 12
    if a == b:
        return 1.0
    if ma == mb and (tb - ta) % 12 in (5, 7):
        return 0.5
    if not ma and mb and tb == (ta + 9) % 12 or ma and not mb and tb == (ta + 3) % 12:
        return 0.3
    if ta == tb:
        return 0.2
    return 0.0


def onset_envelope(energy: np.ndarray) -> np.ndarray:
    """Positive spectral flux of log band energy, per frame."""
    logz = np.log(energy + 1e-4)
    flux = np.maximum(np.diff(logz, axis=1), 0).sum(axis=0)
    return np.concatenate([[0.0], flux])


def onset_agreement(vocal: np.ndarray, accomp: np.ndarray) -> float:
    """Correlation of onset envelopes; 0 when either is flat (e.g. silence)."""
    a, b = onset_envelope(vocal), onset_envelope(accomp)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def key_profile(key: int) -> np.ndarray:
    """The Krumhansl-Kessler profile (12,) of a key index (0..11 major, 12..23 minor)."""
    return np.roll(MAJOR if key < 12 else MINOR, key % 12)


def key_profile_correlation(vocal: np.ndarray, accomp: np.ndarray) -> float:
    """Correlation of the accompaniment's chroma profile with the vocal key's profile.

    NaN when the vocal is silent; 0 when the accompaniment is silent or flat."""
    key = key_of(vocal)
    if key < 0:
        return float("nan")
    profile = (chroma(accomp) * sounding(accomp)).sum(axis=1)
    if profile.std() == 0:
        return 0.0
    return float(np.corrcoef(profile, key_profile(key))[0, 1])


def clarity(energy: np.ndarray, top: int = 3) -> float:
    """Mean share of chroma energy in the ``top`` strongest pitch classes, on sounding frames.

    NaN when nothing sounds."""
    mask = sounding(energy)
    if not mask.any():
        return float("nan")
    c = chroma(energy)[:, mask]
    strongest = np.sort(c, axis=0)[-top:].sum(axis=0)
    return float((strongest / (c.sum(axis=0) + 1e-12)).mean())


def bootstrap_ci(values: list[float] | np.ndarray, *, level: float = 0.95,
                 resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap interval of the mean of the finite ``values``.

    All NaN when no value is finite; a single value gives a zero-width interval."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(x.mean()), float(lo), float(hi)


def score(vocal: np.ndarray, accomp: np.ndarray, reference: np.ndarray | None) -> Scores:
    """All metrics for (2, n) vocal and accompaniment audio (reference: the real one)."""
    n = min(vocal.shape[-1], accomp.shape[-1])
    if reference is not None:
        n = min(n, reference.shape[-1])
        reference = reference[:, :n]
    vocal, accomp = vocal[:, :n], accomp[:, :n]
    ev, ea = bands(vocal), bands(accomp)
    silent = not sounding(ea).any()
    key_v, key_a = key_of(ev), key_of(ea)
    return Scores(
        chroma=chroma_agreement(ea, bands(reference)) if reference is not None else float("nan"),
        consonance=consonance(ev, ea),
        key=float("nan") if key_v < 0 else (0.0 if silent else mirex_key_score(key_v, key_a)),
        onset=onset_agreement(ev, ea),
        key_corr=key_profile_correlation(ev, ea),
        clarity=clarity(ea),
        echo=chroma_agreement(ea, ev),
    )
