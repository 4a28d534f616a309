"""The SAMUeL U-Net and its soft alignment attention, on tiny configs of the real classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from samuel_live.diffusion import Schedule
from samuel_live.errors import ModelError
from samuel_live.model import (
    SamuelUNet,
    SoftAlignmentAttention,
    UNetConfig,
    global_attention,
    local_attention,
    rope,
)
from samuel_live.model.checkpoint import (
    MAX_META_BYTES,
    CheckpointMeta,
    LatentStats,
    load_checkpoint,
    save_checkpoint,
)

TINY = UNetConfig(
    widths=(8, 16, 16, 32), heads=2, head_dim=4, time_dim=16, time_mlp_mult=2, cond_dim=8,
    groups=4, attn_levels=(0, 1, 2, 3), cross_attn_levels=(0, 2, 3),
)


def tiny_model(seed: int = 0) -> SamuelUNet:
    torch.manual_seed(seed)
    model = SamuelUNet(TINY)
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)  # default is zero: v would be 0
    return model


def test_default_model_has_the_papers_parameter_count() -> None:
    count = sum(p.numel() for p in SamuelUNet().parameters())
    assert 0.9 * 15.5e6 <= count <= 1.1 * 15.5e6


@pytest.mark.parametrize("frames", [40, 256, 1024])
def test_forward_shape_for_any_multiple_of_eight(frames: int) -> None:
    model = tiny_model()
    x, cond = torch.randn(2, 64, frames), torch.randn(2, 64, frames)
    with torch.no_grad():
        v = model(x, torch.tensor([0, 799]), cond)
    assert v.shape == (2, 64, frames) and torch.isfinite(v).all()


def test_untrained_model_predicts_zero_v() -> None:
    v = SamuelUNet(TINY)(torch.randn(1, 64, 16), torch.tensor([3]), torch.randn(1, 64, 16))
    assert torch.equal(v, torch.zeros_like(v))


def test_bad_shapes_raise_model_error_naming_the_fix() -> None:
    model = tiny_model()
    with pytest.raises(ModelError, match="multiple of 8"):
        model(torch.randn(1, 64, 20), torch.tensor([1]), torch.randn(1, 64, 20))
    with pytest.raises(ModelError, match="cond"):
        model(torch.randn(1, 64, 16), torch.tensor([1]), torch.randn(1, 64, 24))


def test_config_round_trips_through_json() -> None:
    data = json.loads(json.dumps(TINY.to_dict()))
    assert UNetConfig.from_dict(data) == TINY
    with pytest.raises(ModelError, match="unknown keys"):
        UNetConfig.from_dict({**data, "dropout": 0.1})


@pytest.mark.parametrize("t", [0, 400, 799])
def test_mix_weights_follow_sqrt_abar(t: int) -> None:
    model = tiny_model()
    steps = torch.tensor([t])
    w_global, w_local = model.mix_weights(steps)
    root = Schedule().abar(steps).sqrt().float()
    torch.testing.assert_close(w_global, root)
    torch.testing.assert_close(w_local, 1 - root)


def test_attention_output_is_the_weighted_mix_of_both_paths_plus_input() -> None:
    attn = SoftAlignmentAttention(8, 2, 8, groups=4)
    x = torch.randn(2, 8, 48)
    w = torch.tensor([0.9, 0.2])
    with torch.no_grad():
        mixed = w.view(-1, 1, 1) * attn.global_context(x)
        mixed = mixed + (1 - w.view(-1, 1, 1)) * attn.local_context(x)
        torch.testing.assert_close(attn(x, w), x + attn.out(mixed), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(attn.global_context(x), attn.local_context(x))


def test_local_attention_sees_exactly_8_left_and_7_right() -> None:
    q, k, v = (torch.randn(1, 2, 64, 4) for _ in range(3))
    probe = 30
    base = local_attention(q, k, v)[..., probe, :]
    for frame, visible in [(probe - 9, False), (probe - 8, True), (probe + 7, True),
                           (probe + 8, False), (probe + 20, False)]:
        k2, v2 = k.clone(), v.clone()
        k2[..., frame, :] += 3.0
        v2[..., frame, :] += 3.0
        changed = not torch.allclose(local_attention(q, k2, v2)[..., probe, :], base)
        assert changed == visible, frame


def test_local_attention_masks_edges_instead_of_scoring_zero_keys() -> None:
    # With constant values every frame, edge frames included, must return that value.
    q, k = torch.randn(1, 1, 24, 4), torch.randn(1, 1, 24, 4)
    v = torch.ones(1, 1, 24, 4)
    torch.testing.assert_close(local_attention(q, k, v), v)


def test_local_path_of_the_module_is_windowed() -> None:
    attn = SoftAlignmentAttention(8, 2, 8, groups=4, qkv_kernel=1)
    x = torch.randn(1, 8, 64)
    probe, elsewhere = 20, 60

    def swapped(frame: int) -> torch.Tensor:
        # Swapping two frames keeps the GroupNorm statistics (over the whole sequence) fixed,
        # so only what the window sees can change the probe.
        y = x.clone()
        y[..., [frame, elsewhere]] = x[..., [elsewhere, frame]]
        return attn.local_context(y)[..., probe]

    with torch.no_grad():
        base = attn.local_context(x)[..., probe]
        torch.testing.assert_close(swapped(probe + 9), base, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(swapped(probe - 9), base, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(swapped(probe + 3), base, atol=1e-3)


def test_rope_dot_products_depend_only_on_relative_offset() -> None:
    q, k = torch.randn(16), torch.randn(16)
    rq = rope(q.expand(1, 1, 40, 16))[0, 0]
    rk = rope(k.expand(1, 1, 40, 16))[0, 0]
    scores = rq @ rk.T
    for offset in (-7, 0, 3, 11):
        diag = torch.diagonal(scores, offset)
        torch.testing.assert_close(diag, diag[0].expand_as(diag), atol=1e-4, rtol=1e-4)
    assert scores[5, 5] != scores[5, 9]  # and the offset does matter


def test_global_attention_is_shift_equivariant_through_rope() -> None:
    # Same q and k at every frame and v = identity: the output is the attention matrix A.
    # With RoPE, A[i, j] / A[i, j+1] depends on i - j only; without it A would be uniform.
    t = 24
    q = torch.randn(8).expand(1, 1, t, 8).contiguous() * 3
    k = torch.randn(8).expand(1, 1, t, 8).contiguous() * 3
    a = global_attention(q, k, torch.eye(t).view(1, 1, t, t))[0, 0]
    ratio = a[:, :-1] / a[:, 1:]
    for shift in (1, 5):
        torch.testing.assert_close(ratio[shift:, shift:], ratio[:-shift, :-shift],
                                   atol=1e-4, rtol=1e-4)
    assert a.std() > 1e-3


def test_null_condition_replaces_the_vocal_and_learns() -> None:
    model = tiny_model()
    x = torch.randn(2, 64, 16)
    t = torch.tensor([100, 100])
    drop = torch.tensor([False, False])
    v1 = model(x, t, torch.randn(2, 64, 16), drop)
    v2 = model(x, t, torch.randn(2, 64, 16), drop)
    torch.testing.assert_close(v1, v2)  # a dropped vocal has no influence at all
    keep = torch.tensor([True, True])
    assert not torch.allclose(model(x, t, torch.randn(2, 64, 16), keep), v1)
    v1.sum().backward()
    assert isinstance(model.null_cond, torch.nn.Parameter)
    assert model.null_cond.grad is not None and model.null_cond.grad.abs().sum() > 0


def test_schedule_buffer_travels_with_the_state_dict() -> None:
    state = tiny_model().state_dict()
    torch.testing.assert_close(state["alphas_cumprod"], Schedule().alphas_cumprod.float())


def test_training_after_inference_reuses_cached_tables():
    """Regression: RoPE/mask tables cached under inference_mode broke a later backward."""
    cfg = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                     attn_levels=(1,), cross_attn_levels=(0, 1))
    net = SamuelUNet(cfg)
    x, t = torch.randn(1, 64, 48), torch.tensor([10])
    with torch.inference_mode():
        net(x, t, x)
    net(x, t, x).sum().backward()
    assert net.null_cond.grad is not None or any(p.grad is not None for p in net.parameters())


# --- config bounds: a hostile or mistyped config is refused before anything is allocated ------
def test_param_count_is_exact_without_building() -> None:
    other = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                       blocks_per_level=2, mid_post_blocks=0, attn_levels=(0,),
                       cross_attn_levels=(1,), qkv_kernel=5, latent_channels=8, cond_channels=12)
    for cfg in (UNetConfig(), TINY, other):
        assert cfg.param_count() == sum(p.numel() for p in SamuelUNet(cfg).parameters())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"widths": [64, 65536]}, ["widths[1]", "1..4096"]),
        ({"widths": [64] * 9}, ["widths", "2..8"]),
        ({"widths": 64}, ["widths"]),
        ({"widths": [64, 128.5]}, ["widths[1]"]),
        ({"heads": 0}, ["heads", "1..64"]),
        ({"head_dim": 10**9}, ["head_dim", "1..512"]),
        ({"groups": True}, ["groups", "whole number"]),
        ({"time_dim": 31}, ["time_dim", "even"]),
        ({"qkv_kernel": 4}, ["qkv_kernel", "odd"]),
        ({"rope_base": float("nan")}, ["rope_base"]),
        ({"schedule_s": "0.008"}, ["schedule_s", "number"]),
        ({"num_train_steps": 10**12}, ["num_train_steps", "1..100000"]),
        ({"attn_levels": [1] * 100_000}, ["attn_levels", "distinct"]),
        ({"widths": [4096] * 8, "blocks_per_level": 8}, ["parameters", "1,000,000,000"]),
    ],
)
def test_out_of_range_configs_are_refused_naming_the_field(change: dict, words: list[str]) -> None:
    with pytest.raises(ModelError) as err:
        UNetConfig.from_dict({**TINY.to_dict(), **change})
    for word in words:
        assert word in str(err.value)


def _saved(tmp_path: Path) -> tuple[Path, Path]:
    weights = save_checkpoint(tmp_path / "m", SamuelUNet(TINY).state_dict(),
                              CheckpointMeta(TINY.to_dict(), "harmonic", LatentStats.identity()))
    assert load_checkpoint(weights)[1].model == TINY.to_dict()
    return weights, weights.with_suffix(".json")


def _edit(meta: Path, **changes: object) -> None:
    data = json.loads(meta.read_text())
    data.update(changes)
    meta.write_text(json.dumps(data))


def test_checkpoint_with_an_out_of_range_config_is_refused(tmp_path: Path) -> None:
    weights, meta = _saved(tmp_path)
    _edit(meta, model={**TINY.to_dict(), "widths": [64, 65536]})
    with pytest.raises(ModelError, match=r"widths\[1\]"):
        load_checkpoint(weights)


def test_checkpoint_json_size_and_stats_are_bounded(tmp_path: Path) -> None:
    weights, meta = _saved(tmp_path)
    _edit(meta, training={"pad": "x" * (MAX_META_BYTES + 1)})
    with pytest.raises(ModelError, match="at most"):
        load_checkpoint(weights)
    weights, meta = _saved(tmp_path)
    stats = json.loads(meta.read_text())["stats"]
    _edit(meta, stats={**stats, "accomp_std": [1.0] * 63})
    with pytest.raises(ModelError, match="accomp_std"):
        load_checkpoint(weights)


def test_weights_larger_than_their_config_allows_are_not_read(tmp_path: Path) -> None:
    weights, _ = _saved(tmp_path)
    with open(weights, "r+b") as f:
        f.truncate(TINY.param_count() * 4 + (17 << 20))  # sparse: no disk used
    with pytest.raises(ModelError, match="larger than its model config allows"):
        load_checkpoint(weights)
