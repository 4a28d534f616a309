"""Musical time: tempo and meter from the user, the DAW transport, or the take itself."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.errors import SamuelError

ONSET_HOP = 512


@dataclass(frozen=True)
class MusicalTime:
    """Tempo (quarter notes per minute, as DAWs count it), meter, and where they came from
    ("cli", "transport" or "estimate"). A 6/8 bar is six eighth notes: 3 quarter notes."""

    bpm: float
    beats_per_bar: int = 4
    source: str = "cli"
    beat_unit: int = 4

    def __post_init__(self) -> None:
        if self.beat_unit not in (1, 2, 4, 8, 16, 32):
            raise SamuelError(
                f"meter note value must be 1, 2, 4, 8, 16 or 32, got {self.beat_unit}"
            )
        if not 20.0 <= self.bpm <= 400.0:
            raise SamuelError(f"tempo {self.bpm} bpm is outside 20..400")
        if not 1 <= self.beats_per_bar <= 32:
            raise SamuelError(f"meter needs 1..32 beats per bar, got {self.beats_per_bar}")

    def bar_samples(self, sample_rate: int = SAMPLE_RATE) -> float:
        """Exact length of one bar in samples (fractional)."""
        quarters = self.beats_per_bar * 4.0 / self.beat_unit
        return quarters * 60.0 / self.bpm * sample_rate

    def bars_samples(self, bars: int, sample_rate: int = SAMPLE_RATE) -> int:
        """Length of ``bars`` bars, rounded to whole samples."""
        if bars < 1:
            raise SamuelError(f"a loop needs at least one bar, got {bars}")
        return int(round(bars * self.bar_samples(sample_rate)))


def parse_meter(text: str) -> tuple[int, int]:
    """'6/8' -> (6, 8); '3' -> (3, 4)."""
    head, _, unit = text.partition("/")
    try:
        return int(head), int(unit or 4)
    except ValueError as exc:
        raise SamuelError(f"meter {text!r} should look like 4/4, 6/8 or 3") from exc


def onset_strength(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Half-wave rectified log-energy flux at a 512-sample hop (~86 frames/s at 44.1 kHz)."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    frames = len(mono) // ONSET_HOP
    if frames < 8:
        return np.zeros(max(frames, 0))
    x = mono[: frames * ONSET_HOP].reshape(frames, ONSET_HOP)
    spec = np.abs(np.fft.rfft(x * np.hanning(ONSET_HOP), axis=1))
    logspec = np.log1p(100 * spec)
    flux = np.maximum(np.diff(logspec, axis=0), 0).sum(axis=1)
    return np.concatenate([[0.0], flux])


def estimate_tempo(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
                   lo: float = 60.0, hi: float = 180.0) -> float:
    """Tempo of a take by autocorrelation of its onset strength, weighted towards 120 bpm."""
    env = onset_strength(audio, sample_rate)
    if len(env) >= 64:
        env = env - env.mean()
    if len(env) < 64 or not np.any(env):
        raise SamuelError("the take is too short or silent to estimate its tempo; pass --bpm")
    ac = np.correlate(env, env, mode="full")[len(env) - 1 :]
    rate = sample_rate / ONSET_HOP
    lags = np.arange(len(ac))
    bpms = np.where(lags > 0, 60.0 * rate / np.maximum(lags, 1), 0)
    ok = (bpms >= lo) & (bpms <= hi)
    if not ok.any():
        raise SamuelError("the take is too short to estimate its tempo; pass --bpm")
    prior = np.exp(-0.5 * (np.log2(np.maximum(bpms, 1e-9) / 120.0) / 1.0) ** 2)
    score = np.where(ok, ac * prior, -np.inf)
    lag = int(np.argmax(score))
    # refine with a parabola through the neighbours
    if 1 <= lag < len(ac) - 1:
        a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
        denom = a - 2 * b + c
        if denom != 0:
            lag = lag + 0.5 * (a - c) / denom
    return float(60.0 * rate / lag)


def resolve_time(bpm: float | None, meter: str | None, transport: MusicalTime | None,
                 audio: np.ndarray | None) -> MusicalTime:
    """CLI values win, then the DAW transport, then the take's own tempo estimate."""
    if meter:
        beats, unit = parse_meter(meter)
    elif transport is not None:
        beats, unit = transport.beats_per_bar, transport.beat_unit
    else:
        beats, unit = 4, 4
    if bpm:
        return MusicalTime(float(bpm), beats, "cli", unit)
    if transport is not None:
        return MusicalTime(transport.bpm, beats, "transport", unit)
    if audio is None:
        raise SamuelError("no tempo: pass --bpm, send /samuel/transport/tempo, or give a take")
    return MusicalTime(round(estimate_tempo(audio), 2), beats, "estimate", unit)


def seam_step(audio: np.ndarray) -> tuple[float, float]:
    """(|last -> first sample step|, 99th percentile of |sample-to-sample steps|)."""
    steps = np.abs(np.diff(audio, axis=-1))
    wrap = float(np.abs(audio[..., 0] - audio[..., -1]).max())
    return wrap, float(np.percentile(steps, 99))


def frames_for(samples: int, hop: int) -> int:
    return int(math.ceil(samples / hop))
