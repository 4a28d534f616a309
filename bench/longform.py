"""Seconds per minute of accompaniment for long takes: independent vs continued windows.

    python bench/longform.py [--minutes 3] [--steps 25] [--model PATH]

"independent": back-to-back 1024-frame windows, each sampled on its own (joins are audible).
"continued": windows overlapping by a quarter, each holding the previous window's frames by
inpainting (seamless; the default). The difference is the price of seamless joins.
"""

from __future__ import annotations

import argparse
import time

from generate import synthetic_vocal  # bench/ sibling script

from samuel_live import SAMPLE_RATE
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import STARTER_MODEL, Accompanist
from samuel_live.settings import GenerateSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--sampler", default="dpmpp_2m")
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args()
    if args.model or STARTER_MODEL.exists():
        acc = Accompanist.load(args.model, device=args.device)
    else:
        acc = Accompanist.random(UNetConfig(), device=args.device)
    vocal = synthetic_vocal(args.minutes * 60)
    s = GenerateSettings(args.sampler, args.steps, 3.0, 0)
    acc.accompany(vocal[:, : SAMPLE_RATE * 2], GenerateSettings(steps=2))  # warm-up
    print(f"model {acc.info()['name']}, device {acc.device}, {args.minutes:g} min take, "
          f"{args.sampler} {args.steps} steps")
    for label, overlap in (("independent", 0), ("continued (overlap 256)", 256)):
        t0 = time.perf_counter()
        out = acc.accompany(vocal, s, overlap=overlap)
        sec = time.perf_counter() - t0
        assert out.shape == vocal.shape
        print(f"{label:<26} {sec / args.minutes:8.1f} s per minute "
              f"({args.minutes * 60 / sec:.1f}x real time)")


if __name__ == "__main__":
    main()
