"""The harmonic codec measures semitone bands and resynthesises them as pitched tones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from samuel_live import HOP, SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.codec.base import Codec
from samuel_live.codec.harmonic import FLOOR, SILENCE, HarmonicCodec, band_frequencies
from samuel_live.errors import CodecError

A4 = 69 - 36  # band index of MIDI 69


@pytest.fixture(scope="module")
def codec() -> HarmonicCodec:
    return HarmonicCodec()


def _tone(freq: float, amplitude: float, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x])


def test_is_a_codec_with_semitone_bands(codec: HarmonicCodec) -> None:
    assert isinstance(codec, Codec)
    freqs = band_frequencies()
    assert freqs.shape == (64,)
    assert freqs[A4] == pytest.approx(440.0)
    assert freqs[0] == pytest.approx(65.406, abs=1e-3)  # C2
    assert freqs[-1] == pytest.approx(2489.016, abs=1e-3)  # D#7


def test_a440_lands_in_the_a4_band(codec: HarmonicCodec) -> None:
    latent = codec.encode(_tone(440.0, 0.5, 10 * HOP)).numpy()
    middle = latent[:, 3:-3].mean(axis=1)
    assert int(np.argmax(middle)) == A4
    assert math.exp(middle[A4]) == pytest.approx(0.5, rel=0.02)
    assert middle[A4] - middle[A4 - 1] > math.log(20)
    assert middle[A4] - middle[A4 + 1] > math.log(20)


def test_low_band_resolves_neighbouring_semitones(codec: HarmonicCodec) -> None:
    latent = codec.encode(_tone(band_frequencies()[2], 0.3, 40 * HOP)).numpy()
    middle = latent[:, 12:-12].mean(axis=1)
    assert int(np.argmax(middle)) == 2
    assert middle[2] - max(middle[1], middle[3]) > math.log(20)


def test_shapes_and_frame_count(codec: HarmonicCodec) -> None:
    assert codec.encode(np.zeros((2, WINDOW_SAMPLES), np.float32)).shape == (64, 1024)
    assert codec.encode(np.zeros((2, 3 * HOP + 1), np.float32)).shape == (64, 4)
    latent = codec.encode(np.zeros((2, 5000), np.float32))
    assert latent.dtype == torch.float32
    assert codec.decode(latent).shape == (2, 3 * HOP)
    batch = torch.full((3, 64, 5), SILENCE)
    out = codec.decode(batch)
    assert out.shape == (3, 2, 5 * HOP) and out.dtype == np.float32


def test_silence_encodes_to_the_floor(codec: HarmonicCodec) -> None:
    latent = codec.encode(np.zeros((2, 4 * HOP), np.float32))
    assert SILENCE == pytest.approx(math.log(FLOOR))
    assert torch.allclose(latent, torch.full_like(latent, SILENCE))
    assert np.abs(codec.decode(latent)).max() == 0.0


def test_a4_latent_decodes_to_a_440_hz_tone(codec: HarmonicCodec) -> None:
    latent = torch.full((64, 64), SILENCE)
    latent[A4] = math.log(0.25 + FLOOR)
    audio = codec.decode(latent)
    assert np.array_equal(audio[0], audio[1])
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[1])))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / audio.shape[1]
    assert abs(peak_hz - 440.0) < 1.0
    assert np.abs(audio[0, HOP:-HOP]).max() == pytest.approx(0.25, rel=0.01)


def test_decode_has_no_phase_jumps_at_frame_seams(codec: HarmonicCodec) -> None:
    latent = torch.full((64, 8), SILENCE)
    latent[A4] = math.log(0.5 + FLOOR)
    audio = codec.decode(latent)[0]
    reference = _tone(440.0, 0.5, audio.shape[0])[0]
    # Phase runs on the global sample clock, so a steady band is one unbroken sinusoid.
    assert np.abs(audio - reference).max() < 1e-4


def test_raw_decode_then_encode_is_close_to_identity() -> None:
    codec = HarmonicCodec(clean=None)  # every band, as the clean decode is not meant to be
    rng = np.random.default_rng(0)
    amplitude = rng.uniform(0.005, 0.1, size=(64, 200))
    kernel = np.ones(4) / 4  # latents that move no faster than the lowest band can follow
    amplitude = np.stack([np.convolve(row, kernel, mode="same") for row in amplitude])
    latent = torch.from_numpy(np.log(amplitude + FLOOR).astype(np.float32))
    again = codec.encode(codec.decode(latent))
    inner = slice(8, -8)
    corr = np.corrcoef(latent[:, inner].ravel(), again[:, inner].ravel())[0, 1]
    assert corr > 0.95
    # Bands above C4 resolve single frames well.
    assert np.corrcoef(latent[24:, inner].ravel(), again[24:, inner].ravel())[0, 1] > 0.97


def test_rejects_wrong_latent_shape(codec: HarmonicCodec) -> None:
    with pytest.raises(CodecError, match="64"):
        codec.decode(torch.zeros(32, 10))


def _direct_encode(audio: np.ndarray) -> np.ndarray:
    """The analysis written out plainly: resample_poly to 11025 Hz, then every frame's window
    times every band's windowed cos/sin (the codec computes the same in blocks)."""
    from scipy.signal import resample_poly

    from samuel_live.codec.harmonic import _analysis_kernel

    kernel, size = _analysis_kernel()
    low = resample_poly(audio.astype(np.float64).mean(axis=0), 1, 4)
    frames = -(-audio.shape[1] // HOP)
    out = np.empty((64, frames))
    for k in range(frames):
        start = k * (HOP // 4) + HOP // 8 - size // 2
        seg = np.zeros(size)
        lo, hi = max(start, 0), min(start + size, low.shape[0])
        if hi > lo:
            seg[lo - start : hi - start] = low[lo:hi]
        spectrum = seg @ kernel.astype(np.float64)
        out[:, k] = np.log(np.hypot(spectrum[:64], spectrum[64:]) + FLOOR)
    return out


@pytest.mark.parametrize("shape", [(2, 40 * HOP), (2, 9 * HOP + 777), (1, 3001), (3, 5 * HOP)])
def test_block_encode_equals_the_direct_analysis(codec: HarmonicCodec, shape) -> None:
    rng = np.random.default_rng(sum(shape))
    audio = (0.2 * rng.standard_normal(shape)).astype(np.float32)
    audio[:, :50] += 0.9  # energy right at the edges, where the padding decides
    audio[:, -50:] -= 0.9
    expected = _direct_encode(audio)
    got = codec.encode(audio).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_decode_equals_the_synthesis_written_out(codec: HarmonicCodec) -> None:
    """Every band's sine with its amplitude ramped linearly between frame centres, summed
    sample by sample; silent bands (which the decode leaves out of its product) add nothing."""
    raw = HarmonicCodec(clean=None)
    rng = np.random.default_rng(5)
    frames = 12
    z = np.full((64, frames), SILENCE, np.float32)
    for band in (0, 7, 33, 63):
        z[band] = np.log(rng.uniform(0.05, 0.4, frames) + FLOOR)
    z[20, 4:8] = np.log(0.3 + FLOOR)  # a note that starts and stops
    z[45, -1] = np.log(0.2 + FLOOR)  # a note only in the last frame
    got = raw.decode(z)
    amp = np.maximum(np.exp(z.astype(np.float64)) - FLOOR, 0.0)
    n = np.arange(frames * HOP)
    centre = (n - HOP // 2) / HOP  # frame position of each sample
    lo = np.clip(np.floor(centre).astype(int), 0, frames - 1)
    hi = np.clip(lo + 1, 0, frames - 1)
    frac = np.clip(centre - np.floor(centre), 0, 1)
    frac = np.where(centre < 0, 0.0, frac)
    want = np.zeros(frames * HOP)
    for band, freq in enumerate(band_frequencies()):
        env = amp[band, lo] * (1 - frac) + amp[band, hi] * frac
        want += env * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)
    assert got.shape == (2, frames * HOP)
    np.testing.assert_allclose(got[0], want, atol=2e-5)
    np.testing.assert_array_equal(got[0], got[1])
