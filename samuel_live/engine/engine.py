"""The live engine: capture, model, a job queue and one worker thread, behind quick methods.

Network and audio threads only call the quick methods here (``submit``, ``cancel``, transport,
capture controls); every generation runs on the worker thread (``engine.worker``) through the
one render path. What happens is announced on ``engine.events``; the engine knows nothing about
who listens. Its API speaks Python: ``None`` means "the default", never a wire convention.

A capture request is acknowledged before its audio is copied: ``submit`` fixes the ring region
(the frames sung up to the request), announces "queued", and hands the ~17 MB copy to the
snapshot thread. The ring keeps ``CAPTURE_HEADROOM_S`` more than a take, so the region is still
intact when the copy runs a few milliseconds later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from samuel_live import SAMPLE_RATE
from samuel_live.config import Config, PostSection, render_folder
from samuel_live.engine.controls import LiveControls
from samuel_live.engine.events import EngineEvent, EventBus, EventSink
from samuel_live.engine.failures import describe_failure
from samuel_live.engine.jobs import GenerateRequest, Job, JobStatus, Source
from samuel_live.engine.models import ModelSlot
from samuel_live.engine.paths import input_path, model_path, output_path
from samuel_live.engine.process import engine_process_settings
from samuel_live.engine.transport import Playback, Transport
from samuel_live.engine.worker import Worker, set_torch_threads
from samuel_live.errors import AudioInputError, InvalidArgumentError, ModelError, SamuelError
from samuel_live.pipeline import STARTER_MODEL
from samuel_live.post.spec import check_post, preset_effects
from samuel_live.render.instrument import Instrument, choose_instrument
from samuel_live.render.settings import SettingsRequest, resolve_settings
from samuel_live.render.take import LoopSpec, check_sample_rate

log = logging.getLogger(__name__)

__all__ = ["Engine", "EngineEvent", "EngineStatus"]

MAX_QUEUED = 32  # each queued capture job holds its vocal (up to ~17 MB)
CAPTURE_HEADROOM_S = 12.45  # a 47.55 s take in a 60 s ring: the copy may start late
SNAPSHOT_SLACK_S = 1.0  # a ring without headroom gives takes this much shorter instead
KEEP_FINISHED = 256  # finished jobs remembered for status, play and wait


@dataclass(frozen=True)
class EngineStatus:
    state: str  # ready | loading | no-model | stopped
    queued: int
    running: int  # job id or -1
    model: str
    transport: Transport


class Engine(LiveControls):
    """Owns capture, the model slot, the post chain setting, the jobs and the worker."""

    def __init__(self, config: Config, *, accompanist: Any = None, capture: Any = None,
                 player: Any = None, warm_up: bool = True, threads: int | None = None) -> None:
        """``threads``: torch threads for generation; None = one less than the CPU cores, so
        the network, snapshot and audio threads keep a core."""
        self.config = config
        self.folder = render_folder(config)
        self.capture = capture
        self.threads = threads if threads else default_threads()
        self.events = EventBus()
        m = config.model
        self.models = ModelSlot(self.events, m.device, m.codec_path or None, warm_up, accompanist,
                                m.precision)
        self._playback = Playback(config.capture, player)
        self._post = config.post  # a frozen value; replaced whole, never changed in place
        self._jobs: dict[int, Job] = {}
        self._next_id = 1
        self._lock = threading.RLock()
        self.transport = Transport()
        self._stopping = threading.Event()
        self._restore: Callable[[], None] | None = None  # undoes start()'s process settings
        self._rate = check_sample_rate(config.render.sample_rate or SAMPLE_RATE)
        self.worker = Worker(self.events, self.models, self.threads, self.folder,
                             config.render.bit_depth,
                             self._need_capture, self._playback.keep, self._autoplay)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Engine:
        """Load and warm the model (if none was given), open capture, start the worker."""
        if self.worker.started:
            return self
        set_torch_threads(self.threads)
        if self._restore is None:  # a retried start() must not record its own settings
            self._restore = engine_process_settings()
        restore = self._restore
        try:
            if self.models.current is None:
                self.models.load_now(self.config.model.path or None)
            else:
                self.models.warm()
            if self.capture is None:
                self.capture = self._open_capture()
            elif hasattr(self.capture, "start"):
                self.capture.start()
        except BaseException:  # not started: NumPy gets its settings back
            restore()
            self._restore = None
            raise
        self._stopping.clear()
        self.worker.start()
        return self

    def close(self) -> None:
        """Stop the worker (a running job is cancelled), capture and playback; every queued
        job is answered (cancelled) before this returns."""
        self._stopping.set()
        self.worker.stop()
        if self._restore is not None:
            self._restore()
            self._restore = None
        with self._lock:
            stranded = [j for j in self._jobs.values() if not j.status.finished]
        for job in stranded:  # every request gets an answer, even at shutdown
            self.worker.finish(job, JobStatus.CANCELLED, "engine shut down")
        if self.capture is not None and hasattr(self.capture, "close"):
            self.capture.close()
        self._playback.close()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_capture(self) -> Any:
        from samuel_live.audio.capture import CaptureConfig
        from samuel_live.audio.sources import open_capture

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
        self.events.subscribe(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        self.events.unsubscribe(sink)

    # --- jobs --------------------------------------------------------------------------------
    def submit(
        self,
        source: str = "capture",
        output: str | None = None,
        *,
        seed: int | None = None,
        steps: int | None = None,
        cfg: float | None = None,
        sampler: str | None = None,
        post: str | None = None,
        priority: int = 5,
        origin: Any = None,
        loop_bars: int = 0,
        autoplay: bool = False,
        instrument: str | None = None,
        soundfont: str | None = None,
        key: str | None = None,
    ) -> Job:
        """Validate a request and queue it; raises SamuelError at once if it cannot run.

        ``None`` means the default: a random seed, the configured or the model's sampling,
        the engine's current post chain, an automatic output name. ``post`` "none" means no
        post chain, another value a preset. ``loop_bars`` > 0 makes a seamless loop that many
        bars long; ``autoplay`` plays the result from the next bar line once it is done.
        ``instrument`` (a GM name or program; "none" = off) plays the notes on a SoundFont,
        ``soundfont`` one inside ``render.soundfont_dirs``. ``key`` locks to a scale ("auto",
        "off", "A minor").
        """
        if self._stopping.is_set():
            raise SamuelError("the engine is shutting down")
        if self.worker.backlog() >= MAX_QUEUED:
            raise SamuelError(f"{MAX_QUEUED} jobs are queued already; wait or cancel some")
        settings = resolve_settings(
            SettingsRequest(sampler=sampler, steps=steps, cfg=cfg, seed=seed, key=key),
            config=self.config.generate, checkpoint=self._model_defaults())
        chain = self._post_for(post)
        played = self._instrument_for(instrument, soundfont)
        with self._lock:
            transport = self.transport
        loop = _loop_spec(loop_bars, transport)
        with self._lock:
            job_id, self._next_id = self._next_id, self._next_id + 1
        out_path = self._output(output, job_id)
        where = self._source(source)
        request = GenerateRequest(source=where, output=out_path, settings=settings, post=chain,
                                  loop=loop, musical_time=transport.musical_time(),
                                  sample_rate=self._rate, autoplay=bool(autoplay),
                                  instrument=played)
        job = Job(id=job_id, request=request, priority=priority, origin=origin,
                  total=settings.steps * (2 if loop else 1))
        with self._lock:
            self._jobs[job_id] = job
            self._forget_old_jobs()
        job.position = self.worker.queue.ahead_of(priority)
        job.eta_s = self.worker.eta(job)
        self.events.emit("queued", job)  # the ack: before the copy, and before "started"
        self.worker.put(job)
        return job

    def _model_defaults(self) -> dict[str, Any] | None:
        model = self.models.current
        return model.info().get("sampler_defaults") if model is not None else None

    def _post_for(self, post: str | None) -> PostSection | None:
        """The chain a request asks for, checked now (nothing is loaded on this thread)."""
        if post is None:
            return self._post
        if post == "none":
            return None
        section = replace(self._post, preset=post)
        check_post(section)
        return section

    def _instrument_for(self, name: str | None, soundfont: str | None) -> Instrument | None:
        """The instrument a request asks for (default: ``render.instrument``), its SoundFont
        checked against ``render.soundfont_dirs`` (the configured one is trusted)."""
        r = self.config.render
        name = r.instrument if name is None else name
        if not name or name == "none":
            if soundfont:
                raise InvalidArgumentError("a soundfont needs an instrument")
            return None
        dirs = r.soundfont_dirs
        if soundfont:
            return choose_instrument(name, soundfont, dirs,
                                     check=lambda text: input_path(text, self.folder, dirs))
        return choose_instrument(name, r.soundfont or None, dirs)

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
                "nothing captured yet; send /samuel/capture/arm and sing first")
        return Source(text, None, start, end, _wall_time_of(stamp.monotonic),
                      stamp.monotonic or None, stamp.adc_time or None)

    def _take_frames(self, capture: Any) -> int:
        """How many of the newest frames a capture take holds: the configured seconds, less
        ``SNAPSHOT_SLACK_S`` if the ring has no room for the copy to start late."""
        want = round(self.config.capture.seconds * SAMPLE_RATE)
        room = capture.ring.capacity - round(SNAPSHOT_SLACK_S * SAMPLE_RATE)
        return max(1, min(want, room))

    def _output(self, name: str | None, job_id: int) -> Path:
        suffix = "." + self.config.render.format.lstrip(".")
        if not name:
            name = time.strftime(f"samuel-%Y%m%d-%H%M%S-{job_id:04d}")
        return output_path(self.folder, name, suffix)

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if j.status.finished]
        for j in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[j.id]

    def cancel(self, job_id: int) -> bool:
        """Ask a queued or running job to stop; False if it is unknown or already finished."""
        job = self._jobs.get(job_id)
        if job is None or job.status.finished:
            return False
        job.cancel_event.set()
        self.worker.drop_cancelled()  # a queued job answers and frees its copy now
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
        model = self.models.current
        if self.models.loading:
            state = "loading"
        elif model is None:
            state = "no-model"
        else:
            state = "ready" if self.worker.started else "stopped"
        running = self.worker.running
        name = model.info().get("name", "") if model is not None else ""
        return EngineStatus(state, len(self.worker.queue), running.id if running else -1, name,
                            replace(self.transport))

    def _autoplay(self, job: Job) -> None:
        """Play a finished result from the next bar line; a failure (no output device, say)
        is reported as ``play_failed``, the job stays done."""
        try:
            start = self.play(job.id, loop=job.request.loop is not None, quantise="bar")
        except Exception as exc:  # no output device must not undo a finished job
            message = f"autoplay: {describe_failure(exc)}"
            log.error("job %d: %s", job.id, message)
            self.events.emit("play_failed", job, message)
            return
        self.events.emit("playing", job, data={"frame": start.frame, "in_s": start.in_s})

    # --- model -------------------------------------------------------------------------------
    def model_info(self) -> dict[str, Any]:
        model = self.models.current
        if model is None:
            raise ModelError(f"no model loaded: {self.models.error}")
        return model.info()

    def load_model(self, path: str) -> None:
        """Load a model in the background; it replaces the current one between jobs."""
        configured = Path(self.config.model.path).expanduser().parent if self.config.model.path \
            else STARTER_MODEL.parent
        path = str(model_path(path, [STARTER_MODEL.parent, configured, self.folder,
                                     *self.config.render.allowed_input_dirs]))
        self.models.load_in_background(path, swap_now=not self.worker.started)

    # --- post chain --------------------------------------------------------------------------
    def post_chain(self) -> list[dict[str, Any]]:
        return [dict(e) for e in preset_effects(self._post)]

    def set_post_chain(self, effects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        """The chain for jobs queued from now on (jobs already queued keep theirs); checked
        here, loaded only on the worker. Returns it with defaults filled in."""
        section = replace(self._post, preset="custom", chain=tuple(effects))
        checked = check_post(section)
        self._post = section
        return [dict(e) for e in checked]


def default_threads() -> int:
    """One torch thread less than the CPU cores this process may use (at least one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 2) - 1)


def _loop_spec(bars: int, transport: Transport) -> LoopSpec | None:
    """The loop a request asks for, with the DAW's tempo and meter as they are now."""
    if bars <= 0:
        return None
    return LoopSpec(bars, transport.musical_time(),
                    transport.beats if transport.meter_set else None,
                    transport.unit if transport.meter_set else 4)


def _wall_time_of(monotonic: float) -> float | None:
    """Wall-clock time of a ``time.monotonic()`` stamp (None for 0: nothing captured)."""
    if not monotonic:
        return None
    return time.time() - (time.monotonic() - monotonic)
