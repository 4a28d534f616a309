"""The SAMUeL U-Net and its attention blocks."""

from samuel_live.model.attention import (
    SoftAlignmentAttention,
    VocalCrossAttention,
    global_attention,
    local_attention,
    rope,
)
from samuel_live.model.unet import SamuelUNet, UNetConfig

__all__ = [
    "SamuelUNet",
    "SoftAlignmentAttention",
    "UNetConfig",
    "VocalCrossAttention",
    "global_attention",
    "local_attention",
    "rope",
]
