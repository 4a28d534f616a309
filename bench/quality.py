"""Does the accompaniment follow the singer? Metrics on held-out pairs, against baselines.

    python bench/quality.py                                   # held-out chorales, starter model
    python bench/quality.py --pairs DIR --limit 10 --steps 20 # any folder of pairs

DIR holds ``NAME_vocal.*`` files, each optionally with ``NAME_accomp.*`` (the real
accompaniment; without it the chroma column is n/a). Systems compared on the same clips:
the model with guidance, the same model unconditional (cfg 0: guidance off, learned null
vocal), the model given another clip's vocal (mismatched), pink noise, silence, and the real
accompaniment. Metrics: see samuel_live/train/metrics.py. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from samuel_live import SAMPLE_RATE
from samuel_live.audio.io import read_audio
from samuel_live.pipeline import Accompanist
from samuel_live.settings import GenerateSettings
from samuel_live.train.metrics import Scores, score

DEFAULT_PAIRS = Path(__file__).resolve().parents[1] / "data" / "chorales" / "test"


def find_pairs(folder: Path) -> list[tuple[str, Path, Path | None]]:
    pairs = []
    for vocal in sorted(folder.glob("*_vocal.*")):
        name = vocal.name.split("_vocal.")[0]
        acc = sorted(folder.glob(f"{name}_accomp.*"))
        pairs.append((name, vocal, acc[0] if acc else None))
    return pairs


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
    y = np.fft.irfft(spec, n)
    y *= 0.1 / (np.abs(y).max() + 1e-9)
    return np.stack([y, y]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    ap.add_argument("--model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=30.0, help="crop each clip (0 = whole)")
    ap.add_argument("--sampler", default="dpmpp_2m")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    pairs = find_pairs(args.pairs)[: args.limit]
    if not pairs:
        raise SystemExit(f"no *_vocal.* files in {args.pairs}; run `samuel-live prepare "
                         "--recipe chorales` first")
    acc = Accompanist.load(args.model, device=args.device)
    rng = np.random.default_rng(args.seed)
    clips = []
    for name, vp, ap_ in pairs:
        v = read_audio(vp)
        a = read_audio(ap_) if ap_ else None
        if args.seconds:
            n = int(args.seconds * SAMPLE_RATE)
            v, a = v[:, :n], (a[:, :n] if a is not None else None)
        clips.append((name, v, a))

    systems = {
        f"model (cfg {args.cfg:g})": args.cfg,
        "model unconditional (cfg 0)": 0.0,
        f"model, mismatched vocal (cfg {args.cfg:g})": "mismatch",
        "pink noise": "noise",
        "silence": "silence",
        "real accompaniment": "real",
    }
    results: dict[str, list[Scores]] = {k: [] for k in systems}
    t0 = time.monotonic()
    for i, (name, vocal, real) in enumerate(clips):
        for label, kind in systems.items():
            if kind == "real":
                if real is None:
                    continue
                out = real
            elif kind == "silence":
                out = np.zeros_like(vocal)
            elif kind == "noise":
                out = pink_noise(vocal.shape[1], rng)
            else:
                cond = vocal
                if kind == "mismatch":
                    other = clips[(i + 1) % len(clips)][1]
                    cond = np.resize(other, vocal.shape) if other.shape != vocal.shape else other
                cfg = args.cfg if kind == "mismatch" else float(kind)
                s = GenerateSettings(args.sampler, args.steps, cfg, args.seed + i)
                out = acc.accompany(cond, s)
            results[label].append(score(vocal, out, real))
        print(f"  {name}: done ({time.monotonic() - t0:.0f} s)", flush=True)

    info = acc.info()
    print(f"\nmodel {info['name']} ({info['params'] / 1e6:.2f}M), {len(clips)} clips of "
          f"<= {args.seconds:g} s from {args.pairs}, {args.sampler} {args.steps} steps, "
          f"seed {args.seed}\n")
    print("| system | chroma vs real | consonance | key agreement | onset agreement |")
    print("|---|---|---|---|---|")
    for label, rows in results.items():
        if not rows:
            continue
        cells = [_mean([getattr(r, f) for r in rows]) for f in ("chroma", "consonance", "key",
                                                                 "onset")]
        print(f"| {label} | " + " | ".join(cells) + " |")


def _mean(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    return f"{np.mean(vals):.3f}" if vals else "n/a"


if __name__ == "__main__":
    main()
