"""Build the SAMUeL Max for Live audio effect (``SAMUeL.maxpat`` and ``SAMUeL.amxd``).

The patch is described below as plain data: BOXES (name, kind, text, position) and WIRES
("name:outlet" -> "name:inlet"). This script turns that into Max's JSON and wraps it in the
``.amxd`` container. Run ``python daw_templates/ableton/build_device.py`` after editing;
``--check`` only verifies that the committed files are up to date.

What the device does: it registers its reply port with the engine when loaded (both ports are
number boxes in the device), records its own input (the track it sits on) with ``sfrecord~``
into a WAV file in the folder typed into it, and sends ``/samuel/generate file:PATH - SEED STEPS
CFG`` (or ``capture`` with "Track" off); it shows the ack, progress and errors, loads each
result into a buffer~ for preview and (with "Clip" on, Live 12.0.5+) places it as an audio clip
and its MIDI file as a MIDI clip, in Session or (with "Arrange" on) in the Arrangement. The
recording and clip logic is ``samuel_live.js`` (a ``js`` object), which must sit beside the
device (or be frozen into it).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAXPAT = HERE / "SAMUeL.maxpat"
AMXD = HERE / "SAMUeL.amxd"

ENGINE_HOST = "127.0.0.1"
ENGINE_PORT = 9000  # the engine's server.udp_port (the device's "Engine port" starts here)
REPLY_PORT = 9010  # this device's udpreceive port ("Reply port"), sent with /samuel/client/register
SCRIPT = "samuel_live.js"

# --- the patch, as data ----------------------------------------------------------------------
# kind: "obj" (an object box), "msg" (a message box), or a Max UI class (live.numbox, ...).
# UI boxes carry their Live parameter: (long name, type, min, max, initial) and a presentation
# rectangle; type 0 = float, 1 = int, 2 = enum.
BOXES: list[tuple[str, str, str, tuple[float, float]]] = [
    # set-up: ports from the device's number boxes, sent again when loaded
    ("device", "obj", "live.thisdevice", (20, 20)),
    ("engine_port", "live.numbox", "Engine port", (20, 80)),
    ("engine_split", "obj", "t b i", (20, 110)),
    ("engine_port_msg", "msg", "port $1", (20, 140)),
    ("reply_port", "live.numbox", "Reply port", (120, 80)),
    ("reply_split", "obj", "t i i", (120, 110)),
    ("listen_port", "msg", "port $1", (200, 140)),
    ("register", "msg", "/samuel/client/register $1", (120, 170)),
    # send side
    ("arm_button", "live.text", "Arm", (320, 20)),
    ("arm_select", "obj", "sel 1 0", (320, 60)),
    ("arm", "msg", "/samuel/capture/arm", (320, 100)),
    ("stop", "msg", "/samuel/capture/stop", (450, 100)),
    ("seed", "live.numbox", "Seed", (600, 20)),
    ("steps", "live.numbox", "Steps", (680, 20)),
    ("cfg", "live.dial", "CFG", (760, 20)),
    ("generate_button", "live.text", "Generate", (880, 20)),
    ("generate_click", "obj", "sel 1", (880, 60)),
    ("generate_msg", "msg", "generate", (880, 100)),
    ("request", "obj", "pack capture - -1 0 -1.", (600, 180)),
    ("generate", "obj", "prepend /samuel/generate", (600, 210)),
    ("cancel_button", "live.text", "Cancel", (1020, 20)),
    ("cancel_click", "obj", "sel 1", (1020, 60)),
    ("job", "obj", "i", (1020, 100)),
    ("cancel", "msg", "/samuel/cancel $1", (1020, 140)),
    ("send", "obj", f"udpsend {ENGINE_HOST} {ENGINE_PORT}", (320, 250)),
    # the track's own audio, recorded into a take file; clips placed from the results
    ("rec_button", "live.text", "Rec", (1160, 100)),
    ("rec_msg", "obj", "prepend record", (1160, 130)),
    ("track_toggle", "live.text", "Track", (1260, 100)),
    ("track_msg", "obj", "prepend usetrack", (1260, 130)),
    ("place_toggle", "live.text", "Arrange", (1360, 100)),
    ("place_msg", "obj", "prepend arrange", (1360, 130)),
    ("folder", "textedit", "samuel_folder", (1160, 20)),
    ("script", "obj", f"js {SCRIPT}", (1160, 180)),
    ("recorder", "obj", "sfrecord~ 2", (1160, 240)),
    # receive side
    ("receive", "obj", f"udpreceive {REPLY_PORT}", (20, 320)),
    ("defer", "obj", "defer", (20, 350)),
    ("replies", "obj", "route /samuel/generate/ack /samuel/progress /samuel/done "
     "/samuel/error /samuel/cancelled", (20, 380)),
    ("ack_text", "msg", "set queued: job $1 - place $2 - about $3 s", (20, 440)),
    ("ack_job", "obj", "unpack i i f", (20, 470)),
    ("progress_text", "msg", "set job $1: step $2 of $3 - $4 s left", (260, 440)),
    ("done", "obj", "t l l", (500, 440)),
    ("done_text", "msg", "set done: $2 - MIDI $10", (500, 500)),
    ("replace", "msg", "replace $2", (600, 500)),
    ("buffer", "obj", "buffer~ ---samuel", (600, 540)),
    ("clip_gate", "obj", "gate 1", (720, 540)),
    ("place", "obj", "prepend done", (720, 580)),
    ("clip_toggle", "live.text", "Clip", (720, 440)),
    ("error_text", "obj", "prepend set", (900, 440)),
    ("cancelled_text", "msg", "set cancelled: job $1", (1040, 440)),
    ("status", "msg", "", (20, 700)),
    # audio: the input passes through (and into the recorder); the preview is added to it
    ("plugin", "obj", "plugin~", (1400, 20)),
    ("preview_button", "live.text", "Preview", (1400, 540)),
    ("play", "obj", "play~ ---samuel 2", (1400, 580)),
    ("plugout", "obj", "plugout~", (1400, 660)),
]

WIRES: list[tuple[str, str]] = [
    ("device:0", "engine_port:0"),  # the engine's port, which then registers the reply port
    ("engine_port:0", "engine_split:0"),
    ("engine_split:1", "engine_port_msg:0"),  # a new engine port first, then register there
    ("engine_port_msg:0", "send:0"),
    ("engine_split:0", "reply_port:0"),
    ("reply_port:0", "reply_split:0"),
    ("reply_split:1", "listen_port:0"),
    ("listen_port:0", "receive:0"),
    ("reply_split:0", "register:0"),
    ("register:0", "send:0"),
    ("arm_button:0", "arm_select:0"),
    ("arm_select:0", "arm:0"),
    ("arm_select:1", "stop:0"),
    ("arm:0", "send:0"),
    ("stop:0", "send:0"),
    ("seed:0", "request:2"),
    ("steps:0", "request:3"),
    ("cfg:0", "request:4"),
    ("generate_button:0", "generate_click:0"),
    ("generate_click:0", "generate_msg:0"),
    ("generate_msg:0", "script:0"),
    ("script:2", "request:0"),  # the source: symbol file:PATH or symbol capture
    ("request:0", "generate:0"),
    ("generate:0", "send:0"),
    ("cancel_button:0", "cancel_click:0"),
    ("cancel_click:0", "job:0"),
    ("job:0", "cancel:0"),
    ("cancel:0", "send:0"),
    ("rec_button:0", "rec_msg:0"),
    ("rec_msg:0", "script:0"),
    ("track_toggle:0", "track_msg:0"),
    ("track_msg:0", "script:0"),
    ("place_toggle:0", "place_msg:0"),
    ("place_msg:0", "script:0"),
    ("script:0", "recorder:0"),
    ("script:1", "status:0"),
    ("plugin:0", "recorder:0"),
    ("plugin:1", "recorder:1"),
    ("receive:0", "defer:0"),
    ("defer:0", "replies:0"),
    ("replies:0", "ack_text:0"),
    ("replies:0", "ack_job:0"),
    ("ack_job:0", "job:1"),
    ("ack_text:0", "status:0"),
    ("replies:1", "progress_text:0"),
    ("progress_text:0", "status:0"),
    ("replies:2", "done:0"),
    ("done:1", "replace:0"),
    ("replace:0", "buffer:0"),
    ("done:0", "done_text:0"),
    ("done_text:0", "status:0"),
    ("done:0", "clip_gate:1"),
    ("clip_toggle:0", "clip_gate:0"),
    ("clip_gate:0", "place:0"),
    ("place:0", "script:0"),
    ("replies:3", "error_text:0"),
    ("error_text:0", "status:0"),
    ("replies:4", "cancelled_text:0"),
    ("cancelled_text:0", "status:0"),
    ("plugin:0", "plugout:0"),
    ("plugin:1", "plugout:1"),
    ("preview_button:0", "play:0"),
    ("play:0", "plugout:0"),
    ("play:1", "plugout:1"),
]

# Live parameters of the UI boxes: (type, min, max, initial), and where they sit in the device.
PARAMETERS: dict[str, tuple[int, float, float, float]] = {
    "Engine port": (1, 1024, 65535, ENGINE_PORT),
    "Reply port": (1, 1024, 65535, REPLY_PORT),
    "Seed": (1, -1, 99999, -1),
    "Steps": (1, 0, 800, 0),
    "CFG": (0, -1.0, 20.0, -1.0),
    "Arm": (2, 0, 1, 0),
    "Generate": (2, 0, 1, 0),
    "Cancel": (2, 0, 1, 0),
    "Clip": (2, 0, 1, 1),
    "Preview": (2, 0, 1, 0),
    "Rec": (2, 0, 1, 0),
    "Track": (2, 0, 1, 1),
    "Arrange": (2, 0, 1, 0),
}
# live.text "mode" in Max: 0 = Button (one output per click), 1 = Toggle (Max's default).
TOGGLES = {"Arm", "Clip", "Preview", "Rec", "Track", "Arrange"}  # the others are buttons
PRESENTATION: dict[str, tuple[float, float, float, float]] = {
    "arm_button": (8, 8, 60, 18),
    "generate_button": (8, 32, 60, 18),
    "cancel_button": (8, 56, 60, 18),
    "seed": (80, 8, 50, 15),
    "steps": (80, 32, 50, 15),
    "cfg": (140, 8, 44, 48),
    "clip_toggle": (196, 8, 60, 18),
    "preview_button": (196, 32, 60, 18),
    "status": (8, 100, 300, 22),
    "rec_button": (268, 8, 60, 18),
    "track_toggle": (268, 32, 60, 18),
    "place_toggle": (268, 56, 60, 18),
    "folder": (8, 78, 320, 18),
    "engine_port": (196, 56, 34, 15),
    "reply_port": (232, 56, 34, 15),
}

# Inlets and outlets of the Max classes used above (Max 8/9).
UI_PORTS = {"live.numbox": (1, 2), "live.dial": (1, 2), "live.text": (1, 2), "textedit": (1, 4)}
JS_OUTLETS = 3  # samuel_live.js: outlets = 3
FIXED_PORTS = {
    "live.thisdevice": (1, 3), "udpsend": (1, 0), "udpreceive": (1, 1), "defer": (1, 1),
    "prepend": (1, 1), "i": (2, 1), "buffer~": (1, 2), "live.path": (1, 3),
    "live.object": (2, 1), "plugin~": (2, 2), "plugout~": (2, 2), "js": (1, JS_OUTLETS),
}


def object_ports(text: str) -> tuple[int, int]:
    """(inlets, outlets) of an object box from its text."""
    name, *args = text.split()
    if name == "sfrecord~":  # one signal inlet per channel, one outlet (seconds recorded)
        return (int(args[0]) if args else 1), 1
    if name in FIXED_PORTS:
        return FIXED_PORTS[name]
    if name == "route":
        return len(args) + 1, len(args) + 1
    if name in ("sel", "select"):
        return (2 if len(args) == 1 else 1), len(args) + 1
    if name in ("t", "trigger", "unpack"):
        return 1, len(args)
    if name == "pack":
        return len(args), 1
    if name == "gate":
        return 2, int(args[0]) if args else 1
    if name == "play~":
        return 1, (int(args[1]) if len(args) > 1 else 1) + 1
    raise ValueError(f"build_device: add the inlets/outlets of {name!r} to object_ports")


# --- building the JSON ------------------------------------------------------------------------
@dataclass
class Patch:
    boxes: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)


def build_box(index: int, name: str, kind: str, text: str, at: tuple[float, float]) -> dict:
    box: dict[str, Any] = {"id": f"obj-{index}", "patching_rect": [at[0], at[1], 0, 22.0]}
    if kind == "obj":
        inlets, outlets = object_ports(text)
        box.update(maxclass="newobj", text=text)
    elif kind == "msg":
        inlets, outlets = 2, 1
        box.update(maxclass="message", text=text)
    elif kind == "textedit":  # a typed folder, saved with the Live set (a "blob" parameter)
        inlets, outlets = UI_PORTS[kind]
        box.update(maxclass=kind, varname=text, parameter_enable=1, outputmode=1, lines=1,
                   keymode=1, saved_attribute_attributes={"valueof": {
                       "parameter_longname": "SAMUeL folder", "parameter_shortname": "Folder",
                       "parameter_type": 3, "parameter_invisible": 1}})
    else:
        inlets, outlets = UI_PORTS[kind]
        box.update(maxclass=kind, varname=text.replace(" ", "_"), parameter_enable=1)
        box.update(ui_attributes(kind, text))
    box["patching_rect"][2] = max(40.0, 7.0 * len(text) + 12)
    box.update(numinlets=inlets, numoutlets=outlets, outlettype=[""] * outlets)
    if name in PRESENTATION:
        box.update(presentation=1, presentation_rect=list(PRESENTATION[name]))
    return box


def ui_attributes(kind: str, label: str) -> dict[str, Any]:
    """The Live parameter of a live.* box, and its look."""
    ptype, low, high, initial = PARAMETERS[label]
    value = {
        "parameter_longname": f"SAMUeL {label}", "parameter_shortname": label,
        "parameter_type": ptype, "parameter_mmin": low, "parameter_mmax": high,
        "parameter_initial_enable": 1, "parameter_initial": [initial],
    }
    attrs: dict[str, Any] = {"saved_attribute_attributes": {"valueof": value}}
    if kind == "live.text":
        value["parameter_enum"] = ["off", "on"]
        attrs.update(text=label, texton=label, mode=1 if label in TOGGLES else 0)
    return attrs


def build_patch() -> dict[str, Any]:
    """The .maxpat document."""
    patch = Patch()
    for index, (name, kind, text, at) in enumerate(BOXES, start=1):
        patch.ids[name] = f"obj-{index}"
        patch.boxes.append({"box": build_box(index, name, kind, text, at)})
    for source, destination in WIRES:
        patch.lines.append({"patchline": {"source": _end(patch, source),
                                          "destination": _end(patch, destination)}})
    return {"patcher": {
        "fileversion": 1,
        "appversion": {"major": 8, "minor": 6, "revision": 0, "architecture": "x64",
                       "modernui": 1},
        "classnamespace": "box",
        "rect": [100.0, 100.0, 1300.0, 760.0],
        "openinpresentation": 1,
        "default_fontsize": 10.0,
        "default_fontname": "Arial Bold",
        "description": "SAMUeL: sung vocal -> accompaniment, via the samuel-live engine (OSC).",
        "boxes": patch.boxes,
        "lines": patch.lines,
        "dependency_cache": [],
        "autosave": 0,
    }}


def _end(patch: Patch, ref: str) -> list[Any]:
    name, port = ref.split(":")
    return [patch.ids[name], int(port)]


def maxpat_bytes(patch: dict[str, Any]) -> bytes:
    return (json.dumps(patch, indent="\t", sort_keys=True, ensure_ascii=False) + "\n").encode()


def amxd_bytes(maxpat: bytes, device_type: bytes = b"aaaa") -> bytes:
    """The .amxd container: 32-byte header, the patch JSON, a NUL.

    Header: b"ampf", uint32 LE 4, device type (b"aaaa" audio effect, b"mmmm" MIDI effect,
    b"iiii" instrument), b"meta", uint32 4, uint32 1, b"ptch", uint32 length of JSON + NUL.
    """
    body = maxpat + b"\0"
    header = (b"ampf" + struct.pack("<I", 4) + device_type + b"meta" + struct.pack("<II", 4, 1)
              + b"ptch" + struct.pack("<I", len(body)))
    return header + body


def outputs() -> dict[Path, bytes]:
    maxpat = maxpat_bytes(build_patch())
    return {MAXPAT: maxpat, AMXD: amxd_bytes(maxpat)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = [p for p, data in outputs().items() if not p.is_file() or p.read_bytes() != data]
    if args.check:
        for p in stale:
            print(f"{p} is out of date; run python {Path(__file__).name}", file=sys.stderr)
        return 1 if stale else 0
    for path, data in outputs().items():
        path.write_bytes(data)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
