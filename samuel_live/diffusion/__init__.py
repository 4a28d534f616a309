"""Diffusion maths: the noise schedule, samplers, guidance and the training loss."""

from samuel_live.diffusion.guidance import guided_model_fn
from samuel_live.diffusion.loss import diffusion_loss, drop_mask, loss_weights
from samuel_live.diffusion.samplers import (
    SAMPLERS,
    Inpaint,
    ModelFn,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    timesteps,
)
from samuel_live.diffusion.schedule import Schedule, ScheduleConfig, cosine_alphas_cumprod

__all__ = [
    "SAMPLERS",
    "Inpaint",
    "ModelFn",
    "Schedule",
    "ScheduleConfig",
    "cosine_alphas_cumprod",
    "diffusion_loss",
    "drop_mask",
    "guided_model_fn",
    "loss_weights",
    "sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "timesteps",
]
