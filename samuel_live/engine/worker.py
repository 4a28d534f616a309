"""The engine's two background threads: the snapshot thread copies capture takes out of the ring,
the worker thread runs queued jobs one at a time through the render path and writes results.

Only the worker uses the model, so it is never used by two threads at once. Both threads run at
a lower priority so network and audio threads keep their core.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.engine.events import EventBus
from samuel_live.engine.failures import describe_failure
from samuel_live.engine.jobs import Job, JobQueue, JobResult, JobStatus, StepClock, running_eta
from samuel_live.engine.models import ModelSlot
from samuel_live.engine.paths import ensure_output_folder
from samuel_live.errors import JobCancelled, SamuelError
from samuel_live.render.output import midi_path, write_result
from samuel_live.render.sidecar import sidecar_path
from samuel_live.render.take import TakeSpec, render_take

log = logging.getLogger(__name__)
BACKGROUND_NICE = 10
CANCELLED_QUEUED = "cancelled before it started"


class Worker:
    """Runs jobs: ``put`` queues one (a capture job goes through the snapshot thread first)."""

    def __init__(self, events: EventBus, models: ModelSlot, threads: int, folder: Path,
                 bit_depth: int, capture: Callable[[], Any],
                 keep: Callable[[int, np.ndarray], None], autoplay: Callable[[Job], None]) -> None:
        self._events, self._models, self._folder = events, models, folder
        self._threads, self._bit_depth = threads, bit_depth
        self._capture, self._keep, self._autoplay = capture, keep, autoplay
        self.queue = JobQueue()
        self.clock = StepClock()
        self.running: Job | None = None
        self._snapshots: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._finish_lock = threading.Lock()
        self._threads_started: list[threading.Thread] = []

    @property
    def started(self) -> bool:
        return bool(self._threads_started)

    def backlog(self) -> int:
        return len(self.queue) + self._snapshots.qsize()

    def start(self) -> None:
        if self._threads_started:
            return
        self._stop.clear()
        for target, name in ((self._snapshot_loop, "samuel-snapshot"),
                             (self._work, "samuel-engine")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads_started.append(thread)

    def stop(self) -> None:
        """Cancel the running job, stop both threads and wait for them."""
        self._stop.set()
        running = self.running
        if running is not None:
            running.cancel_event.set()
        self.queue.close()
        self._snapshots.put(None)
        for thread in self._threads_started:
            thread.join(timeout=30)
        self._threads_started = []

    def put(self, job: Job) -> None:
        if job.request.source.kind == "file":
            self.queue.put(job)
        else:
            self._snapshots.put(job)

    def eta(self, job: Job) -> float:
        """Seconds until ``job`` is done, from the measured pace; -1 before any job ran."""
        total = 0.0
        for j in [job, *self.queue.pending()[: job.position]]:
            est = self.clock.estimate(j.request.settings.steps, _audio_seconds(j))
            if est < 0:
                return -1.0
            total += est * (2 if j.request.loop else 1)
        running = self.running
        if running is not None and running.eta_s > 0:
            total += running.eta_s
        return total

    # --- snapshot thread ---------------------------------------------------------------------
    def _snapshot_loop(self) -> None:
        lower_priority()
        while (job := self._snapshots.get()) is not None:
            src = job.request.source
            if job.cancel_requested:  # only this thread holds it: report it now, copy nothing
                self.finish(job, JobStatus.CANCELLED, CANCELLED_QUEUED)
                continue
            try:
                job.vocal = self._capture().snapshot(start_frame=src.start_frame,
                                                     end_frame=src.end_frame)
            except SamuelError as exc:
                self.finish(job, JobStatus.FAILED, f"capture copy failed: {exc}")
                continue
            self.queue.put(job)
            self.drop_cancelled()  # cancelled during the copy: do not keep it queued

    def drop_cancelled(self) -> None:
        """Report and release the queued jobs that were cancelled (see ``remove_cancelled``)."""
        for job in self.queue.remove_cancelled():
            self.finish(job, JobStatus.CANCELLED, CANCELLED_QUEUED)

    # --- worker thread -----------------------------------------------------------------------
    def _work(self) -> None:
        set_torch_threads(self._threads)  # OpenMP keeps the thread count per thread
        lower_priority()
        while not self._stop.is_set():
            self._models.swap()
            job, skipped = self.queue.get(timeout=0.1)
            for s in skipped:
                self.finish(s, JobStatus.CANCELLED, CANCELLED_QUEUED)
            if job is not None:
                self._run(job)

    def _run(self, job: Job) -> None:
        self.running = job
        job.status, job.started = JobStatus.RUNNING, time.monotonic()
        self._events.emit("started", job)
        try:
            self._generate(job)
        except JobCancelled:
            self.finish(job, JobStatus.CANCELLED, "cancelled")
        except Exception as exc:  # keep serving whatever one job did
            self.finish(job, JobStatus.FAILED, describe_failure(exc))
        finally:
            self.running = None

    def _generate(self, job: Job) -> None:
        model = self._models.need()
        vocal = self._vocal(job)
        request = job.request
        spec = TakeSpec(source=request.source.describe(), post=request.post, loop=request.loop,
                        musical_time=request.musical_time, sample_rate=request.sample_rate,
                        instrument=request.instrument)
        rendered = render_take(model, vocal, request.settings, spec,
                               progress=self._progress_hook(job))
        sidecar = rendered.sidecar
        self.clock.record(sidecar.timings["model_s"] or 0.0, job.total,
                          vocal.shape[-1] / SAMPLE_RATE)
        if job.cancel_requested:
            raise JobCancelled(f"job {job.id} cancelled")
        if sidecar.musical_time is not None:
            job.musical_time = sidecar.musical_time
        now = time.monotonic()
        src = request.source
        sidecar = replace(
            sidecar, job=job.id,
            timings={**sidecar.timings, "queued_s": round((job.started or now) - job.submitted, 4),
                     "total_s": round(now - job.submitted, 4),
                     "submitted_at": job.submitted_wall,
                     "capture_latency_s": None if src.captured_monotonic is None
                     else round(now - src.captured_monotonic, 4)},
            capture=None if src.kind == "file" else {
                "captured_at": src.captured_at, "captured_monotonic": src.captured_monotonic,
                "captured_adc_time": src.captured_adc},
        )
        output = ensure_output_folder(self._folder, request.output)  # re-checked, then made
        path, sidecar = write_result(output, replace(rendered, sidecar=sidecar),
                                     bit_depth=self._bit_depth)
        job.result = JobResult.of(path, sidecar_path(path), sidecar, midi_path(path))
        if rendered.audio is not None and sidecar.sample_rate == SAMPLE_RATE:
            self._keep(job.id, rendered.audio)
        self.finish(job, JobStatus.DONE)
        if request.autoplay:
            self._autoplay(job)

    def _vocal(self, job: Job) -> np.ndarray:
        vocal = job.vocal
        job.vocal = None  # free it once taken
        if vocal is not None:
            return vocal
        from samuel_live.audio.io import read_audio

        return read_audio(job.request.source.path)

    def _progress_hook(self, job: Job) -> Callable[[int, int], None]:
        def progress(step: int, total: int) -> None:
            if job.cancel_requested or self._stop.is_set():
                raise JobCancelled(f"job {job.id} cancelled")
            job.step, job.total = step, total
            job.eta_s = running_eta(job.started or time.monotonic(), step, total)
            self._events.emit("progress", job)

        return progress

    def finish(self, job: Job, status: JobStatus, message: str = "") -> None:
        """Settle ``job`` and announce it, once: a job already finished (say, cancelled from the
        network thread while ``Engine.close`` answers it) is left as it is."""
        with self._finish_lock:
            if job.status.finished:
                return
            job.status, job.finished, job.error = status, time.monotonic(), message or None
        job.vocal = None
        if status is JobStatus.FAILED:
            log.error("job %d failed: %s", job.id, message)
        self._events.emit({JobStatus.DONE: "done", JobStatus.FAILED: "failed",
                           JobStatus.CANCELLED: "cancelled"}[status], job, message)


def _audio_seconds(job: Job) -> float:
    from samuel_live import WINDOW_SAMPLES

    frames = job.request.source.frames
    return (frames if frames else WINDOW_SAMPLES) / SAMPLE_RATE


def set_torch_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def lower_priority() -> None:
    """Raise this thread's nice value (Linux: per thread), so that with every core busy the
    OSC and audio threads still run at once."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)
    except (AttributeError, OSError):  # not on this platform: run at normal priority
        pass
