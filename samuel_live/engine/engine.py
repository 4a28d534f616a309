"""The live engine: capture, model, post chain, a job queue and one worker thread.

Network and audio threads only call the quick methods here (``submit``, ``cancel``, transport,
capture controls); every generation runs on the single worker thread, so the model is never
used by two threads at once. What happens is announced to subscribers as ``EngineEvent``s; the
engine knows nothing about who listens (the OSC layer is one subscriber).
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
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
    Source,
    StepClock,
    running_eta,
)
from samuel_live.engine.paths import input_path, output_path
from samuel_live.errors import AudioInputError, JobCancelled, ModelError, SamuelError
from samuel_live.settings import GenerateSettings

log = logging.getLogger(__name__)

MAX_QUEUED = 32  # each queued capture job holds its vocal (up to ~17 MB)
RESULT_CACHE = 4  # finished results kept in memory for instant playback
WARMUP_SECONDS = 1.0
EventSink = Callable[["EngineEvent"], None]


@dataclass(frozen=True)
class EngineEvent:
    """Something subscribers may want to know.

    kinds: queued, started, progress, done, failed, cancelled (with ``job``); model_loaded,
    model_failed (with ``data`` = model info or ``message``).
    """

    kind: str
    job: Job | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Transport:
    """Tempo and bar grid. The grid's phase is kept as a monotonic time, so it maps onto any
    device's frame counter when playback is scheduled."""

    bpm: float = 120.0
    beats: int = 4
    unit: int = 4
    origin_time: float = field(default_factory=time.monotonic)
    origin_bar: int = 1

    @property
    def bar_seconds(self) -> float:
        return self.beats * (4.0 / self.unit) * 60.0 / self.bpm

    def bar_at(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return self.origin_bar + math.floor((now - self.origin_time) / self.bar_seconds)


@dataclass(frozen=True)
class EngineStatus:
    state: str  # ready | loading | no-model | stopped
    queued: int
    running: int  # job id or -1
    model: str
    transport: Transport


@dataclass(frozen=True)
class PlayStart:
    job: int
    frame: int
    in_s: float


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
    ) -> None:
        self.config = config
        self.folder = render_folder(config)
        self._model = accompanist
        self._pending_model: Any = None
        self._model_error: str | None = None
        self._loading = 0
        self.capture = capture
        self._player = player
        self._warm = warm_up
        self._post = config.post
        self._chain = _build_post(config.post)
        self._queue = JobQueue()
        self._jobs: dict[int, Job] = {}
        self._results: OrderedDict[int, np.ndarray] = OrderedDict()
        self._next_id = 1
        self._running: Job | None = None
        self._lock = threading.RLock()
        self._subscribers: list[EventSink] = []
        self._clock = StepClock()
        self.transport = Transport()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Engine:
        """Load and warm the model (if none was given), open capture, start the worker."""
        if self._worker is not None:
            return self
        if self._model is None:
            self._load_initial_model()
        elif self._warm:
            _warm_up(self._model)
        if self.capture is None:
            self.capture = self._open_capture()
        elif hasattr(self.capture, "start"):
            self.capture.start()
        self._stop.clear()
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
        if self._worker is not None:
            self._worker.join(timeout=30)
            self._worker = None
        for device in (self.capture, self._player):
            if device is not None and hasattr(device, "close"):
                device.close()

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
                source = open_capture(c.device, seconds=c.seconds)
            else:
                source = open_capture(CaptureConfig(
                    device=c.device or None, hostapi=c.hostapi or None, channels=c.channels,
                    blocksize=c.blocksize, samplerate=c.samplerate or None, seconds=c.seconds,
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
    ) -> Job:
        """Validate a request and queue it; raises SamuelError at once if it cannot run.

        ``seed`` -1 picks a random seed, ``steps`` 0 / ``cfg`` < 0 / ``sampler`` "-" use the
        configured defaults, ``output`` None or "-" an automatic name.
        """
        if self._stop.is_set():
            raise SamuelError("the engine is shutting down")
        if len(self._queue) >= MAX_QUEUED:
            raise SamuelError(f"{MAX_QUEUED} jobs are queued already; wait or cancel some")
        with self._lock:
            job_id, self._next_id = self._next_id, self._next_id + 1
        settings = self._settings(seed, steps, cfg, sampler)
        chain = self._chain_for(post)
        out_path = self._output(output, job_id)
        where, vocal = self._source(source)
        request = GenerateRequest(source=where, output=out_path, settings=settings, post=post)
        job = Job(id=job_id, request=request, priority=priority, origin=origin, vocal=vocal,
                  chain=chain, total=settings.steps)
        with self._lock:
            self._jobs[job_id] = job
            self._forget_old_jobs()
        job.position = self._queue.ahead_of(priority)
        job.eta_s = self._eta_for(job)
        self._emit("queued", job)  # before the worker can see it: "queued" precedes "started"
        self._queue.put(job)
        return job

    def _settings(self, seed: int, steps: int, cfg: float, sampler: str) -> GenerateSettings:
        g = self.config.generate
        return GenerateSettings(
            sampler=g.sampler if sampler in ("-", "", "default") else sampler,
            steps=int(steps) if steps > 0 else g.steps,
            cfg=float(cfg) if cfg >= 0 else g.cfg,
            seed=int(seed) if seed >= 0 else secrets.randbelow(2**31),
        )

    def _source(self, text: str) -> tuple[Source, np.ndarray | None]:
        """The checked source, and for capture sources a copy of the vocal taken now (the
        singer keeps singing while the job waits)."""
        if text.startswith("file:"):
            path = input_path(text[5:], self.folder, self.config.render.allowed_input_dirs)
            return Source(kind="file", path=path), None
        if text not in ("capture", "region"):
            raise SamuelError(f"unknown source {text!r}; use capture, region or file:PATH")
        capture = self._need_capture()
        if text == "region":
            start, end = capture.marks
            vocal = capture.snapshot_marked()
            end = end if end is not None else (start or 0) + vocal.shape[-1]
        else:
            start, end = capture.ring.available()
            vocal = capture.snapshot(last_frames=end - start)  # rolling read: retries if torn
        if vocal.shape[-1] == 0:
            raise AudioInputError(
                "nothing captured yet; send /samuel/capture/arm (or `capture arm`) and sing first"
            )
        return Source(text, None, start, end, _wall_time_of(capture)), vocal

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
            total += est
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
        t0 = time.monotonic()
        audio = model.accompany(vocal, job.request.settings, progress=self._progress_hook(job))
        t1 = time.monotonic()
        chain = job.chain
        if chain is not None:
            audio = chain.process(audio, vocal=vocal)
        t2 = time.monotonic()
        self._clock.record(t1 - t0, job.total, vocal.shape[-1] / SAMPLE_RATE)
        self._write(job, model, audio, model_s=t1 - t0, post_s=t2 - t1)

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
        result = JobResult(
            path=path, sidecar=path.with_suffix(path.suffix + ".json"),
            duration_s=audio.shape[-1] / SAMPLE_RATE,
            queued_s=(job.started or now) - job.submitted, model_s=model_s, post_s=post_s,
            total_s=now - job.submitted,
        )
        write_json_atomic(result.sidecar, _sidecar(job, model, result))
        job.result = result
        with self._lock:
            self._results[job.id] = audio
            while len(self._results) > RESULT_CACHE:
                self._results.popitem(last=False)
        self._finish(job, JobStatus.DONE)

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
        if not 20.0 <= bpm <= 400.0:
            raise SamuelError(f"tempo must be between 20 and 400 bpm, got {bpm}")
        with self._lock:
            now = time.monotonic()
            bar = self.transport.bar_at(now)
            start = self.transport.origin_time + (bar - self.transport.origin_bar) * (
                self.transport.bar_seconds)
            self.transport = replace(self.transport, bpm=float(bpm), origin_time=start,
                                     origin_bar=bar)

    def set_signature(self, beats: int, unit: int) -> None:
        if not 1 <= beats <= 32 or unit not in (1, 2, 4, 8, 16):
            raise SamuelError(f"time signature {beats}/{unit} is not supported")
        with self._lock:
            self.transport = replace(self.transport, beats=beats, unit=unit)

    def set_bar(self, bar: int) -> None:
        """Bar ``bar`` starts now."""
        with self._lock:
            self.transport = replace(self.transport, origin_time=time.monotonic(),
                                     origin_bar=int(bar))

    def play(self, job_id: int, loop: bool = False, quantise: str = "bar") -> PlayStart:
        """Play a finished job's audio from the next bar line (or beat, or now)."""
        audio = self._result_audio(job_id)
        player = self._need_player()
        rate = player.device_rate or SAMPLE_RATE
        now_frame = player.position().stream_frame
        at = None if quantise == "now" else self._boundary(now_frame, rate, quantise)
        start = player.play(audio, at_frame=at, loop=loop)
        return PlayStart(job_id, int(start), max(0.0, (start - now_frame) / rate))

    def _boundary(self, now_frame: int, rate: int, quantise: str) -> int:
        from samuel_live.audio.playback import next_boundary_frame

        t = self.transport
        origin = now_frame + round((t.origin_time - time.monotonic()) * rate)
        quarter_notes = (t.beats if quantise == "bar" else 1) * 4.0 / t.unit
        return next_boundary_frame(now_frame, t.bpm, quarter_notes, origin, samplerate=rate)

    def stop_playback(self) -> None:
        if self._player is not None:
            self._player.stop()

    def _result_audio(self, job_id: int) -> np.ndarray:
        with self._lock:
            audio = self._results.get(job_id)
        if audio is not None:
            return audio
        job = self._jobs.get(job_id)
        if job is None or job.result is None:
            raise SamuelError(f"job {job_id} has no finished result to play")
        from samuel_live.audio.io import read_audio

        return read_audio(job.result.path)

    def _need_player(self) -> Any:
        if self._player is None:
            from samuel_live.audio.playback import PlaybackConfig, Player

            c = self.config.capture
            device = None if c.device.startswith(("file:", "memory:")) else (c.device or None)
            player = Player(PlaybackConfig(device=device, hostapi=c.hostapi or None))
            player.start()
            self._player = player
        return self._player


def _build_post(section: PostSection) -> Any:
    from samuel_live.post.chain import build_chain

    return build_chain(section)


def _load_accompanist(path: str | None, device: str, codec_path: str | None) -> Any:
    from samuel_live.pipeline import Accompanist

    return Accompanist.load(path, device=device, codec_path=codec_path)


def _warm_up(model: Any) -> None:
    """One tiny generation so the first real job does not pay for lazy initialisation."""
    silence = np.zeros((2, int(WARMUP_SECONDS * SAMPLE_RATE)), dtype=np.float32)
    model.accompany(silence, GenerateSettings(steps=1, seed=0))


def _wall_time_of(capture: Any) -> float | None:
    """Wall-clock time at which the newest captured frame arrived (None if none has)."""
    stamp = capture.last_capture_time()
    if not stamp.monotonic:
        return None
    return time.time() - (time.monotonic() - stamp.monotonic)


def _audio_seconds(job: Job) -> float:
    if job.vocal is not None:
        return job.vocal.shape[-1] / SAMPLE_RATE
    return WINDOW_SAMPLES / SAMPLE_RATE


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
    source = job.request.source
    return {
        "job": job.id,
        "audio": result.path.name,
        "settings": asdict(job.request.settings),
        "seed": job.request.settings.seed,
        "post": job.request.post,
        "model": {"name": info.get("name"), "hash": info.get("hash"),
                  "codec": info.get("codec"), "device": info.get("device")},
        "source": source.describe(),
        "timings": {
            "captured_at": source.captured_at,
            "submitted_at": job.submitted_wall,
            "queued_s": round(result.queued_s, 4),
            "model_s": round(result.model_s, 4),
            "post_s": round(result.post_s, 4),
            "total_s": round(result.total_s, 4),
        },
        "duration_s": result.duration_s,
        "sample_rate": SAMPLE_RATE,
    }
