"""Choosing the torch device: one place, one message."""

from __future__ import annotations

import torch

from samuel_live.errors import ModelError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; a missing GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ModelError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)
