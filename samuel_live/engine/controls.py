"""The engine's quick controls, called from network and audio threads: the capture (arm, stop,
clear, mark, level), the DAW's transport, and playback of finished results."""

from __future__ import annotations

import threading
from typing import Any

from samuel_live import SAMPLE_RATE
from samuel_live.engine.jobs import Job
from samuel_live.engine.transport import Playback, PlayStart, Transport
from samuel_live.errors import AudioInputError, SamuelError


class LiveControls:
    """Mixed into ``Engine``: what it needs is a capture, a transport, a player and the jobs."""

    capture: Any
    transport: Transport
    _playback: Playback
    _jobs: dict[int, Job]
    _lock: threading.RLock

    # --- capture -----------------------------------------------------------------------------
    def _need_capture(self) -> Any:
        if self.capture is None:
            raise AudioInputError(
                "no capture input is open; set capture.device (see `samuel-live devices`) "
                "or send a file:PATH source"
            )
        return self.capture

    def arm(self) -> None:
        self._need_capture().arm()

    def stop_capture(self) -> None:
        self._need_capture().stop()

    def clear_capture(self) -> None:
        self._need_capture().clear()

    def mark(self, which: str) -> int:
        capture = self._need_capture()
        if which == "start":
            return int(capture.mark_start())
        if which == "end":
            return int(capture.mark_end())
        raise SamuelError(f"mark must be start or end, got {which!r}")

    def level(self) -> tuple[float, float, float, bool]:
        """(rms dBFS, peak dBFS, seconds captured, armed)."""
        capture = self._need_capture()
        peak, rms = capture.level()
        lo, hi = capture.ring.available()
        return rms, peak, (hi - lo) / SAMPLE_RATE, bool(capture.armed)

    # --- transport ---------------------------------------------------------------------------
    def set_tempo(self, bpm: float) -> None:
        with self._lock:
            self.transport = self.transport.with_tempo(bpm)

    def set_signature(self, beats: int, unit: int) -> None:
        with self._lock:
            self.transport = self.transport.with_signature(beats, unit)

    def set_bar(self, bar: int) -> None:
        """Bar ``bar`` starts now."""
        with self._lock:
            self.transport = self.transport.with_bar(bar)

    # --- playback ----------------------------------------------------------------------------
    def play(self, job_id: int, loop: bool = False, quantise: str = "bar") -> PlayStart:
        """Play a finished job's audio from the next bar line (or beat, or now)."""
        job = self._jobs.get(job_id)
        path = job.result.path if job is not None and job.result is not None else None
        audio = self._playback.audio(job_id, path)
        return self._playback.play(job_id, audio, self.transport, loop, quantise)

    def stop_playback(self) -> None:
        self._playback.stop()
