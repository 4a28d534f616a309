"""A naive audio-only harmonizer: the baseline the model has to beat.

It hears only the vocal audio (never a score): the key from the vocal's whole-clip chroma
(Krumhansl-Kessler), then for every second the diatonic triad of that key holding most of the
sung pitch-class energy, played as plain sine chords (root in octave 3, third, fifth, and the
root an octave below). Seconds without singing are silent.
"""

from __future__ import annotations

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.codec.pitch import MAJOR_SCALE, MINOR_SCALE, chroma, key_of
from samuel_live.train.metrics import bands, sounding

HOP = 2048  # frames of the analysis (the harmonic codec's hop)
LEVEL = 0.08  # peak amplitude of each sine
FADE_S = 0.01  # ramp at every chord change (no clicks)


def diatonic_triads(key: int) -> list[tuple[int, int, int]]:
    """Pitch classes (root, third, fifth) of the 7 triads of a key (0..11 major, 12..23 minor)."""
    tonic, scale = key % 12, MINOR_SCALE if key >= 12 else MAJOR_SCALE
    pcs = [(tonic + d) % 12 for d in scale]
    return [(pcs[i], pcs[(i + 2) % 7], pcs[(i + 4) % 7]) for i in range(7)]


def choose_chords(energy: np.ndarray, frames_per_chord: int) -> list[tuple[int, int, int] | None]:
    """For each block of frames, the diatonic triad with most of the sung chroma (None: silence).

    Ties go to the earlier scale degree (the tonic first)."""
    key = key_of(energy)
    if key < 0:
        return [None] * -(-energy.shape[1] // frames_per_chord)
    triads = diatonic_triads(key)
    c = chroma(energy) * sounding(energy)
    out: list[tuple[int, int, int] | None] = []
    for a in range(0, energy.shape[1], frames_per_chord):
        block = c[:, a : a + frames_per_chord].sum(axis=1)
        if block.sum() <= 0:
            out.append(None)
            continue
        held = [block[list(t)].sum() for t in triads]
        out.append(triads[int(np.argmax(held))])
    return out


def chord_midi(triad: tuple[int, int, int]) -> list[int]:
    """MIDI notes voicing a triad: bass root (octave 2), root (octave 3), third and fifth above."""
    root = 48 + triad[0]
    third = root + (triad[1] - triad[0]) % 12
    fifth = root + (triad[2] - triad[0]) % 12
    return [root - 12, root, third, fifth]


def harmonize(vocal: np.ndarray, seconds_per_chord: float = 1.0,
              sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Sine-chord accompaniment (2, n) float32 of a (2, n) vocal at ``sample_rate``."""
    n = vocal.shape[1]
    energy = bands(vocal)
    frames = max(1, round(seconds_per_chord * sample_rate / HOP))
    chords = choose_chords(energy, frames)
    block = frames * HOP
    t = np.arange(block) / sample_rate
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / FADE_S)
    mono = np.zeros(len(chords) * block)
    for k, triad in enumerate(chords):
        if triad is None:
            continue
        freqs = 440.0 * 2.0 ** ((np.array(chord_midi(triad)) - 69) / 12)
        wave = np.sin(2 * np.pi * freqs[:, None] * t).sum(axis=0)  # ramps hide the phase
        mono[k * block : (k + 1) * block] = LEVEL * wave * ramp
    mono = mono[:n]
    return np.stack([mono, mono]).astype(np.float32)
