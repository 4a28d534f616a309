"""The JSON sidecar written beside every result, one schema for the CLI, the engine and batches.

Every field is always present (``None`` where it does not apply), so a reader never has to ask
which path wrote a file. ``same_render`` says whether an existing result was made with the
settings a new request asks for: a batch resumes only those.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from samuel_live.errors import SamuelError

SIDECAR_FORMAT = "samuel-live.sidecar/1"


@dataclass(frozen=True)
class Sidecar:
    """What a result is and how it was made."""

    audio: str | None  # the result's audio file name (same folder); None for MIDI only
    source: str  # "file:PATH", "capture[a:b]", "region[a:b]"
    start_s: float  # where in the source the take starts
    samples: int
    sample_rate: int
    settings: dict[str, Any]  # GenerateSettings: sampler, steps, cfg, seed, key
    post: list[dict[str, Any]] | None  # the chain as applied (None: no post)
    loop_bars: int  # 0 = not a loop
    musical_time: dict[str, Any] | None  # bpm, beats_per_bar, beat_unit, source
    model: dict[str, Any]  # name, hash, codec, params, device, precision
    timings: dict[str, float | None] = field(default_factory=dict)
    capture: dict[str, float | None] | None = None  # clocks of the newest captured frame
    job: int | None = None  # the engine's job id
    midi: str | None = None  # the result's MIDI file name (same folder)
    notes: int = 0  # how many notes the MIDI file holds
    quantize: str | None = None  # the MIDI's grid, None = as played
    instrument: dict[str, Any] | None = None  # program, name, soundfont; None = codec decode
    format: str = SIDECAR_FORMAT

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": round(self.duration_s, 6)}

    def same_render(self, other: Sidecar) -> bool:
        """True if both results were made the same way (settings, post, model, rate, loop)."""
        keys = ("settings", "post", "loop_bars", "sample_rate", "source", "start_s", "quantize",
                "instrument")
        return (all(getattr(self, k) == getattr(other, k) for k in keys)
                and self.model.get("hash") == other.model.get("hash"))


def sidecar_path(audio: str | Path) -> Path:
    """``take.wav`` -> ``take.wav.json``."""
    audio = Path(audio)
    return audio.with_name(audio.name + ".json")


def read_sidecar(path: str | Path) -> Sidecar:
    """Read a sidecar written by any samuel-live path; SamuelError if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SamuelError(f"cannot read sidecar {path}: {exc}; delete it to render again") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise SamuelError(f"{path} is not a {SIDECAR_FORMAT} sidecar; delete it to render again")
    names = {f.name for f in fields(Sidecar)}
    try:
        return Sidecar(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise SamuelError(f"sidecar {path} is incomplete ({exc}); delete it to render again") \
            from None
