"""Render a generalisation TUNING set: melodies in another style, on timbres training never used.

    python bench/make_heldout_styles.py [--out data/styles] [--count 30]
    python bench/quality.py --set styles

Irish fiddle tunes from music21's bundled Ryan's Mammoth Collection (jigs, reels, airs: not
chorales), each on a GM patch absent from the starter corpus's vocal set (whistle, ocarina,
harmonica, soprano sax, muted trumpet, square lead, shakuhachi), at 90-140 bpm. There is no
reference accompaniment, so quality.py has no chroma-vs-real column for it. Rendered with
FluidR3_GM (not the reserved TimGM6mb): not reserved material, so defaults may be chosen on it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from samuel_live.train.chorales import Note, render_midi, write_midi

UNSEEN_PROGRAMS = (78, 79, 22, 64, 59, 80, 77)


def tunes(count: int, max_quarters: float = 96.0) -> list[tuple[str, tuple[Note, ...]]]:
    """``count`` single-line tunes of Ryan's Mammoth with 24+ notes, spread over the collection.

    Every 37th file first (the original 10-tune set is its start), then every 37th from the 18th."""
    from music21 import corpus

    out = []
    entries = sorted(corpus.search("ryansMammoth"), key=lambda e: str(e.sourcePath))
    for entry in entries[::37] + entries[18::37]:  # spread over the collection, deterministic
        score = entry.parse()
        notes = []
        for n in score.flatten().notes:
            if n.isChord or n.offset > max_quarters:
                continue
            notes.append(Note(float(n.offset), float(n.quarterLength), int(n.pitch.midi)))
        if len(notes) >= 24:
            title = Path(str(entry.sourcePath)).stem
            name = "".join(c if c.isalnum() else "_" for c in title.lower())[:40]
            out.append((f"{len(out):02d}_{name}", tuple(notes)))
        if len(out) == count:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/styles"))
    ap.add_argument("--count", type=int, default=30)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, notes) in enumerate(tunes(args.count)):
            program = UNSEEN_PROGRAMS[i % len(UNSEEN_PROGRAMS)]
            midi = Path(tmp) / f"{name}.mid"
            write_midi([notes], midi, program=program, bpm=float(rng.uniform(90, 140)), seed=i)
            render_midi(midi, args.out / f"{name}_vocal.wav")
            print(f"{name}: program {program}")


if __name__ == "__main__":
    main()
