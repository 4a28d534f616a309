"""The noise schedule a model was trained with, read back from the model and its checkpoint.

The sampler and the U-Net's attention mix (which reads ``abar_t`` from the model's own
``alphas_cumprod`` buffer) must use one table. ``model_schedule`` builds the sampler's schedule
from the model config, checks it against the buffer the checkpoint stored and the checkpoint's
``schedule`` entry, refuses any disagreement, and sets the buffer to the exact table (a float16
export stores a rounded copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from samuel_live.diffusion.schedule import Schedule, ScheduleConfig
from samuel_live.errors import ModelError
from samuel_live.model.unet import SamuelUNet

_TOLERANCE = 2e-3  # a float16 copy of abar is within ~5e-4 of the table


def schedule_config(net: SamuelUNet) -> ScheduleConfig:
    return ScheduleConfig(steps=net.config.num_train_steps, s=net.config.schedule_s)


def schedule_entry(net: SamuelUNet) -> dict[str, Any]:
    """What a checkpoint stores as its ``schedule``."""
    c = schedule_config(net)
    return {"kind": c.kind, "steps": c.steps, "s": c.s}


def model_schedule(net: SamuelUNet, stored: Mapping[str, Any] | None = None,
                   where: str = "the model") -> Schedule:
    """The schedule ``net`` was trained with; ModelError if its parts disagree."""
    config = schedule_config(net)
    if stored:
        entry = schedule_entry(net)
        clash = {k: (v, entry[k]) for k, v in stored.items() if k in entry and v != entry[k]}
        if clash:
            raise ModelError(
                f"{where}: its checkpoint's schedule {dict(stored)} disagrees with its model "
                f"config ({entry}); the checkpoint is inconsistent: export it again with "
                "`samuel-live train`")
    schedule = Schedule(config)
    buffer = net.alphas_cumprod
    table = schedule.alphas_cumprod
    if buffer.shape != table.shape or not torch.allclose(
            buffer.detach().cpu().double(), table, atol=_TOLERANCE, rtol=0):
        raise ModelError(
            f"{where}: its stored noise schedule ({buffer.numel()} steps) is not the cosine "
            f"schedule of its config ({config.steps} steps, s={config.s}); the sampler and the "
            "attention mix would disagree: use a checkpoint written by `samuel-live train`")
    with torch.no_grad():
        buffer.copy_(table.to(buffer.dtype))
    return schedule
