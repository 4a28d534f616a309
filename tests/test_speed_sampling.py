"""Fewer, better steps (issue 15): log-SNR step spacing and DPM-Solver++(3M), checked on the
Gaussian toy problem whose probability-flow endpoint is known exactly (test_diffusion.py)."""

from __future__ import annotations

import pytest
import torch
from test_diffusion import SCHEDULE, flow_error, oracle

from samuel_live.diffusion import sample, timesteps
from samuel_live.diffusion.samplers import LOGSNR_FLOOR
from samuel_live.errors import SamuelError

NEW = ("dpmpp_2m_logsnr", "dpmpp_3m", "dpmpp_3m_logsnr")


@pytest.mark.parametrize("steps", [3, 8, 25, 800])
def test_logsnr_timesteps_are_distinct_decreasing_and_span_the_grid(steps: int) -> None:
    ts = timesteps(SCHEDULE, steps, "logsnr")
    assert len(set(ts)) == steps and ts == sorted(ts, reverse=True)
    assert ts[0] == 799 and ts[-1] == 0


def test_logsnr_timesteps_are_even_in_lambda_above_the_floor() -> None:
    """Breaks: spacing in the index (or in abar) instead of lambda; the floor ignored."""
    a = SCHEDULE.alphas_cumprod
    lam = 0.5 * (a.log() - (1 - a).log())
    ts = timesteps(SCHEDULE, 8, "logsnr")
    gaps = torch.diff(lam[ts[1:]])
    even = (float(lam[0]) - LOGSNR_FLOOR) / 7  # the grid runs floor .. lambda_0 in 7 gaps
    assert float(lam[ts[1]]) == pytest.approx(LOGSNR_FLOOR + even, abs=0.05)
    assert float((gaps - even).abs().max()) < 0.05 * even
    with pytest.raises(SamuelError, match="spacing"):
        timesteps(SCHEDULE, 8, "karras")


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("steps", [4, 7, 25])
def test_new_samplers_with_an_oracle_return_x0(name: str, steps: int) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 16, generator=g, dtype=torch.float64)
    noise = torch.randn(2, 3, 16, generator=g, dtype=torch.float64)
    out = sample(name, oracle(x0), noise, SCHEDULE, steps, generator=g)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NEW)
def test_new_samplers_follow_the_probability_flow(name: str) -> None:
    assert flow_error(name, 100) < 6e-3


def test_logsnr_spacing_beats_uniform_at_few_steps() -> None:
    """Breaks: the logsnr grid not reaching the sampler (uniform used), or a badly placed
    grid. Measured: 0.077 against 0.65 at 10 steps, 0.069 against 0.80 at 8."""
    for steps in (8, 10):
        assert flow_error("dpmpp_2m_logsnr", steps) < flow_error("dpmpp_2m", steps) / 4


def test_dpmpp_3m_is_third_order() -> None:
    """Breaks: a wrong sign or weight in the second-difference correction, history of the
    wrong steps, phi_3 dropped (each leaves it at second order or worse). Measured on the
    logsnr grid: 3M 2.4e-4 against 2M 2.3e-3 at 50 steps; 3M 5.1e-3 at 25."""
    assert flow_error("dpmpp_3m_logsnr", 50) < flow_error("dpmpp_2m_logsnr", 50) / 4
    assert flow_error("dpmpp_3m_logsnr", 50) < flow_error("dpmpp_3m_logsnr", 25) / 6
