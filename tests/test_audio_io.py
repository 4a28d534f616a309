"""Audio files: reading any common format at 44.1 kHz stereo, and atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from samuel_live.atomic import sweep_stale_temps
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


DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    import numpy as np
    from samuel_live.atomic import atomic_path
    from samuel_live.audio.io import write_audio_atomic
    from samuel_live.errors import DiskFullError
    folder, limit, writers = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    old = write_audio_atomic(folder / "render.wav", np.zeros((2, 50), np.float32))
    before = old.read_bytes()
    if limit:  # past this size the kernel answers EFBIG (and SIGXFSZ, ignored here)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    audio = np.full((2, 10 * 44100), 0.25, np.float32)

    def soundfile_to_path():  # how libsndfile reports a full disk: AssertionError
        import soundfile as sf
        with atomic_path(old) as tmp:
            sf.write(str(tmp), audio.T, 44100, subtype="PCM_24", format="WAV")

    def torch_save():  # RuntimeError from PytorchStreamWriter
        import torch
        with atomic_path(folder / "state.pt") as tmp:
            torch.save({"w": torch.ones(300_000)}, tmp)

    def safetensors_save():  # SafetensorError
        import torch
        from safetensors.torch import save_file
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file({"w": torch.ones(300_000)}, str(tmp))

    run = {"write_audio_atomic": lambda: write_audio_atomic(old, audio),
           "soundfile": soundfile_to_path, "torch": torch_save,
           "safetensors": safetensors_save}
    messages = {}
    for name in writers:
        try:
            run[name]()
            messages[name] = None
        except DiskFullError as exc:
            messages[name] = str(exc)
    print(json.dumps({"messages": messages, "kept": old.read_bytes() == before,
                      "files": sorted(p.name for p in folder.iterdir())}))
    """
)


def _disk_full_result(out: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_full_disk_is_a_disk_full_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    """A real ENOSPC: a 256 KiB tmpfs mounted in a private user+mount namespace."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here to mount a small tmpfs without root")
    mount = 'mount -t tmpfs -o size=256k samuel-test "$1" || exit 77; exec "$2" -c "$3" "$1" 0 "$4"'
    writers = "write_audio_atomic,soundfile,torch,safetensors"
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, "sh",
         str(folder), sys.executable, DISK_FULL_SCRIPT, writers],
        capture_output=True, text=True, timeout=120,
    )
    if out.returncode == 77 or (out.returncode != 0 and out.stderr.startswith("unshare:")):
        pytest.skip(f"cannot mount a small tmpfs here (user namespaces off?): {out.stderr[:200]}")
    result = _disk_full_result(out)
    assert result["files"] == ["render.wav"] and result["kept"]  # no temp left, old file intact
    messages = result["messages"]
    assert isinstance(messages, dict) and list(messages) == writers.split(",")
    for writer, message in messages.items():
        assert message is not None, f"{writer} did not raise DiskFullError"
        assert "is full" in message and f"free space on {folder}" in message, writer
        assert "another output folder" in message
    assert "render.wav" in messages["write_audio_atomic"]
    assert "state.pt" in messages["torch"]


def test_file_size_limit_is_a_disk_full_error(tmp_path: Path) -> None:
    """A real EFBIG from RLIMIT_FSIZE (works unprivileged): same error, no temp file left."""
    out = subprocess.run([sys.executable, "-c", DISK_FULL_SCRIPT, str(tmp_path), "200000",
                          "write_audio_atomic"],
                         capture_output=True, text=True, timeout=120)
    result = _disk_full_result(out)
    assert result["files"] == ["render.wav"] and result["kept"]
    for message in result["messages"].values():  # type: ignore[union-attr]
        assert "render.wav is too large for the file system" in str(message)
        assert f"free space on {tmp_path}" in str(message)


def test_sweep_removes_only_our_stale_temps(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    names = {
        "dead_writer": f".a.wav.samuel-{dead_pid}-abc12_xy.tmp",
        "live_fresh": f".b.wav.samuel-{live_pid}-abc12_xy.tmp",
        "live_old": f".c.json.samuel-{live_pid}-k2j4h5g6.tmp",
        "foreign_old": ".d.wav.abc12_xy.tmp",  # not our naming: never touched
        "user_file": "notes.tmp",
        "render": "render.wav",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    for key in ("live_old", "foreign_old", "user_file"):
        os.utime(tmp_path / names[key], (time.time() - 3600,) * 2)
    (tmp_path / f".e.wav.samuel-{dead_pid}-qqqqqqqq.tmp").mkdir()  # a folder: never removed
    removed = sweep_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([names["dead_writer"], names["live_old"]])
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[k] for k in ("live_fresh", "foreign_old", "user_file", "render")} | {
        f".e.wav.samuel-{dead_pid}-qqqqqqqq.tmp"
    }
    assert sweep_stale_temps(tmp_path / "missing") == []


def test_sweep_removes_the_temp_of_a_killed_writer(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, time
            from samuel_live.atomic import atomic_file
            with atomic_file(sys.argv[1]) as f:
                f.write(b"half a render")
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
            """), str(tmp_path / "render.wav")],
        stdout=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".render.wav.samuel-")
    assert [p.name for p in sweep_stale_temps(tmp_path)] == stale
    assert list(tmp_path.iterdir()) == []


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
