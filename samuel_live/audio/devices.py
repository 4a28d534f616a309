"""Audio device discovery by host-API name and device name (never by bare index).

With extra ALSA plugins installed, index 0 can be an ALSA device that silently captures
nothing, so devices are chosen by name: e.g. host API "JACK" and device "system".
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

from samuel_live.errors import AudioDeviceError, InvalidArgumentError

Kind = Literal["input", "output"]

NO_AUDIO_HINT = (
    "to get audio, start JACK (`jackd -d alsa`, or QjackCtl) or PipeWire, or plug in an audio "
    "interface; `samuel-live doctor` checks the whole setup"
)
"""How to get an audio device: shown wherever none (or not the wanted one) is found."""


def sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into an AudioDeviceError."""
    try:
        import sounddevice as sd
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioDeviceError(
            f"PortAudio could not be loaded ({exc}); install it with "
            "`apt-get install libportaudio2` (Debian/Ubuntu) or `brew install portaudio` (macOS)"
        ) from exc
    return sd


def list_devices() -> list[dict[str, Any]]:
    """Every PortAudio device as a dict: index, name, hostapi, channels and default rate."""
    sd = sounddevice()
    apis = sd.query_hostapis()
    return [
        {
            "index": i,
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "max_input_channels": int(d["max_input_channels"]),
            "max_output_channels": int(d["max_output_channels"]),
            "default_samplerate": float(d["default_samplerate"]),
        }
        for i, d in enumerate(sd.query_devices())
    ]


def find_device(
    name: str | int | None = None, hostapi: str | None = None, kind: Kind = "input"
) -> dict[str, Any]:
    """The device dict (see ``list_devices``) matching ``name`` within ``hostapi``.

    Names and host APIs match exactly first, then as case-insensitive substrings ("jack" finds
    "JACK Audio Connection Kit"). ``name=None`` picks the host API's default device for
    ``kind``, or PortAudio's default when ``hostapi`` is None too. An int is an index.
    """
    if kind not in ("input", "output"):
        raise InvalidArgumentError(f"kind must be 'input' or 'output', got {kind!r}")
    devices = [d for d in list_devices() if d[f"max_{kind}_channels"] > 0]
    if isinstance(name, int):
        return _by_index(devices, name, kind)
    if hostapi is not None:
        devices = _match(devices, "hostapi", hostapi)
        if not devices:
            raise AudioDeviceError(_not_found(f"host API {hostapi!r}", kind))
    if name is None:
        return _default(devices, hostapi, kind)
    found = _match(devices, "name", name)
    if not found:
        where = f" in host API {hostapi!r}" if hostapi else ""
        raise AudioDeviceError(_not_found(f"device {name!r}{where}", kind))
    return found[0]


def _match(devices: list[dict[str, Any]], key: str, wanted: str) -> list[dict[str, Any]]:
    exact = [d for d in devices if d[key] == wanted]
    return exact or [d for d in devices if wanted.lower() in d[key].lower()]


def _by_index(devices: list[dict[str, Any]], index: int, kind: Kind) -> dict[str, Any]:
    for d in devices:
        if d["index"] == index:
            return d
    raise AudioDeviceError(_not_found(f"device index {index}", kind))


def _default(devices: list[dict[str, Any]], hostapi: str | None, kind: Kind) -> dict[str, Any]:
    sd = sounddevice()
    slot = 0 if kind == "input" else 1
    if hostapi is None:
        wanted = sd.default.device[slot]
        if wanted is None or wanted < 0:
            wanted = sd.query_hostapis(0)[f"default_{kind}_device"]
    else:
        api = next(a for a in sd.query_hostapis() if a["name"] == devices[0]["hostapi"])
        wanted = api[f"default_{kind}_device"]
    for d in devices:
        if d["index"] == wanted:
            return d
    if devices:
        return devices[0]
    raise AudioDeviceError(_not_found("a default device", kind))


def _not_found(what: str, kind: Kind) -> str:
    have = ", ".join(
        f"{d['name']!r} ({d['hostapi']})" for d in list_devices() if d[f"max_{kind}_channels"] > 0
    )
    return (
        f"no {kind} {what} found; available {kind} devices: {have or 'none'}. "
        f"Pick one of these by name (and host API); {NO_AUDIO_HINT}"
    )
