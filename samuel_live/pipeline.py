"""Vocal in, accompaniment out: codec + model + sampler, for takes of any length.

``Accompanist`` owns one loaded model and its codec. ``accompany`` encodes the vocal, samples
the accompaniment latent window by window (each window after the first continues the one
before: its overlapping frames are held to what was already generated, by inpainting), decodes
and trims so the result is exactly as long as the take and sample-aligned with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samuel_live import LATENT_FRAMES, SAMPLE_RATE
from samuel_live.codec import load_codec
from samuel_live.codec.base import Codec
from samuel_live.codec.harmonic import FLOOR, SILENCE
from samuel_live.codec.pitch import lock_key, scale_cut
from samuel_live.device import pick_device, pick_dtype
from samuel_live.diffusion.guidance import guided_model_fn
from samuel_live.diffusion.lock import locked_model_fn
from samuel_live.diffusion.samplers import Inpaint, sample
from samuel_live.errors import AudioInputError, InvalidArgumentError, ModelError
from samuel_live.model.checkpoint import CheckpointMeta, LatentStats, file_hash, load_checkpoint
from samuel_live.model.schedule import model_schedule
from samuel_live.model.unet import SamuelUNet, UNetConfig
from samuel_live.settings import DEFAULT_PRECISION, GenerateSettings

STARTER_MODEL = Path(__file__).parent / "models" / "starter.safetensors"
Progress = Callable[[int, int], None]
MIN_FRAMES = 32  # the U-Net downsamples by 8; very short takes are padded up to this


@dataclass(frozen=True)
class Window:
    """One model window over latent frames [start, end); ``held`` frames at its start are kept."""

    start: int
    end: int
    held: int


END_MARGIN = 8
"""Silent frames the model sees after the take where its window has room (then cut off). With
only 0-7 frames of padding, the take's last frame sometimes came out 7-20x louder than any
other (5 of 18 takes of 300, 425 and 431 frames, 6 seeds each, a burst in the last 46 ms);
with 8, none of the 18."""


def plan_windows(frames: int, window: int = LATENT_FRAMES, overlap: int = 256,
                 margin: int = END_MARGIN) -> list[Window]:
    """Cover ``frames`` latent frames with windows of at most ``window`` frames.

    Consecutive windows overlap by ``overlap`` frames and each later window holds its
    overlap (continuation). ``overlap=0`` gives independent back-to-back windows (the cheap,
    audibly joined baseline that bench/longform.py compares against). A take shorter than one
    window is one window, padded to a multiple of 8 frames. The last window runs ``margin``
    frames past the take where it stays within ``window`` frames (see ``END_MARGIN``).
    """
    if frames <= window:
        room = max(_round8(frames), window - window % 8)
        return [Window(0, max(MIN_FRAMES, min(_round8(frames + margin), room)), 0)]
    if not 0 <= overlap < window:
        raise ModelError(f"overlap must be between 0 and {window - 1} frames, got {overlap}")
    wins, start = [Window(0, window, 0)], window - overlap
    while wins[-1].end < frames:
        end = min(start + window, _round8(frames + margin))
        if end - start < window and overlap:  # last window: shift back, full, holds more
            start = max(0, end - window)
        held = wins[-1].end - start
        wins.append(Window(start, end, held))
        start = end - overlap
    return wins


def _round8(n: int) -> int:
    return int(math.ceil(n / 8) * 8)


class Accompanist:
    """One loaded model + codec; thread-compatible (one generation at a time per instance)."""

    def __init__(
        self,
        model: SamuelUNet,
        codec: Codec,
        stats: LatentStats,
        device: torch.device,
        meta: dict[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
        precision: str = DEFAULT_PRECISION,
        distilled_cfg: float | None = None,
    ) -> None:
        """``schedule``: the checkpoint's stored schedule entry, checked against the model.
        ``precision``: see ``settings.PRECISIONS`` and ``set_precision``. ``distilled_cfg``:
        the scale a guidance-distilled model learned (``CheckpointMeta.distilled_cfg``)."""
        self.meta = meta or {}
        where = f"model {self.meta.get('path') or self.meta.get('name', '')}".strip()
        self.schedule = model_schedule(model, schedule, where)
        self.model = model.to(device).eval().requires_grad_(False)
        self.codec, self.stats, self.device = codec, stats, device
        self.distilled_cfg = distilled_cfg
        self._params = sum(p.numel() for p in self.model.parameters())  # info() is on hot paths
        self.set_precision(precision)

    def set_precision(self, precision: str) -> None:
        """Run the U-Net in the dtype ``precision`` picks on this device (``pick_dtype``).

        ``self.model`` stays the float32 master; sampling uses ``self.net``, a bfloat16 copy
        of it when bfloat16 is picked.
        """
        self.dtype = pick_dtype(precision, self.device)
        if self.dtype == self.model.dtype:
            self.net = self.model
        else:
            self.net = self.model.inference_copy(self.dtype)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        device: str = "auto",
        codec_path: str | Path | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> Accompanist:
        """Load a checkpoint (default: the starter model shipped in the package)."""
        path = Path(model).expanduser() if model else STARTER_MODEL
        if not model and not STARTER_MODEL.exists():
            raise ModelError(
                f"no starter model installed at {STARTER_MODEL}; pass --model PATH to a "
                "checkpoint trained with `samuel-live train`"
            )
        state, meta = load_checkpoint(path)
        dev = pick_device(device)
        codec = load_codec(meta.codec, codec_path, device=str(dev))  # the SAO VAE wants the GPU
        net = SamuelUNet(UNetConfig.from_dict(meta.model))
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(
                f"checkpoint {path} does not fit its own config: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
        info = {"name": Path(path).stem, "path": str(path), "hash": file_hash(path),
                **_meta_summary(meta)}
        return cls(net, codec, meta.stats, dev, info, schedule=meta.schedule, precision=precision,
                   distilled_cfg=meta.distilled_cfg)

    @classmethod
    def random(
        cls, config: UNetConfig | None = None, seed: int = 0, device: str = "cpu",
        precision: str = DEFAULT_PRECISION,
    ) -> Accompanist:
        """A random-init model of the real class with the harmonic codec (tests, benches)."""
        torch.manual_seed(seed)
        cfg = config or UNetConfig()
        info = {"name": f"random-{seed}", "path": "", "hash": f"random-{seed}"}
        stats = LatentStats.identity(cfg.latent_channels)
        return cls(SamuelUNet(cfg), load_codec("harmonic"), stats, pick_device(device), info,
                   precision=precision)

    def info(self) -> dict[str, Any]:
        """Name, hash, parameter count, codec, device, precision and sample rate."""
        return {**self.meta, "codec": self.codec.name, "params": self._params,
                "device": str(self.device), "precision": str(self.dtype).removeprefix("torch."),
                "sample_rate": SAMPLE_RATE}

    # --- generation --------------------------------------------------------------------------
    def encode_vocal(self, vocal: np.ndarray) -> torch.Tensor:
        """Normalised vocal latent (64, frames) of a (2, n) take."""
        if vocal.ndim != 2 or vocal.shape[0] != 2 or vocal.shape[1] == 0:
            raise AudioInputError(f"vocal must be stereo (2, n) with n > 0, got {vocal.shape}")
        if not np.isfinite(vocal).all():
            raise AudioInputError("vocal contains NaN or infinite samples")
        return self.stats.norm_vocal(self.codec.encode(vocal.astype(np.float32)))

    def _key_cut(self, cond: torch.Tensor, settings: GenerateSettings) -> torch.Tensor | None:
        """The key lock's per-channel cut for a take's normalised vocal latent, or None.

        Only the ``harmonic`` codec has semitone bands to lock; with another codec "auto" means
        off and a named key is refused."""
        if settings.key == "off":
            return None
        if self.codec.name != "harmonic":
            if settings.key == "auto":
                return None
            raise InvalidArgumentError(
                f"key {settings.key!r} needs the harmonic codec's semitone bands; this model "
                f"uses {self.codec.name!r}: send key 'off' (or 'auto')")
        raw = self.stats.denorm_vocal(cond.float().cpu()).numpy().astype(np.float64)
        energy = np.maximum(np.exp(raw) - FLOOR, 0.0)
        key = lock_key(settings.key, energy)
        if key is None:
            return None
        return torch.from_numpy(scale_cut(key, cond.shape[0])).float()

    @torch.inference_mode()
    def accompany(
        self,
        vocal: np.ndarray,
        settings: GenerateSettings,
        *,
        progress: Progress | None = None,
        overlap: int = 256,
    ) -> np.ndarray:
        """Accompaniment (2, n) for a (2, n) take of any length, exactly as long."""
        latent = self.accompany_latent(vocal, settings, progress=progress, overlap=overlap)
        return self.decode(latent, vocal.shape[-1])

    @torch.inference_mode()
    def accompany_latent(
        self,
        vocal: np.ndarray,
        settings: GenerateSettings,
        *,
        progress: Progress | None = None,
        overlap: int = 256,
    ) -> torch.Tensor:
        """The accompaniment's codec latent (channels, ceil(n / hop)), de-normalised."""
        cond = self.encode_vocal(vocal)
        cut = self._key_cut(cond, settings)
        frames = cond.shape[-1]
        wins = plan_windows(frames, overlap=overlap)
        total = len(wins) * settings.steps
        z = torch.zeros(1, cond.shape[0], max(w.end for w in wins))
        cond = _pad_frames(cond, z.shape[-1])
        gen = torch.Generator().manual_seed(settings.seed)
        for k, win in enumerate(wins):
            z[:, :, win.start : win.end] = self._sample_window(
                cond[:, win.start : win.end], z[:, :, win.start : win.end], win.held, settings,
                gen, _offset(progress, k * settings.steps, total), cut=cut,
            )
        return self.stats.denorm_accomp(z[0, :, :frames])

    def decode(self, latent: torch.Tensor, samples: int) -> np.ndarray:
        """Audio (2, ``samples``) of a de-normalised latent from ``accompany_latent``."""
        audio = self.codec.decode(latent)
        return np.ascontiguousarray(audio[:, :samples], dtype=np.float32)

    @torch.inference_mode()
    def accompany_loop(
        self,
        vocal: np.ndarray,
        settings: GenerateSettings,
        loop_samples: int,
        *,
        progress: Progress | None = None,
        fold_ms: float = 20.0,
        seam_frames: int = 48,
    ) -> np.ndarray:
        """An accompaniment exactly ``loop_samples`` long whose end continues into its start.

        Pass 1 samples a latent of the loop's length. Pass 2 rolls it by half so the wrap
        point sits in the middle, holds everything but the frames around it, and samples
        those again (inpainting), so the seam is generated as one piece of music. Decoding
        runs a few frames past the end (the latent is periodic), and that continuation is
        crossfaded into the first ``fold_ms`` so the last sample leads into the first.
        """
        hop = self.codec.hop
        if loop_samples < hop * 4:
            raise AudioInputError(f"a loop must be at least {hop * 4} samples, got {loop_samples}")
        take = np.zeros((2, loop_samples), dtype=np.float32)
        take[:, : min(loop_samples, vocal.shape[1])] = vocal[:, :loop_samples]
        period = max(4, round(loop_samples / hop))
        cond = _pad_frames(self.encode_vocal(take), period)
        cut = self._key_cut(cond, settings)
        gen = torch.Generator().manual_seed(settings.seed)
        size = _round8(period)
        total = 2 * settings.steps
        z = self._sample_window(_circular(cond, size), torch.zeros(1, cond.shape[0], size), 0,
                                settings, gen, _offset(progress, 0, total),
                                cut=cut)[:, :, :period]
        shift = period // 2
        rolled, rcond = torch.roll(z, shift, -1), torch.roll(cond, shift, -1)
        band = min(seam_frames, period // 4)
        mask = torch.ones(1, 1, size)
        mask[..., shift - band : shift + band] = 0
        z2 = self._sample_window(_circular(rcond, size), _circular(rolled[0], size)[None], 0,
                                 settings, gen, _offset(progress, settings.steps, total),
                                 mask=mask, cut=cut)[:, :, :period]
        z = torch.roll(z2, -shift, -1)[0]
        return self._decode_loop(z, loop_samples, int(fold_ms * SAMPLE_RATE / 1000))

    def _decode_loop(self, z: torch.Tensor, loop_samples: int, fold: int) -> np.ndarray:
        """Decode a periodic latent of ``period`` frames as exactly ``loop_samples`` samples.

        The loop is rarely a whole number of frames long, so the latent (the envelopes) is
        resampled in time to the loop's length; the decoder's oscillators keep their exact
        frequencies (stretching the audio instead would shift the pitch). The decode runs
        past the end and that continuation is crossfaded into the start.
        """
        period, hop = z.shape[-1], self.codec.hop
        extra = int(math.ceil(fold / hop)) + 2
        frames = int(math.ceil(loop_samples / hop)) + extra
        pos = np.arange(frames) * (period * hop / loop_samples)  # loop phase, in latent frames
        zz = _circular(z, period + 1).numpy()
        lo = np.floor(pos).astype(np.int64) % period
        frac = torch.from_numpy((pos - np.floor(pos)).astype(np.float32))
        warped = torch.from_numpy(zz[:, lo]) * (1 - frac) + torch.from_numpy(zz[:, lo + 1]) * frac
        y = self.codec.decode(self.stats.denorm_accomp(warped))
        out = y[:, :loop_samples].copy()
        fold = min(fold, y.shape[1] - loop_samples, loop_samples // 2)
        ramp = np.linspace(0.0, 1.0, fold, endpoint=False)
        out[:, :fold] = out[:, :fold] * ramp + y[:, loop_samples : loop_samples + fold] * (1 - ramp)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _sample_window(
        self,
        cond: torch.Tensor,
        known: torch.Tensor,
        held: int,
        settings: GenerateSettings,
        gen: torch.Generator,
        progress: Progress | None,
        mask: torch.Tensor | None = None,
        cut: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample one window; frames where ``mask`` is 1 (default: the first ``held``) stay
        equal to ``known``; channels are lowered by ``cut`` in every step's estimate."""
        dev = self.device
        noise = torch.randn(known.shape, generator=gen).to(dev)
        model_fn = guided_model_fn(self.net, cond[None].to(dev), settings.cfg, self.distilled_cfg)
        if cut is not None:
            st = self.stats
            model_fn = locked_model_fn(model_fn, self.schedule, cut.to(dev),
                                       torch.tensor(st.accomp_mean, device=dev),
                                       torch.tensor(st.accomp_std, device=dev), SILENCE)
        if mask is None and held:
            mask = torch.zeros(1, 1, known.shape[-1])
            mask[..., :held] = 1
        inpaint = Inpaint(known.to(dev), mask.to(dev)) if mask is not None else None
        step_seed = int(torch.randint(0, 2**31, (1,), generator=gen))
        noise_gen = torch.Generator(dev).manual_seed(step_seed)
        callback = (lambda i, n, _x0: progress(i + 1, n)) if progress else None
        x0 = sample(settings.sampler, model_fn, noise, self.schedule, settings.steps,
                    generator=noise_gen, callback=callback, inpaint=inpaint)
        return x0.float().cpu()


def _pad_frames(z: torch.Tensor, frames: int) -> torch.Tensor:
    """Pad a (C, F) latent to ``frames`` with each channel's silence (its minimum value)."""
    if z.shape[-1] >= frames:
        return z[:, :frames]
    fill = z.min(dim=-1, keepdim=True).values.expand(-1, frames - z.shape[-1])
    return torch.cat([z, fill], dim=-1)


def _circular(z: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat a periodic (C, F) latent along time to ``frames`` frames."""
    reps = int(math.ceil(frames / z.shape[-1]))
    return z.repeat(1, reps)[:, :frames]


def _offset(progress: Progress | None, done: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda i, _n: progress(done + i, total)


def _meta_summary(meta: CheckpointMeta) -> dict[str, Any]:
    return {"codec": meta.codec, "sampler_defaults": meta.sampler_defaults,
            "training": {k: v for k, v in meta.training.items() if k != "config"}}
