"""Audio files: reading any common format at 44.1 kHz stereo, and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from samuel_live.audio import io as audio_io
from samuel_live.audio.io import read_audio, to_stereo, write_audio_atomic, write_json_atomic
from samuel_live.errors import AudioInputError, SamuelError


def _tone(freq: float, rate: int, n: int, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x * (0.9**c) for c in range(channels)])


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1])))
    return float(np.argmax(spectrum) * rate / x.shape[-1])


def test_to_stereo() -> None:
    mono = np.arange(5, dtype=np.float64)
    assert to_stereo(mono).shape == (2, 5) and to_stereo(mono).dtype == np.float32
    assert np.array_equal(to_stereo(mono[None])[1], mono)
    assert to_stereo(np.ones((6, 5))).shape == (2, 5)
    with pytest.raises(AudioInputError, match="channel-first"):
        to_stereo(np.zeros((1000, 2)))


@pytest.mark.parametrize("rate", [48000, 22050, 44100, 96000])
def test_mono_wav_is_resampled_to_exact_length(tmp_path: Path, rate: int) -> None:
    n = rate * 3 // 2 + 7
    path = tmp_path / "take.wav"
    sf.write(path, _tone(1000.0, rate, n)[0], rate, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.shape == (2, round(n * 44100 / rate))
    assert audio.dtype == np.float32
    assert np.array_equal(audio[0], audio[1])
    assert abs(_peak_hz(audio[0], 44100) - 1000.0) < 2.0
    assert np.abs(audio[0, 2000:-2000]).max() == pytest.approx(0.5, abs=0.01)


def test_multichannel_flac_keeps_first_two_channels(tmp_path: Path) -> None:
    source = _tone(440.0, 44100, 4410, channels=4)
    path = tmp_path / "multi.flac"
    sf.write(path, source.T, 44100, subtype="PCM_24")
    audio = read_audio(path)
    assert audio.shape == (2, 4410)
    np.testing.assert_allclose(audio, source[:2], atol=1e-5)


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".aiff"])
def test_reads_compressed_and_other_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"take{suffix}"
    sf.write(path, _tone(440.0, 44100, 44100, channels=2).T, 44100)
    audio = read_audio(path)
    assert audio.shape[0] == 2
    assert abs(audio.shape[1] - 44100) < 3000  # mp3 frames pad the end
    assert abs(_peak_hz(audio[0, :40000], 44100) - 440.0) < 3.0


def test_missing_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no audio file"):
        read_audio(tmp_path / "nope.wav")
    garbage = tmp_path / "notes.wav"
    garbage.write_text("this is not audio")
    with pytest.raises(AudioInputError, match="cannot read"):
        read_audio(garbage)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), 44100)
    with pytest.raises(AudioInputError, match="no audio samples"):
        read_audio(empty)


@pytest.mark.parametrize(
    ("name", "bit_depth", "tolerance", "subtype"),
    [
        ("out.wav", 16, 1e-4, "PCM_16"),
        ("out.wav", 24, 1e-6, "PCM_24"),
        ("out.wav", 32, 0.0, "FLOAT"),
        ("out.flac", 16, 1e-4, "PCM_16"),
        ("out.flac", 24, 1e-6, "PCM_24"),
    ],
)
def test_write_round_trip(
    tmp_path: Path, name: str, bit_depth: int, tolerance: float, subtype: str
) -> None:
    source = _tone(440.0, 44100, 3000, channels=2)
    path = write_audio_atomic(tmp_path / name, source, bit_depth=bit_depth)
    assert sf.info(path).subtype == subtype
    np.testing.assert_allclose(read_audio(path), source, atol=tolerance)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_float_keeps_overs_and_pcm_clips(tmp_path: Path) -> None:
    loud = np.full((2, 100), 1.5, np.float32)
    assert read_audio(write_audio_atomic(tmp_path / "f.wav", loud, bit_depth=32)).max() == 1.5
    assert read_audio(write_audio_atomic(tmp_path / "i.wav", loud, bit_depth=24)).max() <= 1.0


def test_write_rejects_bad_requests(tmp_path: Path) -> None:
    audio = np.zeros((2, 10), np.float32)
    with pytest.raises(SamuelError, match=".wav or .flac"):
        write_audio_atomic(tmp_path / "x.mp3", audio)
    with pytest.raises(SamuelError, match="FLAC"):
        write_audio_atomic(tmp_path / "x.flac", audio, bit_depth=32)
    with pytest.raises(SamuelError, match="NaN"):
        write_audio_atomic(tmp_path / "x.wav", np.full((2, 10), np.nan, np.float32))
    with pytest.raises(SamuelError, match="does not exist"):
        write_audio_atomic(tmp_path / "missing" / "x.wav", audio)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_audio_atomic(tmp_path / "render.wav", np.zeros((2, 50), np.float32))
    before = path.read_bytes()

    def disk_full(file, data, *args, **kwargs):  # writes part of the file, then fails
        file.write(b"RIFF\x00\x00")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io.sf, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_audio_atomic(path, np.ones((2, 5000), np.float32))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["render.wav"]


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "render.wav"
    write_audio_atomic(path, np.zeros((2, 50), np.float32))
    write_audio_atomic(path, np.full((2, 80), 0.25, np.float32))
    assert read_audio(path).shape == (2, 80)
    assert [p.name for p in tmp_path.iterdir()] == ["render.wav"]


def test_write_json_atomic(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "take.json", {"name": "Take – 1", "bars": [1, 2]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"name": "Take – 1", "bars": [1, 2]}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text(encoding="utf-8"))["bars"] == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["take.json"]
