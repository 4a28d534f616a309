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
                            reply("/samuel/progress", 7, 1, 2, 9.4),
                            done_reply(7, RESULT, 47.55, MIDI_NAME)])
    assert len(record["exec"]) == 1 and record["exec"][0]["timeout"] == -1  # in the background
    argv = sent_argv(record)
    address, values = check_send_argv(argv)
    assert address == "/samuel/generate" and values == ["file:" + VOCAL["path"],
                                                          values[1], -1, 0, -1.0]
    assert record["defer_ticks"] >= 3  # polled across ticks, not in one blocking call
    assert record["messages"] == []
    assert record["progress"][-1] == "SAMUeL job 7: step 1 of 2, 9 s left"
    assert "SAMUeL job 7: queued" in record["progress"] and record["window_closed"]
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
