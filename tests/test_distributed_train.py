"""DDP training on CPU (gloo), processes started as torchrun would (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT): 2 processes train as 1 with the same global batch, a dead or hung
process ends the run with a message and a checkpoint, and resuming it equals an unbroken run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from test_train import TINY, _data

from samuel_live.errors import ClusterError, InvalidArgumentError
from samuel_live.train.distributed import World, process_group
from samuel_live.train.trainer import TrainConfig, Trainer


def _cfg(out: Path, **kw: object) -> TrainConfig:
    base = dict(out=str(out), model=TINY, batch_size=4, crop_frames=32, short_crops=True,
                max_steps=4,
                warmup_steps=1, eval_every=2, lr=2e-3, device="cpu", weighting="min_snr",
                transpose=2, gain_db=3.0, threads=1, dist_timeout_s=60.0)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _rank(rank: int, size: int, port: int, cfg: TrainConfig, resume: bool,
          fail_at: int, how: str) -> None:
    """One process of the run, as torchrun would start it. ``fail_at``: this process dies
    (``how="die"``) or stops answering (``"hang"``) in the forward pass of that step."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    world = World.from_env()
    out = Path(cfg.out)
    report: dict[str, object] = {}
    try:
        with process_group(world, torch.device("cpu"), cfg.dist_timeout_s):
            tr = Trainer(cfg, *_data(8, 48), world=world)
            if resume:
                tr.load_state(out / "train_state.pt")
            if fail_at:
                calls = [0]

                def fail(*_: object) -> None:
                    calls[0] += 1
                    if calls[0] == fail_at:
                        if how == "die":
                            os._exit(3)
                        time.sleep(120)

                tr.model.register_forward_pre_hook(fail)
            res = tr.run(progress=False)
            report["step"] = res.step
            torch.save(tr.model.state_dict(), out / f"rank{rank}.pt")
    except ClusterError as exc:
        report["error"] = str(exc)
    (out / f"rank{rank}.json").write_text(json.dumps(report))


def _spawn(cfg: TrainConfig, size: int = 2, resume: bool = False, fail: int = -1,
           fail_at: int = 0, how: str = "die") -> list[mp.Process]:
    """Start ``size`` processes (``fail`` is the rank that fails) and wait for rank 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(r, size, port, cfg, resume,
                                             fail_at if r == fail else 0, how))
             for r in range(size)]
    for p in procs:
        p.start()
    procs[0].join(timeout=240)
    assert procs[0].exitcode == 0, "rank 0 hung or crashed"
    return procs


def _report(out: Path, rank: int = 0) -> dict:
    return json.loads((out / f"rank{rank}.json").read_text())


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    """An unbroken 2-process run: 4 steps, a checkpoint every 2."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    for p in _spawn(_cfg(out)):
        p.join(timeout=60)
    return out


def test_two_processes_train_as_one_with_the_same_global_batch(two, tmp_path):
    one = Trainer(_cfg(tmp_path / "one"), *_data(8, 48))
    one.run(progress=False)
    assert _report(two) == _report(two, 1) == {"step": 4}
    w0, w1 = (torch.load(two / f"rank{r}.pt") for r in (0, 1))
    for k, v in one.model.state_dict().items():
        assert torch.equal(w0[k], w1[k]), k  # DDP keeps the ranks identical
        torch.testing.assert_close(w0[k], v, rtol=1e-4, atol=1e-5, msg=k)
    # only rank 0 wrote the run's files: one log row per evaluation, not one per rank
    assert (two / "loss.csv").read_text().count("\n") == 3
    state = torch.load(two / "train_state.pt", weights_only=True)
    for k, v in one.ema.state_dict().items():
        torch.testing.assert_close(state["ema"][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_dead_process_ends_the_run_and_resume_equals_an_unbroken_run(two, tmp_path):
    out = tmp_path / "broken"
    procs = _spawn(_cfg(out), fail=1, fail_at=3)  # rank 1 dies in step 3
    procs[1].join(timeout=30)
    assert procs[1].exitcode == 3
    error = _report(out)["error"]
    assert "lost the other processes at step 2" in error
    assert "checkpoint (step 2)" in error and "--resume" in error
    for p in _spawn(_cfg(out), resume=True):
        p.join(timeout=60)
    assert _report(out) == {"step": 4}
    for rank in (0, 1):
        got, want = (torch.load(d / f"rank{rank}.pt") for d in (out, two))
        for k in want:
            assert torch.equal(got[k], want[k]), k


def test_hung_process_times_out_instead_of_hanging(tmp_path):
    out = tmp_path / "hung"
    t0 = time.monotonic()
    procs = _spawn(_cfg(out, dist_timeout_s=5.0), fail=1, fail_at=2, how="hang")
    assert time.monotonic() - t0 < 200  # generous: the timeout is 5 s
    procs[1].kill()
    assert "lost the other processes at step 1" in _report(out)["error"]


def test_global_batch_must_split_over_the_processes():
    assert World(1, 2).rows(8) == slice(4, 8)
    with pytest.raises(InvalidArgumentError, match="multiple of 3"):
        World(0, 3).rows(16)
    assert World.from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}) == World(1, 2, 1)
    assert World.from_env({}) == World()


def test_samuel_live_train_under_torchrun(tmp_path):
    """The real launcher and CLI: `torchrun --nproc-per-node 2 -m samuel_live.cli train`."""
    from samuel_live.train.shards import shard_name, write_shard

    vocal, accomp, manifest = _data(8, 48)
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard(shards / shard_name(0), vocal, accomp, torch.arange(8) % 4 == 0)
    (shards / "manifest.json").write_text(json.dumps(
        {**manifest, "shards": [{"file": shard_name(0), "windows": 8}]}))
    model = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
    (tmp_path / "run.toml").write_text(
        f'[train]\ndata = "{shards}"\nout = "{tmp_path / "run"}"\nbatch_size = 4\n'
        'crop_frames = 32\nshort_crops = true\nmax_steps = 2\nwarmup_steps = 1\n'
        'eval_every = 2\ndevice = "cpu"\n'
        f"threads = 1\n[model]\n{model}\n")
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m",
                           "samuel_live.cli", "train", str(tmp_path / "run.toml")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DDP: 2 processes (gloo), 2 rows each: effective batch 4, lr 0.00035" in done.stderr
    assert (tmp_path / "run" / "model.safetensors").exists()
    assert (tmp_path / "run" / "loss.csv").read_text().count("\n") == 2  # rank 0's row only
    assert done.stdout.count("step 2:") == 2  # each process reports how its run ended
