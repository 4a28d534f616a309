"""The training objective: SNR-weighted MSE on v with per-example condition dropout."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samuel_live.diffusion.schedule import Schedule
from samuel_live.errors import SamuelError

if TYPE_CHECKING:
    from samuel_live.model.unet import SamuelUNet

WEIGHTINGS = ("snr", "min_snr", "none")


def drop_mask(
    batch: int,
    p: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Bool [batch]: True where the vocal is dropped (replaced by the learned null)."""
    u = torch.rand(batch, generator=generator, device=device)
    return u < p


def loss_weights(
    schedule: Schedule, t: Tensor, weighting: str, min_snr_gamma: float = 5.0
) -> Tensor:
    """Per-example weights (float64) for the v-MSE at steps ``t``.

    ``snr``: the paper's w = abar / (1 - abar), divided by its mean over all training steps.
    The division changes only the scale (so the learning rate means the same as unweighted):
    the optimum is the paper's. Nothing is clamped, so the objective stays the paper's; note
    that it puts most weight on the least noisy steps (SNR ~1e4 at t = 0) and almost none
    above t ~ 600. ``min_snr``: min(snr, gamma) / (snr + 1), Min-SNR-gamma for a v target
    (Hang et al. 2023), the better-conditioned alternative. ``none``: plain v-MSE.
    """
    if weighting == "none":
        return torch.ones(t.shape, dtype=torch.float64, device=t.device)
    snr = schedule.snr(t)
    if weighting == "snr":
        all_t = torch.arange(schedule.steps, device=t.device)
        return snr / schedule.snr(all_t).mean()
    if weighting == "min_snr":
        return snr.clamp(max=min_snr_gamma) / (snr + 1)
    raise SamuelError(f"unknown loss weighting {weighting!r}; choose one of {WEIGHTINGS}")


def diffusion_loss(
    model: SamuelUNet,
    x0: Tensor,
    cond: Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    cond_drop: float = 0.1,
    weighting: str = "snr",
    min_snr_gamma: float = 5.0,
    part: tuple[int, int] | None = None,
    target_fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """Scalar loss for one batch of clean latents ``x0`` and vocal latents ``cond``.

    ``target_fn(x_t, t, cond, cond_keep)``: distillation. The target is then that function's
    v (a teacher's, e.g. ``guidance.distillation_target``) instead of the true v.

    ``part=(offset, total)``: the batch is rows ``offset:offset+len(x0)`` of a global batch of
    ``total`` (one process of a distributed run): steps, noise and dropout are drawn for the
    whole global batch and these rows kept, so N processes train as one would."""
    if not 0.0 <= cond_drop <= 1.0:
        raise SamuelError(f"cond_drop must be between 0 and 1, got {cond_drop}")
    batch, device = x0.shape[0], x0.device
    start, total = part or (0, batch)
    rows = slice(start, start + batch)
    t = torch.randint(0, schedule.steps, (total,), generator=generator, device=device)[rows]
    eps = torch.randn((total, *x0.shape[1:]), generator=generator, device=device,
                      dtype=x0.dtype)[rows]
    x_t = schedule.q_sample(x0, t, eps)
    cond_keep = ~drop_mask(total, cond_drop, generator, device)[rows]
    if target_fn is None:
        target = schedule.v_target(x0, eps, t)
    else:
        with torch.no_grad():
            target = target_fn(x_t, t, cond, cond_keep).to(x_t.dtype)
    v = model(x_t, t, cond, cond_keep)
    per_example = (v - target).pow(2).flatten(1).mean(dim=1)
    weights = loss_weights(schedule, t, weighting, min_snr_gamma).to(per_example.dtype)
    return (weights * per_example).mean()
