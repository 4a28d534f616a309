"""Channel lock: lower chosen latent channels in every step's clean estimate.

The sampler asks the model for v at each step and turns it into an estimate of the clean
latent x0. Lowering some channels of that estimate (for the ``harmonic`` codec: the semitone
bands outside the song's scale) and handing the sampler the v that matches keeps the whole
trajectory consistent: later steps see the lowered bands in x_t and the model fills the music
in around them, rather than having notes cut out of a finished result.
"""

from __future__ import annotations

import torch
from torch import Tensor

from samuel_live.diffusion.samplers import ModelFn
from samuel_live.diffusion.schedule import Schedule


def locked_model_fn(model_fn: ModelFn, schedule: Schedule, cut: Tensor, mean: Tensor,
                    std: Tensor, floor: float) -> ModelFn:
    """``model_fn`` whose x0 estimate has channel ``c`` lowered by ``cut[c]`` (latent units,
    here natural-log magnitude), never below ``floor`` (silence) and never raised.

    ``mean`` and ``std`` ([C]) de-normalise the model's space into the codec's latent, where
    ``cut`` and ``floor`` are meant. Channels with ``cut == 0`` pass unchanged.
    """
    cut, mean, std = (v.reshape(1, -1, 1) for v in (cut, mean, std))
    active = cut > 0

    def fn(x: Tensor, t: Tensor) -> Tensor:
        v = model_fn(x, t)
        a = schedule.abar(t.to(x.device)).view(-1, 1, 1)
        sa, sb = a.sqrt().to(x.dtype), (1 - a).sqrt().to(x.dtype)
        x0 = sa * x - sb * v
        z = x0 * std.to(x) + mean.to(x)
        lowered = z - cut.to(x)
        z = torch.where(active.to(x.device) & (z > floor),
                        torch.clamp(lowered, min=floor), z)
        x0 = (z - mean.to(x)) / std.to(x)
        return (sa * x - x0) / sb

    return fn
