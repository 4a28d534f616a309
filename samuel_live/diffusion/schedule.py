"""The cosine noise schedule and the v-parameterisation identities (paper section IV-C).

Index ``t`` runs 0..steps-1 with 0 the least noisy step. With ``a = abar_t``:

    x_t = sqrt(a) x0 + sqrt(1-a) eps
    v   = sqrt(a) eps - sqrt(1-a) x0
    x0  = sqrt(a) x_t - sqrt(1-a) v
    eps = sqrt(1-a) x_t + sqrt(a) v
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from samuel_live.errors import SamuelError

SCHEDULE_KINDS = ("cosine",)


@dataclass(frozen=True)
class ScheduleConfig:
    """Which noise schedule: the paper uses cosine, s = 0.008, 800 steps."""

    kind: str = "cosine"
    steps: int = 800
    s: float = 0.008

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise SamuelError(f"unknown schedule {self.kind!r}; choose one of {SCHEDULE_KINDS}")
        if self.steps < 2:
            raise SamuelError(f"schedule steps must be at least 2, got {self.steps}")


def cosine_alphas_cumprod(steps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal's cosine schedule, betas clipped to [1e-4, 0.9999], as float64."""
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    betas = (1 - abar[1:] / abar[:-1]).clamp(1e-4, 0.9999)
    return torch.cumprod(1 - betas, dim=0)


class Schedule:
    """Holds ``alphas_cumprod`` (float64, [steps]) and converts between x0, eps, v and x_t.

    Coefficients are computed in float64 and cast to the dtype of ``x`` so float32 callers keep
    float32 tensors while float64 callers (tests, oracles) get full precision.
    """

    def __init__(self, config: ScheduleConfig | None = None) -> None:
        self.config = config or ScheduleConfig()
        self.alphas_cumprod = cosine_alphas_cumprod(self.config.steps, self.config.s)

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: Tensor) -> Schedule:
        """Rebuild a schedule from a stored table (e.g. a model's buffer)."""
        schedule = cls(ScheduleConfig(steps=int(alphas_cumprod.numel())))
        schedule.alphas_cumprod = alphas_cumprod.detach().to("cpu", torch.float64).clone()
        return schedule

    @property
    def steps(self) -> int:
        return int(self.alphas_cumprod.numel())

    def abar(self, t: Tensor) -> Tensor:
        """abar_t for a LongTensor of indices, float64, on the indices' device."""
        return self.alphas_cumprod.to(t.device)[t.long()]

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio abar / (1 - abar), float64."""
        a = self.abar(t)
        return a / (1 - a)

    def _coefs(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """(sqrt(abar), sqrt(1-abar)) shaped to broadcast against ``x`` ([B, ...])."""
        a = self.abar(t.to(x.device))
        shape = (-1,) + (1,) * (x.dim() - 1)
        return a.sqrt().to(x.dtype).view(shape), (1 - a).sqrt().to(x.dtype).view(shape)

    def q_sample(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Noise clean ``x0`` to step ``t`` with the given standard normal ``eps``."""
        sa, sb = self._coefs(t, x0)
        return sa * x0 + sb * eps

    def v_target(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """The velocity the network learns: sqrt(abar) eps - sqrt(1-abar) x0."""
        sa, sb = self._coefs(t, x0)
        return sa * eps - sb * x0

    def x0_from_v(self, x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
        sa, sb = self._coefs(t, x_t)
        return sa * x_t - sb * v

    def eps_from_v(self, x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
        sa, sb = self._coefs(t, x_t)
        return sb * x_t + sa * v
