"""The post-processing chain every result goes through before it is written.

Effects are plain dicts, checked by ``samuel_live.post.spec`` and turned here into one
``pedalboard.Pedalboard``. ``PostChain.process`` runs that board, normalises integrated
loudness (BS.1770, measured as pyloudnorm does: post/loudness.py) to the configured target
under a -1 dBTP ceiling, and can mix the dry vocal in for previews. Output length always
equals input length.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pedalboard
from scipy.ndimage import convolve1d, minimum_filter1d, uniform_filter1d
from scipy.signal import firwin

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.errors import SamuelError
from samuel_live.post.loudness import integrated_loudness
from samuel_live.post.plugins import load_vst3, plugin_roots
from samuel_live.post.spec import (
    BUILTIN_EFFECTS,
    DRY_VOCAL_RANGE,
    LOUDNESS_RANGE,
    chain_from_json,
    check_level,
    check_post,
    validate_chain,
)

__all__ = ["CEILING_DBTP", "MAX_GAIN_DB", "PostChain", "build_chain", "chain_from_json",
           "check_post"]

CEILING_DBTP = -1.0
"""True-peak ceiling of every processed result, in dBFS (4x oversampled, as BS.1770)."""

MAX_GAIN_DB = 40.0
"""Loudness normalisation never raises by more than this, so near-silence is not turned to hiss."""

_LIMIT_WINDOW_S = 0.005  # gain-reduction look-ahead and smoothing of the ceiling limiter
_MIN_LOUDNESS_S = 0.4  # one BS.1770 gating block; shorter input is tiled up to this to be measured


def _make_plugin(effect: Mapping[str, Any], roots: tuple[Path, ...]) -> pedalboard.Plugin:
    """One pedalboard plugin from a validated effect dict."""
    if effect["type"] == "vst3":
        return load_vst3(effect, roots)
    factory, params = BUILTIN_EFFECTS[effect["type"]]
    kwargs = {spec.pb_name or name: effect[name] for name, spec in params.items()}
    return factory(**kwargs)


# 4x oversampling interpolator of the true-peak meter; its per-phase L1 norm bounds how far an
# inter-sample peak can exceed the sample peak, which lets quiet results skip the oversampling.
_OS = 4
_TAPS = firwin(20 * _OS + 1, 1.0 / _OS, window=("kaiser", 5.0)) * _OS
_TP_BOUND = max(float(np.abs(_TAPS[p::_OS]).sum()) for p in range(_OS))


def _true_peak_envelope(x: np.ndarray, ceiling: float | None = None) -> np.ndarray:
    """Per input sample, the largest |value| over channels and its 4x-oversampled neighbours.

    With ``ceiling``, only the stretches where an inter-sample peak could exceed it (the
    per-phase L1 bound over the interpolator's reach) are oversampled; elsewhere the envelope
    holds the sample peak, which like the exact value stays <= ceiling there. Everything
    ``_limit`` derives from it (which samples exceed the ceiling, by how much, the maximum when
    it exceeds) is then unchanged, at a fraction of the cost for a result that is mostly below.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.shape[0] > 1 and all(np.array_equal(x[0], c) for c in x[1:]):
        x = x[:1]  # identical channels: their maximum is any one of them
    # Phase 0 of this interpolator is the input itself (scaled by its centre tap).
    peak = np.abs(x).max(axis=0)
    env = peak * max(1.0, float(_TAPS[len(_TAPS) // 2]))
    if ceiling is None:
        spans = [(0, x.shape[1])]
    else:
        spans = _hot_spans(peak, ceiling)
    for start, end in spans:
        lo, hi = max(0, start - 2 * _REACH), min(x.shape[1], end + 2 * _REACH)
        for phase in range(1, _OS):
            between = convolve1d(x[:, lo:hi], _TAPS[phase::_OS], axis=1, mode="constant")
            np.abs(between, out=between)
            np.maximum(env[start:end], between[:, start - lo : end - lo].max(axis=0),
                       out=env[start:end])
    return env.astype(np.float64)


_REACH = len(_TAPS) // (2 * _OS) + 1  # input samples either side one output phase depends on
_MERGE_GAP = 4096  # stretches closer than this are oversampled as one


_BLOCK = 256  # the bound is taken per block of samples; must be at least _REACH


def _hot_spans(peak: np.ndarray, ceiling: float) -> list[tuple[int, int]]:
    """[start, end) sample stretches holding every sample whose inter-sample peak could exceed
    ``ceiling``: the bound of sample i is the largest sample peak within _REACH of it, and the
    largest peak of i's block and its two neighbours (_BLOCK >= _REACH) is never below that."""
    n = peak.shape[0]
    blocks = -(-n // _BLOCK)
    block_max = np.zeros(blocks + 2)
    padded = np.zeros(blocks * _BLOCK, dtype=peak.dtype)
    padded[:n] = peak
    block_max[1:-1] = padded.reshape(blocks, _BLOCK).max(axis=1)
    near = np.maximum(np.maximum(block_max[:-2], block_max[1:-1]), block_max[2:])
    runs = _runs(near * _TP_BOUND > ceiling, merge=-(-_MERGE_GAP // _BLOCK))
    return [(start * _BLOCK, min(end * _BLOCK, n)) for start, end in runs]


def _runs(mask: np.ndarray, merge: int) -> list[tuple[int, int]]:
    """[start, end) of the True runs of ``mask``, runs less than ``merge`` apart joined."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.view(np.int8), [0]])))
    runs: list[tuple[int, int]] = []
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if runs and start - runs[-1][1] < merge:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _limit(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, bool]:
    """Hold ``x`` under CEILING_DBTP with a smooth look-ahead gain; True if it had to act."""
    ceiling = 10.0 ** ((CEILING_DBTP - 0.001) / 20.0)  # margin for the float32 rounding
    if x.shape[1] == 0 or float(np.abs(x).max()) * _TP_BOUND <= ceiling:
        return x, False
    env = _true_peak_envelope(x, ceiling)
    if float(env.max()) <= ceiling:
        return x, False
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    half = max(1, int(_LIMIT_WINDOW_S * sample_rate))
    # A centred min over 2*half+1 samples then a mean over at most that span stays <= need.
    gain = uniform_filter1d(minimum_filter1d(need, 2 * half + 1), 2 * half + 1, mode="nearest")
    out = x * np.minimum(gain, need)
    # Re-interpolating the gain-modulated signal can overshoot by a hair; one scalar fixes it.
    peak = float(_true_peak_envelope(out, ceiling).max())
    if peak > ceiling:
        out = out * (ceiling / peak)
    return out, True


def _loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; -inf for silence. Short input is tiled to one gating block.

    A single channel stands for dual mono (see ``_as_channels``) and is measured as two."""
    if x.shape[1] == 0:
        return -math.inf
    need = int(_MIN_LOUDNESS_S * sample_rate) + 1
    if x.shape[1] < need:
        x = np.tile(x, (1, -(-need // x.shape[1])))
    return integrated_loudness(np.broadcast_to(x, (2, x.shape[1])), sample_rate)


def _normalise(x: np.ndarray, target: float | None, sample_rate: int) -> np.ndarray:
    """Gain to ``target`` LUFS under the ceiling; re-aims up to twice when the ceiling bites."""
    if target is None:
        return _limit(x, sample_rate)[0]
    measured = _loudness(x, sample_rate)
    if not math.isfinite(measured):
        return _limit(x, sample_rate)[0]
    gain_db = min(target - measured, MAX_GAIN_DB)
    out = x
    for _ in range(3):
        out, limited = _limit(x * 10.0 ** (gain_db / 20.0), sample_rate)
        if not limited:
            break
        shortfall = target - _loudness(out, sample_rate)
        if shortfall < 0.1 or gain_db + shortfall > MAX_GAIN_DB:
            break
        gain_db += shortfall
    return out


def _as_channels(audio: np.ndarray, name: str) -> np.ndarray:
    """A float64 copy of a (2, n), (1, n) or (n,) finite array, or SamuelError: (2, n), or
    (1, n) for mono and dual mono (identical channels), which the meter, the limiter and
    ``process``'s result treat as both channels; the work halves."""
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise SamuelError(f"post: {name} must have shape (2, n), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise SamuelError(f"post: {name} must be float audio, got {x.dtype}")
    if not np.isfinite(x).all():
        raise SamuelError(f"post: {name} contains NaN or infinite samples")
    if x.shape[0] == 2 and np.array_equal(x[0], x[1]):
        x = x[:1]
    return x.astype(np.float64)


def _as_stereo(audio: np.ndarray, name: str) -> np.ndarray:
    """``_as_channels`` always as (2, n) (a read-only view for mono)."""
    x = _as_channels(audio, name)
    return np.broadcast_to(x, (2, x.shape[1]))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``x`` (channels, m) to exactly n samples."""
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


CHANNEL_WISE = frozenset({"gain", "highpass", "lowpass", "eq", "peak", "lowshelf", "highshelf",
                          "compressor", "limiter"})
"""Built-in effect types that process each channel on its own (checked in tests/test_post.py)."""


class PostChain:
    """A validated effect chain plus loudness target; safe to share between threads.

    vst3 effects load only from ``plugin_dirs`` (resolved folders; see ``plugin_roots``).
    """

    def __init__(
        self,
        effects: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
        loudness_lufs: float | None = -16.0,
        dry_vocal_db: float | None = None,
        plugin_dirs: Iterable[Path] = (),
    ) -> None:
        self._effects = validate_chain(effects)
        check_level(loudness_lufs, "loudness_lufs", LOUDNESS_RANGE)
        check_level(dry_vocal_db, "dry_vocal_db", DRY_VOCAL_RANGE)
        self.loudness_lufs = loudness_lufs
        self.dry_vocal_db = dry_vocal_db
        roots = tuple(plugin_dirs)
        self._board = pedalboard.Pedalboard([_make_plugin(e, roots) for e in self._effects])
        self._max_cutoff = max((e.get("cutoff_hz", 0.0) for e in self._effects), default=0.0)
        # Effects that treat each channel alone give a dual-mono input a dual-mono output, so
        # one channel through the board is enough (the harmonic codec decodes mono): half the
        # work, the same samples. Reverb (a stereo space) and vst3 effects always get both.
        self._mono_ok = all(e["type"] in CHANNEL_WISE for e in self._effects)
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
        x = _as_channels(audio, "audio")  # (1, n) stands for dual mono until the end
        n = x.shape[1]
        if self._max_cutoff >= 0.5 * sample_rate:
            raise SamuelError(
                f"post: a filter cutoff of {self._max_cutoff:g} Hz is not below the Nyquist "
                f"frequency at {sample_rate} Hz"
            )
        if len(self._board) and n:
            if x.shape[0] == 1 and not self._mono_ok:
                x = np.repeat(x, 2, axis=0)
            with self._lock:
                wet = self._board.process(x.astype(np.float32), sample_rate, reset=True)
            x = _fit_length(np.asarray(wet, dtype=np.float64), n)
        x = _normalise(x, self.loudness_lufs, sample_rate)
        if vocal is not None and self.dry_vocal_db is not None:
            dry = _fit_length(_as_stereo(vocal, "vocal"), n)
            x, _ = _limit(x + dry * 10.0 ** (self.dry_vocal_db / 20.0), sample_rate)
        return np.ascontiguousarray(np.broadcast_to(x, (2, n)), dtype=np.float32)

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
    """The chain for a config section, checked by ``check_post`` first, then loaded.

    ``post.preset`` names a preset, or "custom" = post.chain. Loading a vst3 effect runs its
    native code: call this off the network thread, and only on a section ``check_post`` passed.
    """
    effects = check_post(post)
    return PostChain(effects, post.loudness_lufs, post.dry_vocal_db, plugin_roots(post))
