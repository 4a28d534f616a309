"""Key lock: pitch-class helpers, the x0 channel lock inside the sampler's model function, and
the lock through the whole generation path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from samuel_live.codec.harmonic import SILENCE
from samuel_live.codec.pitch import (
    LOCK_DB,
    MAJOR,
    key_name,
    key_of,
    outside_scale,
    parse_key,
    scale_cut,
    scale_pitch_classes,
)
from samuel_live.diffusion.lock import locked_model_fn
from samuel_live.diffusion.schedule import Schedule
from samuel_live.errors import InvalidArgumentError


def test_keys_parse_name_and_scale():
    assert [parse_key(k) for k in ("C major", "f# minor", "Bb", "Am", "Eb min", "G maj")] == \
        [0, 18, 10, 21, 15, 7]
    assert key_name(21) == "A minor" and key_name(parse_key(key_name(18))) == "F# minor"
    assert scale_pitch_classes(0) == {0, 2, 4, 5, 7, 9, 11}
    assert scale_pitch_classes(21) == {9, 11, 0, 2, 4, 5, 7, 8}  # natural minor + G#
    for bad in ("H major", "C dorian", "", "C# # minor"):
        with pytest.raises(InvalidArgumentError, match="tonic"):
            parse_key(bad)
    mask = outside_scale(0, 64)
    assert not mask[0] and mask[1] and not mask[2]  # band 0 is C2, band 1 C#2


def test_key_of_energy_finds_the_scale():
    energy = np.zeros((64, 8))
    for pc in (7, 9, 11, 0, 2, 4, 6):  # G major scale, tonic weighted
        energy[12 + pc] = 1.0
    energy[12 + 7] = 3.0
    assert key_of(energy) == 7
    assert key_of(np.zeros((64, 4))) == -1


def test_lock_lowers_only_the_cut_channels_of_x0_and_never_below_silence():
    sched = Schedule()
    c, frames = 6, 5
    mean, std = torch.linspace(-6, -4, c), torch.linspace(1, 2, c)
    target = torch.tensor([-1.0, -2.0, SILENCE + 0.5, -3.0, SILENCE - 1.0, -1.5])
    target = target.view(1, -1, 1).expand(2, c, frames)
    target_n = (target - mean.view(1, -1, 1)) / std.view(1, -1, 1)
    x = torch.randn(2, c, frames, dtype=torch.float64)
    t = torch.tensor([700, 20])

    def model_fn(x_t, t_):  # a "model" whose clean estimate is exactly ``target``
        eps = (x_t - sched.q_sample(target_n.double(), t_, torch.zeros_like(x_t))) / \
            (1 - sched.abar(t_)).sqrt().view(-1, 1, 1)
        return sched.v_target(target_n.double(), eps, t_)

    cut = torch.tensor([0.0, 2.0, 2.0, 0.0, 2.0, 0.0])
    v = locked_model_fn(model_fn, sched, cut, mean, std, SILENCE)(x, t)
    z = sched.x0_from_v(x, v, t) * std.view(1, -1, 1) + mean.view(1, -1, 1)
    want = torch.tensor([-1.0, -4.0, SILENCE, -3.0, SILENCE - 1.0, -1.5]).view(1, -1, 1)
    torch.testing.assert_close(z, want.expand_as(z).double(), atol=1e-6, rtol=0)
    # the matching noise estimate keeps x_t = sqrt(a) x0 + sqrt(1 - a) eps
    eps = sched.eps_from_v(x, v, t)
    torch.testing.assert_close(sched.q_sample(sched.x0_from_v(x, v, t), t, eps), x)
    assert math.isfinite(float(v.abs().max()))


def _sung(midi_notes: list[int], seconds: float = 3.0) -> np.ndarray:
    """A vocal stepping through ``midi_notes``, 0.5 s each, looped, as (2, n) float32."""
    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    notes = np.array(midi_notes)[(t // 0.5).astype(int) % len(midi_notes)]
    phase = 2 * np.pi * np.cumsum(440 * 2 ** ((notes - 69) / 12)) / sr
    y = (0.3 * np.sin(phase)).astype(np.float32)
    return np.stack([y, y])


def _outside_share(latent: torch.Tensor, key: int) -> float:
    energy = np.exp(latent.numpy().astype(np.float64))
    return float(energy[outside_scale(key, 64)].sum() / energy.sum())


def _small_accompanist():
    """A small random-weight model with normalisations far from identity, as a trained
    model's are."""
    from samuel_live.model.checkpoint import LatentStats
    from samuel_live.model.unet import UNetConfig
    from samuel_live.pipeline import Accompanist

    small = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32,
                       cond_dim=16, attn_levels=(1,), cross_attn_levels=(0, 1))
    rand = Accompanist.random(small, seed=3)
    stats = LatentStats((-6.0,) * 64, (3.0,) * 64, (-6.0,) * 64, (2.0,) * 64)
    return Accompanist(rand.model, rand.codec, stats, rand.device, rand.meta)


def test_generation_locks_to_the_key_named_or_heard():
    """Breaks: the cut not reaching the sampler (checked), or applied to the wrong bands."""
    from samuel_live.settings import GenerateSettings

    acc = _small_accompanist()
    g_major = _sung([67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67, 74])
    runs = {key: acc.accompany_latent(g_major, GenerateSettings(steps=4, cfg=3.0, seed=1,
                                                                 key=key))
            for key in ("off", "G major", "auto", "C# major")}
    free = _outside_share(runs["off"], 7)
    assert _outside_share(runs["G major"], 7) < 0.5 * free
    torch.testing.assert_close(runs["auto"], runs["G major"])  # G major is what it hears
    assert _outside_share(runs["C# major"], 1) < 0.5 * _outside_share(runs["off"], 1)
    with pytest.raises(InvalidArgumentError, match="tonic"):
        GenerateSettings(key="H minor")


def test_scale_cut_follows_the_tonal_hierarchy():
    """Out of scale: LOCK_DB; in scale: 0 on the tonic, rising as the Krumhansl-Kessler profile
    falls (fifth < third < second < leading tone); ``tonal_db=0`` is the plain scale lock."""
    db = scale_cut(7, 64) * 20 / np.log(10)  # G major; band 7 is G2
    pc = (36 + np.arange(64)) % 12
    np.testing.assert_allclose(db[outside_scale(7, 64)], LOCK_DB)
    by_pc = {p: db[pc == p][0] for p in range(12)}
    assert by_pc[7] == 0.0  # the tonic
    assert 0 < by_pc[2] < by_pc[11] < by_pc[9] < by_pc[6] < LOCK_DB  # D < B < A < F#
    np.testing.assert_allclose(by_pc[2], 6.0 * (1 - MAJOR[7] / MAJOR[0]))
    minor = scale_cut(21, 64) * 20 / np.log(10)  # A minor: G# (leading tone) is in the scale
    assert 0 < minor[pc == 8][0] < LOCK_DB and minor[pc == 9][0] == 0.0
    assert minor[pc == 0][0] < minor[pc == 11][0]  # the minor third is more stable than B
    plain = scale_cut(7, 64, tonal_db=0.0)
    assert set(np.unique(plain)) == {0.0, LOCK_DB * np.log(10) / 20}


def test_generation_leans_on_the_tonic(monkeypatch):
    """The tonal part of the cut reaches the sampler: with it the tonic's share of the in-scale
    energy is higher than with the plain scale lock. Breaks: the pipeline cutting only the
    out-of-scale bands."""
    import functools

    import samuel_live.pipeline as pipeline
    from samuel_live.settings import GenerateSettings

    acc = _small_accompanist()
    vocal = _sung([67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67, 74])
    pc = (36 + np.arange(64)) % 12

    def tonic_share() -> float:
        shares = []
        for seed in range(3):
            z = acc.accompany_latent(vocal, GenerateSettings(steps=4, cfg=3.0, seed=seed,
                                                             key="G major"))
            energy = np.exp(z.numpy().astype(np.float64)).sum(axis=1)
            inside = ~outside_scale(7, 64)
            shares.append(energy[pc == 7].sum() / energy[inside].sum())
        return float(np.mean(shares))

    tonal = tonic_share()
    monkeypatch.setattr(pipeline, "scale_cut", functools.partial(scale_cut, tonal_db=0.0))
    plain = tonic_share()
    assert tonal > 1.1 * plain
