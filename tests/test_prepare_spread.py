"""`prepare --processes N`: sources encoded in N forked processes give the very shards one
process writes, bad sources are still skipped with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_prepare import write_song

from samuel_live.train.prepare import PrepareConfig, prepare
from samuel_live.train.shards import load_shards


def test_two_processes_write_the_shards_one_process_writes(tmp_path: Path) -> None:
    songs = tmp_path / "songs"
    write_song(songs / "song_a", 50.0)
    write_song(songs / "song_b", 50.0, musdb=True)
    write_song(songs / "song_c", 50.0)
    (songs / "song_bad").mkdir()
    (songs / "song_bad" / "vocals.wav").write_bytes(b"RIFF not really a wave file")
    (songs / "song_bad" / "accompaniment.wav").write_bytes(b"RIFF nor this one")
    one = prepare(songs, tmp_path / "one", PrepareConfig(codec="harmonic", shard_windows=2))
    two = prepare(songs, tmp_path / "two",
                  PrepareConfig(codec="harmonic", shard_windows=2, processes=2))
    assert set(two["skipped"]) == {"song_bad"}
    assert two["skipped"]["song_bad"]["reason"] == one["skipped"]["song_bad"]["reason"]
    assert json.dumps(one["sources"]) == json.dumps(two["sources"])
    assert one["stats"] == two["stats"] and one["shards"] == two["shards"]
    v1, a1, m1 = load_shards(tmp_path / "one")
    v2, a2, m2 = load_shards(tmp_path / "two")
    assert v1.shape[0] == 3
    assert torch.equal(v1, v2) and torch.equal(a1, a2)
    assert torch.equal(m1["validation_mask"], m2["validation_mask"])
