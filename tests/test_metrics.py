"""Quality metrics: consonant vs dissonant accompaniment, keys, silence."""

from __future__ import annotations

import numpy as np
import pytest

from samuel_live.train.metrics import (
    MAJOR,
    MINOR,
    bands,
    bootstrap_ci,
    clarity,
    key_of,
    key_profile,
    key_profile_correlation,
    mirex_key_score,
    score,
)

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


# Clarity, key-profile correlation, echo, bootstrap intervals (issue 13).

C_MAJOR_TUNE = (60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)


def melody(midis: tuple[int, ...], each: float = 0.5) -> np.ndarray:
    return np.concatenate([tones([m], each) for m in midis], axis=1)


def test_clarity_of_a_triad_is_high_and_of_noise_or_a_cluster_low():
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal((1, 3 * SR))).repeat(2, axis=0).astype(np.float32)
    assert clarity(bands(tones([48, 55, 64]))) > 0.9  # three pitch classes
    assert clarity(bands(tones([48, 50, 52, 54, 56, 58]))) < 0.6  # six pitch classes
    assert clarity(bands(noise)) < 0.45  # energy on every semitone
    assert np.isnan(clarity(bands(np.zeros((2, SR), dtype=np.float32))))


def test_key_profile_correlation_prefers_the_singers_key():
    vocal = bands(melody(C_MAJOR_TUNE))
    in_key = key_profile_correlation(vocal, bands(tones([48, 55, 64])))  # C major triad
    out_of_key = key_profile_correlation(vocal, bands(tones([54, 61, 70])))  # F# major triad
    assert in_key > 0.5 and out_of_key < 0.0
    assert key_profile_correlation(vocal, bands(np.zeros((2, SR), dtype=np.float32))) == 0.0
    np.testing.assert_allclose(key_profile(0), MAJOR)
    np.testing.assert_allclose(key_profile(12 + 9)[9], MINOR[0])  # a minor's tonic weight


def test_echo_is_high_when_the_accompaniment_copies_the_vocal():
    vocal = melody(C_MAJOR_TUNE)
    assert score(vocal, vocal, None).echo > 0.9
    assert score(vocal, tones([48, 55, 64], vocal.shape[1] / SR), None).echo < 0.5


def test_bootstrap_interval_holds_the_mean_and_shrinks_with_more_clips():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.5, 0.2, 10), rng.normal(0.5, 0.2, 400)
    m, lo, hi = bootstrap_ci(large)
    assert lo < m < hi and m == pytest.approx(large.mean())
    assert hi - lo == pytest.approx(2 * 1.96 * 0.2 / np.sqrt(400), rel=0.2)  # normal theory
    _, lo_s, hi_s = bootstrap_ci(small)
    assert hi_s - lo_s > 2 * (hi - lo)
    assert bootstrap_ci([0.3, float("nan"), 0.3]) == (0.3, 0.3, 0.3)  # NaN dropped
    assert all(np.isnan(bootstrap_ci([float("nan")])))
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)  # reproducible
