"""The key lock as a per-request setting: resolved like the other sampling settings, refused
before any work when malformed, and recorded in the sidecar so batches re-render on change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samuel_live.cli import main
from samuel_live.config import GenerateSection, load_config
from samuel_live.errors import SamuelError
from samuel_live.render.settings import SettingsRequest, resolve_settings
from samuel_live.render.sidecar import sidecar_path
from tests.test_render_path import SAMPLING, _checkpoint, _vocal


def test_key_resolves_request_then_config_then_checkpoint_then_auto() -> None:
    assert resolve_settings(SettingsRequest(seed=1)).key == "auto"
    assert resolve_settings(SettingsRequest(seed=1), checkpoint={"key": "off"}).key == "off"
    config = GenerateSection(key="D minor")
    assert resolve_settings(SettingsRequest(seed=1), config=config,
                            checkpoint={"key": "off"}).key == "D minor"
    assert resolve_settings(SettingsRequest(seed=1, key="off"), config=config).key == "off"
    with pytest.raises(SamuelError, match="tonic"):
        resolve_settings(SettingsRequest(seed=1, key="Q major"))


def test_config_file_sets_the_key(tmp_path: Path) -> None:
    path = tmp_path / "samuel.toml"
    path.write_text('[generate]\nkey = "E minor"\n')
    assert load_config(path).generate.key == "E minor"


def test_generate_refuses_a_bad_key_before_any_work(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", str(tmp_path / "no-such-take.wav"), "-o", str(tmp_path / "o.wav"),
                 "--model", str(tmp_path / "no-model"), "--key", "H dorian"])
    err = capsys.readouterr().err
    assert code != 0 and "tonic" in err and "no-such-take" not in err


def test_the_sidecar_records_the_key_and_a_new_key_is_a_new_result(tmp_path: Path) -> None:
    ckpt, vocal = _checkpoint(tmp_path), _vocal(tmp_path / "in", 1.0)
    for key in ("off", "A minor"):
        out = tmp_path / f"{key}.wav"
        assert main(["generate", str(vocal), "-o", str(out), "--model", str(ckpt),
                     "--key", key, *SAMPLING]) == 0
        assert json.loads(sidecar_path(out).read_text())["settings"]["key"] == key
    assert (tmp_path / "off.wav").read_bytes() != (tmp_path / "A minor.wav").read_bytes()
