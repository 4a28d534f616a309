"""Accompaniment textures: chord tones only, on the bar/beat grid, below the melody."""

from __future__ import annotations

import numpy as np
import pytest

from samuel_live.train import textures
from samuel_live.train.chorale_midi import Note
from samuel_live.train.textures import TEXTURES, Bar, Chord, harmony, spans, texture

# Two bars of 4/4 after a one-beat pickup: C major, then A minor / F major, then G7.
BARS_44 = (Bar(0.0, 1.0, 1.0, 4.0), Bar(1.0, 4.0, 1.0, 4.0), Bar(5.0, 4.0, 1.0, 4.0))
LOWER = (
    (Note(0, 1, 48), Note(1, 2, 48), Note(3, 2, 45), Note(5, 2, 41), Note(7, 2, 43)),  # bass
    (Note(0, 1, 55), Note(1, 2, 55), Note(3, 2, 57), Note(5, 2, 57), Note(7, 2, 53)),
    (Note(0, 1, 64), Note(1, 2, 64), Note(3, 2, 60), Note(5, 2, 60), Note(7, 2, 59)),
)
MELODY = (Note(0, 1, 67), Note(1, 2, 72), Note(3, 2, 69), Note(5, 2, 69), Note(7, 2, 67))
EXPECTED = {0: {0, 4, 7}, 1: {0, 4, 7}, 3: {9, 0}, 5: {5, 9, 0}, 7: {7, 5, 11}}


def chord_at(chords: list[Chord], t: float) -> Chord:
    return max((c for c in chords if c.start <= t + 1e-9), key=lambda c: c.start)


def pitched(parts: list[textures.Part]) -> list[textures.Hit]:
    return [h for p in parts if p.role != "drums" for h in p.hits]


def test_harmony_takes_the_lower_parts_pitch_classes_bass_first() -> None:
    chords = harmony(MELODY, LOWER, BARS_44, "beat")
    assert [c.start for c in chords] == [float(t) for t in range(9)]
    for start, pcs in EXPECTED.items():
        c = chord_at(chords, start)
        assert (
            set(c.pcs) == pcs
            and c.bass == LOWER[0][[n.start for n in LOWER[0]].index(start)].pitch % 12
        )
    assert [c.ceiling for c in chords[:3]] == [66, 71, 71]  # one below the lowest melody note


def test_harmony_ignores_passing_tones_and_repeats_through_rests() -> None:
    lower = ((Note(0, 4, 48),), (Note(0, 3.8, 64), Note(3.8, 0.2, 65)))  # F is a short passing tone
    bars = (Bar(0, 4, 4, 4), Bar(4, 4, 4, 4))  # the second bar is silent below the melody
    chords = harmony((Note(0, 8, 72),), lower, bars, "beat")
    assert [c.pcs for c in chords] == [(0, 4), (0, 4)]


@pytest.mark.parametrize("name", TEXTURES)
@pytest.mark.parametrize("per", ["beat", "halfbar"])
def test_every_texture_plays_only_chord_tones_below_the_melody(name: str, per: str) -> None:
    chords = harmony(MELODY, LOWER, BARS_44, per)
    parts = texture(name, chords, np.random.default_rng(3))
    hits = pitched(parts)
    assert len(hits) >= len(chords)
    for h in hits:
        assert h.pitch % 12 in chord_at(chords, h.start).pcs, (name, h)
        over = [
            m.pitch for m in MELODY if m.start < h.start + h.length and m.start + m.length > h.start
        ]
        assert all(h.pitch < p for p in over), (name, h)
        assert h.pitch >= textures.LOWEST_PITCH and 1 <= h.velocity <= 127


@pytest.mark.parametrize("name", TEXTURES)
def test_textures_sound_every_chord_tone(name: str) -> None:
    """Each span's texture covers the whole chord (a chord tone shifted or dropped shows)."""
    chords = harmony(MELODY, LOWER, BARS_44, "halfbar")
    hits = pitched(texture(name, chords, np.random.default_rng(1)))
    for c in (c for c in chords if c.length >= 2):  # room for every tone
        inside = {h.pitch % 12 for h in hits if c.start <= h.start < c.start + c.length}
        if name == "bassdrums":  # the bass walks through chord tones; the pad may be off
            assert c.bass in inside and inside <= set(c.pcs)
        else:
            assert inside == set(c.pcs), (name, c)


def test_spans_follow_the_meter_and_the_pickup() -> None:
    beat = spans(BARS_44, "beat")
    assert [s[0] for s in beat if s[3] == 0] == [1.0, 5.0]
    assert [s[3] for s in beat] == [
        3,
        0,
        1,
        2,
        3,
        0,
        1,
        2,
        3,
    ]  # downbeats: bar starts, not the pickup
    half = spans(BARS_44, "halfbar")
    assert [(s[0], s[1]) for s in half] == [(0, 1), (1, 2), (3, 2), (5, 2), (7, 2)]
    waltz = (Bar(0, 3, 1, 3), Bar(3, 3, 1, 3))
    assert [(s[0], s[1], s[3]) for s in spans(waltz, "halfbar")] == [(0, 3, 0), (3, 3, 0)]
    six_eight = (Bar(0, 3, 1.5, 3),)
    assert [(s[0], s[1]) for s in spans(six_eight, "beat")] == [(0, 1.5), (1.5, 1.5)]


@pytest.mark.parametrize("bars", [BARS_44, (Bar(0, 3, 1.5, 3), Bar(3, 3, 1.5, 3))])
@pytest.mark.parametrize("name", TEXTURES)
def test_onsets_lie_on_the_beat_grid(name: str, bars: tuple[Bar, ...]) -> None:
    """Onsets fall on sixteenths of a quarter beat or sixteenths of a dotted beat; a strum's later
    strings follow its first within a few milliseconds' worth of quarter notes."""
    lower = tuple((Note(0, 6, p),) for p in (36, 43, 52))
    chords = harmony((Note(0, 9, 76),), lower, bars, "beat")
    beat = bars[0].beat
    grid = beat / 4 if beat == 1.0 else beat / 6
    for part in texture(name, chords, np.random.default_rng(0)):
        for h in part.hits:
            off = (h.start / grid) % 1.0
            slack = 6 * textures.STRUM_STEP / grid if name == "strum" else 1e-6
            assert off < slack + 1e-6 or off > 1 - 1e-6, (name, part.role, h)


def test_drums_accent_downbeats_only_in_the_bassdrums_texture() -> None:
    chords = harmony(MELODY, LOWER, BARS_44, "beat")
    for name in TEXTURES:
        roles = {p.role for p in texture(name, chords, np.random.default_rng(2))}
        assert ("drums" in roles) == (name == "bassdrums")
    kit = next(
        p for p in texture("bassdrums", chords, np.random.default_rng(2)) if p.role == "drums"
    )
    kicks = {h.start for h in kit.hits if h.pitch == textures.KICK}
    assert {1.0, 5.0} <= kicks and 2.0 not in kicks
    assert max(h.velocity for h in kit.hits) <= 85  # kept moderate


def test_texture_is_deterministic_for_a_seed() -> None:
    chords = harmony(MELODY, LOWER, BARS_44, "beat")
    for name in TEXTURES:
        a = texture(name, chords, np.random.default_rng(9))
        assert a == texture(name, chords, np.random.default_rng(9))
