"""Capture while torch keeps the CPU busy, as a generation would: do we lose input frames?

    JACK_DEFAULT_SERVER=name .venv/bin/python bench/capture.py --seconds 20 [--threads N]

--threads defaults to the engine's setting for generation (one less than the CPU cores).

Prints callbacks, overflows, and frames captured versus the frames the elapsed time implies.
Default device: JACK "system" when JACK_DEFAULT_SERVER is set, else PortAudio's default input.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from samuel_live import SAMPLE_RATE
from samuel_live.audio.capture import Capture, CaptureConfig
from samuel_live.engine.engine import default_threads


def burn(stop: threading.Event, threads: int, counter: list[int]) -> None:
    """Conv1d + matmul forwards on ``threads`` torch threads until ``stop`` is set."""
    import torch

    torch.set_num_threads(threads)
    conv = torch.nn.Conv1d(64, 64, 9, padding=4)
    x = torch.randn(2, 64, 4096)
    w = torch.randn(1024, 1024)
    with torch.inference_mode():
        while not stop.is_set():
            y = conv(x)
            _ = (y.reshape(-1, 1024)[:1024] @ w).sum()
            counter[0] += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="torch threads (0: no load; default: the engine's, cores - 1)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--hostapi", default=None)
    ap.add_argument("--blocksize", type=int, default=512)
    args = ap.parse_args()
    device, hostapi = args.device, args.hostapi
    if device is None and hostapi is None and os.environ.get("JACK_DEFAULT_SERVER"):
        device, hostapi = "system", "JACK Audio Connection Kit"
    config = CaptureConfig(device=device, hostapi=hostapi, blocksize=args.blocksize)

    stop, steps = threading.Event(), [0]
    load = threading.Thread(target=burn, args=(stop, args.threads, steps), daemon=True)
    with Capture(config) as cap:
        if args.threads > 0:
            load.start()
            time.sleep(2.0)  # torch warm-up before measuring
        cap.fetch_and_reset_stats()
        cap.arm()
        t0 = time.monotonic()
        time.sleep(args.seconds)
        stats = cap.fetch_and_reset_stats()
        elapsed = time.monotonic() - t0
        level = cap.level()
    stop.set()
    if load.is_alive():
        load.join()  # a torch thread still running at interpreter exit aborts the process
    expected = elapsed * stats.samplerate
    print(f"device        {stats.device} @ {stats.samplerate} Hz, blocksize {args.blocksize}")
    print(f"load          torch {args.threads} threads, {steps[0]} forward steps")
    print(f"elapsed       {elapsed:.2f} s")
    print(f"callbacks     {stats.callbacks}")
    print(f"overflows     {stats.overflows}   underflows {stats.underflows}")
    print(f"device frames {stats.frames} (expected {expected:.0f}, "
          f"{100 * stats.frames / expected:.2f}%)")
    print(f"ring frames   {stats.written} at {SAMPLE_RATE} Hz, dropped {stats.dropped}")
    print(f"level         peak {level[0]:.1f} dBFS, rms {level[1]:.1f} dBFS")


if __name__ == "__main__":
    main()
