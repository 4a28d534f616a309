"""A built-in instrument: a result's notes as clean additive tones, no SoundFont needed.

Each note is four harmonics (amplitudes 1, 1/2.8, 1/5.2, 1/8: a soft, organ-like tone), shaped
by an attack-decay-sustain-release envelope, its level from the velocity. Where the codec's
own decode plays every band the model left on (a wash around the notes), this plays only the
notes that note tracking kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samuel_live.render.notes import Note

PARTIALS = (1.0, 1 / 2.8, 1 / 5.2, 1 / 8.0)
ATTACK_S, DECAY_S, SUSTAIN, RELEASE_S = 0.012, 0.25, 0.6, 0.12
LEVEL = 0.12  # a velocity-127 note's peak; six at once stay below full scale


def play_tones(notes: Sequence[Note], samples: int, sample_rate: int, *,
               loop: bool = False) -> np.ndarray:
    """The notes as float32 stereo (2, ``samples``); a loop's notes ring over its seam."""
    out = np.zeros(samples, dtype=np.float64)
    for note in notes:
        start = int(round(note.start_s * sample_rate))
        held = max(1, int(round((note.end_s - note.start_s) * sample_rate)))
        n = held + int(RELEASE_S * sample_rate)
        t = np.arange(n) / sample_rate
        env = _envelope(t, held / sample_rate)
        f0 = 440.0 * 2.0 ** ((note.pitch - 69) / 12)
        tone = sum(a * np.sin(2 * np.pi * f0 * h * t)
                   for h, a in enumerate(PARTIALS, start=1) if f0 * h < 0.45 * sample_rate)
        y = LEVEL * (note.velocity / 127.0) ** 1.5 * env * tone
        idx = start + np.arange(n)
        if loop:
            np.add.at(out, idx % samples, y)
        else:
            keep = idx < samples
            out[idx[keep]] += y[keep]
    return np.stack([out, out]).astype(np.float32)


def _envelope(t: np.ndarray, held_s: float) -> np.ndarray:
    """Attack to 1, decay to the sustain level, release to 0 after ``held_s``."""
    attack = np.clip(t / ATTACK_S, 0.0, 1.0)
    decay = SUSTAIN + (1 - SUSTAIN) * np.exp(-np.maximum(t - ATTACK_S, 0.0) / DECAY_S)
    level_at_release = SUSTAIN + (1 - SUSTAIN) * np.exp(-max(held_s - ATTACK_S, 0.0) / DECAY_S)
    release = np.where(t < held_s, 1.0,
                       np.clip(1 - (t - held_s) / RELEASE_S, 0.0, 1.0) * level_at_release
                       / np.maximum(decay, 1e-9))
    return attack * decay * release
