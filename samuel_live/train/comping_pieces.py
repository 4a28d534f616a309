"""Pieces of music21's corpus as a top line (the "vocal"), lower parts and a bar grid; texture
parts as MIDI; rendered pairs concatenated into whole-window sessions."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samuel_live.errors import SamuelError
from samuel_live.train.chorale_midi import TICKS_PER_BEAT, Note
from samuel_live.train.chorales import _part_notes
from samuel_live.train.textures import Bar, Part

TOP_NAMES = re.compile(r"soprano|cantus|superius|discantus", re.IGNORECASE)
MIN_COVER = 0.4  # a melody candidate sounds during at least 40% of the piece
GAP_S = 1.0
SESSION_WINDOWS = 3


class PieceError(SamuelError):
    """A corpus piece has no usable top line and lower parts; the builder skips it."""


@dataclass(frozen=True)
class Piece:
    """A piece's top line, the notes under it (one tuple per part) and its bars."""

    name: str
    melody: tuple[Note, ...]
    lower: tuple[tuple[Note, ...], ...]
    bars: tuple[Bar, ...]

    @property
    def end(self) -> float:
        """Where the last bar ends (quarter notes)."""
        return self.bars[-1].start + self.bars[-1].length if self.bars else 0.0


def load_piece(name: str) -> Piece:
    """Parse corpus file ``name``; the top line is the part named soprano/cantus (else the
    highest part that sounds through most of the piece), reduced to its highest note per onset.
    Its other notes join the lower parts."""
    from music21 import corpus, stream

    score = corpus.parse(name)
    if isinstance(score, stream.Opus):  # ABC part-books (Josquin) come as one tune per part
        score = score.mergeScores()
    parts = [(p, _part_notes(p)) for p in score.parts]
    parts = [(p, notes) for p, notes in parts if notes]
    if len(parts) < 2:
        raise PieceError(f"{name} has fewer than two sounding parts; skip it")
    top = _top_index([p.partName or "" for p, _ in parts], [n for _, n in parts])
    melody, rest = skyline(parts[top][1])
    lower = [n for i, (_, n) in enumerate(parts) if i != top]
    if rest:
        lower.append(rest)
    bars = _bars(parts[top][0])
    if not bars:
        raise PieceError(f"{name} has no measures; skip it")
    return Piece(name, melody, tuple(tuple(p) for p in lower), tuple(bars))


def _top_index(names: Sequence[str], parts: Sequence[Sequence[Note]]) -> int:
    for i, name in enumerate(names):
        if TOP_NAMES.search(name):
            return i
    span = max(n.start + n.length for p in parts for n in p)

    def cover(p: Sequence[Note]) -> float:
        return sum(n.length for n in skyline(p)[0]) / span

    def median(p: Sequence[Note]) -> float:
        pitches = sorted(n.pitch for n in p)
        return pitches[len(pitches) // 2]

    able = [i for i, p in enumerate(parts) if cover(p) >= MIN_COVER] or list(range(len(parts)))
    return max(able, key=lambda i: (median(parts[i]), -i))


def skyline(notes: Sequence[Note]) -> tuple[tuple[Note, ...], tuple[Note, ...]]:
    """(highest note of each onset, cut where the next onset starts; every other note)."""
    by_start: dict[float, list[Note]] = {}
    for n in notes:
        by_start.setdefault(n.start, []).append(n)
    starts = sorted(by_start)
    line, rest = [], []
    for i, t in enumerate(starts):
        group = sorted(by_start[t], key=lambda n: n.pitch)
        top = group[-1]
        nxt = starts[i + 1] if i + 1 < len(starts) else top.start + top.length
        line.append(Note(top.start, min(top.length, nxt - top.start), top.pitch))
        rest += group[:-1]
    return tuple(line), tuple(rest)


def _bars(part: object) -> list[Bar]:
    from music21 import meter

    bars = []
    ts = meter.TimeSignature("4/4")
    for m in part.getElementsByClass("Measure"):  # type: ignore[attr-defined]
        if m.timeSignature is not None:
            ts = m.timeSignature
        length = float(m.duration.quarterLength)
        if length <= 0:
            continue
        nominal = float(ts.barDuration.quarterLength)
        beat = float(ts.beatDuration.quarterLength)
        bars.append(Bar(float(m.offset), length, beat, nominal))
    return bars


def excerpt(piece: Piece, start_bar: int, max_quarters: float) -> Piece:
    """Bars from ``start_bar`` on, as many as fit in ``max_quarters`` (at least one), shifted to
    start at 0; notes are clipped to the excerpt."""
    bars = list(piece.bars[start_bar:])
    t0 = bars[0].start
    kept = [b for b in bars if b.start + b.length - t0 <= max_quarters + 1e-6] or bars[:1]
    t1 = kept[-1].start + kept[-1].length

    def clip(notes: Sequence[Note]) -> tuple[Note, ...]:
        out = []
        for n in notes:
            a, b = max(n.start, t0), min(n.start + n.length, t1)
            if b - a > 1e-6:
                out.append(Note(a - t0, b - a, n.pitch))
        return tuple(out)

    shifted = [Bar(b.start - t0, b.length, b.beat, b.nominal) for b in kept]
    if start_bar > 0:  # a mid-piece bar is complete, never a pickup
        first = shifted[0]
        full = first.length >= first.nominal - 1e-6
        shifted[0] = Bar(0.0, first.length, first.beat, first.nominal if full else first.length)
    lower = tuple(c for c in (clip(p) for p in piece.lower) if c)
    return Piece(piece.name, clip(piece.melody), lower, tuple(shifted))


def melody_print(melody: Sequence[Note], notes: int = 24) -> str:
    """Transposition-free digest of a line's first ``notes`` onsets (pitch steps and lengths),
    to recognise a held-out chorale's soprano inside another score."""
    head = list(melody)[:notes]
    ref = head[0].pitch if head else 0
    text = ";".join(f"{n.length:g},{n.pitch - ref}" for n in head)
    return f"{zlib.crc32(text.encode()):08x}"


def write_parts(
    parts: Sequence[Part], programs: dict[str, int], path: Path, *, bpm: float, transpose: int
) -> None:
    """One MIDI track per texture part: pitched parts transposed on channels 1-3 with their
    role's patch, drums untransposed on channel 10 (GM standard kit)."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]))
    for i, part in enumerate(parts):
        drums = part.role == "drums"
        channel, shift = (9, 0) if drums else (i, transpose)
        events = []
        for h in part.hits:
            on = round(h.start * TICKS_PER_BEAT)
            off = max(on + 1, round((h.start + h.length) * TICKS_PER_BEAT))
            pitch = int(np.clip(h.pitch + shift, 0, 127))
            events += [(on, 1, pitch, h.velocity), (off, 0, pitch, 0)]
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        track = mido.MidiTrack(
            [
                mido.Message(
                    "program_change", channel=channel, program=0 if drums else programs[part.role]
                )
            ]
        )
        now = 0
        for tick, kind, pitch, velocity in events:
            kind_name = "note_on" if kind else "note_off"
            track.append(
                mido.Message(
                    kind_name, channel=channel, note=pitch, velocity=velocity, time=tick - now
                )
            )
            now = tick
        track.append(mido.Message("control_change", channel=channel, control=123, value=0, time=0))
        mid.tracks.append(track)
    with open(path, "wb") as f:
        mid.save(file=f)


class SessionWriter:
    """Concatenates rendered pairs (1 s gaps) and writes each full run of ``SESSION_WINDOWS``
    windows as OUT/<session>/vocals.wav + accompaniment.wav."""

    def __init__(self, out: Path, prefix: str = "comping") -> None:
        from samuel_live import WINDOW_SAMPLES

        self.out, self.prefix = out, prefix
        self.chunk = SESSION_WINDOWS * WINDOW_SAMPLES
        self.vocal: list[np.ndarray] = []
        self.accomp: list[np.ndarray] = []
        self.pending: list[str] = []
        self.filled = 0
        self.sessions: list[dict] = []

    def add(self, label: str, vocal: np.ndarray, accomp: np.ndarray) -> None:
        """Append one pair (padded to its longer half, then a gap); flush full sessions."""
        n = max(vocal.shape[1], accomp.shape[1]) + round(GAP_S * 44100)
        for buf, x in ((self.vocal, vocal), (self.accomp, accomp)):
            buf.append(np.pad(x.astype(np.float32, copy=False), ((0, 0), (0, n - x.shape[1]))))
        self.pending.append(label)
        self.filled += n
        while self.filled >= self.chunk:
            self._flush(self.chunk)

    def close(self) -> None:
        """Write what is left if it holds at least one window (prepare drops shorter tails)."""
        from samuel_live import WINDOW_SAMPLES

        if self.filled >= WINDOW_SAMPLES:
            self._flush(self.filled)

    def _flush(self, n: int) -> None:
        from samuel_live.audio.io import write_audio_atomic

        vocal, accomp = np.concatenate(self.vocal, axis=1), np.concatenate(self.accomp, axis=1)
        name = f"{self.prefix}_{len(self.sessions):04d}"
        folder = self.out / name
        folder.mkdir(parents=True, exist_ok=True)
        write_audio_atomic(folder / "vocals.wav", np.clip(vocal[:, :n], -1, 1), bit_depth=16)
        write_audio_atomic(
            folder / "accompaniment.wav", np.clip(accomp[:, :n], -1, 1), bit_depth=16
        )
        self.sessions.append(
            {"name": name, "seconds": round(n / 44100, 2), "pieces": list(self.pending)}
        )
        self.vocal, self.accomp = [vocal[:, n:]], [accomp[:, n:]]
        self.filled -= n
        self.pending = self.pending[-1:] if self.filled > 0 else []
