"""Time the default post chain on one 47.55 s stereo window: seconds and x real time.

Run: .venv/bin/python bench/post.py [--preset NAME] [--repeats N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.config import PostSection
from samuel_live.post import build_chain


def make_signal(n: int, seed: int = 0) -> np.ndarray:
    """Plucked-chord-like stereo material with noise, peaking near full scale."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    beat = np.exp(-3.0 * (t % 0.5))  # a decaying hit every half second
    chord = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 277.2, 329.6, 440.0))
    left = 0.15 * chord * beat + 0.05 * rng.standard_normal(n)
    right = 0.15 * np.roll(chord, 64) * beat + 0.05 * rng.standard_normal(n)
    return np.stack([left, right]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    audio = make_signal(WINDOW_SAMPLES)
    seconds_audio = WINDOW_SAMPLES / SAMPLE_RATE
    chain = build_chain(PostSection(preset=args.preset))
    times = []
    for _ in range(max(1, args.repeats)):
        start = time.perf_counter()
        chain.process(audio)
        times.append(time.perf_counter() - start)
    best, first = min(times), times[0]
    print(f"preset {args.preset!r}, {seconds_audio:.2f} s stereo at {SAMPLE_RATE} Hz")
    print(f"first call {first:.3f} s ({seconds_audio / first:.0f}x real time)")
    print(f"best of {len(times)} {best:.3f} s ({seconds_audio / best:.0f}x real time)")


if __name__ == "__main__":
    main()
