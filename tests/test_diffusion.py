"""Schedule identities, samplers against an oracle, guidance and the training loss."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from samuel_live.diffusion import (
    SAMPLERS,
    Inpaint,
    Schedule,
    ScheduleConfig,
    diffusion_loss,
    drop_mask,
    guided_model_fn,
    loss_weights,
    sample,
    timesteps,
)
from samuel_live.errors import JobCancelled, SamuelError
from samuel_live.model import SamuelUNet, UNetConfig

SCHEDULE = Schedule()
TINY = UNetConfig(
    widths=(8, 16), heads=2, head_dim=4, time_dim=16, time_mlp_mult=2, cond_dim=8, groups=4,
    attn_levels=(1,), cross_attn_levels=(0, 1), latent_channels=4, cond_channels=4,
)


def oracle(x0: Tensor) -> callable:
    """A perfect model for a single known clean sample: returns the true v for any x_t."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        a = SCHEDULE.abar(t).view(-1, 1, 1).to(x_t.dtype)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    return model_fn


def live_model(seed: int = 0) -> SamuelUNet:
    """The tiny real U-Net with a random (not zero) output layer so outputs depend on input."""
    torch.manual_seed(seed)
    model = SamuelUNet(TINY).double()
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)
    torch.nn.init.normal_(model.null_cond, std=1.0)
    return model


def test_cosine_schedule_shape_and_clipping() -> None:
    a = SCHEDULE.alphas_cumprod
    assert a.dtype == torch.float64 and a.shape == (800,)
    assert torch.all(a[1:] < a[:-1])
    assert a[0].item() == pytest.approx(1 - 1e-4)  # the first beta is clipped up to 1e-4
    assert 0 < a[-1].item() < 1e-6


def test_v_x0_eps_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 3, 10, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 3, 10, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 200, 400, 650, 799])
    x_t = SCHEDULE.q_sample(x0, t, eps)
    v = SCHEDULE.v_target(x0, eps, t)
    torch.testing.assert_close(SCHEDULE.x0_from_v(x_t, v, t), x0, atol=1e-9, rtol=0)
    torch.testing.assert_close(SCHEDULE.eps_from_v(x_t, v, t), eps, atol=1e-9, rtol=0)
    a = SCHEDULE.abar(t)
    torch.testing.assert_close(SCHEDULE.snr(t), a / (1 - a))


def test_float32_inputs_stay_float32() -> None:
    x = torch.randn(2, 3, 4)
    assert SCHEDULE.q_sample(x, torch.tensor([5, 6]), x).dtype == torch.float32


def test_unknown_schedule_is_rejected() -> None:
    with pytest.raises(SamuelError, match="cosine"):
        ScheduleConfig(kind="linear")


@pytest.mark.parametrize("steps", [1, 2, 25, 800])
def test_timesteps_start_at_noisiest_and_are_distinct(steps: int) -> None:
    ts = timesteps(SCHEDULE, steps)
    assert len(ts) == len(set(ts)) == steps
    assert ts[0] == 799 and ts == sorted(ts, reverse=True)
    if steps > 1:
        assert ts[-1] == 0


@pytest.mark.parametrize(
    ("name", "steps"),
    [("ddpm", 800), ("ddpm", 25), ("ddim", 25), ("ddim", 3), ("dpmpp_2m", 25), ("dpmpp_2m", 7)],
)
def test_sampler_with_oracle_returns_x0(name: str, steps: int) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 16, generator=g, dtype=torch.float64)
    noise = torch.randn(2, 3, 16, generator=g, dtype=torch.float64)
    out = sample(name, oracle(x0), noise, SCHEDULE, steps, generator=g)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("resample", [1, 2])
def test_inpaint_keeps_known_frames_and_samples_the_rest(name: str, resample: int) -> None:
    g = torch.Generator().manual_seed(2)
    target = torch.randn(1, 3, 32, generator=g, dtype=torch.float64)
    known = torch.randn(1, 3, 32, generator=g, dtype=torch.float64) + 5.0
    mask = torch.zeros(1, 1, 32, dtype=torch.bool)
    mask[..., :12] = True
    noise = torch.randn(1, 3, 32, generator=g, dtype=torch.float64)
    inpaint = Inpaint(known=known, mask=mask, resample=resample)
    out = sample(name, oracle(target), noise, SCHEDULE, 10, generator=g, inpaint=inpaint)
    assert torch.equal(out[..., :12], known[..., :12])
    torch.testing.assert_close(out[..., 12:], target[..., 12:], atol=1e-5, rtol=0)


def test_callback_sees_every_step_and_can_cancel() -> None:
    x0 = torch.zeros(1, 2, 8, dtype=torch.float64)
    seen: list[tuple[int, int]] = []
    sample("ddim", oracle(x0), torch.randn_like(x0), SCHEDULE, 5,
           callback=lambda i, n, pred: seen.append((i, n)))
    assert seen == [(i, 5) for i in range(5)]

    def cancel(i: int, n: int, pred: Tensor) -> None:
        if i == 2:
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        sample("dpmpp_2m", oracle(x0), torch.randn_like(x0), SCHEDULE, 5, callback=cancel)


def test_ddpm_is_reproducible_from_the_generator() -> None:
    def model_fn(x: Tensor, t: Tensor) -> Tensor:
        return 0.3 * x

    noise = torch.randn(1, 2, 8)
    runs = [
        sample("ddpm", model_fn, noise, SCHEDULE, 20, generator=torch.Generator().manual_seed(s))
        for s in (7, 7, 8)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_unknown_sampler_and_bad_steps_are_rejected() -> None:
    x = torch.zeros(1, 2, 8)
    with pytest.raises(SamuelError, match="unknown sampler"):
        sample("euler", lambda x, t: x, x, SCHEDULE, 5)
    with pytest.raises(SamuelError, match="steps"):
        sample("ddim", lambda x, t: x, x, SCHEDULE, 0)


def test_condition_drop_rate() -> None:
    dropped = drop_mask(10000, 0.1, torch.Generator().manual_seed(3))
    assert dropped.dtype == torch.bool
    assert abs(dropped.float().mean().item() - 0.1) < 0.01


def test_guidance_scale_one_and_zero_are_single_branches() -> None:
    model = live_model()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    cond = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    t = torch.tensor([100, 700])
    keep, drop = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        v_cond, v_uncond = model(x, t, cond, keep), model(x, t, cond, drop)
        assert not torch.allclose(v_cond, v_uncond)
        torch.testing.assert_close(guided_model_fn(model, cond, 1.0)(x, t), v_cond)
        torch.testing.assert_close(guided_model_fn(model, cond, 0.0)(x, t), v_uncond)
        guided = guided_model_fn(model, cond, 3.0)(x, t)
    torch.testing.assert_close(guided, v_uncond + 3.0 * (v_cond - v_uncond))


def test_guidance_is_left_out_where_the_noise_is_below_its_interval() -> None:
    """Below GUIDANCE_MAX_LAMBDA the guided fn is the conditional branch alone, at batch 1
    per vocal; just above it, the guided combination. Breaks: the threshold ignored (both
    branches everywhere), the wrong half of the prepared batch (the null vocal's), or a
    threshold in the wrong direction."""
    from samuel_live.diffusion.guidance import GUIDANCE_MAX_LAMBDA
    from samuel_live.diffusion.schedule import cosine_alphas_cumprod

    model = live_model()
    a = cosine_alphas_cumprod(model.config.num_train_steps, model.config.schedule_s)
    lam = 0.5 * (a / (1 - a)).log()
    last_quiet = int((lam >= GUIDANCE_MAX_LAMBDA).sum()) - 1
    assert 0 <= last_quiet < 400 and lam[last_quiet + 1] < GUIDANCE_MAX_LAMBDA
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    cond = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    keep, drop = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    batches = []
    denoise = model.denoise

    def spy(x_: torch.Tensor, *args: object) -> torch.Tensor:
        batches.append(x_.shape[0])
        return denoise(x_, *args)

    with torch.no_grad():
        fn = guided_model_fn(model, cond, 3.0)
        for t_ in (last_quiet, last_quiet + 1):
            t = torch.full((2,), t_)
            v_cond, v_uncond = model(x, t, cond, keep), model(x, t, cond, drop)
            want = v_cond if t_ == last_quiet else v_uncond + 3.0 * (v_cond - v_uncond)
            model.denoise = spy  # type: ignore[method-assign]
            torch.testing.assert_close(fn(x, t), want)
            model.denoise = denoise  # type: ignore[method-assign]
    assert batches == [2, 4]


def test_snr_weights_follow_the_paper_up_to_scale() -> None:
    all_t = torch.arange(800)
    w = loss_weights(SCHEDULE, all_t, "snr")
    assert w.mean().item() == pytest.approx(1.0)
    torch.testing.assert_close(w / w[400], SCHEDULE.snr(all_t) / SCHEDULE.snr(all_t)[400])
    snr = SCHEDULE.snr(all_t)
    torch.testing.assert_close(loss_weights(SCHEDULE, all_t, "min_snr"),
                               snr.clamp(max=5.0) / (snr + 1))
    with pytest.raises(SamuelError, match="weighting"):
        loss_weights(SCHEDULE, all_t, "p2")


@pytest.mark.parametrize("weighting", ["snr", "min_snr", "none"])
def test_loss_is_a_finite_scalar_that_trains_the_null_condition(weighting: str) -> None:
    model = live_model()
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(4, 4, 16, generator=g, dtype=torch.float64)
    cond = torch.randn(4, 4, 16, generator=g, dtype=torch.float64)
    loss = diffusion_loss(model, x0, cond, SCHEDULE, generator=g, cond_drop=1.0,
                          weighting=weighting)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.null_cond.grad is not None and model.null_cond.grad.abs().sum() > 0


def test_loss_without_drop_leaves_the_null_condition_untouched() -> None:
    model = live_model()
    x0 = torch.randn(2, 4, 16, dtype=torch.float64)
    loss = diffusion_loss(model, x0, x0.clone(), SCHEDULE, cond_drop=0.0)
    loss.backward()
    assert model.null_cond.grad is None or model.null_cond.grad.abs().sum() == 0


def gaussian_denoiser(sigma: float) -> callable:
    """The exact v for data ~ N(0, sigma^2 I): E[x0 | x_t] is linear in x_t."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        a = SCHEDULE.abar(t).view(-1, 1, 1).to(x_t.dtype)
        x0 = a.sqrt() * sigma**2 / (a * sigma**2 + 1 - a) * x_t
        return (a.sqrt() * x_t - x0) / (1 - a).sqrt()

    return model_fn


def flow_error(name: str, steps: int, sigma: float = 0.5) -> float:
    """Max distance from the exact probability-flow endpoint, relative to sigma.

    For Gaussian data the ODE keeps x_t / sqrt(abar sigma^2 + 1 - abar) constant, so the
    whole trajectory (not just the last step) decides whether the output lands on it.
    """
    noise = torch.randn(1, 4, 64, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    a_first = SCHEDULE.alphas_cumprod[-1].item()
    expected = sigma * noise / (a_first * sigma**2 + 1 - a_first) ** 0.5
    out = sample(name, gaussian_denoiser(sigma), noise, SCHEDULE, steps)
    return (out - expected).abs().max().item() / sigma


@pytest.mark.parametrize(("name", "steps"), [("ddim", 400), ("dpmpp_2m", 100)])
def test_deterministic_samplers_follow_the_probability_flow(name: str, steps: int) -> None:
    assert flow_error(name, steps) < 2e-2


def test_dpmpp_2m_converges_faster_than_ddim() -> None:
    # Second order: halving the step size cuts the error ~4x (DDIM, first order: ~2x).
    assert flow_error("dpmpp_2m", 100) < flow_error("dpmpp_2m", 50) / 3
    assert flow_error("dpmpp_2m", 50) < flow_error("ddim", 50) / 2


def test_ancestral_sampler_reaches_the_data_variance() -> None:
    sigma = 0.5
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(8, 8, 256, generator=g, dtype=torch.float64)
    out = sample("ddpm", gaussian_denoiser(sigma), noise, SCHEDULE, 100, generator=g)
    assert out.std().item() == pytest.approx(sigma, rel=0.03)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_reports_each_step_and_inpaints_reproducibly(name: str) -> None:
    """All noise (steps, pasted kept frames, RePaint) comes from the generator, never from the
    global RNG, and every sampler calls back once per step."""
    g = torch.Generator().manual_seed(8)
    known = torch.randn(1, 2, 16, generator=g)
    noise = torch.randn(1, 2, 16, generator=g)
    mask = torch.zeros(1, 1, 16)
    mask[..., :6] = 1

    def run(global_seed: int) -> tuple[Tensor, list[int]]:
        torch.manual_seed(global_seed)
        seen: list[int] = []
        out = sample(name, lambda x, t: 0.3 * x, noise, SCHEDULE, 4,
                     generator=torch.Generator().manual_seed(9),
                     callback=lambda i, n, pred: seen.append(i),
                     inpaint=Inpaint(known=known, mask=mask, resample=2))
        return out, seen

    (first, seen), (second, _) = run(0), run(1)
    assert seen == [0, 1, 2, 3]
    assert torch.equal(first, second)


@pytest.mark.parametrize("cond_drop", [-0.1, 1.5])
def test_condition_drop_outside_0_1_is_refused(cond_drop: float) -> None:
    x0 = torch.zeros(1, 4, 16)
    with pytest.raises(SamuelError, match="cond_drop"):
        diffusion_loss(live_model(), x0, x0, SCHEDULE, cond_drop=cond_drop)


def test_schedule_from_a_float32_model_buffer_is_float64_on_cpu() -> None:
    table = SCHEDULE.alphas_cumprod[:300].float()  # as SamuelUNet stores it
    schedule = Schedule.from_alphas_cumprod(table)
    assert schedule.steps == 300 and schedule.alphas_cumprod.dtype == torch.float64
    assert schedule.alphas_cumprod.device.type == "cpu"
    torch.testing.assert_close(schedule.alphas_cumprod, table.double())
