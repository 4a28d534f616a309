"""Choosing the torch device: one place, one message."""

from __future__ import annotations

from collections.abc import Callable

import torch

from samuel_live.errors import InvalidArgumentError, ModelError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; a missing GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ModelError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_fast_bf16(cpuinfo: str | None = None) -> bool:
    """True if this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16 flags).

    ``cpuinfo`` is /proc/cpuinfo's text (read when None). Where it cannot be read (macOS,
    Windows) the answer is False: without those instructions bfloat16 is emulated and slower
    than float32.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = {w for line in cpuinfo.splitlines() if line.startswith("flags") for w in line.split()}
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def pick_dtype(precision: str, device: torch.device, cpuinfo: str | None = None) -> torch.dtype:
    """The dtype the U-Net runs in for a precision setting (``settings.PRECISIONS``).

    'auto' is bfloat16 on a CUDA GPU that supports it and on a CPU with native bfloat16
    (``cpu_has_fast_bf16``), float32 elsewhere; 'float32' and 'bfloat16' are taken as asked.
    """
    from samuel_live.settings import PRECISIONS

    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and cpu_has_fast_bf16(cpuinfo):
        return torch.bfloat16
    return torch.float32


NUMPY_BLAS_THREADS = 1
"""Threads of NumPy's and SciPy's BLAS while generating. The codec's matrix products are small
and run between the U-Net's forwards; with a second BLAS thread, that thread spins for about
0.1 s after each product, against torch's threads on the same cores. Paired on the 2-core CPU
(bench/generate.py's clip, shipped defaults): 0.454 -> 0.389 s end to end; encode and decode
take ~15 ms more, sampling ~90 ms less."""


def limit_numpy_blas(threads: int = NUMPY_BLAS_THREADS) -> Callable[[], None]:
    """Set the BLAS thread pools NumPy and SciPy load (OpenBLAS or MKL, found through
    threadpoolctl) to ``threads``; returns the function that restores the previous counts. A
    BLAS shipped inside torch (a shared MKL in some builds) is left alone: torch's own thread
    count is ``torch.set_num_threads``'s."""
    from pathlib import Path

    from threadpoolctl import ThreadpoolController

    torch_dir = Path(torch.__file__).resolve().parent
    libs = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
            if torch_dir not in Path(lib.filepath).resolve().parents]
    before = [(lib, lib.num_threads) for lib in libs]
    for lib in libs:
        lib.set_num_threads(threads)

    def restore() -> None:
        for lib, count in before:
            lib.set_num_threads(count)

    return restore
