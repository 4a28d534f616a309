"""Seconds per 47.55 s clip for each sampler and step count, plus U-Net forward GFLOPs.

    python bench/generate.py                         # starter model (or random default width)
    python bench/generate.py --random-default-width  # the paper's ~15.5M model, random weights
    python bench/generate.py --device cuda --steps 25 800

Prints one row per (sampler, steps): model time (sampling only) and end to end (encode +
sample + decode + post) for one 47.55 s clip, and the real-time factor.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from samuel_live import LATENT_FRAMES, SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.config import PostSection
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import STARTER_MODEL, Accompanist
from samuel_live.post.chain import build_chain
from samuel_live.settings import GenerateSettings


def forward_gflops(acc: Accompanist, batch: int) -> float:
    """GFLOPs of one U-Net forward at ``batch`` x 1024 frames (2 = one CFG step)."""
    m = acc.model
    x = torch.randn(batch, m.config.latent_channels, LATENT_FRAMES, device=acc.device)
    t = torch.full((batch,), 400, dtype=torch.long, device=acc.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        m(x, t, x)
    return fc.get_total_flops() / 1e9


def synthetic_vocal(seconds: float) -> np.ndarray:
    """A sung-like melody: a vibrato tone stepping through a major scale."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    notes = 60 + np.array([0, 2, 4, 5, 7, 9, 11, 12])[(t // 0.75).astype(int) % 8]
    f = 440 * 2 ** ((notes - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    y = 0.3 * (np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase))
    return np.stack([y, y]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="checkpoint; default: the starter model")
    ap.add_argument("--random-default-width", action="store_true",
                    help="the paper-width model (UNetConfig defaults) with random weights")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samplers", nargs="+", default=["dpmpp_2m", "ddim", "ddpm"])
    ap.add_argument("--steps", nargs="+", type=int, default=[10, 25, 50])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.random_default_width or not (args.model or STARTER_MODEL.exists()):
        acc = Accompanist.random(UNetConfig(), device=args.device)
    else:
        acc = Accompanist.load(args.model, device=args.device)
    info = acc.info()
    print(f"model {info['name']} ({info['params'] / 1e6:.2f}M params), device {acc.device}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"U-Net forward: {forward_gflops(acc, 1):.2f} GFLOP at batch 1, "
          f"{forward_gflops(acc, 2):.2f} GFLOP per CFG step (batch 2)")
    vocal = synthetic_vocal(WINDOW_SAMPLES / SAMPLE_RATE)
    chain = build_chain(PostSection())
    acc.accompany(vocal[:, : SAMPLE_RATE * 2], GenerateSettings(steps=2))  # warm-up
    clip = WINDOW_SAMPLES / SAMPLE_RATE
    print(f"{'sampler':<10}{'steps':>6}{'model s':>10}{'end-to-end s':>14}{'x real time':>13}")
    for sampler in args.samplers:
        for steps in args.steps:
            s = GenerateSettings(sampler=sampler, steps=steps, cfg=3.0, seed=0)
            t0 = time.perf_counter()
            enc = acc.encode_vocal(vocal)  # noqa: F841 (timed: the encode share)
            t1 = time.perf_counter()
            out = acc.accompany(vocal, s)
            t2 = time.perf_counter()
            chain.process(out)
            t3 = time.perf_counter()
            model_s = (t2 - t1) - (t1 - t0)  # accompany re-encodes; subtract one encode
            total = t3 - t1
            print(f"{sampler:<10}{steps:>6}{model_s:>10.2f}{total:>14.2f}{clip / total:>13.1f}")


if __name__ == "__main__":
    main()
