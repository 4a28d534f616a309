"""Musical time and playback for the engine: the DAW's tempo and bar grid, and a player that
starts finished results on a bar line.

The bar grid's phase is a monotonic time, so it maps onto any device's frame counter when
playback is scheduled. Tempo and meter remember whether the DAW sent them: only then do they
count as the DAW's musical time (otherwise a loop takes its tempo from the take).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.config import CaptureSection
from samuel_live.errors import SamuelError
from samuel_live.timing import MusicalTime

RESULT_CACHE = 4  # finished results kept in memory for instant playback


@dataclass(frozen=True)
class Transport:
    """Tempo (quarter notes per minute), time signature and the bar grid's phase."""

    bpm: float = 120.0
    beats: int = 4
    unit: int = 4
    origin_time: float = field(default_factory=time.monotonic)
    origin_bar: int = 1
    tempo_set: bool = False  # the DAW sent a tempo
    meter_set: bool = False  # the DAW sent a time signature

    @property
    def bar_seconds(self) -> float:
        return self.beats * (4.0 / self.unit) * 60.0 / self.bpm

    def bar_at(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return self.origin_bar + math.floor((now - self.origin_time) / self.bar_seconds)

    def with_tempo(self, bpm: float, now: float | None = None) -> Transport:
        """The same grid at a new tempo, re-anchored on the current bar so bar numbers hold."""
        if not 20.0 <= bpm <= 400.0:
            raise SamuelError(f"tempo must be between 20 and 400 bpm, got {bpm}")
        now = time.monotonic() if now is None else now
        bar = self.bar_at(now)
        start = self.origin_time + (bar - self.origin_bar) * self.bar_seconds
        return replace(self, bpm=float(bpm), origin_time=start, origin_bar=bar, tempo_set=True)

    def with_signature(self, beats: int, unit: int) -> Transport:
        if not 1 <= beats <= 32 or unit not in (1, 2, 4, 8, 16):
            raise SamuelError(f"time signature {beats}/{unit} is not supported")
        return replace(self, beats=beats, unit=unit, meter_set=True)

    def with_bar(self, bar: int, now: float | None = None) -> Transport:
        """Bar ``bar`` starts at ``now``."""
        now = time.monotonic() if now is None else now
        return replace(self, origin_time=now, origin_bar=int(bar))

    def musical_time(self) -> MusicalTime | None:
        """The DAW's tempo and meter, or None if it never sent a tempo."""
        if not self.tempo_set:
            return None
        return MusicalTime(self.bpm, self.beats, "transport", self.unit)

    def boundary_frame(self, now_frame: int, rate: int, quantise: str,
                       now: float | None = None) -> int:
        """The first bar (or beat) line at or after stream frame ``now_frame``."""
        from samuel_live.audio.playback import next_boundary_frame

        now = time.monotonic() if now is None else now
        origin = now_frame + round((self.origin_time - now) * rate)
        quarter_notes = (self.beats if quantise == "bar" else 1) * 4.0 / self.unit
        return next_boundary_frame(now_frame, self.bpm, quarter_notes, origin, samplerate=rate)


@dataclass(frozen=True)
class PlayStart:
    job: int
    frame: int
    in_s: float


class Playback:
    """Keeps the newest results in memory and plays them, opening the output on first use."""

    def __init__(self, capture: CaptureSection, player: Any = None) -> None:
        self._capture = capture
        self._player = player
        self._results: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, job_id: int, audio: np.ndarray) -> None:
        with self._lock:
            self._results[job_id] = audio
            while len(self._results) > RESULT_CACHE:
                self._results.popitem(last=False)

    def audio(self, job_id: int, path: Path | None) -> np.ndarray:
        """A result from memory, else read from its file; SamuelError if there is neither."""
        with self._lock:
            audio = self._results.get(job_id)
        if audio is not None:
            return audio
        if path is None:
            raise SamuelError(f"job {job_id} has no finished result to play")
        from samuel_live.audio.io import read_audio

        return read_audio(path)

    def play(self, job_id: int, audio: np.ndarray, transport: Transport, loop: bool,
             quantise: str) -> PlayStart:
        """Start ``audio`` on the next bar line (or beat, or now) of ``transport``."""
        player = self._need_player()
        rate = player.device_rate or SAMPLE_RATE
        now_frame = player.position().stream_frame
        at = None if quantise == "now" else transport.boundary_frame(now_frame, rate, quantise)
        start = player.play(audio, at_frame=at, loop=loop)
        return PlayStart(job_id, int(start), max(0.0, (start - now_frame) / rate))

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()

    def close(self) -> None:
        if self._player is not None and hasattr(self._player, "close"):
            self._player.close()

    def _need_player(self) -> Any:
        if self._player is None:
            from samuel_live.audio.playback import PlaybackConfig, Player

            c = self._capture
            device = None if c.device.startswith(("file:", "memory:")) else (c.device or None)
            player = Player(PlaybackConfig(device=device, hostapi=c.hostapi or None))
            player.start()
            self._player = player
        return self._player
