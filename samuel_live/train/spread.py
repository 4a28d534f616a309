"""``prepare``'s encoding spread over local processes (``--processes N``) or the actors of a
Ray cluster (``--ray [ADDRESS]``): each worker loads the codec once and encodes whole sources;
results come back in source order, so the shards are those one process writes.

The processes are forked, so every source (with its loader) is already in each of them; only
an index goes out and tensors come back. Ray actors get the sources once, through Ray's object
store, then likewise only indices; they open the source files themselves, so the files must be
on storage every node sees at the same (absolute) path.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from samuel_live.errors import ClusterError, InvalidArgumentError, SamuelError

if TYPE_CHECKING:
    from samuel_live.codec.base import Codec
    from samuel_live.train.prepare import PrepareConfig, Source, Windows

Encode = Callable[["Source", "Codec | None", "PrepareConfig"], "Windows"]
Encoded = Iterator["Windows | Exception"]
FAILURES = (SamuelError, OSError, ValueError, RuntimeError)  # a bad source, not a bad run
RETRIES = 3  # restarts of a dead Ray actor, and tries of the source it was encoding
_job: dict[str, Any] = {}  # what a forked worker was given


def encode_all(todo: list[Source], config: PrepareConfig, encode: Encode,
               load_codec: Callable[[], Codec], processes: int) -> Encoded:
    """Each source's windows, or the exception that made it unusable, in ``todo``'s order.

    On a Ray cluster when ``config.ray`` is set (None: not; "": a local one), else in
    ``processes`` local processes. Bad arguments and a missing Ray raise here, before any work.
    """
    needs_codec = any(not s.encoded for s in todo)
    ray_address = config.ray
    if ray_address is not None:
        if processes > 1:
            raise InvalidArgumentError("--processes N and --ray both spread the encoding: "
                                       "give one of them")
        _check_paths(todo, config)
        if todo:
            from samuel_live.render.cluster import import_ray

            import_ray()  # a missing Ray is said now, not after the sources are listed
            return _on_ray(todo, config, encode, load_codec if needs_codec else None,
                           ray_address)
        return iter(())
    if processes > 1 and config.device.startswith("cuda"):
        raise InvalidArgumentError("--processes N encodes on CPUs (forked processes cannot share "
                                   "a GPU): use --processes 1 with --device cuda")
    if processes <= 1 or len(todo) < 2:
        return _here(todo, config, encode, load_codec if needs_codec else None)
    return _forked(todo, config, encode, load_codec if needs_codec else None, processes)


def _here(todo: list[Source], config: PrepareConfig, encode: Encode,
          load_codec: Callable[[], Codec] | None) -> Encoded:
    codec = load_codec() if load_codec else None
    for source in todo:
        try:
            yield encode(source, codec, config)
        except FAILURES as exc:
            yield exc


def _forked(todo: list[Source], config: PrepareConfig, encode: Encode,
            load_codec: Callable[[], Codec] | None, processes: int) -> Encoded:
    from samuel_live.train.prepare import Windows

    args = (todo, config, encode, load_codec)
    with ProcessPoolExecutor(min(processes, len(todo)), mp_context=mp.get_context("fork"),
                             initializer=_start, initargs=args) as pool:
        for i, out in enumerate(pool.map(_encode_at, range(len(todo)))):
            yield out if isinstance(out, Exception) else Windows(todo[i], *out)


def _start(todo: list[Source], config: PrepareConfig, encode: Encode,
           load_codec: Callable[[], Codec] | None) -> None:
    torch.set_num_threads(1)  # the processes share the cores
    _job.update(todo=todo, config=config, encode=encode,
                codec=load_codec() if load_codec else None)


def _encode_at(i: int) -> tuple[Any, ...] | Exception:
    return _encode_one(_job["encode"], _job["todo"][i], _job["codec"], _job["config"])


def _encode_one(encode: Encode, source: Source, codec: Codec | None,
                config: PrepareConfig) -> tuple[Any, ...] | Exception:
    try:
        w = encode(source, codec, config)
    except FAILURES as exc:
        return SamuelError(str(exc))  # picklable whatever the library's own type
    return w.vocal, w.accomp, w.validation, w.info


# ---------------------------------------------------------------- Ray


class EncodeWorker:
    """One Ray actor: a loaded codec, and the sources once its first task brings them."""

    def __init__(self, config: PrepareConfig, encode: Encode,
                 load_codec: Callable[[], Codec] | None) -> None:
        torch.set_num_threads(1)  # as a forked process, and as Ray's 1-CPU workers
        self.config, self.encode = config, encode
        self.codec = load_codec() if load_codec else None
        self.todo: list[Source] | None = None

    def encode_at(self, todo: list[Any], i: int) -> tuple[Any, ...] | Exception:
        """Source ``i`` of ``todo[0]``, the sources' ref: nested, so that Ray hands it over
        unresolved and it is fetched once per actor, not with every task. (A ref given to the
        constructor instead could be gone when Ray restarts the actor: ray#53727.)"""
        if self.todo is None:
            import ray

            self.todo = ray.get(todo[0])
        return _encode_one(self.encode, self.todo[i], self.codec, self.config)


def _on_ray(todo: list[Source], config: PrepareConfig, encode: Encode,
            load_codec: Callable[[], Codec] | None, address: str) -> Encoded:
    """Connects and starts the actors now (a bad address is said before any work), one per
    CPU, or per GPU with ``--device cuda``; they encode as ``_gather`` hands sources out."""
    from samuel_live.render.cluster import connect

    ray, owns = connect(address)
    try:
        cpus, gpus = (int(ray.cluster_resources().get(k, 0)) for k in ("CPU", "GPU"))
        if config.device.startswith("cuda"):
            if not gpus:
                raise ClusterError("--device cuda with --ray needs GPUs in the Ray cluster, and "
                                   "it has none: use --device cpu, or add GPU nodes")
            per, n = {"num_gpus": 1, "num_cpus": 1}, gpus
        else:
            per, n = {"num_cpus": 1}, max(1, cpus)
        worker = ray.remote(EncodeWorker).options(
            max_restarts=RETRIES, max_task_retries=RETRIES, **per)
        refs = [ray.put(todo)]
        actors = [worker.remote(config, encode, load_codec) for _ in range(min(n, len(todo)))]
    except BaseException:
        if owns:
            ray.shutdown()
        raise
    return _gather(ray, owns, actors, refs, todo)


def _gather(ray: Any, owns: bool, actors: list[Any], refs: list[Any],
            todo: list[Source]) -> Encoded:
    """Sources handed out one at a time per actor, results put back in source order. A source
    whose worker died more than ``RETRIES`` times comes back as an exception (skipped)."""
    from samuel_live.render.cluster import spread
    from samuel_live.train.prepare import Windows

    try:
        done: dict[int, Windows | Exception] = {}
        nxt = 0
        for i, out, error in spread(ray, actors, len(todo),
                                    lambda actor, i: actor.encode_at.remote(refs, i), RETRIES):
            if error is not None:
                done[i] = SamuelError(error + "; rerun prepare to try it again")
            else:
                done[i] = out if isinstance(out, Exception) else Windows(todo[i], *out)
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
    finally:
        for actor in actors:
            ray.kill(actor)
        if owns:
            ray.shutdown()


def _check_paths(todo: list[Source], config: PrepareConfig) -> None:
    """Ray workers open the files themselves, from another working folder or node."""
    paths = [f for s in todo for f in s.files] + [config.codec_path or "/"]
    relative = [p for p in paths if not Path(p).is_absolute()]
    if relative:
        raise InvalidArgumentError(
            f"--ray needs absolute paths (the workers start in other folders), got {relative[0]}"
            ": give the input folder and --codec-path as absolute paths on storage every node "
            "sees")
