"""Scaling on this machine: training samples/s with 1 and 2 DDP processes, render stems/minute
and ``prepare`` sources/minute locally and on a local Ray cluster.

    python bench/scaling.py [--train-steps 6] [--takes 4] [--seconds 6] [--steps 8] [--songs 8]

Training: the starter architecture on random latents, the global batch (16) split over the
processes, each started as torchrun would (env contract, gloo) with one torch thread; one
process with all threads is shown too. Rendering: the starter model (random weights of its
architecture if none is installed), ``--takes`` synthetic takes x 2 variations; local is one
process with torch's default threads, Ray is one 1-thread actor per CPU. Prepare: ``--songs``
synthetic stem folders of 50 s encoded with the harmonic codec, the whole ``prepare`` call
timed (process or actor start included; the Ray cluster itself is started beforehand, as
``ray start`` would be).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.multiprocessing as mp

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.model.checkpoint import LatentStats
from samuel_live.pipeline import STARTER_MODEL
from samuel_live.render.take import TakeSpec
from samuel_live.settings import GenerateSettings
from samuel_live.train.distributed import World, process_group
from samuel_live.train.trainer import TrainConfig, Trainer

WINDOWS, FRAMES = 32, 256


def _data() -> tuple[torch.Tensor, torch.Tensor, dict]:
    g = torch.Generator().manual_seed(0)
    vocal = torch.randn(WINDOWS, 64, FRAMES, generator=g) - 4
    accomp = torch.roll(vocal, -7, dims=1) + 0.1 * torch.randn(WINDOWS, 64, FRAMES, generator=g)
    st = LatentStats.identity()
    manifest = {"codec": "harmonic", "stats": {
        "vocal": {"mean": [-4.0] * 64, "std": [1.0] * 64},
        "accomp": {"mean": list(st.accomp_mean), "std": [1.0] * 64}}}
    return vocal, accomp, manifest


def _train(rank: int, size: int, port: int, cfg: TrainConfig, steps: int, out: Path) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    world = World.from_env()
    with process_group(world, torch.device("cpu"), 300):
        tr = Trainer(cfg, *_data(), world=world)
        tr.train_step()  # warm-up
        torch.distributed.barrier() if world.distributed else None
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step()
        if world.main:
            (out / "seconds").write_text(str(time.perf_counter() - t0))


def train_rate(size: int, threads: int, steps: int, root: Path) -> float:
    """Samples per second of a run of ``size`` processes with ``threads`` threads each."""
    out = root / f"train{size}x{threads}"
    cfg = TrainConfig(out=str(out), batch_size=16, crop_frames=FRAMES, max_steps=10_000,
                      device="cpu", threads=threads, eval_every=10_000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out.mkdir(parents=True)
    mp.start_processes(_train, args=(size, port, cfg, steps, out), nprocs=size,
                       start_method="spawn")
    return steps * cfg.batch_size / float((out / "seconds").read_text())


def render_rate(ray_pool: bool, takes: int, seconds: float, steps: int, root: Path,
                threads: int = 0) -> float:
    """Stems per minute for ``takes`` takes x 2 variations (local: ``threads`` torch threads,
    0 = torch's default)."""
    from samuel_live.pipeline import Accompanist
    from samuel_live.render.batch import find_takes, plan, render
    from samuel_live.render.cluster import ModelSource, RayPool

    folder = root / "takes"
    if not folder.exists():
        folder.mkdir()
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        for i in range(takes):
            sf.write(folder / f"t{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 30 * i) * t),
                     SAMPLE_RATE)
    out = root / ("ray" if ray_pool else f"local{threads}")
    jobs = plan(find_takes([folder]), 2, 0, out, "wav")
    warm = plan(find_takes([folder]), 1, 0, root / f"warm-{out.name}", "wav")
    settings = GenerateSettings("dpmpp_2m", steps, 3.0, 0)
    spec = TakeSpec(source="", post=PostSection(preset="clean"))
    if ray_pool:
        with RayPool(None, ModelSource(str(STARTER_MODEL), "cpu")) as pool:
            pool.render(warm[:len(pool.actors)], settings, spec, warm[0].path.parent)
            t0 = time.perf_counter()
            pool.render(jobs, settings, spec, out)
            dt = time.perf_counter() - t0
    else:
        default = torch.get_num_threads()
        torch.set_num_threads(threads or default)
        acc = Accompanist.load(None, "cpu")
        render(acc, warm[:1], settings, spec, warm[0].path.parent)
        t0 = time.perf_counter()
        render(acc, jobs, settings, spec, out)
        dt = time.perf_counter() - t0
        torch.set_num_threads(default)
    return len(jobs) / dt * 60


def prepare_rate(processes: int, ray: bool, songs: int, root: Path) -> float:
    """Sources per minute of ``prepare`` over ``songs`` stem folders (1 window each)."""
    from samuel_live.audio.io import write_audio_atomic
    from samuel_live.train.prepare import PrepareConfig, prepare

    folder = root / "songs"
    if not folder.exists():
        t = np.arange(50 * SAMPLE_RATE) / SAMPLE_RATE
        for i in range(songs):
            (folder / f"s{i}").mkdir(parents=True)
            for name, hz in (("vocals", 440.0 + 20 * i), ("accompaniment", 110.0 + 5 * i)):
                mono = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
                write_audio_atomic(folder / f"s{i}" / f"{name}.wav", np.stack([mono, mono]),
                                   bit_depth=16)
    out = root / f"shards-{processes}-{ray}"
    config = PrepareConfig(codec="harmonic", processes=processes, ray="auto" if ray else None)
    t0 = time.perf_counter()
    manifest = prepare(folder, out, config)
    dt = time.perf_counter() - t0
    assert len(manifest["sources"]) == songs, manifest["skipped"]
    return songs / dt * 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--takes", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--steps", type=int, default=8, help="sampler steps per stem")
    ap.add_argument("--songs", type=int, default=8, help="prepare: 50 s stem folders")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--only-prepare", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"{cores} CPU cores, torch {torch.__version__}, no GPU used", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _prepare_rows(args, root)
        if args.only_prepare:
            return
        print("training (starter architecture, global batch 16, 256 frames):")
        for size, threads in ((1, 1), (2, 1), (1, cores or 1)):
            rate = train_rate(size, threads, args.train_steps, root)
            print(f"  {size} process(es) x {threads} thread(s): {rate:6.1f} samples/s",
                  flush=True)
        if not STARTER_MODEL.exists():
            sys.exit("no starter model installed: the render half needs it")
        print(f"render ({args.takes} takes x 2 variations, {args.seconds:g} s, "
              f"dpmpp_2m {args.steps} steps):")
        for threads in (1, 0):
            rate = render_rate(False, args.takes, args.seconds, args.steps, root, threads)
            print(f"  local (1 process, {threads or torch.get_num_threads()} thread(s)): "
                  f"{rate:6.1f} stems/min", flush=True)
        if not args.skip_ray:
            rate = render_rate(True, args.takes, args.seconds, args.steps, root)
            print(f"  Ray (local cluster, 1-thread actor per CPU): {rate:6.1f} stems/min")


def _prepare_rows(args: argparse.Namespace, root: Path) -> None:
    print(f"prepare ({args.songs} stem folders of 50 s, harmonic codec):")
    for processes in (1, 2):
        rate = prepare_rate(processes, False, args.songs, root)
        print(f"  local ({processes} process(es)): {rate:6.1f} sources/min", flush=True)
    if not args.skip_ray:
        import ray

        ray.init(include_dashboard=False, logging_level="WARNING")
        try:
            rate = prepare_rate(1, True, args.songs, root)
        finally:
            ray.shutdown()
        print(f"  Ray (local cluster, 1-thread actor per CPU): {rate:6.1f} sources/min",
              flush=True)


if __name__ == "__main__":
    main()
