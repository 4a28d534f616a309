"""The small interface every latent codec implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Codec(Protocol):
    """Maps stereo 44.1 kHz audio to (channels, frames) latents and back.

    ``encode`` takes float32 audio shaped (2, n) (numpy) and returns a float32 torch tensor
    shaped (latent_channels, ceil(n / hop)). ``decode`` takes (latent_channels, frames) or
    (batch, latent_channels, frames) and returns float32 numpy audio (2, frames * hop) or
    (batch, 2, frames * hop).
    """

    name: str
    sample_rate: int
    hop: int
    latent_channels: int

    def encode(self, audio: np.ndarray) -> torch.Tensor: ...

    def decode(self, latent: torch.Tensor) -> np.ndarray: ...
