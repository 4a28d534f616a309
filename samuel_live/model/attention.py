"""Soft alignment self-attention and vocal cross-attention (paper section IV-B).

Tensors inside the attention functions are [B, heads, T, head_dim]; the modules take and
return conv-style [B, C, T] features and add their output to the input (residual).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samuel_live.errors import ModelError

LOCAL_WINDOW = 16
GLOBAL_WEIGHTS = ("sqrt_abar", "one_minus_sqrt_abar")
"""How soft alignment weights its global path: eq. 3's sqrt(abar_t) (global grows as the noise
falls), or 1 - sqrt(abar_t) (global leads at high noise, as the paper's prose says)."""


def _cached(fn):
    """lru_cache for constant tables, built outside inference mode: a table first made under
    ``torch.inference_mode`` (generation) could otherwise not be reused by training."""
    cached = lru_cache(maxsize=64)(fn)

    def wrapper(*args):
        with torch.inference_mode(False):
            return cached(*args)

    wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return wrapper


@_cached
def _rope_tables(
    t: int, half: int, base: float, offset: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """cos and sin tables [T, half]; cached because every attention call reuses them."""
    freqs = base ** (-torch.arange(half, device=device, dtype=torch.float64) / half)
    pos = torch.arange(offset, offset + t, device=device, dtype=torch.float64)
    angles = pos[:, None] * freqs[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(x: Tensor, base: float = 10000.0, offset: int = 0) -> Tensor:
    """Rotary position embedding over the time axis of [B, H, T, D] (D even), rotate-half form.

    After rotation the dot product of a query at position m and a key at position n depends
    on the content and on m - n only.
    """
    half = x.shape[-1] // 2
    cos, sin = _rope_tables(x.shape[-2], half, float(base), offset, x.device, x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return torch.cat([rotated, x[..., 2 * half :]], dim=-1)


def global_attention(q: Tensor, k: Tensor, v: Tensor, base: float = 10000.0) -> Tensor:
    """Full-sequence attention with RoPE on queries and keys (paper eq. 2)."""
    return F.scaled_dot_product_attention(rope(q, base), rope(k, base), v)


@_cached
def _block_mask(t: int, window: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[blocks, window, 2 * window - 1] additive mask (0 or -inf): which keys each query sees.

    Query i = c * window + r sees key j = c * window - window // 2 + s when j - i lies in
    [-window // 2, window - 1 - window // 2] and 0 <= j < t. Padded queries (i >= t) see
    everything so their (discarded) softmax rows are never empty and never produce NaN.
    """
    blocks, left, span = -(-t // window), window // 2, 2 * window - 1
    r = torch.arange(window, device=device)[:, None]
    s = torch.arange(span, device=device)[None, :]
    c = torch.arange(blocks, device=device)[:, None, None]
    j, i = c * window - left + s, c * window + r
    in_window = (s - r >= 0) & (s - r < window)
    visible = (in_window & (j >= 0) & (j < t)) | (i >= t)
    return torch.zeros(visible.shape, device=device, dtype=dtype).masked_fill(~visible, -math.inf)


def local_attention(q: Tensor, k: Tensor, v: Tensor, window: int = LOCAL_WINDOW) -> Tensor:
    """Sliding-window attention without positions (paper eq. 1).

    Frame i attends to frames i - window//2 .. i + window//2 - 1 (8 left, 7 right for 16),
    the windows of the reference's zero-padded unfold. Padded slots are masked out of the
    softmax rather than scored as zero keys, so frames near the edges are not pulled towards
    an empty value. Queries go in blocks of ``window``; each block scores the 2 * window - 1
    keys around it with one batched matmul, adds a fixed mask and takes the softmax in at
    least float32 (bfloat16 input too): O(T * window) work. This explicit form replaced
    SDPA with ``attn_mask``, whose CPU math path spent about as long checking the mask for
    all-masked rows (isneginf/where/all) as on the softmax itself.
    """
    *lead, t, d = q.shape
    blocks, left, span = -(-t // window), window // 2, 2 * window - 1
    extra = blocks * window - t
    q_blocks = F.pad(q * d**-0.5, (0, 0, 0, extra)).unflatten(-2, (blocks, window))
    pad = (0, 0, left, window - 1 - left + extra)
    k_blocks = F.pad(k, pad).unfold(-2, span, window)  # [..., blocks, d, span]
    v_blocks = F.pad(v, pad).unfold(-2, span, window).transpose(-1, -2)
    acc = torch.promote_types(q.dtype, torch.float32)  # float32 softmax for bf16/fp16 input
    scores = torch.matmul(q_blocks, k_blocks).to(acc)  # [..., blocks, window, span]
    scores += _block_mask(t, window, q.device, acc)
    weights = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.matmul(weights, v_blocks)
    return out.flatten(-3, -2)[..., :t, :]


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, C, T] -> [B, heads, T, C // heads], the last dim contiguous (SDPA's fast CPU
    kernel needs that: a transposed view sends it to the math path, 3-4x slower)."""
    b, c, t = x.shape
    return x.transpose(1, 2).contiguous().view(b, t, heads, c // heads).transpose(1, 2)


def _split_chunks(x: Tensor, chunks: int, heads: int) -> list[Tensor]:
    """[B, chunks * C, T] -> ``chunks`` tensors [B, heads, T, C // heads] from one copy."""
    b, c, t = x.shape
    # contiguous() on [B, T, C]: a no-op when the conv already wrote channels-last (bfloat16
    # mkldnn does), one copy otherwise; either way the head dim ends up with stride 1.
    parts = x.transpose(1, 2).contiguous().view(b, t, chunks, heads, c // (chunks * heads))
    return list(parts.permute(2, 0, 3, 1, 4).unbind(0))


def _merge_heads(x: Tensor) -> Tensor:
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d).transpose(1, 2)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class SoftAlignmentAttention(nn.Module):
    """sqrt(abar_t) * GlobalAttn(RoPE) + (1 - sqrt(abar_t)) * LocalAttn, plus the input.

    Q, K and V come from one Conv1d projection (kernel ``qkv_kernel``) shared by both paths,
    after a GroupNorm pre-norm. No MLP and no LayerNorm, as in the paper.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        inner: int,
        *,
        groups: int = 32,
        window: int = LOCAL_WINDOW,
        rope_base: float = 10000.0,
        qkv_kernel: int = 3,
        global_weight: str = "sqrt_abar",
    ) -> None:
        super().__init__()
        self.heads, self.inner, self.window, self.rope_base = heads, inner, window, rope_base
        self.global_weight = global_weight
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * inner, qkv_kernel, padding=qkv_kernel // 2)
        self.out = nn.Conv1d(inner, channels, 1)

    @staticmethod
    def mix_weights(sqrt_abar: Tensor, global_weight: str = "sqrt_abar") -> tuple[Tensor, Tensor]:
        """(w_global, w_local): (sqrt(abar_t), 1 - sqrt(abar_t)) as in the paper's eq. 3, or
        swapped (``"one_minus_sqrt_abar"``) as its prose reads: global structure weighted most
        at high noise. The two always sum to 1."""
        if global_weight not in GLOBAL_WEIGHTS:
            raise ModelError(f"global_weight {global_weight!r} must be one of {GLOBAL_WEIGHTS}")
        w = sqrt_abar if global_weight == "sqrt_abar" else 1 - sqrt_abar
        return w, 1 - w

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = _split_chunks(self.qkv(self.norm(x)), 3, self.heads)
        return q, k, v

    def global_context(self, x: Tensor) -> Tensor:
        """The global path alone, before the output projection, [B, inner, T]."""
        return _merge_heads(global_attention(*self._qkv(x), base=self.rope_base))

    def local_context(self, x: Tensor) -> Tensor:
        """The local path alone, before the output projection, [B, inner, T]."""
        return _merge_heads(local_attention(*self._qkv(x), window=self.window))

    def forward(self, x: Tensor, sqrt_abar: Tensor) -> Tensor:
        """``sqrt_abar`` is [B]: sqrt(abar_t) of each example's diffusion step."""
        q, k, v = self._qkv(x)
        w_global, w_local = self.mix_weights(sqrt_abar.to(x.dtype).view(-1, 1, 1, 1),
                                             self.global_weight)
        mixed = w_global * global_attention(q, k, v, self.rope_base)
        mixed = mixed + w_local * local_attention(q, k, v, self.window)
        return x + self.out(_merge_heads(mixed))


class VocalCrossAttention(nn.Module):
    """Queries from the hidden state, keys and values from the encoded vocal, plus the input.

    Vocal and accompaniment frames are time-aligned, so RoPE on both sides lets the heads
    attend by relative offset (on-beat, one bar back) rather than by content alone.
    """

    def __init__(
        self,
        channels: int,
        cond_dim: int,
        heads: int,
        inner: int,
        *,
        groups: int = 32,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        self.heads, self.rope_base = heads, rope_base
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv1d(channels, inner, 1)
        self.kv = nn.Conv1d(cond_dim, 2 * inner, 1)
        self.out = nn.Conv1d(inner, channels, 1)

    def keys_values(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """RoPE'd keys and values [B, heads, T, head_dim] of a vocal feature map; they do not
        depend on the diffusion step, so a sampler computes them once per window."""
        k, v = _split_chunks(self.kv(cond), 2, self.heads)
        return rope(k, self.rope_base), v

    def forward(
        self, x: Tensor, cond: Tensor | None = None, kv: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """``cond`` is the vocal feature map at this level's resolution, [B, cond_dim, T];
        ``kv`` its ``keys_values`` computed beforehand (then ``cond`` is not needed)."""
        q = rope(_split_heads(self.q(self.norm(x)), self.heads), self.rope_base)
        if kv is None:
            if cond is None:
                raise ModelError("VocalCrossAttention needs the vocal features or their kv")
            kv = self.keys_values(cond)
        attended = F.scaled_dot_product_attention(q, *kv)
        return x + self.out(_merge_heads(attended))
