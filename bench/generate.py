"""Seconds per 47.55 s clip end to end, the U-Net's sustained GFLOP/s, and that rate as a
fraction of this machine's own bf16 matmul rate (measured in the same run).

    python bench/generate.py                          # shipped defaults + 10 + 8 steps, fp32/bf16
    python bench/generate.py --steps 15 6 4 --precisions bfloat16 --repeats 5
    python bench/generate.py --random-default-width   # the paper's ~15.5M model, random weights
    python bench/generate.py --model samuel_live/models/starter-teacher samuel_live/models/starter
    python bench/generate.py --device cuda --steps 25 800

Each row is one (model, sampler, steps, precision). The rows run interleaved, ``--repeats``
rounds, so load from other jobs on a shared box hits every row alike (several ``--model``s
give paired before/after figures); medians are printed with the
[min, max] of the rounds. End to end = accompany_latent (encode + sample) + decode + post
chain; the encode, decode and post columns are timed separately on the same round.
"forwards" counts the U-Net's batch items per clip (2 per guided step, 1 per step below the
guidance interval and per step of a guidance-distilled model at its own cfg). GFLOP/s is
those forwards' FLOPs (FlopCounterMode, at batch 1) over the sampling time (end to end less
encode, decode and post); "of bf16 peak" divides it by the 2048 x 2048 bf16 matmul rate
measured before and after the rows (median of both).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from statistics import median

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from samuel_live import LATENT_FRAMES, SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.config import PostSection
from samuel_live.device import NUMPY_BLAS_THREADS, cpu_has_fast_bf16, limit_numpy_blas
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import STARTER_MODEL, Accompanist
from samuel_live.post.chain import build_chain
from samuel_live.settings import GenerateSettings


def _attention_flop(query_shape: tuple[int, ...], key_shape: tuple[int, ...],
                    value_shape: tuple[int, ...], *_args: object, **_kwargs: object) -> int:
    """QK^T and PV of scaled dot-product attention: 2 * B * H * Tq * Tk * (Dqk + Dv)."""
    *lead, t_q, d = query_shape
    return 2 * math.prod(lead) * t_q * key_shape[-2] * (d + value_shape[-1])


def forward_gflops(acc: Accompanist, batch: int) -> float:
    """GFLOPs of one U-Net forward at ``batch`` x 1024 frames (2 = one CFG step). SDPA's CPU
    flash kernel is not in FlopCounterMode's table (it would count as 0), so it is added."""
    m = acc.model
    x = torch.randn(batch, m.config.latent_channels, LATENT_FRAMES, device=acc.device)
    t = torch.full((batch,), 400, dtype=torch.long, device=acc.device)
    extra = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flop}
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=extra) as fc:
        m(x, t, x)
    return fc.get_total_flops() / 1e9


def forwards_per_clip(acc: Accompanist, vocal: np.ndarray, settings: GenerateSettings) -> int:
    """U-Net forwards (batch items) one clip of ``vocal``'s window count samples with: steps x 2
    under guidance, less the steps guidance leaves out (``GUIDANCE_MAX_LAMBDA``)."""
    net, items = acc.net, []
    denoise = net.denoise

    def counting(x: torch.Tensor, *args: object) -> torch.Tensor:
        items.append(x.shape[0])
        return denoise(x, *args)

    net.denoise = counting  # type: ignore[method-assign]
    try:
        acc.accompany_latent(vocal, settings)
    finally:
        del net.denoise
    return sum(items)


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048,
                  reps: int = 5) -> float:
    """Median GFLOP/s of an n x n x n matmul in ``dtype`` (one warm-up)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    times = []
    for i in range(reps + 1):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / median(times) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic_vocal(seconds: float) -> np.ndarray:
    """A sung-like melody: a vibrato tone stepping through a major scale."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    notes = 60 + np.array([0, 2, 4, 5, 7, 9, 11, 12])[(t // 0.75).astype(int) % 8]
    f = 440 * 2 ** ((notes - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    y = 0.3 * (np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase))
    return np.stack([y, y]).astype(np.float32)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def one_clip(acc: Accompanist, vocal: np.ndarray, settings: GenerateSettings,
             chain: object) -> dict[str, float]:
    """Seconds of each stage for one clip: encode, latent (encode + sample), decode, post."""
    encode, _ = _timed(lambda: acc.encode_vocal(vocal))
    latent_s, latent = _timed(lambda: acc.accompany_latent(vocal, settings))
    decode, audio = _timed(lambda: acc.decode(latent, vocal.shape[-1]))  # type: ignore[arg-type]
    post, _ = _timed(lambda: chain.process(audio))  # type: ignore[attr-defined]
    return {"encode": encode, "sample": max(latent_s - encode, 1e-9), "decode": decode,
            "post": post, "total": latent_s + decode + post}


def _fmt(values: list[float]) -> str:
    return f"{median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def _load(model: str | None, device: str) -> Accompanist:
    if model == "random-default-width" or not (model or STARTER_MODEL.exists()):
        return Accompanist.random(UNetConfig(), device=device)
    return Accompanist.load(model, device=device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=[None],
                    help="checkpoint(s); several run interleaved (paired before/after); "
                         "default: the starter model")
    ap.add_argument("--random-default-width", action="store_true",
                    help="the paper-width model (UNetConfig defaults) with random weights "
                         "(instead of --model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samplers", nargs="+", help="default: the checkpoint's sampler")
    ap.add_argument("--steps", nargs="+", type=int,
                    help="default: the checkpoint's steps, then 10 and 8")
    ap.add_argument("--cfg", type=float, help="default: each checkpoint's cfg")
    ap.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"],
                    choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=NUMPY_BLAS_THREADS,
                    help="NumPy's BLAS threads; the CLI and the engine use %(default)s")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    limit_numpy_blas(args.blas_threads)
    names = ["random-default-width"] if args.random_default_width else args.model
    models: dict[str, Accompanist] = {}
    for name in names:  # labelled by file stem, numbered where two stems are the same
        acc = _load(name, args.device)
        stem = label = acc.info()["name"]
        while label in models:
            label = f"{stem}#{len(models) + 1}"
        models[label] = acc
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {torch.get_num_threads()} torch threads, {args.blas_threads} NumPy "
          f"BLAS threads, torch {torch.__version__}, native bf16 CPU: {cpu_has_fast_bf16()}")
    vocal = synthetic_vocal(WINDOW_SAMPLES / SAMPLE_RATE)
    clip = WINDOW_SAMPLES / SAMPLE_RATE
    chain = build_chain(PostSection())
    rows, items, gflop = [], {}, {}
    for label, acc in models.items():
        info = acc.info()
        defaults = info.get("sampler_defaults") or {}
        samplers = args.samplers or [defaults.get("sampler", "dpmpp_2m")]
        steps_list = args.steps or list(dict.fromkeys([int(defaults.get("steps", 15)), 10, 8]))
        cfg = args.cfg if args.cfg is not None else float(defaults.get("cfg", 3.0))
        distilled = "" if acc.distilled_cfg is None else f", guidance-distilled at cfg " \
            f"{acc.distilled_cfg:g}"
        gflop[label] = forward_gflops(acc, 1)
        print(f"model {info['name']} ({info['params'] / 1e6:.2f}M params{distilled}), device "
              f"{acc.device}, cfg {cfg:g}; U-Net forward {gflop[label]:.2f} GFLOP at batch 1")
        for p in args.precisions:  # warm-up: first-call allocations and oneDNN kernel choice
            acc.set_precision(p)
            acc.accompany(vocal[:, : SAMPLE_RATE * 2], GenerateSettings(steps=2, cfg=cfg))
        for sm in samplers:
            for n in steps_list:
                s = GenerateSettings(sampler=sm, steps=n, cfg=cfg, seed=0)
                items[(label, s)] = forwards_per_clip(acc, vocal[:, : SAMPLE_RATE * 2], s)
                rows += [(label, s, p) for p in args.precisions]
    print(f"{args.repeats} interleaved rounds; a guided step runs batch 2, a step below the "
          "guidance interval (or of a guidance-distilled model at its cfg) batch 1")
    peaks = {dt: [matmul_gflops(dt, torch.device(args.device if args.device != "auto" else
                                                 next(iter(models.values())).device))]
             for dt in (torch.float32, torch.bfloat16)}
    results: dict[tuple, list[dict[str, float]]] = {r: [] for r in rows}
    for _ in range(args.repeats):
        for label, s, precision in rows:
            acc = models[label]
            acc.set_precision(precision)
            results[(label, s, precision)].append(one_clip(acc, vocal, s, chain))
    device = next(iter(models.values())).device
    for dt in peaks:
        peaks[dt].append(matmul_gflops(dt, device))
    fp32_peak, bf16_peak = median(peaks[torch.float32]), median(peaks[torch.bfloat16])
    print(f"2048^3 matmul: float32 {fp32_peak:.0f} GFLOP/s, bfloat16 {bf16_peak:.0f} GFLOP/s "
          f"(before/after: {', '.join(f'{v:.0f}' for v in peaks[torch.bfloat16])})")
    print(f"one {clip:.2f} s clip; seconds as median [min, max] of the rounds")
    print(f"{'model':<14}{'sampler':<16}{'steps':>5} {'cfg':>4} {'forwards':>8} "
          f"{'precision':<9} {'end-to-end s':>22} {'sample s':>22} {'encode':>7} {'decode':>7} "
          f"{'post':>6} {'GFLOP/s':>8} {'of bf16':>8} {'x RT':>6}")
    for (label, s, precision), runs in results.items():
        total = [r["total"] for r in runs]
        sample_s = [r["sample"] for r in runs]
        n = items[(label, s)]
        gflops = gflop[label] * n / median(sample_s)
        print(f"{label[:13]:<14}{s.sampler:<16}{s.steps:>5} {s.cfg:>4g} {n:>8} {precision:<9} "
              f"{_fmt(total):>22} {_fmt(sample_s):>22} "
              f"{median(r['encode'] for r in runs):>7.3f} "
              f"{median(r['decode'] for r in runs):>7.3f} {median(r['post'] for r in runs):>6.3f} "
              f"{gflops:>8.1f} {gflops / bf16_peak:>8.1%} {clip / median(total):>6.1f}")


if __name__ == "__main__":
    main()
