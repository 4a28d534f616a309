"""The naive audio-only harmonizer baseline of bench/quality.py (issue 13)."""

from __future__ import annotations

import numpy as np

from samuel_live.train.baselines import (
    choose_chords,
    chord_midi,
    diatonic_triads,
    harmonize,
)
from samuel_live.train.metrics import bands, chroma, clarity, score, sounding

SR = 44100


def sung(midis: list[int], each: float = 0.25) -> np.ndarray:
    """A melody of sines, ``each`` seconds per note (0 = a rest)."""
    t = np.arange(int(each * SR)) / SR
    parts = [np.zeros_like(t) if m == 0 else 0.2 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12)
                                                            * t) for m in midis]
    y = np.concatenate(parts)
    return np.stack([y, y]).astype(np.float32)


def test_diatonic_triads_of_c_major_and_a_minor():
    assert diatonic_triads(0) == [(0, 4, 7), (2, 5, 9), (4, 7, 11), (5, 9, 0), (7, 11, 2),
                                  (9, 0, 4), (11, 2, 5)]
    assert diatonic_triads(12 + 9)[:2] == [(9, 0, 4), (11, 2, 5)]  # a minor: i, ii dim
    assert chord_midi((5, 9, 0)) == [41, 53, 57, 60]  # F2, F3 A3 C4


def test_each_second_gets_the_triad_holding_its_sung_notes():
    # C major: a second of C-E-G-E, a second of F-A-C-A, a second of G-B-D-B, a silent second
    vocal = sung([60, 64, 67, 64, 65, 69, 72, 69, 67, 71, 74, 71, 0, 0, 0, 0])
    chords = choose_chords(bands(vocal), round(SR / 2048))
    assert chords[:3] == [(0, 4, 7), (5, 9, 0), (7, 11, 2)]
    assert chords[-1] is None


def test_harmonizer_plays_those_chords_as_clean_sines():
    vocal = sung([60, 64, 67, 64, 65, 69, 72, 69, 67, 71, 74, 71, 0, 0, 0, 0])
    out = harmonize(vocal)
    assert out.shape == vocal.shape and out.dtype == np.float32
    e = bands(out)
    hop = round(SR / 2048)
    first = chroma(e[:, 3 : hop - 3]).sum(axis=1)
    assert set(np.argsort(first)[-3:]) == {0, 4, 7}  # C E G
    second = chroma(e[:, hop + 3 : 2 * hop - 3]).sum(axis=1)
    assert set(np.argsort(second)[-3:]) == {5, 9, 0}  # F A C
    assert not sounding(e)[3 * hop + 4 :].any()  # the silent second stays silent
    s = score(vocal, out, None)
    assert clarity(e) > 0.8 and s.consonance > 0.7 and s.key == 1.0
