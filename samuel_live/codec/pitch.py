"""Pitch classes of semitone-band energies: chroma, the Krumhansl-Kessler key, and scales.

Band ``b`` of the ``harmonic`` codec is MIDI note ``36 + b`` (C2 up), so its pitch class is
``(36 + b) % 12``. Keys are indexed 0..11 major (tonic pitch class, C = 0) and 12..23 minor.
"""

from __future__ import annotations

import re

import numpy as np

from samuel_live.errors import InvalidArgumentError

FIRST_MIDI = 36
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor
LEADING_TONE = 11  # the raised seventh of harmonic minor, as common in minor as the flat one
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_KEY = re.compile(r"^\s*([A-Ga-g])([#b]?)\s*(m|min|minor|maj|major)?\s*$", re.IGNORECASE)


def chroma(energy: np.ndarray) -> np.ndarray:
    """(12, frames) pitch-class energy of (bands, frames) linear band energies."""
    out = np.zeros((12, energy.shape[1]))
    for pc in range(12):
        out[(FIRST_MIDI + pc) % 12] = energy[pc::12].sum(axis=0)
    return out


def key_of(energy: np.ndarray) -> int:
    """Krumhansl-Kessler key index of (bands, frames) energies; -1 when silent."""
    profile = chroma(energy).sum(axis=1)
    if profile.sum() <= 0 or profile.std() == 0:
        return -1
    scores = [np.corrcoef(profile, np.roll(MAJOR, k))[0, 1] for k in range(12)]
    scores += [np.corrcoef(profile, np.roll(MINOR, k))[0, 1] for k in range(12)]
    return int(np.argmax(scores))


def key_name(key: int) -> str:
    """'C major', 'F# minor', ... of a key index."""
    return f"{NAMES[key % 12]} {'minor' if key >= 12 else 'major'}"


def parse_key(text: str) -> int:
    """Key index of 'C major', 'f# minor', 'Bb', 'Am', 'Eb min' (a bare tonic is major)."""
    found = _KEY.match(text)
    if not found:
        raise InvalidArgumentError(
            f"key {text!r}: write a tonic (C, C#, Db ... B) and major or minor, e.g. 'A minor'")
    letter, accidental, mode = found.groups()
    pc = (NAMES.index(letter.upper()) + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return pc + (12 if (mode or "").lower() in ("m", "min", "minor") else 0)


def scale_pitch_classes(key: int) -> frozenset[int]:
    """Pitch classes of a key's scale: major, or natural minor plus the leading tone."""
    steps = MINOR_SCALE + (LEADING_TONE,) if key >= 12 else MAJOR_SCALE
    return frozenset((key % 12 + step) % 12 for step in steps)


def outside_scale(key: int, bands: int) -> np.ndarray:
    """Boolean (bands,) mask of the semitone bands whose pitch class is not in the scale."""
    pcs = scale_pitch_classes(key)
    return np.array([(FIRST_MIDI + b) % 12 not in pcs for b in range(bands)])


LOCK_DB = 24.0
"""How far the key lock lowers out-of-scale semitone bands in every sampler step's clean
estimate: enough to take wrong notes out of the harmony, little enough that a passing tone the
model insists on can still be heard faintly."""


def lock_key(setting: str, vocal_energy: np.ndarray) -> int | None:
    """The key index a key setting locks to: None for "off", or for "auto" with a vocal too
    flat or silent to have a key; the Krumhansl key of the vocal for "auto"; else the key
    named (``parse_key``)."""
    if setting == "off":
        return None
    if setting == "auto":
        key = key_of(vocal_energy)
        return key if key >= 0 else None
    return parse_key(setting)


TONAL_DB = 6.0
"""How far the key lock lowers the least stable in-scale degree, relative to the tonic: each
scale degree is lowered by ``TONAL_DB * (1 - p / p_tonic)`` where ``p`` is its weight in the
Krumhansl-Kessler profile of the key (major: the fifth 1.1 dB, the leading tone 3.3 dB; minor:
the third 0.9 dB, the fifth 1.5 dB). A gentle pull towards the tonic and dominant, as a
listener's tonal hierarchy has it; chosen on the tuning sets (0, 3, 5, 6, 8, 10, 16 dB tried:
below 5 the key heard in the accompaniment still drifts to the dominant or the relative key,
above 8 consonance with the sung note falls)."""


def scale_cut(key: int, bands: int, db: float = LOCK_DB, tonal_db: float = TONAL_DB) -> np.ndarray:
    """(bands,) amounts in natural-log magnitude (the ``harmonic`` codec's latent is log
    magnitude): ``db`` on bands outside the key's scale; on the scale's own degrees the tonal
    hierarchy's ``tonal_db * (1 - p / p_tonic)``, 0 on the tonic (see ``TONAL_DB``)."""
    profile = MINOR if key >= 12 else MAJOR
    degree = (FIRST_MIDI + np.arange(bands) - key) % 12
    tonal = tonal_db * np.clip(1.0 - profile[degree] / profile[0], 0.0, None)
    return np.where(outside_scale(key, bands), db, tonal) * (np.log(10.0) / 20.0)
