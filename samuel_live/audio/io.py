"""Reading takes at 44.1 kHz stereo, and writing renders and sidecars atomically.

Takes come from outside, so a file's header is checked before anything is allocated for it
(sample rate, channels, truncation, a length and memory budget); every failure is an
AudioInputError naming the file and what to do. A write is encoded in memory, then goes to a
temporary file in the destination folder, is fsynced and renamed over the final name, so a
crash or a full disk (DiskFullError) never leaves a half-written render where a DAW or a
watcher might pick it up.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from samuel_live import SAMPLE_RATE
from samuel_live.atomic import atomic_write_bytes
from samuel_live.errors import AudioInputError, SamuelError

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 384_000
"""Sample rates a take may have; others are refused as damaged headers."""
MAX_INPUT_SECONDS = 20 * 60.0
"""Longest take ``read_audio`` decodes unless told otherwise (about 0.4 GB at 44.1 kHz)."""
MAX_DECODE_BYTES = 2**31
"""Memory ``read_audio`` may allocate for one file's samples (bounds high sample rates)."""
MAX_CHANNELS = 64
"""Most channels a take may have; the first two are kept."""

_BLOCK_BYTES = 8 << 20  # decoded at a time, all channels (extra channels are dropped per block)
_SLACK_FRAMES = 4096  # a compressed file may decode this much shorter than its header says
_PLAIN_SUBTYPES = {"FLOAT", "DOUBLE", "ULAW", "ALAW"}

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


def read_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, *, max_seconds: float | None = None
) -> np.ndarray:
    """Read an audio file as float32 stereo (2, n) at ``sample_rate``.

    Reads wav/flac/aiff/ogg/mp3 (soundfile, falling back to pedalboard). A file at rate ``sr``
    with ``m`` samples becomes exactly ``round(m * sample_rate / sr)`` samples long. The header
    is checked before anything is allocated: rate, channels, truncation, and a length of at
    most ``max_seconds`` (default ``MAX_INPUT_SECONDS``) and ``MAX_DECODE_BYTES`` decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"no audio file at {path}; check the path")
    header = probe_audio(path)
    _check_header(path, header, MAX_INPUT_SECONDS if max_seconds is None else max_seconds)
    audio = _decode(path, header)
    return resample(to_stereo(audio), header.rate, sample_rate)


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


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header says, read without decoding any audio."""

    rate: int
    channels: int
    frames: int  # frames the header claims
    present: int  # frames the file's size holds (== frames where that cannot be known)
    reader: Literal["soundfile", "pedalboard"]


def probe_audio(path: str | Path) -> AudioHeader:
    """Read the header of an audio file; AudioInputError if no decoder can open it."""
    try:
        Path(path).open("rb").close()
    except OSError as exc:
        raise AudioInputError(f"cannot open {path} ({exc.strerror}); make the file readable "
                              "by this user or copy it somewhere that is") from exc
    errors: list[str] = []
    info: Any = None
    claim: tuple[float, int, int] | None = None
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile's errors, or a TypeError on odd headers
        errors.append(f"soundfile: {exc}")
    try:
        from pedalboard.io import AudioFile

        with AudioFile(str(path)) as f:  # opening reads the header only
            claim = (float(f.samplerate), int(f.num_channels), int(f.frames))
    except Exception as exc:  # pedalboard raises plain RuntimeError/ValueError on bad files
        errors.append(f"pedalboard: {exc}")
    if info is not None:
        # libsndfile clamps an uncompressed file's frame count to its size; pedalboard believes
        # the header, so the two differ when the file was cut short
        uncompressed = str(info.subtype).startswith("PCM") or info.subtype in _PLAIN_SUBTYPES
        frames = max(info.frames, claim[2]) if uncompressed and claim else info.frames
        return AudioHeader(int(info.samplerate), int(info.channels), int(frames),
                           int(info.frames), "soundfile")
    if claim is not None:
        return AudioHeader(round(claim[0]), claim[1], claim[2], claim[2], "pedalboard")
    raise AudioInputError(
        f"cannot read {path} as audio ({'; '.join(errors)}); "
        "export it as WAV, FLAC, AIFF, OGG or MP3"
    )


def _check_header(path: Path, h: AudioHeader, max_seconds: float) -> None:
    """Refuse, before allocating, files whose header is unusable or would not fit in memory."""
    if h.channels < 1:
        raise AudioInputError(f"{path} has no audio channels; export it again as mono or stereo")
    if h.channels > MAX_CHANNELS:
        raise AudioInputError(f"{path} has {h.channels} channels (at most {MAX_CHANNELS} are "
                              "read); export a mono or stereo mix")
    if not MIN_SAMPLE_RATE <= h.rate <= MAX_SAMPLE_RATE:
        raise AudioInputError(
            f"{path} has a sample rate of {h.rate} Hz, outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}"
            " Hz (a damaged header?); export it again at 44.1 or 48 kHz"
        )
    if h.present < h.frames:
        raise _truncated(path, h, h.present)
    if h.frames <= 0:
        raise AudioInputError(f"{path} contains no audio samples; record or export it again")
    seconds = h.frames / h.rate
    if seconds > max_seconds:
        raise AudioInputError(
            f"{path} claims to be {_duration(seconds)} long ({h.frames} frames at {h.rate} Hz); "
            f"takes of at most {_duration(max_seconds)} are read: trim it or split it"
        )
    need = h.frames * min(h.channels, 2) * 4 + _BLOCK_BYTES
    if need > MAX_DECODE_BYTES:
        raise AudioInputError(
            f"{path} ({_duration(seconds)} at {h.rate} Hz) needs {need / 2**30:.1f} GiB to "
            f"decode, over the {MAX_DECODE_BYTES / 2**30:.1f} GiB budget; "
            "resample it to 48 kHz or trim it"
        )


def _decode(path: Path, h: AudioHeader) -> np.ndarray:
    """(min(channels, 2), n) float32 samples, read in blocks so extra channels cost no memory."""
    out = np.empty((min(h.channels, 2), h.frames), np.float32)
    n = 0
    try:
        for block in _blocks(path, h):
            if not np.isfinite(block).all():
                raise AudioInputError(f"{path} contains NaN or infinite samples (a broken float "
                                      "export); export it again, e.g. as 24-bit PCM")
            take = min(block.shape[1], h.frames - n)
            out[:, n : n + take] = block[:, :take]
            n += take
            if take < block.shape[1]:
                break  # more than the header said: keep what it said, as other readers do
    except AudioInputError:
        raise
    except Exception as exc:  # libsndfile/pedalboard errors on damaged data
        raise AudioInputError(
            f"{path} could not be decoded after {_duration(n / h.rate)} ({exc}); "
            "the file is truncated or damaged: copy or export it again"
        ) from exc
    if n < h.frames - max(_SLACK_FRAMES, h.frames // 100):
        raise _truncated(path, h, n)
    return out[:, :n]


def _blocks(path: Path, h: AudioHeader) -> Iterator[np.ndarray]:
    """Channel-first blocks of at most two channels, from the decoder that read the header."""
    frames = max(1024, _BLOCK_BYTES // (4 * h.channels))
    if h.reader == "soundfile":
        with sf.SoundFile(str(path)) as f:
            while (block := f.read(frames, dtype="float32", always_2d=True)).size:
                yield block[:, :2].T
        return
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        while (block := np.asarray(f.read(frames), np.float32)).size:
            yield block[:2]


def _truncated(path: Path, h: AudioHeader, present: int) -> AudioInputError:
    return AudioInputError(
        f"{path} is truncated: its header promises {_duration(h.frames / h.rate)} of audio but "
        f"the file holds {_duration(present / h.rate)}; it may be an interrupted copy or still "
        "being written: copy or export it again"
    )


def _duration(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60.0)
    if minutes >= 60:
        return f"{int(minutes // 60)} h {int(minutes % 60)} min"
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


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
    encoded = io.BytesIO()  # encode in memory: libsndfile turns a full disk into AssertionError
    sf.write(encoded, data.T, sample_rate, subtype=_SUBTYPES[bit_depth], format=fmt)
    atomic_write_bytes(path, encoded.getbuffer())
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically (for sidecar files)."""
    path = Path(path)
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
