"""`samuel-live generate` end to end: file in, accompaniment file + sidecar out."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from samuel_live.cli import main
from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, save_checkpoint
from samuel_live.model.unet import SamuelUNet, UNetConfig

TINY = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                  attn_levels=(1,), cross_attn_levels=(0, 1))


def _checkpoint(tmp_path):
    torch.manual_seed(0)
    net = SamuelUNet(TINY)
    for p in net.parameters():  # the output conv starts at zero: give it signal
        p.data.add_(0.01 * torch.randn_like(p))
    stats = LatentStats((-5.0,) * 64, (2.0,) * 64, (-5.0,) * 64, (2.0,) * 64)
    meta = CheckpointMeta(model=TINY.to_dict(), codec="harmonic", stats=stats)
    return save_checkpoint(tmp_path / "tiny", net.state_dict(), meta)


def test_generate_writes_exact_length_and_sidecar(tmp_path):
    ckpt = _checkpoint(tmp_path)
    sr = 48000  # a non-44.1 kHz take is resampled first
    t = np.arange(int(3.3 * sr)) / sr
    vocal = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "vocal.wav", vocal, sr)
    out = tmp_path / "acc.wav"
    code = main(["generate", str(tmp_path / "vocal.wav"), "-o", str(out), "--model", str(ckpt),
                 "--steps", "3", "--sampler", "ddim", "--device", "cpu", "-q"])
    assert code == 0
    audio, rate = sf.read(out, always_2d=True)
    assert rate == 44100 and audio.shape == (round(3.3 * 44100), 2)
    side = json.loads(out.with_suffix(".wav.json").read_text())
    assert side["samples"] == audio.shape[0]
    assert side["settings"]["steps"] == 3 and side["model"]["hash"]
    assert np.isfinite(audio).all()


def test_generate_missing_model_is_a_clear_error(tmp_path, capsys):
    sf.write(tmp_path / "v.wav", np.zeros(4410), 44100)
    code = main(["generate", str(tmp_path / "v.wav"), "-o", str(tmp_path / "o.wav"),
                 "--model", str(tmp_path / "nope.safetensors")])
    assert code != 0
    assert "no model at" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_generate_unreadable_audio_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    code = main(["generate", str(bad), "-o", str(tmp_path / "o.wav"),
                 "--model", str(_checkpoint(tmp_path))])
    assert code != 0
    assert "bad.wav" in capsys.readouterr().err


def test_generate_loop_is_exactly_n_bars(tmp_path):
    ckpt = _checkpoint(tmp_path)
    t = np.arange(int(6 * 44100)) / 44100
    sf.write(tmp_path / "vocal.wav", 0.3 * np.sin(2 * np.pi * 330 * t), 44100)
    out = tmp_path / "loop.wav"
    code = main(["generate", str(tmp_path / "vocal.wav"), "-o", str(out), "--model", str(ckpt),
                 "--steps", "2", "--sampler", "ddim", "--loop-bars", "2", "--bpm", "120",
                 "--meter", "4/4", "--device", "cpu", "-q", "--bit-depth", "32"])
    assert code == 0
    audio, _ = sf.read(out, always_2d=True)
    assert audio.shape[0] == 2 * 4 * 44100 // 2  # 2 bars of 4 beats at 120 bpm = 4 s
    side = json.loads(out.with_suffix(".wav.json").read_text())
    assert side["musical_time"]["source"] == "cli" and side["loop_bars"] == 2
    # no click at the wrap: the curvature across it is like the curvature anywhere else
    x = audio[:, 0]
    across = np.abs(np.diff(np.concatenate([x[-2:], x[:2]]), 2)).max()
    assert across <= np.percentile(np.abs(np.diff(x, 2)), 99.9) + 1e-6


def test_unwritable_output_is_refused_before_generating(tmp_path, capsys):
    sf.write(tmp_path / "v.wav", np.zeros(4410), 44100)
    for out, extra in (("o.mp3", []), ("o.flac", ["--bit-depth", "32"]),
                       ("missing/o.wav", [])):
        code = main(["generate", str(tmp_path / "v.wav"), "-o", str(tmp_path / out),
                     "--model", str(tmp_path / "no-model-needed.safetensors"), *extra])
        assert code == 2  # a usage error (exit codes: samuel_live/cli.py exit_codes)
        err = capsys.readouterr().err
        assert "no model" not in err  # refused before the model was even looked for


def test_precision_reaches_the_model_from_the_cli_and_the_engine_config(tmp_path):
    """`--precision` and `[model] precision` load the model in that number format, and the
    sidecar says which. Both formats are checked, so the test holds whichever one "auto" is
    on this CPU. Breaks: the option not passed on to Accompanist.load (the CLI, the engine's
    model slot), or the sidecar leaving it out."""
    from samuel_live.audio.sources import MemorySource
    from samuel_live.config import load_config
    from samuel_live.engine.engine import Engine
    from samuel_live.errors import InvalidArgumentError

    ckpt = _checkpoint(tmp_path)
    sf.write(tmp_path / "vocal.wav", 0.3 * np.sin(np.arange(44100) * 0.06), 44100)
    for precision in ("float32", "bfloat16"):
        out = tmp_path / f"acc-{precision}.wav"
        assert main(["generate", str(tmp_path / "vocal.wav"), "-o", str(out), "--model",
                     str(ckpt), "--steps", "2", "--precision", precision, "-q"]) == 0
        side = json.loads(out.with_suffix(".wav.json").read_text())
        assert side["model"]["precision"] == precision
        config = load_config(None, [f"render.folder={tmp_path / 'r'}", f"model.path={ckpt}",
                                    f"model.precision={precision}"])
        engine = Engine(config, capture=MemorySource(np.zeros((2, 4410), np.float32)),
                        warm_up=False).start()
        try:
            assert engine.model_info()["precision"] == precision
        finally:
            engine.close()
    try:
        load_config(None, ["model.precision=fp16"])
    except InvalidArgumentError as exc:
        assert "float32" in str(exc)
    else:
        raise AssertionError("an unknown precision was accepted")
