"""Speed without changing results (issue 15): bfloat16 inference with float32 fallback, and the
per-window work (vocal encoder, cross-attention keys/values, time embedding) done once."""

from __future__ import annotations

import pytest
import torch

from samuel_live.codec import load_codec
from samuel_live.device import cpu_has_fast_bf16, pick_dtype
from samuel_live.diffusion import guided_model_fn
from samuel_live.errors import InvalidArgumentError
from samuel_live.model import SamuelUNet, UNetConfig, local_attention
from samuel_live.model.checkpoint import LatentStats
from samuel_live.pipeline import STARTER_MODEL, Accompanist
from samuel_live.settings import DEFAULT_PRECISION, GenerateSettings

TINY = UNetConfig(widths=(16, 32, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                  attn_levels=(1, 2), cross_attn_levels=(0, 1, 2))
CPU = torch.device("cpu")
WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n"
WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


def tiny(seed: int = 0) -> SamuelUNet:
    torch.manual_seed(seed)
    model = SamuelUNet(TINY).eval()
    with torch.no_grad():
        for p in model.parameters():  # the zero-initialised output must produce signal
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_bf16_is_detected_from_the_cpu_flags() -> None:
    assert cpu_has_fast_bf16(WITH_BF16)
    assert cpu_has_fast_bf16(WITHOUT.replace("avx512bw", "avx512bw amx_bf16"))
    assert not cpu_has_fast_bf16(WITHOUT)
    assert not cpu_has_fast_bf16("")
    assert not cpu_has_fast_bf16("model name\t: avx512_bf16 in a name, not a flag\n")


def test_precision_picks_bf16_only_where_native_and_honours_requests() -> None:
    assert DEFAULT_PRECISION == "auto"
    assert pick_dtype("auto", CPU, WITH_BF16) == torch.bfloat16
    assert pick_dtype("auto", CPU, WITHOUT) == torch.float32
    assert pick_dtype("float32", CPU, WITH_BF16) == torch.float32
    assert pick_dtype("bfloat16", CPU, WITHOUT) == torch.bfloat16
    with pytest.raises(InvalidArgumentError, match="float32"):
        pick_dtype("fp8", CPU)


def test_float32_falls_back_to_the_master_model_and_bf16_keeps_the_noise_table_float32() -> None:
    acc = Accompanist(tiny(), load_codec("harmonic"), LatentStats.identity(64), CPU,
                      precision="float32")
    assert acc.net is acc.model and acc.info()["precision"] == "float32"
    acc.set_precision("bfloat16")
    assert acc.net is not acc.model and acc.net.dtype == torch.bfloat16
    assert acc.model.dtype == torch.float32  # the master is untouched
    assert acc.net.alphas_cumprod.dtype == torch.float32
    torch.testing.assert_close(acc.net.alphas_cumprod, acc.model.alphas_cumprod, rtol=0, atol=0)
    assert acc.info()["precision"] == "bfloat16"


@pytest.mark.skipif(not STARTER_MODEL.exists(), reason="no starter model installed")
def test_bf16_starter_output_is_close_to_float32() -> None:
    """Breaks: bf16 arithmetic where float32 is needed (the noise table, the softmax), or a
    bfloat16 path that is not bfloat16 at all (then the error would be ~0)."""
    acc = Accompanist.load(precision="float32")
    fp32 = acc.net
    acc.set_precision("bfloat16")
    g = torch.Generator().manual_seed(0)
    x, cond = (torch.randn(2, 64, 256, generator=g) for _ in range(2))
    keep = torch.tensor([True, False])
    with torch.inference_mode():
        for step in (799, 400, 20):
            t = torch.full((2,), step)
            ref, out = fp32(x, t, cond, keep), acc.net(x, t, cond, keep)
            assert out.dtype == torch.float32
            rel = ((out - ref).norm() / ref.norm()).item()
            assert 1e-4 < rel < 0.05, (step, rel)


def test_bf16_sampling_is_close_to_float32_sampling() -> None:
    acc = Accompanist(tiny(), load_codec("harmonic"), LatentStats.identity(64), CPU,
                      precision="float32")
    take = torch.sin(torch.arange(44100) * 0.05).repeat(2, 1).numpy() * 0.3
    s = GenerateSettings(sampler="dpmpp_2m", steps=4, cfg=3.0, seed=1, key="off")
    ref = acc.accompany_latent(take, s)
    acc.set_precision("bfloat16")
    out = acc.accompany_latent(take, s)
    rel = ((out - ref).norm() / (ref - ref.mean()).norm()).item()
    assert out.dtype == torch.float32 and 0 < rel < 0.05


def test_local_attention_in_bf16_is_close_to_float32() -> None:
    g = torch.Generator().manual_seed(3)
    q, k, v = (4 * torch.randn(2, 2, 100, 16, generator=g) for _ in range(3))
    ref = local_attention(q, k, v)
    out = local_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16
    assert ((out.float() - ref).norm() / ref.norm()).item() < 0.02


def test_prepared_vocal_gives_the_same_v_as_the_full_forward_at_every_step() -> None:
    """Breaks: the time-embedding cache keyed wrongly (one step's embedding reused for
    another), cross-attention keys/values from the wrong level or stage, the null vocal not
    applied to the dropped rows."""
    model = tiny()
    g = torch.Generator().manual_seed(2)
    x, cond = torch.randn(2, 64, 48, generator=g), torch.randn(2, 64, 48, generator=g)
    keep = torch.tensor([True, False])
    with torch.no_grad():
        ctx = model.prepare(cond, keep)
        outs = []
        for step in (799, 300, 799, 5):
            t = torch.tensor([step, step])
            v = model.denoise(x, t, ctx)
            torch.testing.assert_close(v, model(x, t, cond, keep), rtol=0, atol=0)
            outs.append(v)
    assert not torch.allclose(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert len(ctx.time_cache or {}) == 3


def test_guided_model_fn_prepares_the_vocal_once() -> None:
    model = tiny()
    calls = []
    prepare = model.prepare

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return prepare(*args, **kwargs)

    model.prepare = spy  # type: ignore[method-assign]
    cond = torch.randn(1, 64, 32)
    fn = guided_model_fn(model, cond, 3.0)
    with torch.no_grad():
        for step in (700, 300, 10):
            fn(torch.randn(1, 64, 32), torch.tensor([step]))
    assert calls == [1]


def test_each_cross_attention_gets_its_own_levels_vocal_and_dropped_rows_the_null() -> None:
    """Breaks: keys/values prepared from another level's features (prepare's level list out of
    step with the stages), the null vocal not replacing the dropped rows."""
    model = tiny()
    seen: dict[int, int] = {}
    for stage in [*model.down_stages, model.mid, *model.up_stages]:
        cross = stage.cross
        if cross is not None:
            original = cross.keys_values

            def spy(cond: torch.Tensor, _cross=cross, _kv=original) -> object:
                seen[id(_cross)] = cond.shape[-1]
                return _kv(cond)

            cross.keys_values = spy  # type: ignore[method-assign]
    frames = 64
    g = torch.Generator().manual_seed(4)
    x, cond, other = (torch.randn(1, 64, frames, generator=g) for _ in range(3))
    drop = torch.tensor([False])
    with torch.no_grad():
        v = model(x, torch.tensor([500]), cond, drop)
        torch.testing.assert_close(v, model(x, torch.tensor([500]), other, drop))
    top = len(model.down_stages)
    levels = {id(s.cross): lv for lv, s in enumerate(model.down_stages)}
    levels |= {id(s.cross): lv for lv, s in enumerate(model.up_stages)}
    levels[id(model.mid.cross)] = top
    assert seen == {k: frames >> lv for k, lv in levels.items() if k in seen}
    assert len(seen) == 2 * len(TINY.cross_attn_levels) - 1  # mid once, others down and up
