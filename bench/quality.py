"""Does the accompaniment follow the singer? Metrics with bootstrap 95% intervals, by set.

    python bench/quality.py                          # tuning sets (chorales, styles), 30 clips
    python bench/quality.py --set essen --set monteverdi   # reserved held-out: final figures
    python bench/quality.py --pairs DIR --limit 10   # any folder of NAME_vocal.* (+ _accomp.*)
    python bench/quality.py --sweep --limit 12 --seconds 20   # guidance x steps, tuning sets

Systems compared on the same clips (see bench/quality_sets.py for the sets): the model with
guidance decoded by the codec (latent decode), the same generated result played as its notes
on the built-in tones (what ``--instrument tones`` ships), the model unconditional (cfg 0),
the model given another clip's vocal (mismatched), the naive audio-only harmonizer
(samuel_live/train/baselines.py), pink noise, silence, and the real accompaniment. Metrics:
samuel_live/train/metrics.py. Prints Markdown tables; ``--json`` keeps every clip's scores.
``--raw-decode`` adds the same sampled latent decoded raw (every band: ``clean=None``)
next to the codec's default clean decode, to compare the decoders on the same clips.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from quality_sets import SETS, EvalSet, find_pairs, table  # bench/ is on sys.path as a script

from samuel_live import SAMPLE_RATE
from samuel_live.audio.io import read_audio
from samuel_live.codec.harmonic import HarmonicCodec
from samuel_live.device import limit_numpy_blas
from samuel_live.pipeline import Accompanist
from samuel_live.render.instrument import Instrument, render_notes
from samuel_live.render.notes import notes_from_latent
from samuel_live.render.take import harmonic_bands
from samuel_live.settings import GenerateSettings
from samuel_live.train.baselines import harmonize
from samuel_live.train.metrics import Scores, score

TONES = Instrument(None, 0)
RAW = HarmonicCodec(clean=None)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
    y = np.fft.irfft(spec, n)
    y *= 0.1 / (np.abs(y).max() + 1e-9)
    return np.stack([y, y]).astype(np.float32)


def load_clips(folder: Path, limit: int, seconds: float) -> list[tuple[str, np.ndarray, ...]]:
    pairs = find_pairs(folder)[:limit]
    if not pairs:
        raise SystemExit(f"no *_vocal.* files in {folder}; render the set first "
                         "(see bench/quality_sets.py)")
    clips = []
    for name, vp, ap_ in pairs:
        v = read_audio(vp)
        a = read_audio(ap_) if ap_ else None
        if seconds:
            n = int(seconds * SAMPLE_RATE)
            v, a = v[:, :n], (a[:, :n] if a is not None else None)
        clips.append((name, v, a))
    return clips


def generate_both(acc: Accompanist, vocal: np.ndarray, settings: GenerateSettings,
                  raw: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One sampled result, as (latent decode, its notes on the built-in tones, raw decode or
    None), post off.

    The first two are the audios ``render_take`` returns for ``TakeSpec(post=None)`` and
    ``TakeSpec(post=None, instrument=Instrument(None, 0))``, from one sampling run; the third,
    with ``raw`` and the harmonic codec, is the same latent decoded with every band."""
    n = vocal.shape[1]
    latent = acc.accompany_latent(vocal, settings)
    audio = acc.decode(latent, n)
    harmonic = acc.info().get("codec") == "harmonic"
    bands = latent.numpy() if harmonic else harmonic_bands(audio)
    notes = notes_from_latent(bands, duration_s=n / SAMPLE_RATE)
    every = RAW.decode(latent)[:, :n] if raw and harmonic else None
    return audio, render_notes(notes, TONES, n, SAMPLE_RATE), every


def evaluate(acc: Accompanist, clips: list, settings: GenerateSettings, seed: int,
             controls: int, raw: bool = False, unlocked: bool = False) -> dict[str, list[Scores]]:
    """Every system's scores on every clip; the unconditional and mismatched model (two more
    sampling runs each) on the first ``controls`` clips only; with ``raw``, the model's latent
    decoded raw as well; with ``unlocked``, the model sampled again with the key lock off."""
    cfg, key = settings.cfg, settings.key
    labels = {"model": f"model (cfg {cfg:g}, key {key}, latent decode)",
              "unlocked": f"model (cfg {cfg:g}, key off, latent decode)",
              "raw": f"model (cfg {cfg:g}, raw latent decode, every band)",
              "tones": f"model (cfg {cfg:g}), notes on built-in tones",
              "uncond": f"model unconditional (cfg 0, key {key})",
              "mismatch": f"model, mismatched vocal (cfg {cfg:g})",
              "harmonizer": "naive harmonizer (sine triads)",
              "noise": "pink noise", "silence": "silence", "real": "real accompaniment"}
    results: dict[str, list[Scores]] = {v: [] for v in labels.values()}
    rng = np.random.default_rng(seed)
    t0 = time.monotonic()
    for i, (name, vocal, real) in enumerate(clips):
        s = GenerateSettings(settings.sampler, settings.steps, cfg, seed + i, key)
        latent_out, tones_out, raw_out = generate_both(acc, vocal, s, raw)
        other = clips[(i + 1) % len(clips)][1]
        other = np.resize(other, vocal.shape) if other.shape != vocal.shape else other
        outs = {
            "model": latent_out, "raw": raw_out, "tones": tones_out,
            "unlocked": acc.accompany(vocal, replace(s, key="off"))
            if unlocked and key != "off" else None,
            "uncond": acc.accompany(vocal, replace(s, cfg=0.0))
            if i < controls else None,
            "mismatch": acc.accompany(other, s) if i < controls else None,
            "harmonizer": harmonize(vocal),
            "noise": pink_noise(vocal.shape[1], rng),
            "silence": np.zeros_like(vocal), "real": real,
        }
        for system, out in outs.items():
            if out is not None:
                results[labels[system]].append(score(vocal, out, real))
        print(f"  {name}: done ({time.monotonic() - t0:.0f} s)", flush=True)
    return results


def sweep(acc: Accompanist, clips: list, sampler: str, cfgs: list[float], steps: list[int],
          seed: int, key: str = "auto") -> tuple[dict[str, list[Scores]], dict[str, list[Scores]]]:
    """Guidance x steps grid: scores of the latent decode and of the notes on tones."""
    latent_rows: dict[str, list[Scores]] = {}
    tone_rows: dict[str, list[Scores]] = {}
    t0 = time.monotonic()
    for cfg in cfgs:
        for st in steps:
            label = f"cfg {cfg:g}, {st} steps"
            latent_rows[label], tone_rows[label] = [], []
            for i, (_, vocal, real) in enumerate(clips):
                a, b, _ = generate_both(acc, vocal, GenerateSettings(sampler, st, cfg, seed + i,
                                                                       key))
                latent_rows[label].append(score(vocal, a, real))
                tone_rows[label].append(score(vocal, b, real))
            print(f"  {label}: done ({time.monotonic() - t0:.0f} s)", flush=True)
    return latent_rows, tone_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", choices=sorted(SETS), dest="sets")
    ap.add_argument("--pairs", type=Path, help="a folder of pairs instead of the named sets")
    ap.add_argument("--model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=30.0, help="crop each clip (0 = whole)")
    ap.add_argument("--sampler")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--cfg", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--controls", type=int, default=0,
                    help="run the unconditional and mismatched model on the first N clips "
                         "of each set only (0 = all)")
    ap.add_argument("--raw-decode", action="store_true",
                    help="also score the sampled latent decoded raw (every band), harmonic codec")
    ap.add_argument("--key", default="auto", help="the key lock: auto (default), off, 'A minor'")
    ap.add_argument("--unlocked", action="store_true",
                    help="also sample each clip with the key lock off (a second run)")
    ap.add_argument("--sweep", action="store_true", help="guidance x steps on tuning sets only")
    ap.add_argument("--sweep-cfg", default="1,2,3,5,7,10")
    ap.add_argument("--sweep-steps", default="8,15,25,50")
    ap.add_argument("--json", type=Path, help="write every clip's scores here")
    ap.add_argument("--report", type=Path, help="print the tables of a --json file, run nothing")
    args = ap.parse_args()
    limit_numpy_blas()  # as the CLI and the engine run
    if args.report:
        return report(args.report)

    acc = Accompanist.load(args.model, device=args.device)
    info = acc.info()
    defaults = info.get("sampler_defaults") or {}
    base = GenerateSettings()
    settings = GenerateSettings(args.sampler or defaults.get("sampler", base.sampler),
                                args.steps or int(defaults.get("steps", base.steps)),
                                args.cfg if args.cfg is not None
                                else float(defaults.get("cfg", base.cfg)), args.seed,
                                args.key)
    if args.pairs:
        sets = [EvalSet(args.pairs.name, args.pairs, "custom", str(args.pairs), "")]
    else:
        sets = [SETS[s] for s in (args.sets or ["chorales", "styles"])]
    if args.sweep and any(s.role == "held-out" for s in sets):
        raise SystemExit("the sweep chooses defaults: run it on tuning sets only "
                         "(--set chorales/styles), never on the reserved held-out sets")
    print(f"model {info['name']} ({info['params'] / 1e6:.2f}M, {info['hash']}), "
          f"{platform.machine()} {torch.get_num_threads()} torch threads, seed {args.seed}")
    dump: dict[str, dict] = {}
    t_all = time.monotonic()
    work = [(es, load_clips(es.folder, args.limit, args.seconds)) for es in sets]
    if args.sweep and len(work) > 1:  # one pooled table over the tuning sets
        pooled = EvalSet("+".join(es.name for es in sets), Path(), "tuning",
                         f"{args.limit} clips from each", "")
        work = [(pooled, [c for _, clips in work for c in clips])]
    for es, clips in work:
        t0 = time.monotonic()
        head = (f"\n### {es.name} ({es.role}): {len(clips)} clips of <= {args.seconds:g} s, "
                f"{es.what}")
        if args.sweep:
            cfgs = [float(x) for x in args.sweep_cfg.split(",")]
            steps = [int(x) for x in args.sweep_steps.split(",")]
            lat, ton = sweep(acc, clips, settings.sampler, cfgs, steps, args.seed, settings.key)
            print(head + f"; {settings.sampler}; {time.monotonic() - t0:.0f} s\n")
            print("latent decode:\n\n" + table(lat) + "\n\nnotes on built-in tones:\n\n"
                  + table(ton), flush=True)
            dump[es.name] = {"latent": _rows(lat), "tones": _rows(ton)}
        else:
            res = evaluate(acc, clips, settings, args.seed, args.controls or len(clips),
                           args.raw_decode, args.unlocked)
            print(head + f"; {settings.sampler} {settings.steps} steps; "
                  f"{time.monotonic() - t0:.0f} s\n")
            print(table(res), flush=True)
            dump[es.name] = {"systems": _rows(res)}
        if args.json:  # after every set, so a long run keeps what it finished
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"settings": asdict(settings), "seconds": args.seconds,
                                             "limit": args.limit, "sets": dump}, indent=1))
    print(f"\ntotal {time.monotonic() - t_all:.0f} s")


def report(path: Path) -> None:
    """Print the tables kept in a ``--json`` file."""
    data = json.loads(path.read_text())
    print(f"{data['settings']}, clips of <= {data['seconds']:g} s")
    for name, kinds in data["sets"].items():
        for kind, rows in kinds.items():
            print(f"\n### {name}: {kind}\n")
            print(table({k: [Scores(**r) for r in v] for k, v in rows.items()}))


def _rows(results: dict[str, list[Scores]]) -> dict[str, list[dict]]:
    return {k: [asdict(r) for r in v] for k, v in results.items()}


if __name__ == "__main__":
    main()
