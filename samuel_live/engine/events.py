"""What the engine announces, and the bus that hands it to whoever listens (the OSC layer is one
subscriber); the engine knows nothing about who listens."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samuel_live.engine.jobs import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineEvent:
    """Something subscribers may want to know.

    kinds: queued, started, progress, done, failed, cancelled (with ``job``); playing (``job``
    and ``data`` = frame, in_s) and play_failed (``job``, ``message``) for autoplay;
    model_loaded, model_failed (with ``data`` = model info or ``message``).
    """

    kind: str
    job: Job | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[EngineEvent], None]


class EventBus:
    """Thread-safe list of subscribers; a subscriber that raises is logged and skipped."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: EventSink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def emit(self, kind: str, job: Job | None = None, message: str = "",
             data: dict[str, Any] | None = None) -> None:
        event = EngineEvent(kind, job, message, data or {})
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink(event)
            except Exception:  # a broken listener must not stop the engine
                log.exception("event subscriber failed on %s", kind)
