"""Live voice capture into a 44.1 kHz ring buffer, plus file and memory sources with the same API.

The audio callback only copies into preallocated memory and counts status flags. When the
device runs at another rate, the callback fills a staging ring at the device rate and a small
thread resamples it into the 44.1 kHz ring, so no filtering happens in the audio thread.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import firwin

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.audio.devices import AudioDeviceError, find_device, sounddevice
from samuel_live.audio.ringbuffer import RingBuffer
from samuel_live.errors import AudioInputError, InvalidArgumentError

LEVEL_FLOOR_DBFS = -120.0
_STAGING_SECONDS = 4.0  # device-rate staging ring: how far the resampler thread may fall behind
_RESAMPLE_POLL_S = 0.01


@dataclass(frozen=True)
class CaptureConfig:
    """Which input to open and how. ``samplerate=None`` uses the device's default rate."""

    device: str | int | None = None
    hostapi: str | None = None
    channels: int = 2
    blocksize: int = 512
    samplerate: int | None = None
    seconds: float = WINDOW_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class CaptureStats:
    """Counters since the last ``fetch_and_reset_stats()`` (``armed``.. are current values).

    ``frames`` counts device frames delivered (at ``samplerate``), armed or not; ``written``
    counts frames that reached the 44.1 kHz ring; ``dropped`` counts device frames lost because
    the resampler thread fell more than the staging ring behind.
    """

    frames: int
    overflows: int
    underflows: int
    callbacks: int
    armed: bool
    samplerate: int
    device: str
    written: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class CaptureTime:
    """When the newest ring frame was captured: ring position, time.monotonic(), stream ADC time.

    ``adc_time`` is on the stream's clock (PortAudio's ``inputBufferAdcTime``; 0.0 where the
    host API does not provide it, and for file and memory sources).
    """

    frame: int
    monotonic: float
    adc_time: float


class StreamResampler:
    """Polyphase FIR resampling of a stream in chunks, carrying filter history between chunks.

    Uses the same Kaiser-windowed filter and alignment as ``scipy.signal.resample_poly``, so
    the concatenated output equals resample_poly of the whole signal (except the last
    ``~10`` input frames, which wait for the next chunk).
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int = 2) -> None:
        g = math.gcd(int(in_rate), int(out_rate))
        self.up, self.down = int(out_rate) // g, int(in_rate) // g
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        h = firwin(2 * self._half + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        self._taps = -(-len(h) // self.up)
        self._bank = np.zeros((self.up, self._taps))
        for p in range(self.up):
            phase = h[p :: self.up]
            self._bank[p, : len(phase)] = phase
        self._hist = np.zeros((channels, self._taps - 1))
        self._n_in = 0
        self._n_out = 0

    @property
    def pending_input(self) -> float:
        """Input frames fed but not yet represented in the output (the filter's look-ahead)."""
        return self._n_in - self._n_out * self.down / self.up

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed a (channels, n) chunk; return the float32 (channels, m) output it completes."""
        buf = np.concatenate([self._hist, x.astype(np.float64, copy=False)], axis=1)
        total = self._n_in + x.shape[1]
        k_end = max(self._n_out, (total * self.up - 1 - self._half) // self.down + 1)
        ks = np.arange(self._n_out, k_end)
        t = ks * self.down + self._half
        # output k needs inputs t//up - m for m in [0, taps); buf column 0 is input n_in-taps+1
        idx = (t // self.up - self._n_in + self._taps - 1)[:, None] - np.arange(self._taps)
        y = np.einsum("ckm,km->ck", buf[:, idx], self._bank[t % self.up])
        self._hist = buf[:, buf.shape[1] - (self._taps - 1) :]
        self._n_in, self._n_out = total, k_end
        return y.astype(np.float32)


class _RingSource:
    """What every capture source shares: arming, marks, snapshots, levels and stats."""

    def __init__(self, seconds: float, device: str, samplerate: int) -> None:
        self.ring = RingBuffer(capacity=max(1, round(seconds * SAMPLE_RATE)), channels=2)
        self.device = device
        self.device_rate = samplerate
        self._armed = False
        self._frames = self._callbacks = self._overflows = self._underflows = self._dropped = 0
        self._base = (0, 0, 0, 0, 0, 0)
        self._mark_start: int | None = None
        self._mark_end: int | None = None
        self._clock = (0, 0.0, 0.0)  # (ring frame, monotonic, adc time) of the newest frame

    samplerate = SAMPLE_RATE  # the ring's rate; always 44.1 kHz

    def start(self) -> _RingSource:
        """Begin delivering input (discarded until ``arm()``). Returns self."""
        return self

    def close(self) -> None:
        """Stop delivering input and release the device."""

    def __enter__(self) -> _RingSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        """Start writing input into the ring."""
        self._armed = True

    def pause(self) -> None:
        """Discard input from now on; the ring keeps what it has."""
        self._armed = False

    def stop(self) -> None:
        """Pause, and end an open marked region here."""
        self.pause()
        if self._mark_start is not None and self._mark_end is None:
            self.mark_end()

    def clear(self) -> None:
        """Forget the captured audio and any marks."""
        self.ring.clear()
        self._mark_start = self._mark_end = None

    def snapshot(
        self,
        last_frames: int | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
    ) -> np.ndarray:
        """A float32 (2, n) copy at 44.1 kHz; see ``RingBuffer.snapshot`` for the arguments."""
        return self.ring.snapshot(last_frames, start_frame, end_frame)

    def mark_start(self) -> int:
        """Begin a marked region at the newest ring frame; returns its absolute frame."""
        self._mark_start, self._mark_end = self.ring.written, None
        return self._mark_start

    def mark_end(self) -> int:
        """End the marked region at the newest ring frame; returns its absolute frame."""
        if self._mark_start is None:
            raise AudioInputError("no region start is marked; call mark_start() first")
        self._mark_end = self.ring.written
        return self._mark_end

    @property
    def marks(self) -> tuple[int | None, int | None]:
        """The marked region ``(start, end)`` in absolute ring frames (None where unset)."""
        return self._mark_start, self._mark_end

    def snapshot_marked(self) -> np.ndarray:
        """The marked region (up to now if its end is not marked yet)."""
        if self._mark_start is None:
            raise AudioInputError("no region is marked; call mark_start() (and mark_end())")
        return self.ring.snapshot(start_frame=self._mark_start, end_frame=self._mark_end)

    def level(self, seconds: float = 0.3) -> tuple[float, float]:
        """(peak dBFS, RMS dBFS) of the newest ``seconds`` in the ring, floored at -120 dB."""
        x = self.ring.snapshot(last_frames=max(1, round(seconds * SAMPLE_RATE)))
        peak = float(np.max(np.abs(x)))
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        return _dbfs(peak), _dbfs(rms)

    def last_capture_time(self) -> CaptureTime:
        """Ring position and clock times of the newest captured frame."""
        return CaptureTime(*self._clock)  # one tuple, swapped whole by the writer

    def stats(self) -> CaptureStats:
        """Counters since the last reset, and the current state."""
        now = self._counters()
        d = [a - b for a, b in zip(now, self._base, strict=True)]
        return CaptureStats(
            frames=d[0],
            overflows=d[1],
            underflows=d[2],
            callbacks=d[3],
            armed=self._armed,
            samplerate=self.device_rate,
            device=self.device,
            written=d[4],
            dropped=d[5],
        )

    def fetch_and_reset_stats(self) -> CaptureStats:
        """``stats()``, then restart the counters (the audio thread's counters are untouched)."""
        now = self._counters()
        d = [a - b for a, b in zip(now, self._base, strict=True)]
        self._base = now
        return CaptureStats(
            frames=d[0],
            overflows=d[1],
            underflows=d[2],
            callbacks=d[3],
            armed=self._armed,
            samplerate=self.device_rate,
            device=self.device,
            written=d[4],
            dropped=d[5],
        )

    def _counters(self) -> tuple[int, int, int, int, int, int]:
        return (
            self._frames,
            self._overflows,
            self._underflows,
            self._callbacks,
            self.ring.written,
            self._dropped,
        )

    def _set_clock(self, frame: int, monotonic: float, adc_time: float) -> None:
        self._clock = (frame, monotonic, adc_time)


def _dbfs(x: float) -> float:
    return max(LEVEL_FLOOR_DBFS, 20.0 * math.log10(x)) if x > 0 else LEVEL_FLOOR_DBFS


class Capture(_RingSource):
    """A sounddevice InputStream feeding the 44.1 kHz ring (mono is duplicated, >2 channels
    keep the first two)."""

    def __init__(self, config: CaptureConfig | None = None) -> None:
        self.config = config or CaptureConfig()
        if self.config.channels < 1 or self.config.blocksize < 0:
            raise InvalidArgumentError(f"bad capture config {self.config}")
        super().__init__(self.config.seconds, device="", samplerate=0)
        self._stream: Any = None
        self._target = self.ring
        self._staging: RingBuffer | None = None
        self._resampler: threading.Thread | None = None
        self._running = threading.Event()

    def start(self) -> Capture:
        """Open and start the input stream (input is discarded until ``arm()``)."""
        if self._stream is not None:
            return self
        sd = sounddevice()
        dev = find_device(self.config.device, self.config.hostapi, "input")
        if self.config.channels > dev["max_input_channels"]:
            raise AudioDeviceError(
                f"{dev['name']!r} has {dev['max_input_channels']} input channels, "
                f"{self.config.channels} requested; capture with channels=1 or 2"
            )
        rate = int(self.config.samplerate or dev["default_samplerate"])
        self.device, self.device_rate = f"{dev['name']} ({dev['hostapi']})", rate
        if rate != SAMPLE_RATE:
            self._staging = RingBuffer(capacity=round(_STAGING_SECONDS * rate), channels=2)
            self._target = self._staging
        try:
            self._stream = sd.InputStream(
                device=dev["index"],
                channels=self.config.channels,
                samplerate=rate,
                blocksize=self.config.blocksize,
                dtype="float32",
                callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            if self._stream is not None:  # opened but would not start: release the device
                with contextlib.suppress(sd.PortAudioError):
                    self._stream.close()
            self._stream, self._staging, self._target = None, None, self.ring
            raise AudioDeviceError(
                f"could not open input {self.device} at {rate} Hz: {exc}; check that the "
                "device is free and supports this rate and channel count"
            ) from exc
        if self._staging is not None:
            self._running.set()
            self._resampler = threading.Thread(
                target=self._resample_loop, name="samuel-capture-resampler", daemon=True
            )
            self._resampler.start()
        return self

    def close(self) -> None:
        """Stop the stream and the resampler thread."""
        self._running.clear()
        if self._resampler is not None:
            self._resampler.join()
            self._resampler = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def stream_time(self) -> float:
        """The stream's clock now (same clock as ``CaptureTime.adc_time``)."""
        return float(self._stream.time) if self._stream is not None else 0.0

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Audio thread: copy and count only. No allocation of buffers, no locks, no logging.
        self._callbacks += 1
        self._frames += frames
        if status:
            if status.input_overflow:
                self._overflows += 1
            if status.input_underflow:
                self._underflows += 1
        if self._armed:
            self._target.write(indata[:, :2])
            if self._staging is None:
                self._clock = (
                    self.ring.written,
                    time.monotonic(),
                    time_info.inputBufferAdcTime + frames / self.device_rate,
                )

    def _resample_loop(self) -> None:
        staging = self._staging
        assert staging is not None  # set by start() before this thread exists
        resampler = StreamResampler(self.device_rate, SAMPLE_RATE)
        consumed = 0
        while self._running.is_set():
            end = staging.written
            lo = staging.available()[0]
            if lo > consumed:  # fell behind by more than the staging ring: skip ahead
                self._dropped += lo - consumed
                consumed, resampler = lo, StreamResampler(self.device_rate, SAMPLE_RATE)
            if end > consumed:
                try:
                    chunk = staging.snapshot(start_frame=consumed, end_frame=end)
                except AudioInputError:
                    continue  # overwritten during the copy; the skip-ahead above handles it
                out = resampler.process(chunk)
                self.ring.write(out.T)
                lag = resampler.pending_input / self.device_rate
                self._set_clock(self.ring.written, time.monotonic() - lag, 0.0)
                consumed = end
            time.sleep(_RESAMPLE_POLL_S)
