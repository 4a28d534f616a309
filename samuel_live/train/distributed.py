"""Training across processes with PyTorch's own DistributedDataParallel, started by torchrun.

torchrun (or anything that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)
starts one process per GPU, or several on CPUs. Every process reads the same global batch order
and trains on its own rows of each batch; DDP averages the gradients, so N processes of B/N
rows train as one process of B rows. NCCL on GPUs, gloo on CPUs. Collectives time out, so a
lost process ends the run with a message instead of a hang.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from samuel_live.errors import ClusterError, InvalidArgumentError

COMM_WORDS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket")


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> World:
        """The torchrun environment contract; one process when WORLD_SIZE is unset or 1."""
        size = int(env.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        try:
            return cls(int(env["RANK"]), size, int(env.get("LOCAL_RANK", "0")))
        except KeyError:
            raise ClusterError("WORLD_SIZE is set but RANK is not: start distributed training "
                               "with torchrun --nproc-per-node N") from None

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, EMA exports, logs and plots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def rows(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch``."""
        if batch % self.size:
            raise InvalidArgumentError(
                f"batch_size {batch} does not split over {self.size} processes: make it a "
                f"multiple of {self.size} (it is the global batch; each process takes a share)")
        per = batch // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def device(self, picked: torch.device) -> torch.device:
        """This rank's device: its own GPU (LOCAL_RANK) where the run is on CUDA."""
        if picked.type == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return picked


@contextmanager
def process_group(world: World, device: torch.device, timeout_s: float) -> Iterator[None]:
    """Join the run's process group (NCCL on CUDA, gloo otherwise) for the ``with`` body."""
    if not world.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size,
                                timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"rank {world.rank} could not join the other {world.size - 1} processes "
            f"({backend}): {_first_line(exc)}; check MASTER_ADDR/MASTER_PORT and that every "
            "node started the same torchrun command") from exc
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module to train through: DDP around ``model`` in a distributed run, else itself."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def mean(value: float, world: World, device: torch.device) -> float:
    """The mean of ``value`` over all ranks."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def from_main(value: float, world: World, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (others pass anything)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, 0)
    return float(t.item())


def anyone(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any."""
    if not world.distributed:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def is_lost_process(exc: BaseException, world: World) -> bool:
    """Whether ``exc`` is a collective failing because another process died, hung or lost
    the network (as opposed to an error of this process's own)."""
    if not world.distributed:
        return False
    if isinstance(exc, dist.DistError):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in COMM_WORDS)


def lost_process(world: World, step: int, saved: int | None, state: Path,
                 exc: BaseException) -> ClusterError:
    """The error that ends a run whose process group broke."""
    resume = (f"the last checkpoint (step {saved}) is {state}: run the same torchrun command "
              "with --resume" if saved is not None else "no checkpoint was written yet: "
              "start the run again")
    return ClusterError(
        f"rank {world.rank} of {world.size} lost the other processes at step {step} (one died, "
        f"hung or lost the network: {_first_line(exc)}); {resume}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
