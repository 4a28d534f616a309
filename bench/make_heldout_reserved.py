"""Render the RESERVED held-out sets: report on them only, never train or tune on them.

    python bench/make_heldout_reserved.py [--out data/reserved] [--count 30]
    python bench/quality.py --set essen --set monteverdi   # final figures only

Two sets, both rendered with the TimGM6mb SoundFont (Debian ``timgm6mb-soundfont``), which
no training or tuning audio of this project may use:

- ``essen/``: folk-song melodies from music21's ``essenFolksong`` collection, one per song
  book spread over the collection, alone (no reference accompaniment exists).
- ``monteverdi/``: Monteverdi madrigals: the top voice is the "vocal", the other four voices
  together the real accompaniment, first ``--quarters`` quarter notes of each.

Choosing defaults, thresholds or variants on these figures is tuning: use the tuning sets
(bench/make_heldout_chorales.py, bench/make_heldout_styles.py) for that.
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from pathlib import Path

import numpy as np

from samuel_live.train.chorales import Note, render_midi, write_midi

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
MELODY_PROGRAMS = (53, 52, 73, 71, 68, 40, 65, 78, 22, 56)  # oohs, aahs, flute, clarinet,
# oboe, violin, alto sax, whistle, harmonica, trumpet
ACCOMP_PROGRAMS = (0, 19, 48, 24, 46, 4)  # piano, church organ, strings, guitar, harp, e-piano


def _notes(part: object, max_quarters: float) -> tuple[Note, ...]:
    out = []
    for n in part.stripTies().flatten().notes:  # type: ignore[attr-defined]
        length = float(n.quarterLength)
        if length <= 0 or n.offset >= max_quarters:
            continue
        for p in n.pitches:
            out.append(Note(float(n.offset), length, int(p.midi)))
    return tuple(sorted(out, key=lambda x: (x.start, x.pitch)))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())[:40]


def essen_melodies(count: int, max_quarters: float = 64.0) -> list[tuple[str, tuple[Note, ...]]]:
    """One song (24+ notes) per essenFolksong book, books in name order, then a second pass."""
    from music21 import corpus

    books = sorted(p.stem for p in corpus.getComposer("essenFolksong"))
    out: list[tuple[str, tuple[Note, ...]]] = []
    for rnd in range(4):
        for book in books:
            if len(out) == count:
                return out
            start = 1 + (zlib.crc32(book.encode()) + 17 * rnd) % 40
            for number in range(start, start + 6):
                try:
                    score = corpus.parse(f"essenFolksong/{book}", number=number)
                except Exception:  # noqa: BLE001 - a book without this number: try the next
                    continue
                if score is None or not hasattr(score, "parts") or not score.parts:
                    continue
                notes = _notes(score.parts[0], max_quarters)
                if len(notes) >= 24 and not any(n.start == m.start for n, m in
                                                zip(notes, notes[1:], strict=False)):
                    out.append((f"{len(out):02d}_{book}_{number}", notes))
                    break
    return out


def monteverdi_pieces(count: int, max_quarters: float = 96.0) -> list[tuple[str, tuple, tuple]]:
    """(name, top voice, lower voices) of the first ``count`` Monteverdi madrigals."""
    from music21 import corpus

    files = sorted(str(p) for p in corpus.getComposer("monteverdi") if p.suffix == ".mxl")
    out = []
    for f in files:
        if len(out) == count:
            break
        score = corpus.parse(f)
        parts = [_notes(p, max_quarters) for p in score.parts]
        if len(parts) < 3 or len(parts[0]) < 16:
            continue
        out.append((f"{len(out):02d}_{_slug(Path(f).stem)}", parts[0], tuple(parts[1:])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/reserved"))
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--soundfont", type=Path, default=TIMGM)
    ap.add_argument("--only", choices=("essen", "monteverdi"))
    args = ap.parse_args()
    if not args.soundfont.exists():
        raise SystemExit(f"{args.soundfont} is missing: `apt-get install timgm6mb-soundfont`")
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "essen"):
            folder = args.out / "essen"
            folder.mkdir(parents=True, exist_ok=True)
            for i, (name, notes) in enumerate(essen_melodies(args.count)):
                program = MELODY_PROGRAMS[i % len(MELODY_PROGRAMS)]
                midi = Path(tmp) / f"{name}.mid"
                write_midi([notes], midi, program=program, bpm=float(rng.uniform(80, 130)),
                           seed=i)
                render_midi(midi, folder / f"{name}_vocal.wav", soundfont=args.soundfont)
                print(f"essen {name}: program {program}", flush=True)
        if args.only in (None, "monteverdi"):
            folder = args.out / "monteverdi"
            folder.mkdir(parents=True, exist_ok=True)
            for i, (name, top, lower) in enumerate(monteverdi_pieces(args.count)):
                bpm = float(rng.uniform(90, 140))
                jobs = (("vocal", [top], MELODY_PROGRAMS[i % len(MELODY_PROGRAMS)], 93),
                        ("accomp", list(lower), ACCOMP_PROGRAMS[i % len(ACCOMP_PROGRAMS)], 85))
                for kind, voices, program, velocity in jobs:
                    midi = Path(tmp) / f"{name}_{kind}.mid"
                    write_midi(voices, midi, program=program, bpm=bpm,
                               velocity_base=velocity, seed=2 * i + (kind == "accomp"))
                    render_midi(midi, folder / f"{name}_{kind}.wav", soundfont=args.soundfont)
                print(f"monteverdi {name}: {len(lower)} lower voices", flush=True)


if __name__ == "__main__":
    main()
