"""Samplers over the discrete 800-step grid, k-diffusion style: one pure function per sampler.

Every sampler has the same signature::

    sample_x(model_fn, x, schedule, steps, *, generator=None, callback=None, inpaint=None)

``model_fn(x_t, t)`` returns the (already guided) v prediction; ``x`` is the starting N(0, I)
noise; ``steps`` is the number of model evaluations (times ``inpaint.resample``). The steps are
evenly spaced over the training grid, always starting at the noisiest index. After the last
evaluation the sampler jumps to the clean signal (abar = 1). ``callback(i, n, x0_pred)`` runs
after every step; raising from it (e.g. ``JobCancelled``) aborts sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from samuel_live.diffusion.schedule import Schedule
from samuel_live.errors import SamuelError

ModelFn = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[int, int, Tensor], None]


@dataclass(frozen=True)
class Inpaint:
    """Frames to keep: where ``mask`` is 1 the result equals ``known``.

    ``mask`` is [B, 1, T] or [B, C, T], bool or float 0/1. ``resample > 1`` repeats each step
    RePaint-style (re-noise one step, denoise again) so the generated frames agree better with
    the kept ones; it multiplies the number of model evaluations.
    """

    known: Tensor
    mask: Tensor
    resample: int = 1

    def __post_init__(self) -> None:
        if self.resample < 1:
            raise SamuelError(f"inpaint resample must be at least 1, got {self.resample}")
        if self.mask.dim() != self.known.dim() or self.mask.shape[-1] != self.known.shape[-1]:
            raise SamuelError(
                f"inpaint mask {tuple(self.mask.shape)} does not match known "
                f"{tuple(self.known.shape)}; use [B, 1, T] or [B, C, T]"
            )


# A step maps (x at level a, model's x0 and eps at that level, next level a_next) to x at a_next.
StepFn = Callable[[int, Tensor, Tensor, Tensor, float, float], Tensor]


def timesteps(schedule: Schedule, steps: int) -> list[int]:
    """``steps`` indices evenly spaced from the noisiest training step down towards 0."""
    if not 1 <= steps <= schedule.steps:
        raise SamuelError(f"steps must be between 1 and {schedule.steps}, got {steps}")
    last = schedule.steps - 1
    # Spacing is >= 1 when steps <= schedule.steps, so rounding never merges two steps.
    return [int(round(last - i * last / max(steps - 1, 1))) for i in range(steps)]


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _noised_known(
    inpaint: Inpaint, a: float, like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """The kept frames noised to level ``a``; exactly ``known`` when a == 1."""
    known = inpaint.known.to(like.device, like.dtype)
    if a >= 1.0:
        return known
    return math.sqrt(a) * known + math.sqrt(1 - a) * _noise(known, generator)


def _paste(
    x: Tensor, inpaint: Inpaint | None, a: float, generator: torch.Generator | None
) -> Tensor:
    if inpaint is None:
        return x
    mask = inpaint.mask.to(x.device, x.dtype)
    return mask * _noised_known(inpaint, a, x, generator) + (1 - mask) * x


def _drive(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    step: StepFn,
    generator: torch.Generator | None,
    callback: Callback | None,
    inpaint: Inpaint | None,
) -> Tensor:
    """The loop every sampler shares: evaluate, convert v to x0/eps, step, paste, report."""
    ts = timesteps(schedule, steps)
    abars = [float(schedule.alphas_cumprod[t]) for t in ts] + [1.0]
    resample = inpaint.resample if inpaint is not None else 1
    x = _paste(x, inpaint, abars[0], generator)
    for i, t in enumerate(ts):
        a, a_next = abars[i], abars[i + 1]
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        for r in range(resample):
            v = model_fn(x, t_batch)
            x0 = schedule.x0_from_v(x, v, t_batch)
            eps = schedule.eps_from_v(x, v, t_batch)
            x_next = _paste(step(i, x, x0, eps, a, a_next), inpaint, a_next, generator)
            if r + 1 < resample and a_next < 1.0:
                # RePaint: diffuse one step back up (q(x_t | x_next)) and denoise again.
                ratio = a / a_next
                x = math.sqrt(ratio) * x_next + math.sqrt(1 - ratio) * _noise(x, generator)
            else:
                break
        x = x_next
        if callback is not None:
            callback(i, len(ts), x0)
    return x


def sample_ddpm(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
) -> Tensor:
    """Ancestral sampling from the posterior q(x_next | x_t, x0_pred).

    With ``steps`` equal to the schedule length this is the paper's 800-step sampler; with fewer
    steps the posterior is that of the respaced chain (beta = 1 - abar_t / abar_next).
    """

    def step(i: int, x_t: Tensor, x0: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        alpha = a / a_next
        beta = 1 - alpha
        c_x0 = math.sqrt(a_next) * beta / (1 - a)
        c_xt = math.sqrt(alpha) * (1 - a_next) / (1 - a)
        mean = c_x0 * x0 + c_xt * x_t
        var = (1 - a_next) / (1 - a) * beta
        if var <= 0.0:
            return mean
        return mean + math.sqrt(var) * _noise(x_t, generator)

    return _drive(model_fn, x, schedule, steps, step, generator, callback, inpaint)


def sample_ddim(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
) -> Tensor:
    """Deterministic DDIM (eta = 0): x_next = sqrt(a_next) x0 + sqrt(1 - a_next) eps."""

    def step(i: int, x_t: Tensor, x0: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        return math.sqrt(a_next) * x0 + math.sqrt(1 - a_next) * eps

    return _drive(model_fn, x, schedule, steps, step, generator, callback, inpaint)


def sample_dpmpp_2m(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), multistep data-prediction form on the VP grid.

    Why this form: the network predicts v, from which x0 = sqrt(a) x_t - sqrt(1-a) v is exact
    and bounded, and the data-prediction solver is the stable one under classifier-free
    guidance. Why the discrete grid: the model was trained only at the 800 integer steps, so we
    evaluate it only there and take lambda = log(alpha / sigma) from the table instead of a
    continuous-time fit. The first step is first order (no history); the last step lands on
    the clean signal (sigma = 0), where the update reduces to x0_pred, as in k-diffusion.
    """
    # x0_pred and step size h per step index; keyed so RePaint repeats of step i reuse the
    # history of step i - 1 instead of their own first pass.
    history: dict[int, tuple[Tensor, float]] = {}

    def step(i: int, x_t: Tensor, x0: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        if a_next >= 1.0:
            return x0
        lam = 0.5 * math.log(a / (1 - a))
        lam_next = 0.5 * math.log(a_next / (1 - a_next))
        h = lam_next - lam
        denoised = x0
        prev = history.get(i - 1)
        if prev is not None:
            prev_x0, h_prev = prev
            r = h_prev / h
            denoised = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        history.pop(i - 2, None)
        history[i] = (x0, h)
        sigma_ratio = math.sqrt((1 - a_next) / (1 - a))
        return sigma_ratio * x_t - math.sqrt(a_next) * math.expm1(-h) * denoised

    return _drive(model_fn, x, schedule, steps, step, generator, callback, inpaint)


Sampler = Callable[..., Tensor]

SAMPLERS: dict[str, Sampler] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
}


def sample(
    name: str,
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
) -> Tensor:
    """Run the sampler called ``name`` (one of ``SAMPLERS``)."""
    if name not in SAMPLERS:
        raise SamuelError(f"unknown sampler {name!r}; choose one of {tuple(SAMPLERS)}")
    return SAMPLERS[name](
        model_fn, x, schedule, steps, generator=generator, callback=callback, inpaint=inpaint
    )
