"""Joins inside the model and the trainer (issue 11): each test fails when correct parts are
wired together wrongly, which the per-part tests in test_model.py cannot see.

Breaks each test was checked against are named in its docstring.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import Tensor

from samuel_live.diffusion import Schedule, diffusion_loss, loss_weights
from samuel_live.model import (
    SamuelUNet,
    SoftAlignmentAttention,
    UNetConfig,
    VocalCrossAttention,
    global_attention,
    local_attention,
    rope,
)
from samuel_live.train.trainer import TrainConfig, Trainer

SCHEDULE = Schedule()
TINY = UNetConfig(
    widths=(8, 16), heads=2, head_dim=4, time_dim=16, time_mlp_mult=2, cond_dim=8, groups=4,
    attn_levels=(0, 1), cross_attn_levels=(0, 1), latent_channels=4, cond_channels=4,
)


def _live(config: UNetConfig = TINY, seed: int = 0) -> SamuelUNet:
    torch.manual_seed(seed)
    model = SamuelUNet(config)
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)  # default zero: v would be 0
    return model


# --- the attention mix weight the forward pass hands to every attention block -----------------


def test_forward_mixes_every_attention_with_sqrt_abar_of_its_own_step() -> None:
    """Breaks: abar instead of sqrt(abar) in SamuelUNet.forward; abar of t + 1 or t - 1 (the
    next/previous step); 1 - sqrt(abar); the reference code's sqrt(1 - t/999)."""
    model = _live()
    seen: list[Tensor] = []

    def record(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        seen.append((kwargs["sqrt_abar"] if "sqrt_abar" in kwargs else args[1]).clone())

    attns = [m for m in model.modules() if isinstance(m, SoftAlignmentAttention)]
    for m in attns:
        m.register_forward_pre_hook(record, with_kwargs=True)
    t = torch.tensor([0, 150, 400, 650, 798])
    x, cond = torch.randn(5, 4, 32), torch.randn(5, 4, 32)
    with torch.no_grad():
        model(x, t, cond)
    assert len(attns) == 3 and len(seen) == len(attns)  # down 0, bottleneck 1, up 0
    expected = SCHEDULE.abar(t).sqrt().float()
    for weight in seen:
        torch.testing.assert_close(weight.flatten(), expected, rtol=1e-6, atol=0)


def test_the_mix_weight_reaches_the_output() -> None:
    """Breaks: the attention block ignoring its weight (e.g. a constant mix). The same input at
    two steps differs only by the time embedding and the mix; with the time MLP zeroed only the
    mix is left."""
    model = _live()
    with torch.no_grad():
        for p in model.time_mlp.parameters():
            p.zero_()
        x, cond = torch.randn(1, 4, 32), torch.randn(1, 4, 32)
        v_clean, v_noisy = (model(x, torch.tensor([t]), cond) for t in (0, 700))
    assert not torch.allclose(v_clean, v_noisy, atol=1e-4)


# --- RoPE: the frequencies, and the configured base reaching every attention block -----------


@pytest.mark.parametrize(("dim", "base", "offset"), [(8, 10000.0, 0), (16, 100.0, 5)])
def test_rope_rotates_pair_i_by_position_times_base_to_the_minus_2i_over_d(
    dim: int, base: float, offset: int
) -> None:
    """Breaks: any other frequency table (base ** (-i / (half - 1)), base ** (-2i / half),
    a missing minus), positions not starting at ``offset``, sin and cos swapped, a wrong sign
    in the rotate-half form."""
    half, frames = dim // 2, 40
    pos = torch.arange(offset, offset + frames, dtype=torch.float64)
    theta = base ** (-2 * torch.arange(half, dtype=torch.float64) / dim)
    angle = pos[:, None] * theta[None, :]
    first = torch.zeros(1, 1, frames, dim, dtype=torch.float64)
    first[..., :half] = 1.0  # (x1, x2) = (1, 0) rotates to (cos, sin)
    second = torch.zeros_like(first)
    second[..., half:] = 1.0  # (0, 1) rotates to (-sin, cos)
    out1, out2 = rope(first, base, offset)[0, 0], rope(second, base, offset)[0, 0]
    torch.testing.assert_close(out1, torch.cat([angle.cos(), angle.sin()], dim=-1))
    torch.testing.assert_close(out2, torch.cat([-angle.sin(), angle.cos()], dim=-1))


def test_the_configured_rope_base_reaches_both_attention_kinds() -> None:
    """Breaks: a block calling global_attention without its rope_base (falling back to the
    default), or Stage not passing UNetConfig.rope_base to a block."""
    cfg = replace(TINY, rope_base=50.0)
    model = _live(cfg)
    blocks = [m for m in model.modules()
              if isinstance(m, SoftAlignmentAttention | VocalCrossAttention)]
    assert blocks and all(b.rope_base == 50.0 for b in blocks)
    torch.manual_seed(1)
    x, cond = torch.randn(1, 8, 48), torch.randn(1, 8, 48)
    soft = SoftAlignmentAttention(8, 2, 8, groups=4, rope_base=50.0)
    cross = VocalCrossAttention(8, 8, 2, 8, groups=4, rope_base=50.0)
    with torch.no_grad():
        # The global path in forward (weight 1) is the same global path global_context uses.
        torch.testing.assert_close(soft(x, torch.ones(1)), x + soft.out(soft.global_context(x)),
                                   atol=1e-5, rtol=1e-5)
        got = [soft.global_context(x), cross(x, cond)]
        soft.rope_base = cross.rope_base = 10000.0
        default = [soft.global_context(x), cross(x, cond)]
    for a, b in zip(got, default, strict=True):
        assert not torch.allclose(a, b, atol=1e-4)


# --- the local path: windowed, scaled, and without positions -----------------------------------


def _reference_local(q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
    """Frame i attends to frames i - window//2 .. i + window//2 - 1 inside the sequence, by
    content alone (no positions), with the usual 1/sqrt(d) scaling."""
    frames, left = q.shape[-2], window // 2
    out = torch.empty_like(q)
    for i in range(frames):
        lo, hi = max(0, i - left), min(frames, i - left + window)
        scores = q[..., i : i + 1, :] @ k[..., lo:hi, :].transpose(-1, -2)
        weights = (scores / math.sqrt(q.shape[-1])).softmax(dim=-1)
        out[..., i, :] = (weights @ v[..., lo:hi, :])[..., 0, :]
    return out


@pytest.mark.parametrize(("frames", "window"), [(40, 16), (64, 16), (24, 8)])
def test_local_attention_is_plain_windowed_attention_without_rope(
    frames: int, window: int
) -> None:
    """Breaks: RoPE applied to q or k inside local_attention; a shifted or wrongly sized
    window; padded keys scored instead of masked; a missing 1/sqrt(d)."""
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 2, frames, 8, generator=g, dtype=torch.float64) * 2
               for _ in range(3))
    torch.testing.assert_close(local_attention(q, k, v, window),
                               _reference_local(q, k, v, window))


def test_local_attention_is_shift_equivariant_and_global_attention_is_not_uniform() -> None:
    """Breaks: positions leaking into the local path (its output would depend on where in the
    sequence a pattern sits, not only on the pattern)."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 1, 96, 8, generator=g, dtype=torch.float64) * 3 for _ in range(3))
    shift = 21
    out = local_attention(q, k, v)
    moved = local_attention(*(torch.roll(z, shift, dims=-2) for z in (q, k, v)))
    # Away from both edges (and the wrapped-around frames) the output just moves along.
    torch.testing.assert_close(moved[..., shift + 8 : -8, :], out[..., 8 : -8 - shift, :])
    g_out = global_attention(q, k, v)
    g_moved = global_attention(*(torch.roll(z, shift, dims=-2) for z in (q, k, v)))
    assert not torch.allclose(g_moved[..., shift + 8 : -8, :], g_out[..., 8 : -8 - shift, :])


# --- the numbers the network computes --------------------------------------------------------

GOLDEN_CFG = UNetConfig(
    widths=(8, 16, 16), heads=2, head_dim=4, time_dim=16, time_mlp_mult=2, cond_dim=8, groups=4,
    attn_levels=(0, 1, 2), cross_attn_levels=(0, 1, 2), latent_channels=4, cond_channels=4,
)
# (sum(v * w), sum(v ** 2)) per example, recorded from this code at commit e0c2e96.
GOLDEN = [(-0.039378672066485106, 1.8261448775569034),
          (-0.0309290685123087, 1.814456236288207),
          (-0.03428573913532176, 1.8088078933092813)]


def test_forward_pass_computes_the_recorded_numbers() -> None:
    """A trained checkpoint is only valid for the function it was trained as: any silent change
    to the forward pass (FiLM as scale instead of 1 + scale, the timestep embedding, a skip,
    the mix, the null vocal) breaks every shipped model while shape tests stay green. Weights
    come from a formula (no RNG), the maths runs in float64. If the architecture changes on
    purpose, re-record GOLDEN and retrain the starter model."""
    model = SamuelUNet(GOLDEN_CFG).double()
    with torch.no_grad():
        for i, (_name, p) in enumerate(sorted(model.named_parameters())):
            n = torch.arange(p.numel(), dtype=torch.float64)
            p.copy_((0.3 * torch.sin(0.7 * n + i) / math.sqrt(max(1, p.shape[-1]))).view_as(p))
        f = torch.arange(32, dtype=torch.float64)
        c = torch.arange(4, dtype=torch.float64)[:, None]
        scale = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64).view(3, 1, 1)
        x = torch.sin(0.3 * f + c).expand(3, 4, 32) * scale
        cond = torch.cos(0.2 * f * (c + 1)).expand(3, 4, 32).clone()
        v = model(x, torch.tensor([0, 400, 799]), cond, torch.tensor([True, False, True]))
    w = torch.sin(torch.arange(128, dtype=torch.float64) * 1.3).view(4, 32)
    got = [(float((vi * w).sum()), float((vi**2).sum())) for vi in v]
    for (a, b), (ea, eb) in zip(got, GOLDEN, strict=True):
        assert a == pytest.approx(ea, rel=1e-6, abs=1e-9) and b == pytest.approx(eb, rel=1e-6)


# --- the training objective: schedule, loss and model ---------------------------------------


class VOracle(torch.nn.Module):
    """Stands where the U-Net sits in diffusion_loss: the true v for the batch's own x0 plus
    ``offset``; records the steps and condition mask it was given."""

    def __init__(self, x0: Tensor, offset: float) -> None:
        super().__init__()
        self.x0, self.offset, self.calls = x0, offset, []

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor, cond_keep: Tensor) -> Tensor:
        self.calls.append((x_t, t, cond_keep))
        a = SCHEDULE.abar(t).view(-1, 1, 1)
        return (a.sqrt() * x_t - self.x0) / (1 - a).sqrt() + self.offset


@pytest.mark.parametrize("weighting", ["none", "snr", "min_snr"])
def test_loss_is_the_weighted_mse_of_v_at_the_noised_step(weighting: str) -> None:
    """Breaks: the v target or q_sample with a wrong sign or order, x_t noised at another step
    than the model is told, squared error replaced, per-example weights not applied or
    applied to the wrong steps, condition dropped with the wrong probability."""
    g = torch.Generator().manual_seed(5)
    x0 = 3.0 + torch.randn(64, 4, 16, generator=g, dtype=torch.float64)
    oracle = VOracle(x0, 0.0)
    exact = diffusion_loss(oracle, x0, x0, SCHEDULE, generator=g, weighting=weighting)
    assert exact.item() == pytest.approx(0.0, abs=1e-9)
    oracle = VOracle(x0, 0.5)
    loss = diffusion_loss(oracle, x0, x0, SCHEDULE, generator=g, cond_drop=0.25,
                          weighting=weighting)
    _x_t, t, keep = oracle.calls[0]
    expected = 0.25 * loss_weights(SCHEDULE, t, weighting).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)
    assert len(set(t.tolist())) > 40 and 36 <= int(keep.sum()) <= 60  # 3/4 kept


# --- EMA -----------------------------------------------------------------------------------------

TRAIN_MODEL = {"widths": [16, 32], "heads": 2, "head_dim": 8, "groups": 4, "time_dim": 32,
               "cond_dim": 16, "attn_levels": [1], "cross_attn_levels": [0, 1]}


def test_ema_is_the_running_average_of_the_trained_weights(tmp_path) -> None:
    """Breaks: EMA copying the model (no averaging), never updating, lerping with d instead of
    1 - d, or using the configured decay from step 0 instead of the warm-up."""
    g = torch.Generator().manual_seed(0)
    vocal = torch.randn(6, 64, 64, generator=g)
    accomp = torch.roll(vocal, -7, dims=1)
    zeros, ones = [0.0] * 64, [1.0] * 64
    manifest = {"codec": "harmonic", "stats": {"vocal": {"mean": zeros, "std": ones},
                                               "accomp": {"mean": zeros, "std": ones}}}
    cfg = TrainConfig(out=str(tmp_path / "run"), model=TRAIN_MODEL, batch_size=2, crop_frames=32,
                      short_crops=True,
                      max_steps=6, warmup_steps=1, eval_every=1000, lr=5e-3, device="cpu",
                      ema_decay=0.5, weighting="none")
    tr = Trainer(cfg, vocal, accomp, manifest)
    expected = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    for step in range(6):
        tr.train_step()
        d = min(cfg.ema_decay, (1 + step) / (10 + step))
        for n, p in tr.model.named_parameters():
            expected[n] = d * expected[n] + (1 - d) * p.detach()
    ema = dict(tr.ema.named_parameters())
    for n in expected:
        torch.testing.assert_close(ema[n], expected[n], atol=1e-6, rtol=1e-5)
    moved = [n for n, p in tr.model.named_parameters() if not torch.allclose(ema[n], p)]
    assert len(moved) > 10  # the average lags the weights, it is not a copy
