"""The comping corpus builder: reserved collections and held-out chorales never get in; specs,
MIDI and sessions are what the stems layout needs."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from samuel_live import WINDOW_SAMPLES
from samuel_live.audio.io import read_audio
from samuel_live.train import chorales, comping
from samuel_live.train.chorale_midi import Note
from samuel_live.train.comping_pieces import (
    Piece,
    SessionWriter,
    excerpt,
    load_piece,
    melody_print,
    skyline,
    write_parts,
)
from samuel_live.train.textures import Bar, Hit, Part

HOLDOUT = chorales.load_holdout()


@pytest.mark.parametrize(
    "name",
    [
        "essenFolksong/han1.abc",
        "monteverdi/madrigal.3.1.mxl",
        "ryansMammoth/AaronsJig.abc",
        "bach/bwv14.5.mxl",  # held out
        "bach/bwv69.6-a.mxl",  # duplicate of a held-out chorale
        "bach/bwv430.krn",  # held out, another format
    ],
)
def test_reserved_and_held_out_pieces_are_refused(name: str) -> None:
    assert comping.excluded_reason(name, HOLDOUT) is not None
    with pytest.raises(comping.ReservedPieceError, match="may not be used"):
        comping.check_allowed(name, HOLDOUT)


@pytest.mark.parametrize(
    "name", ["bach/bwv1.6.mxl", "palestrina/Agnus_01.krn", "haydn/opus74no1/movement1.mxl"]
)
def test_ordinary_pieces_are_allowed(name: str) -> None:
    assert comping.excluded_reason(name, HOLDOUT) is None
    comping.check_allowed(name, HOLDOUT)


def test_candidates_from_the_real_corpus_leave_out_every_reserved_piece() -> None:
    files = comping.corpus_files()
    reserved = [f for f in files if f.split("/")[0] in comping.RESERVED]
    assert len(reserved) > 1000  # the corpus really holds them, so the filter is doing work
    groups = comping.candidates(files, HOLDOUT)
    chosen = [n for names in groups.values() for n in names]
    assert not [n for n in chosen if n.split("/")[0] in comping.RESERVED]
    banned = {*HOLDOUT["holdout"], *HOLDOUT["excluded_duplicates"]}
    assert not [n for n in chosen if n.rsplit(".", 1)[0] in banned]
    training = set(chorales.training_names(HOLDOUT))
    assert {n.rsplit(".", 1)[0] for n in groups["chorales"]} <= training
    assert len(groups["chorales"]) >= len(training) - 2
    assert len(chosen) == len({n.rsplit(".", 1)[0] for n in chosen})  # one file per piece
    assert min(len(v) for v in groups.values()) > 5


def test_a_top_line_equal_to_a_held_out_soprano_is_skipped(tmp_path: Path) -> None:
    held = HOLDOUT["holdout"][0]
    banned = comping.held_out_prints({"holdout": [held], "excluded_duplicates": []})
    assert melody_print(load_piece(held).melody) in banned
    spec = comping.make_spec("textures", held, 0, 0)
    job = comping.Job("textures", "bach", spec, tmp_path / "v.wav", tmp_path / "a.wav", banned)
    done, why = comping.run_job(job)
    assert done is None and "held-out chorale" in str(why)
    assert not (tmp_path / "v.wav").exists()


def test_specs_are_seeded_and_within_the_ranges() -> None:
    specs = [comping.make_spec("textures", f"palestrina/p{i}.krn", 0, 7) for i in range(200)]
    assert specs[0] == comping.make_spec("textures", "palestrina/p0.krn", 0, 7)
    assert specs[0] != comping.make_spec("textures", "palestrina/p0.krn", 0, 8)
    assert {s.texture for s in specs} == set(comping.TEXTURE_WEIGHTS)
    assert sum(s.texture == "bassdrums" for s in specs) < 0.3 * len(specs)  # drums: a minority
    assert {s.per for s in specs} == {"beat", "halfbar"}
    assert all(-5 <= s.transpose <= 6 and 60 <= s.beat_bpm <= 140 for s in specs)
    multi = comping.make_spec("multipart", "palestrina/p0.krn", 0, 7)
    assert multi.texture is None and multi.programs["parts"] in chorales.ACCOMP_PROGRAMS


def test_write_parts_transposes_pitched_parts_but_not_the_drums(tmp_path: Path) -> None:
    parts = [
        Part("chords", (Hit(0, 1, 60, 70), Hit(1, 1, 64, 70))),
        Part("bass", (Hit(0, 2, 40, 80),)),
        Part("drums", (Hit(0, 0.25, 36, 50),)),
    ]
    path = tmp_path / "t.mid"
    write_parts(parts, {"chords": 24, "bass": 33}, path, bpm=100, transpose=3)
    ons = [(m.channel, m.note) for m in mido.MidiFile(path) if m.type == "note_on"]
    assert sorted(ons) == [(0, 63), (0, 67), (1, 43), (9, 36)]
    programs = {m.channel: m.program for m in mido.MidiFile(path) if m.type == "program_change"}
    assert programs == {0: 24, 1: 33, 9: 0}


def test_skyline_keeps_the_highest_note_and_passes_the_rest_down() -> None:
    line, rest = skyline([Note(0, 2, 60), Note(0, 2, 67), Note(1, 1, 72), Note(2, 1, 65)])
    assert line == (Note(0, 1, 67), Note(1, 1, 72), Note(2, 1, 65))
    assert rest == (Note(0, 2, 60),)


def test_excerpt_starts_on_a_bar_and_clips_notes() -> None:
    bars = tuple(Bar(float(t), 4.0, 1.0, 4.0) for t in range(0, 16, 4))
    piece = Piece("x", (Note(3, 3, 72), Note(6, 2, 74)), ((Note(0, 16, 48),),), bars)
    part = excerpt(piece, 1, 8.0)
    assert [b.start for b in part.bars] == [0.0, 4.0] and part.end == 8.0
    assert part.melody == (Note(0, 2, 72), Note(2, 2, 74))
    assert part.lower == ((Note(0, 8, 48),),)


def test_sessions_are_whole_windows_with_aligned_stems(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path)
    writer.chunk = WINDOW_SAMPLES // 64  # small sessions keep the test fast
    rng = np.random.default_rng(0)
    lengths = [9000, 20000, 31000, 5000]
    for i, n in enumerate(lengths):
        writer.add(f"p{i}", rng.normal(0, 0.1, (2, n)), rng.normal(0, 0.1, (2, n + 500)))
    total = sum(n + 500 + 44100 for n in lengths)
    assert len(writer.sessions) == total // writer.chunk
    for s in writer.sessions:
        vocal = read_audio(tmp_path / s["name"] / "vocals.wav")
        accomp = read_audio(tmp_path / s["name"] / "accompaniment.wav")
        assert vocal.shape == accomp.shape == (2, writer.chunk)
    assert writer.sessions[0]["pieces"][0] == "p0"
    assert {p for s in writer.sessions for p in s["pieces"]} <= {"p0", "p1", "p2", "p3"}
