"""Training windows: the run ends at the sampling window (or says why not), crop curricula,
several shard folders pooled, and fine-tuning keeps the model's own normalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samuel_live.errors import SamuelError
from samuel_live.train.batches import crop_at, parse_curriculum
from samuel_live.train.shards import load_corpus, shard_name, write_shard
from samuel_live.train.trainer import TrainConfig, Trainer, check_window, load_train_config
from tests.test_train import TINY, _cfg, _data


def test_training_shorter_than_the_sampling_window_is_refused_unless_asked():
    with pytest.raises(SamuelError, match="shorter than the 1024-frame window"):
        check_window(TrainConfig(crop_frames=256), 1024)
    assert check_window(TrainConfig(crop_frames=256, short_crops=True), 1024) == [(0.0, 256)]
    assert check_window(TrainConfig(crop_frames=1024), 1024) == [(0.0, 1024)]
    # data windows shorter than the model's window: training at the whole window is the most
    with pytest.raises(SamuelError, match="64-frame window"):
        check_window(TrainConfig(crop_frames=32), 64)
    check_window(TrainConfig(crop_frames=64), 64)


def test_trainer_refuses_short_crops(tmp_path):
    vocal, accomp, manifest = _data(frames=64)
    with pytest.raises(SamuelError, match="crop_frames = 32"):
        Trainer(_cfg(tmp_path, short_crops=False), vocal, accomp, manifest)


def test_curriculum_stages_and_their_end():
    stages = parse_curriculum("16@0,32@0.5,64@0.75", 64)
    assert stages == [(0.0, 16), (0.5, 32), (0.75, 64)]
    assert [crop_at(stages, s, 8) for s in range(8)] == [16, 16, 16, 16, 32, 32, 64, 64]
    assert parse_curriculum("", 1024) == [(0.0, 1024)]
    for bad in ("16@0,32@0.5", "16@0.2,64@0.5", "32@0,16@0", "x@0,64@0.5", "16@0,64@1.5"):
        with pytest.raises(SamuelError, match="crop_curriculum"):
            parse_curriculum(bad, 64)


def test_train_step_follows_the_curriculum(tmp_path):
    vocal, accomp, manifest = _data(frames=64)
    tr = Trainer(_cfg(tmp_path, crop_frames=64, crop_curriculum="16@0,32@0.5,64@0.75",
                      max_steps=4, short_crops=False), vocal, accomp, manifest)
    seen, sample = [], tr.train.sample

    def record(*args, **kw):
        v, a = sample(*args, **kw)
        seen.append(v.shape[-1])
        return v, a

    tr.train.sample = record
    for _ in range(4):
        tr.train_step()
    assert seen == [16, 16, 32, 64]


def test_boolean_options_parse_from_text():
    assert load_train_config(None, ["short_crops=false"]).short_crops is False
    assert load_train_config(None, ["short_crops=true"]).short_crops is True
    with pytest.raises(SamuelError, match="true or false"):
        load_train_config(None, ["short_crops=maybe"])


def _folder(path, vocal, accomp, manifest):
    path.mkdir()
    n = vocal.shape[0]
    write_shard(path / shard_name(0), vocal, accomp, torch.arange(n) % 3 == 0)
    flat = {k: vocal.double() if k == "vocal" else accomp.double() for k in ("vocal", "accomp")}
    stats = {k: {"mean": x.mean(dim=(0, 2)).tolist(),
                 "std": x.std(dim=(0, 2), unbiased=False).tolist()} for k, x in flat.items()}
    (path / "manifest.json").write_text(json.dumps(
        {**manifest, "stats": stats, "shards": [{"file": shard_name(0), "windows": n}]}))


def test_several_shard_folders_pool_windows_and_statistics(tmp_path):
    v1, a1, manifest = _data(4, 32)
    v2, a2 = v1[:3] * 0.5 + 2, a1[:3] * 2 - 1
    _folder(tmp_path / "one", v1, a1, manifest)
    _folder(tmp_path / "two", v2, a2, manifest)
    vocal, accomp, pooled = load_corpus(f"{tmp_path / 'one'}, {tmp_path / 'two'}")
    assert vocal.shape[0] == accomp.shape[0] == 7 == pooled["validation_mask"].shape[0]
    for key, x in (("vocal", vocal), ("accomp", accomp)):
        x = x.double()
        np.testing.assert_allclose(pooled["stats"][key]["mean"], x.mean(dim=(0, 2)), atol=1e-6)
        np.testing.assert_allclose(pooled["stats"][key]["std"],
                                   x.std(dim=(0, 2), unbiased=False), rtol=1e-5)


def test_fine_tuning_keeps_the_checkpoint_normalisation(tmp_path):
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path / "a", export_dtype="float32"), vocal, accomp, manifest)
    path = tr.export()
    moved = json.loads(json.dumps(manifest))
    moved["stats"]["accomp"]["mean"] = [3.0] * 64
    tuned = Trainer(_cfg(tmp_path / "b", init=str(path)), vocal, accomp, moved)
    assert tuned.stats == tr.stats
    assert Trainer(_cfg(tmp_path / "c"), vocal, accomp, moved).stats != tr.stats


def test_fine_tuning_may_change_the_mix_direction_but_not_the_weights(tmp_path):
    vocal, accomp, manifest = _data()
    tr = Trainer(_cfg(tmp_path / "a", export_dtype="float32"), vocal, accomp, manifest)
    path = tr.export()
    flipped = dict(TINY, global_weight="one_minus_sqrt_abar")
    tuned = Trainer(_cfg(tmp_path / "b", init=str(path), model=flipped), vocal, accomp, manifest)
    assert tuned.model.config.global_weight == "one_minus_sqrt_abar"
    with pytest.raises(SamuelError, match="another architecture"):
        Trainer(_cfg(tmp_path / "c", init=str(path), model=dict(TINY, heads=4)), vocal, accomp,
                manifest)
