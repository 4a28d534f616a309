"""Classifier-free guidance: turn the U-Net and a vocal into the ``model_fn`` samplers call."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samuel_live.diffusion.samplers import ModelFn
from samuel_live.diffusion.schedule import cosine_alphas_cumprod

if TYPE_CHECKING:
    from samuel_live.model.unet import SamuelUNet, UNetConfig, VocalContext


GUIDANCE_MAX_LAMBDA = 1.0
"""Half-log-SNR lambda = log(alpha / sigma) from which on guidance is left out and only the
conditional branch runs (sigma below ~0.34; with the cosine table, steps 0-173): by then the
music is laid out, and guidance only spends a second forward. On the tuning sets, with the
shipped model, leaving it out there moved no bench/quality.py figure at 15 steps or at 8
(clarity 0.924 / 0.917 against 0.925 / 0.917 at 15 steps). It runs half of an 8-step grid
at batch 1: a quarter less time for those steps on a 2-core CPU (35 against 47 ms).
Guidance limited to an interval of noise levels: Kynkaenniemi et al. 2024; leaving it out at
the noisy end instead lost consonance and onset agreement here."""


def guided_model_fn(
    model: SamuelUNet, cond: Tensor, scale: float, distilled: float | None = None
) -> ModelFn:
    """v = v_uncond + scale * (v_cond - v_uncond), both branches in one batched forward.

    Scale 1 runs only the conditional branch and scale 0 only the unconditional one (the
    learned null vocal), so neither pays for a branch whose weight is zero (for a distilled
    model: its own scale and 0, see below); steps whose noise
    is below ``GUIDANCE_MAX_LAMBDA`` run the conditional branch alone. Everything that
    depends on the vocal alone (encoder, cross-attention keys and values) is computed here,
    once, not at every step (``SamuelUNet.prepare``). ``x`` and the returned v keep the
    caller's dtype (float32) whatever the model computes in, so the guidance combination and
    the sampler's arithmetic stay float32 under a bfloat16 model.

    ``distilled``: the scale a guidance-distilled model learned (``distillation_target``).
    Its conditional branch already is the guided v at that scale, so that scale runs batch 1
    at every step; another scale s guides between its branches, v_uncond + (s / distilled) *
    (v_guided - v_uncond), which is the teacher's formula rewritten.
    """
    batch = cond.shape[0]

    def keep(value: bool, n: int) -> Tensor:
        return torch.full((n,), value, dtype=torch.bool, device=cond.device)

    single_branch = (0.0, 1.0) if distilled is None else (0.0, distilled)
    if scale in single_branch:
        ctx = model.prepare(cond, keep(scale != 0.0, batch))

        def single(x: Tensor, t: Tensor) -> Tensor:
            return model.denoise(x, t, ctx)

        return single
    ctx = model.prepare(torch.cat([cond, cond]), torch.cat([keep(True, batch), keep(False, batch)]))
    cond_only = _first(ctx, batch)
    quiet = quiet_step(model.config)
    weight = scale if distilled is None else scale / distilled

    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        if int(t.max()) <= quiet:
            return model.denoise(x, t, cond_only)
        v = model.denoise(torch.cat([x, x]), torch.cat([t, t]), ctx)
        v_cond, v_uncond = v.chunk(2)
        return v_uncond + weight * (v_cond - v_uncond)

    return model_fn


def quiet_step(config: UNetConfig) -> int:
    """The last training step at or above ``GUIDANCE_MAX_LAMBDA``: steps 0..quiet_step run the
    conditional branch alone."""
    a = cosine_alphas_cumprod(config.num_train_steps, config.schedule_s)
    return int((0.5 * (a / (1 - a)).log() >= GUIDANCE_MAX_LAMBDA).sum()) - 1


def distillation_target(
    model: SamuelUNet, x: Tensor, t: Tensor, cond: Tensor, keep: Tensor, scale: float
) -> Tensor:
    """The teacher's v for guidance distillation, per example (steps may differ within the
    batch): where ``keep`` is True what ``guided_model_fn(model, cond, scale)`` returns (the
    conditional branch alone below the guidance interval), where False the unconditional v,
    so the student keeps a null branch and any other scale can still be guided from it."""
    n = x.shape[0]
    both = torch.arange(2 * n, device=x.device) < n
    ctx = model.prepare(torch.cat([cond, cond]), both, cache_time=False)
    v_cond, v_uncond = model.denoise(torch.cat([x, x]), torch.cat([t, t]), ctx).chunk(2)
    guided = v_uncond + scale * (v_cond - v_uncond)
    guided = torch.where((t <= quiet_step(model.config)).view(-1, 1, 1), v_cond, guided)
    return torch.where(keep.view(-1, 1, 1), guided, v_uncond)


def _first(ctx: VocalContext, n: int) -> VocalContext:
    """The context of the first ``n`` vocals of a prepared batch (no recomputation)."""
    kv = [None if pair is None else (pair[0][:n], pair[1][:n]) for pair in ctx.kv]
    return replace(ctx, vocal_in=ctx.vocal_in[:n], kv=kv, shape=torch.Size([n, *ctx.shape[1:]]),
                   time_cache=None if ctx.time_cache is None else {})
