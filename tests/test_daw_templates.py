"""DAW templates against the OSC schema: the REAPER scripts (run under Lua with a stubbed
`reaper`), the Max for Live device (.maxpat/.amxd) and the generated docs/osc.md."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from samuel_live.osc.client import Message
from samuel_live.osc.commands import format_message, parse_cli_args
from samuel_live.osc.schema import ACCESS_IN, ACCESS_OUT, load_namespace

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "daw_templates"
REAPER = TEMPLATES / "reaper"
STUB = Path(__file__).parent / "lua" / "reaper_stub.lua"
NS = load_namespace()
ACCOMPANY = REAPER / "SAMUeL - accompany selected item.lua"
CAPTURE = REAPER / "SAMUeL - generate from live capture.lua"
CANCEL = REAPER / "SAMUeL - cancel.lua"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build = _load("daw_build", TEMPLATES / "build.py")
device = _load("build_device", TEMPLATES / "ableton" / "build_device.py")


def check_args(address: str, tags: list[str], access: int = ACCESS_IN) -> None:
    """Fail unless ``address`` is in the schema with this direction and ``tags`` fit its args.

    A tag is "s", "i", "f", or "n" for a number sent without a fixed type (Pd sends floats;
    the server takes a whole float for an int)."""
    method = NS.methods.get(address)
    assert method is not None, f"{address} is not in osc_schema/namespace.json"
    assert method.access == access, f"{address}: wrong direction for this use"
    assert method.min_args <= len(tags) <= len(method.args), (
        f"{address}: sends {len(tags)} args, schema wants {method.min_args}..{len(method.args)}")
    fits = {"s": {"s"}, "i": {"i", "n"}, "f": {"f", "i", "n"}}
    for spec, tag in zip(method.args, tags, strict=False):
        assert tag in fits[spec.tag], f"{address}: {spec.name} is {spec.tag}, template sends {tag}"


def test_check_args_rejects_what_the_schema_does_not_allow() -> None:
    check_args("/samuel/generate", ["s", "s", "i", "i", "f"])
    for address, tags in [("/samuel/nope", []), ("/samuel/generate", []),
                          ("/samuel/cancel", ["s"]), ("/samuel/ping", ["i", "i"]),
                          ("/samuel/cancel", ["f"]), ("/samuel/done", ["i", "s", "f"] * 2)]:
        with pytest.raises(AssertionError):
            check_args(address, tags)


# --- generated files --------------------------------------------------------------------------
def test_generated_files_are_up_to_date() -> None:
    for path, data in build.outputs().items():
        assert path.is_file(), f"{path} missing; run python daw_templates/build.py"
        assert path.read_bytes() == data, f"{path} is stale; run python daw_templates/build.py"


def test_osc_doc_lists_every_address() -> None:
    text = (ROOT / "docs" / "osc.md").read_text()
    for address in NS.methods:
        assert f"| `{address}` |" in text


# --- Max for Live ---------------------------------------------------------------------------
def _patcher() -> dict[str, Any]:
    return json.loads(device.MAXPAT.read_text())["patcher"]


def test_amxd_header_wraps_the_maxpat_byte_for_byte() -> None:
    data = device.AMXD.read_bytes()
    maxpat = device.MAXPAT.read_bytes()
    assert data[:4] == b"ampf" and struct.unpack("<I", data[4:8]) == (4,)
    assert data[8:12] == b"aaaa"  # audio effect
    assert data[12:16] == b"meta" and struct.unpack("<II", data[16:24]) == (4, 1)
    assert data[24:28] == b"ptch"
    (length,) = struct.unpack("<I", data[28:32])
    assert length == len(data) - 32 == len(maxpat) + 1
    assert data[32:-1] == maxpat and data[-1:] == b"\0"


def test_maxpat_lines_join_existing_boxes_and_ports() -> None:
    patcher = _patcher()
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    assert len(boxes) == len(patcher["boxes"])
    for line in patcher["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert src in boxes and dst in boxes, line
        assert 0 <= outlet < boxes[src]["numoutlets"], (boxes[src].get("text"), outlet)
        assert 0 <= inlet < boxes[dst]["numinlets"], (boxes[dst].get("text"), inlet)
    for box in boxes.values():
        assert len(box["outlettype"]) == box["numoutlets"]


@pytest.mark.parametrize(("text", "ports"), [
    ("route /a /b", (3, 3)), ("sel 1", (2, 2)), ("sel 1 0", (1, 3)), ("t l l b", (1, 3)),
    ("pack a - 0 0.", (4, 1)), ("play~ x 2", (1, 3)), ("gate 1", (2, 1)), ("live.object", (2, 1)),
])
def test_device_builder_knows_max_object_ports(text: str, ports: tuple[int, int]) -> None:
    assert device.object_ports(text) == ports


def _pack_tags(text: str) -> list[str]:
    tags = []
    for word in text.split()[1:]:
        if re.fullmatch(r"-?\d+", word):
            tags.append("i")
        elif re.fullmatch(r"-?\d*\.\d*", word):
            tags.append("f")
        else:
            tags.append("s")
    return tags


def test_maxpat_osc_messages_match_the_schema() -> None:
    patcher = _patcher()
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    into = {}
    for line in patcher["lines"]:
        into.setdefault(line["patchline"]["destination"][0], []).append(
            line["patchline"]["source"][0])
    sent = set()
    for box in boxes.values():
        text = box.get("text", "")
        if box["maxclass"] == "message" and text.startswith("/samuel"):
            address, *args = text.split()
            check_args(address, ["n" if re.fullmatch(r"-?[\d.]+|\$\d", a) else "s" for a in args])
            sent.add(address)
        elif text.startswith("prepend /samuel"):
            address = text.split()[1]
            sources = [boxes[s]["text"] for s in into[box["id"]]]
            assert sources and all(s.startswith("pack ") for s in sources), sources
            for source in sources:
                check_args(address, _pack_tags(source))
            sent.add(address)
    assert {"/samuel/client/register", "/samuel/capture/arm", "/samuel/generate",
            "/samuel/cancel"} <= sent


def test_maxpat_routes_only_replies_in_the_schema() -> None:
    patcher = _patcher()
    routes = [b["box"] for b in patcher["boxes"] if b["box"].get("text", "").startswith("route /")]
    assert routes
    seen = set()
    for box in routes:
        for address in box["text"].split()[1:]:
            assert NS.methods[address].access == ACCESS_OUT, address
            seen.add(address)
    assert {"/samuel/progress", "/samuel/done", "/samuel/error"} <= seen
    # $N in the message boxes that format a reply must exist in that reply
    by_id = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    route = routes[0]
    addresses = route["text"].split()[1:]
    for line in patcher["lines"]:
        (src, outlet), (dst, _) = line["patchline"]["source"], line["patchline"]["destination"]
        if src == route["id"] and outlet < len(addresses):
            _check_dollars(by_id, dst, len(NS.methods[addresses[outlet]].args), patcher["lines"])


def _check_dollars(boxes: dict[str, Any], box_id: str, nargs: int, lines: list[Any],
                   depth: int = 0) -> None:
    text = boxes[box_id].get("text", "")
    for n in re.findall(r"\$(\d+)", text):
        assert int(n) <= nargs, f"{text!r} uses ${n} of a {nargs}-argument reply"
    if text.startswith(("t ", "gate")) and depth < 4:  # these pass the list on unchanged
        for line in lines:
            if line["patchline"]["source"][0] == box_id:
                _check_dollars(boxes, line["patchline"]["destination"][0], nargs, lines, depth + 1)


# --- REAPER -----------------------------------------------------------------------------------
def _lua() -> tuple[str, str]:
    lua, luac = shutil.which("lua5.4") or shutil.which("lua"), shutil.which("luac5.4") or \
        shutil.which("luac")
    if not lua or not luac:
        pytest.skip("Lua 5.4 is not installed (apt-get install lua5.4)")
    return lua, luac


LUA_FILES = sorted(REAPER.glob("*.lua")) + [STUB]


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_lua_scripts_compile(path: Path) -> None:
    _, luac = _lua()
    result = subprocess.run([luac, "-p", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lua_addresses_exist_in_the_schema() -> None:
    found = {}
    for path in REAPER.glob("*.lua"):
        for address in re.findall(r'"(/samuel/[\w/]+)"', path.read_text()):
            found[address] = path.name
    assert {"/samuel/generate", "/samuel/cancel", "/samuel/done", "/samuel/error",
            "/samuel/generate/ack"} <= set(found)
    for address, name in found.items():
        assert address in NS.methods, f"{name}: {address} is not in the schema"


def lua_literal(value: Any) -> str:
    """A Python value as a Lua literal (dicts become tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these inputs
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"


def run_script(script: Path, tmp_path: Path, **scenario: Any) -> dict[str, Any]:
    lua, _ = _lua()
    scenario.setdefault("os", "Linux")
    scenario.setdefault("resource", str(tmp_path / "resource"))
    path = tmp_path / "scenario.lua"
    path.write_text("return " + lua_literal(scenario) + "\n")
    result = subprocess.run([lua, str(STUB), str(path), str(script)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert "error" not in record, record["error"]
    return record


def reply(address: str, *args: Any) -> str:
    """A line exactly as `samuel-live send` prints it."""
    return format_message(Message(address, tuple(args)))


def sent_argv(record: dict[str, Any]) -> list[str]:
    """The samuel-live argv in the background script the scripts hand to ExecProcess."""
    script = record["exec"][0]["script"]
    return shlex.split(script.splitlines()[0].split(" > ")[0])


def check_send_argv(argv: list[str]) -> tuple[str, list[Any]]:
    """The argv is `samuel-live send` as the CLI parses it, with arguments the schema accepts."""
    from samuel_live.cli import build_parser

    assert argv[1] == "send"
    args = build_parser().parse_args(argv[1:])
    assert (args.host, int(args.port), float(args.timeout)) == ("127.0.0.1", 9000, 3600.0)
    address = argv[argv.index("--timeout") + 2]
    values = parse_cli_args(argv[argv.index("--timeout") + 3:], NS.methods[address])
    NS.validate(address, values)
    return address, values


VOCAL = {"path": "/songs/it's my take.wav", "position": 12.5, "length": 8.0, "offset": 2.0,
         "playrate": 1.0, "track": 1}
RESULT = "/renders/reaper/it_s my take-accomp.wav"


MIDI_NAME = "it_s my take-accomp.mid"
MIDI = "/renders/reaper/" + MIDI_NAME


def done_reply(job: int, path: str, duration: float, midi: str) -> str:
    """/samuel/done with all 10 arguments, as the engine sends it for a file source."""
    args = (job, path, duration, 0.0, 1.0, 0.1, 1.2, "", -1.0, midi)
    assert len(args) == len(NS.methods["/samuel/done"].args)
    assert NS.methods["/samuel/done"].args[-1].name == "midi"
    return reply("/samuel/done", *args)


def test_accompany_sends_the_item_and_inserts_the_result_aligned(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, tracks=3, cursor=1.0, items=[VOCAL],
                        files={RESULT: True, MIDI: True}, replies=[
                            reply("/samuel/generate/ack", 7, 0, 12.5),
                            reply("/samuel/progress", 7, 1, 2, 0.5),
                            done_reply(7, RESULT, 47.55, MIDI_NAME)])
    assert len(record["exec"]) == 1 and record["exec"][0]["timeout"] == -1  # in the background
    argv = sent_argv(record)
    address, values = check_send_argv(argv)
    assert address == "/samuel/generate" and values == ["file:" + VOCAL["path"],
                                                          values[1], -1, 0, -1.0]
    assert record["defer_ticks"] >= 3  # polled across ticks, not in one blocking call
    assert record["messages"] == []
    assert "SAMUeL job 7: step 1 of 2" in record["progress"] and record["window_closed"]
    audio, midi = record["inserts"]
    assert audio["path"] == RESULT and audio["mode"] == 0 and audio["undo_depth"] == 1
    assert audio["cursor"] == VOCAL["position"]
    assert record["new_tracks"] == [2, 3] and audio["track"] == 2  # new tracks below the vocal
    assert record["track_names"][2:4] == ["SAMUeL accompaniment", "SAMUeL MIDI"]
    assert midi["path"] == MIDI and midi["track"] == 3 and midi["undo_depth"] == 1
    for insert in (audio, midi):  # both show the window of the result the vocal shows
        assert insert["item_values"] == {"D_POSITION": 12.5, "D_LENGTH": 8.0}
        assert insert["take_values"] == {"D_STARTOFFS": 2.0, "D_PLAYRATE": 1.0}
    assert record["undo"] == ["begin", "end:SAMUeL: insert accompaniment"]
    assert record["cursor_moves"][-1] == 1.0  # the edit cursor is put back
    assert "job" not in record["extstate"]


def test_accompany_skips_the_midi_track_when_turned_off(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, tracks=3, items=[VOCAL], extstate={"midi": "0"},
                        files={RESULT: True, MIDI: True},
                        replies=[done_reply(7, RESULT, 47.55, MIDI_NAME)])
    assert [i["path"] for i in record["inserts"]] == [RESULT] and record["new_tracks"] == [2]


def _read_float_wav(path: Path) -> tuple[int, list[tuple[float, ...]]]:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return rate, [tuple(float(v) for v in frame) for frame in data]


def test_a_time_selection_sends_only_that_part_and_places_results_on_it(tmp_path: Path) -> None:
    # the vocal item spans 12.5..20.5 s; the selection 14.0..30.0 overlaps it from 14.0 to 20.5
    cuts = tmp_path / "cuts"
    record = run_script(ACCOMPANY, tmp_path, tracks=3, items=[VOCAL], selection=[14.0, 30.0],
                        audio={"rate": 8000, "channels": 2}, extstate={"cut_dir": str(cuts)},
                        files={RESULT: True, MIDI: True},
                        replies=[done_reply(7, RESULT, 6.5, MIDI_NAME)])
    address, values = check_send_argv(sent_argv(record))
    sent = Path(str(values[0]).removeprefix("file:"))
    assert sent.parent == cuts and sent.suffix == ".wav"
    rate, frames = _read_float_wav(sent)
    assert rate == 8000 and len(frames) == round(6.5 * 8000)
    # the accessor's sample at item time t is (t/100, -t/100): the cut starts 1.5 s into the item
    assert frames[0] == pytest.approx((0.015, -0.015), abs=1e-6)
    assert frames[-1][0] == pytest.approx((1.5 + (len(frames) - 1) / 8000) / 100, abs=1e-6)
    assert record["accessors"] == 0  # destroyed after use
    for insert in record["inserts"]:
        assert insert["cursor"] == 14.0
        assert insert["item_values"] == {"D_POSITION": 14.0, "D_LENGTH": 6.5}
        assert insert["take_values"] == {"D_STARTOFFS": 0, "D_PLAYRATE": 1}


def test_a_selection_outside_the_item_sends_the_whole_source(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, items=[VOCAL], selection=[30.0, 40.0], replies=[])
    assert check_send_argv(sent_argv(record))[1][0] == "file:" + VOCAL["path"]


def test_instrument_and_soundfont_settings_are_sent(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, items=[VOCAL], replies=[],
                        extstate={"instrument": "cello", "soundfont": "gm.sf2"})
    _, values = check_send_argv(sent_argv(record))
    assert values[10:] == ["cello", "gm.sf2"] and values[7] == 5  # the engine's priority default


SETTINGS = REAPER / "SAMUeL - settings.lua"


def test_settings_dialog_round_trip(tmp_path: Path) -> None:
    fields = ["/opt/sam, venv/bin/samuel-live", "10.0.0.2", "9100", "600", "42", "",
              "3.5", "cello", "-", "0", "/data/cuts"]
    record = run_script(SETTINGS, tmp_path, extstate={"host": "192.168.1.9", "steps": "20"},
                        user_inputs={"ok": True, "answer": "\n".join(fields)})
    dialog = record["dialog"]
    assert dialog["count"] == 11 == len(dialog["captions"].split(",")) - 2
    assert "separator=\n" in dialog["captions"]
    defaults = dialog["defaults"].split("\n")
    assert defaults[1] == "192.168.1.9" and defaults[5] == "20" and defaults[0] == "samuel-live"
    saved = record["extstate"]
    assert saved == {"cli": fields[0], "host": "10.0.0.2", "port": "9100", "timeout": "600",
                     "seed": "42", "cfg": "3.5", "instrument": "cello", "midi": "0",
                     "cut_dir": "/data/cuts"}  # empty or default fields are cleared
    # the next request uses them
    follow = run_script(ACCOMPANY, tmp_path, items=[VOCAL], replies=[], extstate=saved)
    argv = sent_argv(follow)
    assert argv[0] == fields[0] and argv[argv.index("--port") + 1] == "9100"


def test_a_cancelled_settings_dialog_changes_nothing(tmp_path: Path) -> None:
    record = run_script(SETTINGS, tmp_path, extstate={"port": "9100"},
                        user_inputs={"ok": False, "answer": ""})
    assert record["extstate"] == {"port": "9100"}


def test_accompany_shows_engine_errors(tmp_path: Path) -> None:
    message = "file source /songs/x.wav is outside the allowed input folders"
    record = run_script(ACCOMPANY, tmp_path, items=[VOCAL], exit_code=1, replies=[
        reply("/samuel/error", "/samuel/generate", message, -1)])
    assert record["inserts"] == [] and record["undo"] == []
    [shown] = record["messages"]
    assert message in shown


def test_accompany_explains_a_missing_cli(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, items=[VOCAL], exit_code=127,
                        replies=["sh: 1: samuel-live: not found"])
    [shown] = record["messages"]
    assert "samuel-live: not found" in shown and '"SAMUeL - settings"' in shown


def test_accompany_needs_a_selected_item(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, items=[])
    assert record["exec"] == [] and len(record["messages"]) == 1


def test_a_cancelled_job_inserts_nothing_and_says_nothing(tmp_path: Path) -> None:
    record = run_script(ACCOMPANY, tmp_path, items=[VOCAL], replies=[
        reply("/samuel/generate/ack", 4, 0, -1.0), reply("/samuel/cancelled", 4)])
    assert record["inserts"] == [] and record["messages"] == []


def test_live_capture_places_the_result_before_the_play_position(tmp_path: Path) -> None:
    result = "/renders/reaper/live.wav"
    record = run_script(CAPTURE, tmp_path, tracks=2, playing=True, play_position=30.0,
                        files={result: True}, replies=[
                            reply("/samuel/generate/ack", 2, 0, 3.0),
                            done_reply(2, result, 10.0, "live.mid")])
    address, values = check_send_argv(sent_argv(record))
    assert address == "/samuel/generate" and values[0] == "capture"
    [insert] = record["inserts"]
    assert insert["path"] == result and insert["cursor"] == 20.0 and insert["undo_depth"] == 1
    assert record["new_tracks"] == [2]  # live.mid is not there: no MIDI track


def test_cancel_sends_the_running_job(tmp_path: Path) -> None:
    record = run_script(CANCEL, tmp_path, extstate={"job": "7"},
                        exec_output=reply("/samuel/cancel/reply", 7, 1) + "\nsamuel-exit 0\n")
    [call] = record["exec"]
    assert call["timeout"] > 0
    address, values = check_send_argv(shlex.split(call["script"].splitlines()[0].split(" 2>&1")[0]))
    assert (address, values) == ("/samuel/cancel", [7])
    assert record["messages"] == []


def test_cancel_reports_an_engine_error(tmp_path: Path) -> None:
    out = reply("/samuel/error", "/samuel/cancel", "job: 'x' is not a number", -1)
    record = run_script(CANCEL, tmp_path, extstate={"job": "7"}, exec_output=out)
    assert len(record["messages"]) == 1 and "not a number" in record["messages"][0]


def test_reaper_osc_pattern_file_binds_actions() -> None:
    lines = [ln.split() for ln in (REAPER / "SAMUeL.ReaperOSC").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    patterns = {}
    for name, *rest in lines:
        if rest and "/" in rest[0]:
            for pattern in rest:
                flag, path = pattern.split("/", 1)
                assert flag and set(flag) <= set("nfisbtr"), pattern
                patterns.setdefault(name, []).append(pattern)
    assert "i/action" in patterns["ACTION"] and "t/action/@" in patterns["ACTION"]


# Max's live.text "mode": 0 = Button (fires once per click), 1 = Toggle (Max's default).
LIVE_TEXT_MODES = {"Arm": 1, "Clip": 1, "Preview": 1, "Rec": 1, "Track": 1, "Arrange": 1,
                   "Generate": 0, "Cancel": 0}


def test_every_live_text_mode_is_pinned_to_its_role() -> None:
    boxes = [b["box"] for b in _patcher()["boxes"] if b["box"]["maxclass"] == "live.text"]
    modes = {box["text"]: box["mode"] for box in boxes}
    assert modes == LIVE_TEXT_MODES


def _wires() -> tuple[dict[str, Any], set[tuple[str, int, str, int]]]:
    """Boxes by their scripting-free key (text, or varname for UI boxes) and all cords."""
    patcher = _patcher()
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    cords = set()
    for line in patcher["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        cords.add((src, outlet, dst, inlet))
    return boxes, cords


def _one(boxes: dict[str, Any], **match: Any) -> str:
    [found] = [i for i, b in boxes.items() if all(b.get(k) == v for k, v in match.items())]
    return found


def _feeds(cords: set, src: str, dst: str, inlet: int = 0, outlet: int | None = None) -> bool:
    return any(s == src and d == dst and i == inlet and (outlet is None or o == outlet)
               for s, o, d, i in cords)


def test_device_ports_are_number_boxes_applied_on_load_and_on_change() -> None:
    boxes, cords = _wires()
    send = _one(boxes, text=f"udpsend {device.ENGINE_HOST} {device.ENGINE_PORT}")
    receive = _one(boxes, text=f"udpreceive {device.REPLY_PORT}")
    engine = _one(boxes, varname="Engine_port")
    reply = _one(boxes, varname="Reply_port")
    for port in (engine, reply):  # Live parameters, in the device's face, 1024..65535
        value = boxes[port]["saved_attribute_attributes"]["valueof"]
        assert boxes[port]["maxclass"] == "live.numbox" and boxes[port]["presentation"] == 1
        assert (value["parameter_mmin"], value["parameter_mmax"]) == (1024, 65535)
    assert boxes[engine]["saved_attribute_attributes"]["valueof"]["parameter_initial"] == [
        device.ENGINE_PORT]
    # engine port -> [t b i]: first "port $1" into udpsend, then a bang to the reply port
    [(_, _, esplit, _)] = [c for c in cords if c[0] == engine]
    assert boxes[esplit]["text"] == "t b i"
    [(_, _, to_send, _)] = [c for c in cords if c[0] == esplit and c[1] == 1]
    assert boxes[to_send]["text"] == "port $1" and _feeds(cords, to_send, send)
    assert _feeds(cords, esplit, reply, outlet=0)
    # reply port -> [t i i]: first "port $1" into udpreceive, then the register message
    [(_, _, split, _)] = [c for c in cords if c[0] == reply]
    assert boxes[split]["text"] == "t i i"
    [(_, _, listen, _)] = [c for c in cords if c[0] == split and c[1] == 1]
    [(_, _, register, _)] = [c for c in cords if c[0] == split and c[1] == 0]
    assert boxes[listen]["text"] == "port $1" and _feeds(cords, listen, receive)
    assert boxes[register]["text"] == "/samuel/client/register $1"
    assert _feeds(cords, register, send)
    # on load the engine port is output, which sets udpsend and then registers
    assert _feeds(cords, _one(boxes, text="live.thisdevice"), engine)


JS = device.HERE / device.SCRIPT


def test_device_records_its_own_input_and_the_script_answers_every_message() -> None:
    boxes, cords = _wires()
    script = _one(boxes, text=f"js {device.SCRIPT}")
    recorder = _one(boxes, text="sfrecord~ 2")
    plugin = _one(boxes, text="plugin~")
    assert _feeds(cords, plugin, recorder, 0, outlet=0)
    assert _feeds(cords, plugin, recorder, 1, outlet=1)
    assert _feeds(cords, script, recorder, 0, outlet=0)
    request = next(i for i, b in boxes.items() if b.get("text", "").startswith("pack capture"))
    assert _feeds(cords, script, request, 0, outlet=2)  # the source goes into the request
    source = JS.read_text()
    assert f"outlets = {boxes[script]['numoutlets']};" in source
    # every message the patch sends the script names a function of the script
    sent = set()
    for src, _, dst, _ in cords:
        if dst == script:
            text = boxes[src].get("text", "")
            if text.startswith("prepend "):
                sent.add(text.split()[1])
            elif boxes[src]["maxclass"] == "message":
                sent.add(text.split()[0])
    assert sent >= {"record", "usetrack", "arrange", "generate", "done"}
    for name in sent:
        assert re.search(rf"^function {name}\(", source, re.M), f"{device.SCRIPT} lacks {name}()"
    # /samuel/done reaches the script whole (all its arguments) through the Clip gate
    route = _one(boxes, text=next(b["text"] for b in boxes.values()
                                  if b.get("text", "").startswith("route /samuel/generate/ack")))
    done_outlet = boxes[route]["text"].split()[1:].index("/samuel/done")
    [(_, _, done, _)] = [c for c in cords if c[0] == route and c[1] == done_outlet
                         and boxes[c[2]]["text"].startswith("t ")]
    gate = _one(boxes, text="gate 1")
    place = _one(boxes, text="prepend done")
    assert boxes[done]["text"].split()[1] == "l" and _feeds(cords, done, gate, 1, outlet=0)
    assert _feeds(cords, gate, place) and _feeds(cords, place, script)
    folder = _one(boxes, maxclass="textedit")
    assert boxes[folder]["varname"] in source and boxes[folder]["presentation"] == 1


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("Node.js is not installed (it runs the device's script outside Max)")
    return node


def run_js(program: str) -> Any:
    """Run PROGRAM under Node with `m` = the device's script; returns what it prints as JSON."""
    prelude = f"const m = require({json.dumps(str(JS))});\n"
    result = subprocess.run([_node(), "-e", prelude + program], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _mido_notes(path: Path, bpm: float) -> list[tuple[int, float, float, int]]:
    """(pitch, start, duration, velocity) in beats at BPM, from mido's own tempo handling."""
    import mido

    now, open_, out = 0.0, {}, []
    for msg in mido.MidiFile(str(path)):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_[msg.note] = (now, msg.velocity)
        elif msg.type in ("note_on", "note_off") and msg.note in open_:
            start, velocity = open_.pop(msg.note)
            out.append((msg.note, start * bpm / 60, (now - start) * bpm / 60, velocity))
    return sorted(out, key=lambda n: (n[1], n[0]))


def _js_notes(path: Path, bpm: float) -> list[tuple[int, float, float, int]]:
    notes = run_js(f"const b = Array.from(require('fs').readFileSync({json.dumps(str(path))}));"
                   f"console.log(JSON.stringify(m.liveNotes(m.parseSmf(b), {bpm})));")
    return [(n["pitch"], n["start_time"], n["duration"], n["velocity"]) for n in notes]


def test_device_script_reads_the_engines_midi_file_like_mido(tmp_path: Path) -> None:
    from samuel_live.render.midi import midi_file
    from samuel_live.render.notes import Note
    from samuel_live.timing import MusicalTime

    notes = [Note(48, 0.0, 1.2, 90), Note(55, 0.31, 1.2, 70), Note(64, 1.25, 2.5, 100),
             Note(48, 1.2, 2.0, 60)]
    path = tmp_path / "take.mid"
    path.write_bytes(midi_file(notes, MusicalTime(bpm=97.0, beats_per_bar=3)))
    got, want = _js_notes(path, 120.0), _mido_notes(path, 120.0)
    assert [n[0] for n in got] == [48, 55, 48, 64] and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0] and g[3] == w[3]
        assert g[1:3] == pytest.approx(w[1:3], abs=1e-9)
    # in seconds the notes are where the engine put them (to one 480-PPQ tick at 97 bpm)
    assert got[1][1] * 60 / 120 == pytest.approx(0.31, abs=60 / 97 / 480)


def test_device_script_follows_a_tempo_map_and_running_status(tmp_path: Path) -> None:
    import mido

    track = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500000, time=0),
        mido.Message("note_on", note=60, velocity=80, time=0),
        mido.Message("note_on", note=60, velocity=0, time=480),  # note-off as velocity 0
        mido.MetaMessage("set_tempo", tempo=1000000, time=0),
        mido.Message("note_on", note=67, velocity=50, time=240),
        mido.Message("note_off", note=67, velocity=0, time=960),
    ])
    path = tmp_path / "map.mid"
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(str(path))
    assert b"\x83\x60\x3c\x00" in path.read_bytes()  # running status: no 0x90 before 60
    got, want = _js_notes(path, 90.0), _mido_notes(path, 90.0)
    assert [(n[0], n[3]) for n in got] == [(60, 80), (67, 50)]
    for g, w in zip(got, want, strict=True):
        assert g[1:3] == pytest.approx(w[1:3], abs=1e-9)
    assert got[1][1] == pytest.approx((0.5 + 0.5) * 90 / 60)  # 1 s in, at 90 bpm


# A stand-in for Max's js globals and Live's object model (LiveAPI), enough for the device's
# script: tracks with clip slots and arrangement clips, scenes, tempo, song time. Like the
# REAPER stub it models the documented API; it is not Live.
FAKE_LIVE = r"""
const fs = require('fs');
const calls = [];
const live = { tempo: 90, song_time: 16, selected_scene: 1, scenes: 3, tracks: [] };
const newTrack = (name, midi) => ({ name, midi,
  slots: Array.from({ length: live.scenes }, () => ({ clip: null })), arrangement: [] });
live.tracks.push(newTrack('Vocal', false));
global.outlet = (...a) => calls.push(a);
global.post = () => {};
global.arrayfromargs = (a) => Array.prototype.slice.call(a);
global.File = function (path) {
  this.isopen = fs.existsSync(path);
  this.data = this.isopen ? fs.readFileSync(path) : Buffer.alloc(0);
  this.position = 0; this.eof = this.data.length;
  this.readbytes = (n) => { const c = Array.from(this.data.subarray(this.position,
    this.position + n)); this.position += c.length; return c; };
  this.close = () => {};
};
global.LiveAPI = function (path) {
  const alias = { this_device: 'live_set tracks 0 devices 0',
                  'live_set view selected_scene': 'live_set scenes ' + live.selected_scene };
  this.unquotedpath = alias[path] || path;
  const w = this.unquotedpath.split(' ');
  const track = w[1] === 'tracks' ? live.tracks[+w[2]] : null;
  const slot = track && w[3] === 'clip_slots' ? track.slots[+w[4]] : null;
  const clip = slot && w[5] === 'clip' ? slot.clip
    : track && w[3] === 'arrangement_clips' ? track.arrangement[+w[4]] : null;
  this.get = (p) => [clip ? clip[p] : slot ? (p === 'has_clip' ? (slot.clip ? 1 : 0) : null)
    : track ? track[p] : { tempo: live.tempo, current_song_time: live.song_time }[p]];
  this.set = (p, v) => { track[p] = v; };
  this.getcount = (p) => track ? track.arrangement.length
    : p === 'tracks' ? live.tracks.length : live.scenes;
  this.call = (name, ...a) => {
    if (name === 'create_audio_track' || name === 'create_midi_track') {
      live.tracks.splice(a[0], 0, newTrack('', name === 'create_midi_track'));
    } else if (name === 'create_scene') {
      live.scenes += 1; live.tracks.forEach((t) => t.slots.push({ clip: null }));
    } else if (name === 'create_audio_clip' && slot) {
      if (track.midi) throw new Error('audio clip on a MIDI track');
      slot.clip = { file: a[0], notes: [] };
    } else if (name === 'create_audio_clip') {
      track.arrangement.push({ file: a[0], start_time: a[1], notes: [] });
    } else if (name === 'create_clip') {
      if (!track.midi) throw new Error('create_clip on an audio track');
      slot.clip = { length: a[0], notes: [] };
    } else if (name === 'create_midi_clip' && live.old) {
      throw new Error('Invalid syntax: create_midi_clip');
    } else if (name === 'create_midi_clip') {
      track.arrangement.push({ start_time: a[0], length: a[1], notes: [] });
    } else if (name === 'add_new_notes') {
      clip.notes.push(...a[0].notes);
    } else { throw new Error('unknown call ' + name); }
  };
};
"""


def test_device_script_records_a_take_sends_it_and_places_audio_and_midi_clips(
        tmp_path: Path) -> None:
    from samuel_live.render.midi import midi_file
    from samuel_live.render.notes import Note
    from samuel_live.timing import MusicalTime

    renders = tmp_path / "renders"
    renders.mkdir()
    (renders / "a b.mid").write_bytes(midi_file([Note(50, 0.5, 1.5, 80), Note(57, 1.0, 2.0, 64)],
                                                MusicalTime(bpm=120.0)))
    audio = str(renders / "a b.wav")
    done = [7, audio, 4.0, 0.0, 1.0, 0.1, 1.2, "", -1.0, "a b.mid"]
    assert len(done) == len(NS.methods["/samuel/done"].args)
    folder = str(tmp_path / "takes")
    state = run_js(FAKE_LIVE + f"""
m.host.patcher = {{ getnamed: (n) => n === 'samuel_folder'
  ? {{ getvalueof: () => {json.dumps(folder + "/ ")} }} : null }};
m.generate();                       // nothing recorded yet: says so, sends nothing
m.record(1); live.song_time = 40; m.record(0);
m.generate();
const done = {json.dumps(done)};
m.done(...done); m.done(...done);   // Session: two results, two scenes
m.arrange(1); m.done(...done);      // Arrangement: where the take's recording started
console.log(JSON.stringify({{ calls, tracks: live.tracks }}));
""")
    calls, tracks = state["calls"], state["tracks"]
    assert calls[0][:2] == [1, "set"] and "record a take" in calls[0][2]
    opened = calls[1]
    assert opened[:2] == [0, "open"] and opened[2].startswith(folder + "/samuel-take-")
    take = opened[2]
    assert take.endswith(".wav") and "//" not in take
    assert [0, 1] in calls and [0, 0] in calls and calls.index([0, 1]) < calls.index([0, 0])
    assert [2, "symbol", "file:" + take] in calls  # the source of the request
    assert [t["name"] for t in tracks] == ["Vocal", "SAMUeL audio", "SAMUeL MIDI"]
    audio_track, midi_track = tracks[1], tracks[2]
    assert not audio_track["midi"] and midi_track["midi"]
    beats = 4.0 * 90 / 60  # the result's duration at the set's tempo
    want = [(50, 0.5 * 1.5, 1.0 * 1.5, 80), (57, 1.0 * 1.5, 1.0 * 1.5, 64)]  # 90 bpm: 1.5 beat/s
    for scene in (1, 2):  # the selected scene, then the next empty one
        assert audio_track["slots"][scene]["clip"]["file"] == audio
        clip = midi_track["slots"][scene]["clip"]
        assert clip["length"] == pytest.approx(beats)
        got = [(n["pitch"], n["start_time"], n["duration"], n["velocity"]) for n in clip["notes"]]
        assert got == [pytest.approx(w) for w in want]
    assert audio_track["slots"][0]["clip"] is None
    [placed] = audio_track["arrangement"]
    [placed_midi] = midi_track["arrangement"]
    assert placed == {"file": audio, "start_time": 16, "notes": []}
    assert placed_midi["start_time"] == 16 and placed_midi["length"] == pytest.approx(beats)
    assert len(placed_midi["notes"]) == 2


def test_device_script_shows_why_a_result_could_not_be_placed(tmp_path: Path) -> None:
    done = [3, str(tmp_path / "x.wav"), 2.0, 0.0, 1.0, 0.1, 1.2, "1.5", 0.2, "x.mid"]
    state = run_js(FAKE_LIVE + f"""
live.old = true;                    // a Live without Track.create_midi_clip
m.arrange(1); m.done(...{json.dumps(done)});
console.log(JSON.stringify({{ calls, tracks: live.tracks }}));
""")
    [audio] = state["tracks"][1]["arrangement"]
    assert audio["start_time"] == 0  # a capture request: no take, so the song's start
    [[outlet, verb, text]] = state["calls"]
    assert (outlet, verb) == (1, "set") and "create_midi_clip" in text and done[1] in text
