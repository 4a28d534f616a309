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
    learned null vocal), so neither pays for a branch whose weight is zero.
    """
    batch = cond.shape[0]

    def keep(value: bool, n: int) -> Tensor:
        return torch.full((n,), value, dtype=torch.bool, device=cond.device)

    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        if scale == 1.0:
            return model(x, t, cond, keep(True, batch))
        if scale == 0.0:
            return model(x, t, cond, keep(False, batch))
        cond_keep = torch.cat([keep(True, batch), keep(False, batch)])
        v = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]), cond_keep)
        v_cond, v_uncond = v.chunk(2)
        return v_uncond + scale * (v_cond - v_uncond)

    return model_fn
