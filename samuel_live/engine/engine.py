"""The live engine: capture, model, post chain, a job queue and one worker thread.

Network and audio threads only call the quick methods here (``submit``, ``cancel``, transport,
capture controls); every generation runs on the single worker thread, so the model is never
used by two threads at once. What happens is announced to subscribers as ``EngineEvent``s; the
engine knows nothing about who listens (the OSC layer is one subscriber).

A capture request is acknowledged before its audio is copied: ``submit`` fixes the ring region
(the frames sung up to the request), announces "queued", and hands the ~17 MB copy to a
snapshot thread. The ring keeps ``CAPTURE_HEADROOM_S`` more than a take, so the region is still
intact when the copy runs a few milliseconds later.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.config import Config, PostSection, render_folder
from samuel_live.engine.jobs import (
    GenerateRequest,
    Job,
    JobQueue,
    JobResult,
    JobStatus,
    LoopSpec,
    Source,
    StepClock,
    running_eta,
)
from samuel_live.engine.paths import input_path, model_path, output_path
from samuel_live.engine.transport import Playback, PlayStart, Transport
from samuel_live.errors import AudioInputError, JobCancelled, ModelError, SamuelError
from samuel_live.settings import GenerateSettings

log = logging.getLogger(__name__)

MAX_QUEUED = 32  # each queued capture job holds its vocal (up to ~17 MB)
WARMUP_SECONDS = 1.0
CAPTURE_HEADROOM_S = 12.45  # a 47.55 s take in a 60 s ring: the copy may start late
SNAPSHOT_SLACK_S = 1.0  # a ring without headroom gives takes this much shorter instead
BACKGROUND_NICE = 10  # worker and snapshot threads yield the CPU to network and audio threads
EventSink = Callable[["EngineEvent"], None]


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


@dataclass(frozen=True)
class EngineStatus:
    state: str  # ready | loading | no-model | stopped
    queued: int
    running: int  # job id or -1
    model: str
    transport: Transport


class Engine:
    """Owns capture, the Accompanist, the post chain, the job queue and the worker thread."""

    def __init__(
        self,
        config: Config,
        *,
        accompanist: Any = None,
        capture: Any = None,
        player: Any = None,
        warm_up: bool = True,
        threads: int | None = None,
    ) -> None:
        """``threads``: torch threads for generation; None = one less than the CPU cores, so
        the network, snapshot and audio threads keep a core."""
        self.config = config
        self.folder = render_folder(config)
        self._model = accompanist
        self._pending_model: Any = None
        self._model_error: str | None = None
        self._loading = 0
        self.capture = capture
        self._playback = Playback(config.capture, player)
        self._warm = warm_up
        self.threads = threads if threads else default_threads()
        self._post = config.post
        self._chain = _build_post(config.post)
        self._queue = JobQueue()
        self._jobs: dict[int, Job] = {}
        self._snapshots: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._next_id = 1
        self._running: Job | None = None
        self._lock = threading.RLock()
        self._subscribers: list[EventSink] = []
        self._clock = StepClock()
        self.transport = Transport()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._snapshotter: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Engine:
        """Load and warm the model (if none was given), open capture, start the worker."""
        if self._worker is not None:
            return self
        _set_torch_threads(self.threads)
        if self._model is None:
            self._load_initial_model()
        elif self._warm:
            _warm_up(self._model)
        if self.capture is None:
            self.capture = self._open_capture()
        elif hasattr(self.capture, "start"):
            self.capture.start()
        self._stop.clear()
        self._snapshotter = threading.Thread(target=self._snapshot_loop, daemon=True,
                                             name="samuel-snapshot")
        self._snapshotter.start()
        self._worker = threading.Thread(target=self._work, name="samuel-engine", daemon=True)
        self._worker.start()
        return self

    def close(self) -> None:
        """Stop the worker (a running job is cancelled), capture and playback."""
        self._stop.set()
        with self._lock:
            if self._running is not None:
                self._running.cancel_event.set()
        self._queue.close()
        self._snapshots.put(None)
        for thread in (self._snapshotter, self._worker):
            if thread is not None:
                thread.join(timeout=30)
        self._snapshotter = self._worker = None
        with self._lock:
            stranded = [j for j in self._jobs.values() if j.status is JobStatus.QUEUED]
        for job in stranded:  # every request gets an answer, even at shutdown
            self._finish(job, JobStatus.CANCELLED, "engine shut down")
        if self.capture is not None and hasattr(self.capture, "close"):
            self.capture.close()
        self._playback.close()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_initial_model(self) -> None:
        m = self.config.model
        try:
            self._model = _load_accompanist(m.path or None, m.device, m.codec_path or None)
            if self._warm:
                _warm_up(self._model)
        except SamuelError as exc:
            self._model_error = str(exc)
            log.error("model not loaded: %s", exc)

    def _open_capture(self) -> Any:
        from samuel_live.audio.capture import CaptureConfig, open_capture

        c = self.config.capture
        try:
            if c.device.startswith(("file:", "memory:")):
                source = open_capture(c.device, seconds=c.seconds + CAPTURE_HEADROOM_S)
            else:
                source = open_capture(CaptureConfig(
                    device=c.device or None, hostapi=c.hostapi or None, channels=c.channels,
                    blocksize=c.blocksize, samplerate=c.samplerate or None,
                    seconds=c.seconds + CAPTURE_HEADROOM_S,
                ))
            return source.start()
        except SamuelError as exc:
            log.error("capture not available: %s", exc)
            return None

    # --- events ------------------------------------------------------------------------------
    def subscribe(self, sink: EventSink) -> None:
        with self._lock:
            self._subscribers.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        with self._lock:
            if sink in self._subscribers:
                self._subscribers.remove(sink)

    def _emit(self, kind: str, job: Job | None = None, message: str = "",
              data: dict[str, Any] | None = None) -> None:
        event = EngineEvent(kind, job, message, data or {})
        with self._lock:
            sinks = list(self._subscribers)
        for sink in sinks:
            try:
                sink(event)
            except Exception:  # a broken listener must not stop the engine
                log.exception("event subscriber failed on %s", kind)

    # --- jobs --------------------------------------------------------------------------------
    def submit(
        self,
        source: str = "capture",
        output: str | None = None,
        *,
        seed: int = -1,
        steps: int = 0,
        cfg: float = -1.0,
        sampler: str = "-",
        post: str = "-",
        priority: int = 5,
        origin: Any = None,
        loop_bars: int = 0,
        autoplay: bool = False,
    ) -> Job:
        """Validate a request and queue it; raises SamuelError at once if it cannot run.

        ``seed`` -1 picks a random seed, ``steps`` 0 / ``cfg`` < 0 / ``sampler`` "-" use the
        configured defaults, ``output`` None or "-" an automatic name. ``loop_bars`` > 0 makes
        a seamless loop that many bars long; ``autoplay`` plays the result from the next bar
        line once it is done (looped, for a loop).
        """
        if self._stop.is_set():
            raise SamuelError("the engine is shutting down")
        if len(self._queue) + self._snapshots.qsize() >= MAX_QUEUED:
            raise SamuelError(f"{MAX_QUEUED} jobs are queued already; wait or cancel some")
        with self._lock:
            job_id, self._next_id = self._next_id, self._next_id + 1
            transport = self.transport
        settings = self._settings(seed, steps, cfg, sampler)
        chain = self._chain_for(post)
        loop = _loop_spec(loop_bars, transport)
        out_path = self._output(output, job_id)
        where = self._source(source)
        request = GenerateRequest(source=where, output=out_path, settings=settings, post=post,
                                  loop=loop, autoplay=bool(autoplay))
        job = Job(id=job_id, request=request, priority=priority, origin=origin, chain=chain,
                  total=settings.steps * (2 if loop else 1),
                  musical_time=None if loop else transport.musical_time(),
                  beat_unit=transport.unit if transport.meter_set else 4)
        with self._lock:
            self._jobs[job_id] = job
            self._forget_old_jobs()
        job.position = self._queue.ahead_of(priority)
        job.eta_s = self._eta_for(job)
        self._emit("queued", job)  # the ack: before the copy, and before "started"
        if where.kind == "file":
            self._queue.put(job)
        else:
            self._snapshots.put(job)
        return job

    def _settings(self, seed: int, steps: int, cfg: float, sampler: str) -> GenerateSettings:
        g = self.config.generate
        return GenerateSettings(
            sampler=g.sampler if sampler in ("-", "", "default") else sampler,
            steps=int(steps) if steps > 0 else g.steps,
            cfg=float(cfg) if cfg >= 0 else g.cfg,
            seed=int(seed) if seed >= 0 else secrets.randbelow(2**31),
        )

    def _source(self, text: str) -> Source:
        """The checked source. For the capture, the ring region is fixed now (what was sung
        up to this request); the snapshot thread copies it right after the ack."""
        if text.startswith("file:"):
            path = input_path(text[5:], self.folder, self.config.render.allowed_input_dirs)
            return Source(kind="file", path=path)
        if text not in ("capture", "region"):
            raise SamuelError(f"unknown source {text!r}; use capture, region or file:PATH")
        capture = self._need_capture()
        stamp = capture.last_capture_time()
        lo, now = capture.ring.available()
        if text == "region":
            start, end = capture.marks
            if start is None:
                raise AudioInputError("no region is marked; send /samuel/capture/mark start "
                                      "(and end) first")
            end = now if end is None else end
            if start < lo:
                raise AudioInputError(f"the marked region starts at frame {start}, but the "
                                      f"oldest frame still captured is {lo}; mark it again")
        else:
            start, end = max(lo, now - self._take_frames(capture)), now
        if end <= start:
            raise AudioInputError(
                "nothing captured yet; send /samuel/capture/arm (or `capture arm`) and sing first"
            )
        return Source(text, None, start, end, _wall_time_of(stamp.monotonic),
                      stamp.monotonic or None, stamp.adc_time or None)

    def _take_frames(self, capture: Any) -> int:
        """How many of the newest frames a capture take holds: the configured seconds, less
        ``SNAPSHOT_SLACK_S`` if the ring has no room for the copy to start late."""
        want = round(self.config.capture.seconds * SAMPLE_RATE)
        room = capture.ring.capacity - round(SNAPSHOT_SLACK_S * SAMPLE_RATE)
        return max(1, min(want, room))

    def _snapshot_loop(self) -> None:
        _lower_priority()
        while (job := self._snapshots.get()) is not None:
            self._take_snapshot(job)

    def _take_snapshot(self, job: Job) -> None:
        """Copy a capture job's region out of the ring and queue the job for the worker."""
        src = job.request.source
        if not job.cancel_requested:
            try:
                job.vocal = self._need_capture().snapshot(start_frame=src.start_frame,
                                                          end_frame=src.end_frame)
            except SamuelError as exc:
                self._finish(job, JobStatus.FAILED, f"capture copy failed: {exc}")
                return
        self._queue.put(job)  # a cancelled job is skipped and reported by the queue

    def _output(self, name: str | None, job_id: int) -> Path:
        suffix = "." + self.config.render.format.lstrip(".")
        if not name or name in ("-", "auto"):
            name = time.strftime(f"samuel-%Y%m%d-%H%M%S-{job_id:04d}")
        return output_path(self.folder, name, suffix)

    def _chain_for(self, post: str) -> Any:
        if post in ("-", "", "default-chain"):
            return self._chain
        if post == "none":
            return None
        return _build_post(replace(self._post, preset=post))

    def _eta_for(self, job: Job) -> float:
        ahead = [job, *self._queue.pending()[: job.position]]
        total = 0.0
        for j in ahead:
            audio_s = _audio_seconds(j)
            est = self._clock.estimate(j.request.settings.steps, audio_s)
            if est < 0:
                return -1.0
            total += est * (2 if j.request.loop else 1)
        running = self._running
        if running is not None and running.eta_s > 0:
            total += running.eta_s
        return total

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if j.status.finished]
        for j in finished[: max(0, len(finished) - 256)]:
            del self._jobs[j.id]

    def cancel(self, job_id: int) -> bool:
        """Ask a queued or running job to stop; False if it is unknown or already finished."""
        job = self._jobs.get(job_id)
        if job is None or job.status.finished:
            return False
        job.cancel_event.set()
        self._queue.wake()
        return True

    def job(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until a job has finished (for the CLI and tests); returns it."""
        job = self._jobs.get(job_id)
        if job is None:
            raise SamuelError(f"no job {job_id}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.status.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise SamuelError(f"job {job_id} still {job.status.value} after {timeout} s")
            time.sleep(0.01)
        return job

    def status(self) -> EngineStatus:
        if self._loading:
            state = "loading"
        elif self._model is None:
            state = "no-model"
        else:
            state = "stopped" if self._worker is None else "ready"
        running = self._running
        name = self._model.info().get("name", "") if self._model is not None else ""
        return EngineStatus(state, len(self._queue), running.id if running else -1, name,
                            replace(self.transport))

    # --- worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        _set_torch_threads(self.threads)  # OpenMP keeps the thread count per thread
        _lower_priority()
        while not self._stop.is_set():
            self._swap_model()
            job, skipped = self._queue.get(timeout=0.1)
            for s in skipped:
                self._finish(s, JobStatus.CANCELLED, "cancelled before it started")
            if job is not None:
                self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            self._running = job
        job.status, job.started = JobStatus.RUNNING, time.monotonic()
        self._emit("started", job)
        try:
            self._generate(job)
        except JobCancelled:
            self._finish(job, JobStatus.CANCELLED, "cancelled")
        except SamuelError as exc:
            self._finish(job, JobStatus.FAILED, str(exc))
        except Exception as exc:  # keep serving whatever one job did
            self._finish(job, JobStatus.FAILED, _describe_failure(exc))
        finally:
            with self._lock:
                self._running = None

    def _generate(self, job: Job) -> None:
        model = self._model
        if model is None:
            raise ModelError(f"no model loaded ({self._model_error}); load one with model/load")
        vocal = self._vocal(job)
        loop = job.request.loop
        t0 = time.monotonic()
        if loop is None:
            audio = model.accompany(vocal, job.request.settings,
                                    progress=self._progress_hook(job))
        else:
            audio, vocal = self._accompany_loop(job, model, loop, vocal)
        t1 = time.monotonic()
        chain = job.chain
        if chain is not None:
            audio = (chain.process(audio, vocal=vocal) if loop is None
                     else chain.process_loop(audio, vocal=vocal))
        t2 = time.monotonic()
        self._clock.record(t1 - t0, job.total, vocal.shape[-1] / SAMPLE_RATE)
        self._write(job, model, audio, model_s=t1 - t0, post_s=t2 - t1)
        if job.request.autoplay:
            self._autoplay(job)

    def _accompany_loop(self, job: Job, model: Any, loop: LoopSpec,
                        vocal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A seamless loop of ``loop.bars`` bars on the newest bars of the take; returns it
        and the part of the take it was made from."""
        job.musical_time = tempo = loop.resolve(vocal)
        n = loop.samples(tempo)
        if n > WINDOW_SAMPLES:
            raise SamuelError(f"a loop of {loop.bars} bars at {tempo.bpm:g} bpm is "
                              f"{n / SAMPLE_RATE:.1f} s; loops are limited to "
                              f"{WINDOW_SAMPLES / SAMPLE_RATE:.2f} s, ask for fewer bars")
        take = vocal[:, -n:]
        audio = model.accompany_loop(take, job.request.settings, n,
                                     progress=self._progress_hook(job))
        return audio, take

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
            self._emit("progress", job)

        return progress

    def _write(self, job: Job, model: Any, audio: np.ndarray, model_s: float,
               post_s: float) -> None:
        from samuel_live.audio.io import write_audio_atomic, write_json_atomic

        if job.cancel_requested:
            raise JobCancelled(f"job {job.id} cancelled")
        path = write_audio_atomic(job.request.output, audio, SAMPLE_RATE,
                                  self.config.render.bit_depth)
        now = time.monotonic()
        captured = job.request.source.captured_monotonic
        result = JobResult(
            path=path, sidecar=path.with_suffix(path.suffix + ".json"),
            duration_s=audio.shape[-1] / SAMPLE_RATE,
            queued_s=(job.started or now) - job.submitted, model_s=model_s, post_s=post_s,
            total_s=now - job.submitted,
            capture_latency_s=now - captured if captured is not None else -1.0,
        )
        write_json_atomic(result.sidecar, _sidecar(job, model, result))
        job.result = result
        self._playback.keep(job.id, audio)
        self._finish(job, JobStatus.DONE)

    def _autoplay(self, job: Job) -> None:
        """Play a finished result from the next bar line; a failure is reported, the job
        stays done."""
        try:
            start = self.play(job.id, loop=job.request.loop is not None, quantise="bar")
        except Exception as exc:  # no output device must not undo a finished job
            message = str(exc) if isinstance(exc, SamuelError) else _describe_failure(exc)
            self._emit("play_failed", job, f"autoplay: {message}")
            return
        self._emit("playing", job, data={"frame": start.frame, "in_s": start.in_s})

    def _finish(self, job: Job, status: JobStatus, message: str = "") -> None:
        job.status, job.finished, job.error = status, time.monotonic(), message or None
        job.vocal = None
        if status is JobStatus.FAILED:
            log.error("job %d failed: %s", job.id, message)
        self._emit({JobStatus.DONE: "done", JobStatus.FAILED: "failed",
                    JobStatus.CANCELLED: "cancelled"}[status], job, message)

    # --- model -------------------------------------------------------------------------------
    def model_info(self) -> dict[str, Any]:
        if self._model is None:
            raise ModelError(f"no model loaded: {self._model_error}")
        return self._model.info()

    def load_model(self, path: str) -> None:
        """Load a model in the background; it replaces the current one between jobs."""
        from samuel_live.pipeline import STARTER_MODEL

        configured = Path(self.config.model.path).expanduser().parent if self.config.model.path \
            else STARTER_MODEL.parent
        path = str(model_path(path, [STARTER_MODEL.parent, configured, self.folder,
                                     *self.config.render.allowed_input_dirs]))
        with self._lock:
            self._loading += 1
        threading.Thread(target=self._load_in_background, args=(path,), daemon=True,
                         name="samuel-model-loader").start()

    def _load_in_background(self, path: str) -> None:
        m = self.config.model
        try:
            model = _load_accompanist(path, m.device, m.codec_path or None)
            if self._warm:
                _warm_up(model)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SamuelError) else _describe_failure(exc)
            log.error("model %s not loaded: %s", path, message)
            with self._lock:
                self._loading -= 1
            self._emit("model_failed", message=f"model {path} not loaded: {message}")
            return
        with self._lock:
            self._pending_model = model
            self._loading -= 1
        if self._worker is None:
            self._swap_model()

    def _swap_model(self) -> None:
        with self._lock:
            model, self._pending_model = self._pending_model, None
            if model is None:
                return
            self._model, self._model_error = model, None
        self._emit("model_loaded", data=model.info())

    # --- post chain --------------------------------------------------------------------------
    def post_chain(self) -> list[dict[str, Any]]:
        return self._chain.describe()

    def set_post_chain(self, effects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        """Replace the chain used by jobs queued from now on; returns it with defaults filled."""
        section = replace(self._post, preset="custom", chain=tuple(effects))
        chain = _build_post(section)
        self._post, self._chain = section, chain
        return chain.describe()

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

    # --- transport and playback --------------------------------------------------------------
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

    def play(self, job_id: int, loop: bool = False, quantise: str = "bar") -> PlayStart:
        """Play a finished job's audio from the next bar line (or beat, or now)."""
        job = self._jobs.get(job_id)
        path = job.result.path if job is not None and job.result is not None else None
        audio = self._playback.audio(job_id, path)
        return self._playback.play(job_id, audio, self.transport, loop, quantise)

    def stop_playback(self) -> None:
        self._playback.stop()


def _build_post(section: PostSection) -> Any:
    from samuel_live.post.chain import build_chain

    return build_chain(section)


def _load_accompanist(path: str | None, device: str, codec_path: str | None) -> Any:
    from samuel_live.pipeline import Accompanist

    return Accompanist.load(path, device=device, codec_path=codec_path)


def default_threads() -> int:
    """One torch thread less than the CPU cores this process may use (at least one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 2) - 1)


def _set_torch_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _lower_priority() -> None:
    """Raise this thread's nice value (Linux: per thread), so that with every core busy the
    OSC and audio threads still run at once."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)
    except (AttributeError, OSError):  # not on this platform: run at normal priority
        pass


def _loop_spec(bars: int, transport: Transport) -> LoopSpec | None:
    """The loop a request asks for, with the DAW's tempo and meter as they are now."""
    if bars <= 0:
        return None
    loop = LoopSpec(bars, transport.musical_time(),
                    transport.beats if transport.meter_set else None,
                    transport.unit if transport.meter_set else 4)
    if loop.transport is not None and loop.samples(loop.transport) > WINDOW_SAMPLES:
        raise SamuelError(f"{bars} bars at {transport.bpm:g} bpm are longer than "
                          f"{WINDOW_SAMPLES / SAMPLE_RATE:.2f} s, the longest loop; ask for fewer")
    return loop


def _warm_up(model: Any) -> None:
    """One tiny generation so the first real job does not pay for lazy initialisation."""
    silence = np.zeros((2, int(WARMUP_SECONDS * SAMPLE_RATE)), dtype=np.float32)
    model.accompany(silence, GenerateSettings(steps=1, seed=0))


def _wall_time_of(monotonic: float) -> float | None:
    """Wall-clock time of a ``time.monotonic()`` stamp (None for 0: nothing captured)."""
    if not monotonic:
        return None
    return time.time() - (time.monotonic() - monotonic)


def _audio_seconds(job: Job) -> float:
    frames = job.request.source.frames
    return (frames if frames else WINDOW_SAMPLES) / SAMPLE_RATE


def _describe_failure(exc: Exception) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return ("out of GPU memory; lower steps, close other GPU programs, or serve with "
                "--device cpu")
    if isinstance(exc, MemoryError):
        return "out of memory; generate shorter takes or close other programs"
    log.exception("job failed unexpectedly")
    return f"internal error: {type(exc).__name__}: {exc}"


def _sidecar(job: Job, model: Any, result: JobResult) -> dict[str, Any]:
    info = model.info()
    request = job.request
    source = request.source
    tempo = job.musical_time
    return {
        "job": job.id,
        "audio": result.path.name,
        "settings": asdict(request.settings),
        "seed": request.settings.seed,
        "post": request.post,
        "model": {"name": info.get("name"), "hash": info.get("hash"),
                  "codec": info.get("codec"), "device": info.get("device")},
        "source": source.describe(),
        "loop_bars": request.loop.bars if request.loop else 0,
        "musical_time": None if tempo is None else {
            "bpm": tempo.bpm, "beats_per_bar": tempo.beats_per_bar,
            "beat_unit": job.beat_unit, "source": tempo.source},
        "timings": {
            "captured_at": source.captured_at,
            "captured_monotonic": source.captured_monotonic,
            "captured_adc_time": source.captured_adc,
            "submitted_at": job.submitted_wall,
            "queued_s": round(result.queued_s, 4),
            "model_s": round(result.model_s, 4),
            "post_s": round(result.post_s, 4),
            "total_s": round(result.total_s, 4),
            "capture_latency_s": round(result.capture_latency_s, 4),
        },
        "duration_s": result.duration_s,
        "samples": round(result.duration_s * SAMPLE_RATE),
        "sample_rate": SAMPLE_RATE,
    }
