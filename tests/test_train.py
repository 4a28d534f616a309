"""Training loop: the loss falls, resume continues exactly, export/load reproduces outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samuel_live.errors import SamuelError
from samuel_live.model.checkpoint import LatentStats
from samuel_live.pipeline import Accompanist
from samuel_live.settings import GenerateSettings
from samuel_live.train.trainer import TrainConfig, Trainer

TINY = {"widths": [16, 32], "heads": 2, "head_dim": 8, "groups": 4, "time_dim": 32,
        "cond_dim": 16, "attn_levels": [1], "cross_attn_levels": [0, 1]}


def _data(n: int = 6, frames: int = 64) -> tuple[torch.Tensor, torch.Tensor, dict]:
    g = torch.Generator().manual_seed(0)
    vocal = torch.randn(n, 64, frames, generator=g) - 4
    # a learnable relation: the accompaniment is the vocal a fifth (7 bands) lower
    accomp = torch.roll(vocal, -7, dims=1) + 0.1 * torch.randn(n, 64, frames, generator=g)
    st = LatentStats.identity()
    manifest = {"codec": "harmonic", "stats": {
        "vocal": {"mean": [-4.0] * 64, "std": [1.0] * 64},
        "accomp": {"mean": list(st.accomp_mean), "std": [1.0] * 64}}}
    return vocal.half(), accomp.half(), manifest


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / "run"), model=TINY, batch_size=4, crop_frames=32,
                short_crops=True,
                max_steps=40, warmup_steps=2, eval_every=1000, lr=2e-3, device="cpu",
                weighting="min_snr")
    base.update(kw)
    return TrainConfig(**base)


def _fixed_loss(tr: Trainer, v: torch.Tensor, a: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        return tr._loss(tr.model, v, a, g, 0.0).item()


def test_training_lowers_loss_on_fixed_batch(tmp_path):
    torch.manual_seed(0)
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path), vocal, accomp, manifest)
    v, a = tr.train.sample(8, torch.Generator().manual_seed(3))
    before = _fixed_loss(tr, v, a)
    for _ in range(40):
        tr.train_step()
    after = _fixed_loss(tr, v, a)
    assert after < 0.8 * before


def test_resume_continues_from_exact_step(tmp_path):
    vocal, accomp, manifest = _data()
    straight = Trainer(_cfg(tmp_path / "a", max_steps=6), vocal, accomp, manifest)
    for _ in range(6):
        straight.train_step()

    first = Trainer(_cfg(tmp_path / "b", max_steps=6), vocal, accomp, manifest)
    for _ in range(3):
        first.train_step()
    state = first.save_state()
    resumed = Trainer(_cfg(tmp_path / "b", max_steps=6, seed=99), vocal, accomp, manifest)
    resumed.load_state(state)
    assert resumed.step == 3
    for _ in range(3):
        resumed.train_step()
    for (name, p1), p2 in zip(straight.model.state_dict().items(),
                              resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p1, p2), name


def test_exported_checkpoint_reproduces_outputs(tmp_path):
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path, export_dtype="float32"), vocal, accomp, manifest)
    for _ in range(3):
        tr.train_step()
    path = tr.export()
    loaded = Accompanist.load(path, device="cpu")
    direct = Accompanist(tr.ema, loaded.codec, tr.stats, torch.device("cpu"))
    take = np.random.default_rng(0).standard_normal((2, 44100 * 3)).astype(np.float32) * 0.1
    s = GenerateSettings(sampler="ddim", steps=3, cfg=2.0, seed=5)
    out1, out2 = loaded.accompany(take, s), direct.accompany(take, s)
    assert out1.shape == take.shape
    np.testing.assert_array_equal(out1, out2)
    again = loaded.accompany(take, s)
    np.testing.assert_array_equal(out1, again)


def test_unknown_training_option_is_refused():
    from samuel_live.errors import SamuelError
    from samuel_live.train.trainer import load_train_config

    with pytest.raises(SamuelError, match="unknown training option"):
        load_train_config(None, ["learning_rate=1"])


def test_init_starts_from_a_checkpoint_and_refuses_another_architecture(tmp_path):
    from samuel_live.errors import SamuelError

    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path / "a", export_dtype="float32"), vocal, accomp, manifest)
    tr.train_step()
    path = tr.export()
    tuned = Trainer(_cfg(tmp_path / "b", init=str(path)), vocal, accomp, manifest)
    for (name, p1), p2 in zip(tr.ema.state_dict().items(), tuned.model.state_dict().values(),
                              strict=True):
        assert torch.equal(p1, p2), name
    other = dict(TINY, widths=[16, 48])
    with pytest.raises(SamuelError, match="another architecture"):
        Trainer(_cfg(tmp_path / "c", init=str(path), model=other), vocal, accomp, manifest)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_resume_refuses_state_files_that_would_run_code(tmp_path, capsys):
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path, max_steps=2), vocal, accomp, manifest)
    bad = tmp_path / "train_state.pt"
    torch.save({"model": tr.model.state_dict(), "payload": _RunsCode()}, bad)
    with pytest.raises(SamuelError, match="cannot resume from .*without --resume"):
        tr.load_state(bad)
    assert "this ran" not in capsys.readouterr().out
    with pytest.raises(SamuelError, match="cannot resume"):
        tr.load_state(tmp_path / "missing.pt")
