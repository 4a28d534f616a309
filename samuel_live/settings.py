"""Frozen per-call settings: passed with every request, never stored as hidden state."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLER_NAMES = ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_logsnr", "dpmpp_3m", "dpmpp_3m_logsnr")

KEY_MODES = ("auto", "off")  # besides a key name such as "A minor"
PRECISIONS = ("auto", "float32", "bfloat16")
DEFAULT_PRECISION = "auto"
"""The U-Net's arithmetic: 'auto' = bfloat16 where the hardware multiplies it natively (a CPU
with AVX512-BF16 or AMX, a CUDA GPU with bf16), float32 elsewhere (``device.pick_dtype``). The
sampler's own arithmetic and guidance stay float32 either way."""


@dataclass(frozen=True)
class GenerateSettings:
    """How one accompaniment is sampled.

    ``steps`` is the number of model evaluations the sampler makes (the paper's ancestral DDPM
    uses all 800 training steps). ``cfg`` is the classifier-free guidance scale: 1.0 means the
    conditional model alone, 0.0 the unconditional model alone. ``key`` locks the result to a
    scale: "auto" (the key heard in the vocal, on codecs with semitone bands), "off", or a key
    such as "A minor" (see ``codec.pitch.parse_key``).
    """

    sampler: str = "dpmpp_2m"
    steps: int = 25
    cfg: float = 3.0
    seed: int = 0
    key: str = "auto"

    def __post_init__(self) -> None:
        from samuel_live.errors import InvalidArgumentError

        if self.sampler not in SAMPLER_NAMES:
            raise InvalidArgumentError(
                f"unknown sampler {self.sampler!r}; choose one of {SAMPLER_NAMES}")
        if not 1 <= self.steps <= 800:
            raise InvalidArgumentError(f"steps must be between 1 and 800, got {self.steps}")
        if not 0.0 <= self.cfg <= 20.0:
            raise InvalidArgumentError(f"cfg must be between 0 and 20, got {self.cfg}")
        if not 0 <= self.seed < 2**32:
            raise InvalidArgumentError(f"seed must be between 0 and 2^32 - 1, got {self.seed}")
        if self.key not in KEY_MODES:
            from samuel_live.codec.pitch import parse_key

            parse_key(self.key)  # raises InvalidArgumentError naming the form
