"""Batch stems: every take x N variations, resumable, with a JSON + CSV manifest.

Each stem goes through ``render_take`` and ``write_result``, like a single ``generate``, under a
predictable name (``TAKE__vNN_sSEED.wav``) with its sidecar. A rerun keeps a stem only when its
sidecar says it was made exactly as now asked (settings, post chain, model, sample rate) and
renders the rest. A bad take, or a full disk, fails that stem; the batch goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live.atomic import atomic_write_bytes
from samuel_live.audio.io import read_audio
from samuel_live.errors import SamuelError
from samuel_live.render.output import midi_path, write_result
from samuel_live.render.sidecar import Sidecar, read_sidecar, sidecar_path
from samuel_live.render.take import Model, Progress, TakeSpec, render_take
from samuel_live.settings import GenerateSettings

log = logging.getLogger(__name__)
AUDIO_EXTS = {".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3"}


@dataclass(frozen=True)
class StemJob:
    take: Path
    variation: int
    seed: int
    path: Path


@dataclass
class StemRecord:
    take: str
    variation: int
    seed: int
    path: str
    duration_s: float
    status: str  # rendered | kept | failed
    error: str = ""
    seconds: float = 0.0
    midi: str = ""  # the stem's notes as a Standard MIDI File


def find_takes(inputs: Iterable[str | Path], exclude: Path | None = None) -> list[Path]:
    """Audio files named directly or found (non-recursively, sorted) in named folders; files
    inside ``exclude`` (the batch's own output folder) are never takes."""
    skip = exclude.expanduser().resolve() if exclude is not None else None
    takes: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.suffix.lower() in AUDIO_EXTS and not f.name.startswith("."))
        elif p.exists():
            found = [p]
        else:
            raise SamuelError(f"{p} does not exist; name audio files or folders of them")
        takes += [f for f in found if skip is None or not f.resolve().is_relative_to(skip)]
    return takes


def plan(takes: list[Path], variations: int, base_seed: int, out: Path, fmt: str) -> list[StemJob]:
    """One job per (take, variation), named ``STEM__vNN_sSEED.FMT``."""
    if variations < 1:
        raise SamuelError(f"--variations must be at least 1, got {variations}")
    stems = [t.stem for t in takes]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise SamuelError(
            f"several takes share the name(s) {clashes}; their stems would overwrite each "
            "other: rename them or render them into separate --out folders"
        )
    jobs = []
    for take in takes:
        for v in range(variations):
            seed = base_seed + v
            jobs.append(StemJob(take, v, seed, out / f"{take.stem}__v{v:02d}_s{seed}.{fmt}"))
    return jobs


def write_manifest(out: Path, records: list[StemRecord], meta: dict[str, Any]) -> None:
    """manifest.json and manifest.csv, both written atomically."""
    rows = [asdict(r) for r in records]
    atomic_write_bytes(out / "manifest.json",
                       json.dumps({**meta, "stems": rows}, indent=1).encode())
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(asdict(records[0])) if records else ["take"])
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "manifest.csv", buf.getvalue().encode())


def render(
    model: Model,
    jobs: list[StemJob],
    settings: GenerateSettings,
    spec: TakeSpec,
    out: Path,
    *,
    bit_depth: int = 24,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[StemRecord]:
    """Render every job whose stem is missing or was made differently; one record per job.

    ``settings.seed`` is replaced by each job's seed; ``spec.source`` by each take's path.
    """

    def here(todo: list[StemJob], tick: Progress) -> Iterator[StemRecord]:
        cache: dict[Path, np.ndarray | SamuelError] = {}
        for job in todo:
            yield render_stem(model, job, settings, spec, bit_depth=bit_depth, cache=cache,
                              progress=tick)

    return drive(model.info(), jobs, settings, spec, out, here, progress=progress)


StemRunner = Callable[[list[StemJob], Progress], Iterable[StemRecord]]


def drive(
    info: dict[str, Any],
    jobs: list[StemJob],
    settings: GenerateSettings,
    spec: TakeSpec,
    out: Path,
    run: StemRunner,
    *,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[StemRecord]:
    """The batch around the stems: keep those made as now asked (``info`` is the model's),
    have ``run`` render the rest (one record each, in any order; it may report progress within
    a stem through the callback it is given) and keep the manifest true after every stem.
    Records come back in job order."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": info, "settings": {**asdict(settings), "seed": None},
            "post": spec.post is not None and asdict(spec.post) or None}
    post = _post_json(_describe(spec))
    kept_by_path = {j.path: _kept(j, settings, spec, info, post) for j in jobs}
    todo = [j for j in jobs if kept_by_path[j.path] is None]
    order = {str(j.path): i for i, j in enumerate(jobs)}
    records = [_record(j, "kept", k.duration_s) for j in jobs
               if (k := kept_by_path[j.path]) is not None]
    total_steps, done, t0 = len(todo) * settings.steps, [0], time.monotonic()

    def tick(i: int, n: int) -> None:
        if progress:
            finished = (done[0] + i / n) * settings.steps
            rate = (time.monotonic() - t0) / max(finished, 1e-9)
            progress(int(finished), total_steps, rate * (total_steps - finished))

    for record in run(todo, tick):
        records.append(record)
        done[0] += 1
        tick(0, 1)
        records.sort(key=lambda r: order[r.path])
        _save_manifest(out, records, meta)  # a killed batch still leaves a true manifest
    _save_manifest(out, records, meta)
    return records


def render_stem(
    model: Model,
    job: StemJob,
    settings: GenerateSettings,
    spec: TakeSpec,
    *,
    bit_depth: int = 24,
    cache: dict[Path, np.ndarray | SamuelError] | None = None,
    progress: Progress | None = None,
) -> StemRecord:
    """Render one stem and write it (audio, MIDI, sidecar: nothing half-written); a
    SamuelError (a bad take, a full disk) fails this stem only. ``cache`` keeps the last take
    read, for its next variation."""
    t1 = time.monotonic()
    try:
        vocal = _load(job.take, cache if cache is not None else {})
        rendered = render_take(model, vocal, replace(settings, seed=job.seed),
                               _spec_for(job, spec), progress=progress)
        _, sidecar = write_result(job.path, rendered, bit_depth=bit_depth)
    except SamuelError as exc:  # this stem fails; the rest of the batch goes on
        log.error("skipping %s: %s", job.path.name, exc)
        return _record(job, "failed", 0.0, str(exc))
    return _record(job, "rendered", sidecar.duration_s, seconds=time.monotonic() - t1)


def _spec_for(job: StemJob, spec: TakeSpec) -> TakeSpec:
    return replace(spec, source=f"file:{job.take.resolve()}")


def _kept(job: StemJob, settings: GenerateSettings, spec: TakeSpec, info: dict[str, Any],
          post: str) -> Sidecar | None:
    """The existing stem's sidecar if the stem is there and was made as now asked."""
    meta = sidecar_path(job.path)
    if not job.path.is_file() or not meta.is_file() or not midi_path(job.path).is_file():
        return None
    try:
        old = read_sidecar(meta)
    except SamuelError:
        return None
    want = {"settings": {**asdict(replace(settings, seed=job.seed))},
            "source": _spec_for(job, spec).source, "sample_rate": spec.sample_rate,
            "loop_bars": spec.loop.bars if spec.loop else 0, "quantize": spec.quantize,
            "instrument": spec.instrument.describe() if spec.instrument else None}
    same = all(getattr(old, k) == v for k, v in want.items())
    same = same and old.model.get("hash") == info.get("hash")
    same = same and _post_json(old.post) == post
    return old if same else None


def _describe(spec: TakeSpec) -> list[dict[str, Any]] | None:
    from samuel_live.post.chain import build_chain

    return build_chain(spec.post).describe() if spec.post is not None else None


def _post_json(post: Any) -> str:
    return json.dumps(post, sort_keys=True)


def _save_manifest(out: Path, records: list[StemRecord], meta: dict[str, Any]) -> None:
    try:
        write_manifest(out, records, meta)
    except SamuelError as exc:  # e.g. the disk filled up: the stems and sidecars still tell
        log.error("manifest not written: %s", exc)


def _load(take: Path, cache: dict[Path, np.ndarray | SamuelError]) -> np.ndarray:
    if take not in cache:
        cache.clear()  # one take in memory at a time: variations of a take are adjacent
        try:
            cache[take] = read_audio(take)
        except SamuelError as exc:
            cache[take] = exc
    value = cache[take]
    if isinstance(value, SamuelError):
        raise value
    return value


def _record(job: StemJob, status: str, duration: float, error: str = "",
            seconds: float = 0.0) -> StemRecord:
    midi = str(midi_path(job.path)) if status != "failed" else ""
    return StemRecord(str(job.take), job.variation, job.seed, str(job.path), round(duration, 6),
                      status, error, round(seconds, 3), midi)
