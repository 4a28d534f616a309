"""The clean decode plays the notes of a latent and nothing between them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from samuel_live import HOP, SAMPLE_RATE
from samuel_live.codec.harmonic import (
    CLEAN,
    FLOOR,
    SILENCE,
    CleanDecode,
    HarmonicCodec,
    band_frequencies,
    clean_amplitudes,
)

CHORD = [60 - 36, 64 - 36, 67 - 36]  # C4 E4 G4 band indices


@pytest.fixture(scope="module")
def clean() -> HarmonicCodec:
    return HarmonicCodec()


@pytest.fixture(scope="module")
def raw() -> HarmonicCodec:
    return HarmonicCodec(clean=None)


def _outside_share(audio: np.ndarray, notes: list[int], cents: float = 50.0) -> float:
    """Share of the decoded audio's spectral power farther than ``cents`` from every note."""
    x = audio[0, 4 * HOP : -4 * HOP].astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freq = np.maximum(np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE), 1e-3)
    near = np.zeros(freq.size, dtype=bool)
    for band in notes:
        near |= np.abs(1200.0 * np.log2(freq / band_frequencies()[band])) < cents
    return float(1.0 - power[near].sum() / power.sum())


def _bursty_chord_latent(seed: int, frames: int = 64) -> torch.Tensor:
    """What a model emits: the chord flickering by up to 12 dB a frame, a wash in every band."""
    rng = np.random.default_rng(seed)
    amp = 0.2 * 10.0 ** (rng.uniform(-45.0, -25.0, size=(64, frames)) / 20.0)
    for band in CHORD:
        amp[band] = 0.2 * 10.0 ** (rng.uniform(-12.0, 0.0, size=frames) / 20.0)
    return torch.from_numpy(np.log(amp + FLOOR).astype(np.float32))


def test_the_default_decode_is_clean() -> None:
    assert HarmonicCodec().clean is CLEAN


def test_encoded_chord_in_noise_decodes_to_the_chord_alone(clean, raw) -> None:
    n = 48 * HOP
    t = np.arange(n) / SAMPLE_RATE
    x = sum(0.2 * np.sin(2 * np.pi * band_frequencies()[b] * t) for b in CHORD)
    x = x + 0.01 * np.random.default_rng(0).standard_normal(n)
    latent = clean.encode(np.stack([x, x]).astype(np.float32))
    assert _outside_share(raw.decode(latent), CHORD) > 1e-4  # the raw decode plays the noise
    audio = clean.decode(latent)
    assert _outside_share(audio, CHORD) < 1e-5
    # Each note keeps its amplitude: the chord is what it was, level included.
    again = np.exp(clean.encode(audio).numpy()[:, 8:-8]) - FLOOR
    assert again[CHORD].mean(axis=1) == pytest.approx([0.2, 0.2, 0.2], rel=0.03)


@pytest.mark.parametrize("seed", [0, 1])
def test_bursty_chord_with_a_wash_decodes_to_the_chord_alone(clean, raw, seed) -> None:
    latent = _bursty_chord_latent(seed)
    assert _outside_share(raw.decode(latent), CHORD) > 0.02
    audio = clean.decode(latent)
    # Energy outside the chord's notes (the wash, and the sidebands of a flickering envelope).
    assert _outside_share(audio, CHORD) < 0.004
    # The level stays comparable to the raw decode's.
    ratio = np.sqrt((audio**2).mean() / (raw.decode(latent) ** 2).mean())
    assert 0.9 < ratio < 1.1


def test_steady_notes_decode_exactly() -> None:
    amp = np.zeros((40, 64))
    amp[:, CHORD] = [0.3, 0.1, 0.05]
    assert np.allclose(clean_amplitudes(amp, CLEAN), amp)


def test_notes_hold_through_flicker_and_fall_at_most_the_release() -> None:
    amp = np.zeros((40, 64))
    amp[:, 30] = np.where(np.arange(40) % 2 == 0, 0.5, 0.05)  # 20 dB dips every other frame
    out = clean_amplitudes(amp, CLEAN)[:, 30]
    db = 20 * np.log10(out)
    assert np.diff(db).min() >= -CLEAN.release_db - 1e-9
    assert db.max() - db.min() <= CLEAN.release_db + 1e-9


def test_a_note_that_flickers_far_below_its_neighbours_is_still_one_note() -> None:
    amp = np.zeros((40, 64))
    amp[:, 10] = 1.0
    amp[:, 30] = np.where(np.arange(40) % 2 == 0, 1.0, 1e-3)  # -60 dB every other frame
    out = clean_amplitudes(amp, CLEAN)
    assert (out[:, 30] > 0).all()  # decided on smoothed levels: not a train of 1-frame blips


def test_hysteresis_keeps_a_note_down_to_the_lower_threshold() -> None:
    cfg = CleanDecode(smooth_frames=1)
    amp = np.zeros((40, 64))
    amp[:, 10] = 1.0  # the frame's strongest band, always
    on, held = 10.0 ** (-(cfg.relative_db - 5) / 20), 10.0 ** (-(cfg.relative_db + 5) / 20)
    amp[:, 30] = [held] * 5 + [on] * 5 + [held] * 10 + [0.0] * 20  # rises, falls, ends
    amp[:, 40] = held  # never rises above the turn-on threshold
    keep = clean_amplitudes(amp, cfg) > 0
    assert keep[:, 10].all()
    assert keep[:20, 30].all() and not keep[20:, 30].any()
    assert not keep[:, 40].any()


def test_too_quiet_and_too_short_notes_are_dropped() -> None:
    cfg = CleanDecode(smooth_frames=1)
    amp = np.zeros((40, 64))
    amp[:, 10] = 1.0
    amp[20, 20] = 1.0  # one frame: shorter than min_frames
    amp[20:22, 30] = 1.0  # two frames: a note
    amp[:, 50] = 10.0 ** (-(cfg.relative_db + cfg.hysteresis_db + 3) / 20)  # far below
    amp[:, 11] = 0.9  # beside the strongest band: leakage, not a peak
    keep = clean_amplitudes(amp, cfg) > 0
    assert not keep[:, 20].any()
    assert keep[20:22, 30].all() and keep[:, 30].sum() == 2
    assert not keep[:, 50].any() and not keep[:, 11].any()


def test_quiet_frames_fall_below_the_global_floor() -> None:
    amp = np.zeros((40, 64))
    amp[:20, 10] = 1.0  # the loud part of the clip
    amp[20:, 30] = 10.0 ** (-(CLEAN.global_db - 5) / 20)  # quiet, but above the floor
    amp[20:, 40] = 10.0 ** (-(CLEAN.global_db + CLEAN.hysteresis_db + 2) / 20)  # below it
    keep = clean_amplitudes(amp, CLEAN) > 0
    assert keep[22:, 30].all()
    assert not keep[:, 40].any()  # within relative_db of band 30, yet below the floor


def test_a_note_starts_on_its_frame_without_a_click(clean) -> None:
    latent = torch.full((64, 24), SILENCE)
    latent[CHORD[0], :] = math.log(0.5 + FLOOR)  # a held bass note keeps the level reference
    latent[CHORD[2], 12:] = math.log(0.5 + FLOOR)
    audio = clean.decode(latent)[0]
    ref = 0.5 * np.sin(2 * np.pi * band_frequencies()[CHORD[0]] * np.arange(audio.size)
                       / SAMPLE_RATE)
    late = audio - ref  # the G4 alone
    assert np.abs(late[: 11 * HOP + HOP // 2]).max() < 1e-4  # nothing before its onset ramp
    assert np.abs(late[12 * HOP + HOP // 2 :]).max() == pytest.approx(0.5, rel=0.01)
    # No click: sample-to-sample steps stay within a full-amplitude sine's plus the ramp's.
    step = 2 * np.pi * band_frequencies()[CHORD[2]] * 0.5 / SAMPLE_RATE + 0.5 / HOP
    assert np.abs(np.diff(late)).max() <= step * 1.01


def test_silence_and_batches(clean) -> None:
    assert np.abs(clean.decode(torch.full((64, 6), SILENCE))).max() == 0.0
    batch = torch.stack([_bursty_chord_latent(0, 16), _bursty_chord_latent(1, 16)])
    out = clean.decode(batch)
    assert out.shape == (2, 2, 16 * HOP)
    assert np.allclose(out[1], clean.decode(batch[1]))
