"""Real instruments: a result's notes played through a SoundFont with FluidSynth.

FluidSynth (through pyfluidsynth, the ``instruments`` extra, over the system's libfluidsynth)
plays SF2/SF3 SoundFonts with the envelopes, filters and velocity layers they define, is packaged
everywhere (Debian's ``fluidsynth``, Homebrew, Windows builds) and is what ``prepare`` already
renders training audio with. TinySoundFont was the other choice; its PyPI package declares
PyAudio as a hard dependency, which does not build on Linux without PortAudio's headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samuel_live.errors import InvalidArgumentError, SamuelError
from samuel_live.render.notes import Note

# General MIDI level 1 program names, program 0 first.
GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
    "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)",
    "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass",
    "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax",
    "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo",
    "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
    "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)",
    "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba",
    "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise",
    "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
TONES = "tones"  # the built-in instrument's request name (samuel_live.render.tones)
TONES_NAME = "Tones (built-in)"
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")
_PREFERRED = ("FluidR3_GM", "default-GM", "GeneralUser")
TAIL_S = 2.0  # how long the last notes may ring past the take before being cut (then faded)


@dataclass(frozen=True)
class Instrument:
    """A General MIDI program of a SoundFont file; no SoundFont = the built-in tones."""

    soundfont: Path | None
    program: int  # 0..127 (for the built-in tones: the MIDI file's program)
    bank: int = 0

    @property
    def name(self) -> str:
        return GM_PROGRAMS[self.program] if self.soundfont is not None else TONES_NAME

    def describe(self) -> dict[str, object]:
        """What a sidecar records of it."""
        return {"program": self.program, "name": self.name,
                "soundfont": self.soundfont.name if self.soundfont is not None else None}


def choose_instrument(name: str, soundfont: str | None, folders: Iterable[str | Path],
                      check: Callable[[str], Path] | None = None) -> Instrument:
    """The instrument a request names, on ``soundfont`` (checked by ``check``, which says
    whether the path may be read) or else the best General MIDI SoundFont in ``folders``.
    ``tones`` is the built-in additive instrument, which needs no SoundFont."""
    if name.strip().lower() == TONES:
        if soundfont:
            raise InvalidArgumentError("the built-in tones take no SoundFont")
        return Instrument(None, 0)
    program = gm_program(name)
    _fluidsynth()  # refuse now, before any work, if the synthesizer is missing
    if soundfont:
        path = check(soundfont) if check is not None else Path(soundfont).expanduser()
        if not path.is_file() or path.suffix.lower() not in SOUNDFONT_SUFFIXES:
            raise InvalidArgumentError(f"SoundFont {soundfont} is not an .sf2/.sf3 file")
        return Instrument(path.resolve(), program)
    found = find_soundfont(folders)
    if found is None:
        raise SamuelError(
            "no SoundFont found for instruments; install one (Debian: apt install "
            "fluid-soundfont-gm) or give its path (--soundfont PATH, render.soundfont)")
    return Instrument(found, program)


def gm_program(text: str) -> int:
    """'33', 'cello', 'string ensemble 1' -> a GM program number (0..127)."""
    if text.strip().isdigit():
        number = int(text)
        if not 0 <= number <= 127:
            raise InvalidArgumentError(f"GM program {number} is outside 0..127")
        return number
    want = text.strip().lower()
    exact = [i for i, n in enumerate(GM_PROGRAMS) if n.lower() == want]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(GM_PROGRAMS) if want and want in n.lower()]
    if not partial:
        raise InvalidArgumentError(
            f"no General MIDI instrument is called {text!r}; give a program number 0-127 or "
            "a name such as piano, strings, cello, flute, organ, pad")
    return partial[0]


def find_soundfont(folders: Iterable[str | Path]) -> Path | None:
    """The best General MIDI SoundFont in ``folders`` (FluidR3 first), or None."""
    found: list[Path] = []
    for folder in folders:
        root = Path(folder).expanduser()
        with contextlib.suppress(OSError):
            found += sorted(p for p in root.iterdir() if p.suffix.lower() in SOUNDFONT_SUFFIXES)
    for name in _PREFERRED:
        for path in found:
            if path.stem == name and path.is_file():
                return path.resolve()
    return next((p.resolve() for p in found if p.is_file()), None)


def render_notes(notes: Sequence[Note], instrument: Instrument, samples: int,
                 sample_rate: int, *, loop: bool = False) -> np.ndarray:
    """The notes played on ``instrument``: float32 (2, ``samples``) at ``sample_rate``.

    A loop is played twice and the second pass kept, so notes ringing over its end sound at
    its start. Otherwise the last notes are faded out over the final 10 ms.
    """
    if instrument.soundfont is None:
        from samuel_live.render.tones import play_tones

        return play_tones(notes, samples, sample_rate, loop=loop)
    passes = 2 if loop else 1
    events: list[tuple[int, int, int, int]] = []  # (sample, off first, key, velocity)
    for k in range(passes):
        shift = k * samples
        for n in notes:
            on = shift + int(round(n.start_s * sample_rate))
            off = shift + max(int(round(n.end_s * sample_rate)), on + 1)
            events += [(on, 1, n.pitch, n.velocity), (off, 0, n.pitch, 0)]
    events.sort()
    total = passes * samples
    out = np.zeros(2 * total, dtype=np.float32)
    with _synth(instrument, sample_rate) as synth:
        now = 0
        for at, is_on, key, velocity in events:
            at = min(at, total)
            if at > now:
                out[2 * now : 2 * at] = synth.get_samples(at - now)[: 2 * (at - now)] / 32768.0
                now = at
            if is_on:
                synth.noteon(0, key, velocity)
            else:
                synth.noteoff(0, key)
        if total > now:
            out[2 * now :] = synth.get_samples(total - now)[: 2 * (total - now)] / 32768.0
    audio = out.reshape(-1, 2).T[:, (passes - 1) * samples :]
    if not loop:
        fade = min(samples, int(0.01 * sample_rate))
        audio[:, samples - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return np.ascontiguousarray(audio)


def _fluidsynth() -> Any:
    """The pyfluidsynth module, or SamuelError saying how to install it."""
    try:
        import fluidsynth  # the instruments extra
    except (ImportError, OSError) as exc:
        raise SamuelError(
            "instruments need FluidSynth: `pip install -e \".[instruments]\"` and the system "
            f"library (Debian: apt install fluidsynth; macOS: brew install fluid-synth) ({exc})"
        ) from None
    return fluidsynth


@contextlib.contextmanager
def _synth(instrument: Instrument, sample_rate: int) -> Iterator[Any]:
    synth = _fluidsynth().Synth(samplerate=float(sample_rate), gain=0.6)
    try:
        if instrument.soundfont is None:
            raise SamuelError("the built-in tones are not played by FluidSynth")
        sfid = synth.sfload(str(instrument.soundfont))
        if sfid < 0:
            raise SamuelError(f"{instrument.soundfont} is not a SoundFont FluidSynth can read; "
                              "give an .sf2 or .sf3 file")
        if synth.program_select(0, sfid, instrument.bank, instrument.program) != 0:
            raise SamuelError(f"{instrument.soundfont.name} has no program {instrument.program} "
                              f"({instrument.name}) in bank {instrument.bank}; choose another "
                              "instrument or a General MIDI SoundFont")
        yield synth
    finally:
        synth.delete()
