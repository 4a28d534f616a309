"""The chorale corpus's notes as MIDI, and MIDI rendered to audio with FluidSynth's CLI."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samuel_live.atomic import atomic_file
from samuel_live.errors import RenderError

log = logging.getLogger(__name__)

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS_PER_BEAT = 480


@dataclass(frozen=True)
class Note:
    """One sounding note: start and length in quarter notes, MIDI pitch."""

    start: float
    length: float
    pitch: int


def write_midi(
    voices: Sequence[Sequence[Note]],
    path: Path,
    *,
    program: int,
    bpm: float,
    transpose: int = 0,
    velocity_base: int = 85,
    seed: int = 0,
) -> None:
    """Write one track per voice (own channel, same program); offs sort before ons."""
    import mido

    rng = np.random.default_rng(seed)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    mid.tracks.append(conductor)
    for channel, notes in enumerate(voices):
        mid.tracks.append(_voice_track(notes, channel, program, transpose, velocity_base, rng))
    with atomic_file(path) as f:
        mid.save(file=f)


def _voice_track(
    notes: Sequence[Note],
    channel: int,
    program: int,
    transpose: int,
    velocity_base: int,
    rng: np.random.Generator,
) -> object:
    import mido

    events: list[tuple[int, int, int, int]] = []  # (tick, 0=off/1=on, pitch, velocity)
    for n in notes:
        pitch = int(np.clip(n.pitch + transpose, 0, 127))
        on = round(n.start * TICKS_PER_BEAT)
        off = max(on + 1, round((n.start + n.length) * TICKS_PER_BEAT))
        velocity = int(np.clip(velocity_base + rng.normal(0.0, 7.0), 30, 127))
        events += [(on, 1, pitch, velocity), (off, 0, pitch, 0)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program)])
    now = 0
    for tick, kind, pitch, velocity in events:
        msg_type = "note_on" if kind else "note_off"
        track.append(
            mido.Message(msg_type, channel=channel, note=pitch, velocity=velocity, time=tick - now)
        )
        now = tick
    # All-notes-off: a stray note-on on a sustained patch would make fluidsynth render forever.
    track.append(mido.Message("control_change", channel=channel, control=123, value=0, time=0))
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def render_midi(midi: Path, out: Path, *, soundfont: Path = SOUNDFONT, timeout_s: float = 120.0):
    """Render ``midi`` to ``out`` (type from its suffix) at 44.1 kHz with fluidsynth."""
    exe = shutil.which("fluidsynth")
    if exe is None or not soundfont.exists():
        raise RenderError(
            "rendering chorales needs fluidsynth and a GM soundfont: "
            "`apt-get install fluidsynth fluid-soundfont-gm`"
        )
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    cmd = [
        exe,
        "-ni",
        "-q",
        "-g",
        "0.8",
        "-F",
        str(tmp),
        "-T",
        out.suffix.lstrip("."),
        "-r",
        "44100",
        str(soundfont),
        str(midi),
    ]
    try:
        subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=True
        )
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise RenderError(f"fluidsynth did not finish {midi} within {timeout_s:.0f} s") from exc
    except subprocess.CalledProcessError as exc:
        tmp.unlink(missing_ok=True)
        raise RenderError(f"fluidsynth failed on {midi}: {exc.stderr.decode()[-300:]}") from exc
    os.replace(tmp, out)
