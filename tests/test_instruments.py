"""Real instruments: notes played through a SoundFont with FluidSynth sound like those notes."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from samuel_live import SAMPLE_RATE
from samuel_live.cli import main
from samuel_live.codec.harmonic import HarmonicCodec
from samuel_live.config import SYSTEM_SOUNDFONT_DIRS
from samuel_live.errors import InvalidArgumentError, SamuelError
from samuel_live.render.instrument import (
    Instrument,
    choose_instrument,
    find_soundfont,
    gm_program,
    render_notes,
)
from samuel_live.render.notes import Note, notes_from_latent

SOUNDFONT = find_soundfont(SYSTEM_SOUNDFONT_DIRS)
try:
    import fluidsynth  # noqa: F401
except (ImportError, OSError):
    fluidsynth = None
needs_synth = pytest.mark.skipif(SOUNDFONT is None or fluidsynth is None,
                                 reason="needs pyfluidsynth, libfluidsynth and a GM SoundFont "
                                        "(CI installs fluidsynth + fluid-soundfont-gm)")
TRIADS = [Note(p, 0.2 + 1.0 * k, 1.0 + 1.0 * k, 100)
          for k, chord in enumerate(((60, 64, 67), (57, 60, 64), (53, 57, 60)))
          for p in chord]


def _chroma(audio: np.ndarray) -> np.ndarray:
    bands = np.exp(HarmonicCodec().encode(audio).numpy())
    return np.array([bands[pc::12].sum() for pc in range(12)])  # band 0 is C


def test_gm_programs_by_number_and_name() -> None:
    assert gm_program("42") == 42 and gm_program("cello") == 42
    assert gm_program("Acoustic Grand Piano") == 0 and gm_program("strings") == 44
    with pytest.raises(InvalidArgumentError):
        gm_program("kazoo")
    with pytest.raises(InvalidArgumentError):
        gm_program("128")


def test_missing_soundfont_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SamuelError, match="apt install fluid-soundfont-gm"):
        choose_instrument("piano", None, [tmp_path])
    with pytest.raises(InvalidArgumentError, match="not an .sf2"):
        choose_instrument("piano", str(tmp_path / "none.sf2"), [])


@needs_synth
@pytest.mark.parametrize("program", [0, 48])  # piano, strings
def test_played_notes_have_the_notes_chroma(program: int) -> None:
    assert SOUNDFONT is not None
    audio = render_notes(TRIADS, Instrument(SOUNDFONT, program), 4 * SAMPLE_RATE, SAMPLE_RATE)
    assert audio.shape == (2, 4 * SAMPLE_RATE) and np.abs(audio).max() > 0.01
    chroma = _chroma(audio)
    assert set(np.argsort(chroma)[-5:]) == {0, 4, 5, 7, 9}  # C, E, F, G, A: the notes played
    back = notes_from_latent(HarmonicCodec().encode(audio).numpy())
    first = {n.pitch % 12 for n in back if n.start_s < 0.6}
    assert first == {0, 4, 7}


@needs_synth
def test_a_played_loop_rings_over_its_seam() -> None:
    assert SOUNDFONT is not None
    notes = [Note(60, 1.6, 2.0, 110)]  # sounds until the end of a 2 s loop
    loop = render_notes(notes, Instrument(SOUNDFONT, 0), 2 * SAMPLE_RATE, SAMPLE_RATE,
                        loop=True)
    once = render_notes(notes, Instrument(SOUNDFONT, 0), 2 * SAMPLE_RATE, SAMPLE_RATE)
    head = slice(0, SAMPLE_RATE // 10)
    assert np.abs(loop[:, head]).max() > 10 * np.abs(once[:, head]).max() + 1e-4


@needs_synth
def test_generate_with_an_instrument(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_midi import _played, _tiny_checkpoint

    sf.write(tmp_path / "v.wav", _played().T, SAMPLE_RATE)
    out = tmp_path / "cello.wav"
    assert main(["generate", str(tmp_path / "v.wav"), "-o", str(out), "--model",
                 str(_tiny_checkpoint(tmp_path)), "--steps", "2", "--sampler", "ddim", "-q",
                 "--instrument", "cello", "--seed", "3"]) == 0
    side = json.loads((tmp_path / "cello.wav.json").read_text())
    assert side["instrument"]["program"] == 42 and side["instrument"]["name"] == "Cello"
    mid = mido.MidiFile(tmp_path / "cello.mid")
    assert [m.program for m in mid.tracks[1] if m.type == "program_change"] == [42]
    assert sf.info(out).frames == sf.info(tmp_path / "v.wav").frames
    assert side["notes"] > 0
    # the stem plays the MIDI's notes: its chroma follows theirs, not theirs a tritone away
    audio = sf.read(out, always_2d=True)[0].T.astype(np.float32)
    played, now, on = np.zeros(12), 0.0, {}
    for msg in mid:
        now += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = now
        elif msg.type in ("note_off", "note_on") and msg.note in on:
            played[msg.note % 12] += now - on.pop(msg.note)
    heard = _chroma(audio)
    fit = np.corrcoef(heard, played)[0, 1]
    assert fit > 0.6 and fit > np.corrcoef(heard, np.roll(played, 6))[0, 1] + 0.3


def test_built_in_tones_play_exactly_the_notes() -> None:
    tones = choose_instrument("tones", None, [])
    assert tones.soundfont is None and tones.describe()["name"] == "Tones (built-in)"
    audio = render_notes(TRIADS, tones, 4 * SAMPLE_RATE, SAMPLE_RATE)
    assert audio.shape == (2, 4 * SAMPLE_RATE) and 0.05 < np.abs(audio).max() < 1.0
    back = notes_from_latent(HarmonicCodec().encode(audio).numpy())
    assert sorted((n.pitch, round(n.start_s, 1)) for n in back) == sorted(
        (n.pitch, round(n.start_s, 1)) for n in TRIADS)
    ring = render_notes([Note(60, 1.8, 2.0, 110)], tones, 2 * SAMPLE_RATE, SAMPLE_RATE,
                        loop=True)
    assert np.abs(ring[:, : SAMPLE_RATE // 20]).max() > 0.01  # the release wraps to the start
    with pytest.raises(InvalidArgumentError):
        choose_instrument("tones", "x.sf2", [])


def test_missing_fluidsynth_is_refused_before_any_work(monkeypatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # `import fluidsynth` now fails
    with pytest.raises(SamuelError, match=r"pip install -e \".\[instruments\]\""):
        choose_instrument("piano", None, [tmp_path])
    assert choose_instrument("tones", None, []).soundfont is None  # needs no FluidSynth
    code = main(["generate", str(tmp_path / "no-take.wav"), "-o", str(tmp_path / "o.wav"),
                 "--instrument", "piano"])
    err = capsys.readouterr().err
    assert code != 0 and "FluidSynth" in err and "no-take" not in err
