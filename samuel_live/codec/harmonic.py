"""A fixed DSP codec: 64 semitone band magnitudes (C2..D#7) in, additive resynthesis out.

It needs no weights, runs in well under a second per 47.55 s window on one CPU core and gives
the rest of the system (training, engine, OSC) a real codec to work with when the Stable Audio
Open VAE is not installed. The latent is pitch content only: timbre, noise and stereo are lost.

Analysis is constant-Q: band ``b`` uses a Hann window of about 33.6 periods, the shortest
window whose main lobe ends on the neighbouring semitones (C2 needs ~0.51 s), but never shorter
than two hops so every input sample reaches a frame. It runs on a 4x decimated signal (11025 Hz,
well above the top band's 2489 Hz). Both steps are block matrix products over contiguous views
of the signal: the decimator (resample_poly's filter and alignment) in 64-sample blocks, the
analysis in hop-sized blocks, each block against only the bands whose window reaches it (the
high bands' windows are 5x shorter than C2's), 0.6 instead of 1.5 GFLOP per 47.55 s window.

Decoding is additive resynthesis, by default *clean* (``CleanDecode``): generated latents carry
some energy in every band and flicker from frame to frame, and played as they are they sound as
a wash around the notes. The clean decode keeps the notes (spectral peaks near each frame's
strongest band, with hysteresis and a minimum length over time, on sustained envelopes) and
drops the rest. ``HarmonicCodec(clean=None)`` is the raw decode of every band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import firwin

from samuel_live import HOP, LATENT_CHANNELS, SAMPLE_RATE
from samuel_live.errors import CodecError

LOWEST_MIDI = 36  # C2; the 64 bands end at MIDI 99 (D#7)
FLOOR = 1e-4
SILENCE = math.log(FLOOR)  # the latent value of a silent band

_DECIMATE = 4
_DECIMATE_HALF = 10 * _DECIMATE  # resample_poly's filter: 81 Kaiser taps (beta 5)
_DECIMATE_BLOCK = 64  # input samples per row of the decimator's matrix product
_PERIODS_PER_WINDOW = 2.0 / (2.0 ** (1.0 / 12.0) - 1.0)  # Hann main-lobe half-width = 1 semitone
_MIN_WINDOW = 2 * HOP


@dataclass(frozen=True)
class CleanDecode:
    """How the clean decode keeps notes and drops the wash between them (levels in dB).

    A band sounds in a frame only where its level (band power averaged over ``smooth_frames``
    centred frames) is a local peak across bands, within ``relative_db`` of the frame's
    strongest band and within ``global_db`` of the loudest frames (the 95th percentile of frame
    maxima). Hysteresis over time: a run of frames that meets the looser test (both thresholds
    ``hysteresis_db`` lower) is a note only if it meets the strict test at least once and lasts
    ``min_frames`` or more. Within a note the amplitude attacks at once and falls at most
    ``release_db`` per frame, so bursty frames sustain instead of flickering; notes start and
    end on the synthesis' one-hop linear ramps, so there are no clicks. The result is scaled to
    the raw decode's total power (by at most ``max_gain_db`` either way). Defaults were chosen
    on the tuning sets (bench/quality.py --raw-decode).
    """

    smooth_frames: int = 5
    relative_db: float = 20.0
    global_db: float = 40.0
    hysteresis_db: float = 10.0
    min_frames: int = 2
    release_db: float = 1.5
    max_gain_db: float = 12.0


CLEAN = CleanDecode()  # the codec's default decode; HarmonicCodec(clean=None) is the raw one


def band_frequencies() -> np.ndarray:
    """Centre frequency in Hz of each of the 64 semitone bands, MIDI 36 (C2) to 99 (D#7)."""
    midi = np.arange(LOWEST_MIDI, LOWEST_MIDI + LATENT_CHANNELS, dtype=np.float64)
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _analysis_kernel() -> tuple[np.ndarray, int]:
    """Windowed complex exponentials, one pair of columns per band, at the decimated rate.

    Returns the (window_len, 128) float32 kernel [cos | sin] and its window length. Each band's
    Hann window sits centred in the common length and is scaled so a sine of amplitude A at the
    band frequency measures exactly A.
    """
    rate = SAMPLE_RATE / _DECIMATE
    freqs = band_frequencies()
    lengths = np.maximum(_PERIODS_PER_WINDOW * SAMPLE_RATE / freqs, _MIN_WINDOW) / _DECIMATE
    size = int(2 * math.ceil(lengths.max() / 2)) + 1
    t = np.arange(size) - size // 2
    half = lengths[None, :] / 2.0
    window = np.where(np.abs(t)[:, None] < half, 0.5 + 0.5 * np.cos(np.pi * t[:, None] / half), 0)
    window *= 2.0 / window.sum(axis=0, keepdims=True)
    phase = 2.0 * np.pi * freqs[None, :] * t[:, None] / rate
    kernel = np.concatenate([window * np.cos(phase), window * np.sin(phase)], axis=1)
    return kernel.astype(np.float32), size


def _decimator() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matrices of the 4x decimator in 64-sample blocks: (previous block's tail, block, next
    block's head) -> the block's 16 outputs, each scaled by 1/2 for the mono mix.

    Output ``n`` is ``sum_k h[40 + k] * x[4n + k]`` for ``|k| <= 40``, the filter and alignment
    of ``scipy.signal.resample_poly(x, 1, 4)``.
    """
    h = firwin(2 * _DECIMATE_HALF + 1, 1.0 / _DECIMATE, window=("kaiser", 5.0))
    rows = np.arange(_DECIMATE_BLOCK)[:, None]
    outs = np.arange(_DECIMATE_BLOCK // _DECIMATE)[None, :]
    mats = []
    for block in (-1, 0, 1):
        k = block * _DECIMATE_BLOCK + rows - _DECIMATE * outs
        taps = h[np.clip(k + _DECIMATE_HALF, 0, 2 * _DECIMATE_HALF)]
        mats.append(0.5 * np.where(np.abs(k) <= _DECIMATE_HALF, taps, 0.0))
    return mats[0][-_DECIMATE_HALF:].copy(), mats[1], mats[2][:_DECIMATE_HALF].copy()


def _analysis_blocks(kernel: np.ndarray, window: int) -> tuple[list[np.ndarray], int]:
    """The analysis kernel cut into hop-sized row blocks, each keeping only its leading columns
    with any weight (columns interleaved [cos0, sin0, cos1, sin1, ...], so the long low-band
    windows come first). Returns the float64 blocks and how many hops the first one starts
    before the frame's own hop."""
    step = HOP // _DECIMATE
    start = window // 2 - step // 2  # the window begins this far before frame k * step
    before = -(-start // step)
    lead = before * step - start
    count = -(-(lead + window) // step)
    order = np.stack([np.arange(LATENT_CHANNELS), np.arange(LATENT_CHANNELS) + LATENT_CHANNELS], 1)
    padded = np.zeros((count * step, 2 * LATENT_CHANNELS))
    padded[lead : lead + window] = kernel.astype(np.float64)[:, order.reshape(-1)]
    blocks = []
    for j in range(count):
        part = padded[j * step : (j + 1) * step]
        used = np.flatnonzero(np.abs(part).sum(axis=0) > 0)
        width = int(used.max()) + 1 if used.size else 0
        blocks.append(np.ascontiguousarray(part[:, :width]))
    return blocks, before


def _synthesis_tables() -> np.ndarray:
    """(256, HOP) tables turning per-segment band coefficients into one hop of audio.

    A segment runs from one frame centre to the next; amplitude ramps linearly across it, so
    rows are [cos*(1-r); sin*(1-r); cos*r; sin*r] for r = j / HOP.
    """
    j = np.arange(HOP, dtype=np.float64)
    ramp = j / HOP
    phase = 2.0 * np.pi * band_frequencies()[:, None] * j[None, :] / SAMPLE_RATE
    cos, sin = np.cos(phase), np.sin(phase)
    tables = [cos * (1 - ramp), sin * (1 - ramp), cos * ramp, sin * ramp]
    return np.concatenate(tables, axis=0).astype(np.float32)


class HarmonicCodec:
    """Semitone-band magnitude codec: (2, n) audio <-> (64, ceil(n / 2048)) log magnitudes.

    Frame ``k`` describes the audio centred on sample ``k * 2048 + 1024``. The latent is
    ``log(magnitude + 1e-4)``: silence is ``SILENCE``, and a steady sine of amplitude A at a
    band's frequency encodes to ``log(A + 1e-4)`` in that band and decodes back to amplitude A.
    ``clean`` picks the decode: ``CLEAN`` (notes only, the default) or None (every band raw).
    """

    name = "harmonic"
    sample_rate = SAMPLE_RATE
    hop = HOP
    latent_channels = LATENT_CHANNELS

    def __init__(self, clean: CleanDecode | None = CLEAN) -> None:
        self.clean = clean
        self._blocks, self._before = _analysis_blocks(*_analysis_kernel())
        self._decimator = _decimator()
        self._tables = _synthesis_tables()
        self._omega = 2.0 * np.pi * band_frequencies() / SAMPLE_RATE

    def encode(self, audio: np.ndarray) -> torch.Tensor:
        """Band log-magnitudes of stereo audio (2, n) as a float32 tensor (64, ceil(n/2048))."""
        x = _channels(audio)
        frames = -(-x.shape[1] // HOP)
        if frames == 0:
            return torch.zeros(LATENT_CHANNELS, 0)
        # float64 throughout: the BLAS may sum in another order with another thread count (a
        # Ray actor runs one thread); in double precision that never reaches the float32 bits.
        low = self._decimate(x)
        step = HOP // _DECIMATE
        rows = frames + len(self._blocks) - 1
        padded = np.zeros((rows, step))
        used = min(low.shape[0], (rows - self._before) * step)
        padded.reshape(-1)[self._before * step : self._before * step + used] = low[:used]
        spectra = np.zeros((frames, 2 * LATENT_CHANNELS))
        for j, block in enumerate(self._blocks):
            if block.shape[1]:
                spectra[:, : block.shape[1]] += padded[j : j + frames] @ block
        magnitude = np.hypot(spectra[:, 0::2], spectra[:, 1::2])
        return torch.from_numpy(np.log(magnitude.T + FLOOR).astype(np.float32))

    def _decimate(self, x: np.ndarray) -> np.ndarray:
        """The mono mix of (channels, n) float32 audio at 11025 Hz: float64, ``ceil(n / 4)``
        samples, equal to resample_poly of the mix (to float32 rounding)."""
        n = x.shape[1]
        block = _DECIMATE_BLOCK
        padded = np.zeros((-(-n // block) + 2) * block)
        body = padded[block : block + n]
        if x.shape[0] == 2:
            np.add(x[0], x[1], out=body, dtype=np.float64)  # the 1/2 is in the matrices
        else:
            np.multiply(x.mean(axis=0, dtype=np.float64), 2.0, out=body)
        rows = padded.reshape(-1, block)
        tail, middle, head = self._decimator
        low = rows[1:-1] @ middle
        low += rows[:-2, -_DECIMATE_HALF:] @ tail
        low += rows[2:, :_DECIMATE_HALF] @ head
        return low.reshape(-1)[: -(-n // _DECIMATE)]

    def decode(self, latent: torch.Tensor | np.ndarray) -> np.ndarray:
        """Additive resynthesis: (64, F) -> (2, F*2048) or (B, 64, F) -> (B, 2, F*2048).

        With ``clean`` set, each latent is cleaned on its own (``clean_amplitudes``)."""
        z = latent.detach().cpu().numpy() if isinstance(latent, torch.Tensor) else latent
        z = np.asarray(z, dtype=np.float32)
        if z.ndim not in (2, 3) or z.shape[-2] != LATENT_CHANNELS:
            raise CodecError(
                f"harmonic codec decodes latents shaped (64, frames) or (batch, 64, frames), "
                f"got {tuple(z.shape)}"
            )
        if z.ndim == 2:
            return self._decode_one(z)
        return np.stack([self._decode_one(item) for item in z])

    def _decode_one(self, z: np.ndarray) -> np.ndarray:
        frames = z.shape[1]
        amp = np.maximum(np.exp(z.astype(np.float64)) - FLOOR, 0.0).T
        if self.clean is not None:
            amp = clean_amplitudes(amp, self.clean)
        # Bands silent in every frame add nothing: leave their rows out of the product (the
        # clean decode keeps about half the bands of a generated clip).
        bands = np.flatnonzero(amp.any(axis=0))
        rows = (bands[None, :] + LATENT_CHANNELS * np.arange(4)[:, None]).reshape(-1)
        # Hold the edge amplitudes so segments run from centre(-1) to centre(frames).
        amp = np.concatenate([amp[:1], amp, amp[-1:]], axis=0)[:, bands]
        starts = (np.arange(frames + 1) - 1) * HOP + HOP // 2
        phase = np.mod(np.outer(starts, self._omega[bands]), 2.0 * np.pi)
        sin0, cos0 = np.sin(phase), np.cos(phase)
        # sin(phi + w j) = sin(phi) cos(w j) + cos(phi) sin(w j)
        coeffs = np.concatenate(
            [amp[:-1] * sin0, amp[:-1] * cos0, amp[1:] * sin0, amp[1:] * cos0], axis=1
        ).astype(np.float32)
        signal = (coeffs @ self._tables[rows]).reshape(-1)
        mono = signal[HOP // 2 : HOP // 2 + frames * HOP]
        return np.stack([mono, mono])


def clean_amplitudes(amp: np.ndarray, cfg: CleanDecode) -> np.ndarray:
    """Band amplitudes (frames, 64) with only the notes kept (see ``CleanDecode``)."""
    frames = amp.shape[0]
    if frames == 0 or not (amp > 0).any():
        return amp
    level = 10.0 * np.log10(np.maximum(_moving_mean(amp * amp, cfg.smooth_frames), 1e-20))
    strongest = level.max(axis=1, keepdims=True)
    loud = float(np.percentile(strongest, 95))
    edge = np.full((frames, 1), -np.inf)
    left = np.concatenate([edge, level[:, :-1]], axis=1)
    right = np.concatenate([level[:, 1:], edge], axis=1)
    peak = (level >= left) & (level >= right) & (amp > 0)
    margin = np.maximum(strongest - cfg.relative_db, loud - cfg.global_db)
    keep = _hysteresis(peak & (level >= margin - cfg.hysteresis_db), peak & (level >= margin),
                       cfg.min_frames)
    starts = keep.copy()
    starts[1:] &= ~keep[:-1]
    note = np.cumsum(starts, axis=0)  # per band, the index of the note each frame belongs to
    # Release-limited envelope: env[t] = max over s <= t in the same note of
    # dB[s] - release * (t - s); a large offset per note index keeps notes apart.
    ramp = cfg.release_db * np.arange(frames, dtype=np.float64)[:, None] + 1e4 * note
    db = 20.0 * np.log10(np.maximum(amp, 1e-10)) + ramp
    out = np.where(keep, 10.0 ** ((np.maximum.accumulate(db, axis=0) - ramp) / 20.0), 0.0)
    total = float((out * out).sum())
    if total <= 0.0:
        return out
    limit = 10.0 ** (cfg.max_gain_db / 20.0)
    gain = math.sqrt(float((amp * amp).sum()) / total)
    return out * min(max(gain, 1.0 / limit), limit)


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over axis 0 (edges held), same shape."""
    if width <= 1:
        return x
    before = width // 2
    padded = np.pad(x, ((before + 1, width - 1 - before), (0, 0)), mode="edge")
    padded[0] = 0.0
    csum = np.cumsum(padded, axis=0)
    return (csum[width:] - csum[:-width]) / width


def _hysteresis(low: np.ndarray, high: np.ndarray, min_frames: int) -> np.ndarray:
    """Runs of ``low`` over time (axis 0) that contain a ``high`` frame and last min_frames."""
    frames, bands = low.shape
    x = np.zeros((bands, frames + 2), dtype=np.int8)
    x[:, 1:-1] = low.T
    edge = np.diff(x.ravel())
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    h = np.zeros((bands, frames + 2), dtype=np.int64)
    h[:, 1:-1] = high.T
    hits = np.concatenate([[0], np.cumsum(h.ravel())])
    good = ((hits[ends + 1] - hits[starts + 1]) > 0) & (ends - starts >= min_frames)
    mark = np.zeros(x.size + 1, dtype=np.int64)
    np.add.at(mark, starts[good] + 1, 1)
    np.add.at(mark, ends[good] + 1, -1)
    return np.cumsum(mark)[:-1].reshape(bands, frames + 2)[:, 1:-1].T > 0


def _channels(audio: np.ndarray) -> np.ndarray:
    """(channels, n) or (n,) audio as float32 (channels, n)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        return x[None]
    if x.ndim != 2 or x.shape[0] > 16:
        raise CodecError(f"expected audio shaped (channels, samples), got {x.shape}")
    return x
