"""Joins between sampler, model and pipeline (issue 11): the noise level the model is shown,
the frames inpainting holds, and the latent statistics around the model at inference.

The oracles here record what the sampler hands them: an oracle that is right for any x_t
(test_diffusion.py) returns the right x0 even when x_t is at the wrong noise level, so only
what the model is shown can reveal such a break. Breaks each test was checked against are
named in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from samuel_live.codec import load_codec
from samuel_live.diffusion import SAMPLERS, Inpaint, Schedule, sample, timesteps
from samuel_live.model import SamuelUNet, UNetConfig
from samuel_live.model.checkpoint import LatentStats
from samuel_live.pipeline import Accompanist
from samuel_live.settings import GenerateSettings

SCHEDULE = Schedule()

Seen = list[tuple[Tensor, Tensor]]


def recording_oracle(schedule: Schedule, x0: Tensor, seen: Seen):
    """The exact v for one known clean ``x0``, recording every (x_t, t) it is shown."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        seen.append((x_t.clone(), t.clone()))
        return schedule.v_target(x0, implied_noise(schedule, x_t, x0, t), t)

    return model_fn


def implied_noise(schedule: Schedule, x_t: Tensor, x0: Tensor, t: Tensor) -> Tensor:
    """eps such that x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
    a = schedule.abar(t).view(-1, 1, 1).to(x_t.dtype)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def assert_standard_normal(eps: Tensor, where: str) -> None:
    """Thousands of samples: mean within 0.15 and std within 10% of N(0, 1)."""
    mean, std = eps.mean().item(), eps.std().item()
    assert abs(mean) < 0.15 and abs(std - 1) < 0.1, f"{where}: mean {mean:.3f}, std {std:.3f}"


def _data(seed: int) -> tuple[Tensor, Tensor, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    x0 = 4.0 + torch.randn(1, 8, 256, generator=g, dtype=torch.float64)
    noise = torch.randn(1, 8, 256, generator=g, dtype=torch.float64)
    return x0, noise, g


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_the_model_sees_x_at_the_noise_level_of_the_step_it_is_told(name: str) -> None:
    """Breaks: the sampler evaluating the model at the next (or previous) step's t while x is
    at this step's level; a step landing x at the wrong level (e.g. sqrt(1 - a_next) dropped)."""
    x0, noise, g = _data(0)
    seen: Seen = []
    sample(name, recording_oracle(SCHEDULE, x0, seen), noise, SCHEDULE, 10, generator=g)
    if name.endswith("_logsnr"):
        assert [int(t[0]) for _, t in seen] == timesteps(SCHEDULE, 10, "logsnr")
    else:
        assert [int(t[0]) for _, t in seen] == [799, 710, 621, 533, 444, 355, 266, 178, 89, 0]
    for i, (x_t, t) in enumerate(seen):
        assert_standard_normal(implied_noise(SCHEDULE, x_t, x0, t), f"step {i}, t={int(t[0])}")


@pytest.mark.parametrize("length", [800, 200], ids=["full", "short"])
@pytest.mark.parametrize("resample", [1, 2])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_inpainting_holds_known_frames_at_the_models_noise_level(
    name: str, resample: int, length: int
) -> None:
    """Breaks: known frames pasted at the current level instead of the next, pasted clean
    (un-noised) in the middle steps, noised with the wrong amplitude, not pasted before the
    first step (visible with the short schedule: its noisiest abar ~ 0.85 still shows the
    signal), or not re-noised by RePaint (resample 2)."""
    schedule = Schedule.from_alphas_cumprod(SCHEDULE.alphas_cumprod[:length])
    assert schedule.steps == length
    target, noise, g = _data(1)
    known = -target  # the kept frames differ from what the oracle would make of them
    mask = torch.zeros(1, 1, 256, dtype=torch.bool)
    mask[..., :96] = True
    first = torch.full((1,), schedule.steps - 1)
    start = schedule.q_sample(target, first, noise)  # plain N(0, 1) noise for the full one
    seen: Seen = []
    out = sample(name, recording_oracle(schedule, target, seen), start, schedule, 8,
                 generator=g, inpaint=Inpaint(known=known, mask=mask, resample=resample))
    assert len(seen) == 8 * resample - (resample - 1)  # no RePaint repeat on the last step
    for i, (x_t, t) in enumerate(seen):
        where = f"evaluation {i}, t={int(t[0])}"
        assert_standard_normal(implied_noise(schedule, x_t, known, t)[..., :96], "kept " + where)
        assert_standard_normal(implied_noise(schedule, x_t, target, t)[..., 96:], "new " + where)
    assert torch.equal(out[..., :96], known[..., :96])


# --- the pipeline: normalised vocal in, de-normalised accompaniment out -----------------------

TINY64 = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                    attn_levels=(1,), cross_attn_levels=(0, 1))
SR = 44100


def _accompanist(stats: LatentStats) -> Accompanist:
    torch.manual_seed(0)
    model = SamuelUNet(TINY64)
    with torch.no_grad():
        for p in model.parameters():  # the zero-initialised output must produce signal
            p.add_(0.05 * torch.randn_like(p))
    return Accompanist(model, load_codec("harmonic"), stats, torch.device("cpu"))


def _take(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    return np.stack([y, y]).astype(np.float32)


def _stats(accomp_std: float = 2.0) -> LatentStats:
    """Distinct statistics per channel, and different for the vocal and the accompaniment."""
    ch = np.arange(64)
    return LatentStats(
        vocal_mean=tuple(-6.0 + 0.05 * ch), vocal_std=tuple(1.5 + 0.01 * ch),
        accomp_mean=tuple(-4.0 - 0.03 * ch), accomp_std=(accomp_std,) * 64,
    )


def test_the_model_is_conditioned_on_the_normalised_vocal() -> None:
    """Breaks: encode_vocal returning the raw latent; the accompaniment statistics used for
    the vocal; de-normalising instead of normalising."""
    acc = _accompanist(_stats())
    conds: list[Tensor] = []
    prepare = acc.net.prepare

    def spy(cond: Tensor, *args: Any, **kwargs: Any) -> Any:
        conds.append(cond.clone())
        return prepare(cond, *args, **kwargs)

    acc.net.prepare = spy  # type: ignore[method-assign]
    take = _take()
    acc.accompany(take, GenerateSettings(sampler="ddim", steps=2, cfg=1.0, seed=0))
    stats = _stats()
    mean, std = (torch.tensor(s, dtype=torch.float32).view(-1, 1)
                 for s in (stats.vocal_mean, stats.vocal_std))
    expected = (acc.codec.encode(take) - mean) / std
    frames = expected.shape[-1]
    assert len(conds) == 1 and frames == 44  # one window: the vocal is prepared once
    for cond in conds:
        torch.testing.assert_close(cond[0, :, :frames], expected, atol=1e-5, rtol=1e-5)


def test_the_output_is_decoded_from_the_de_normalised_latent() -> None:
    """Breaks: decoding the model's z-scores as they are; normalising instead of
    de-normalising; the vocal statistics used for the output. With a tiny accompaniment std
    every sampled latent de-normalises to the accompaniment mean, whatever the model made."""
    acc = _accompanist(_stats(accomp_std=1e-6))
    take = _take()
    # key "off": the key lock would lower the mean's out-of-scale bands (tests/test_key_lock.py)
    out = acc.accompany(take, GenerateSettings(sampler="ddim", steps=2, cfg=2.0, seed=0,
                                               key="off"))
    mean = torch.tensor(_stats().accomp_mean, dtype=torch.float32).view(-1, 1).expand(-1, 44)
    expected = acc.codec.decode(mean)[:, : take.shape[1]]
    assert out.shape == take.shape
    np.testing.assert_allclose(out, expected, atol=1e-4)
