"""``prepare``'s encoding spread over processes: each loads the codec once and encodes whole
sources; results come back in source order, so the shards are those one process writes.

The processes are forked, so every source (with its loader) is already in each of them; only
an index goes out and tensors come back.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import torch

from samuel_live.errors import InvalidArgumentError, SamuelError

if TYPE_CHECKING:
    from samuel_live.codec.base import Codec
    from samuel_live.train.prepare import PrepareConfig, Source, Windows

Encode = Callable[["Source", "Codec | None", "PrepareConfig"], "Windows"]
FAILURES = (SamuelError, OSError, ValueError, RuntimeError)  # a bad source, not a bad run
_job: dict[str, Any] = {}  # what a forked worker was given


def encode_all(todo: list[Source], config: PrepareConfig, encode: Encode,
               load_codec: Callable[[], Codec], processes: int) -> Iterator[Windows | Exception]:
    """Each source's windows, or the exception that made it unusable, in ``todo``'s order."""
    if processes > 1 and config.device.startswith("cuda"):
        raise InvalidArgumentError("--processes N encodes on CPUs (forked processes cannot share "
                                   "a GPU): use --processes 1 with --device cuda")
    needs_codec = any(not s.encoded for s in todo)
    if processes <= 1 or len(todo) < 2:
        codec = load_codec() if needs_codec else None
        for source in todo:
            try:
                yield encode(source, codec, config)
            except FAILURES as exc:
                yield exc
        return
    from samuel_live.train.prepare import Windows

    args = (todo, config, encode, load_codec if needs_codec else None)
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
    try:
        w = _job["encode"](_job["todo"][i], _job["codec"], _job["config"])
    except FAILURES as exc:
        return SamuelError(str(exc))  # picklable whatever the library's own type
    return w.vocal, w.accomp, w.validation, w.info
