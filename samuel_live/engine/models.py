"""The engine's model slot: the loaded Accompanist, and a replacement loading in the background
that the worker swaps in between jobs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.engine.events import EventBus
from samuel_live.errors import ModelError, SamuelError
from samuel_live.settings import DEFAULT_PRECISION, GenerateSettings

log = logging.getLogger(__name__)
WARMUP_SECONDS = 1.0


class ModelSlot:
    """Holds the model the worker uses; loads others on a background thread."""

    def __init__(self, events: EventBus, device: str, codec_path: str | None,
                 warm_up: bool = True, model: Any = None,
                 precision: str = DEFAULT_PRECISION) -> None:
        self._events = events
        self._device, self._codec_path, self._warm = device, codec_path, warm_up
        self._precision = precision
        self.current: Any = model
        self.error: str | None = None
        self._pending: Any = None
        self._loading = 0
        self._lock = threading.Lock()

    @property
    def loading(self) -> bool:
        return self._loading > 0

    def load_now(self, path: str | None) -> None:
        """Load (and warm) the first model on the calling thread; a failure is kept as
        ``error`` and logged, the engine runs without a model."""
        try:
            self.current = self._load(path)
        except SamuelError as exc:
            self.error = str(exc)
            log.error("model not loaded: %s", exc)

    def warm(self) -> None:
        if self.current is not None and self._warm:
            warm_up(self.current)

    def need(self) -> Any:
        model = self.current
        if model is None:
            raise ModelError(f"no model loaded ({self.error}); load one with /samuel/model/load")
        return model

    def load_in_background(self, path: str, swap_now: bool) -> None:
        """Start loading ``path``; it replaces the current model at the next ``swap``."""
        with self._lock:
            self._loading += 1
        threading.Thread(target=self._background, args=(path, swap_now), daemon=True,
                         name="samuel-model-loader").start()

    def _background(self, path: str, swap_now: bool) -> None:
        from samuel_live.engine.failures import describe_failure

        try:
            model = self._load(path)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SamuelError) else describe_failure(exc)
            log.error("model %s not loaded: %s", path, message)
            with self._lock:
                self._loading -= 1
            self._events.emit("model_failed", message=f"model {path} not loaded: {message}")
            return
        with self._lock:
            self._pending = model
            self._loading -= 1
        if swap_now:
            self.swap()

    def swap(self) -> None:
        """Put a finished background load in place (worker thread, between jobs)."""
        with self._lock:
            model, self._pending = self._pending, None
            if model is None:
                return
            self.current, self.error = model, None
        self._events.emit("model_loaded", data=model.info())

    def _load(self, path: str | None) -> Any:
        from samuel_live.pipeline import Accompanist

        model = Accompanist.load(path, device=self._device, codec_path=self._codec_path,
                                 precision=self._precision)
        if self._warm:
            warm_up(model)
        return model


def warm_up(model: Any) -> None:
    """One tiny generation so the first real job does not pay for lazy initialisation."""
    silence = np.zeros((2, int(WARMUP_SECONDS * SAMPLE_RATE)), dtype=np.float32)
    model.accompany(silence, GenerateSettings(steps=1, seed=0))
