"""`samuel-live prepare`: turn songs, mixes, latent arrays or the chorale recipe into shards.

Inputs (``kind``):

- ``stems``: a folder of song folders, each with ``vocals.*`` and ``accompaniment.*``, or the
  MUSDB layout ``vocals``/``drums``/``bass``/``other`` (the last three summed).
- ``mixes``: a folder of full mixes, separated with Demucs (``pip install demucs``).
- ``latents``: a folder with ``latent_vocal.npy`` and ``latent_accomp.npy`` ([N, 64, 1024], e.g.
  the POPDB release), already encoded with the codec named in ``codec``.
- ``chorales``: the Bach-chorale recipe; renders under ``input/audio`` and ``input/test``, then
  encodes consecutive training chorales concatenated into sessions.

Audio is encoded with the codec, cut into 1024-frame windows without overlap, and the trailing
short window is dropped. ``min_vocal_rms_db`` (audio domain, dBFS of the vocal stem over the
window's samples) drops windows with too little singing; it does not apply to latent arrays.
A source already in the manifest is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from samuel_live import HOP, LATENT_CHANNELS, LATENT_FRAMES, SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.codec.base import Codec
from samuel_live.errors import AudioInputError, SamuelError
from samuel_live.train import chorales
from samuel_live.train.shards import (
    MANIFEST,
    MANIFEST_VERSION,
    ShardError,
    channel_stats,
    read_manifest,
    shard_name,
    write_shard,
)
from samuel_live.train.sources import KINDS, Source, find_sources
from samuel_live.train.spread import encode_all

log = logging.getLogger(__name__)

VALIDATION_RULE = "window i of source s is validation when crc32(f'{s}:{i}') / 2**32 < fraction"


@dataclass(frozen=True)
class PrepareConfig:
    """How ``prepare`` encodes, filters, splits and shards its input."""

    kind: str = "auto"
    codec: str = "harmonic"
    codec_path: str | None = None
    device: str = "cpu"
    shard_windows: int = 256
    validation_fraction: float = 0.1
    min_vocal_rms_db: float | None = None
    max_length_mismatch_s: float = 5.0
    variants: int = 1
    sessions_of: int = 8
    workers: int = 2
    processes: int = 1  # encode this many sources at once, each in its own process
    ray: str | None = None  # encode on Ray: "auto", "ray://host:port", "" a local cluster

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SamuelError(f"unknown input kind {self.kind!r}; choose one of {KINDS}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise SamuelError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.shard_windows < 1:
            raise SamuelError(f"shard_windows must be at least 1, got {self.shard_windows}")


@dataclass
class Windows:
    """Windows of one source, ready for a shard."""

    source: Source
    vocal: torch.Tensor
    accomp: torch.Tensor
    validation: torch.Tensor
    info: dict = field(default_factory=dict)


def validation_mask(name: str, count: int, fraction: float) -> torch.Tensor:
    """Deterministic per-window validation flags (see ``VALIDATION_RULE``)."""
    flags = [zlib.crc32(f"{name}:{i}".encode()) / 2**32 < fraction for i in range(count)]
    return torch.tensor(flags, dtype=torch.bool)


def vocal_rms_db(vocal: np.ndarray, windows: int) -> np.ndarray:
    """dBFS RMS of the vocal audio over each window's samples."""
    x = vocal[:, : windows * WINDOW_SAMPLES].reshape(2, windows, WINDOW_SAMPLES)
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=(0, 2)))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def encode_source(source: Source, codec: Codec | None, config: PrepareConfig) -> Windows:
    """Load, align, encode and window one source (raises on a bad file)."""
    vocal, accomp = source.load()
    if source.encoded:
        v, a = torch.from_numpy(np.array(vocal)), torch.from_numpy(np.array(accomp))
        info: dict = {"seconds": v.shape[0] * WINDOW_SAMPLES / SAMPLE_RATE, "dropped_quiet": 0}
    else:
        vocal, accomp = _align(vocal, accomp, config.max_length_mismatch_s)
        v, a, info = _encode_audio(vocal, accomp, codec, config)
    return Windows(
        source, v, a, validation_mask(source.name, v.shape[0], config.validation_fraction), info
    )


def _align(vocal: np.ndarray, accomp: np.ndarray, max_mismatch_s: float):
    gap = abs(vocal.shape[1] - accomp.shape[1]) / SAMPLE_RATE
    if gap > max_mismatch_s:
        raise AudioInputError(
            f"vocal and accompaniment lengths differ by {gap:.1f} s (more than "
            f"{max_mismatch_s:g} s); check both stems come from the same song and start together"
        )
    n = max(vocal.shape[1], accomp.shape[1])
    return tuple(np.pad(x, ((0, 0), (0, n - x.shape[1]))) for x in (vocal, accomp))


def _encode_audio(vocal: np.ndarray, accomp: np.ndarray, codec: Codec, config: PrepareConfig):
    n = vocal.shape[1]
    windows = -(-n // HOP) // LATENT_FRAMES  # the trailing short window is dropped
    info = {"seconds": round(n / SAMPLE_RATE, 3), "dropped_quiet": 0}
    if windows == 0:
        empty = torch.zeros(0, LATENT_CHANNELS, LATENT_FRAMES)
        return empty, empty.clone(), info
    keep = np.ones(windows, dtype=bool)
    if config.min_vocal_rms_db is not None:
        keep = vocal_rms_db(vocal, windows) >= config.min_vocal_rms_db
        info["dropped_quiet"] = int((~keep).sum())
    frames = windows * LATENT_FRAMES
    out = []
    for audio in (vocal, accomp):
        z = codec.encode(audio).float().cpu()[:, :frames]
        z = z.reshape(LATENT_CHANNELS, windows, LATENT_FRAMES).permute(1, 0, 2)
        out.append(z[torch.from_numpy(keep)].contiguous())
    return out[0], out[1], info


# ---------------------------------------------------------------- the manifest and shards


class _ShardWriter:
    """Buffers whole sources; a source is in the manifest only once its windows are on disk."""

    def __init__(self, out: Path, manifest: dict, shard_windows: int) -> None:
        self.out, self.manifest, self.size = out, manifest, shard_windows
        self.pending: list[Windows] = []

    def add(self, w: Windows) -> None:
        if self.pending and self._pending_count() + w.vocal.shape[0] > self.size:
            self.flush()
        self.pending.append(w)
        if self._pending_count() >= self.size:
            self.flush()

    def _pending_count(self) -> int:
        return sum(w.vocal.shape[0] for w in self.pending)

    def flush(self) -> None:
        if not self.pending:
            return
        tensors = [
            torch.cat([getattr(w, k) for w in self.pending])
            for k in ("vocal", "accomp", "validation")
        ]
        for start in range(0, tensors[0].shape[0], self.size):
            part = [t[start : start + self.size] for t in tensors]
            name = shard_name(len(self.manifest["shards"]))
            write_shard(self.out / name, *part)
            self.manifest["shards"].append({"file": name, "windows": int(part[0].shape[0])})
        for w in self.pending:
            self._record(w)
        self.pending = []
        save_manifest(self.out, self.manifest)

    def _record(self, w: Windows) -> None:
        self.manifest["skipped"].pop(w.source.name, None)
        self.manifest["sources"][w.source.name] = {
            "files": list(w.source.files),
            "first_window": self.manifest["windows"],
            "windows": int(w.vocal.shape[0]),
            "validation_windows": int(w.validation.sum()),
            **w.info,
        }
        self.manifest["windows"] += int(w.vocal.shape[0])


def save_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest atomically."""
    from samuel_live.audio.io import write_json_atomic

    write_json_atomic(out / MANIFEST, manifest)


def _open_manifest(out: Path, input_path: Path, kind: str, config: PrepareConfig) -> dict:
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if manifest.get("codec") != config.codec:
            raise ShardError(
                f"{out} holds {manifest.get('codec')!r} latents, not {config.codec!r}; "
                "use another output folder for this codec"
            )
        return manifest
    return {
        "version": MANIFEST_VERSION,
        "codec": config.codec,
        "sample_rate": SAMPLE_RATE,
        "hop": HOP,
        "latent_channels": LATENT_CHANNELS,
        "window_frames": LATENT_FRAMES,
        "input": str(input_path),
        "kind": kind,
        "min_vocal_rms_db": config.min_vocal_rms_db,
        "shard_windows": config.shard_windows,
        "split": {},
        "windows": 0,
        "shards": [],
        "sources": {},
        "skipped": {},
        "stats": {},
    }


def _finish(out: Path, manifest: dict, kind: str, config: PrepareConfig) -> None:
    val = sum(s["validation_windows"] for s in manifest["sources"].values())
    split = {
        "name": "train",
        "validation_fraction": config.validation_fraction,
        "validation_rule": VALIDATION_RULE,
        "train_windows": manifest["windows"] - val,
        "validation_windows": val,
    }
    if kind == "chorales":
        holdout = chorales.load_holdout()
        split.update(
            holdout_file=chorales.HOLDOUT_JSON.name,
            holdout_rule=holdout["rule"],
            holdout=holdout["holdout"],
            excluded=holdout["excluded_duplicates"],
        )
    manifest["split"] = split
    manifest["stats"] = channel_stats(out, manifest["shards"])
    manifest["stats"]["over"] = "all windows (train and validation), from the fp16 shards"
    save_manifest(out, manifest)


# ---------------------------------------------------------------- entry point


def prepare(input_path: str | Path, out: str | Path, config: PrepareConfig | None = None) -> dict:
    """Encode ``input_path`` into shards under ``out``; returns the final manifest.

    Bad sources are logged and listed under ``skipped`` with the reason (and retried on the
    next run); sources already in the manifest are not redone.
    """
    from tqdm import tqdm

    config = config or PrepareConfig()
    input_path, out = Path(input_path), Path(out)
    kind, sources = find_sources(input_path, config)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _open_manifest(out, input_path, kind, config)
    todo = [s for s in sources if s.name not in manifest["sources"]]
    writer = _ShardWriter(out, manifest, config.shard_windows)
    encoded = encode_all(todo, config, encode_source, lambda: _load_codec(config),
                         config.processes)
    for source, windows in tqdm(zip(todo, encoded, strict=True), total=len(todo),
                                desc=f"encoding ({config.codec})", unit="source"):
        if isinstance(windows, Exception):
            log.warning("skipped %s: %s", source.name, windows)
            manifest["skipped"][source.name] = {"files": list(source.files),
                                                "reason": str(windows)}
            continue
        writer.add(windows)
    writer.flush()
    _finish(out, manifest, kind, config)
    return manifest


def _load_codec(config: PrepareConfig) -> Codec:
    from samuel_live.codec import load_codec

    return load_codec(config.codec, path=config.codec_path, device=config.device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `prepare` command's options (shared by the CLI and ``python -m``)."""
    add = parser.add_argument
    add("input", type=Path, help="song folders, mixes, latent arrays, or the chorales data root")
    add("--out", type=Path, help="shard folder (default: INPUT/shards)")
    add("--kind", choices=KINDS, default="auto")
    add("--codec", default="harmonic")
    add("--codec-path", default=None, help="weights folder for codecs that need one (sao)")
    add("--device", default="cpu")
    add("--shard-windows", type=int, default=256)
    add("--validation-fraction", type=float, default=0.1)
    add(
        "--min-vocal-rms-db",
        type=float,
        default=None,
        help="drop windows whose vocal stem is quieter than this (dBFS RMS)",
    )
    add("--variants", type=int, default=1, help="chorales: augmented renders per chorale")
    add("--workers", type=int, default=2, help="chorales: parallel fluidsynth renders")
    add("--processes", type=int, default=1,
        help="encode N sources at once, one process each (default 1)")
    add("--ray", nargs="?", const="", metavar="ADDRESS",
        help="encode on a Ray cluster: auto, ray://HOST:10001, or none for a local one; the "
             'input on storage every node sees (needs `pip install -e ".[cluster]"`)')


def run(args: argparse.Namespace) -> dict:
    """Run ``prepare`` from parsed arguments."""
    input_path, out, codec_path = args.input, args.out or args.input / "shards", args.codec_path
    if args.ray is not None:  # Ray workers open the files from other folders, maybe other nodes
        input_path = input_path.expanduser().absolute()
        codec_path = codec_path and str(Path(codec_path).expanduser().absolute())
    config = PrepareConfig(
        kind=args.kind,
        codec=args.codec,
        codec_path=codec_path,
        device=args.device,
        shard_windows=args.shard_windows,
        validation_fraction=args.validation_fraction,
        min_vocal_rms_db=args.min_vocal_rms_db,
        variants=args.variants,
        workers=args.workers,
        processes=args.processes,
        ray=args.ray,
    )
    return prepare(input_path, out, config)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m samuel_live.train.prepare INPUT [--out DIR] ...`."""
    parser = argparse.ArgumentParser(
        prog="samuel-live prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = run(parser.parse_args(argv))
    print(
        f"{manifest['windows']} windows in {len(manifest['shards'])} shards; "
        f"{len(manifest['skipped'])} sources skipped"
    )


if __name__ == "__main__":
    main()
