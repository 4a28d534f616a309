"""Data preparation: windows, shards, manifest, resume, latent arrays, chorale MIDI and renders."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections import Counter
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from samuel_live import LATENT_CHANNELS, LATENT_FRAMES, SAMPLE_RATE
from samuel_live.audio.io import read_audio, write_audio_atomic
from samuel_live.codec import load_codec
from samuel_live.errors import SamuelError
from samuel_live.train import chorale_midi, chorales
from samuel_live.train.prepare import PrepareConfig, prepare, validation_mask
from samuel_live.train.shards import load_shards

VOCAL_HZ, ACCOMP_HZ = 440.0, 110.0  # MIDI 69 and 45: bands 33 and 9 of the harmonic codec


def tone(seconds: float, hz: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    mono = (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([mono, mono])


def write_song(folder: Path, seconds: float, musdb: bool = False) -> None:
    folder.mkdir(parents=True)
    write_audio_atomic(folder / "vocals.wav", tone(seconds, VOCAL_HZ), bit_depth=16)
    if musdb:
        for name in ("drums", "bass", "other"):
            write_audio_atomic(folder / f"{name}.wav", tone(seconds, ACCOMP_HZ, 0.1), bit_depth=16)
    else:
        write_audio_atomic(folder / "accompaniment.flac", tone(seconds, ACCOMP_HZ), bit_depth=16)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    songs = tmp_path_factory.mktemp("songs")
    write_song(songs / "song_a", 100.0)
    write_song(songs / "song_b", 60.0, musdb=True)
    (songs / "song_bad").mkdir()
    (songs / "song_bad" / "vocals.wav").write_bytes(b"RIFF not really a wave file")
    (songs / "song_bad" / "accompaniment.wav").write_bytes(b"RIFF nor this one")
    out = tmp_path_factory.mktemp("shards")
    return songs, out, prepare(songs, out, PrepareConfig(codec="harmonic"))


def test_stems_become_whole_windows_only(prepared: tuple[Path, Path, dict]) -> None:
    songs, out, manifest = prepared
    vocal, accomp, loaded = load_shards(out)
    assert manifest["kind"] == "stems" and manifest["codec"] == "harmonic"
    assert manifest["sources"]["song_a"]["windows"] == 2  # 100 s: the last 4.9 s are dropped
    assert manifest["sources"]["song_b"]["windows"] == 1  # 60 s
    assert vocal.shape == accomp.shape == (3, LATENT_CHANNELS, LATENT_FRAMES)
    assert vocal.dtype == accomp.dtype == torch.float16
    assert loaded["validation_mask"].shape == (3,)
    split = manifest["split"]
    assert split["train_windows"] + split["validation_windows"] == 3
    # The windows are the codec's frames in order, vocal and accompaniment kept apart.
    codec = load_codec("harmonic")
    expected = codec.encode(read_audio(songs / "song_a" / "vocals.wav"))[:, LATENT_FRAMES:]
    assert torch.allclose(vocal[1].float(), expected[:, :LATENT_FRAMES], atol=0.02)
    assert int(vocal[2].float().mean(1).argmax()) == 33
    assert int(accomp[2].float().mean(1).argmax()) == 9


def test_manifest_stats_are_per_channel(prepared: tuple[Path, Path, dict]) -> None:
    _, out, manifest = prepared
    vocal, accomp, _ = load_shards(out)
    for key, data in (("vocal", vocal), ("accomp", accomp)):
        stats = manifest["stats"][key]
        assert len(stats["mean"]) == len(stats["std"]) == LATENT_CHANNELS
        want = data.double().mean(dim=(0, 2)).numpy()
        np.testing.assert_allclose(stats["mean"], want, rtol=1e-4, atol=1e-4)
    assert manifest["stats"]["vocal"]["mean"] != manifest["stats"]["accomp"]["mean"]


def test_corrupt_source_is_reported_and_skipped(prepared: tuple[Path, Path, dict]) -> None:
    _, _, manifest = prepared
    assert "song_bad" not in manifest["sources"]
    entry = manifest["skipped"]["song_bad"]
    assert "cannot read" in entry["reason"] and entry["files"][0].endswith("vocals.wav")


def test_rerun_skips_done_sources_and_adds_new_ones(prepared: tuple[Path, Path, dict]) -> None:
    songs, out, manifest = prepared
    first_shards = [e["file"] for e in manifest["shards"]]
    stamps = {f: os.stat(out / f).st_mtime_ns for f in first_shards}
    again = prepare(songs, out, PrepareConfig(codec="harmonic"))
    assert again["shards"] == manifest["shards"] and again["windows"] == 3
    write_song(songs / "song_c", 50.0)
    grown = prepare(songs, out, PrepareConfig(codec="harmonic"))
    assert grown["windows"] == 4 and grown["sources"]["song_c"]["first_window"] == 3
    assert len(grown["shards"]) == len(first_shards) + 1
    assert {f: os.stat(out / f).st_mtime_ns for f in first_shards} == stamps
    assert "song_bad" in grown["skipped"]  # retried, still bad, still listed
    shutil.rmtree(songs / "song_c")


def test_quiet_vocal_windows_can_be_dropped(tmp_path: Path) -> None:
    song = tmp_path / "songs" / "half_sung"
    write_song(song, 100.0)
    vocal = read_audio(song / "vocals.wav")
    vocal[:, LATENT_FRAMES * 2048 :] = 0.0  # silence from the second window on
    write_audio_atomic(song / "vocals.wav", vocal, bit_depth=16)
    config = PrepareConfig(codec="harmonic", min_vocal_rms_db=-40.0)
    manifest = prepare(tmp_path / "songs", tmp_path / "out", config)
    assert manifest["sources"]["half_sung"]["windows"] == 1
    assert manifest["sources"]["half_sung"]["dropped_quiet"] == 1


def test_latent_arrays_are_sharded_as_they_are(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "popdb"
    src.mkdir()
    shape = (5, LATENT_CHANNELS, LATENT_FRAMES)
    vocal, accomp = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape)
    np.save(src / "latent_vocal.npy", vocal)
    np.save(src / "latent_accomp.npy", accomp.astype(np.float32))
    manifest = prepare(src, tmp_path / "out", PrepareConfig(codec="sao", shard_windows=2))
    assert manifest["kind"] == "latents" and manifest["codec"] == "sao"
    assert [s["windows"] for s in manifest["shards"]] == [2, 2, 1]
    got_vocal, got_accomp, _ = load_shards(tmp_path / "out")
    torch.testing.assert_close(got_vocal.float(), torch.from_numpy(vocal), atol=0.01, rtol=1e-3)
    assert got_accomp.shape == shape


def test_latent_arrays_of_wrong_shape_are_skipped(tmp_path: Path) -> None:
    src = tmp_path / "popdb"
    src.mkdir()
    np.save(src / "latent_vocal.npy", np.zeros((2, 64, 512), np.float32))
    np.save(src / "latent_accomp.npy", np.zeros((2, 64, 512), np.float32))
    manifest = prepare(src, tmp_path / "out", PrepareConfig(codec="sao"))
    assert manifest["windows"] == 0 and "[N, 64, 1024]" in manifest["skipped"]["popdb"]["reason"]


def test_validation_mask_is_deterministic_and_near_fraction() -> None:
    mask = validation_mask("session", 2000, 0.1)
    assert torch.equal(mask, validation_mask("session", 2000, 0.1))
    assert 0.07 < mask.float().mean().item() < 0.13
    assert not validation_mask("session", 50, 0.0).any()


@pytest.mark.skipif(importlib.util.find_spec("demucs") is not None, reason="demucs installed")
def test_mixes_without_demucs_name_the_fix(tmp_path: Path) -> None:
    write_audio_atomic(tmp_path / "mix.wav", tone(1.0, 220.0), bit_depth=16)
    with pytest.raises(SamuelError, match="pip install demucs"):
        prepare(tmp_path, tmp_path / "out", PrepareConfig(kind="mixes"))


# ---------------------------------------------------------------- chorales


def _check_pairs(path: Path) -> Counter:
    """Every note-on is closed by a later note-off on its channel; returns counts by type."""
    counts: Counter = Counter()
    for track in mido.MidiFile(str(path)).tracks:
        sounding: Counter = Counter()
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[(msg.channel, msg.note)] += 1
                counts["on"] += 1
            elif msg.type == "note_off" or msg.type == "note_on":
                assert sounding[(msg.channel, msg.note)] > 0, f"off without on: {msg}"
                sounding[(msg.channel, msg.note)] -= 1
                counts["off"] += 1
            elif msg.type == "control_change" and msg.control == 123:
                counts["cc123"] += 1
        assert not +sounding, f"notes left sounding: {+sounding}"
    return counts


def test_chorale_midi_closes_every_note(tmp_path: Path) -> None:
    chorale = chorales.load_chorale("bach/bwv269")
    assert chorale is not None and len(chorale.lower) == 3
    spec = chorales.make_spec(chorale.name, 0)
    chorales.write_midi(
        chorale.lower,
        tmp_path / "a.mid",
        program=spec.accomp_program,
        bpm=spec.bpm,
        transpose=spec.transpose,
        seed=spec.seed,
    )
    counts = _check_pairs(tmp_path / "a.mid")
    notes = sum(len(v) for v in chorale.lower)
    assert counts == Counter(on=notes, off=notes, cc123=3)


def test_repeated_pitch_turns_off_before_it_turns_on(tmp_path: Path) -> None:
    notes = [chorales.Note(0.0, 1.0, 60), chorales.Note(1.0, 1.0, 60)]
    chorales.write_midi([notes], tmp_path / "r.mid", program=52, bpm=90)
    msgs = [m for m in mido.MidiFile(str(tmp_path / "r.mid")).tracks[1] if "note" in m.type]
    assert [m.type for m in msgs] == ["note_on", "note_off", "note_on", "note_off"]
    assert _check_pairs(tmp_path / "r.mid") == Counter(on=2, off=2, cc123=1)


def test_holdout_follows_its_rule_and_stays_out_of_training() -> None:
    holdout = chorales.load_holdout()
    assert holdout["holdout"] == chorales.holdout_rule(holdout["satb"])
    assert len(holdout["holdout"]) == len(holdout["satb"]) // 10
    train = chorales.training_names(holdout)
    assert not set(train) & set(holdout["holdout"])
    assert len(train) == len(holdout["satb"]) - len(holdout["holdout"]) - len(
        holdout["excluded_duplicates"]
    )


def test_concatenated_sessions_stay_aligned() -> None:
    vocals = [np.ones((2, 1000), np.float32), np.ones((2, 500), np.float32)]
    accomps = [np.ones((2, 800), np.float32), np.ones((2, 700), np.float32)]
    v, a = chorales.concatenate_pairs(vocals, accomps, gap_s=0.01)
    assert v.shape == a.shape == (2, 1000 + 441 + 700)
    assert a[0, 1000:1441].max() == 0.0 and a[0, 1441] == 1.0 and v[0, 1441] == 1.0


@pytest.mark.skipif(not chorale_midi.SOUNDFONT.exists(), reason="fluid-soundfont-gm not installed")
def test_fluidsynth_renders_a_sustained_patch_and_stops(tmp_path: Path) -> None:
    notes = [chorales.Note(0.0, 2.0, 60), chorales.Note(2.0, 2.0, 64)]
    chorales.write_midi([notes], tmp_path / "n.mid", program=52, bpm=120)
    chorales.render_midi(tmp_path / "n.mid", tmp_path / "n.wav", timeout_s=30)
    audio = read_audio(tmp_path / "n.wav")
    assert 2.0 < audio.shape[1] / SAMPLE_RATE < 8.0  # 2 s of notes plus the release tail
    assert np.abs(audio).max() > 0.01
    assert not list(tmp_path.glob(".*tmp*"))


def test_sessions_group_training_chorales_in_fixed_positions(tmp_path: Path) -> None:
    names = chorales.training_names(chorales.load_holdout())[:10]
    (tmp_path / "audio").mkdir()
    for name in names:
        if name == names[3]:
            continue  # a failed render leaves its session one chorale short
        for path in chorales.example_paths(tmp_path / "audio", chorales.make_spec(name, 0)):
            path.touch()
    sessions = chorales.plan_sessions(tmp_path, per_session=8)
    assert [s.name for s in sessions] == ["chorales_v0_s000", "chorales_v0_s001"]
    assert [len(s.vocal_files) for s in sessions] == [7, 2]
    assert sessions[1].vocal_files[0].name.startswith(chorales.chorale_id(names[8]))
