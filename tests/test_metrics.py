"""Quality metrics: consonant vs dissonant accompaniment, keys, silence."""

from __future__ import annotations

import numpy as np

from samuel_live.train.metrics import bands, key_of, mirex_key_score, score

SR = 44100


def tones(midis: list[int], seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.2 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midis)
    return np.stack([y, y]).astype(np.float32)


def test_consonant_triad_scores_high_and_cluster_low():
    vocal = tones([72])  # C5
    triad = tones([48, 55, 64])  # C3 G3 E4
    cluster = tones([49, 54, 61])  # C#3 F#3 C#4 against C: dissonant
    assert score(vocal, triad, triad).consonance > 0.9
    assert score(vocal, cluster, triad).consonance < 0.1
    assert score(vocal, triad, triad).chroma > 0.99
    assert score(vocal, cluster, triad).chroma < 0.5


def test_silence_scores_zero():
    vocal = tones([72])
    s = score(vocal, np.zeros_like(vocal), tones([48, 55, 64]))
    assert s.consonance == 0.0 and s.chroma == 0.0 and s.key == 0.0 and s.onset == 0.0


def test_key_of_c_major_scale():
    scale = np.concatenate([tones([m], 0.5) for m in (60, 62, 64, 65, 67, 69, 71, 72, 67, 60)],
                           axis=1)
    assert key_of(bands(scale)) == 0  # C major


def test_mirex_weights():
    assert mirex_key_score(0, 0) == 1.0
    assert mirex_key_score(0, 7) == 0.5  # C -> G
    assert mirex_key_score(0, 12 + 9) == 0.3  # C -> a minor
    assert mirex_key_score(0, 12) == 0.2  # C -> c minor
    assert mirex_key_score(0, 1) == 0.0


def test_noise_does_not_agree_with_a_chord():
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal((1, 3 * SR))).repeat(2, axis=0).astype(np.float32)
    triad = tones([48, 55, 64])
    s = score(tones([72]), noise, triad)
    assert abs(s.chroma) < 0.3 and s.consonance < 0.5
