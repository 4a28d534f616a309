"""`samuel-live doctor` names real problems and exits non-zero when one blocks."""

from __future__ import annotations

import socket

from samuel_live.audio.devices import NO_AUDIO_HINT
from samuel_live.config import load_config
from samuel_live.doctor import audio_checks, check_ports, check_render_folder, report, run_checks


def test_busy_port_is_a_failure_with_a_fix(tmp_path, capsys):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        cfg = load_config(None, [f"server.udp_port={port}", "server.tcp_port=0",
                                 "server.http_port=0"])
        checks = check_ports(cfg)
    finally:
        busy.close()
    assert [c.level for c in checks] == ["fail"]
    assert report(checks) == 1
    assert "fix:" in capsys.readouterr().out
    assert "--set server.udp_port=N" in checks[0].fix and "--udp-port N" in checks[0].fix


def test_unwritable_render_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = load_config(None, [f"render.folder={blocker}/sub"])
    assert check_render_folder(cfg).level == "fail"
    cfg = load_config(None, [f"render.folder={blocker}"])  # a file, not a folder
    assert check_render_folder(cfg).level == "fail"


def test_a_missing_render_folder_is_checked_not_created(tmp_path):
    cfg = load_config(None, [f"render.folder={tmp_path}/a/b"])
    check = check_render_folder(cfg)
    assert check.level == "ok" and "will be created" in check.detail
    assert not (tmp_path / "a").exists()


def test_missing_model_blocks(tmp_path):
    cfg = load_config(None, [f"model.path={tmp_path}/none.safetensors",
                             f"render.folder={tmp_path}/r", "server.udp_port=0",
                             "server.tcp_port=0", "server.http_port=0"])
    checks = run_checks(cfg)
    assert any(c.name == "model" and c.level == "fail" for c in checks)
    assert report(checks) == 1


def _device(name: str, inputs: int, outputs: int) -> dict:
    return {"index": 0, "name": name, "hostapi": "ALSA", "max_input_channels": inputs,
            "max_output_channels": outputs, "default_samplerate": 48000.0}


def test_no_input_device_says_how_to_get_audio(capsys):
    checks = audio_checks(["ALSA"], [_device("HDMI 0", 0, 2)])
    assert [(c.name, c.level) for c in checks] == [("audio host APIs", "ok"),
                                                   ("audio input", "warn")]
    assert checks[1].fix == NO_AUDIO_HINT
    report(checks)
    assert f"fix: {NO_AUDIO_HINT}" in capsys.readouterr().out


def test_an_input_device_is_named():
    checks = audio_checks(["ALSA"], [_device("HDMI 0", 0, 2), _device("USB Mic", 1, 0)])
    assert checks[1].level == "ok" and "'USB Mic' (ALSA)" in checks[1].detail


def test_instruments_without_a_soundfont_say_how_to_add_one(tmp_path):
    from samuel_live.doctor import check_instruments

    found = check_instruments(load_config(None, [f"render.soundfont_dirs={tmp_path}"]))
    assert found.level == "warn"
    assert "fluid-soundfont-gm" in found.fix or "fluidsynth" in found.fix
    (tmp_path / "mine.sf2").write_bytes(b"RIFF")
    again = check_instruments(load_config(None, [f"render.soundfont_dirs={tmp_path}"]))
    if "FluidSynth is not installed" not in again.detail:
        assert again.level == "ok" and "mine.sf2" in again.detail
