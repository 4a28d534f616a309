"""The SAMUeL U-Net: predicts v for accompaniment latents given aligned vocal latents.

Levels (default): (64, T) -> (128, T/2) -> (256, T/4) -> (512, T/8), the last being the
bottleneck. Each level has ResNet blocks with FiLM from the time embedding, optional soft
alignment self-attention and optional vocal cross-attention; the vocal also enters at the
input as an aligned additive stream (the "dual-stream" conditioning of the paper).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samuel_live.diffusion.schedule import cosine_alphas_cumprod
from samuel_live.errors import ModelError
from samuel_live.model.attention import (
    GLOBAL_WEIGHTS,
    SoftAlignmentAttention,
    VocalCrossAttention,
    group_norm,
)


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`SamuelUNet`; the defaults are the paper's model (~15.5M).

    Attention at a level of width ``c`` uses ``heads`` heads and an inner width of
    ``min(heads * head_dim, c)``: 8 x 64 at the 512-wide bottleneck, 8 x 8 at the 64-wide top.
    Levels are indexed from 0 (full resolution) to ``len(widths) - 1`` (the bottleneck).
    """

    latent_channels: int = 64
    cond_channels: int = 64
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks_per_level: int = 1
    heads: int = 8
    head_dim: int = 64
    local_window: int = 16
    rope_base: float = 10000.0
    time_dim: int = 512
    time_mlp_mult: int = 4
    attn_levels: tuple[int, ...] = (1, 2, 3)
    cross_attn_levels: tuple[int, ...] = (1, 2, 3)
    groups: int = 32
    num_train_steps: int = 800
    schedule_s: float = 0.008
    cond_dim: int = 128
    qkv_kernel: int = 3
    mid_post_blocks: int = 1
    global_weight: str = "sqrt_abar"  # soft alignment's global path weight (GLOBAL_WEIGHTS)

    def __post_init__(self) -> None:
        _check_fields(self)
        levels = range(len(self.widths))
        for name in ("attn_levels", "cross_attn_levels"):
            bad = [lv for lv in getattr(self, name) if lv not in levels]
            if bad:
                raise ModelError(f"{name} {bad} are not levels of widths {self.widths}")
        for lv in set(self.attn_levels) | set(self.cross_attn_levels):
            if self.inner(lv) % self.heads:
                raise ModelError(
                    f"attention width {self.inner(lv)} at level {lv} is not divisible by "
                    f"{self.heads} heads; change widths or heads"
                )
        if self.param_count() > MAX_PARAMS:
            raise ModelError(
                f"model config has {self.param_count():,} parameters; at most {MAX_PARAMS:,} "
                "are allowed (about 4 GB of float32 weights); reduce widths or blocks"
            )

    def param_count(self) -> int:
        """The number of parameters ``SamuelUNet(self)`` has, computed without building it."""
        return _param_count(self)

    def inner(self, level: int) -> int:
        """Attention inner width at ``level``."""
        return min(self.heads * self.head_dim, self.widths[level])

    @property
    def frame_multiple(self) -> int:
        """Sequence lengths must be a multiple of this (one halving per downsampler)."""
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """A checked config from JSON-like data (lists for tuples); ModelError names the fix."""
        if not isinstance(data, dict):
            raise ModelError(f"model config must be a table of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ModelError(
                f"model config has unknown keys {unknown}; the checkpoint was written by a "
                "newer samuel-live, upgrade the package"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


MAX_PARAMS = 1_000_000_000
"""Most parameters a model config may ask for; checked before anything is allocated."""
MAX_LEVELS = 8
MAX_WIDTH = 4096
_INT_RANGES: dict[str, tuple[int, int]] = {
    "latent_channels": (1, 1024),
    "cond_channels": (1, 1024),
    "blocks_per_level": (1, 8),
    "heads": (1, 64),
    "head_dim": (1, 512),
    "local_window": (1, 4096),
    "time_dim": (2, 4096),
    "time_mlp_mult": (1, 16),
    "groups": (1, 1024),
    "num_train_steps": (1, 100_000),
    "cond_dim": (1, 4096),
    "qkv_kernel": (1, 31),
    "mid_post_blocks": (0, 8),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {"rope_base": (1.0, 1e9), "schedule_s": (0.0, 1.0)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(cfg: UNetConfig) -> None:
    """Every field's type and range, before any derived check or allocation."""
    for name, (lo, hi) in _INT_RANGES.items():
        value = getattr(cfg, name)
        if not _is_int(value) or not lo <= value <= hi:
            raise ModelError(
                f"model config {name}={value!r:.40} must be a whole number in {lo}..{hi}"
            )
    for name, (lo, hi) in _FLOAT_RANGES.items():
        value = getattr(cfg, name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not lo <= value <= hi:
            raise ModelError(
                f"model config {name}={value!r:.40} must be a number in {lo:g}..{hi:g}"
            )
    if cfg.global_weight not in GLOBAL_WEIGHTS:
        raise ModelError(
            f"model config global_weight={cfg.global_weight!r:.40} must be one of {GLOBAL_WEIGHTS}"
        )
    for name, even in (("time_dim", True), ("qkv_kernel", False)):
        if (getattr(cfg, name) % 2 == 0) != even:
            raise ModelError(f"model config {name} must be {'even' if even else 'odd'}")
    widths = cfg.widths
    if not isinstance(widths, tuple) or not 2 <= len(widths) <= MAX_LEVELS:
        raise ModelError(
            f"model config widths must list 2..{MAX_LEVELS} levels, got {widths!r:.60}"
        )
    for i, width in enumerate(widths):
        if not _is_int(width) or not 1 <= width <= MAX_WIDTH:
            raise ModelError(
                f"model config widths[{i}]={width!r:.40} must be a whole number in 1..{MAX_WIDTH}"
            )
    for name in ("attn_levels", "cross_attn_levels"):
        value = getattr(cfg, name)
        ok = isinstance(value, tuple) and all(_is_int(lv) for lv in value)
        if not ok or len(value) > len(widths) or len(set(value)) != len(value):
            raise ModelError(
                f"model config {name}={value!r:.60} must list distinct level numbers "
                f"0..{len(widths) - 1}"
            )


def _param_count(cfg: UNetConfig) -> int:
    """Exact parameter count of ``SamuelUNet(cfg)``, mirroring its constructors."""

    def conv(c_in: int, c_out: int, k: int) -> int:  # Conv1d, ConvTranspose1d and Linear (k=1)
        return c_in * c_out * k + c_out

    def res(c_in: int, c_out: int) -> int:
        skip = conv(c_in, c_out, 1) if c_in != c_out else 0
        film = conv(cfg.time_dim, 2 * c_out, 1)
        return 2 * c_in + conv(c_in, c_out, 3) + 2 * c_out + film + conv(c_out, c_out, 3) + skip

    def stage(level: int, c_in: int, post: int) -> int:
        w, inner = cfg.widths[level], cfg.inner(level)
        n = res(c_in, w) + (cfg.blocks_per_level - 1 + post) * res(w, w)
        if level in cfg.attn_levels:
            n += 2 * w + conv(w, 3 * inner, cfg.qkv_kernel) + conv(inner, w, 1)
        if level in cfg.cross_attn_levels:
            n += 2 * w + conv(w, inner, 1) + conv(cfg.cond_dim, 2 * inner, 1) + conv(inner, w, 1)
        return n

    w, d, top = cfg.widths, cfg.cond_dim, len(cfg.widths) - 1
    hidden = cfg.time_dim * cfg.time_mlp_mult
    n = cfg.cond_channels + conv(cfg.time_dim, hidden, 1) + conv(hidden, cfg.time_dim, 1)
    n += conv(cfg.cond_channels, d, 3) + conv(d, d, 3) + top * conv(d, d, 4)
    n += conv(cfg.latent_channels, w[0], 3) + conv(d, w[0], 1)
    for lv in range(top):
        n += stage(lv, w[lv], 0) + conv(w[lv], w[lv + 1], 4)
        n += conv(w[lv + 1], w[lv], 4) + stage(lv, 2 * w[lv], 0)
    n += stage(top, w[top], cfg.mid_post_blocks)
    return n + 2 * w[0] + conv(w[0], cfg.latent_channels, 3)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer steps, [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv k3, GroupNorm, FiLM(scale, shift), SiLU, conv k3, + skip."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm2 = group_norm(c_out, groups)
        self.film = nn.Linear(time_dim, 2 * c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(temb)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Stage(nn.Module):
    """One level: ResNet blocks, soft alignment attention, vocal cross-attention, ResNet blocks.

    ``post_blocks`` (bottleneck only, by default) adds ResNet blocks after the attention so the
    attended features are mixed once more before upsampling.
    """

    def __init__(self, config: UNetConfig, level: int, c_in: int, post_blocks: int = 0) -> None:
        super().__init__()
        width, cfg = config.widths[level], config
        self.blocks = nn.ModuleList(
            ResBlock(c_in if i == 0 else width, width, cfg.time_dim, cfg.groups)
            for i in range(cfg.blocks_per_level)
        )
        self.attn = (
            SoftAlignmentAttention(
                width,
                cfg.heads,
                cfg.inner(level),
                groups=cfg.groups,
                window=cfg.local_window,
                rope_base=cfg.rope_base,
                qkv_kernel=cfg.qkv_kernel,
                global_weight=cfg.global_weight,
            )
            if level in cfg.attn_levels
            else None
        )
        self.cross = (
            VocalCrossAttention(
                width,
                cfg.cond_dim,
                cfg.heads,
                cfg.inner(level),
                groups=cfg.groups,
                rope_base=cfg.rope_base,
            )
            if level in cfg.cross_attn_levels
            else None
        )
        self.post = nn.ModuleList(
            ResBlock(width, width, cfg.time_dim, cfg.groups) for _ in range(post_blocks)
        )

    def forward(
        self, h: Tensor, temb: Tensor, sqrt_abar: Tensor, kv: tuple[Tensor, Tensor] | None
    ) -> Tensor:
        for block in self.blocks:
            h = block(h, temb)
        if self.attn is not None:
            h = self.attn(h, sqrt_abar)
        if self.cross is not None:
            h = self.cross(h, kv=kv)
        for block in self.post:
            h = block(h, temb)
        return h


class VocalEncoder(nn.Module):
    """Small conv encoder of the vocal latent, returning one feature map per level."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        d = config.cond_dim
        self.stem = nn.Sequential(
            nn.Conv1d(config.cond_channels, d, 3, padding=1),
            nn.SiLU(),
            nn.Conv1d(d, d, 3, padding=1),
        )
        self.downs = nn.ModuleList(
            nn.Conv1d(d, d, 4, stride=2, padding=1) for _ in range(len(config.widths) - 1)
        )

    def forward(self, cond: Tensor) -> list[Tensor]:
        feats = [self.stem(cond)]
        for down in self.downs:
            feats.append(down(F.silu(feats[-1])))
        return feats


class SamuelUNet(nn.Module):
    """v-prediction U-Net. ``forward(x, t, cond, cond_keep)`` -> v, all [B, 64, T].

    Rows where ``cond_keep`` is False see a learned null vocal instead of ``cond``: that is the
    unconditional branch classifier-free guidance trains (10% dropout) and queries at inference.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        w = cfg.widths
        abar = cosine_alphas_cumprod(cfg.num_train_steps, cfg.schedule_s)
        self.register_buffer("alphas_cumprod", abar.float())
        self.null_cond = nn.Parameter(torch.zeros(cfg.cond_channels))
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.time_dim, cfg.time_dim * cfg.time_mlp_mult),
            nn.SiLU(),
            nn.Linear(cfg.time_dim * cfg.time_mlp_mult, cfg.time_dim),
        )
        self.vocal = VocalEncoder(cfg)
        self.in_conv = nn.Conv1d(cfg.latent_channels, w[0], 3, padding=1)
        self.vocal_in = nn.Conv1d(cfg.cond_dim, w[0], 1)
        top = len(w) - 1
        self.down_stages = nn.ModuleList(Stage(cfg, lv, w[lv]) for lv in range(top))
        self.downsamplers = nn.ModuleList(
            nn.Conv1d(w[lv], w[lv + 1], 4, stride=2, padding=1) for lv in range(top)
        )
        self.mid = Stage(cfg, top, w[top], post_blocks=cfg.mid_post_blocks)
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose1d(w[lv + 1], w[lv], 4, stride=2, padding=1) for lv in range(top)
        )
        self.up_stages = nn.ModuleList(Stage(cfg, lv, 2 * w[lv]) for lv in range(top))
        self.out_norm = group_norm(w[0], cfg.groups)
        self.out_conv = nn.Conv1d(w[0], cfg.latent_channels, 3, padding=1)
        # Zero output: the untrained model predicts v = 0, a neutral start for training.
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def mix_weights(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(w_global, w_local) the soft alignment attention uses at steps ``t``."""
        return SoftAlignmentAttention.mix_weights(self.alphas_cumprod[t.long()].sqrt(),
                                                  self.config.global_weight)

    def _check(self, x: Tensor, t: Tensor, cond: Tensor, cond_keep: Tensor | None) -> None:
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != cfg.latent_channels:
            raise ModelError(f"x must be [B, {cfg.latent_channels}, T], got {tuple(x.shape)}")
        if x.shape[-1] % cfg.frame_multiple:
            raise ModelError(
                f"sequence length {x.shape[-1]} is not a multiple of {cfg.frame_multiple}; "
                "crop or pad the latent to a multiple of it"
            )
        expect = (x.shape[0], cfg.cond_channels, x.shape[-1])
        if tuple(cond.shape) != expect:
            raise ModelError(f"cond must be {expect} to match x, got {tuple(cond.shape)}")
        if t.shape != (x.shape[0],):
            raise ModelError(f"t must be [B] = [{x.shape[0]}], got {tuple(t.shape)}")
        if cond_keep is not None and cond_keep.shape != (x.shape[0],):
            raise ModelError(f"cond_keep must be [B], got {tuple(cond_keep.shape)}")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the network computes in (its weights'); ``forward`` casts to it."""
        return self.in_conv.weight.dtype

    def inference_copy(self, dtype: torch.dtype) -> SamuelUNet:
        """A frozen copy with weights in ``dtype`` (e.g. bfloat16) for sampling. The noise
        table stays float32: the attention mix reads sqrt(abar_t) from it, and bfloat16 would
        round away the differences between the late steps' abar (all near 1)."""
        net = copy.deepcopy(self).to(dtype).eval().requires_grad_(False)
        net.alphas_cumprod = self.alphas_cumprod.detach().float().clone()
        return net

    def prepare(
        self, cond: Tensor, cond_keep: Tensor | None = None, *, cache_time: bool = True
    ) -> VocalContext:
        """Everything that depends on the vocal alone: the encoder's feature maps, the input
        stream and every cross-attention's keys and values. Compute once per window and pass
        to ``denoise`` at every step (the result equals ``forward``)."""
        cond = cond.to(self.dtype)
        if cond_keep is not None:
            null = self.null_cond.view(1, -1, 1).expand_as(cond)
            cond = torch.where(cond_keep.view(-1, 1, 1), cond, null)
        feats = self.vocal(cond)
        top = len(self.down_stages)
        levels = [*range(top), top, *reversed(range(top))]
        stages = [*self.down_stages, self.mid, *reversed(self.up_stages)]
        kv = [st.cross.keys_values(feats[lv]) if st.cross is not None else None
              for lv, st in zip(levels, stages, strict=True)]
        return VocalContext(self.vocal_in(feats[0]), kv, cond.shape, {} if cache_time else None)

    def _time(self, t: Tensor, ctx: VocalContext) -> tuple[Tensor, Tensor]:
        """(time embedding, sqrt(abar_t)) of steps ``t``, cached in ``ctx`` per step tuple."""
        def compute() -> tuple[Tensor, Tensor]:
            temb = self.time_mlp(timestep_embedding(t, self.config.time_dim).to(self.dtype))
            return temb, self.alphas_cumprod[t].sqrt()

        if ctx.time_cache is None:  # a one-off context (training): no t.tolist(), no sync
            return compute()
        key = tuple(t.tolist())
        if key not in ctx.time_cache:
            ctx.time_cache[key] = compute()
        return ctx.time_cache[key]

    def denoise(self, x: Tensor, t: Tensor, ctx: VocalContext) -> Tensor:
        """v for ``x`` at steps ``t`` given a prepared vocal; returned in ``x``'s dtype."""
        if x.shape[0] != ctx.shape[0] or x.shape[-1] != ctx.shape[-1]:
            raise ModelError(f"x {tuple(x.shape)} does not match the prepared vocal "
                             f"{tuple(ctx.shape)}; prepare the vocal of this batch and length")
        out_dtype, t = x.dtype, t.long()
        temb, sqrt_abar = self._time(t, ctx)
        h = self.in_conv(x.to(self.dtype)) + ctx.vocal_in
        top = len(self.down_stages)
        skips = []
        for lv, (stage, down) in enumerate(zip(self.down_stages, self.downsamplers, strict=True)):
            h = stage(h, temb, sqrt_abar, ctx.kv[lv])
            skips.append(h)
            h = down(h)
        h = self.mid(h, temb, sqrt_abar, ctx.kv[top])
        for i, lv in enumerate(reversed(range(top))):
            h = torch.cat([self.upsamplers[lv](h), skips[lv]], dim=1)
            h = self.up_stages[lv](h, temb, sqrt_abar, ctx.kv[top + 1 + i])
        return self.out_conv(F.silu(self.out_norm(h))).to(out_dtype)

    def forward(
        self, x: Tensor, t: Tensor, cond: Tensor, cond_keep: Tensor | None = None
    ) -> Tensor:
        self._check(x, t, cond, cond_keep)
        return self.denoise(x, t, self.prepare(cond, cond_keep, cache_time=False))


@dataclass
class VocalContext:
    """What ``SamuelUNet.prepare`` computed from one vocal batch (see there)."""

    vocal_in: Tensor
    kv: list[tuple[Tensor, Tensor] | None]
    shape: torch.Size
    time_cache: dict[tuple[int, ...], tuple[Tensor, Tensor]] | None = None
