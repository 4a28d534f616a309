"""The post-processing chain every result goes through before it is written.

Effects are plain dicts (from the TOML config or JSON sent over OSC), validated here and turned
into one ``pedalboard.Pedalboard``. ``PostChain.process`` runs that board, normalises integrated
loudness (BS.1770, pyloudnorm) to the configured target under a -1 dBTP ceiling, and can mix the
dry vocal in for previews. Output length always equals input length.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pedalboard
import pyloudnorm
from scipy.ndimage import convolve1d, minimum_filter1d, uniform_filter1d
from scipy.signal import firwin

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.errors import SamuelError

CEILING_DBTP = -1.0
"""True-peak ceiling of every processed result, in dBFS (4x oversampled, as BS.1770)."""

MAX_GAIN_DB = 40.0
"""Loudness normalisation never raises by more than this, so near-silence is not turned to hiss."""

_LIMIT_WINDOW_S = 0.005  # gain-reduction look-ahead and smoothing of the ceiling limiter
_MIN_LOUDNESS_S = 0.4  # one BS.1770 gating block; shorter input is tiled up to this to be measured


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


_EFFECTS: dict[str, tuple[Callable[..., pedalboard.Plugin], dict[str, _Param]]] = {
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
EFFECT_TYPES: tuple[str, ...] = (*sorted(_EFFECTS), "vst3")
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
        raise SamuelError(f"{where}: {name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not spec.lo <= number <= spec.hi:
        raise SamuelError(f"{where}: {name}={value!r} is outside {spec.lo:g}..{spec.hi:g}")
    return number


def _check_keys(effect: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(effect) - {"type", *valid})
    if unknown:
        raise SamuelError(f"{where}: unknown parameter(s) {unknown}; valid: {sorted(valid)}")


def _validate_vst3(effect: Mapping[str, Any], where: str) -> dict[str, Any]:
    _check_keys(effect, _VST3_KEYS, where)
    path = effect.get("path")
    if not isinstance(path, str) or not path:
        raise SamuelError(f"{where}: vst3 needs a 'path' to a .vst3 plugin")
    params = effect.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise SamuelError(f"{where}: vst3 'params' must be a table of name = value")
    for key, value in params.items():
        ok = isinstance(value, str | bool) or (
            isinstance(value, int | float) and math.isfinite(value)
        )
        if not ok:
            raise SamuelError(f"{where}: vst3 parameter {key}={value!r} must be text or a number")
    return {"type": "vst3", "path": path, "params": dict(params)}


def validate_effect(effect: Any, index: int = 0) -> dict[str, Any]:
    """A checked copy of one effect dict with defaults filled in, or SamuelError naming the fix.

    Does no I/O: a vst3 plugin file is looked for when the chain is built.
    """
    where = f"post effect #{index + 1}"
    if not isinstance(effect, Mapping):
        raise SamuelError(f"{where}: expected a table with a 'type', got {effect!r}")
    kind = effect.get("type")
    if kind == "vst3":
        return _validate_vst3(effect, f"{where} (vst3)")
    if kind not in _EFFECTS:
        raise SamuelError(f"{where}: unknown effect type {kind!r}; valid types: {EFFECT_TYPES}")
    where = f"{where} ({kind})"
    params = _EFFECTS[kind][1]
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
    """Validate a sequence of effect dicts (see ``validate_effect``)."""
    if isinstance(effects, str | bytes | Mapping) or not isinstance(effects, list | tuple):
        raise SamuelError(f"post chain must be a list of effect tables, got {effects!r}")
    return tuple(validate_effect(effect, i) for i, effect in enumerate(effects))


def chain_from_json(text: str) -> tuple[dict[str, Any], ...]:
    """Parse and validate a JSON list of effect objects (as sent over OSC)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise SamuelError(f"post chain is not valid JSON: {exc}") from exc
    return validate_chain(data)


def _load_vst3(effect: Mapping[str, Any]) -> pedalboard.Plugin:
    path = Path(effect["path"]).expanduser()
    if not path.exists():
        raise SamuelError(f"vst3 plugin {path} not found; give the path of a .vst3 bundle")
    loader = getattr(pedalboard, "load_plugin", None)
    if loader is None:
        raise SamuelError("this platform's pedalboard cannot load VST3 plugins")
    try:
        plugin = loader(str(path), parameter_values=dict(effect["params"]))
    except (ImportError, RuntimeError, ValueError, AttributeError, TypeError) as exc:
        raise SamuelError(f"vst3 plugin {path} could not be loaded: {exc}") from exc
    if getattr(plugin, "is_instrument", False):
        raise SamuelError(f"vst3 plugin {path} is an instrument; the post chain needs an effect")
    return plugin


def _make_plugin(effect: Mapping[str, Any]) -> pedalboard.Plugin:
    """One pedalboard plugin from a validated effect dict."""
    if effect["type"] == "vst3":
        return _load_vst3(effect)
    factory, params = _EFFECTS[effect["type"]]
    kwargs = {spec.pb_name or name: effect[name] for name, spec in params.items()}
    return factory(**kwargs)


def _preset_effects(post: PostSection) -> tuple[dict[str, Any], ...]:
    if post.preset == "custom":
        return validate_chain(post.chain)
    if post.preset not in PRESETS:
        raise SamuelError(
            f"unknown post preset {post.preset!r}; valid: {sorted(PRESETS)} or 'custom'"
        )
    return validate_chain(PRESETS[post.preset])


# 4x oversampling interpolator of the true-peak meter; its per-phase L1 norm bounds how far an
# inter-sample peak can exceed the sample peak, which lets quiet results skip the oversampling.
_OS = 4
_TAPS = firwin(20 * _OS + 1, 1.0 / _OS, window=("kaiser", 5.0)) * _OS
_TP_BOUND = max(float(np.abs(_TAPS[p::_OS]).sum()) for p in range(_OS))


def _true_peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per input sample, the largest |value| over channels and its 4x-oversampled neighbours."""
    x = np.asarray(x, dtype=np.float32)
    # Phase 0 of this interpolator is the input itself (scaled by its centre tap).
    env = np.abs(x).max(axis=0) * max(1.0, float(_TAPS[len(_TAPS) // 2]))
    for phase in range(1, _OS):
        between = convolve1d(x, _TAPS[phase::_OS], axis=1, mode="constant")
        np.abs(between, out=between)
        np.maximum(env, between.max(axis=0), out=env)
    return env.astype(np.float64)


def _limit(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, bool]:
    """Hold ``x`` under CEILING_DBTP with a smooth look-ahead gain; True if it had to act."""
    ceiling = 10.0 ** ((CEILING_DBTP - 0.001) / 20.0)  # margin for the float32 rounding
    if x.shape[1] == 0 or float(np.abs(x).max()) * _TP_BOUND <= ceiling:
        return x, False
    env = _true_peak_envelope(x)
    if float(env.max()) <= ceiling:
        return x, False
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    half = max(1, int(_LIMIT_WINDOW_S * sample_rate))
    # A centred min over 2*half+1 samples then a mean over at most that span stays <= need.
    gain = uniform_filter1d(minimum_filter1d(need, 2 * half + 1), 2 * half + 1, mode="nearest")
    out = x * np.minimum(gain, need)
    # Re-interpolating the gain-modulated signal can overshoot by a hair; one scalar fixes it.
    peak = float(_true_peak_envelope(out).max())
    if peak > ceiling:
        out = out * (ceiling / peak)
    return out, True


def _loudness(meter: pyloudnorm.Meter, x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; -inf for silence. Short input is tiled to one gating block."""
    if x.shape[1] == 0:
        return -math.inf
    need = int(_MIN_LOUDNESS_S * sample_rate) + 1
    if x.shape[1] < need:
        x = np.tile(x, (1, -(-need // x.shape[1])))
    return float(meter.integrated_loudness(x.T.astype(np.float64)))


def _normalise(x: np.ndarray, target: float | None, sample_rate: int) -> np.ndarray:
    """Gain to ``target`` LUFS under the ceiling; re-aims up to twice when the ceiling bites."""
    if target is None:
        return _limit(x, sample_rate)[0]
    meter = pyloudnorm.Meter(sample_rate)
    measured = _loudness(meter, x, sample_rate)
    if not math.isfinite(measured):
        return _limit(x, sample_rate)[0]
    gain_db = min(target - measured, MAX_GAIN_DB)
    out = x
    for _ in range(3):
        out, limited = _limit(x * 10.0 ** (gain_db / 20.0), sample_rate)
        if not limited:
            break
        shortfall = target - _loudness(meter, out, sample_rate)
        if shortfall < 0.1 or gain_db + shortfall > MAX_GAIN_DB:
            break
        gain_db += shortfall
    return out


def _as_stereo(audio: np.ndarray, name: str) -> np.ndarray:
    """A (2, n) float64 copy of a (2, n), (1, n) or (n,) finite array, or SamuelError."""
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise SamuelError(f"post: {name} must have shape (2, n), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise SamuelError(f"post: {name} must be float audio, got {x.dtype}")
    if not np.isfinite(x).all():
        raise SamuelError(f"post: {name} contains NaN or infinite samples")
    return np.broadcast_to(x, (2, x.shape[1])).astype(np.float64)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``x`` (channels, m) to exactly n samples."""
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


class PostChain:
    """A validated effect chain plus loudness target; safe to share between threads."""

    def __init__(
        self,
        effects: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
        loudness_lufs: float | None = -16.0,
        dry_vocal_db: float | None = None,
    ) -> None:
        self._effects = validate_chain(effects)
        if loudness_lufs is not None:
            _number(loudness_lufs, "loudness_lufs", _Param("", None, -60.0, 0.0), "post")
        if dry_vocal_db is not None:
            _number(dry_vocal_db, "dry_vocal_db", _Param("", None, -80.0, 12.0), "post")
        self.loudness_lufs = loudness_lufs
        self.dry_vocal_db = dry_vocal_db
        self._board = pedalboard.Pedalboard([_make_plugin(e) for e in self._effects])
        self._max_cutoff = max((e.get("cutoff_hz", 0.0) for e in self._effects), default=0.0)
        # pedalboard plugins keep per-stream state; one result at a time goes through the board.
        self._lock = threading.Lock()

    def describe(self) -> list[dict[str, Any]]:
        """The effects as JSON-able dicts, defaults filled in; ``chain_from_json`` reads them."""
        return json.loads(json.dumps(list(self._effects)))

    def process(
        self,
        audio: np.ndarray,
        vocal: np.ndarray | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> np.ndarray:
        """Effects, loudness normalisation, optional dry vocal: (2, n) float32 in and out.

        ``vocal`` is mixed in at ``dry_vocal_db`` (cut or zero-padded to n) only when that is set.
        The result never exceeds CEILING_DBTP; reverb tails past n samples are cut.
        """
        x = _as_stereo(audio, "audio")
        n = x.shape[1]
        if self._max_cutoff >= 0.5 * sample_rate:
            raise SamuelError(
                f"post: a filter cutoff of {self._max_cutoff:g} Hz is not below the Nyquist "
                f"frequency at {sample_rate} Hz"
            )
        if len(self._board) and n:
            with self._lock:
                wet = self._board.process(x.astype(np.float32), sample_rate, reset=True)
            x = _fit_length(np.asarray(wet, dtype=np.float64), n)
        x = _normalise(x, self.loudness_lufs, sample_rate)
        if vocal is not None and self.dry_vocal_db is not None:
            dry = _fit_length(_as_stereo(vocal, "vocal"), n)
            x, _ = _limit(x + dry * 10.0 ** (self.dry_vocal_db / 20.0), sample_rate)
        return np.ascontiguousarray(x, dtype=np.float32)

    def process_loop(self, audio: np.ndarray, vocal: np.ndarray | None = None,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """``process`` for a loop, in steady state: two copies go through and the second is
        kept, so effects with memory (compressor, reverb) carry the loop's end into its start."""
        x = _as_stereo(audio, "audio")
        n = x.shape[1]
        twice = np.concatenate([x, x], axis=1)
        dry = None if vocal is None else np.tile(_fit_length(_as_stereo(vocal, "vocal"), n),
                                                 (1, 2))
        return np.ascontiguousarray(self.process(twice, dry, sample_rate)[:, n:])


def build_chain(post: PostSection) -> PostChain:
    """The chain for a config section: ``post.preset`` names a preset, or "custom" = post.chain."""
    return PostChain(_preset_effects(post), post.loudness_lufs, post.dry_vocal_db)
