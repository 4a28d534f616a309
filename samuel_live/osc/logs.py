"""Logging that a flood cannot turn into a flood of log: every line is cut to
``MAX_LINE`` characters, and each kind of warning is written at most ``PER_SECOND`` times a
second; what was held back is counted in the next line of that kind."""

from __future__ import annotations

import logging
import threading
import time

MAX_LINE = 300
PER_SECOND = 5


class LimitedLog:
    """Rate-limited, truncated warnings for one logger, keyed by a short kind name."""

    def __init__(self, logger: logging.Logger, per_second: int = PER_SECOND) -> None:
        self.logger, self.per_second = logger, per_second
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> (start, shown, held)

    def warning(self, kind: str, message: str) -> None:
        self._log(logging.WARNING, kind, message)

    def info(self, kind: str, message: str) -> None:
        self._log(logging.INFO, kind, message)

    def _log(self, level: int, kind: str, message: str) -> None:
        if not self.logger.isEnabledFor(level):
            return
        now = time.monotonic()
        with self._lock:
            start, shown, held = self._windows.get(kind, (now, 0, 0))
            if now - start >= 1.0:
                start, shown = now, 0
            if shown >= self.per_second:
                self._windows[kind] = (start, shown, held + 1)
                return
            self._windows[kind] = (start, shown + 1, 0)
        if held:
            message = f"{message} ({held} similar message(s) not logged)"
        self.logger.log(level, "%s", shorten(message))


def shorten(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = text.replace("\n", "\\n").replace("\r", "\\r")
    return flat if len(flat) <= limit else flat[: limit - 15] + f"... (+{len(flat) - limit + 15})"
