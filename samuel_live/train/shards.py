"""Training shards: safetensors files of fp16 latent windows plus one manifest.json.

Each shard holds ``vocal`` and ``accomp`` (float16, [n, 64, 1024]) and ``validation`` (uint8,
[n]: 1 marks a validation window). The manifest lists the shards in order; only listed shards
are ever read, so a shard written just before a crash is simply overwritten on resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from samuel_live.atomic import atomic_write_bytes
from samuel_live.errors import ShardError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1




def shard_name(index: int) -> str:
    """File name of the shard at ``index``."""
    return f"shard_{index:05d}.safetensors"


def write_shard(path: Path, vocal: torch.Tensor, accomp: torch.Tensor, validation: torch.Tensor):
    """Write one shard atomically (temp file, then rename)."""
    if vocal.shape != accomp.shape or vocal.ndim != 3 or validation.shape != vocal.shape[:1]:
        raise ShardError(
            f"shard tensors disagree: vocal {tuple(vocal.shape)}, accomp {tuple(accomp.shape)}, "
            f"validation {tuple(validation.shape)}; expected [n, 64, frames] twice and [n]"
        )
    tensors = {
        "vocal": vocal.to(torch.float16).contiguous(),
        "accomp": accomp.to(torch.float16).contiguous(),
        "validation": validation.to(torch.uint8).contiguous(),
    }
    atomic_write_bytes(path, save(tensors))  # bytes first: a full disk is a DiskFullError


def read_manifest(folder: Path) -> dict:
    """The folder's manifest, or ShardError naming how to create it."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise ShardError(f"no {MANIFEST} in {folder}; run `samuel-live prepare` to make shards")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path} is not valid JSON ({exc}); delete it and prepare again") from exc


def load_shards(folder: str | Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """All windows of a shard folder: (vocal [N,64,1024] fp16, accomp same, manifest).

    The returned manifest is the file's content plus ``validation_mask`` (bool tensor [N], not
    stored in the JSON) marking the validation windows.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    vocals, accomps, masks = [], [], []
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        if not path.exists():
            raise ShardError(f"{path} is listed in the manifest but missing; prepare again")
        tensors = load_file(str(path))
        if tensors["vocal"].shape[0] != entry["windows"]:
            raise ShardError(
                f"{path} holds {tensors['vocal'].shape[0]} windows, manifest says "
                f"{entry['windows']}; delete the folder and prepare again"
            )
        vocals.append(tensors["vocal"])
        accomps.append(tensors["accomp"])
        masks.append(tensors["validation"].bool())
    if not vocals:
        raise ShardError(f"{folder} has a manifest but no windows; add sources and prepare again")
    manifest = dict(manifest, validation_mask=torch.cat(masks))
    return torch.cat(vocals), torch.cat(accomps), manifest


def load_corpus(data: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Windows of one shard folder, or of several separated by commas, as ``load_shards``
    returns them. Several folders must share a codec; their statistics are pooled, weighted by
    window count (exact for the means, and for the stds through the pooled second moments)."""
    folders = [part.strip() for part in data.split(",") if part.strip()]
    if len(folders) <= 1:
        return load_shards(folders[0] if folders else data)
    parts = [load_shards(folder) for folder in folders]
    codecs = {m.get("codec", "harmonic") for _, _, m in parts}
    if len(codecs) > 1:
        raise ShardError(f"shard folders {folders} use different codecs {sorted(codecs)}; "
                         "prepare them all with one codec")
    counts = np.array([v.shape[0] for v, _, _ in parts], dtype=np.float64)
    stats = {}
    for key in ("vocal", "accomp"):
        mean = np.array([m["stats"][key]["mean"] for _, _, m in parts], dtype=np.float64)
        std = np.array([m["stats"][key]["std"] for _, _, m in parts], dtype=np.float64)
        w = counts[:, None] / counts.sum()
        pooled = (w * mean).sum(axis=0)
        second = (w * (std**2 + mean**2)).sum(axis=0)
        stats[key] = {"mean": pooled.tolist(),
                      "std": np.sqrt(np.maximum(second - pooled**2, 1e-12)).tolist()}
    manifest = dict(parts[0][2], stats=stats, sources_from=folders,
                    validation_mask=torch.cat([m["validation_mask"] for _, _, m in parts]))
    return (torch.cat([v for v, _, _ in parts]), torch.cat([a for _, a, _ in parts]), manifest)


def channel_stats(folder: Path, shards: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Per-channel mean/std of vocal and accompaniment over every window (float64 sums)."""
    sums: dict[str, np.ndarray] = {}
    count = 0
    for entry in shards:
        tensors = load_file(str(Path(folder) / entry["file"]))
        for key in ("vocal", "accomp"):
            x = tensors[key].to(torch.float64)
            sums[key + "1"] = sums.get(key + "1", 0) + x.sum(dim=(0, 2)).numpy()
            sums[key + "2"] = sums.get(key + "2", 0) + (x * x).sum(dim=(0, 2)).numpy()
        count += tensors["vocal"].shape[0] * tensors["vocal"].shape[2]
    stats = {}
    for key in ("vocal", "accomp"):
        if count == 0:
            stats[key] = {"mean": [], "std": []}
            continue
        mean = sums[key + "1"] / count
        var = np.maximum(sums[key + "2"] / count - mean * mean, 0.0)
        stats[key] = {
            "mean": mean.astype(np.float32).tolist(),
            "std": np.sqrt(var).astype(np.float32).tolist(),
        }
    return stats
