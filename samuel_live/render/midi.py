"""A Standard MIDI File for a result's notes: type 1, a tempo track (tempo and time signature)
and one note track, 480 ticks per quarter note, optionally quantised to a grid.

Written by hand (the format is small and fixed) so the core needs no MIDI library; the tests
read every file back with an independent one (mido).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from fractions import Fraction

from samuel_live.errors import InvalidArgumentError
from samuel_live.render.notes import Note
from samuel_live.timing import MusicalTime

PPQ = 480  # ticks per quarter note
TRACK_NAME = "SAMUeL accompaniment"
GRIDS = ("1/1", "1/2", "1/4", "1/8", "1/16", "1/32", "1/4T", "1/8T", "1/16T")


def parse_grid(text: str | None) -> Fraction | None:
    """'1/16' -> 1/16 of a whole note; a 'T' suffix is the triplet grid; None/'off' -> None."""
    if text is None or text.lower() in ("", "off", "none"):
        return None
    if text not in GRIDS:
        raise InvalidArgumentError(
            f"quantize grid {text!r} is not one of {', '.join(GRIDS)} (or off)")
    base = Fraction(text.rstrip("T"))
    return base * Fraction(2, 3) if text.endswith("T") else base


def midi_file(notes: Iterable[Note], tempo: MusicalTime, *, grid: Fraction | None = None,
              program: int = 0, channel: int = 0) -> bytes:
    """The bytes of a type-1 SMF holding ``notes`` at ``tempo`` (and its meter)."""
    if not 0 <= program <= 127 or not 0 <= channel <= 15:
        raise InvalidArgumentError(f"MIDI program must be 0..127 and channel 0..15, got {program}, "
                          f"{channel}")
    per_s = tempo.bpm / 60.0 * PPQ
    step = int(grid * 4 * PPQ) if grid is not None else 0

    def tick(seconds: float) -> int:
        t = round(seconds * per_s)
        return int(round(t / step) * step) if step else t

    spans: dict[int, list[tuple[int, int, int]]] = {}
    for n in notes:
        on = tick(n.start_s)
        off = max(tick(n.end_s), on + (step or 1))
        spans.setdefault(n.pitch, []).append((on, off, n.velocity))
    events: list[tuple[int, int, bytes]] = []
    for pitch, items in spans.items():
        items.sort()
        for k, (on, off, vel) in enumerate(items):
            if k + 1 < len(items):
                off = min(off, items[k + 1][0])  # a repeated note ends where the next begins
            if off <= on:
                continue
            events.append((on, 1, bytes([0x90 | channel, pitch, vel])))
            events.append((off, 0, bytes([0x80 | channel, pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons on the same tick
    notes_track = [(0, _meta(0x03, TRACK_NAME.encode())),
                   (0, bytes([0xC0 | channel, program]))] + [(t, data) for t, _, data in events]
    usec = int(round(60_000_000 / tempo.bpm))
    meter = bytes([tempo.beats_per_bar, int(math.log2(tempo.beat_unit)), 24, 8])
    tempo_track = [(0, _meta(0x58, meter)), (0, _meta(0x51, usec.to_bytes(3, "big")))]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, 2, PPQ)
    return header + _track(tempo_track) + _track(notes_track)


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(data)) + data


def _track(events: list[tuple[int, bytes]]) -> bytes:
    body, now = bytearray(), 0
    for t, data in events:
        body += _vlq(t - now) + data
        now = t
    body += _vlq(0) + _meta(0x2F, b"")
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
