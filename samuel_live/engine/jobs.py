"""Generation jobs: what was asked, where it stands, and a priority queue that can cancel."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.render.instrument import Instrument
from samuel_live.render.sidecar import Sidecar
from samuel_live.render.take import LoopSpec
from samuel_live.settings import GenerateSettings
from samuel_live.timing import MusicalTime

MIN_BILLED_S = 1.5  # a shorter take still costs a whole minimum window (32 latent frames)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class Source:
    """Where the vocal comes from: the capture ring's frames ``[start_frame, end_frame)`` (the
    newest ones for "capture", the marked ones for "region"), or a file already checked
    against the allowed folders. The clock fields date the newest captured frame when the
    request arrived: wall clock, ``time.monotonic()`` and the input stream's ADC clock (None
    where the source has no such clock)."""

    kind: str  # "capture" | "region" | "file"
    path: Path | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    captured_at: float | None = None
    captured_monotonic: float | None = None
    captured_adc: float | None = None

    @property
    def frames(self) -> int | None:
        if self.start_frame is None or self.end_frame is None:
            return None
        return self.end_frame - self.start_frame

    def describe(self) -> str:
        if self.kind == "file":
            return f"file:{self.path}"
        return f"{self.kind}[{self.start_frame}:{self.end_frame}]"


@dataclass(frozen=True)
class GenerateRequest:
    """One validated request: source, output file, per-call settings, the post chain as a frozen
    value (None = no post), a loop request, the tempo the DAW had sent (if any), the result's
    sample rate, and whether to play the result on the next bar line once it is done."""

    source: Source
    output: Path
    settings: GenerateSettings
    post: PostSection | None = PostSection()
    loop: LoopSpec | None = None
    musical_time: MusicalTime | None = None
    sample_rate: int = SAMPLE_RATE
    autoplay: bool = False
    instrument: Instrument | None = None  # play the notes on it (None: the codec's decode)


@dataclass(frozen=True)
class JobResult:
    """The files a finished job wrote, its sidecar, and how long each stage took (seconds;
    -1 where a stage does not apply, e.g. capture latency for a file source)."""

    path: Path
    sidecar: Path
    sidecar_data: Sidecar
    midi: Path | None
    duration_s: float
    queued_s: float
    model_s: float
    post_s: float
    total_s: float
    capture_latency_s: float

    @classmethod
    def of(cls, path: Path, sidecar: Path, data: Sidecar, midi: Path | None) -> JobResult:
        t = {k: -1.0 if v is None else float(v) for k, v in data.timings.items()}
        return cls(path, sidecar, data, midi, data.duration_s,
                   *(t.get(k, -1.0) for k in ("queued_s", "model_s", "post_s", "total_s",
                                              "capture_latency_s")))


@dataclass
class Job:
    """A generation job; the engine's worker thread is the only writer after it is queued."""

    id: int
    request: GenerateRequest
    priority: int = 5
    origin: Any = None  # opaque tag of whoever asked (the OSC layer stores the peer)
    status: JobStatus = JobStatus.QUEUED
    step: int = 0
    total: int = 0
    eta_s: float = -1.0
    error: str | None = None
    result: JobResult | None = None
    submitted: float = field(default_factory=time.monotonic)
    submitted_wall: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    position: int = 0  # jobs ahead of it when it was queued
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    vocal: np.ndarray | None = field(default=None, repr=False)  # capture copy, freed once used
    musical_time: dict[str, Any] | None = None  # the tempo the result used (its sidecar's)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()


class StepClock:
    """Seconds per sampler step per second of audio, averaged over finished jobs."""

    def __init__(self, smoothing: float = 0.5) -> None:
        self._rate: float | None = None
        self._smoothing = smoothing
        self._lock = threading.Lock()

    def record(self, seconds: float, steps: int, audio_s: float) -> None:
        if steps <= 0 or audio_s <= 0:
            return
        rate = seconds / steps / max(audio_s, MIN_BILLED_S)
        with self._lock:
            self._rate = rate if self._rate is None else (
                self._smoothing * rate + (1 - self._smoothing) * self._rate
            )

    def estimate(self, steps: int, audio_s: float) -> float:
        """Expected model seconds for a job, or -1 before anything was measured."""
        with self._lock:
            return -1.0 if self._rate is None else self._rate * steps * max(audio_s, MIN_BILLED_S)


def running_eta(started: float, step: int, total: int, now: float | None = None) -> float:
    """Seconds left in a running job, from its own measured pace."""
    if step <= 0 or total <= 0:
        return -1.0
    elapsed = (now if now is not None else time.monotonic()) - started
    return elapsed / step * (total - step)


class JobQueue:
    """Thread-safe priority queue: higher priority first, then first come, first served.

    Cancelling a queued job removes it lazily: ``get`` skips jobs whose cancel flag is set and
    hands them back through ``drop`` so the engine can report them.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: Job) -> None:
        with self._cond:
            heapq.heappush(self._heap, (-job.priority, next(self._seq), job))
            self._cond.notify()

    def ahead_of(self, priority: int) -> int:
        """How many live jobs would run before a job of ``priority`` queued now."""
        with self._cond:
            return sum(1 for e in self._heap if not e[2].cancel_requested and -e[0] >= priority)

    def get(self, timeout: float | None = None) -> tuple[Job | None, list[Job]]:
        """The next live job (or None on timeout/close) and any cancelled jobs skipped."""
        skipped: list[Job] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                while self._heap:
                    job = heapq.heappop(self._heap)[2]
                    if job.cancel_requested:
                        skipped.append(job)
                        continue
                    return job, skipped
                if self._closed or skipped:
                    return None, skipped
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None, skipped
                self._cond.wait(left)

    def remove_cancelled(self) -> list[Job]:
        """Take every cancelled job out of the queue and return them, for the caller to report.

        Each holds its capture copy (~17 MB) until it leaves the queue; without this a job
        cancelled behind a long generation kept it, and waited for its "cancelled", until the
        worker was free. A job leaves the queue once: here, or skipped by ``get``."""
        with self._cond:
            gone = [e[2] for e in self._heap if e[2].cancel_requested]
            if gone:
                self._heap = [e for e in self._heap if not e[2].cancel_requested]
                heapq.heapify(self._heap)
            return gone

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return sum(1 for e in self._heap if not e[2].cancel_requested)

    def pending(self) -> list[Job]:
        with self._cond:
            return [e[2] for e in sorted(self._heap) if not e[2].cancel_requested]
