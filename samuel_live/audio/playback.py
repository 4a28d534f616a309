"""Play generated audio through an output device, optionally looped and started on a bar line.

The engine thread prepares each result as a device-ready array (a "cue") and publishes it by
swapping one reference; the audio callback picks it up at its start frame and only copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from samuel_live import SAMPLE_RATE
from samuel_live.audio.devices import AudioDeviceError, find_device, sounddevice
from samuel_live.errors import InvalidArgumentError


@dataclass(frozen=True)
class PlaybackConfig:
    """Which output to open and how. ``samplerate=None`` uses the device's default rate."""

    device: str | int | None = None
    hostapi: str | None = None
    channels: int = 2
    blocksize: int = 512
    samplerate: int | None = None


@dataclass(frozen=True)
class PlaybackStats:
    """Counters since the last ``fetch_and_reset_stats()``; ``playing``.. are current values."""

    frames: int
    underflows: int
    callbacks: int
    playing: bool
    samplerate: int
    device: str


@dataclass(frozen=True)
class PlayPosition:
    """Where the stream is (frames since it started) and where in the audio the player is."""

    stream_frame: int
    audio_frame: int | None
    loops: int
    playing: bool


class _Cue:
    """One scheduled result; after publishing, only the audio callback changes it."""

    __slots__ = ("audio", "start", "loop", "pos", "loops")

    def __init__(self, audio: np.ndarray | None, start: int, loop: bool) -> None:
        self.audio = audio  # (frames, channels) at the device rate; None means "stop"
        self.start = start
        self.loop = loop
        self.pos = 0
        self.loops = 0


def next_boundary_frame(
    now_frame: int,
    bpm: float,
    beats_per_bar: float,
    bar_origin_frame: int = 0,
    samplerate: int = SAMPLE_RATE,
) -> int:
    """The first bar line at or after ``now_frame``, on the grid through ``bar_origin_frame``.

    Frames are stream frames at ``samplerate`` (pass the player's ``device_rate``). Bars are
    rounded to whole frames from the origin, so the grid does not drift over long sessions.
    """
    if bpm <= 0 or beats_per_bar <= 0:
        raise InvalidArgumentError(
            f"bpm and beats_per_bar must be positive, got {bpm}, {beats_per_bar}")
    bar = beats_per_bar * 60.0 * samplerate / bpm
    k = math.ceil((now_frame - bar_origin_frame) / bar)
    frame = bar_origin_frame + round(k * bar)
    return frame if frame >= now_frame else bar_origin_frame + round((k + 1) * bar)


class Player:
    """A sounddevice OutputStream playing one cue at a time, with seamless looping."""

    def __init__(self, config: PlaybackConfig | None = None) -> None:
        self.config = config or PlaybackConfig()
        if self.config.channels < 1:
            raise InvalidArgumentError(f"bad playback config {self.config}")
        self.device, self.device_rate = "", 0
        self._stream: Any = None
        self._next: _Cue | None = None  # written by play()/stop() only
        self._taken: _Cue | None = None  # written by the callback only
        self._queued: _Cue | None = None
        self._cue: _Cue | None = None
        self._frame = self._callbacks = self._underflows = 0
        self._base = (0, 0, 0)

    def start(self) -> Player:
        """Open and start the output stream (silent until ``play()``). Returns self."""
        if self._stream is not None:
            return self
        sd = sounddevice()
        dev = find_device(self.config.device, self.config.hostapi, "output")
        if self.config.channels > dev["max_output_channels"]:
            raise AudioDeviceError(
                f"{dev['name']!r} has {dev['max_output_channels']} output channels, "
                f"{self.config.channels} requested; play with channels=1 or 2"
            )
        rate = int(self.config.samplerate or dev["default_samplerate"])
        self.device, self.device_rate = f"{dev['name']} ({dev['hostapi']})", rate
        try:
            self._stream = sd.OutputStream(
                device=dev["index"],
                channels=self.config.channels,
                samplerate=rate,
                blocksize=self.config.blocksize,
                dtype="float32",
                callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self._stream = None
            raise AudioDeviceError(
                f"could not open output {self.device} at {rate} Hz: {exc}; check that the "
                "device is free and supports this rate and channel count"
            ) from exc
        return self

    def close(self) -> None:
        """Stop and release the output stream."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __enter__(self) -> Player:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def output_latency(self) -> float:
        """Seconds from the callback writing a frame to it leaving the device (as reported)."""
        return float(self._stream.latency) if self._stream is not None else 0.0

    def play(self, audio: np.ndarray, at_frame: int | None = None, loop: bool = False) -> int:
        """Play (2, n) float32 audio at 44.1 kHz from stream frame ``at_frame`` (None: now).

        The current cue keeps playing until then. One start can be pending: a later ``play()``
        or ``stop()`` before that frame replaces it. Returns the frame playback starts at (for
        ``None``, the stream frame at the time of the call; it starts with the next block).
        """
        if self._stream is None:
            raise AudioDeviceError("the player is not started; call start() first")
        data = self._prepare(np.asarray(audio, dtype=np.float32))
        start = self._frame if at_frame is None else int(at_frame)
        self._next = _Cue(data, -1 if at_frame is None else start, loop)
        return start

    def stop(self, at_frame: int | None = None) -> None:
        """Fall silent now, or at stream frame ``at_frame``."""
        self._next = _Cue(None, -1 if at_frame is None else int(at_frame), False)

    def position(self) -> PlayPosition:
        cue = self._cue
        if cue is None or cue.audio is None:
            return PlayPosition(self._frame, None, 0, False)
        return PlayPosition(self._frame, cue.pos, cue.loops, cue.loop or cue.pos < len(cue.audio))

    def stats(self) -> PlaybackStats:
        return self._stats(self._base)

    def fetch_and_reset_stats(self) -> PlaybackStats:
        """``stats()``, then restart the counters (the audio thread's counters are untouched)."""
        stats, self._base = self._stats(self._base), self._counters()
        return stats

    def _counters(self) -> tuple[int, int, int]:
        return self._frame, self._underflows, self._callbacks

    def _stats(self, base: tuple[int, int, int]) -> PlaybackStats:
        d = [a - b for a, b in zip(self._counters(), base, strict=True)]
        return PlaybackStats(
            d[0], d[1], d[2], self.position().playing, self.device_rate, self.device
        )

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        if audio.ndim == 1:
            audio = audio[None, :]
        if audio.ndim != 2 or audio.shape[0] > 16:
            raise InvalidArgumentError(f"audio must be (channels, frames), got shape {audio.shape}")
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        audio = audio[:2]
        if self.device_rate != SAMPLE_RATE:
            g = math.gcd(self.device_rate, SAMPLE_RATE)
            audio = resample_poly(audio, self.device_rate // g, SAMPLE_RATE // g, axis=1)
        if self.config.channels == 1:
            audio = audio.mean(axis=0, keepdims=True)
        return np.ascontiguousarray(audio.T, dtype=np.float32)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Audio thread: copy and count only. No allocation of buffers, no locks, no logging.
        self._callbacks += 1
        if status and status.output_underflow:
            self._underflows += 1
        nxt = self._next
        if nxt is not self._taken:
            self._taken = self._queued = nxt
        outdata.fill(0)
        now, queued = self._frame, self._queued
        split = frames if queued is None else min(frames, max(0, queued.start - now))
        self._render(outdata, 0, split)
        if queued is not None and split < frames:
            self._cue, self._queued = (queued if queued.audio is not None else None), None
            self._render(outdata, split, frames)
        self._frame = now + frames

    def _render(self, out: np.ndarray, a: int, b: int) -> None:
        cue = self._cue
        if cue is None or cue.audio is None:
            return
        audio, n, ch = cue.audio, len(cue.audio), cue.audio.shape[1]
        pos, i = cue.pos, a
        while i < b:
            if pos >= n:
                if not cue.loop or n == 0:
                    break
                pos, cue.loops = 0, cue.loops + 1
            k = min(b - i, n - pos)
            out[i : i + k, :ch] = audio[pos : pos + k]
            pos, i = pos + k, i + k
        cue.pos = pos
