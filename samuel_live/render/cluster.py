"""Batch renders on a Ray cluster: the stems of ``render`` (batch.py), made by Ray actors.

Each actor loads the model once and renders whole stems through ``batch.render_stem``, the
local batch's own per-stem path, writing each stem atomically into the output folder (which
every node must see at the same path: shared storage). The driver keeps the manifest through
``batch.drive``, so resume works exactly as locally. A worker that dies is restarted by Ray and
its stem retried; a stem is only ever seen complete or not at all.

Results equal the local render bit for bit when the workers compute as the local process does:
the same device and, on CPU, the same number of torch threads (floating-point sums are split by
thread; each actor uses ``threads``, 1 by default).
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from samuel_live.errors import ClusterError
from samuel_live.render.batch import StemJob, StemRecord, _record, drive, render_stem
from samuel_live.render.output import midi_path
from samuel_live.render.take import Progress, TakeSpec
from samuel_live.settings import DEFAULT_PRECISION, GenerateSettings

INSTALL_HINT = 'pip install -e ".[cluster]"'
RETRIES = 3  # restarts of a dead actor, and tries of the stem it was rendering


def import_ray() -> ModuleType:
    """The ``ray`` module, or a ClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT} "
                           "(every node of the cluster needs it and samuel-live)") from None
    return ray


@dataclass(frozen=True)
class ModelSource:
    """How every worker loads the model (paths as seen on the workers' nodes)."""

    path: str | None = None  # None: the starter model
    device: str = "auto"
    codec_path: str | None = None
    precision: str = DEFAULT_PRECISION

    @classmethod
    def of(cls, model: str | None, device: str, codec_path: str | None,
           precision: str = DEFAULT_PRECISION) -> ModelSource:
        """From the CLI's options: relative paths made absolute (workers start elsewhere)."""

        def full(p: str | None) -> str | None:
            return str(Path(p).expanduser().absolute()) if p else None

        return cls(full(model), device, full(codec_path), precision)


class StemWorker:
    """One Ray actor: a loaded model rendering whole stems."""

    def __init__(self, source: ModelSource, threads: int) -> None:
        import torch

        from samuel_live.device import limit_numpy_blas
        from samuel_live.pipeline import Accompanist

        torch.set_num_threads(threads)
        limit_numpy_blas()
        self.model = Accompanist.load(source.path, source.device, source.codec_path,
                                      source.precision)
        self.cache: dict[Path, Any] = {}

    def info(self) -> dict[str, Any]:
        return self.model.info()

    def pid(self) -> int:
        return os.getpid()

    def render(self, job: StemJob, settings: GenerateSettings, spec: TakeSpec,
               bit_depth: int) -> StemRecord:
        return render_stem(self.model, job, settings, spec, bit_depth=bit_depth,
                           cache=self.cache)


class RayPool:
    """Actors on a Ray cluster (``address``: "auto", "ray://host:port", or None for a local
    one), one per GPU where the cluster has GPUs, else one per ``threads`` CPUs."""

    def __init__(self, address: str | None, source: ModelSource, *, workers: int | None = None,
                 threads: int = 1, retries: int = RETRIES) -> None:
        self.ray, self._owns = connect(address)
        resources = self.ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        per = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": threads}
        n = workers or gpus or max(1, int(resources.get("CPU", 1)) // threads)
        actor = self.ray.remote(StemWorker).options(
            max_restarts=retries, max_task_retries=retries, **per)
        self.actors = [actor.remote(source, threads) for _ in range(n)]
        self.retries = retries
        self._info: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        """The model's info, as the first worker loaded it."""
        if self._info is None:
            self._info = self.ray.get(self.actors[0].info.remote())
        return self._info

    def pids(self) -> list[int]:
        """The workers' process ids (now: a restarted worker has a new one)."""
        return self.ray.get([a.pid.remote() for a in self.actors])

    def render(self, jobs: list[StemJob], settings: GenerateSettings, spec: TakeSpec,
               out: Path, *, bit_depth: int = 24,
               progress: Callable[[int, int, float], None] | None = None,
               on_record: Callable[[StemRecord], None] | None = None) -> list[StemRecord]:
        """``batch.render`` on the cluster: same stems, same manifest, same resume.
        ``on_record`` sees each record as it arrives."""

        def run(todo: list[StemJob], _tick: Progress) -> Iterator[StemRecord]:
            for record in self._stems(todo, settings, spec, bit_depth):
                if on_record is not None:
                    on_record(record)
                yield record

        return drive(self.info(), jobs, settings, spec, out, run, progress=progress)

    def _stems(self, todo: list[StemJob], settings: GenerateSettings, spec: TakeSpec,
               bit_depth: int) -> Iterator[StemRecord]:
        """One stem at a time per worker (long takes don't queue behind each other); a stem
        whose worker died for good goes to another one, ``retries`` times at most."""
        settings_ref, spec_ref = self.ray.put(settings), self.ray.put(spec)

        def submit(actor: Any, i: int) -> Any:
            return actor.render.remote(_absolute(todo[i]), settings_ref, spec_ref, bit_depth)

        for i, record, error in spread(self.ray, self.actors, len(todo), submit, self.retries):
            job = todo[i]
            if error is not None:
                yield _record(job, "failed", 0.0, error)
            else:
                yield replace(record, take=str(job.take), path=str(job.path),
                              midi=str(midi_path(job.path)) if record.midi else "")

    def close(self) -> None:
        """Stop the workers, and the local cluster if this pool started it."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._owns:
            self.ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: str | None) -> tuple[ModuleType, bool]:
    """Ray, connected: to ``address`` ("auto", "ray://host:port"; None or "" starts a local
    cluster), or through the connection this process already has. Also says whether this call
    made the connection (and so should ``ray.shutdown()`` it)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    _connect(ray, address or None)
    return ray, True


def spread(ray: ModuleType, actors: list[Any], count: int, submit: Callable[[Any, int], Any],
           retries: int) -> Iterator[tuple[int, Any, str | None]]:
    """Items ``0..count-1`` handed out one at a time to whichever actor is idle
    (``submit(actor, i)`` gives the task's ref). Yields ``(i, result, None)`` as items finish,
    in finishing order, or ``(i, None, reason)`` for an item whose worker died more than
    ``retries`` times, or that no worker is left to take. Each item is yielded once."""
    queue, tries = deque(range(count)), Counter[int]()
    idle, running = list(actors), {}
    while queue or running:
        while queue and idle:
            actor, i = idle.pop(), queue.popleft()
            running[submit(actor, i)] = (actor, i)
        if not running:  # every worker is gone
            for i in queue:
                yield i, None, "no Ray worker is left to take it"
            return
        (ref,), _ = ray.wait(list(running), num_returns=1)
        actor, i = running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            if not isinstance(exc, ray.exceptions.ActorDiedError):
                idle.append(actor)  # unavailable for a moment (restarting): keep it
            tries[i] += 1
            if tries[i] > retries:
                yield i, None, (f"its Ray worker died {tries[i]} times: "
                                f"{str(exc).splitlines()[0]}")
            else:
                queue.appendleft(i)
            continue
        idle.append(actor)
        yield i, result, None


def _connect(ray: ModuleType, address: str | None) -> None:
    try:
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:
            ray.init(include_dashboard=False, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local cluster"
        raise ClusterError(
            f"cannot reach the Ray cluster at {where}: {exc}; start one with `ray start --head` "
            "and pass --ray auto (on its nodes) or --ray ray://HEAD:10001") from exc


def _absolute(job: StemJob) -> StemJob:
    """Paths a worker can use whatever its working folder (the driver's, on shared storage)."""
    return replace(job, take=job.take.absolute(), path=job.path.absolute())
