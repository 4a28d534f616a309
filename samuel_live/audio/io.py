"""Reading takes at 44.1 kHz stereo, and writing renders and sidecars atomically.

A write goes to a temporary file in the destination folder, is flushed and fsynced, then
renamed over the final name, so a crash or a full disk never leaves a half-written render
where a DAW or a watcher might pick it up.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from samuel_live import SAMPLE_RATE
from samuel_live.atomic import atomic_file
from samuel_live.errors import AudioInputError, SamuelError

BitDepth = Literal[16, 24, 32]
_SUBTYPES: dict[int, str] = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}
_FORMATS: dict[str, str] = {".wav": "WAV", ".flac": "FLAC"}


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Channel-first float32 stereo (2, n) from mono (n,) or (c, n): mono is duplicated,
    channels past the second are dropped."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[0] > 64:
        raise AudioInputError(
            f"expected audio shaped (samples,) or (channels, samples), got {x.shape}; "
            "pass channel-first arrays (transpose (samples, channels) data)"
        )
    if x.shape[0] == 1:
        return np.repeat(x, 2, axis=0)
    return np.ascontiguousarray(x[:2])


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 stereo (2, n) at ``sample_rate``.

    Reads wav/flac/aiff/ogg/mp3 (pedalboard, falling back to soundfile). A file at rate ``sr``
    with ``m`` samples becomes exactly ``round(m * sample_rate / sr)`` samples long.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"no audio file at {path}; check the path")
    audio, file_rate = _decode_file(path)
    if audio.shape[-1] == 0:
        raise AudioInputError(f"{path} contains no audio samples; record or export it again")
    return resample(to_stereo(audio), file_rate, sample_rate)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling of (channels, n) audio to exactly round(n * to_rate / from_rate)."""
    if from_rate == to_rate:
        return audio
    g = math.gcd(int(from_rate), int(to_rate))
    up, down = int(to_rate) // g, int(from_rate) // g
    out = resample_poly(audio, up, down, axis=-1).astype(np.float32)
    length = round(audio.shape[-1] * to_rate / from_rate)
    if out.shape[-1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[-1])))
    return np.ascontiguousarray(out[:, :length])


def _decode_file(path: Path) -> tuple[np.ndarray, int]:
    """(channels, n) float32 samples and the file's rate; pedalboard first, then soundfile."""
    errors: list[str] = []
    try:
        from pedalboard.io import AudioFile

        with AudioFile(str(path)) as f:
            rate = f.samplerate
            audio = f.read(f.frames)
        return np.asarray(audio, dtype=np.float32), int(round(rate))
    except Exception as exc:  # pedalboard raises plain RuntimeError/ValueError on bad files
        errors.append(f"pedalboard: {exc}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data.T, int(rate)
    except Exception as exc:
        errors.append(f"soundfile: {exc}")
    raise AudioInputError(
        f"cannot read {path} as audio ({'; '.join(errors)}); "
        "export it as WAV, FLAC, AIFF, OGG or MP3"
    )


def write_audio_atomic(
    path: str | Path,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    bit_depth: BitDepth = 24,
) -> Path:
    """Write (2, n) audio to a .wav or .flac file atomically; 32 means 32-bit float WAV."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SamuelError(f"cannot write {path.name}: use a .wav or .flac file name")
    if bit_depth not in _SUBTYPES:
        raise SamuelError(f"bit depth must be 16, 24 or 32 (float), got {bit_depth}")
    if fmt == "FLAC" and bit_depth == 32:
        raise SamuelError("FLAC has no 32-bit float format: write .wav or use bit depth 16/24")
    data = to_stereo(audio)
    if not np.isfinite(data).all():
        raise SamuelError(f"refusing to write {path.name}: the audio contains NaN or inf")
    if bit_depth != 32:
        data = np.clip(data, -1.0, 1.0)
    with atomic_file(path) as f:
        sf.write(f, data.T, sample_rate, subtype=_SUBTYPES[bit_depth], format=fmt)
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically (for sidecar files)."""
    path = Path(path)
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))
    return path
