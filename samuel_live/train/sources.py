"""Finding training sources: stems, mixes (separated with Demucs), latent shards and the chorale
corpus, each a ``Source`` whose ``load`` gives the (vocal, accompaniment) audio or latents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from samuel_live import LATENT_CHANNELS, LATENT_FRAMES
from samuel_live.errors import AudioInputError, SamuelError
from samuel_live.train import chorales
from samuel_live.train.chorales import Session, concatenate_pairs

if TYPE_CHECKING:
    from samuel_live.train.prepare import PrepareConfig

log = logging.getLogger(__name__)

KINDS = ("auto", "stems", "mixes", "latents", "chorales")
AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")
MUSDB_ACCOMP = ("drums", "bass", "other")


@dataclass(frozen=True)
class Source:
    """One unit of resumable work. ``load`` returns audio (2, n) pairs, or latent windows
    [N, 64, 1024] pairs when ``encoded``."""

    name: str
    files: tuple[str, ...]
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    encoded: bool = False


def find_sources(folder: Path, config: PrepareConfig) -> tuple[str, list[Source]]:
    """The input kind (resolving ``auto``) and its sources, in a stable order."""
    kind = config.kind if config.kind != "auto" else _detect_kind(folder)
    if kind == "latents":
        return kind, [_latent_source(folder)]
    if kind == "stems":
        return kind, [_stem_source(folder, song) for song in _song_folders(folder)]
    if kind == "mixes":
        return kind, _mix_sources(folder, config.device)
    return kind, _chorale_sources(folder, config)


def _detect_kind(folder: Path) -> str:
    if not folder.is_dir():
        raise SamuelError(f"no input folder at {folder}; pass a folder of songs, mixes or latents")
    if (folder / "latent_vocal.npy").exists():
        return "latents"
    if _song_folders(folder):
        return "stems"
    if _audio_files(folder):
        return "mixes"
    raise SamuelError(
        f"{folder} holds no song folders (vocals.* + accompaniment.*), mixes or latent arrays; "
        "see `samuel-live prepare --help` for the layouts"
    )


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def _stems_of(song: Path) -> dict[str, Path]:
    return {p.stem.lower(): p for p in _audio_files(song)}


def _song_folders(folder: Path) -> list[Path]:
    songs = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        stems = _stems_of(sub)
        if "vocals" in stems and ("accompaniment" in stems or set(MUSDB_ACCOMP) & set(stems)):
            songs.append(sub)
    return songs


def _stem_source(root: Path, song: Path) -> Source:
    stems = _stems_of(song)
    accomp_names = (
        ["accompaniment"] if "accompaniment" in stems else [n for n in MUSDB_ACCOMP if n in stems]
    )
    files = (stems["vocals"], *(stems[n] for n in accomp_names))

    def load() -> tuple[np.ndarray, np.ndarray]:
        from samuel_live.audio.io import read_audio

        vocal = read_audio(files[0])
        parts = [read_audio(p) for p in files[1:]]
        n = max(p.shape[1] for p in parts)
        accomp = sum(np.pad(p, ((0, 0), (0, n - p.shape[1]))) for p in parts)
        return vocal, np.asarray(accomp, dtype=np.float32)

    return Source(str(song.relative_to(root)), tuple(str(p) for p in files), load)


def _latent_source(folder: Path) -> Source:
    paths = (folder / "latent_vocal.npy", folder / "latent_accomp.npy")

    def load() -> tuple[np.ndarray, np.ndarray]:
        vocal, accomp = (np.load(p, mmap_mode="r") for p in paths)
        want = (LATENT_CHANNELS, LATENT_FRAMES)
        if vocal.ndim != 3 or vocal.shape[1:] != want or vocal.shape != accomp.shape:
            raise AudioInputError(
                f"latent arrays must both be shaped [N, 64, 1024]; got {vocal.shape} and "
                f"{accomp.shape}"
            )
        return vocal, accomp

    return Source(folder.name, tuple(str(p) for p in paths), load, encoded=True)


def _mix_sources(folder: Path, device: str) -> list[Source]:
    separate = _demucs_separator(device)
    sources = []
    for path in _audio_files(folder):

        def load(path: Path = path) -> tuple[np.ndarray, np.ndarray]:
            from samuel_live.audio.io import read_audio

            return separate(read_audio(path))

        sources.append(Source(path.name, (str(path),), load))
    return sources


def _demucs_separator(device: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Demucs (htdemucs) as (2, n) mix -> (vocals, everything else)."""
    try:
        from demucs.apply import apply_model
        from demucs.pretrained import get_model
    except Exception as exc:  # ImportError, or torchaudio failing to import beside CPU torch
        raise SamuelError(
            "separating full mixes needs Demucs: `pip install demucs` (with a torchaudio that "
            f"imports beside this torch) and its htdemucs weights ({exc}); or give stem folders"
        ) from exc
    try:
        model = get_model("htdemucs").eval()
    except Exception as exc:
        raise SamuelError(
            f"Demucs could not load its htdemucs weights ({exc}); download them once online "
            "(they go to the torch hub cache) or give stem folders instead"
        ) from exc
    vocals_index = list(model.sources).index("vocals")

    def separate(mix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(mix)
        ref = x.mean(0)
        scale = ref.std() + 1e-8
        with torch.no_grad():
            out = apply_model(model, ((x - ref.mean()) / scale)[None], device=device)[0]
        out = out * scale + ref.mean()
        vocal = out[vocals_index]
        return vocal.numpy(), (out.sum(0) - vocal).numpy()

    return separate


def _chorale_sources(root: Path, config: PrepareConfig) -> list[Source]:
    failures = chorales.render_corpus(root, variants=config.variants, workers=config.workers)
    for name, reason in failures.items():
        log.warning("chorale %s not rendered: %s", name, reason)
    sessions = chorales.plan_sessions(
        root, variants=config.variants, per_session=config.sessions_of
    )
    return [_session_source(s) for s in sessions]


def _session_source(session: Session) -> Source:
    def load() -> tuple[np.ndarray, np.ndarray]:
        from samuel_live.audio.io import read_audio

        vocals = [read_audio(p) for p in session.vocal_files]
        accomps = [read_audio(p) for p in session.accomp_files]
        return concatenate_pairs(vocals, accomps)

    pairs = zip(session.vocal_files, session.accomp_files, strict=True)
    return Source(session.name, tuple(str(p) for pair in pairs for p in pair), load)


# ---------------------------------------------------------------- encoding and windows


