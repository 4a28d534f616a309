"""The CLI's rendering commands: `generate` (one take) and `render` (a batch of stems)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from samuel_live.errors import SamuelError


def _add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint (.safetensors beside .json); default: starter")
    p.add_argument("--codec-path", help="Stable Audio Open checkpoint, for 'sao' models")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--sampler", help="ddpm | ddim | dpmpp_2m (default: the model's)")
    p.add_argument("--steps", type=int, help="model evaluations (ddpm: 800 = the paper)")
    p.add_argument("--cfg", type=float, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--post", default="default", help="post-processing preset (clean = none)")
    p.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=24)


def _settings(args: argparse.Namespace, defaults: dict):
    from samuel_live.settings import GenerateSettings

    return GenerateSettings(
        sampler=args.sampler or defaults.get("sampler", "dpmpp_2m"),
        steps=args.steps or defaults.get("steps", 25),
        cfg=args.cfg if args.cfg is not None else defaults.get("cfg", 3.0),
        seed=args.seed,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from samuel_live.audio.io import read_audio, write_audio_atomic, write_json_atomic
    from samuel_live.config import PostSection
    from samuel_live.pipeline import Accompanist
    from samuel_live.post.chain import build_chain
    from samuel_live.timing import resolve_time

    t0 = time.monotonic()
    check_output(Path(args.output), args.bit_depth)
    if args.start < 0 or (args.duration is not None and args.duration <= 0):
        raise SamuelError("--start must be >= 0 and --duration > 0 seconds")
    vocal = read_audio(args.vocal)
    sr = 44100
    start = int(round(args.start * sr)) if args.start else 0
    stop = start + int(round(args.duration * sr)) if args.duration else vocal.shape[1]
    if start >= vocal.shape[1]:
        raise SamuelError(f"--start {args.start} s is past the end of {args.vocal}")
    vocal = vocal[:, start:stop]
    acc = Accompanist.load(args.model, args.device, args.codec_path)
    settings = _settings(args, acc.info().get("sampler_defaults", {}))
    t_load = time.monotonic()
    with tqdm(total=1, desc="generate", unit="step", disable=args.quiet) as bar:

        def progress(i: int, n: int) -> None:
            bar.total = n
            bar.n = i
            bar.refresh()

        if args.loop_bars:
            mt = resolve_time(args.bpm, args.meter, None, vocal)
            loop_n = mt.bars_samples(args.loop_bars)
            audio = acc.accompany_loop(vocal, settings, loop_n, progress=progress)
        else:
            mt = resolve_time(args.bpm, args.meter, None, None) if args.bpm else None
            audio = acc.accompany(vocal, settings, progress=progress)
    t_model = time.monotonic()
    chain = build_chain(PostSection(preset=args.post))
    audio = chain.process_loop(audio) if args.loop_bars else chain.process(audio)
    t_post = time.monotonic()
    out = write_audio_atomic(args.output, audio, bit_depth=args.bit_depth)
    sidecar = {
        "source": str(Path(args.vocal).resolve()),
        "start_s": start / sr,
        "duration_s": audio.shape[1] / sr,
        "samples": int(audio.shape[1]),
        "settings": settings.__dict__,
        "musical_time": mt.__dict__ if mt else None,
        "loop_bars": args.loop_bars,
        "post": chain.describe(),
        "model": acc.info(),
        "timings_s": {"load": t_load - t0, "model": t_model - t_load, "post": t_post - t_model,
                      "total": time.monotonic() - t0},
    }
    write_json_atomic(out.with_suffix(out.suffix + ".json"), sidecar)
    print(f"{out}  ({audio.shape[1] / sr:.2f} s, model {t_model - t_load:.2f} s)")
    return 0


def check_output(path: Path, bit_depth: int) -> None:
    """Refuse an unwritable output before minutes of generation, not after."""
    suffix = path.suffix.lower()
    if suffix not in (".wav", ".flac"):
        raise SamuelError(f"cannot write {path.name}: use a .wav or .flac file name")
    if suffix == ".flac" and bit_depth == 32:
        raise SamuelError("FLAC has no 32-bit float format: write .wav or use --bit-depth 24")
    if not path.expanduser().resolve().parent.is_dir():
        raise SamuelError(f"cannot write {path}: its folder does not exist")


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from samuel_live.batch import find_takes, plan, render
    from samuel_live.config import PostSection
    from samuel_live.pipeline import Accompanist
    from samuel_live.post.chain import build_chain

    if args.format == "flac" and args.bit_depth == 32:
        raise SamuelError("FLAC has no 32-bit float format: use --format wav or --bit-depth 24")
    takes = find_takes(args.takes)
    if not takes:
        raise SamuelError("no audio files found in the given takes/folders")
    out = Path(args.out).expanduser()
    jobs = plan(takes, args.variations, args.seed, out, args.format)
    acc = Accompanist.load(args.model, args.device, args.codec_path)
    settings = _settings(args, acc.info().get("sampler_defaults", {}))
    chain = build_chain(PostSection(preset=args.post))
    with tqdm(total=1, desc="render", unit="step", disable=args.quiet) as bar:

        def progress(done: int, total: int, eta: float) -> None:
            bar.total, bar.n = total, done
            bar.set_postfix(eta=f"{eta:.0f}s")

        records = render(acc, jobs, settings, chain, out, bit_depth=args.bit_depth,
                         progress=progress)
    failed = [r for r in records if r.status == "failed"]
    kept = sum(r.status == "kept" for r in records)
    print(f"{len(records) - len(failed) - kept} rendered, {kept} kept, {len(failed)} failed "
          f"-> {out / 'manifest.json'}")
    for r in failed:
        print(f"  failed: {r.take}: {r.error}", file=sys.stderr)
    return 1 if failed else 0



def add_render_commands(sub: argparse._SubParsersAction) -> None:
    """Add `generate` and `render` to the top-level parser."""
    g = sub.add_parser("generate", help="accompany a vocal file, write the accompaniment")
    g.add_argument("vocal")
    g.add_argument("-o", "--output", required=True, help="output .wav or .flac")
    g.add_argument("--start", type=float, default=0.0, help="seconds into the file")
    g.add_argument("--duration", type=float, help="seconds to use (default: to the end)")
    g.add_argument("-q", "--quiet", action="store_true")
    g.add_argument("--loop-bars", type=int, help="make a seamless loop of N bars")
    g.add_argument("--bpm", type=float, help="tempo (default: estimated from the take)")
    g.add_argument("--meter", help="time signature, e.g. 4/4 (default 4/4)")
    _add_sampling(g)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("render", help="batch: N accompaniment stems for every take")
    r.add_argument("takes", nargs="+", help="audio files or folders of them")
    r.add_argument("--out", required=True, help="output folder (rerun to resume)")
    r.add_argument("--variations", type=int, default=1)
    r.add_argument("--format", choices=("wav", "flac"), default="wav")
    r.add_argument("-q", "--quiet", action="store_true")
    _add_sampling(r)
    r.set_defaults(func=cmd_render)

