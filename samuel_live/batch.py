"""Batch stems: every take x N variations, resumable, with a JSON + CSV manifest.

Finished stems are written atomically under predictable names
(``TAKE__vNN_sSEED.wav``), so a rerun of the same command skips what exists and renders only
what is missing. A bad take is reported in the manifest and skipped; the rest complete.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.atomic import atomic_write_bytes
from samuel_live.audio.io import read_audio, write_audio_atomic
from samuel_live.errors import SamuelError
from samuel_live.pipeline import Accompanist
from samuel_live.post.chain import PostChain
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


def find_takes(inputs: Iterable[str | Path]) -> list[Path]:
    """Audio files named directly or found (non-recursively, sorted) in named folders."""
    takes: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            takes += sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_EXTS)
        elif p.exists():
            takes.append(p)
        else:
            raise SamuelError(f"{p} does not exist")
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
    acc: Accompanist,
    jobs: list[StemJob],
    settings: GenerateSettings,
    chain: PostChain,
    out: Path,
    *,
    bit_depth: int = 24,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[StemRecord]:
    """Render every job not already on disk; returns one record per job."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": acc.info(), "settings": asdict(settings), "post": chain.describe()}
    total_steps = sum(1 for j in jobs if not j.path.exists()) * settings.steps
    done_steps, t0 = 0, time.monotonic()
    records: list[StemRecord] = []
    audio_cache: dict[Path, np.ndarray | SamuelError] = {}
    for job in jobs:
        if job.path.exists():
            records.append(_record(job, "kept", _duration(job.path)))
            continue
        vocal = _load(job.take, audio_cache)
        if isinstance(vocal, SamuelError):
            done_steps += settings.steps
            records.append(_record(job, "failed", 0.0, str(vocal)))
            log.error("skipping %s: %s", job.take, vocal)
            continue
        t1 = time.monotonic()

        def step(i: int, n: int, base: int = done_steps) -> None:
            if progress:
                finished = base + i * settings.steps / n
                rate = (time.monotonic() - t0) / max(finished, 1e-9)
                progress(int(finished), total_steps, rate * (total_steps - finished))

        s = GenerateSettings(settings.sampler, settings.steps, settings.cfg, job.seed)
        try:
            audio = chain.process(acc.accompany(vocal, s, progress=step), vocal=vocal)
            write_audio_atomic(job.path, audio, bit_depth=bit_depth)
        except SamuelError as exc:  # this take fails; the rest of the batch goes on
            done_steps += settings.steps
            records.append(_record(job, "failed", 0.0, str(exc)))
            log.error("skipping %s: %s", job.take, exc)
            continue
        done_steps += settings.steps
        records.append(_record(job, "rendered", audio.shape[1] / SAMPLE_RATE,
                               seconds=time.monotonic() - t1))
        write_manifest(out, records, meta)  # a killed batch still leaves a true manifest
    write_manifest(out, records, meta)
    return records


def _load(take: Path, cache: dict[Path, np.ndarray | SamuelError]) -> np.ndarray | SamuelError:
    if take not in cache:
        try:
            cache.clear()  # one take in memory at a time: variations of a take are adjacent
            cache[take] = read_audio(take)
        except SamuelError as exc:
            cache[take] = exc
    return cache[take]


def _duration(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(str(path)).duration)


def _record(job: StemJob, status: str, duration: float, error: str = "",
            seconds: float = 0.0) -> StemRecord:
    return StemRecord(str(job.take), job.variation, job.seed, str(job.path), round(duration, 6),
                      status, error, round(seconds, 3))
