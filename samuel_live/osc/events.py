"""Engine events as OSC messages: ack, progress (at most ``PROGRESS_INTERVAL_S`` apart, the
last step always), done, cancelled, failures, playback and model swaps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from samuel_live.engine.engine import EngineEvent
from samuel_live.osc.peers import Peer
from samuel_live.osc.schema import OscArg

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress messages a second per job
ReplySink = Callable[[Peer | None, str, tuple[OscArg, ...]], None]
ErrorSink = Callable[[Peer | None, str, str, int], None]


class EventRelay:
    """Subscribed to the engine; turns each event into a message for the client that asked
    (the job's origin) and every registered client."""

    def __init__(self, reply: ReplySink, error: ErrorSink,
                 model_requester: Callable[[], Peer | None]) -> None:
        self.reply, self.error, self.model_requester = reply, error, model_requester
        self._last_progress: dict[int, float] = {}
        self._lock = threading.Lock()

    def __call__(self, event: EngineEvent) -> None:
        job = event.job
        if job is None:
            self._model_event(event)
            return
        kind = event.kind
        if kind == "queued":
            self.reply(job.origin, "/samuel/generate/ack", (job.id, job.position, job.eta_s))
        elif kind == "started":
            self.reply(job.origin, "/samuel/progress", (job.id, 0, job.total, job.eta_s))
        elif kind == "progress":
            self._progress(job)
        elif kind == "done" and job.result is not None:
            self.reply(job.origin, "/samuel/done", done_args(job))
        elif kind == "failed":
            self.error(job.origin, "/samuel/generate", event.message, job.id)
        elif kind == "cancelled":
            self.reply(job.origin, "/samuel/cancelled", (job.id,))
        elif kind == "playing":
            self.reply(job.origin, "/samuel/play/reply",
                       (job.id, int(event.data["frame"]), float(event.data["in_s"])))
        elif kind == "play_failed":
            self.error(job.origin, "/samuel/play", event.message, job.id)
        if job.status.finished:
            with self._lock:
                self._last_progress.pop(job.id, None)

    def _model_event(self, event: EngineEvent) -> None:
        if event.kind == "model_loaded":
            info = event.data
            self.reply(self.model_requester(), "/samuel/model/loaded",
                       (str(info.get("name", "")), str(info.get("hash", ""))))
        elif event.kind == "model_failed":
            self.error(self.model_requester(), "/samuel/model/load", event.message, -1)

    def _progress(self, job: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if job.step < job.total and now - self._last_progress.get(job.id, 0.0) < (
                    PROGRESS_INTERVAL_S):
                return
            self._last_progress[job.id] = now
        self.reply(job.origin, "/samuel/progress", (job.id, job.step, job.total, job.eta_s))


def done_args(job: Any) -> tuple[OscArg, ...]:
    """/samuel/done: the file, its length, the latency report and the MIDI file's name (beside
    the audio). The capture time goes as text: an OSC float cannot hold a UNIX time to the
    millisecond."""
    r, captured = job.result, job.request.source.captured_at
    return (job.id, str(r.path), r.duration_s, r.queued_s, r.model_s, r.post_s, r.total_s,
            f"{captured:.6f}" if captured is not None else "", r.capture_latency_s,
            r.midi.name if r.midi is not None else "")
