"""Training data: which windows each step reads (a fresh order every epoch), and their random
crops, normalised and augmented."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from samuel_live.errors import SamuelError
from samuel_live.model.checkpoint import LatentStats

if TYPE_CHECKING:
    from samuel_live.train.trainer import TrainConfig


class WindowOrder:
    """The training windows in a new random order every epoch, read ``size`` per step (a
    batch may span two epochs). The order depends only on ``seed`` and the step, so a resumed
    run and every process of a distributed one read the same global batch."""

    def __init__(self, windows: int, seed: int) -> None:
        self.windows, self.seed = windows, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def batch(self, step: int, size: int) -> torch.Tensor:
        """Window indices of the global batch of ``step``."""
        pos, parts = step * size, []
        while size:
            epoch, at = divmod(pos, self.windows)
            take = min(size, self.windows - at)
            parts.append(self.order(epoch)[at : at + take])
            pos, size = pos + take, size - take
        return torch.cat(parts)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch ``epoch``."""
        if epoch != self._epoch:
            mixed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
            gen = torch.Generator().manual_seed(mixed)
            self._epoch, self._perm = epoch, torch.randperm(self.windows, generator=gen)
        return self._perm


def stats_from_manifest(manifest: dict[str, Any]) -> LatentStats:
    """Per-channel statistics from a prepare manifest: {"vocal": {"mean", "std"}, "accomp"}."""
    v, a = manifest["stats"]["vocal"], manifest["stats"]["accomp"]
    return LatentStats(tuple(v["mean"]), tuple(v["std"]), tuple(a["mean"]), tuple(a["std"]))


class Batches:
    """Random crops of normalised (vocal, accomp) latent windows, with optional augmentation."""

    def __init__(
        self,
        vocal: torch.Tensor,
        accomp: torch.Tensor,
        stats: LatentStats,
        cfg: TrainConfig,
        codec: str,
    ) -> None:
        self.vocal, self.accomp, self.stats, self.cfg = vocal, accomp, stats, cfg
        self.transpose = cfg.transpose if codec == "harmonic" else 0
        self.floor = float(min(vocal.min(), accomp.min()))

    def _shift(self, z: torch.Tensor, k: int) -> torch.Tensor:
        """Transpose a semitone-band latent by k bands; bands shifted in are silent."""
        if k == 0:
            return z
        out = torch.full_like(z, self.floor)
        if k > 0:
            out[:, k:] = z[:, :-k]
        else:
            out[:, :k] = z[:, -k:]
        return out

    def _timbre(self, v: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Vary level, spectral tilt and noise floor of the vocal so the model listens to
        pitch and rhythm rather than one synth patch's timbre."""
        n, c, _ = v.shape
        db = torch.zeros(n, c, 1)
        if self.cfg.gain_db:
            db += (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * self.cfg.gain_db
        if self.cfg.tilt_db:
            slope = (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * self.cfg.tilt_db
            db += slope * torch.linspace(-0.5, 0.5, c).view(1, c, 1)
        v = torch.maximum(v + db * math.log(10) / 20, torch.tensor(self.floor))
        if self.cfg.noise_db:
            peak = v.amax(dim=(1, 2), keepdim=True)
            below = self.cfg.noise_db + 30 * torch.rand(n, 1, 1, generator=gen)
            on = (torch.rand(n, 1, 1, generator=gen) < 0.5).float()  # half the batch only
            noise = torch.exp(peak - below * math.log(10) / 20) * on
            v = torch.log(torch.exp(v) + noise * torch.rand(v.shape, generator=gen))
        return v

    def sample(self, n: int, gen: torch.Generator, idx: torch.Tensor | None = None,
               crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` crops of ``crop`` frames (default: the config's ``crop_frames``), of the
        windows ``idx`` if given (else drawn at random from ``gen``)."""
        crop = min(crop or self.cfg.crop_frames, self.vocal.shape[-1])
        if idx is None:
            idx = torch.randint(0, self.vocal.shape[0], (n,), generator=gen)
        start = torch.randint(0, self.vocal.shape[-1] - crop + 1, (n,), generator=gen)
        v = torch.stack([self.vocal[i, :, s : s + crop] for i, s in zip(idx, start, strict=True)])
        a = torch.stack([self.accomp[i, :, s : s + crop] for i, s in zip(idx, start, strict=True)])
        v, a = v.float(), a.float()
        if self.transpose:
            ks = torch.randint(-self.transpose, self.transpose + 1, (n,), generator=gen)
            v = torch.stack([self._shift(x, int(k)) for x, k in zip(v, ks, strict=True)])
            a = torch.stack([self._shift(x, int(k)) for x, k in zip(a, ks, strict=True)])
        v = self._timbre(v, gen)
        return self.stats.norm_vocal(v), self.stats.norm_accomp(a)


def parse_curriculum(text: str, final: int) -> list[tuple[float, int]]:
    """``"256@0,512@0.3,1024@0.6"`` -> [(0.0, 256), (0.3, 512), (0.6, 1024)]: from that
    fraction of the run on, crops are that many frames. The last stage must be ``final`` (the
    config's ``crop_frames``), so a run always ends at the length it was asked to train at;
    "" means ``final`` throughout."""
    stages: list[tuple[float, int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        frames, _, at = item.partition("@")
        try:
            stage = (float(at or 0), int(frames))
        except ValueError as exc:
            raise SamuelError(
                f"crop_curriculum item {item!r} is not FRAMES@FRACTION, e.g. '256@0,1024@0.5'"
            ) from exc
        if stage[1] < 1 or not 0 <= stage[0] < 1 or (stages and stage[0] <= stages[-1][0]):
            raise SamuelError(
                f"crop_curriculum {text!r}: frames must be positive and fractions must rise "
                "from 0 to below 1, e.g. '256@0,512@0.3,1024@0.6'"
            )
        stages.append(stage)
    if not stages:
        return [(0.0, final)]
    if stages[0][0] != 0 or stages[-1][1] != final:
        raise SamuelError(
            f"crop_curriculum {text!r} must start at fraction 0 and end on crop_frames "
            f"({final}), e.g. '256@0,{final}@0.5'"
        )
    return stages


def crop_at(stages: list[tuple[float, int]], step: int, total: int) -> int:
    """Crop length at ``step`` of ``total`` steps: that of the last stage begun."""
    progress = step / max(1, total)
    return [size for at, size in stages if progress >= at][-1]
