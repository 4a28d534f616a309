"""`samuel-live render`: takes x variations, manifest, bad takes, resume after a kill."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from samuel_live.config import PostSection
from samuel_live.model.unet import UNetConfig
from samuel_live.pipeline import Accompanist
from samuel_live.render.batch import find_takes, plan, render
from samuel_live.render.sidecar import read_sidecar, sidecar_path
from samuel_live.render.take import TakeSpec
from samuel_live.settings import GenerateSettings

TINY = UNetConfig(widths=(16, 32), heads=2, head_dim=8, groups=4, time_dim=32, cond_dim=16,
                  attn_levels=(1,), cross_attn_levels=(0, 1))
SETTINGS = GenerateSettings(sampler="ddim", steps=2, cfg=1.5, seed=0)
CLEAN = TakeSpec(source="", post=PostSection(preset="clean"))


def _takes(folder, lengths=(1.5, 2.25, 3.0)):
    folder.mkdir()
    for i, sec in enumerate(lengths):
        t = np.arange(int(sec * 44100)) / 44100
        sf.write(folder / f"take{i}.wav", 0.2 * np.sin(2 * np.pi * (220 + 50 * i) * t), 44100)
    return folder


def _acc():
    a = Accompanist.random(TINY, seed=0)
    with torch.no_grad():
        for p in a.model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return a


def test_three_takes_two_variations(tmp_path):
    takes = find_takes([_takes(tmp_path / "in")])
    out = tmp_path / "out"
    jobs = plan(takes, 2, 10, out, "wav")
    records = render(_acc(), jobs, SETTINGS, CLEAN, out)
    assert len(records) == 6 and all(r.status == "rendered" for r in records)
    for r in records:
        info = sf.info(r.path)
        assert info.frames == sf.info(r.take).frames
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["stems"]) == 6
    assert {s["seed"] for s in manifest["stems"]} == {10, 11}
    assert (out / "manifest.csv").read_text().count("\n") == 7


def test_corrupt_take_is_reported_and_others_complete(tmp_path):
    folder = _takes(tmp_path / "in", (1.5, 2.0))
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    out = tmp_path / "out"
    jobs = plan(find_takes([folder]), 1, 0, out, "wav")
    records = render(_acc(), jobs, SETTINGS, CLEAN, out)
    status = {r.take.split("/")[-1]: r.status for r in records}
    assert status == {"broken.wav": "failed", "take0.wav": "rendered", "take1.wav": "rendered"}
    assert "broken.wav" in [r.take.split("/")[-1] for r in records if r.error]


def test_rerun_renders_only_what_is_missing(tmp_path):
    takes = find_takes([_takes(tmp_path / "in")])
    out = tmp_path / "out"
    jobs = plan(takes, 2, 0, out, "wav")
    chain = CLEAN
    acc = _acc()
    # a batch killed midway: only the first three stems were finished
    render(acc, jobs[:3], SETTINGS, chain, out)
    first = {p: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    records = render(acc, jobs, SETTINGS, chain, out)
    assert [r.status for r in records] == ["kept"] * 3 + ["rendered"] * 3
    for p, mtime in first.items():
        assert p.stat().st_mtime_ns == mtime
    assert not list(out.glob(".*tmp"))


def test_takes_with_the_same_name_are_refused(tmp_path):
    import pytest

    from samuel_live.errors import SamuelError

    a, b = _takes(tmp_path / "a", (1.0,)), _takes(tmp_path / "b", (1.0,))
    with pytest.raises(SamuelError, match="share the name"):
        plan(find_takes([a, b]), 1, 0, tmp_path / "out", "wav")


def test_a_take_that_fails_in_generation_does_not_stop_the_batch(tmp_path):
    folder = _takes(tmp_path / "in", (1.0, 1.5))
    t = np.arange(44100) / 44100
    bad = np.sin(2 * np.pi * 220 * t)
    bad[100] = np.nan  # reads fine, fails in the model's input check
    sf.write(folder / "nan.wav", bad, 44100, subtype="FLOAT")
    out = tmp_path / "out"
    jobs = plan(find_takes([folder]), 1, 0, out, "wav")
    records = render(_acc(), jobs, SETTINGS, CLEAN, out)
    status = {r.take.split("/")[-1]: r.status for r in records}
    assert status == {"nan.wav": "failed", "take0.wav": "rendered", "take1.wav": "rendered"}


def test_rerun_with_other_settings_renders_again(tmp_path):
    takes = find_takes([_takes(tmp_path / "in", (1.0, 1.5))])
    out = tmp_path / "out"
    jobs = plan(takes, 1, 0, out, "wav")
    acc = _acc()
    render(acc, jobs, SETTINGS, CLEAN, out)
    other = GenerateSettings(sampler="ddim", steps=3, cfg=1.5, seed=0)
    records = render(acc, jobs, other, CLEAN, out)
    assert [r.status for r in records] == ["rendered", "rendered"]
    for job in jobs:
        assert read_sidecar(sidecar_path(job.path)).settings["steps"] == 3
    # the same settings again: everything is kept; another post chain: rendered again
    assert [r.status for r in render(acc, jobs, other, CLEAN, out)] == ["kept", "kept"]
    warm = TakeSpec(source="", post=PostSection(preset="warm"))
    assert [r.status for r in render(acc, jobs, other, warm, out)] == ["rendered"] * 2


def test_a_stem_without_its_sidecar_is_rendered_again(tmp_path):
    takes = find_takes([_takes(tmp_path / "in", (1.0,))])
    out = tmp_path / "out"
    jobs = plan(takes, 1, 0, out, "wav")
    acc = _acc()
    render(acc, jobs, SETTINGS, CLEAN, out)
    sidecar_path(jobs[0].path).unlink()
    assert [r.status for r in render(acc, jobs, SETTINGS, CLEAN, out)] == ["rendered"]


def test_output_folder_inside_the_input_folder_is_not_a_take(tmp_path):
    folder = _takes(tmp_path / "in", (1.0,))
    out = folder / "stems"
    jobs = plan(find_takes([folder], exclude=out), 1, 0, out, "wav")
    render(_acc(), jobs, SETTINGS, CLEAN, out)
    # a stem dropped beside the takes of the folder by hand is a take; ours in out/ are not
    assert [t.name for t in find_takes([folder, out], exclude=out)] == ["take0.wav"]
