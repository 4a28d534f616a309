"""`samuel-live doctor`: check the machine and name the fix for every problem found."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samuel_live.config import Config


@dataclass(frozen=True)
class Check:
    """One finding: ``level`` is ok, warn (works, but worth knowing) or fail (blocks)."""

    name: str
    level: str
    detail: str
    fix: str = ""


def check_python() -> Check:
    v = sys.version_info
    if v < (3, 11):
        return Check("python", "fail", f"Python {v.major}.{v.minor}", "install Python 3.11+")
    return Check("python", "ok", f"Python {v.major}.{v.minor}.{v.micro}")


def check_torch() -> Check:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return Check("torch", "fail", "torch is not installed",
                     "pip install -c constraints.txt torch==2.13.0")
    cuda = torch.cuda.is_available()
    detail = f"torch {torch.__version__}, " + (
        f"CUDA: {torch.cuda.get_device_name(0)}" if cuda else "no CUDA GPU (CPU inference)")
    return Check("torch", "ok", detail)


def check_audio() -> list[Check]:
    """PortAudio, its host APIs and whether any input device exists on this machine."""
    from samuel_live.audio.devices import list_devices, sounddevice
    from samuel_live.errors import AudioDeviceError

    try:
        apis = [a["name"] for a in sounddevice().query_hostapis()]
        devices = list_devices()
    except AudioDeviceError as exc:
        return [Check("audio", "fail", str(exc))]  # the message names the fix
    return audio_checks(apis, devices)


def audio_checks(apis: list[str], devices: list[dict[str, Any]]) -> list[Check]:
    """Findings for these host API names and devices (as ``list_devices`` returns them)."""
    from samuel_live.audio.devices import NO_AUDIO_HINT

    inputs = [d for d in devices if d["max_input_channels"] > 0]
    out = [Check("audio host APIs", "ok" if apis else "warn", ", ".join(apis) or "none",
                 NO_AUDIO_HINT)]
    if not inputs:
        out.append(Check("audio input", "warn", "no input device: live capture is unavailable "
                         "(file:PATH sources and `samuel-live generate` still work)",
                         NO_AUDIO_HINT))
    else:
        out.append(Check("audio input", "ok", f"{len(inputs)} input device(s), e.g. "
                         f"{inputs[0]['name']!r} ({inputs[0]['hostapi']})"))
    return out


def check_models(config: Config) -> list[Check]:
    from samuel_live.errors import SamuelError
    from samuel_live.model.checkpoint import load_checkpoint
    from samuel_live.pipeline import STARTER_MODEL

    path = Path(config.model.path).expanduser() if config.model.path else STARTER_MODEL
    try:
        _, meta = load_checkpoint(path)
    except SamuelError as exc:
        return [Check("model", "fail", str(exc),
                      "reinstall samuel-live, or point model.path at a trained checkpoint "
                      "(--set model.path=PATH; serve also takes --model PATH)")]
    out = [Check("model", "ok", f"{path.name}: codec {meta.codec}")]
    if meta.codec == "sao":
        if not config.model.codec_path:
            out.append(Check("codec", "fail", "model needs the Stable Audio Open VAE",
                             "set model.codec_path to your stable-audio-open-1.0 folder"))
        elif importlib.util.find_spec("diffusers") is None:
            out.append(Check("codec", "fail", "diffusers is not installed",
                             "pip install 'samuel-live[sao]'"))
    return out


def check_ports(config: Config) -> list[Check]:
    out = []
    s = config.server
    for kind, port in (("UDP", s.udp_port), ("TCP", s.tcp_port), ("HTTP", s.http_port)):
        if not port:
            continue
        sock = socket.socket(socket.AF_INET,
                             socket.SOCK_DGRAM if kind == "UDP" else socket.SOCK_STREAM)
        try:
            sock.bind((s.host, port))
            out.append(Check(f"{kind} port {port}", "ok", "free"))
        except OSError as exc:
            out.append(Check(f"{kind} port {port}", "fail", f"in use ({exc.strerror})",
                             f"stop the program using it, or choose another port: --set "
                             f"server.{kind.lower()}_port=N (serve also takes "
                             f"--{kind.lower()}-port N)"))
        finally:
            sock.close()
    return out


def check_render_folder(config: Config) -> Check:
    """Whether results can be written there; a missing folder is not created, only checked."""
    folder = Path(config.render.folder).expanduser()
    fix = ("fix its permissions, or choose another: --set render.folder=DIR "
           "(serve also takes --render-folder DIR)")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != folder:
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return Check("render folder", "ok", f"{folder} (will be created)")
        return Check("render folder", "fail",
                     f"{folder} cannot be created: {existing} is not a writable folder", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return Check("render folder", "fail", f"{folder} is not writable ({exc.strerror})", fix)
    return Check("render folder", "ok", str(folder))


def check_instruments(config: Config) -> Check:
    """Whether results can be played on SoundFont instruments (optional: a warning at most)."""
    from samuel_live.render.instrument import find_soundfont

    r = config.render
    soundfont = Path(r.soundfont).expanduser() if r.soundfont else find_soundfont(
        r.soundfont_dirs)
    try:
        importlib.import_module("fluidsynth")
    except (ImportError, OSError):
        return Check("instruments", "warn", "FluidSynth is not installed: results use the "
                     "additive decode only", 'pip install -e ".[instruments]" and the system '
                     "library (Debian: apt install fluidsynth; macOS: brew install fluid-synth)")
    if soundfont is None or not soundfont.is_file():
        return Check("instruments", "warn", "no General MIDI SoundFont in "
                     f"{', '.join(r.soundfont_dirs) or 'render.soundfont_dirs'}",
                     "Debian: apt install fluid-soundfont-gm; or put an .sf2 in "
                     "~/.local/share/soundfonts, or --set render.soundfont=PATH")
    return Check("instruments", "ok", f"FluidSynth with {soundfont}")


def run_checks(config: Config) -> list[Check]:
    checks: list[Check] = [check_python(), check_torch()]
    steps: list[Callable[[], list[Check] | Check]] = [
        check_audio, lambda: check_models(config), lambda: check_ports(config),
        lambda: check_render_folder(config), lambda: check_instruments(config)]
    for step in steps:
        res = step()
        checks += res if isinstance(res, list) else [res]
    return checks


def report(checks: list[Check]) -> int:
    """Print every finding; exit status 1 when anything blocks."""
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    for c in checks:
        print(f"[{marks[c.level]}] {c.name}: {c.detail}")
        if c.fix and c.level != "ok":
            print(f"        fix: {c.fix}")
    return 1 if any(c.level == "fail" for c in checks) else 0
