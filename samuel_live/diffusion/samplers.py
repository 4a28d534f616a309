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


SPACINGS = ("uniform", "logsnr")
LOGSNR_FLOOR = -3.0
"""Lowest lambda the ``logsnr`` grid spaces from (abar ~ 0.0025). Below it the x0 prediction
carries almost nothing, and the cosine table's last index (lambda ~ -10.8, its beta clipped)
would otherwise draw several steps to the noisy end. On the Gaussian toy flow (tests) this
grid cut DPM-Solver++(2M)'s error at 8-15 steps about 10x against the uniform one."""


def timesteps(schedule: Schedule, steps: int, spacing: str = "uniform") -> list[int]:
    """``steps`` distinct indices from the noisiest training step down to 0.

    ``uniform`` spaces them evenly in the index. ``logsnr`` keeps the first step at the
    noisiest index and spaces the rest evenly in half-log-SNR lambda = log(alpha / sigma) from
    LOGSNR_FLOOR up to index 0's (each target rounded to the nearest index, nudged so no two
    coincide): more of a few-step budget goes to the low-noise end, where a uniform grid's
    last step is one big jump.
    """
    if not 1 <= steps <= schedule.steps:
        raise SamuelError(f"steps must be between 1 and {schedule.steps}, got {steps}")
    if spacing not in SPACINGS:
        raise SamuelError(f"unknown step spacing {spacing!r}; choose one of {SPACINGS}")
    last = schedule.steps - 1
    if spacing == "uniform" or steps < 3:
        # Spacing is >= 1 when steps <= schedule.steps, so rounding never merges two steps.
        return [int(round(last - i * last / max(steps - 1, 1))) for i in range(steps)]
    a = schedule.alphas_cumprod
    lam = 0.5 * (a.log() - (1 - a).log())  # increasing towards index 0
    floor = max(LOGSNR_FLOOR, float(lam[last]))
    targets = torch.linspace(floor, float(lam[0]), steps, dtype=torch.float64)
    nearest = (lam[None, :] - targets[:, None]).abs().argmin(dim=1).tolist()
    out: list[int] = []
    for i, t in enumerate([last, *nearest[1:]]):
        hi = out[-1] - 1 if out else last
        out.append(max(min(t, hi), steps - 1 - i))  # distinct, and room left for the rest
    return out


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
    spacing: str = "uniform",
) -> Tensor:
    """The loop every sampler shares: evaluate, convert v to x0/eps, step, paste, report."""
    ts = timesteps(schedule, steps, spacing)
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


def _dpmpp_step(order: int) -> StepFn:
    """DPM-Solver++ multistep update of ``order`` 2 or 3 (k-diffusion's 2M and 3M, eta = 0)
    in the VP data-prediction form: x_next = (sigma_next / sigma) x_t - alpha_next *
    expm1(-h) * x0 plus alpha_next times the higher-order corrections from earlier x0 preds.

    Why this form: the network predicts v, from which x0 = sqrt(a) x_t - sqrt(1-a) v is exact
    and bounded, and the data-prediction solver is the stable one under classifier-free
    guidance. lambda = log(alpha / sigma) comes from the training table (the model was trained
    only at the integer steps). The first steps lack history and drop to lower order; the last
    step lands on the clean signal (sigma = 0), where the update reduces to x0_pred.
    """
    # x0_pred and step size h per step index; keyed so RePaint repeats of step i reuse the
    # history of steps i - 1, i - 2 instead of their own first pass.
    history: dict[int, tuple[Tensor, float]] = {}

    def step(i: int, x_t: Tensor, x0: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        if a_next >= 1.0:
            return x0
        lam = 0.5 * math.log(a / (1 - a))
        lam_next = 0.5 * math.log(a_next / (1 - a_next))
        h = lam_next - lam
        history.pop(i - order, None)
        prev, prev2 = history.get(i - 1), history.get(i - 2) if order >= 3 else None
        history[i] = (x0, h)
        sigma_ratio = math.sqrt((1 - a_next) / (1 - a))
        x = sigma_ratio * x_t - math.sqrt(a_next) * math.expm1(-h) * x0
        if prev is None:
            return x
        (x0_1, h_1), phi_2 = prev, math.expm1(-h) / h + 1
        if order == 2:
            # k-diffusion's 2M: x0 replaced by (1 + 1/(2r)) x0 - 1/(2r) x0_prev.
            r = h_1 / h
            return x - math.sqrt(a_next) * math.expm1(-h) * (x0 - x0_1) / (2 * r)
        r0 = h_1 / h
        d1_0 = (x0 - x0_1) / r0
        if prev2 is None:
            return x + math.sqrt(a_next) * phi_2 * d1_0
        x0_2, h_2 = prev2
        r1 = h_2 / h
        d1_1 = (x0_1 - x0_2) / r1
        d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
        d2 = (d1_0 - d1_1) / (r0 + r1)
        phi_3 = phi_2 / h - 0.5
        return x + math.sqrt(a_next) * (phi_2 * d1 - phi_3 * d2)

    return step


def sample_dpmpp_2m(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
    spacing: str = "uniform",
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), multistep data-prediction form on the VP grid; see
    ``_dpmpp_step``."""
    return _drive(model_fn, x, schedule, steps, _dpmpp_step(2), generator, callback, inpaint,
                  spacing)


def sample_dpmpp_3m(
    model_fn: ModelFn,
    x: Tensor,
    schedule: Schedule,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    inpaint: Inpaint | None = None,
    spacing: str = "uniform",
) -> Tensor:
    """DPM-Solver++(3M): third-order multistep, from two earlier x0 predictions."""
    return _drive(model_fn, x, schedule, steps, _dpmpp_step(3), generator, callback, inpaint,
                  spacing)


def _spaced(sampler: Callable[..., Tensor], spacing: str) -> Callable[..., Tensor]:
    def run(*args: object, **kwargs: object) -> Tensor:
        return sampler(*args, spacing=spacing, **kwargs)

    run.__doc__ = f"{sampler.__name__} with {spacing} step spacing."
    return run


Sampler = Callable[..., Tensor]

SAMPLERS: dict[str, Sampler] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_logsnr": _spaced(sample_dpmpp_2m, "logsnr"),
    "dpmpp_3m": sample_dpmpp_3m,
    "dpmpp_3m_logsnr": _spaced(sample_dpmpp_3m, "logsnr"),
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
