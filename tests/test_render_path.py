"""One render path: the CLI's generate, batch render and the engine give the same file and the
same sidecar schema; options are refused before any work; loops keep their pitch; the noise
schedule comes from the checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from samuel_live import SAMPLE_RATE
from samuel_live.audio.sources import MemorySource
from samuel_live.cli import main
from samuel_live.codec.harmonic import SILENCE
from samuel_live.config import load_config
from samuel_live.engine.engine import Engine
from samuel_live.errors import ModelError, SamuelError
from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, save_checkpoint
from samuel_live.model.unet import SamuelUNet, UNetConfig
from samuel_live.pipeline import Accompanist
from samuel_live.render.output import write_result
from samuel_live.render.settings import SettingsRequest, resolve_settings
from samuel_live.render.sidecar import Sidecar, sidecar_path
from samuel_live.render.take import RenderedTake, TakeSpec, render_take
from samuel_live.settings import GenerateSettings

TINY = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                  attn_levels=(1,), cross_attn_levels=(0, 1))
SAMPLING = ["--steps", "2", "--sampler", "ddim", "--cfg", "1.5", "--seed", "5", "-q",
            "--device", "cpu"]


def _checkpoint(folder: Path, config: UNetConfig = TINY, **meta: object) -> Path:
    torch.manual_seed(0)
    net = SamuelUNet(config)
    for p in net.parameters():  # the output conv starts at zero: give it signal
        p.data.add_(0.01 * torch.randn_like(p))
    stats = LatentStats((-5.0,) * 64, (2.0,) * 64, (-5.0,) * 64, (2.0,) * 64)
    return save_checkpoint(folder / "tiny", net.state_dict(), CheckpointMeta(
        model=config.to_dict(), codec="harmonic", stats=stats, **meta))  # type: ignore[arg-type]


def _vocal(folder: Path, seconds: float = 2.0) -> Path:
    folder.mkdir(exist_ok=True)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    path = folder / "vocal.wav"
    sf.write(path, 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2,
             SAMPLE_RATE, subtype="FLOAT")
    return path


def test_generate_render_and_engine_write_the_same_file_and_sidecar(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    vocal = _vocal(tmp_path / "in")
    cli_out = tmp_path / "cli.wav"
    assert main(["generate", str(vocal), "-o", str(cli_out), "--model", str(ckpt),
                 "--bit-depth", "32", *SAMPLING]) == 0
    assert main(["render", str(vocal.parent), "--out", str(tmp_path / "batch"), "--model",
                 str(ckpt), "--bit-depth", "32", *SAMPLING]) == 0
    batch_out = tmp_path / "batch" / "vocal__v00_s5.wav"
    config = load_config(None, [f"render.folder={tmp_path / 'renders'}", f"model.path={ckpt}",
                                f"render.allowed_input_dirs={vocal.parent}",
                                "render.bit_depth=32", "model.device=cpu"])
    with Engine(config, capture=MemorySource(np.zeros((2, 100), np.float32)), warm_up=False,
                threads=torch.get_num_threads()) as eng:
        job = eng.wait(eng.submit(f"file:{vocal}", "engine", seed=5, steps=2, cfg=1.5,
                                  sampler="ddim").id, timeout=120)
    assert job.result is not None, job.error
    outs = [cli_out, batch_out, job.result.path]
    audio = [sf.read(p, always_2d=True)[0] for p in outs]
    assert audio[0].shape == (sf.info(vocal).frames, 2)
    np.testing.assert_array_equal(audio[0], audio[1])
    np.testing.assert_array_equal(audio[0], audio[2])
    sides = [json.loads(sidecar_path(p).read_text()) for p in outs]
    assert sides[0].keys() == sides[1].keys() == sides[2].keys()
    for side in sides[1:]:
        for key in ("settings", "post", "model", "source", "samples", "sample_rate", "format"):
            assert side[key] == sides[0][key], key
    assert sides[2]["job"] == job.id and sides[0]["job"] is None


@pytest.mark.parametrize("option, says", [
    (["--steps", "0"], "steps"), (["--cfg", "50"], "cfg"), (["--post", "bogus"], "bogus"),
    (["--sampler", "euler"], "euler"), (["--sample-rate", "1000"], "1000"),
    (["--loop-bars", "40", "--bpm", "60"], "longest loop"), (["--meter", "x/4"], "meter"),
])
def test_generate_refuses_bad_options_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        option: list[str], says: str) -> None:
    missing = tmp_path / "no-such-take.wav"  # nothing is read, loaded or generated
    code = main(["generate", str(missing), "-o", str(tmp_path / "o.wav"), "--model",
                 str(tmp_path / "no-model"), *option])
    err = capsys.readouterr().err
    assert code != 0 and says in err and "no-such-take" not in err and "no model" not in err


def test_render_refuses_bad_options_before_any_work(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _vocal(tmp_path / "in")
    code = main(["render", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model",
                 str(tmp_path / "no-model"), "--steps", "0"])
    assert code != 0 and "steps" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_generate_writes_the_session_sample_rate(tmp_path: Path) -> None:
    vocal = _vocal(tmp_path / "in", 1.3)
    out = tmp_path / "o.wav"
    assert main(["generate", str(vocal), "-o", str(out), "--model", str(_checkpoint(tmp_path)),
                 "--sample-rate", "48000", *SAMPLING]) == 0
    info = sf.info(out)
    assert info.samplerate == 48000
    assert info.frames == round(sf.info(vocal).frames * 48000 / SAMPLE_RATE)
    assert json.loads(sidecar_path(out).read_text())["sample_rate"] == 48000


def test_settings_resolve_request_then_config_then_checkpoint() -> None:
    from samuel_live.config import GenerateSection

    checkpoint = {"sampler": "ddim", "steps": 12, "cfg": 2.0}
    config = GenerateSection(steps=30)
    s = resolve_settings(SettingsRequest(cfg=4.0, seed=3), config=config, checkpoint=checkpoint)
    assert s == GenerateSettings(sampler="ddim", steps=30, cfg=4.0, seed=3)
    assert resolve_settings(SettingsRequest(seed=1)) == GenerateSettings(seed=1)
    with pytest.raises(SamuelError, match="steps"):
        resolve_settings(SettingsRequest(steps=0), checkpoint=checkpoint)


def _peak_hz(x: np.ndarray) -> float:
    n = 1 << 20
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SAMPLE_RATE / n


def test_loop_decode_keeps_pitch_exact() -> None:
    acc = Accompanist.random(TINY)
    loop = 29547  # 0.67 s: 14.43 latent frames, far from a whole number
    z = torch.full((64, 14), SILENCE)
    z[69 - 36] = math.log(0.3)  # A4, 440 Hz, held
    out = acc._decode_loop(z, loop, fold=int(0.02 * SAMPLE_RATE))
    assert out.shape == (2, loop)
    cents = 1200 * math.log2(_peak_hz(out[0, 2000:-2000]) / 440.0)
    assert abs(cents) < 3, f"{cents:.1f} cents off"


def test_sidecar_failure_leaves_no_result(tmp_path: Path) -> None:
    out = tmp_path / "take.wav"
    sidecar_path(out).mkdir()  # the sidecar cannot be written
    side = Sidecar(audio="", source="file:x", start_s=0.0, samples=100, sample_rate=SAMPLE_RATE,
                   settings={}, post=None, loop_bars=0, musical_time=None, model={})
    with pytest.raises(SamuelError):
        write_result(out, RenderedTake(np.zeros((2, 100), np.float32), b"MThd", (), side))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid", "take.wav.json"]


def test_render_take_uses_the_post_chain_it_is_given(tmp_path: Path) -> None:
    from samuel_live.config import PostSection

    acc = Accompanist.random(TINY)
    vocal = np.stack([np.sin(np.arange(SAMPLE_RATE) * 0.05)] * 2).astype(np.float32) * 0.3
    settings = GenerateSettings(sampler="ddim", steps=1, seed=0)
    quiet = PostSection(preset="custom", chain=({"type": "gain", "gain_db": -40.0},),
                        loudness_lufs=None)
    loud, side_loud = _audio_and_sidecar(render_take(acc, vocal, settings,
                                                     TakeSpec("x", post=None)))
    soft, side_soft = _audio_and_sidecar(render_take(acc, vocal, settings,
                                                     TakeSpec("x", post=quiet)))
    assert side_loud.post is None and side_soft.post[0]["type"] == "gain"  # type: ignore[index]
    np.testing.assert_allclose(soft, loud * 10 ** (-40 / 20), atol=1e-5)  # below the limiter


# --- the schedule comes from the checkpoint ----------------------------------------------------
def test_schedule_is_read_from_the_checkpoint(tmp_path: Path) -> None:
    short = UNetConfig.from_dict({**TINY.to_dict(), "num_train_steps": 400})
    acc = Accompanist.load(_checkpoint(tmp_path, short, schedule={"kind": "cosine", "steps": 400}),
                           device="cpu")
    assert acc.schedule.steps == 400
    torch.testing.assert_close(acc.model.alphas_cumprod.double(), acc.schedule.alphas_cumprod,
                               atol=1e-7, rtol=0)


def test_checkpoint_schedule_that_disagrees_is_refused(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, schedule={"kind": "cosine", "steps": 1000})
    with pytest.raises(ModelError, match="schedule"):
        Accompanist.load(ckpt, device="cpu")


def test_stored_alphas_that_disagree_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = _checkpoint(tmp_path)
    tensors = load_file(str(weights))
    tensors["alphas_cumprod"] = tensors["alphas_cumprod"] ** 2  # another schedule
    save_file(tensors, str(weights), metadata={"format": "samuel-live/1"})
    with pytest.raises(ModelError, match="schedule"):
        Accompanist.load(weights, device="cpu")



def test_a_result_left_staged_by_a_killed_writer_is_swept(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, pathlib, os, signal; from samuel_live.render.output import staged_name; "
            "p = staged_name(pathlib.Path(sys.argv[1])); p.write_bytes(b'RIFF half'); "
            "print(p, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "take.wav")],
                         capture_output=True, text=True, timeout=60)
    left = Path(run.stdout.strip())
    assert left.is_file() and left.name.startswith(".take.wav.")
    side = Sidecar(audio="", source="file:x", start_s=0.0, samples=100, sample_rate=SAMPLE_RATE,
                   settings={}, post=None, loop_bars=0, musical_time=None, model={})
    write_result(tmp_path / "other.wav", RenderedTake(np.zeros((2, 100), np.float32), b"MThd", (),
                                                      side))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.mid", "other.wav",
                                                          "other.wav.json"]


def _audio_and_sidecar(take: RenderedTake) -> tuple[np.ndarray, Sidecar]:
    assert take.audio is not None
    return take.audio, take.sidecar
