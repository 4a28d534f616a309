"""A full disk mid-batch and mid-job: the stem or job fails with a message that says so, the rest
goes on, and no result is left without its sidecar. The limit is a real one (RLIMIT_FSIZE: the
kernel refuses writes past it with EFBIG, as a full disk refuses with ENOSPC)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import soundfile as sf

from samuel_live import SAMPLE_RATE

LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    {body}
    """
)


def _checkpoint(tmp_path: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_render_path import _checkpoint as make

    return make(tmp_path)


def _takes(folder: Path, seconds: tuple[float, ...]) -> None:
    folder.mkdir()
    for i, s in enumerate(seconds):
        t = np.arange(int(s * SAMPLE_RATE)) / SAMPLE_RATE
        sf.write(folder / f"take{i}.wav", 0.3 * np.sin(2 * np.pi * 330 * t), SAMPLE_RATE)


def test_a_full_disk_fails_one_stem_and_the_batch_goes_on(tmp_path: Path) -> None:
    _takes(tmp_path / "in", (0.5, 3.0, 0.5))  # 24-bit stereo: ~130 KB, ~790 KB, ~130 KB
    body = "from samuel_live.cli import main; sys.exit(main(sys.argv[2:]))"
    out = subprocess.run(
        [sys.executable, "-c", LIMITED.format(body=body), "400000", "render",
         str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model",
         str(_checkpoint(tmp_path)), "--steps", "1", "--sampler", "ddim", "-q"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "take1.wav" in out.stderr and "too large" in out.stderr
    stems = json.loads((tmp_path / "out" / "manifest.json").read_text())["stems"]
    assert [s["status"] for s in stems] == ["rendered", "failed", "rendered"]
    assert "free space" in stems[1]["error"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["manifest.csv", "manifest.json",
                     "take0__v00_s0.mid", "take0__v00_s0.wav", "take0__v00_s0.wav.json",
                     # take1's audio did not fit: nothing of it, and nothing half-written
                     "take2__v00_s0.mid", "take2__v00_s0.wav", "take2__v00_s0.wav.json"]


def test_a_full_disk_fails_the_job_with_a_hint_and_the_engine_serves_on(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    body = textwrap.dedent(f"""
        import json
        import numpy as np
        from samuel_live.audio.sources import MemorySource
        from samuel_live.config import load_config
        from samuel_live.engine.engine import Engine
        cfg = load_config(None, ["render.folder={tmp_path / 'renders'}", "model.path={ckpt}",
                                 "model.device=cpu"])
        t = np.arange(44100 * 3) / 44100
        take = np.stack([0.3 * np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32)
        with Engine(cfg, capture=MemorySource(take), warm_up=False) as eng:
            eng.arm()
            big = eng.wait(eng.submit("capture", "big", steps=1).id, 120)
            eng.capture.stop()
            small = eng.wait(eng.submit("file:" + sys.argv[2], "small", steps=1).id, 120)
        print(json.dumps([big.status, big.error, small.status]))
    """)
    _takes(tmp_path / "renders", (0.3,))
    out = subprocess.run(
        [sys.executable, "-c", LIMITED.format(body=body), "300000",
         str(tmp_path / "renders" / "take0.wav")],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    big, error, small = json.loads(out.stdout.strip().splitlines()[-1])
    assert big == "failed" and "free space" in error and "internal error" not in error
    assert small == "done"
