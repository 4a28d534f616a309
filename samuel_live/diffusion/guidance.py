"""Classifier-free guidance: turn the U-Net and a vocal into the ``model_fn`` samplers call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samuel_live.diffusion.samplers import ModelFn

if TYPE_CHECKING:
    from samuel_live.model.unet import SamuelUNet


def guided_model_fn(model: SamuelUNet, cond: Tensor, scale: float) -> ModelFn:
    """v = v_uncond + scale * (v_cond - v_uncond), both branches in one batched forward.

    Scale 1 runs only the conditional branch and scale 0 only the unconditional one (the
    learned null vocal), so neither pays for a branch whose weight is zero. Everything that
    depends on the vocal alone (encoder, cross-attention keys and values) is computed here,
    once, not at every step (``SamuelUNet.prepare``). ``x`` and the returned v keep the
    caller's dtype (float32) whatever the model computes in, so the guidance combination and
    the sampler's arithmetic stay float32 under a bfloat16 model.
    """
    batch = cond.shape[0]

    def keep(value: bool, n: int) -> Tensor:
        return torch.full((n,), value, dtype=torch.bool, device=cond.device)

    if scale in (0.0, 1.0):
        ctx = model.prepare(cond, keep(scale == 1.0, batch))

        def single(x: Tensor, t: Tensor) -> Tensor:
            return model.denoise(x, t, ctx)

        return single
    ctx = model.prepare(torch.cat([cond, cond]), torch.cat([keep(True, batch), keep(False, batch)]))

    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        v = model.denoise(torch.cat([x, x]), torch.cat([t, t]), ctx)
        v_cond, v_uncond = v.chunk(2)
        return v_uncond + scale * (v_cond - v_uncond)

    return model_fn
