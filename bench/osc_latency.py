"""OSC round-trip latency while the engine generates.

Starts an engine (a real checkpoint with --model, else a random model of the default width),
measures ping and generate->ack round trips over UDP with the engine idle, then again while a
long generation runs, and prints p50/p99 for each. The client runs in a separate process, as a
DAW would, so its own Python does not compete with the server's for the GIL. The capture ring
has the engine's headroom (60 s); the worker uses the engine's torch threads unless --threads.

    .venv/bin/python bench/osc_latency.py [--model PATH] [--threads N] [--pings 300] [--acks 60]
        [--ack-interval 0.02]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.audio.sources import MemorySource
from samuel_live.config import load_config
from samuel_live.engine.engine import CAPTURE_HEADROOM_S, Engine, default_threads
from samuel_live.osc.client import OscClient
from samuel_live.osc.server import OscServer
from samuel_live.pipeline import Accompanist


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ping_rtts(client: OscClient, n: int, interval: float) -> list[float]:
    rtts = []
    for token in range(n):
        t0 = time.perf_counter()
        client.send("/samuel/ping", token)
        client.wait_for("/samuel/pong", 5.0, (token,))
        rtts.append(time.perf_counter() - t0)
        time.sleep(interval)
    return rtts


def ack_rtts(client: OscClient, n: int, interval: float) -> list[float]:
    rtts = []
    for i in range(n):
        t0 = time.perf_counter()
        client.send("/samuel/generate", "capture", f"bench-{i}", 0, 25, -1.0, "-", "-", 1)
        job = client.wait_for("/samuel/generate/ack", 5.0).args[0]
        rtts.append(time.perf_counter() - t0)
        client.send("/samuel/cancel", int(job))  # keep the queue short: only the ack counts
        client.wait_for("/samuel/cancel/reply", 5.0, (int(job), 1))
        time.sleep(interval)
    return rtts


def measure(port: int, pings: int, acks: int,
            ack_interval: float = 0.02) -> tuple[list[float], list[float]]:
    """Ping and generate->ack round trips from this (client) process."""
    with OscClient("127.0.0.1", port) as pinger, OscClient("127.0.0.1", port) as requester:
        return ping_rtts(pinger, pings, 0.005), ack_rtts(requester, acks, ack_interval)


def measure_elsewhere(port: int, pings: int, acks: int,
                      ack_interval: float = 0.02) -> tuple[list[float], list[float]]:
    """``measure`` in a fresh client process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (port, pings, acks, ack_interval))


def report(name: str, rtts: list[float]) -> str:
    ms = [r * 1000 for r in rtts]
    return (f"{name:<32} n={len(ms):4d}  p50 {statistics.median(ms):7.2f} ms  "
            f"p99 {percentile(ms, 99):7.2f} ms  max {max(ms):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint; default: random model, default width")
    parser.add_argument("--seconds", type=float, default=WINDOW_SAMPLES / SAMPLE_RATE,
                        help="length of the take (default: one 47.55 s window)")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--acks", type=int, default=60)
    parser.add_argument("--ack-interval", type=float, default=0.02,
                        help="seconds between generate requests (each starts a 17 MB capture "
                             "copy; 0.02 is a stress test, a DAW sends one per take)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="torch threads of the engine's worker (default: cores - 1)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="samuel-bench-"))
    config = load_config(None, [f"render.folder={folder}", "server.udp_port=0",
                                "server.tcp_port=-1", "post.preset=clean"])
    model = Accompanist.load(args.model) if args.model else Accompanist.random()
    t = np.arange(int(args.seconds * SAMPLE_RATE)) / SAMPLE_RATE
    vocal = np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    capture = MemorySource(vocal, seconds=config.capture.seconds + CAPTURE_HEADROOM_S)
    engine = Engine(config, accompanist=model, capture=capture, threads=args.threads).start()
    engine.arm()
    server = OscServer(engine, config.server).start()
    info = model.info()
    print(f"model {info['name']} ({info['params'] / 1e6:.1f}M params) on {info['device']}, "
          f"take {args.seconds:g} s, torch threads {args.threads}, server udp {server.udp_port}")
    pings, acks = measure_elsewhere(server.udp_port, args.pings, args.acks, args.ack_interval)
    lines = [report("ping, engine idle", pings), report("generate->ack, engine idle", acks)]
    long_job = engine.submit("capture", "bench-long", steps=800, priority=9)
    while long_job.step < 1:  # measure only while the model is actually sampling
        time.sleep(0.01)
    t0 = time.monotonic()
    pings, acks = measure_elsewhere(server.udp_port, args.pings, args.acks, args.ack_interval)
    busy, steps = time.monotonic() - t0, long_job.step
    engine.cancel(long_job.id)
    lines += [report("ping, during generation", pings),
              report("generate->ack, during generation", acks)]
    print("\n".join(lines))
    print(f"the generation ran throughout ({steps} sampler steps in {busy:.1f} s, "
          f"{busy / max(steps, 1):.2f} s/step); server stats {server.stats}")
    server.close()
    engine.close()


if __name__ == "__main__":
    main()
