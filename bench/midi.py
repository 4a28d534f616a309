"""Seconds to turn a 47.55 s accompaniment into notes and a Standard MIDI File, and to play
those notes on a SoundFont instrument.

Run: python bench/midi.py. Uses a dense synthetic accompaniment (four-note chords every half
second, with overtones) encoded by the harmonic codec, i.e. the latent a result carries.
"""

from __future__ import annotations

import time

import numpy as np

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.codec.harmonic import HarmonicCodec
from samuel_live.config import SYSTEM_SOUNDFONT_DIRS
from samuel_live.render.instrument import Instrument, find_soundfont, render_notes
from samuel_live.render.midi import midi_file, parse_grid
from samuel_live.render.notes import notes_from_latent
from samuel_live.timing import MusicalTime


def main() -> None:
    rng = np.random.default_rng(0)
    n = WINDOW_SAMPLES
    x = np.zeros(n)
    step = SAMPLE_RATE // 2
    t = np.arange(step) / SAMPLE_RATE
    for a in range(0, n - step, step):
        for pitch in rng.choice(np.arange(48, 84), 4, replace=False):
            f = 440.0 * 2 ** ((pitch - 69) / 12)
            x[a : a + step] += sum(0.05 / h * np.sin(2 * np.pi * f * h * t) for h in (1, 2, 3))
    bands = HarmonicCodec().encode(np.stack([x, x]).astype(np.float32)).numpy()
    best_notes = best_midi = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        notes = notes_from_latent(bands)
        t1 = time.perf_counter()
        data = midi_file(notes, MusicalTime(120.0), grid=parse_grid("1/16"))
        t2 = time.perf_counter()
        best_notes, best_midi = min(best_notes, t1 - t0), min(best_midi, t2 - t1)
    print(f"47.55 s clip: {len(notes)} notes; notes {best_notes * 1000:.1f} ms, "
          f"MIDI file {best_midi * 1000:.1f} ms ({len(data)} bytes); best of 5")
    soundfont = find_soundfont(SYSTEM_SOUNDFONT_DIRS)
    if soundfont is None:
        print("no General MIDI SoundFont found: instrument rendering not timed")
        return
    for program in (0, 48):
        instrument = Instrument(soundfont, program)
        t0 = time.perf_counter()
        render_notes(notes, instrument, WINDOW_SAMPLES, SAMPLE_RATE)
        print(f"played on {instrument.name} ({soundfont.name}, SoundFont load included): "
              f"{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
