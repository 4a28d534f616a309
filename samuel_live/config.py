"""Configuration in one typed place: a TOML file, then CLI overrides, into frozen dataclasses.

Every section is a frozen dataclass; ``load_config(path, overrides)`` reads the TOML file (if
any), applies ``section.key=value`` overrides and validates types. Nothing else in the package
reads configuration files.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samuel_live.errors import InvalidArgumentError, SamuelError
from samuel_live.settings import DEFAULT_PRECISION, PRECISIONS


@dataclass(frozen=True)
class ServerConfig:
    """OSC server: binds to loopback unless told otherwise."""

    host: str = "127.0.0.1"
    udp_port: int = 9000
    tcp_port: int = 9001
    http_port: int = 9002  # OSCQuery namespace over HTTP; 0 disables it
    reply_port: int = 0  # 0 = reply to the sender's own port
    allow_clients: tuple[str, ...] = ()  # empty = any client address
    rate_limit_per_s: float = 200.0  # per client address; excess messages get an error reply
    rate_burst: int = 100


@dataclass(frozen=True)
class CaptureSection:
    """Audio input: device name (or file:PATH / memory:NAME), host API, block size."""

    device: str = ""
    hostapi: str = ""
    channels: int = 2
    blocksize: int = 512
    samplerate: int = 0  # 0 = the device's default rate
    seconds: float = 47.55


@dataclass(frozen=True)
class ModelSection:
    """Which model and codec to load, on which device."""

    path: str = ""  # empty = the starter model shipped in the package
    device: str = "auto"  # auto | cpu | cuda
    codec_path: str = ""  # Stable Audio Open checkpoint for models trained on the "sao" codec
    precision: str = DEFAULT_PRECISION  # auto | float32 | bfloat16 (settings.PRECISIONS)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"config model.precision {self.precision!r}: choose one of {PRECISIONS}")


SYSTEM_SOUNDFONT_DIRS = (
    "/usr/share/sounds/sf2", "/usr/share/soundfonts", "/usr/local/share/soundfonts",
    "~/.local/share/soundfonts", "~/Library/Audio/Sounds/Banks", "C:/soundfonts",
)
"""Where Linux, macOS and Windows users keep General MIDI SoundFonts (searched in order)."""


@dataclass(frozen=True)
class RenderSection:
    """Where results go and how they are written."""

    folder: str = "~/samuel-renders"
    format: str = "wav"  # wav | flac
    bit_depth: int = 24  # 16 | 24 | 32 (float WAV)
    allowed_input_dirs: tuple[str, ...] = ()  # folders file sources may be read from
    sample_rate: int | None = None  # results' rate; None = the model's own (44.1 kHz)
    instrument: str = ""  # play results' notes on this GM instrument (name or 0-127); "" = off
    soundfont: str = ""  # the SoundFont for instruments; "" = the best one in soundfont_dirs
    soundfont_dirs: tuple[str, ...] = SYSTEM_SOUNDFONT_DIRS  # folders SoundFonts may come from


@dataclass(frozen=True)
class GenerateSection:
    """Sampling for requests that do not say otherwise; None = the model's own default (its
    checkpoint's recommendation, else the built-in one in ``GenerateSettings``)."""

    sampler: str | None = None
    steps: int | None = None
    cfg: float | None = None
    key: str | None = None  # "auto", "off" or a key such as "A minor"


@dataclass(frozen=True)
class PostSection:
    """Post-processing chain, as a list of effect tables (see samuel_live.post)."""

    preset: str = "default"
    chain: tuple[dict[str, Any], ...] = (
        {"type": "highpass", "cutoff_hz": 40.0},
        {"type": "compressor", "threshold_db": -18.0, "ratio": 2.5},
        {"type": "limiter", "threshold_db": -1.0},
    )
    loudness_lufs: float | None = -16.0
    dry_vocal_db: float | None = None  # mix the dry vocal in for previews; None = off
    plugin_dirs: tuple[str, ...] = ()  # the only folders vst3 effects may load from
    system_vst3: bool = False  # also allow the platform's standard VST3 folders


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
    capture: CaptureSection = field(default_factory=CaptureSection)
    model: ModelSection = field(default_factory=ModelSection)
    render: RenderSection = field(default_factory=RenderSection)
    generate: GenerateSection = field(default_factory=GenerateSection)
    post: PostSection = field(default_factory=PostSection)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML or CLI value to the annotated field type, or raise SamuelError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise SamuelError(f"config {where}: expected a list, got {value!r}")
        return tuple(value)
    try:
        if annotation is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        if annotation in (int, float, str, bool):
            return annotation(value)
    except (TypeError, ValueError) as exc:
        name = annotation.__name__
        raise SamuelError(f"config {where}: {value!r} is not a valid {name}") from exc
    return value


def _build(cls: type, table: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - known
    if unknown:
        raise SamuelError(
            f"config [{section}]: unknown key(s) {sorted(unknown)}; known keys: {sorted(known)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in table.items()}
    return cls(**kwargs)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML file (optional) and ``section.key=value`` overrides into a Config."""
    data: dict[str, dict[str, Any]] = {}
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise SamuelError(f"config file {p} not found; write one with `samuel-live config`")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SamuelError(f"config file {p} is not valid TOML: {exc}") from exc
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise SamuelError(f"override {item!r} must look like section.key=value")
        data.setdefault(section, {})[name] = value
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    unknown = set(data) - set(sections)
    if unknown:
        raise SamuelError(
            f"config: unknown section(s) {sorted(unknown)}; known: {sorted(sections)}"
        )
    hints = typing.get_type_hints(Config)
    built = {name: _build(hints[name], table, name) for name, table in data.items()}
    return Config(**built)


def render_folder(config: Config) -> Path:
    """The render folder, expanded and created."""
    folder = Path(config.render.folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
