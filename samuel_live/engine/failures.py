"""Turning what went wrong in a job into a message a user can act on."""

from __future__ import annotations

import logging

from samuel_live.errors import SamuelError

log = logging.getLogger(__name__)


def describe_failure(exc: BaseException) -> str:
    """A user-facing message for any exception a job raised."""
    import torch

    if isinstance(exc, SamuelError):
        return str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return ("out of GPU memory; lower steps, close other GPU programs, or serve with "
                "--device cpu")
    if isinstance(exc, MemoryError):
        return "out of memory; generate shorter takes or close other programs"
    log.error("job failed unexpectedly", exc_info=exc)
    return f"internal error: {type(exc).__name__}: {exc}"
