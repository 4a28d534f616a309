"""Output names are checked whole, in bytes, before anything is created; input and model paths
answer a missing file exactly like a forbidden one. Real files, real symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from samuel_live import SAMPLE_RATE
from samuel_live.engine.paths import (
    MAX_FILE_NAME_BYTES,
    SIDECAR_SUFFIX,
    ensure_output_folder,
    input_path,
    model_path,
    output_path,
)
from samuel_live.errors import ModelError, SamuelError
from samuel_live.render.output import write_result
from samuel_live.render.sidecar import Sidecar
from samuel_live.render.take import RenderedTake


def test_the_longest_name_allowed_is_written_with_its_sidecar(tmp_path: Path) -> None:
    # 2-byte characters: the limit is in bytes, so this many characters would pass a count.
    for suffix in (".wav", ".flac"):
        stem = "é" * ((MAX_FILE_NAME_BYTES - len(suffix)) // 2)
        stem += "x" * (MAX_FILE_NAME_BYTES - len(suffix) - len(stem.encode()))
        path = ensure_output_folder(tmp_path, output_path(tmp_path, f"sub/{stem}{suffix}"))
        assert len(path.name.encode()) == MAX_FILE_NAME_BYTES
        side = Sidecar(audio="", source="file:x", start_s=0.0, samples=100,
                       sample_rate=SAMPLE_RATE, settings={}, post=None, loop_bars=0,
                       musical_time=None, model={})
        take = RenderedTake(np.zeros((2, 100), np.float32), b"MThd", (), side)
        write_result(path, take)  # its staged, temp, MIDI and sidecar files
        assert path.is_file() and path.with_name(path.name + SIDECAR_SUFFIX).is_file()
        with pytest.raises(SamuelError, match="bytes"):
            output_path(tmp_path, f"sub/{stem}x{suffix}")
    assert len(list((tmp_path / "sub").iterdir())) == 6  # audio, sidecar and MIDI, twice


def test_a_name_short_in_characters_but_long_in_bytes_is_refused(tmp_path: Path) -> None:
    name = "日" * 80  # 80 characters, 240 bytes
    with pytest.raises(SamuelError, match=f"at most {MAX_FILE_NAME_BYTES}"):
        output_path(tmp_path, name)
    with pytest.raises(SamuelError, match="bytes"):
        output_path(tmp_path, "日" * 86 + "/take")  # a 258-byte folder name
    with pytest.raises(SamuelError, match="bytes"):
        output_path(tmp_path, "/".join(["d" * 200] * 6))  # 1205 bytes in all


def test_checking_a_name_creates_nothing(tmp_path: Path) -> None:
    path = output_path(tmp_path, "new/deeper/take")
    assert path == tmp_path.resolve() / "new" / "deeper" / "take.wav"
    with pytest.raises(SamuelError):
        output_path(tmp_path, "other/" + "é" * 150)
    with pytest.raises(SamuelError):
        output_path(tmp_path, "third/../../x")
    assert list(tmp_path.iterdir()) == []
    assert ensure_output_folder(tmp_path, path) == path
    assert path.parent.is_dir()


def test_a_folder_swapped_for_a_symlink_before_writing_is_refused(tmp_path: Path) -> None:
    renders, outside = tmp_path / "renders", tmp_path / "outside"
    renders.mkdir()
    outside.mkdir()
    path = output_path(renders, "later/take")
    deep = output_path(renders, "dangling/a/b/take")
    os.symlink(outside, renders / "later")
    os.symlink(outside / "missing", renders / "dangling")  # mkdir would follow it out
    for checked in (path, deep):
        with pytest.raises(SamuelError, match="outside the render folder"):
            ensure_output_folder(renders, checked)
    with pytest.raises(SamuelError, match="outside the render folder"):
        output_path(renders, "later/take")
    assert list(outside.iterdir()) == []


def _answers(call, texts: list[str]) -> set[str]:  # noqa: ANN001
    """The distinct error messages ``call`` gives, with the asked text blanked out."""
    answers = set()
    for text in texts:
        with pytest.raises(SamuelError) as err:
            call(text)
        answers.add(str(err.value).replace(text[:200], "<path>"))
    return answers


def test_input_path_answers_missing_and_forbidden_alike(tmp_path: Path) -> None:
    renders, allowed, other = tmp_path / "r", tmp_path / "ok", tmp_path / "other"
    for d in (renders, allowed, other):
        d.mkdir()
    (other / "v.wav").write_bytes(b"RIFF")
    (allowed / "real.wav").write_bytes(b"RIFF")
    os.symlink(other / "v.wav", allowed / "sneaky.wav")
    (allowed / "folder.wav").mkdir()
    asks = [str(other / "v.wav"), str(other / "ghost.wav"), str(allowed / "ghost.wav"),
            str(allowed / "sneaky.wav"), str(allowed / "folder.wav"), "../other/v.wav",
            "/etc/passwd", "/no/such/dir/x.wav"]
    answers = _answers(lambda t: input_path(t, renders, [allowed]), asks)
    assert len(answers) == 1, answers
    assert "allowed_input_dirs" in answers.pop()
    assert input_path("../ok/real.wav", renders, [allowed]) == (allowed / "real.wav").resolve()


def test_model_path_answers_missing_and_forbidden_alike(tmp_path: Path) -> None:
    models, other = tmp_path / "models", tmp_path / "other"
    for d in (models, other):
        d.mkdir()
    for folder, stem in ((models, "good"), (other, "far"), (models, "half")):
        (folder / f"{stem}.safetensors").write_bytes(b"x")
        if stem != "half":
            (folder / f"{stem}.json").write_text("{}")
    (models / "leak.safetensors").write_bytes(b"x")
    os.symlink(other / "far.json", models / "leak.json")  # sidecar that leads out
    asks = [str(other / "far.safetensors"), str(other / "ghost.safetensors"),
            str(models / "ghost.safetensors"), str(models / "half.safetensors"),
            str(models / "leak.safetensors"), "/etc/passwd", "/no/such/m.safetensors",
            str(models / ".." / "other" / "far")]
    answers = _answers(lambda t: model_path(t, [models]), asks)
    assert len(answers) == 1, answers
    for form in ("good", "good.safetensors", "good.json"):
        assert model_path(str(models / form), [models]) == models.resolve() / "good.safetensors"
    with pytest.raises(ModelError):
        model_path("", [models])
