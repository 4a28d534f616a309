"""The Max for Live device beyond its JSON: live.text modes, ports, recording its own track,
and its script (samuel_live.js) run under Node: the MIDI reader against mido, and the whole
record -> generate -> place-clips flow against a stand-in for Max's js globals and Live's
object model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_daw_templates import NS, _patcher, device

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
