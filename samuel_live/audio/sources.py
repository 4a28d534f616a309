"""Capture sources that are not a sound card: an in-memory array or an audio file, fed into
the same ring as a live input (for tests, benches, and ``capture.device = file:PATH``), and
``open_capture``, which turns a capture spec into any source."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.audio.capture import Capture, CaptureConfig, _RingSource
from samuel_live.errors import AudioInputError


class MemorySource(_RingSource):
    """Capture from an in-memory (2, n) or (n,) array, all at once or at real-time pace.

    With ``realtime=False``, ``arm()`` writes the rest of the audio into the ring at once.
    With ``realtime=True``, ``start()`` feeds blocks at the audio's pace and, like a live
    input, discards them while not armed; ``loop=True`` repeats the audio.
    """

    def __init__(
        self,
        audio: np.ndarray,
        samplerate: int = SAMPLE_RATE,
        *,
        name: str = "memory",
        realtime: bool = False,
        loop: bool = False,
        blocksize: int = 512,
        seconds: float = WINDOW_SAMPLES / SAMPLE_RATE,
    ) -> None:
        x = _as_stereo(np.asarray(audio, dtype=np.float32))
        if samplerate != SAMPLE_RATE:
            g = math.gcd(samplerate, SAMPLE_RATE)
            x = resample_poly(x, SAMPLE_RATE // g, samplerate // g, axis=1).astype(np.float32)
        super().__init__(seconds, device=name, samplerate=SAMPLE_RATE)
        self.audio = np.ascontiguousarray(x.T)  # (n, 2): the layout a device delivers
        self.realtime, self.loop, self.blocksize = realtime, loop, blocksize
        self._pos = 0
        self._feeder: threading.Thread | None = None
        self._running = threading.Event()

    def start(self) -> MemorySource:
        if self.realtime and self._feeder is None:
            self._running.set()
            self._feeder = threading.Thread(target=self._feed_loop, daemon=True)
            self._feeder.start()
        return self

    def close(self) -> None:
        self._running.clear()
        if self._feeder is not None:
            self._feeder.join()
            self._feeder = None

    def arm(self) -> None:
        super().arm()
        if not self.realtime and self._pos < len(self.audio):
            self._deliver(self.audio[self._pos :])
            self._pos = len(self.audio)

    def rewind(self) -> None:
        """Deliver the audio again from its beginning."""
        self._pos = 0

    def _deliver(self, block: np.ndarray) -> None:
        self._callbacks += 1
        self._frames += len(block)
        if self._armed:
            self.ring.write(block)
            self._set_clock(self.ring.written, time.monotonic(), 0.0)

    def _feed_loop(self) -> None:
        t0, sent = time.monotonic(), 0
        while self._running.is_set():
            if self._pos >= len(self.audio):
                if not self.loop:
                    return
                self._pos = 0
            block = self.audio[self._pos : self._pos + self.blocksize]
            self._deliver(block)
            self._pos += len(block)
            sent += len(block)
            time.sleep(max(0.0, t0 + sent / SAMPLE_RATE - time.monotonic()))


class FileSource(MemorySource):
    """A MemorySource read from an audio file (any format ``read_audio`` takes)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        from samuel_live.audio.io import read_audio  # soundfile only where files are used

        super().__init__(read_audio(path), SAMPLE_RATE, name=f"file:{path}", **kwargs)
        self.path = path


_MEMORY_SOURCES: dict[str, np.ndarray] = {}


def register_memory_source(name: str, audio: np.ndarray) -> None:
    """Make ``open_capture("memory:NAME")`` capture from ``audio`` (2, n) at 44.1 kHz."""
    _MEMORY_SOURCES[name] = audio


def open_capture(spec: str | CaptureConfig, **kwargs: Any) -> Capture | FileSource | MemorySource:
    """A capture source from a spec; call ``start()`` (or use ``with``) to run it.

    Specs: ``"file:PATH"``, ``"memory:NAME"`` (see ``register_memory_source``), ``"default"``,
    ``"DEVICE@HOSTAPI"`` (e.g. ``"system@JACK"``), a bare device name, or a CaptureConfig.
    ``kwargs`` go to the source (MemorySource/FileSource options, or CaptureConfig fields).
    """
    if isinstance(spec, CaptureConfig):
        return Capture(spec)
    if spec.startswith("file:"):
        return FileSource(spec[5:], **kwargs)
    if spec.startswith("memory:"):
        name = spec[7:]
        if name not in _MEMORY_SOURCES:
            known = ", ".join(sorted(_MEMORY_SOURCES)) or "none"
            raise AudioInputError(
                f"no memory source {name!r} (registered: {known}); "
                "call register_memory_source(name, audio) first"
            )
        return MemorySource(_MEMORY_SOURCES[name], name=spec, **kwargs)
    if spec in ("", "default"):
        return Capture(CaptureConfig(**kwargs))
    device, _, hostapi = spec.rpartition("@") if "@" in spec else (spec, "", "")
    return Capture(CaptureConfig(device=device, hostapi=hostapi or None, **kwargs))


def _as_stereo(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] > 16:
        raise AudioInputError(
            f"audio must be (channels, frames) or (frames,), got shape {x.shape}; "
            "transpose (frames, channels) arrays first"
        )
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2]
