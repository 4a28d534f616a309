"""`prepare --ray`: a local Ray cluster (2 CPUs) writes the very shards a local run writes,
resumes like it, skips a bad source with the local reason, and survives a killed worker."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_prepare import write_song

from samuel_live.cli import main
from samuel_live.codec import load_codec
from samuel_live.errors import InvalidArgumentError
from samuel_live.train import spread
from samuel_live.train.prepare import PrepareConfig, Source, encode_source, prepare
from samuel_live.train.shards import load_shards

DRIVER = os.getpid()


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> tuple[Path, dict]:
    """Three songs of one window each and a broken one, prepared locally in one process."""
    root = tmp_path_factory.mktemp("prep")
    write_song(root / "songs" / "song_a", 50.0)
    write_song(root / "songs" / "song_b", 50.0, musdb=True)
    write_song(root / "songs" / "song_c", 50.0)
    bad = root / "songs" / "song_bad"
    bad.mkdir()
    (bad / "vocals.wav").write_bytes(b"RIFF not really a wave file")
    (bad / "accompaniment.wav").write_bytes(b"RIFF nor this one")
    return root, prepare(root / "songs", root / "local", _config())


def _config(**kw) -> PrepareConfig:
    return PrepareConfig(codec="harmonic", shard_windows=2, **kw)


def _same_shards(a: Path, b: Path) -> None:
    (v1, a1, m1), (v2, a2, m2) = load_shards(a), load_shards(b)
    assert v1.shape[0] == 3
    assert torch.equal(v1, v2) and torch.equal(a1, a2)
    assert torch.equal(m1["validation_mask"], m2["validation_mask"])
    for name in json.loads((a / "manifest.json").read_text())["shards"]:
        assert (a / name["file"]).read_bytes() == (b / name["file"]).read_bytes()


def test_ray_writes_the_shards_a_local_run_writes(cluster, songs) -> None:
    root, local = songs
    remote = prepare(root / "songs", root / "ray", _config(ray="auto"))
    assert set(remote["skipped"]) == {"song_bad"}  # with the reason it has locally
    assert remote["skipped"]["song_bad"]["reason"] == local["skipped"]["song_bad"]["reason"]
    assert json.dumps(remote["sources"]) == json.dumps(local["sources"])
    assert remote["stats"] == local["stats"] and remote["shards"] == local["shards"]
    _same_shards(root / "local", root / "ray")


def test_ray_resumes_where_a_run_stopped(cluster, songs, monkeypatch) -> None:
    root, _ = songs
    part = root / "part"
    for name in ("song_a", "song_b"):
        shutil.copytree(root / "songs" / name, part / name)
    first = prepare(part, root / "resumed", _config())
    shard = root / "resumed" / first["shards"][0]["file"]
    before = shard.read_bytes(), shard.stat().st_mtime_ns
    shutil.copytree(root / "songs" / "song_c", part / "song_c")
    again = prepare(part, root / "resumed", _config(ray=""))  # joins the running cluster
    assert (shard.read_bytes(), shard.stat().st_mtime_ns) == before  # kept, not rewritten
    assert {k: again["sources"][k] for k in first["sources"]} == first["sources"]
    assert list(again["sources"]) == ["song_a", "song_b", "song_c"] and not again["skipped"]
    _same_shards(root / "local", root / "resumed")
    # nothing left to do: no Ray needed at all
    monkeypatch.setitem(sys.modules, "ray", None)
    assert prepare(part, root / "resumed", _config(ray="ray://nowhere:1")) == again


def _killer(root: Path, name: str, times: int) -> Source:
    """A source whose loading kills its Ray worker ``times`` times (counted in files), then
    loads song_a's audio."""
    song = next(s for s in _sources(root) if s.name == "song_a")

    def load() -> tuple[np.ndarray, np.ndarray]:
        deaths = len(list(root.glob(f"{name}.death*")))
        if os.getpid() != DRIVER and deaths < times:
            (root / f"{name}.death{deaths}").touch()
            os._exit(1)
        return song.load()

    return Source(name, song.files, load)


def _sources(root: Path) -> list[Source]:
    from samuel_live.train.sources import find_sources

    return find_sources(root / "songs", _config())[1]


def _encode(todo: list[Source], config: PrepareConfig) -> list:
    return list(spread.encode_all(todo, config, encode_source, lambda: load_codec("harmonic"), 1))


def test_a_killed_worker_is_replaced_and_its_source_encoded_once(cluster, songs) -> None:
    root, _ = songs
    a, b, c = (s for s in _sources(root) if s.name != "song_bad")
    todo = [a, _killer(root, "once", 1), b, c]
    remote, local = _encode(todo, _config(ray="auto")), _encode(todo, _config())
    assert len(list(root.glob("once.death*"))) == 1
    assert [w.source.name for w in remote] == ["song_a", "once", "song_b", "song_c"]
    for r, w in zip(remote, local, strict=True):
        assert torch.equal(r.vocal, w.vocal) and torch.equal(r.accomp, w.accomp)


def test_a_source_that_keeps_killing_workers_is_skipped(cluster, songs, monkeypatch) -> None:
    root, _ = songs
    # one restart per worker (Ray retries the source on it), then the driver gives the source
    # to the other worker once: 4 deaths in all, and the good sources still done
    monkeypatch.setattr(spread, "RETRIES", 1)
    a, b = (s for s in _sources(root) if s.name in ("song_a", "song_b"))
    out = _encode([a, _killer(root, "always", 99), b], _config(ray="auto"))
    assert [getattr(w, "source", None) for w in out] == [a, None, b]
    assert len(list(root.glob("always.death*"))) == 4
    assert "its Ray worker died 2 times" in str(out[1])
    assert "rerun prepare" in str(out[1])


def test_prepare_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys) -> None:
    write_song(tmp_path / "songs" / "song_a", 50.0)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code = main(["prepare", str(tmp_path / "songs"), "--out", str(tmp_path / "out"), "--ray"])
    assert code == 1
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err
    with pytest.raises(InvalidArgumentError, match="give one of them"):
        prepare(tmp_path / "songs", tmp_path / "out", _config(ray="auto", processes=2))


def test_ray_needs_absolute_paths(cluster, tmp_path, monkeypatch) -> None:
    write_song(tmp_path / "songs" / "song_a", 50.0)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match="absolute paths"):
        prepare(Path("songs"), tmp_path / "out", _config(ray="auto"))
