"""Draw a result's notes (its MIDI) over its audio's semitone bands, as a PNG.

    python bench/pianoroll.py RESULT.wav [-o docs/img/pianoroll.png]

The top panel is the audio analysed by the harmonic codec (what the notes were found in); the
bottom panel is the MIDI file beside it (``RESULT.mid``), read back with mido.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mido

    from samuel_live import HOP, SAMPLE_RATE
    from samuel_live.audio.io import read_audio
    from samuel_live.codec.harmonic import LOWEST_MIDI
    from samuel_live.render.take import harmonic_bands

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("result", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path("pianoroll.png"))
    args = ap.parse_args()
    audio = read_audio(args.result)
    bands = harmonic_bands(audio)
    level = 20 * np.log10(np.maximum(np.exp(bands) - 1e-4, 0) + 1e-9)
    seconds = audio.shape[1] / SAMPLE_RATE
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    extent = (0, bands.shape[1] * HOP / SAMPLE_RATE, LOWEST_MIDI - 0.5, LOWEST_MIDI + 63.5)
    top.imshow(level, origin="lower", aspect="auto", extent=extent, cmap="magma",
               vmin=level.max() - 50, vmax=level.max())
    top.set_ylabel("semitone band (MIDI)")
    top.set_title(f"{args.result.name}: the audio's semitone bands")
    now, held = 0.0, {}
    for msg in mido.MidiFile(args.result.with_suffix(".mid")):
        now += msg.time
        if msg.type == "note_on" and msg.velocity:
            held[msg.note] = (now, msg.velocity)
        elif msg.type in ("note_off", "note_on") and msg.note in held:
            start, vel = held.pop(msg.note)
            bottom.broken_barh([(start, now - start)], (msg.note - 0.4, 0.8),
                               color=plt.cm.viridis(vel / 127))
    bottom.set_ylim(LOWEST_MIDI - 0.5, LOWEST_MIDI + 63.5)
    bottom.set_xlim(0, seconds)
    bottom.set_ylabel("MIDI note")
    bottom.set_xlabel("seconds")
    bottom.set_title("its MIDI file (colour = velocity)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(args.out)


if __name__ == "__main__":
    main()
