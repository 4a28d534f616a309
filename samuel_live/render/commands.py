"""The CLI's rendering commands: `generate` (one take) and `render` (a batch of stems).

Every option is checked before any model is loaded or any sample generated; both commands then
go through the one render path (``render_take`` and ``write_result``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.errors import InvalidArgumentError
from samuel_live.render.midi import parse_grid
from samuel_live.render.settings import SettingsRequest, resolve_settings
from samuel_live.render.sidecar import Sidecar
from samuel_live.render.take import LoopSpec, TakeSpec, check_sample_rate
from samuel_live.settings import DEFAULT_PRECISION, PRECISIONS, SAMPLER_NAMES

if TYPE_CHECKING:
    from samuel_live.render.cluster import RayPool
    from samuel_live.render.instrument import Instrument

_FORMATS = (".wav", ".flac")


def _presets() -> list[str]:
    from samuel_live.post.spec import PRESETS

    return sorted(PRESETS)


def _add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint (.safetensors beside .json); default: starter")
    p.add_argument("--codec-path", help="Stable Audio Open checkpoint, for 'sao' models")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                   help="the U-Net's number format: auto = bfloat16 where the CPU or GPU has it, "
                        "float32 = the same file on every machine (default auto)")
    p.add_argument("--sampler", help=f"{' | '.join(SAMPLER_NAMES)} (default: the model's)")
    p.add_argument("--steps", type=int, help="model evaluations, 1-800 (default: the model's)")
    p.add_argument("--cfg", type=float, help="classifier-free guidance scale, 0-20 "
                   "(default: the model's)")
    p.add_argument("--key", help="lock the result to a key (its scale, leaning on the tonic "
                   "and fifth): auto (the key heard in the vocal), off, or a key such as "
                   "'A minor' (default: auto)")
    p.add_argument("--post", default="default",
                   help=f"post-processing preset: {', '.join(_presets())} (clean = none; "
                        "default: default)")
    p.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=24,
                   help="24 (default), 16, or 32 = float WAV")
    p.add_argument("--sample-rate", type=int,
                   help=f"sample rate of the result, e.g. 48000 (default {SAMPLE_RATE})")
    p.add_argument("--quantize", metavar="GRID",
                   help="snap the MIDI's notes to a grid: 1/4, 1/8, 1/16, 1/8T, ... "
                        "(default: as played)")
    p.add_argument("--instrument", metavar="NAME|N",
                   help="play the notes on a General MIDI instrument of a SoundFont "
                        "(piano, strings, cello, 0-127) instead of the additive decode")
    p.add_argument("--soundfont", metavar="PATH",
                   help="the .sf2/.sf3 for --instrument (default: the best General MIDI "
                        "SoundFont in the usual system folders)")
    p.add_argument("--midi-only", action="store_true",
                   help="write the notes (.mid + sidecar) and no audio")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _request(args: argparse.Namespace, seed: int | None) -> SettingsRequest:
    """The sampling the user asked for, checked now (before any model is loaded)."""
    request = SettingsRequest(sampler=args.sampler, steps=args.steps, cfg=args.cfg, seed=seed,
                              key=args.key)
    resolve_settings(request)  # raises for out-of-range values
    return request


def _post(args: argparse.Namespace) -> PostSection:
    from samuel_live.post.spec import check_post

    section = PostSection(preset=args.post)
    check_post(section)  # an unknown preset is refused here, not after generating
    return section


def _instrument(args: argparse.Namespace) -> Instrument | None:
    """The instrument asked for, with its SoundFont found now (before any work)."""
    from samuel_live.config import SYSTEM_SOUNDFONT_DIRS
    from samuel_live.render.instrument import choose_instrument

    if not args.instrument:
        if args.soundfont:
            raise InvalidArgumentError("--soundfont needs --instrument NAME|N")
        return None
    return choose_instrument(args.instrument, args.soundfont, SYSTEM_SOUNDFONT_DIRS)


def check_output(path: Path, bit_depth: int, midi_only: bool = False) -> None:
    """Refuse an unwritable output before minutes of generation, not after."""
    suffix = path.suffix.lower()
    if midi_only and suffix == ".mid":
        pass
    elif suffix not in _FORMATS:
        raise InvalidArgumentError(f"cannot write {path.name}: use a .wav or .flac file name"
                          + (" (or .mid with --midi-only)" if midi_only else ""))
    if suffix == ".flac" and bit_depth == 32:
        raise InvalidArgumentError(
            "FLAC has no 32-bit float format: write .wav or use --bit-depth 24")
    if not path.expanduser().resolve().parent.is_dir():
        raise InvalidArgumentError(f"cannot write {path}: its folder does not exist")


def _loop(args: argparse.Namespace) -> tuple[LoopSpec | None, object]:
    """The loop (if asked for) and the tempo given on the command line (or None)."""
    from samuel_live.timing import parse_meter, resolve_time

    given = resolve_time(args.bpm, args.meter, None, None) if args.bpm else None
    if args.loop_bars is None:
        if args.meter:
            parse_meter(args.meter)
        return None, given
    meter = parse_meter(args.meter) if args.meter else None
    loop = LoopSpec(args.loop_bars, given, meter[0] if meter else None, meter[1] if meter else 4)
    return loop, given


def cmd_generate(args: argparse.Namespace) -> int:
    from samuel_live.audio.io import read_audio
    from samuel_live.device import limit_numpy_blas
    from samuel_live.pipeline import Accompanist
    from samuel_live.render.output import write_result
    from samuel_live.render.take import render_take

    t0 = time.monotonic()
    out = Path(args.output).expanduser()
    check_output(out, args.bit_depth, args.midi_only)
    if args.midi_only:
        out = out.with_suffix(".mid")
    if args.start < 0 or (args.duration is not None and args.duration <= 0):
        raise InvalidArgumentError("--start must be >= 0 and --duration > 0 seconds")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    request = _request(args, seed)
    post = _post(args)
    loop, given = _loop(args)
    parse_grid(args.quantize)
    instrument = _instrument(args)
    rate = check_sample_rate(args.sample_rate or SAMPLE_RATE)
    vocal = read_audio(args.vocal)
    start = int(round(args.start * SAMPLE_RATE))
    stop = start + int(round(args.duration * SAMPLE_RATE)) if args.duration else vocal.shape[1]
    if start >= vocal.shape[1]:
        raise InvalidArgumentError(f"--start {args.start} s is past the end of {args.vocal} "
                          f"({vocal.shape[1] / SAMPLE_RATE:.2f} s)")
    vocal = vocal[:, start:stop]
    limit_numpy_blas()  # this process only generates from here on
    acc = Accompanist.load(args.model, args.device, args.codec_path, args.precision)
    settings = resolve_settings(request, checkpoint=acc.info().get("sampler_defaults"))
    spec = TakeSpec(source=f"file:{Path(args.vocal).resolve()}", post=post, loop=loop,
                    musical_time=given, sample_rate=rate, start_s=start / SAMPLE_RATE,
                    audio=not args.midi_only, quantize=args.quantize, instrument=instrument)
    t_load = time.monotonic()
    with _progress_bar("generate", args.quiet) as bar:
        rendered = render_take(acc, vocal, settings, spec, progress=bar)
    sidecar = _with_total(rendered.sidecar, load_s=t_load - t0, total_s=time.monotonic() - t0)
    _, sidecar = write_result(out, replace(rendered, sidecar=sidecar), bit_depth=args.bit_depth)
    print(f"{out}  ({sidecar.duration_s:.2f} s, {sidecar.notes} notes in {sidecar.midi}, "
          f"seed {settings.seed}, model {sidecar.timings['model_s']:.2f} s)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from samuel_live.device import limit_numpy_blas
    from samuel_live.pipeline import Accompanist
    from samuel_live.render.batch import find_takes, plan, render

    if args.format == "flac" and args.bit_depth == 32:
        raise InvalidArgumentError(
            "FLAC has no 32-bit float format: use --format wav or --bit-depth 24")
    request = _request(args, args.seed)
    post = _post(args)
    parse_grid(args.quantize)
    instrument = _instrument(args)
    rate = check_sample_rate(args.sample_rate or SAMPLE_RATE)
    out = Path(args.out).expanduser()
    takes = find_takes(args.takes, exclude=out)
    if not takes:
        raise InvalidArgumentError("no audio files found in the given takes/folders "
                          f"(files inside --out {out} are never takes)")
    jobs = plan(takes, args.variations, args.seed, out, "mid" if args.midi_only else args.format)
    pool = _ray_pool(args) if args.ray is not None else None  # Ray actors load the model
    limit_numpy_blas()  # this process only renders from here on
    acc = pool or Accompanist.load(args.model, args.device, args.codec_path, args.precision)
    with pool or contextlib.nullcontext(), _progress_bar("render", args.quiet) as bar:
        settings = resolve_settings(request, checkpoint=acc.info().get("sampler_defaults"))
        spec = TakeSpec(source="", post=post, sample_rate=rate, audio=not args.midi_only,
                        quantize=args.quantize, instrument=instrument)
        draw = pool.render if pool else functools.partial(render, acc)
        records = draw(jobs, settings, spec, out, bit_depth=args.bit_depth,
                       progress=lambda done, total, _eta: bar(done, total))
    failed = [r for r in records if r.status == "failed"]
    kept = sum(r.status == "kept" for r in records)
    print(f"{len(records) - len(failed) - kept} rendered, {kept} kept, {len(failed)} failed "
          f"-> {out / 'manifest.json'}")
    for r in failed:
        print(f"  failed: {r.take}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _ray_pool(args: argparse.Namespace) -> RayPool:
    from samuel_live.render.cluster import ModelSource, RayPool

    return RayPool(args.ray or None, ModelSource.of(args.model, args.device, args.codec_path,
                                                      args.precision))


class _progress_bar:  # noqa: N801 - used as a context manager like tqdm itself
    """A tqdm bar as a ``progress(done, total)`` callback."""

    def __init__(self, desc: str, quiet: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1, desc=desc, unit="step", disable=quiet)

    def __enter__(self) -> _progress_bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def __call__(self, done: int, total: int) -> None:
        self._bar.total, self._bar.n = total, done
        self._bar.refresh()


def _with_total(sidecar: Sidecar, **timings: float) -> Sidecar:
    return replace(sidecar, timings={**sidecar.timings,
                                     **{k: round(v, 4) for k, v in timings.items()}})


def add_render_commands(sub: argparse._SubParsersAction) -> None:
    """Add `generate` and `render` to the top-level parser."""
    g = sub.add_parser("generate", help="accompany a vocal file, write the accompaniment")
    g.add_argument("vocal")
    g.add_argument("-o", "--output", required=True, help="output .wav or .flac")
    g.add_argument("--start", type=float, default=0.0, help="seconds into the file")
    g.add_argument("--duration", type=float, help="seconds to use (default: to the end)")
    g.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    g.add_argument("--loop-bars", type=int, help="make a seamless loop of N bars")
    g.add_argument("--bpm", type=float, help="tempo (default: estimated from the take)")
    g.add_argument("--meter", help="time signature, e.g. 4/4 (default 4/4)")
    _add_sampling(g)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("render", help="batch: N accompaniment stems for every take")
    r.add_argument("takes", nargs="+", help="audio files or folders of them")
    r.add_argument("--out", required=True, help="output folder (rerun to resume)")
    r.add_argument("--variations", type=int, default=1)
    r.add_argument("--seed", type=int, default=0, help="seed of variation 0 (default 0)")
    r.add_argument("--format", choices=("wav", "flac"), default="wav")
    r.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="render on a Ray cluster: auto, ray://HOST:10001, or none for a local "
                        "one; --out and the takes on storage every node sees (needs "
                        '`pip install -e ".[cluster]"`)')
    _add_sampling(r)
    r.set_defaults(func=cmd_render)
