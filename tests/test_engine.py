"""The engine with a tiny real model, real capture source, real files: jobs, cancel, failures,
model swap, transport and path security."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from samuel_live import SAMPLE_RATE
from samuel_live.audio.io import read_audio, write_audio_atomic
from samuel_live.audio.sources import MemorySource, register_memory_source
from samuel_live.config import Config, load_config
from samuel_live.engine.engine import Engine, EngineEvent
from samuel_live.engine.failures import describe_failure as _describe_failure
from samuel_live.engine.jobs import JobStatus
from samuel_live.engine.paths import input_path, output_path
from samuel_live.errors import AudioInputError, SamuelError
from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, save_checkpoint
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import Accompanist

TINY = UNetConfig(
    widths=(16, 32), heads=2, head_dim=8, time_dim=32, time_mlp_mult=2, cond_dim=16, groups=4,
    attn_levels=(1,), cross_attn_levels=(1,),
)
LONG_STEPS = 800  # enough steps that a job is still running when the test reacts


def sine(seconds: float = 0.5, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.stack([0.3 * np.sin(2 * np.pi * hz * t)] * 2).astype(np.float32)


def make_config(tmp_path: Path, *overrides: str) -> Config:
    return load_config(None, [f"render.folder={tmp_path / 'renders'}", "post.preset=clean",
                              *overrides])


class Recorder:
    """Collects engine events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: EngineEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, kind: str, job: int | None = None, timeout: float = 60.0) -> EngineEvent:
        def found() -> EngineEvent | None:
            for e in self.events:
                if e.kind == kind and (job is None or (e.job is not None and e.job.id == job)):
                    return e
            return None

        with self._cond:
            assert self._cond.wait_for(found, timeout), f"no {kind} event for job {job}"
            return found()  # type: ignore[return-value]

    def kinds(self, job: int) -> list[str]:
        return [e.kind for e in self.events if e.job is not None and e.job.id == job]


def unstarted_engine(tmp_path: Path) -> tuple[Engine, Recorder]:
    """A tiny real engine on an in-memory capture, with a recorder subscribed, not started."""
    eng = Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                 capture=MemorySource(sine()), warm_up=False)
    rec = Recorder()
    eng.subscribe(rec)
    return eng, rec


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, Recorder]]:
    source = MemorySource(sine())
    eng = Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY), capture=source,
                 warm_up=False)
    recorder = Recorder()
    eng.subscribe(recorder)
    eng.start()
    eng.arm()
    yield eng, recorder
    eng.close()


def test_job_writes_audio_and_sidecar(engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    job = eng.submit("capture", "takes/take1", seed=7, steps=3, cfg=2.0, sampler="ddim")
    done = eng.wait(job.id, timeout=60)
    assert done.status is JobStatus.DONE, done.error
    assert rec.kinds(job.id) == ["queued", "started", "progress", "progress", "progress", "done"]
    result = done.result
    assert result is not None and result.path == eng.folder / "takes" / "take1.wav"
    audio = read_audio(result.path)
    assert audio.shape == sine().shape
    side = json.loads(result.sidecar.read_text())
    assert side["settings"] == {"sampler": "ddim", "steps": 3, "cfg": 2.0, "seed": 7, "key": "auto"}
    assert side["model"]["hash"] == "random-0"
    assert side["source"] == f"capture[0:{sine().shape[1]}]"
    timings = side["timings"]
    assert side["capture"]["captured_at"] <= timings["submitted_at"]
    assert 0 < timings["model_s"] <= timings["total_s"]
    assert timings["queued_s"] >= 0 and timings["post_s"] >= 0
    assert not list(eng.folder.rglob("*.tmp"))


def test_warm_start_then_serve(tmp_path: Path) -> None:
    with Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                capture=MemorySource(sine())) as eng:
        assert eng.status().state == "ready"
        eng.arm()
        assert eng.wait(eng.submit("capture", "w", steps=1).id, 60).status is JobStatus.DONE


def test_random_seed_is_recorded(engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    job = eng.wait(eng.submit("capture", "a", steps=1).id, timeout=60)
    assert job.request.settings.seed >= 0
    side = json.loads(job.result.sidecar.read_text())  # type: ignore[union-attr]
    assert side["settings"]["seed"] == job.request.settings.seed


def test_cancel_running_job(engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    job = eng.submit("capture", "long", steps=LONG_STEPS)
    rec.wait("progress", job.id)
    assert eng.cancel(job.id)
    rec.wait("cancelled", job.id)
    assert job.status is JobStatus.CANCELLED
    assert 0 < job.step < job.total
    assert not (eng.folder / "long.wav").exists()
    assert not eng.cancel(job.id)  # already finished


def test_cancel_queued_job_and_priority(engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    blocker = eng.submit("capture", "blocker", steps=LONG_STEPS)
    rec.wait("progress", blocker.id)
    low = eng.submit("capture", "low", steps=1, priority=1)
    high = eng.submit("capture", "high", steps=1, priority=9)
    doomed = eng.submit("capture", "doomed", steps=1)
    assert (low.position, high.position) == (0, 0)
    assert eng.cancel(doomed.id)
    deadline = time.monotonic() + 30
    while len(eng.worker.queue) < 2:  # both copied and queued before the worker is free
        assert time.monotonic() < deadline, "low and high never reached the queue"
        time.sleep(0.01)
    eng.cancel(blocker.id)
    eng.wait(low.id, timeout=60)
    rec.wait("cancelled", doomed.id)
    assert "started" not in rec.kinds(doomed.id)
    started = [e.job.id for e in rec.events if e.kind == "started" and e.job]
    assert started.index(high.id) < started.index(low.id)


def test_cancelling_a_queued_job_frees_its_copy_at_once(engine: tuple[Engine, Recorder]) -> None:
    """Behind a long generation, a cancelled job must not keep its capture copy (~17 MB for a
    full take) or wait for its "cancelled" until the worker is free. Breaks: cancel only
    flagging the job (it stays queued until the worker next looks)."""
    eng, rec = engine
    blocker = eng.submit("capture", "blocker", steps=LONG_STEPS)
    rec.wait("progress", blocker.id)
    queued = eng.submit("capture", "queued", steps=1)
    deadline = time.monotonic() + 30
    while queued.vocal is None:  # the snapshot thread has copied it
        assert time.monotonic() < deadline, "the capture copy never arrived"
        time.sleep(0.01)
    assert eng.cancel(queued.id)
    assert queued.status is JobStatus.CANCELLED and queued.vocal is None
    assert rec.wait("cancelled", queued.id, timeout=5).message == "cancelled before it started"
    assert blocker.status is JobStatus.RUNNING  # all of this while the long job still runs
    assert len(eng.worker.queue) == 0
    eng.cancel(blocker.id)
    rec.wait("cancelled", blocker.id)
    assert rec.kinds(queued.id).count("cancelled") == 1


def test_failed_job_is_reported_and_next_job_runs(engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    bad = eng.folder / "not-audio.wav"
    bad.write_text("this is not a wav file")
    job = eng.submit(f"file:{bad}", "from-bad", steps=1)
    event = rec.wait("failed", job.id)
    assert "cannot read" in event.message and job.status is JobStatus.FAILED
    good = eng.wait(eng.submit("capture", "after", steps=1).id, timeout=60)
    assert good.status is JobStatus.DONE


class OutOfMemoryOnce(Accompanist):
    """The real tiny model, except its first generation runs out of GPU memory."""

    failed = False

    def accompany_latent(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return super().accompany_latent(*args, **kwargs)


def test_out_of_memory_is_reported_and_engine_keeps_serving(tmp_path: Path) -> None:
    model = Accompanist.random(TINY)
    model.__class__ = OutOfMemoryOnce
    eng = Engine(make_config(tmp_path), accompanist=model, capture=MemorySource(sine()),
                 warm_up=False)
    rec = Recorder()
    eng.subscribe(rec)
    with eng:
        eng.arm()
        first = eng.submit("capture", "x", steps=1)
        assert "out of GPU memory" in rec.wait("failed", first.id).message
        assert eng.wait(eng.submit("capture", "y", steps=1).id, 60).status is JobStatus.DONE
    assert "out of GPU memory" in _describe_failure(torch.cuda.OutOfMemoryError("x"))


def test_missing_model_fails_jobs_but_engine_serves(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, f"model.path={tmp_path / 'nope.safetensors'}")
    rec = Recorder()
    with Engine(cfg, capture=MemorySource(sine())) as eng:
        eng.subscribe(rec)
        assert eng.status().state == "no-model"
        eng.arm()
        job = eng.submit("capture", "x", steps=1)
        assert "no model loaded" in rec.wait("failed", job.id).message
        with pytest.raises(SamuelError, match="no model loaded"):
            eng.model_info()


def test_load_model_swaps_between_jobs(engine: tuple[Engine, Recorder], tmp_path: Path) -> None:
    eng, rec = engine
    other = Accompanist.random(TINY, seed=3)
    meta = CheckpointMeta(model=TINY.to_dict(), codec="harmonic", stats=LatentStats.identity())
    weights = save_checkpoint(eng.folder / "models" / "other", other.model.state_dict(), meta)
    running = eng.submit("capture", "during-load", steps=LONG_STEPS)
    rec.wait("progress", running.id)
    eng.load_model(str(weights))
    loaded = rec.wait("model_loaded")
    assert loaded.data["name"] == "other"
    eng.cancel(running.id)
    job = eng.wait(eng.submit("capture", "after-load", steps=1).id, timeout=60)
    side = json.loads(job.result.sidecar.read_text())  # type: ignore[union-attr]
    assert side["model"]["name"] == "other" and side["model"]["hash"] == loaded.data["hash"]
    swap = rec.events.index(loaded)
    assert all(e.kind != "progress" or e.job is not running
               for e in rec.events[swap:]), "model swapped during a job"


def test_load_model_failure_is_an_event(engine: tuple[Engine, Recorder], tmp_path: Path) -> None:
    eng, rec = engine
    junk = eng.folder / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    junk.with_suffix(".json").write_text("{}")
    eng.load_model(str(junk))
    assert "not loaded" in rec.wait("model_failed").message
    assert eng.model_info()["name"] == "random-0"


def test_region_source(engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    eng.capture.clear()  # type: ignore[union-attr]
    eng.mark("start")
    eng.capture.rewind()  # type: ignore[union-attr]
    eng.arm()
    eng.mark("end")
    job = eng.wait(eng.submit("region", "region", steps=1).id, timeout=60)
    assert job.status is JobStatus.DONE, job.error
    assert read_audio(job.result.path).shape[1] == sine().shape[1]  # type: ignore[union-attr]


def test_nothing_captured_is_refused_at_once(tmp_path: Path) -> None:
    with Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                capture=MemorySource(sine()), warm_up=False) as eng:
        with pytest.raises(SamuelError, match="nothing captured"):
            eng.submit("capture", "x")


def test_transport_bar_grid(engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    eng.set_signature(3, 4)
    eng.set_tempo(90)
    eng.set_bar(5)
    assert eng.transport.bar_at() == 5
    assert eng.transport.bar_seconds == pytest.approx(2.0)
    assert eng.transport.bar_at(eng.transport.origin_time + 4.1) == 7
    now = time.monotonic()
    frame = eng.transport.boundary_frame(now_frame=1000, rate=SAMPLE_RATE, quantise="bar",
                                         now=now)
    origin = 1000 + round((eng.transport.origin_time - now) * SAMPLE_RATE)
    assert (frame - origin) % (2 * SAMPLE_RATE) in (0, 1, 2 * SAMPLE_RATE - 1)
    assert 1000 <= frame < 1000 + 2 * SAMPLE_RATE
    with pytest.raises(SamuelError):
        eng.set_tempo(1000)
    with pytest.raises(SamuelError):
        eng.set_signature(4, 3)


def clicks(seconds: float = 6.0, bpm: float = 120.0) -> np.ndarray:
    """A click on every beat: a take with a clear tempo."""
    x = np.zeros((2, int(seconds * SAMPLE_RATE)), dtype=np.float32)
    beat = 60.0 / bpm * SAMPLE_RATE
    for k in range(int(x.shape[1] / beat)):
        i = int(round(k * beat))
        x[:, i : i + 400] = 0.8 * np.hanning(400)
    return x


def test_ack_goes_out_before_the_capture_is_copied(engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    seen: list[object] = []
    eng.subscribe(lambda e: seen.append(e.job.vocal) if e.kind == "queued" else None)
    job = eng.wait(eng.submit("capture", "order", steps=1).id, timeout=60)
    assert seen == [None] and job.status is JobStatus.DONE, job.error
    assert job.request.source.frames == sine().shape[1]


def test_a_failed_copy_fails_the_acknowledged_job(tmp_path: Path) -> None:
    eng, rec = unstarted_engine(tmp_path)
    eng.arm()
    job = eng.submit("capture", "gone", steps=1)  # acked; the copy waits for start()
    eng.clear_capture()  # the region is no longer readable when the copy runs
    with eng:
        event = rec.wait("failed", job.id)
    assert rec.kinds(job.id) == ["queued", "failed"]
    assert "capture copy failed" in event.message and "cleared" in event.message


def test_engine_capture_has_headroom_and_takes_one_window(tmp_path: Path) -> None:
    register_memory_source("long-take", sine(50.0))
    cfg = make_config(tmp_path, "capture.device=memory:long-take")
    with Engine(cfg, accompanist=Accompanist.random(TINY), warm_up=False) as eng:
        ring = eng.capture.ring  # type: ignore[union-attr]
        assert ring.capacity == round(60.0 * SAMPLE_RATE)
        eng.arm()
        job = eng.submit("capture", "window", steps=1)
        eng.cancel(job.id)
        source = job.request.source
        assert source.frames == round(47.55 * SAMPLE_RATE)
        assert source.end_frame == ring.written == sine(50.0).shape[1]


def test_worker_uses_the_configured_torch_threads(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    eng = Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                 capture=MemorySource(sine()), warm_up=False, threads=1)
    eng.subscribe(lambda e: seen.append(torch.get_num_threads()) if e.kind == "progress"
                  else None)
    try:
        with eng:
            eng.arm()
            eng.wait(eng.submit("capture", "t", steps=2).id, timeout=60)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_loop_on_the_takes_estimated_tempo(tmp_path: Path) -> None:
    with Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                capture=MemorySource(clicks()), warm_up=False) as eng:
        eng.arm()
        job = eng.wait(eng.submit("capture", "est-loop", steps=1, loop_bars=2).id, 60)
        assert job.status is JobStatus.DONE, job.error
        side = json.loads(job.result.sidecar.read_text())  # type: ignore[union-attr]
    tempo = side["musical_time"]
    assert tempo["source"] == "estimate" and tempo["bpm"] == pytest.approx(120, rel=0.02)
    expected = round(2 * 4 * 60 / tempo["bpm"] * SAMPLE_RATE)
    assert side["loop_bars"] == 2 and side["samples"] == expected
    assert read_audio(job.result.path).shape[1] == expected  # type: ignore[union-attr]


def test_loop_without_a_tempo_fails_with_the_fix(engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    job = eng.submit("capture", "no-tempo", steps=1, loop_bars=2)  # 0.5 s sine: no beat
    assert "/samuel/transport/tempo" in rec.wait("failed", job.id).message
    eng.set_tempo(60)
    with pytest.raises(SamuelError, match="longest loop"):
        eng.submit("capture", "too-long", steps=1, loop_bars=16)  # 64 s


# --- path security -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/tmp/evil", "~/evil", "..",
                                  "a\\..\\b", ".hidden", "", "x\x00y", "C:evil"])
def test_output_names_that_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SamuelError):
        output_path(tmp_path, name)


def test_output_name_inside_is_accepted(tmp_path: Path) -> None:
    assert output_path(tmp_path, "song/take 1") == tmp_path.resolve() / "song" / "take 1.wav"
    assert output_path(tmp_path, "x.flac", ".wav").suffix == ".flac"


def test_symlink_escape_is_refused(engine: tuple[Engine, Recorder], tmp_path: Path) -> None:
    eng, _ = engine
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, eng.folder / "link")
    os.symlink(outside / "target.wav", eng.folder / "file-link.wav")
    for name in ("link/x", "file-link.wav"):
        with pytest.raises(SamuelError, match="outside the render folder"):
            eng.submit("capture", name, steps=1)
    assert not list(outside.iterdir())


def test_engine_refuses_dotdot_output(engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    with pytest.raises(SamuelError, match=r"\.\."):
        eng.submit("capture", "../escape", steps=1)


def test_file_sources_only_from_allowed_folders(tmp_path: Path) -> None:
    renders, allowed, other = tmp_path / "r", tmp_path / "ok", tmp_path / "other"
    for d in (renders, allowed, other):
        d.mkdir()
    for d in (allowed, other):
        write_audio_atomic(d / "v.wav", sine(0.1))
    assert input_path(str(allowed / "v.wav"), renders, [allowed]) == (allowed / "v.wav").resolve()
    with pytest.raises(SamuelError, match="allowed_input_dirs"):
        input_path(str(other / "v.wav"), renders, [allowed])
    os.symlink(other / "v.wav", allowed / "sneaky.wav")
    with pytest.raises(SamuelError, match="outside the allowed"):
        input_path(str(allowed / "sneaky.wav"), renders, [allowed])
    with pytest.raises(SamuelError, match="outside the allowed"):
        input_path("../other/v.wav", renders, [allowed])
    with pytest.raises(SamuelError, match="does not exist"):
        input_path(str(allowed / "missing.wav"), renders, [allowed])


def test_file_source_job(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, f"render.allowed_input_dirs={tmp_path / 'in'}")
    (tmp_path / "in").mkdir()
    write_audio_atomic(tmp_path / "in" / "vocal.wav", sine(0.3))
    with Engine(cfg, accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                warm_up=False) as eng:
        job = eng.wait(eng.submit(f"file:{tmp_path / 'in' / 'vocal.wav'}", "f", steps=1).id, 60)
        assert job.status is JobStatus.DONE, job.error
        assert read_audio(job.result.path).shape[1] == sine(0.3).shape[1]  # type: ignore[union-attr]


def test_close_answers_every_queued_job(tmp_path: Path) -> None:
    """Regression: jobs still queued at shutdown were never finished (no reply, wait() hung)."""
    eng, rec = unstarted_engine(tmp_path)
    eng.start()
    eng.arm()
    running = eng.submit("capture", "running", steps=LONG_STEPS)
    rec.wait("progress", running.id)
    queued = [eng.submit("capture", f"q{i}", steps=1) for i in range(3)]
    eng.close()
    for job in queued:
        assert job.status is JobStatus.CANCELLED and job.error == "engine shut down"


def test_load_model_outside_the_allowed_folders_is_refused(
        engine: tuple[Engine, Recorder], tmp_path: Path) -> None:
    eng, _ = engine
    outside = tmp_path / "elsewhere" / "m.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    with pytest.raises(SamuelError, match="outside the allowed folders"):
        eng.load_model(str(outside))
    with pytest.raises(SamuelError, match="outside the allowed folders"):
        eng.load_model("/etc/passwd")


def test_autoplay_without_an_output_device_is_reported(tmp_path: Path) -> None:
    eng = Engine(make_config(tmp_path, "capture.hostapi=NoSuchHostApi"),
                 accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                 warm_up=False)
    rec = Recorder()
    eng.subscribe(rec)
    with eng:
        eng.arm()
        job = eng.submit("capture", "autoplay", steps=1, autoplay=True)
        failed = rec.wait("play_failed", job.id)
        assert failed.message.startswith("autoplay:") and "NoSuchHostApi" in failed.message
        assert eng.wait(job.id, 60).status is JobStatus.DONE  # the result itself is kept


def test_a_queued_job_keeps_the_post_chain_it_was_queued_with(
        engine: tuple[Engine, Recorder]) -> None:
    eng, rec = engine
    blocker = eng.submit("capture", "blocker", steps=LONG_STEPS)
    rec.wait("started", blocker.id)
    queued = eng.submit("capture", "queued", steps=1)
    eng.set_post_chain(({"type": "gain", "gain_db": -6.0},))
    later = eng.submit("capture", "later", steps=1)
    eng.cancel(blocker.id)
    chains = []
    for job in (queued, later):
        done = eng.wait(job.id, 60)
        assert done.status is JobStatus.DONE, done.error
        chains.append(json.loads(done.result.sidecar.read_text())["post"])  # type: ignore[union-attr]
    assert chains[0] == [] and chains[1][0]["type"] == "gain"


def test_a_one_sample_job_does_not_blow_up_the_next_estimate(
        engine: tuple[Engine, Recorder]) -> None:
    eng, _ = engine
    tiny = eng.folder / "one.wav"
    write_audio_atomic(tiny, np.zeros((2, 1), np.float32))
    assert eng.wait(eng.submit(f"file:{tiny}", "one", steps=1).id, 60).status is JobStatus.DONE
    eng.capture.stop()  # type: ignore[union-attr]
    nxt = eng.submit("capture", "next", steps=1)
    assert 0 < nxt.eta_s < 60


def test_engine_writes_the_configured_sample_rate(tmp_path: Path) -> None:
    eng = Engine(make_config(tmp_path, "render.sample_rate=48000"),
                 accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                 warm_up=False)
    with eng:
        eng.arm()
        job = eng.wait(eng.submit("capture", "at48k", steps=1).id, 60)
    assert job.result is not None, job.error
    import soundfile as sf

    info = sf.info(job.result.path)
    assert info.samplerate == 48000 and info.frames == round(sine().shape[1] * 48000 / 44100)


def test_instrument_requests_and_their_soundfonts(tmp_path: Path) -> None:
    from samuel_live.config import SYSTEM_SOUNDFONT_DIRS
    from samuel_live.render.instrument import find_soundfont

    soundfont = find_soundfont(SYSTEM_SOUNDFONT_DIRS)
    if soundfont is None:
        pytest.skip("no General MIDI SoundFont installed (CI installs fluid-soundfont-gm)")
    pytest.importorskip("fluidsynth", reason="needs pyfluidsynth (the instruments extra)")
    outside = tmp_path / "mine.sf2"
    outside.write_bytes(soundfont.read_bytes()[:4096])
    with Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                capture=MemorySource(sine(2.0)), warm_up=False) as eng:
        eng.arm()
        errors = []
        for path in (outside, tmp_path / "missing.sf2", Path("/etc/passwd")):
            with pytest.raises(SamuelError) as err:
                eng.submit("capture", "x", steps=1, instrument="piano", soundfont=str(path))
            errors.append(str(err.value).replace(str(path), "PATH"))
        assert errors[0] == errors[1] == errors[2]  # outside, missing, forbidden: one answer
        job = eng.wait(eng.submit("capture", "organ", steps=1, instrument="organ",
                                  soundfont=str(soundfont)).id, 60)
    assert job.result is not None, job.error
    side = json.loads(job.result.sidecar.read_text())
    assert side["instrument"]["name"] == "Drawbar Organ" and side["midi"] == "organ.mid"


_SUBMIT_IMPORTS = """
import sys, numpy as np
from samuel_live.audio.sources import MemorySource
from samuel_live.config import load_config
from samuel_live.engine.engine import Engine
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import Accompanist
tiny = UNetConfig(widths=(8, 16), heads=2, head_dim=4, time_dim=16, cond_dim=8, groups=4,
                  attn_levels=(1,), cross_attn_levels=(0, 1))
config = load_config(None, [f"render.folder={sys.argv[1]}", "post.preset=clean"])
engine = Engine(config, accompanist=Accompanist.random(tiny),
                capture=MemorySource(np.zeros((2, 44100), np.float32)), warm_up=False).start()
engine.arm()
before = set(sys.modules)
for post in (None, "warm", "none"):
    engine.cancel(engine.submit("capture", steps=2, post=post, instrument="tones").id)
print(" ".join(sorted(set(sys.modules) - before)))
engine.close()
"""


def test_submit_imports_nothing(tmp_path: Path) -> None:
    """``submit`` runs on the network thread before the ack: a module imported there on first
    use (the post-chain checks pull in pedalboard, ~150 ms) delays that ack. In a fresh
    interpreter, an engine once started must import nothing more to accept requests."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SUBMIT_IMPORTS, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_engine_keeps_numpy_off_huge_pages_while_it_runs(tmp_path: Path) -> None:
    """Fresh huge pages for each 17 MB capture copy stalled OSC acks ~5 ms (THP direct
    compaction); the engine turns NumPy's MADV_HUGEPAGE off while it runs and restores it.
    NumPy's BLAS runs one thread while the engine runs (a second one spins against torch's
    threads after every codec product) and gets its thread count back at close."""
    if not hasattr(pytest.importorskip("numpy._core.multiarray"), "_set_madvise_hugepage"):
        pytest.skip("this NumPy has no huge-page switch")
    from threadpoolctl import threadpool_limits

    from samuel_live.device import NUMPY_BLAS_THREADS
    from samuel_live.engine.process import huge_pages_for_arrays

    before = huge_pages_for_arrays(True)
    try:
        with threadpool_limits(2, user_api="blas"):
            eng, _ = unstarted_engine(tmp_path)
            eng.start()
            try:
                assert huge_pages_for_arrays(False) is False  # off while the engine runs
                assert _blas_threads() == {NUMPY_BLAS_THREADS}
            finally:
                eng.close()
            assert huge_pages_for_arrays(True) is True  # close() put back what it found
            assert _blas_threads() == {2}
    finally:
        huge_pages_for_arrays(before)


def test_process_settings_hold_until_the_last_engine_lets_go() -> None:
    """Two engines in one process: the first to close must not give NumPy its BLAS threads
    back while the second still generates; a release counts once."""
    from threadpoolctl import threadpool_limits

    from samuel_live.device import NUMPY_BLAS_THREADS
    from samuel_live.engine.process import engine_process_settings

    with threadpool_limits(2, user_api="blas"):
        first, second = engine_process_settings(), engine_process_settings()
        first()
        first()
        assert _blas_threads() == {NUMPY_BLAS_THREADS}
        second()
        assert _blas_threads() == {2}


def test_a_job_is_finished_once(engine: tuple[Engine, Recorder]) -> None:
    """Two threads may settle the same job (a cancel from the network thread while
    ``Engine.close`` answers the queue): the first answer stands, and only one is sent."""
    eng, rec = engine
    blocker = eng.submit("capture", "blocker", steps=LONG_STEPS)
    rec.wait("progress", blocker.id)
    queued = eng.submit("capture", "queued", steps=1)
    eng.worker.finish(queued, JobStatus.CANCELLED, "cancelled before it started")
    eng.worker.finish(queued, JobStatus.CANCELLED, "engine shut down")
    eng.worker.finish(queued, JobStatus.FAILED, "late failure")
    assert rec.kinds(queued.id).count("cancelled") == 1 and "failed" not in rec.kinds(queued.id)
    assert (queued.status, queued.error) == (JobStatus.CANCELLED, "cancelled before it started")
    eng.cancel(blocker.id)


class _BrokenCapture:
    def start(self) -> None:
        raise AudioInputError("no such input device")


def test_a_failed_start_gives_numpy_its_huge_page_setting_back(tmp_path: Path) -> None:
    if not hasattr(pytest.importorskip("numpy._core.multiarray"), "_set_madvise_hugepage"):
        pytest.skip("this NumPy has no huge-page switch")
    from samuel_live.engine.process import huge_pages_for_arrays

    before, blas = huge_pages_for_arrays(True), _blas_threads()
    try:
        eng = Engine(make_config(tmp_path), accompanist=Accompanist.random(TINY),
                     capture=_BrokenCapture(), warm_up=False)
        for _ in range(2):  # a retried start must not take the engine's own setting for NumPy's
            with pytest.raises(AudioInputError, match="no such input"):
                eng.start()
            assert huge_pages_for_arrays(True) is True
            assert _blas_threads() == blas
    finally:
        huge_pages_for_arrays(before)
