"""Audio files from outside are checked before anything is allocated for them.

Each damaged file below is built byte by byte or cut from a real export, and must give an
AudioInputError naming the file and what to do, never a raw numpy/libsndfile error.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from samuel_live.audio import io as audio_io
from samuel_live.audio.io import probe_audio, read_audio
from samuel_live.errors import AudioInputError


def _wav_header(rate: int, channels: int, data_bytes: int, bits: int = 16, fmt: int = 1) -> bytes:
    """A canonical 44-byte RIFF/WAVE header; nothing checks that the data is really there."""
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate,
                                (rate * block) & 0xFFFFFFFF, block, bits)
        + b"data" + struct.pack("<I", data_bytes)
    )


def _write_wav(path: Path, rate: int = 44100, channels: int = 2, data_bytes: int = 4000,
               payload: bytes | None = None, **kwargs: int) -> Path:
    body = bytes(data_bytes) if payload is None else payload
    path.write_bytes(_wav_header(rate, channels, data_bytes, **kwargs) + body)
    return path


def _cut(tmp_path: Path, suffix: str) -> Path:
    """A real 10 s stereo export with its last two thirds cut off."""
    x = (0.3 * np.sin(np.arange(441000) / 10)).astype(np.float32)
    full = tmp_path / f"full{suffix}"
    sf.write(full, np.stack([x, x]).T, 44100)
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return cut


BOMB_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time, tracemalloc
    import numpy as np, soundfile as sf
    from samuel_live.audio.io import read_audio
    from samuel_live.errors import AudioInputError
    warm, bomb = sys.argv[1], sys.argv[2]
    read_audio(warm)  # every decoder and lazy import loaded before measuring
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        read_audio(bomb)
        message = None
    except AudioInputError as exc:
        message = str(exc)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"message": message, "seconds": seconds, "traced_peak": peak,
                      "rss_growth_kib": rss1 - rss0}))
    """
)


@pytest.mark.parametrize("claimed", ["400 MB", "4 GB"])
def test_header_bomb_is_refused_fast_without_allocating(tmp_path: Path, claimed: str) -> None:
    """Issue 12 item 4: a 44-byte WAV claiming 400 MB (or 4 GB) of samples."""
    warm = tmp_path / "warm.wav"
    sf.write(warm, np.zeros((4410, 2), np.float32), 44100)
    data_bytes = 400_000_000 if claimed == "400 MB" else 0xFFFFFF00
    bomb = tmp_path / "bomb.wav"
    bomb.write_bytes(_wav_header(44100, 2, data_bytes))
    assert bomb.stat().st_size == 44
    out = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(warm), str(bomb)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["message"] is not None and "bomb.wav is truncated" in result["message"]
    assert "holds 0.0 s" in result["message"]
    assert result["seconds"] < 1.0, result
    assert result["traced_peak"] < 5 * 2**20, result  # numpy reports its buffers to tracemalloc
    assert result["rss_growth_kib"] < 50 * 1024, result


def test_long_file_is_refused_by_the_budget_naming_its_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real (sparse) 400 MB file: the header is honest, the take is just too long
    path = tmp_path / "long.wav"
    path.write_bytes(_wav_header(44100, 2, 400_000_000))
    with path.open("r+b") as f:
        f.truncate(44 + 400_000_000)
    with pytest.raises(AudioInputError, match=r"long\.wav claims to be 37 min 47\.6 s long"):
        read_audio(path)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((3 * 44100, 2), np.float32), 44100)
    assert read_audio(short).shape == (2, 3 * 44100)
    with pytest.raises(AudioInputError, match=r"claims to be 3\.0 s long.*at most 2\.0 s"):
        read_audio(short, max_seconds=2.0)
    monkeypatch.setattr(audio_io, "MAX_INPUT_SECONDS", 2.5)  # the module default is the knob
    with pytest.raises(AudioInputError, match=r"at most 2\.5 s"):
        read_audio(short)


def test_high_rate_file_is_refused_by_the_memory_budget(tmp_path: Path) -> None:
    # 16 min 40 s at 384 kHz is under the length limit but needs ~2.9 GiB as float32 stereo
    path = tmp_path / "hires.wav"
    data_bytes = 384_000 * 1000 * 4
    path.write_bytes(_wav_header(384_000, 2, data_bytes))
    with path.open("r+b") as f:
        f.truncate(44 + data_bytes)
    with pytest.raises(AudioInputError, match=r"hires\.wav .*GiB to decode.*resample it"):
        read_audio(path)


@pytest.mark.parametrize("rate", [1, 7999, 384_001, 2**31 - 1])
def test_sample_rate_out_of_range_is_refused(tmp_path: Path, rate: int) -> None:
    path = _write_wav(tmp_path / "odd_rate.wav", rate=rate)
    with pytest.raises(AudioInputError, match=rf"odd_rate\.wav has a sample rate of {rate} Hz"):
        read_audio(path)


@pytest.mark.parametrize("rate", [8000, 384_000])
def test_sample_rate_limits_are_accepted(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "edge.wav"
    sf.write(path, np.zeros((rate // 10, 1), np.float32), rate)
    assert read_audio(path).shape == (2, 4410)


@pytest.mark.parametrize("suffix", [".wav", ".aiff", ".flac", ".mp3"])
def test_truncated_files_are_reported(tmp_path: Path, suffix: str) -> None:
    cut = _cut(tmp_path, suffix)
    with pytest.raises(AudioInputError, match=r"cut\.\w+ (is truncated|could not be decoded)"):
        read_audio(cut)
    assert read_audio(tmp_path / f"full{suffix}").shape[1] >= 441000


def test_truncated_wav_header_says_what_it_promised(tmp_path: Path) -> None:
    path = _write_wav(tmp_path / "half.wav", data_bytes=441000 * 4, payload=bytes(44100 * 4))
    assert probe_audio(path).frames == 441000 and probe_audio(path).present == 44100
    with pytest.raises(AudioInputError, match=r"promises 10\.0 s .* holds 1\.0 s.*copy or export"):
        read_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(tmp_path: Path, bad: float) -> None:
    samples = np.zeros(100_000, np.float32)
    samples[77_777] = bad
    path = _write_wav(tmp_path / "broken_float.wav", channels=1, bits=32, fmt=3,
                      data_bytes=samples.nbytes, payload=samples.tobytes())
    with pytest.raises(AudioInputError, match=r"broken_float\.wav contains NaN or infinite"):
        read_audio(path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("zero_channels.wav", _wav_header(44100, 0, 4000) + bytes(4000), "Channel count is zero"),
        ("many_channels.wav", _wav_header(44100, 1000, 8000) + bytes(8000),
         "has 1000 channels.*export a mono or stereo mix"),
        ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(200), "export it as WAV, FLAC"),
        ("notes.xyz", b"just some text, not audio at all\n" * 10, "export it as WAV, FLAC"),
        ("headless.wav", bytes(1000), "export it as WAV, FLAC"),
    ],
)
def test_unusable_files_name_the_file_and_the_fix(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioInputError, match=match) as info:
        read_audio(path)
    assert name in str(info.value)


def test_unreadable_file_is_an_audio_input_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, np.zeros((100, 2), np.float32), 44100)
    path.chmod(0)
    try:
        with path.open("rb"):
            pytest.skip("running as root: file permissions do not stop reads here")
    except PermissionError:
        pass
    with pytest.raises(AudioInputError, match=r"locked\.wav \(Permission denied\); make the file"):
        read_audio(path)


def test_a_folder_or_missing_path_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no audio file"):
        read_audio(tmp_path)
    with pytest.raises(AudioInputError, match="no audio file"):
        read_audio(tmp_path / "missing.flac")
