"""Writing a rendered take: its MIDI file and sidecar first, then its audio under the final name,
so a result never appears without its sidecar and nothing is ever half-written."""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

from samuel_live.atomic import atomic_write_bytes, fsync_dir, sweep_stale_temps
from samuel_live.errors import SamuelError
from samuel_live.render.sidecar import Sidecar, sidecar_path
from samuel_live.render.take import RenderedTake

STAGED = ".staged"  # infix of results waiting for their sidecar (swept if a kill left one)
MIDI_SUFFIX = ".mid"


def midi_path(path: str | Path) -> Path:
    """``take.wav`` -> ``take.mid`` (a MIDI-only result is named ``take.mid`` already)."""
    return Path(path).with_suffix(MIDI_SUFFIX)


def write_result(path: str | Path, take: RenderedTake, *,
                 bit_depth: int = 24) -> tuple[Path, Sidecar]:
    """Write ``take`` as ``path`` (audio, or MIDI for a MIDI-only take), ``path.json`` and,
    beside audio, ``path`` with ``.mid``. Returns the result's path and its sidecar."""
    from samuel_live.audio.io import write_audio_atomic, write_json_atomic

    path = Path(path)
    midi = midi_path(path)
    audio = take.audio
    sidecar = replace(take.sidecar, audio=path.name if audio is not None else None,
                      midi=midi.name)
    sweep_stale_temps(path.parent)  # what a killed writer left here before
    stage = staged_name(path) if audio is not None else None
    try:
        if stage is not None:
            write_audio_atomic(stage, audio, sidecar.sample_rate, bit_depth)
        atomic_write_bytes(midi, take.midi)
        write_json_atomic(sidecar_path(path), sidecar.to_json())
        if stage is not None:
            os.replace(stage, path)
    except OSError as exc:  # a folder where the file should go, permissions, ...
        _discard(stage)
        raise SamuelError(f"cannot write {path} or its sidecar: {exc.strerror or exc}; choose "
                          "another output name or folder") from exc
    except BaseException:
        _discard(stage)
        raise
    fsync_dir(path.parent)
    return path, sidecar


def staged_name(path: Path) -> Path:
    """Where a result waits for its sidecar: hidden, beside it, same format suffix."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}{STAGED}{path.suffix}")


def _discard(stage: Path | None) -> None:
    if stage is not None:
        stage.unlink(missing_ok=True)
