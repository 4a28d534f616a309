"""Notes and MIDI from every result: a known progression comes back as exactly its notes, the
file reads back in an independent MIDI library with the take's tempo map, and the CLI writes
it beside the audio (or alone, with --midi-only)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from samuel_live import HOP, SAMPLE_RATE
from samuel_live.cli import main
from samuel_live.codec.harmonic import HarmonicCodec
from samuel_live.errors import SamuelError
from samuel_live.render.midi import PPQ, midi_file, parse_grid
from samuel_live.render.notes import Note, NoteOptions, notes_from_latent
from samuel_live.timing import MusicalTime

FRAME_S = HOP / SAMPLE_RATE
# C, F/A (first inversion), G7 without its fifth, Am: no octave doublings (see notes.py)
PROGRESSION = [(0.5, (60, 64, 67)), (1.5, (57, 65, 72)), (2.5, (55, 65, 71)), (3.5, (57, 64, 72))]


def _played(progression=PROGRESSION, seconds: float = 0.9, harmonics: int = 6) -> np.ndarray:
    """The chords as tones with ``harmonics`` partials (1/h), random phases, 15 ms fades."""
    rng = np.random.default_rng(0)
    n = int((progression[-1][0] + 1.5) * SAMPLE_RATE)
    x = np.zeros(n)
    for start, chord in progression:
        a, b = int(start * SAMPLE_RATE), int((start + seconds) * SAMPLE_RATE)
        t = np.arange(b - a) / SAMPLE_RATE
        env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.015)
        for pitch in chord:
            f = 440.0 * 2 ** ((pitch - 69) / 12)
            for h in range(1, harmonics + 1):
                x[a:b] += 0.1 / h * env * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.3))
    return np.stack([x, x]).astype(np.float32)


def test_a_known_progression_comes_back_as_its_notes() -> None:
    bands = HarmonicCodec().encode(_played()).numpy()
    notes = notes_from_latent(bands)
    want = sorted((start, p) for start, chord in PROGRESSION for p in chord)
    assert sorted(n.pitch for n in notes) == sorted(p for _, p in want)
    for start, chord in PROGRESSION:
        got = {n.pitch: n for n in notes if abs(n.start_s - start) < 0.25}
        assert sorted(got) == sorted(chord), start
        for n in got.values():
            assert abs(n.start_s - start) <= FRAME_S, (n, start)
            assert abs(n.end_s - (start + 0.9)) <= 2 * FRAME_S, (n, start)
            assert 90 <= n.velocity <= 127


def test_silence_and_a_quieter_overtone_give_no_notes() -> None:
    assert notes_from_latent(HarmonicCodec().encode(np.zeros((2, SAMPLE_RATE), np.float32))
                             .numpy()) == []
    single = HarmonicCodec().encode(_played([(0.2, (48,))])).numpy()  # C3 with 5 overtones
    assert [n.pitch for n in notes_from_latent(single)] == [48]


def test_polyphony_cap_keeps_the_loudest() -> None:
    bands = HarmonicCodec().encode(_played([(0.2, (48, 52, 55, 59, 62))], harmonics=1)).numpy()
    bands[59 - 36] += np.log(4.0)  # B3 four times louder
    notes = notes_from_latent(bands, NoteOptions(max_polyphony=2))
    assert len(notes) == 2 and 59 in {n.pitch for n in notes}


def test_midi_file_reads_back_with_the_takes_tempo_map(tmp_path: Path) -> None:
    tempo = MusicalTime(90.0, 6, "cli", 8)
    notes = [Note(60, 0.5, 1.0, 100), Note(64, 0.5, 1.0, 80), Note(60, 1.0, 1.5, 70)]
    path = tmp_path / "x.mid"
    path.write_bytes(midi_file(notes, tempo, program=33))
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == PPQ and len(mid.tracks) == 2
    meta = {m.type: m for m in mid.tracks[0]}
    assert mido.tempo2bpm(meta["set_tempo"].tempo) == pytest.approx(90.0, abs=1e-3)
    assert (meta["time_signature"].numerator, meta["time_signature"].denominator) == (6, 8)
    assert [m.program for m in mid.tracks[1] if m.type == "program_change"] == [33]
    ons, now = [], 0.0
    for msg in mid:  # mido converts ticks to seconds through the tempo map
        now += msg.time
        if msg.type == "note_on" and msg.velocity:
            ons.append((round(now, 3), msg.note, msg.velocity))
    assert ons == [(0.5, 60, 100), (0.5, 64, 80), (1.0, 60, 70)]
    assert mid.length == pytest.approx(1.5, abs=1e-3)


def test_quantize_snaps_to_the_grid() -> None:
    tempo = MusicalTime(120.0, 4, "cli", 4)  # a 1/16 note is 0.125 s
    data = midi_file([Note(60, 0.27, 0.61, 90)], tempo, grid=parse_grid("1/16"))
    ticks = [m.time for m in mido.MidiFile(file=io.BytesIO(data)).tracks[1]
             if m.type in ("note_on", "note_off")]
    assert ticks == [PPQ // 2, 3 * PPQ // 4]  # on at 0.25 s, off 0.375 s later at 0.625 s
    with pytest.raises(SamuelError, match="quantize"):
        parse_grid("1/7")


def _tiny_checkpoint(tmp_path: Path) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_render_path import _checkpoint

    return _checkpoint(tmp_path)


def test_generate_writes_midi_beside_the_audio_and_alone(tmp_path: Path) -> None:
    sf.write(tmp_path / "vocal.wav", _played().T, SAMPLE_RATE)
    ckpt = _tiny_checkpoint(tmp_path)
    common = ["--model", str(ckpt), "--steps", "2", "--sampler", "ddim", "--seed", "1", "-q",
              "--bpm", "100", "--meter", "3/4", "--quantize", "1/8"]
    out = tmp_path / "acc.wav"
    assert main(["generate", str(tmp_path / "vocal.wav"), "-o", str(out), *common]) == 0
    side = json.loads((tmp_path / "acc.wav.json").read_text())
    assert side["midi"] == "acc.mid" and side["quantize"] == "1/8"
    mid = mido.MidiFile(tmp_path / "acc.mid")
    meta = {m.type: m for m in mid.tracks[0]}
    assert mido.tempo2bpm(meta["set_tempo"].tempo) == pytest.approx(100.0, abs=1e-3)
    assert meta["time_signature"].numerator == 3
    assert sum(m.type == "note_on" for m in mid.tracks[1]) == side["notes"]
    only = tmp_path / "only.wav"
    assert main(["generate", str(tmp_path / "vocal.wav"), "-o", str(only), "--midi-only",
                 *common]) == 0
    assert sorted(p.name for p in tmp_path.glob("only*")) == ["only.mid", "only.mid.json"]
    side_only = json.loads((tmp_path / "only.mid.json").read_text())
    assert side_only["audio"] is None and side_only["notes"] == side["notes"]
    assert (tmp_path / "only.mid").read_bytes() == (tmp_path / "acc.mid").read_bytes()


def test_a_spike_in_the_latent_does_not_mute_the_notes() -> None:
    bands = HarmonicCodec().encode(_played()).numpy()
    clean = {(n.pitch, round(n.start_s, 1)) for n in notes_from_latent(bands)}
    bands[70 - 36, 30] = np.log(np.exp(bands.max()) * 100.0)  # one frame, 40 dB over the rest
    spiked = {(n.pitch, round(n.start_s, 1)) for n in notes_from_latent(bands)}
    assert spiked == clean and len(clean) == 12
