"""The soft alignment mix direction (issue 13 item 3): eq. 3's sqrt(abar_t) or the prose's
1 - sqrt(abar_t), chosen by the model config and reaching every attention block."""

from __future__ import annotations

import json

import pytest
import torch

from samuel_live.diffusion.schedule import Schedule
from samuel_live.errors import ModelError
from samuel_live.model.attention import SoftAlignmentAttention
from samuel_live.model.unet import SamuelUNet, UNetConfig

CFG = UNetConfig(latent_channels=4, cond_channels=4, widths=(8, 16), heads=2, head_dim=4,
                 groups=4, time_dim=16, cond_dim=8, attn_levels=(0, 1), cross_attn_levels=(1,))


@pytest.mark.parametrize("t", [0, 400, 799])
def test_direction_sets_the_weights_as_stated(t: int) -> None:
    steps = torch.tensor([t])
    root = Schedule().abar(steps).sqrt().float()
    eq3 = SamuelUNet(CFG).mix_weights(steps)
    prose = SamuelUNet(UNetConfig(**{**CFG.__dict__, "global_weight": "one_minus_sqrt_abar"}))
    w_global, w_local = prose.mix_weights(steps)
    torch.testing.assert_close(eq3[0], root)
    torch.testing.assert_close(eq3[1], 1 - root)
    torch.testing.assert_close(w_global, 1 - root)
    torch.testing.assert_close(w_local, root)


def test_high_noise_leads_with_global_only_in_the_prose_reading() -> None:
    noisy = torch.tensor([799])
    eq3 = SamuelUNet(CFG).mix_weights(noisy)[0].item()
    prose = SamuelUNet(UNetConfig(**{**CFG.__dict__, "global_weight": "one_minus_sqrt_abar"}))
    assert eq3 < 0.1 < 0.9 < prose.mix_weights(noisy)[0].item()


def test_every_attention_block_uses_the_configured_direction() -> None:
    """Breaks: the config field not handed to the blocks (they would fall back to eq. 3)."""
    model = SamuelUNet(UNetConfig(**{**CFG.__dict__, "global_weight": "one_minus_sqrt_abar"}))
    attns = [m for m in model.modules() if isinstance(m, SoftAlignmentAttention)]
    assert attns and {a.global_weight for a in attns} == {"one_minus_sqrt_abar"}
    a = attns[0]
    x, w = torch.randn(1, 8, 32), torch.tensor([0.9])
    with torch.no_grad():
        mixed = (1 - w) * a.global_context(x) + w * a.local_context(x)
        torch.testing.assert_close(a(x, w), x + a.out(mixed), atol=1e-5, rtol=1e-5)


def test_direction_round_trips_and_bad_values_name_the_choices() -> None:
    cfg = UNetConfig(**{**CFG.__dict__, "global_weight": "one_minus_sqrt_abar"})
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    old = {k: v for k, v in CFG.to_dict().items() if k != "global_weight"}
    assert UNetConfig.from_dict(old).global_weight == "sqrt_abar"  # checkpoints before the field
    with pytest.raises(ModelError, match="one_minus_sqrt_abar"):
        UNetConfig(**{**CFG.__dict__, "global_weight": "noise"})
