"""Post chains as data: effect tables checked completely, with bounds, before anything loads.

Effects are plain dicts (from the TOML config or JSON sent over OSC). Everything here is pure
checking, safe on the network thread: ``check_post`` validates a whole ``PostSection`` (preset,
effect types, parameter ranges, chain size, and for vst3 effects the plugin path rules of
``samuel_live.post.plugins``) without opening or loading any plugin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pedalboard

from samuel_live.config import PostSection
from samuel_live.errors import SamuelError
from samuel_live.post.plugins import plugin_roots, resolve_plugin

MAX_EFFECTS = 32
"""Most effects one chain may hold."""
MAX_CHAIN_JSON_BYTES = 64 * 1024
"""Largest JSON text a chain may be sent as, in UTF-8 bytes."""
MAX_VST3_PARAMS = 256
"""Most parameters one vst3 effect may set."""
_MAX_PARAM_TEXT = 256  # longest vst3 parameter name or text value, in characters
LOUDNESS_RANGE = (-60.0, 0.0)
DRY_VOCAL_RANGE = (-80.0, 12.0)


@dataclass(frozen=True)
class _Param:
    """One numeric effect parameter: its pedalboard name, default (None = required) and range."""

    pb_name: str
    default: float | None
    lo: float
    hi: float


def _cutoff() -> _Param:
    return _Param("cutoff_frequency_hz", None, 10.0, 20000.0)


def _gain() -> _Param:
    return _Param("gain_db", 0.0, -36.0, 36.0)


def _q() -> _Param:
    return _Param("q", 0.7071, 0.1, 20.0)


def _tone() -> dict[str, _Param]:
    return {"cutoff_hz": _cutoff(), "gain_db": _gain(), "q": _q()}


def _unit(default: float) -> _Param:
    return _Param("", default, 0.0, 1.0)


BUILTIN_EFFECTS: dict[str, tuple[Callable[..., pedalboard.Plugin], dict[str, _Param]]] = {
    "gain": (pedalboard.Gain, {"gain_db": _Param("gain_db", None, -60.0, 36.0)}),
    "highpass": (pedalboard.HighpassFilter, {"cutoff_hz": _cutoff()}),
    "lowpass": (pedalboard.LowpassFilter, {"cutoff_hz": _cutoff()}),
    "eq": (pedalboard.PeakFilter, _tone()),
    "peak": (pedalboard.PeakFilter, _tone()),
    "lowshelf": (pedalboard.LowShelfFilter, _tone()),
    "highshelf": (pedalboard.HighShelfFilter, _tone()),
    "compressor": (
        pedalboard.Compressor,
        {
            "threshold_db": _Param("threshold_db", -18.0, -60.0, 0.0),
            "ratio": _Param("ratio", 2.0, 1.0, 100.0),
            "attack_ms": _Param("attack_ms", 5.0, 0.01, 1000.0),
            "release_ms": _Param("release_ms", 100.0, 1.0, 5000.0),
        },
    ),
    "reverb": (
        pedalboard.Reverb,
        {
            "room_size": _unit(0.5),
            "damping": _unit(0.5),
            "wet_level": _unit(0.33),
            "dry_level": _unit(0.4),
            "width": _unit(1.0),
            "freeze_mode": _unit(0.0),
        },
    ),
    "limiter": (
        pedalboard.Limiter,
        {
            "threshold_db": _Param("threshold_db", -1.0, -60.0, 0.0),
            "release_ms": _Param("release_ms", 100.0, 1.0, 5000.0),
        },
    ),
}
_VST3_KEYS = ("path", "params")
EFFECT_TYPES: tuple[str, ...] = (*sorted(BUILTIN_EFFECTS), "vst3")
"""Every valid effect ``type``."""

PRESETS: dict[str, tuple[dict[str, Any], ...]] = {
    "default": (
        {"type": "highpass", "cutoff_hz": 40.0},
        {"type": "compressor", "threshold_db": -18.0, "ratio": 2.5},
        {"type": "limiter", "threshold_db": -1.0},
    ),
    "clean": (),
    "warm": (
        {"type": "highpass", "cutoff_hz": 30.0},
        {"type": "lowshelf", "cutoff_hz": 250.0, "gain_db": 3.0},
        {"type": "highshelf", "cutoff_hz": 8000.0, "gain_db": -2.0},
        {"type": "reverb", "room_size": 0.35, "wet_level": 0.15, "dry_level": 0.85},
    ),
    "live": (
        {"type": "highpass", "cutoff_hz": 40.0},
        {"type": "compressor", "threshold_db": -20.0, "ratio": 4.0, "attack_ms": 3.0},
        {"type": "limiter", "threshold_db": -1.0, "release_ms": 50.0},
    ),
}
"""Named effect chains; ``PostSection.preset = "custom"`` uses ``PostSection.chain`` instead.

The loudness target is always ``PostSection.loudness_lufs``; "live" is meant for -14 LUFS.
"""


def _number(value: Any, name: str, spec: _Param, where: str) -> float:
    """A finite float within ``spec``'s range, or SamuelError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SamuelError(f"{where}: {name} must be a number, got {value!r:.80}")
    number = float(value)
    if not math.isfinite(number) or not spec.lo <= number <= spec.hi:
        raise SamuelError(f"{where}: {name}={value!r:.80} is outside {spec.lo:g}..{spec.hi:g}")
    return number


def _check_keys(effect: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(effect) - {"type", *valid})
    if unknown:
        raise SamuelError(f"{where}: unknown parameter(s) {unknown!r:.200}; valid: {sorted(valid)}")


def _validate_vst3(effect: Mapping[str, Any], where: str) -> dict[str, Any]:
    _check_keys(effect, _VST3_KEYS, where)
    path = effect.get("path")
    if not isinstance(path, str) or not path:
        raise SamuelError(f"{where}: vst3 needs a 'path' to a .vst3 plugin")
    params = effect.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise SamuelError(f"{where}: vst3 'params' must be a table of name = value")
    if len(params) > MAX_VST3_PARAMS:
        raise SamuelError(f"{where}: at most {MAX_VST3_PARAMS} vst3 parameters, got {len(params)}")
    for key, value in params.items():
        ok = isinstance(value, str | bool) or (
            isinstance(value, int | float) and math.isfinite(value)
        )
        if not ok:
            raise SamuelError(
                f"{where}: vst3 parameter {key:.80}={value!r:.80} must be text or a number"
            )
        if len(key) > _MAX_PARAM_TEXT or (isinstance(value, str) and len(value) > _MAX_PARAM_TEXT):
            raise SamuelError(
                f"{where}: vst3 parameter names and text values are at most {_MAX_PARAM_TEXT} "
                "characters"
            )
    return {"type": "vst3", "path": path, "params": dict(params)}


def validate_effect(effect: Any, index: int = 0) -> dict[str, Any]:
    """A checked copy of one effect dict with defaults filled in, or SamuelError naming the fix.

    Does no I/O: a vst3 plugin's path is checked by ``check_post``.
    """
    where = f"post effect #{index + 1}"
    if not isinstance(effect, Mapping):
        raise SamuelError(f"{where}: expected a table with a 'type', got {effect!r:.200}")
    kind = effect.get("type")
    if kind == "vst3":
        return _validate_vst3(effect, f"{where} (vst3)")
    if kind not in BUILTIN_EFFECTS:
        raise SamuelError(f"{where}: unknown effect type {kind!r:.80}; valid types: {EFFECT_TYPES}")
    where = f"{where} ({kind})"
    params = BUILTIN_EFFECTS[kind][1]
    _check_keys(effect, tuple(params), where)
    out: dict[str, Any] = {"type": kind}
    for name, spec in params.items():
        if name in effect:
            out[name] = _number(effect[name], name, spec, where)
        elif spec.default is None:
            raise SamuelError(f"{where}: missing required parameter {name!r}")
        else:
            out[name] = spec.default
    return out


def validate_chain(effects: Any) -> tuple[dict[str, Any], ...]:
    """Validate a sequence of at most MAX_EFFECTS effect dicts (see ``validate_effect``)."""
    if isinstance(effects, str | bytes | Mapping) or not isinstance(effects, list | tuple):
        raise SamuelError(f"post chain must be a list of effect tables, got {effects!r:.200}")
    if len(effects) > MAX_EFFECTS:
        raise SamuelError(
            f"post chain has {len(effects)} effects; at most {MAX_EFFECTS} are allowed"
        )
    return tuple(validate_effect(effect, i) for i, effect in enumerate(effects))


def chain_from_json(text: str) -> tuple[dict[str, Any], ...]:
    """Parse and validate a JSON list of effect objects (as sent over OSC), size-bounded."""
    if not isinstance(text, str):
        raise SamuelError(f"post chain must be JSON text, got {type(text).__name__}")
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_CHAIN_JSON_BYTES:
        raise SamuelError(
            f"post chain JSON is {size} bytes; at most {MAX_CHAIN_JSON_BYTES} are allowed"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SamuelError(f"post chain is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise SamuelError("post chain JSON is nested too deeply; send a flat list") from exc
    return validate_chain(data)


def preset_effects(post: PostSection) -> tuple[dict[str, Any], ...]:
    """The validated effects ``post`` names: a preset, or ``post.chain`` for "custom"."""
    if post.preset == "custom":
        return validate_chain(post.chain)
    if post.preset not in PRESETS:
        raise SamuelError(
            f"unknown post preset {post.preset!r:.80}; valid: {sorted(PRESETS)} or 'custom'"
        )
    return validate_chain(PRESETS[post.preset])


def check_level(value: float | None, name: str, bounds: tuple[float, float]) -> None:
    """None, or a finite number within ``bounds``; else SamuelError naming ``post.<name>``."""
    if value is not None:
        _number(value, name, _Param("", None, *bounds), "post")


def check_post(post: PostSection) -> tuple[dict[str, Any], ...]:
    """Check a whole post section without opening or loading anything; returns its effects.

    Covers the preset, every effect and parameter, the chain's size, the loudness and dry
    vocal levels, and for vst3 effects that the plugin is installed in an allowed plugin folder
    (``post.plugin_dirs``, ``post.system_vst3``). Raises a SamuelError naming the fix.
    """
    effects = preset_effects(post)
    check_level(post.loudness_lufs, "loudness_lufs", LOUDNESS_RANGE)
    check_level(post.dry_vocal_db, "dry_vocal_db", DRY_VOCAL_RANGE)
    plugins = [e for e in effects if e["type"] == "vst3"]
    if plugins:
        roots = plugin_roots(post)
        for effect in plugins:
            resolve_plugin(effect["path"], roots)
    return effects
