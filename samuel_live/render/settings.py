"""Sampling settings for one render, resolved in one place.

A request names only what it wants changed (``None`` = "the default"). The value comes from the
first layer that has one: the request, then the user's configuration, then the checkpoint's own
recommendation, then ``GenerateSettings``' field defaults, the only place a built-in default is
written. The CLI, the engine and batch renders all call ``resolve_settings``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from samuel_live.config import GenerateSection
from samuel_live.settings import GenerateSettings

_SAMPLING = ("sampler", "steps", "cfg", "key")


@dataclass(frozen=True)
class SettingsRequest:
    """What one request asks for; ``None`` leaves a field to the defaults (seed: random)."""

    sampler: str | None = None
    steps: int | None = None
    cfg: float | None = None
    seed: int | None = None
    key: str | None = None


def resolve_settings(
    request: SettingsRequest,
    *,
    config: GenerateSection | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> GenerateSettings:
    """The settings one render runs with; raises SamuelError for values out of range."""
    built_in = {f.name: f.default for f in fields(GenerateSettings)}
    layers: list[Mapping[str, Any]] = [
        {k: getattr(request, k) for k in _SAMPLING},
        {k: getattr(config, k) for k in _SAMPLING} if config is not None else {},
        checkpoint or {},
    ]
    chosen: dict[str, Any] = {}
    for name in _SAMPLING:
        chosen[name] = next((layer[name] for layer in layers if layer.get(name) is not None),
                            built_in[name])
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    return GenerateSettings(sampler=str(chosen["sampler"]), steps=int(chosen["steps"]),
                            cfg=float(chosen["cfg"]), seed=int(seed), key=str(chosen["key"]))
