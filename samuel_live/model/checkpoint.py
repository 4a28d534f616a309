"""Model checkpoints: ``NAME.safetensors`` (weights) beside ``NAME.json`` (everything else).

The JSON records the model config, the codec id, the latent normalisation statistics (the
reference code loses these, so its models cannot be used without the training set), the
noise schedule and the sampler defaults. Loading refuses a model whose codec differs from the
one the caller has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from samuel_live.atomic import atomic_path, atomic_write_bytes
from samuel_live.diffusion.guidance import GUIDANCE_MAX_LAMBDA
from samuel_live.errors import ModelError
from samuel_live.model.unet import UNetConfig

FORMAT = "samuel-live/1"
MAX_META_BYTES = 1 << 20
"""Largest checkpoint ``.json`` read, in bytes (the shipped model's is about 7 KB)."""
_HEADER_SLACK = 16 << 20  # safetensors header and alignment, beyond 4 bytes per parameter


@dataclass(frozen=True)
class LatentStats:
    """Per-channel mean/std of vocal and accompaniment latents (the model sees z-scores)."""

    vocal_mean: tuple[float, ...]
    vocal_std: tuple[float, ...]
    accomp_mean: tuple[float, ...]
    accomp_std: tuple[float, ...]

    @classmethod
    def identity(cls, channels: int = 64) -> LatentStats:
        zeros, ones = (0.0,) * channels, (1.0,) * channels
        return cls(zeros, ones, zeros, ones)

    def _t(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1)

    def norm_vocal(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self._t(self.vocal_mean, z)) / self._t(self.vocal_std, z)

    def norm_accomp(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self._t(self.accomp_mean, z)) / self._t(self.accomp_std, z)

    def denorm_vocal(self, z: torch.Tensor) -> torch.Tensor:
        return z * self._t(self.vocal_std, z) + self._t(self.vocal_mean, z)

    def denorm_accomp(self, z: torch.Tensor) -> torch.Tensor:
        return z * self._t(self.accomp_std, z) + self._t(self.accomp_mean, z)


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint needs besides its weights."""

    model: dict[str, Any]
    codec: str
    stats: LatentStats
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "cosine", "steps": 800})
    sampler_defaults: dict[str, Any] = field(
        default_factory=lambda: {"sampler": "dpmpp_2m", "steps": 25, "cfg": 3.0}
    )
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def distilled_cfg(self) -> float | None:
        """The guidance scale a guidance-distilled model learned (``training.distilled.cfg``,
        see ``diffusion.guidance.distillation_target``); None for an ordinary model."""
        return _distilled_scale(self.training)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CheckpointMeta:
        if d.get("format") != FORMAT:
            raise ModelError(f"checkpoint format {d.get('format')!r} is not {FORMAT!r}")
        stats = LatentStats(**{k: tuple(v) for k, v in d["stats"].items()})
        return cls(
            model=d["model"],
            codec=d["codec"],
            stats=stats,
            schedule=d.get("schedule", {}),
            sampler_defaults=d.get("sampler_defaults", {}),
            training=d.get("training", {}),
        )


def _distilled_scale(training: Any) -> float | None:
    """``training.distilled.cfg`` checked: a guidance scale in (1, 20], or None if absent."""
    record = training.get("distilled") if isinstance(training, dict) else None
    if record is None:
        return None
    scale = record.get("cfg") if isinstance(record, dict) else None
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not 1 < scale <= 20:
        raise ModelError(f"training.distilled.cfg must be a guidance scale above 1 and at most "
                         f"20, got {scale!r:.40}; the .json is damaged")
    if record.get("max_lambda") != GUIDANCE_MAX_LAMBDA:
        raise ModelError(
            f"the model was distilled with guidance left out from half-log-SNR "
            f"{record.get('max_lambda')!r:.20}, this version of samuel_live from "
            f"{GUIDANCE_MAX_LAMBDA}; distil it again from its teacher")
    return float(scale)


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, meta) paths for ``X``, ``X.safetensors`` or ``X.json``."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidates = sorted(p.glob("*.safetensors"))
        if len(candidates) != 1:
            raise ModelError(
                f"{p} must hold exactly one .safetensors model, found {len(candidates)}"
            )
        p = candidates[0]
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    meta: CheckpointMeta,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write weights (cast to ``dtype``) and meta atomically; returns the weights path."""
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state_dict.items()}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic_write_bytes(meta_path, json.dumps(meta.to_json(), indent=1).encode())
    return weights


def load_checkpoint(
    path: str | Path, expect_codec: str | None = None
) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Read weights (as float32) and meta; refuse a codec mismatch with a clear message."""
    weights, meta_path = checkpoint_paths(path)
    if not weights.is_file() or not meta_path.is_file():
        raise ModelError(
            f"no model at {weights} (+ {meta_path.name}); run `samuel-live models` to list the "
            "installed ones or train one with `samuel-live train`"
        )
    try:
        meta = _read_meta(meta_path)
        config = UNetConfig.from_dict(meta.model)
        _check_stats(meta.stats, config)
        most = config.param_count() * 4 + _HEADER_SLACK
        if weights.stat().st_size > most:
            raise ModelError(
                f"checkpoint {weights} is larger than its model config allows ({most:,} bytes); "
                "the weights do not belong to this .json"
            )
        tensors = load_file(str(weights))
    except ModelError as exc:
        raise ModelError(f"checkpoint {weights.name}: {exc}") from exc
    except Exception as exc:  # corrupt file: say which one
        raise ModelError(f"cannot read checkpoint {weights}: {exc}") from exc
    if expect_codec is not None and meta.codec != expect_codec:
        raise ModelError(
            f"model {weights.name} was trained on the {meta.codec!r} codec but {expect_codec!r} "
            f"is loaded; use the {meta.codec!r} codec with this model"
        )
    return {k: v.float() for k, v in tensors.items()}, meta


def _read_meta(meta_path: Path) -> CheckpointMeta:
    """The parsed ``.json`` of a checkpoint, refusing one over MAX_META_BYTES before reading."""
    size = meta_path.stat().st_size
    if size > MAX_META_BYTES:
        raise ModelError(
            f"{meta_path.name} is {size:,} bytes; a checkpoint's .json is at most "
            f"{MAX_META_BYTES:,} bytes, so this is not one"
        )
    with open(meta_path, "rb") as f:
        data = f.read(MAX_META_BYTES + 1)
    if len(data) > MAX_META_BYTES:
        raise ModelError(f"{meta_path.name} grew past {MAX_META_BYTES:,} bytes while read")
    parsed = json.loads(data)
    if not isinstance(parsed, dict):
        raise ModelError(f"{meta_path.name} is not a JSON object; it is not a checkpoint's .json")
    return CheckpointMeta.from_json(parsed)


def _check_stats(stats: LatentStats, config: UNetConfig) -> None:
    """Normalisation vectors must match the model's channels."""
    for name, want in (("vocal_mean", config.cond_channels), ("vocal_std", config.cond_channels),
                       ("accomp_mean", config.latent_channels),
                       ("accomp_std", config.latent_channels)):
        if len(getattr(stats, name)) != want:
            raise ModelError(
                f"stats.{name} has {len(getattr(stats, name))} values but the model has {want} "
                "channels; the .json is damaged"
            )


def file_hash(path: str | Path) -> str:
    """Short SHA-256 of a weights file, recorded in every sidecar."""
    h = hashlib.sha256()
    with open(checkpoint_paths(path)[0], "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
