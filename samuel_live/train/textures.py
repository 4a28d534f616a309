"""Accompaniment textures generated from a piece's harmony: block chords, arpeggios, Alberti bass,
a bass line with drums, and strummed guitar.

The harmony comes from the piece itself (``harmony``): for each beat or half-bar, the pitch
classes the lower parts sound there, weighted by how long they sound, with the lowest sounding
note as the bass. Textures place only those pitch classes (drums aside), on the piece's own bar
and beat grid, and strictly below the lowest melody note sounding at the same time, so the
accompaniment never crosses the tune. All times are in quarter notes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from samuel_live.train.chorale_midi import Note

TEXTURES = ("block", "arpeggio", "alberti", "bassdrums", "strum")
LOWEST_PITCH = 28  # E1: nothing is voiced below the lowest string of a bass guitar
BASS_TOP = 55  # bass notes sit at or below G3 where the melody leaves room
MAX_PCS = 4
MIN_WEIGHT = 0.25  # a pitch class must sound for a quarter of the span to count as harmony
STRUM_STEP = 0.03  # quarter notes between strings of a strum
KICK, SNARE, HAT = 36, 38, 42  # General MIDI drum keys (channel 10)


@dataclass(frozen=True)
class Bar:
    """One bar: where it starts, how long it is, its beat length and its full (nominal) length."""

    start: float
    length: float
    beat: float
    nominal: float

    def origin(self, first: bool = False) -> float:
        """Where the bar's first beat falls: a short first bar (a pickup) counts back from its
        end, so its beats are the last beats of a full bar."""
        short = first and self.length < self.nominal - 1e-6
        return self.start - (self.nominal - self.length) if short else self.start

    def beats(self, first: bool = False) -> list[tuple[float, int]]:
        """(onset, beat number from 0) of the beats inside the bar."""
        origin = self.origin(first)
        n = max(1, round(self.nominal / self.beat))
        return [
            (origin + i * self.beat, i)
            for i in range(n)
            if self.start - 1e-6 <= origin + i * self.beat < self.start + self.length - 1e-6
        ]


@dataclass(frozen=True)
class Chord:
    """The harmony over one span: pitch classes (bass first) and the highest pitch allowed."""

    start: float
    length: float
    pcs: tuple[int, ...]
    ceiling: int
    beat: float
    beat_no: int  # the span's first beat within its bar, from 0
    bar_beats: int

    @property
    def downbeat(self) -> bool:
        """Whether the span starts on the bar's first beat."""
        return self.beat_no == 0

    @property
    def div(self) -> int:
        """Subdivisions of the beat: 3 for compound (dotted) beats, else 2."""
        return 3 if round(self.beat * 4) % 3 == 0 else 2

    @property
    def bass(self) -> int:
        """Pitch class of the bass."""
        return self.pcs[0]


@dataclass(frozen=True)
class Hit:
    """One generated note: start and length in quarter notes, MIDI pitch (a drum key on the drum
    part), velocity."""

    start: float
    length: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Part:
    """One instrument of a texture; ``role`` picks its patch ('chords', 'bass', 'pad' or
    'drums'; drums play on channel 10)."""

    role: str
    hits: tuple[Hit, ...]


def spans(bars: Sequence[Bar], per: str) -> list[tuple[float, float, float, int, int]]:
    """(start, length, beat, beat number, beats in the bar) of each harmonic span: every beat
    (``per='beat'``) or every half bar (``'halfbar'``; a bar of an odd number of beats is one
    span)."""
    out = []
    for i, bar in enumerate(bars):
        beats = bar.beats(first=i == 0)
        if not beats:
            continue
        n = max(1, round(bar.nominal / bar.beat))
        step = (n // 2 if n % 2 == 0 else n) if per == "halfbar" else 1
        kept = [(t, k) for t, k in beats if k % step == 0]
        if not kept or kept[0][0] > bar.start + 1e-6:  # a span must cover the bar's start
            kept = [beats[0], *kept]
        ends = [t for t, _ in kept[1:]] + [bar.start + bar.length]
        for (t, k), end in zip(kept, ends, strict=True):
            out.append((t, end - t, bar.beat, k, n))
    return out


def harmony(
    melody: Sequence[Note],
    lower: Sequence[Sequence[Note]],
    bars: Sequence[Bar],
    per: str = "beat",
) -> list[Chord]:
    """The piece's harmony per span from the lower parts (see the module docstring); spans where
    the lower parts rest repeat the previous chord."""
    low_all = min((n.pitch for n in melody), default=72)
    lows, highs = _Sweep([n for part in lower for n in part]), _Sweep(list(melody))
    chords: list[Chord] = []
    prev: tuple[int, ...] | None = None
    for start, length, beat, beat_no, bar_beats in spans(bars, per):
        end = start + length
        hits = lows.overlapping(start, end)
        pcs = _weighted_pcs(hits, start, end) if hits else prev
        if pcs is None:
            continue
        prev = pcs
        over = [n.pitch for n in highs.overlapping(start, end)]
        ceiling = (min(over) if over else low_all) - 1
        chords.append(Chord(start, length, pcs, ceiling, beat, beat_no, bar_beats))
    return chords


class _Sweep:
    """Notes overlapping a span, for spans queried in increasing order."""

    def __init__(self, notes: Sequence[Note]) -> None:
        self.notes = sorted(notes, key=lambda n: n.start)
        self.next = 0
        self.active: list[Note] = []

    def overlapping(self, start: float, end: float) -> list[Note]:
        while self.next < len(self.notes) and self.notes[self.next].start < end - 1e-9:
            self.active.append(self.notes[self.next])
            self.next += 1
        self.active = [n for n in self.active if n.start + n.length > start + 1e-9]
        return [n for n in self.active if n.start < end - 1e-9]


def _weighted_pcs(hits: Sequence[Note], start: float, end: float) -> tuple[int, ...]:
    weight: dict[int, float] = {}
    for n in hits:
        overlap = min(end, n.start + n.length) - max(start, n.start)
        weight[n.pitch % 12] = weight.get(n.pitch % 12, 0.0) + overlap
    sounding = [n for n in hits if n.start <= start + 1e-9] or list(hits)
    bass = min(sounding, key=lambda n: n.pitch).pitch % 12
    span = end - start
    others = sorted((pc for pc in weight if pc != bass), key=lambda pc: (-weight[pc], pc))
    others = [pc for pc in others if weight[pc] >= MIN_WEIGHT * span]
    return (bass, *others[: MAX_PCS - 1])


def below(pc: int, ceiling: int) -> int:
    """The highest pitch of pitch class ``pc`` at or below ``ceiling``."""
    return ceiling - ((ceiling - pc) % 12)


def close_voicing(chord: Chord, top: int) -> list[int]:
    """Every chord pitch class once, within the octave at or below ``top``, ascending."""
    return sorted(max(below(pc, top), LOWEST_PITCH + (pc - LOWEST_PITCH) % 12) for pc in chord.pcs)


def bass_pitch(chord: Chord, pc: int | None = None) -> int:
    """A bass register pitch (default: the chord's bass) an octave or more below the voicing."""
    p = below(chord.bass if pc is None else pc, min(chord.ceiling - 12, BASS_TOP))
    return p + 12 if p < LOWEST_PITCH else p


def _vel(rng: np.random.Generator, base: int, accent: bool = False) -> int:
    return int(np.clip(base + (10 if accent else 0) + rng.normal(0, 5), 25, 120))


def _grid(chord: Chord, step: float) -> list[float]:
    n = max(1, round(chord.length / step))
    return [chord.start + i * step for i in range(n) if i * step < chord.length - 1e-6]


def block(chords: Sequence[Chord], rng: np.random.Generator, base: int = 72) -> list[Part]:
    """Block chords: held per span, struck on every beat, or 'oom-pah' (bass, then chord on the
    off-beat)."""
    style = str(rng.choice(["hold", "beats", "oompah"]))
    upper, bass = [], []
    for c in chords:
        voicing = close_voicing(c, c.ceiling)
        if style == "hold":
            upper += [Hit(c.start, c.length, p, _vel(rng, base, c.downbeat)) for p in voicing]
            bass.append(Hit(c.start, c.length, bass_pitch(c), _vel(rng, base, c.downbeat)))
            continue
        for t in _grid(c, c.beat):
            length = min(c.beat, c.start + c.length - t)
            if style == "beats":
                upper += [Hit(t, 0.9 * length, p, _vel(rng, base, c.downbeat)) for p in voicing]
                bass.append(Hit(t, 0.9 * length, bass_pitch(c), _vel(rng, base)))
            else:  # bass on the beat, the chord on its after-beat(s)
                sub = c.beat / c.div
                bass.append(Hit(t, min(sub, length), bass_pitch(c), _vel(rng, base, c.downbeat)))
                for k in range(1, c.div):
                    if k * sub < length - 1e-6:
                        upper += [Hit(t + k * sub, sub, p, _vel(rng, base - 8)) for p in voicing]
    return [Part("chords", tuple(upper)), Part("bass", tuple(bass))]


def arpeggio(chords: Sequence[Chord], rng: np.random.Generator, base: int = 70) -> list[Part]:
    """Broken chords from the bass up through a close voicing (optionally back down), in
    eighths or sixteenths of the beat; each note rings to the end of its span."""
    fine = int(rng.integers(1, 3))  # 1: eighths (or triplet eighths), 2: twice as fast
    updown = bool(rng.integers(0, 2))
    hits = []
    for c in chords:
        ladder = [bass_pitch(c), *close_voicing(c, c.ceiling)]
        if updown:
            ladder += ladder[-2:0:-1]
        for i, t in enumerate(_grid(c, c.beat / (c.div * fine))):
            end = c.start + c.length
            hits.append(Hit(t, end - t, ladder[i % len(ladder)], _vel(rng, base, i == 0)))
    return [Part("chords", tuple(hits))]


def alberti(chords: Sequence[Chord], rng: np.random.Generator, base: int = 68) -> list[Part]:
    """Alberti bass: low-high-middle-high in eighths (triplet eighths of a dotted beat), with
    the chord's bass as the low note."""
    hits = []
    for c in chords:
        top = min(c.ceiling, BASS_TOP + 12)
        low = below(c.bass, top - 7)
        low = low if low >= LOWEST_PITCH else below(c.bass, top)
        rest = [p for p in close_voicing(c, top) if p > low and p % 12 != c.bass]
        if len(rest) < 2 and low + 12 <= top:
            rest = sorted({*rest, low + 12})
        rest = rest or [low]
        mid, high = rest[0], rest[-1]
        cycle = (low, high, mid, high)
        sub = c.beat / c.div
        for i, t in enumerate(_grid(c, sub)):
            length = min(sub, c.start + c.length - t)
            hits.append(Hit(t, length, cycle[i % 4], _vel(rng, base, i == 0)))
    return [Part("chords", tuple(hits))]


def bassdrums(chords: Sequence[Chord], rng: np.random.Generator, base: int = 80) -> list[Part]:
    """A bass line (the bass on the span's first beat, other chord tones on the rest) with a
    soft kit (kick on the bar's first beat and on its middle beat in even meters, snare on the
    other beats, hi-hat on each beat's subdivisions), and sometimes a quiet sustained pad."""
    drums_base = int(rng.integers(40, 61))
    pad = bool(rng.integers(0, 2))
    bass, kit, pads = [], [], []
    for c in chords:
        tones = [c.bass, *c.pcs[1:]]
        for i, t in enumerate(_grid(c, c.beat)):
            length = min(c.beat, c.start + c.length - t)
            pc = tones[0] if i == 0 else tones[int(rng.integers(0, len(tones)))]
            bass.append(Hit(t, 0.9 * length, bass_pitch(c, pc), _vel(rng, base, i == 0)))
            k = (c.beat_no + i) % c.bar_beats
            kick = k == 0 or (c.bar_beats % 2 == 0 and 2 * k == c.bar_beats)
            kit.append(Hit(t, 0.25, KICK if kick else SNARE, _vel(rng, drums_base)))
            for j in range(c.div):
                kit.append(Hit(t + j * c.beat / c.div, 0.2, HAT, _vel(rng, drums_base - 12)))
        if pad:
            pads += [Hit(c.start, c.length, p, _vel(rng, 50)) for p in close_voicing(c, c.ceiling)]
    parts = [Part("bass", tuple(bass)), Part("drums", tuple(kit))]
    return [*parts, Part("pad", tuple(pads))] if pad else parts


STRUM_PATTERNS = ((1, 0), (1, 1), (1, 0, 1, 1), (1, 1, 0, 1))  # per subdivision: 1 strum, 0 rest


def strum(chords: Sequence[Chord], rng: np.random.Generator, base: int = 72) -> list[Part]:
    """Strummed guitar: a five-to-six note voicing (bass lowest) struck down (low to high) on
    the beat and up (high to low) off it, in one of a few patterns over the beat's
    subdivisions."""
    pattern = STRUM_PATTERNS[int(rng.integers(0, len(STRUM_PATTERNS)))]
    hits = []
    for c in chords:
        top = min(c.ceiling, 76)
        upper = close_voicing(c, top)
        lower = [p - 12 for p in upper if p - 12 > bass_pitch(c) and p - 12 >= LOWEST_PITCH]
        voicing = [bass_pitch(c), *sorted(lower)[-2:], *upper]
        slots = _grid(c, c.beat / c.div)
        for i, t in enumerate(slots):
            step = round((t - c.start) / (c.beat / c.div))
            if not pattern[step % len(pattern)]:
                continue
            down = step % c.div == 0
            order = voicing if down else voicing[::-1][: max(3, len(voicing) - 2)]
            end = slots[i + 1] if i + 1 < len(slots) else c.start + c.length
            for k, p in enumerate(order):
                on = t + k * STRUM_STEP
                hits.append(Hit(on, max(0.05, end - on), p, _vel(rng, base if down else base - 12)))
    return [Part("chords", tuple(hits))]


GENERATORS: dict[str, Callable[[Sequence[Chord], np.random.Generator], list[Part]]] = {
    "block": block,
    "arpeggio": arpeggio,
    "alberti": alberti,
    "bassdrums": bassdrums,
    "strum": strum,
}


def texture(name: str, chords: Sequence[Chord], rng: np.random.Generator) -> list[Part]:
    """Generate texture ``name`` (one of ``TEXTURES``) over ``chords``."""
    return GENERATORS[name](chords, rng)
