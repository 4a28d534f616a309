"""Guidance distillation: the teacher's target, the trainer that learns it, and a distilled
model's sampling (its own scale at batch 1, other scales guided from its two branches)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samuel_live.diffusion.guidance import distillation_target, guided_model_fn, quiet_step
from samuel_live.diffusion.loss import diffusion_loss
from samuel_live.errors import ModelError
from samuel_live.model.checkpoint import checkpoint_paths
from samuel_live.model.unet import SamuelUNet, UNetConfig
from samuel_live.pipeline import Accompanist
from samuel_live.settings import GenerateSettings
from samuel_live.train.trainer import TrainConfig, Trainer

TINY = {"widths": [16, 32], "heads": 2, "head_dim": 8, "groups": 4, "time_dim": 32,
        "cond_dim": 16, "attn_levels": [1], "cross_attn_levels": [0, 1]}


def _model(seed: int = 0) -> SamuelUNet:
    torch.manual_seed(seed)
    model = SamuelUNet(UNetConfig.from_dict({**UNetConfig().to_dict(), **TINY})).double().eval()
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)
    torch.nn.init.normal_(model.null_cond, std=1.0)
    return model


def _branches(model: SamuelUNet, x, t, cond):
    n = x.shape[0]
    keep, drop = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    return model(x, t, cond, keep), model(x, t, cond, drop)


def _spy(model: SamuelUNet) -> list[int]:
    """Record the batch size of every ``denoise`` call of ``model``."""
    batches: list[int] = []
    denoise = model.denoise

    def spy(x: torch.Tensor, *args: object) -> torch.Tensor:
        batches.append(x.shape[0])
        return denoise(x, *args)

    model.denoise = spy  # type: ignore[method-assign]
    return batches


def test_distillation_target_is_the_guided_fn_per_example() -> None:
    """Kept rows get what guided_model_fn returns at their own step (the conditional branch
    below the guidance interval, the guided mix above), dropped rows the unconditional v."""
    model = _model()
    quiet = quiet_step(model.config)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 64, 16, generator=g, dtype=torch.float64)
    cond = torch.randn(3, 64, 16, generator=g, dtype=torch.float64)
    t = torch.tensor([quiet, quiet + 1, 700])
    keep = torch.tensor([True, True, False])
    with torch.no_grad():
        got = distillation_target(model, x, t, cond, keep, 5.0)
        v_cond, v_uncond = _branches(model, x, t, cond)
    torch.testing.assert_close(got[0], v_cond[0])
    torch.testing.assert_close(got[1], v_uncond[1] + 5.0 * (v_cond[1] - v_uncond[1]))
    torch.testing.assert_close(got[2], v_uncond[2])


def test_a_distilled_model_runs_its_scale_at_batch_one_and_guides_other_scales() -> None:
    model = _model()
    quiet = quiet_step(model.config)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 64, 16, generator=g, dtype=torch.float64)
    cond = torch.randn(1, 64, 16, generator=g, dtype=torch.float64)
    with torch.no_grad():
        own, other = guided_model_fn(model, cond, 7.0, 7.0), guided_model_fn(model, cond, 3.0, 7.0)
        null = guided_model_fn(model, cond, 0.0, 7.0)
        batches = _spy(model)
        for t_ in (quiet, quiet + 1, 799):
            t = torch.tensor([t_])
            model.denoise = SamuelUNet.denoise.__get__(model)  # type: ignore[method-assign]
            v_guided, v_uncond = _branches(model, x, t, cond)  # the student's two branches
            batches = _spy(model)
            torch.testing.assert_close(own(x, t), v_guided)
            torch.testing.assert_close(null(x, t), v_uncond)
            assert batches == [1, 1]
            want = v_guided if t_ <= quiet else v_uncond + 3.0 / 7.0 * (v_guided - v_uncond)
            torch.testing.assert_close(other(x, t), want)
            assert batches == [1, 1, 1 if t_ <= quiet else 2]


def _data(n: int = 6, frames: int = 64):
    g = torch.Generator().manual_seed(0)
    vocal = torch.randn(n, 64, frames, generator=g) - 4
    accomp = torch.roll(vocal, -7, dims=1) + 0.1 * torch.randn(n, 64, frames, generator=g)
    manifest = {"codec": "harmonic", "stats": {
        "vocal": {"mean": [-4.0] * 64, "std": [1.0] * 64},
        "accomp": {"mean": [0.0] * 64, "std": [1.0] * 64}}}
    return vocal.half(), accomp.half(), manifest


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / "run"), model=TINY, batch_size=4, crop_frames=32,
                short_crops=True, max_steps=40, warmup_steps=2, eval_every=1000, lr=2e-3,
                device="cpu", weighting="none", export_dtype="float32")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> str:
    """A tiny teacher whose two branches differ (random output layer and null vocal)."""
    from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, save_checkpoint
    from samuel_live.model.schedule import schedule_entry

    model = _model(3).float()
    stats = LatentStats((-4.0,) * 64, (1.0,) * 64, (0.0,) * 64, (1.0,) * 64)
    meta = CheckpointMeta(model=model.config.to_dict(), codec="harmonic", stats=stats,
                          schedule=schedule_entry(model))
    return str(save_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher",
                               model.state_dict(), meta))


def test_the_trainer_learns_the_teachers_guided_v_and_records_it(tmp_path, teacher) -> None:
    """Through the trainer: the loss is the MSE to the teacher's distillation target (not to
    the true v), and the export says which teacher and scale it learned, which loading uses."""
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path, teacher=teacher, teacher_cfg=4.0), vocal, accomp, manifest)
    for p_student, p_teacher in zip(tr.model.parameters(), Accompanist.load(teacher).model
                                    .parameters(), strict=True):
        assert torch.equal(p_student, p_teacher)  # the student starts as the teacher
    v, a = tr.train.sample(8, torch.Generator().manual_seed(3))

    def loss() -> float:
        with torch.no_grad():
            return tr._loss(tr.model, v, a, torch.Generator().manual_seed(7), 0.0).item()

    # the same draw of t and noise, by hand: the MSE to the teacher's target
    with torch.no_grad():
        by_hand = diffusion_loss(
            tr.model, a, v, tr.schedule, generator=torch.Generator().manual_seed(7), cond_drop=0.0,
            weighting="none",
            target_fn=lambda x, t, c, k: distillation_target(tr.teacher, x, t, c, k, 4.0))
    assert loss() == pytest.approx(by_hand.item(), rel=1e-4)
    assert by_hand.item() > 1e-3  # the teacher's guided v is not what the student starts with
    for _ in range(3):
        tr.train_step()
    loaded = Accompanist.load(tr.export(), device="cpu")
    assert loaded.distilled_cfg == 4.0
    assert loaded.info()["sampler_defaults"]["cfg"] == 4.0  # it samples at the scale it learned
    record = loaded.meta["training"]["distilled"]
    assert record["teacher_hash"] == Accompanist.load(teacher).meta["hash"]


def test_generation_with_a_distilled_model_runs_batch_one_at_its_scale(tmp_path, teacher):
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path, teacher=teacher, teacher_cfg=4.0), vocal, accomp, manifest)
    tr.train_step()
    acc = Accompanist.load(tr.export(), device="cpu", precision="float32")
    take = (0.1 * np.random.default_rng(0).standard_normal((2, 44100 * 2))).astype(np.float32)
    batches = _spy(acc.net)
    acc.accompany(take, GenerateSettings(sampler="dpmpp_2m", steps=4, cfg=4.0, key="off"))
    assert batches == [1] * 4
    batches.clear()
    acc.accompany(take, GenerateSettings(sampler="dpmpp_2m", steps=4, cfg=2.0, key="off"))
    assert 2 in batches


def test_a_damaged_distillation_record_is_refused_at_load(tmp_path, teacher) -> None:
    weights, meta_path = checkpoint_paths(teacher)
    (tmp_path / "model.safetensors").write_bytes(weights.read_bytes())
    meta = json.loads(meta_path.read_text())
    meta["training"]["distilled"] = {"cfg": "seven"}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="distilled.cfg"):
        Accompanist.load(tmp_path / "model.safetensors", device="cpu")


def test_a_distilled_model_is_neither_a_teacher_nor_an_init_without_one(tmp_path, teacher):
    """Guiding a distilled model again would compound the scale, and fine-tuning it towards
    the true v would leave a half-guided branch that sampling guides once more."""
    from samuel_live.errors import SamuelError

    data = _data()
    student = Trainer(_cfg(tmp_path / "s", teacher=teacher, teacher_cfg=4.0), *data)
    path = str(student.export())
    with pytest.raises(SamuelError, match="itself guidance-distilled"):
        Trainer(_cfg(tmp_path / "a", teacher=path), *data)
    with pytest.raises(SamuelError, match="is guidance-distilled"):
        Trainer(_cfg(tmp_path / "b", init=path), *data)


def test_a_distilled_model_from_another_guidance_interval_is_refused(tmp_path, teacher):
    student = Trainer(_cfg(tmp_path / "s", teacher=teacher, teacher_cfg=4.0), *_data())
    weights, meta_path = checkpoint_paths(student.export())
    meta = json.loads(meta_path.read_text())
    meta["training"]["distilled"]["max_lambda"] = 4.0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="distil it again"):
        Accompanist.load(weights, device="cpu")
