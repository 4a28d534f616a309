"""`render --ray`: a local Ray cluster (2 CPUs) makes the local batch's stems bit for bit,
resumes like it, and finishes every stem once when a worker process is killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from samuel_live.cli import main
from samuel_live.config import PostSection
from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, save_checkpoint
from samuel_live.model.unet import SamuelUNet, UNetConfig
from samuel_live.render.batch import find_takes, plan
from samuel_live.render.cluster import ModelSource, RayPool
from samuel_live.render.take import TakeSpec
from samuel_live.settings import GenerateSettings

TINY = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                  attn_levels=(1,), cross_attn_levels=(0, 1))
SETTINGS = GenerateSettings(sampler="ddim", steps=2, cfg=1.5, seed=0)
CLEAN = TakeSpec(source="", post=PostSection(preset="clean"))


ARGS = ["--variations", "2", "--seed", "10", "--device", "cpu", "--sampler", "ddim",
        "--steps", "2", "--cfg", "1.5", "--post", "clean", "-q"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A tiny checkpoint, 3 takes, and their 3 x 2 stems rendered by the local CLI with one
    thread (OMP_NUM_THREADS=1, as Ray starts each 1-CPU worker: BLAS sums split by thread)."""
    root = tmp_path_factory.mktemp("ray")
    torch.manual_seed(0)
    net = SamuelUNet(TINY)
    for p in net.parameters():  # the output conv starts at zero: give it signal
        p.data.add_(0.01 * torch.randn_like(p))
    stats = LatentStats((-5.0,) * 64, (2.0,) * 64, (-5.0,) * 64, (2.0,) * 64)
    ckpt = save_checkpoint(root / "tiny", net.state_dict(),
                           CheckpointMeta(model=TINY.to_dict(), codec="harmonic", stats=stats))
    (root / "in").mkdir()
    for i, sec in enumerate((1.5, 2.25, 3.0)):
        t = np.arange(int(sec * 44100)) / 44100
        sf.write(root / "in" / f"take{i}.wav", 0.2 * np.sin(2 * np.pi * (220 + 50 * i) * t),
                 44100)
    subprocess.run([sys.executable, "-m", "samuel_live.cli", "render", str(root / "in"),
                    "--out", str(root / "local"), "--model", str(ckpt), *ARGS],
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True, timeout=300)
    return root, ckpt, find_takes([root / "in"])


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if not p.name.startswith("manifest"))
    assert names == sorted(p.name for p in b.iterdir() if not p.name.startswith("manifest"))
    assert len([n for n in names if n.endswith(".wav")]) == 6
    for name in names:
        if name.endswith(".json"):  # sidecars: all but the timings
            x, y = (json.loads((f / name).read_text()) for f in (a, b))
            x.pop("timings"), y.pop("timings")
            assert x == y, name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_ray_render_equals_local_and_resumes(cluster, batch):
    root, ckpt, takes = batch
    out = root / "ray"
    argv = ["render", str(root / "in"), "--out", str(out), "--model", str(ckpt), *ARGS,
            "--ray", "auto"]
    assert main(argv) == 0  # joins the running cluster
    _same_files(root / "local", out)
    local = json.loads((root / "local" / "manifest.json").read_text())
    remote = json.loads((out / "manifest.json").read_text())
    for stems in (local["stems"], remote["stems"]):
        for s in stems:
            s.pop("seconds")
            s["path"], s["midi"] = Path(s["path"]).name, Path(s["midi"]).name
    assert remote == local
    # resume: a lost stem is rendered again, the others kept untouched
    jobs = plan(takes, 2, 10, out, "wav")
    jobs[3].path.unlink()
    mtime = jobs[0].path.stat().st_mtime_ns
    with RayPool(None, ModelSource(str(ckpt), "cpu"), workers=1) as pool:
        again = pool.render(jobs, SETTINGS, CLEAN, out)
    assert [r.status for r in again] == ["kept"] * 3 + ["rendered"] + ["kept"] * 2
    assert jobs[0].path.stat().st_mtime_ns == mtime
    _same_files(root / "local", out)


def test_killed_worker_still_completes_every_stem_once(cluster, batch):
    root, ckpt, takes = batch
    out = root / "killed"
    jobs = plan(takes, 2, 10, out, "wav")
    with RayPool(None, ModelSource(str(ckpt), "cpu"), workers=2) as pool:
        victim = pool.pids()[0]
        timers: list[threading.Timer] = []

        def kill_soon(_record) -> None:  # by then both workers are busy with a stem
            if not timers:
                timers.append(threading.Timer(0.3, os.kill, (victim, signal.SIGKILL)))
                timers[0].start()

        records = pool.render(jobs, SETTINGS, CLEAN, out, on_record=kill_soon)
        timers[0].join()
        assert victim not in pool.pids()  # it died and Ray started another
    assert [r.status for r in records] == ["rendered"] * 6
    assert sorted(r.path for r in records) == sorted(str(j.path) for j in jobs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(s["path"] for s in manifest["stems"]) == sorted(str(j.path) for j in jobs)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written
    _same_files(root / "local", out)


def test_render_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "take.wav", np.zeros(44100), 44100)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code = main(["render", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--ray"])
    assert code == 1
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err
