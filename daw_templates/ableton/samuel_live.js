// SAMUeL for Max for Live: the device's logic that is easier to write as code than as patch
// cords. Runs in Max's [js samuel_live.js] (ES5: no let/const/arrow functions); the MIDI parser
// at the bottom is plain JavaScript and also runs under Node for the tests.
//
// Messages in:  record 0/1, usetrack 0/1, arrange 0/1, generate, done <the 10 /samuel/done args>
// Outlets:      0 -> sfrecord~ (open PATH, 1, 0), 1 -> the status box (set ...),
//               2 -> the request's source (symbol file:PATH or symbol capture)
//
// Recording: "Rec" records this device's own input (the track it sits on) with sfrecord~ into
// a new WAV file in the folder typed into the device (it must be one of the engine's
// render.allowed_input_dirs); with "Track" on, Generate sends that file as file:PATH.
// Results: the audio as an audio clip and the notes of the MIDI file beside it as a MIDI clip,
// on two tracks to the right of this one ("SAMUeL audio", "SAMUeL MIDI", created once), in the
// first empty Session slot from the selected scene down, or with "Arrange" on, in the
// Arrangement at the song position where the take's recording started.

inlets = 1;
outlets = 3;
var jsthis = this; // Max's js object (its patcher holds the folder box)

var AUDIO_TRACK = "SAMUeL audio";
var MIDI_TRACK = "SAMUeL MIDI";
var FOLDER_BOX = "samuel_folder"; // the textedit's scripting name

var state = { take: "", recording: "", useTrack: 1, toArrangement: 0, takeStartBeats: 0,
              sentTake: false };

function status(text) {
    outlet(1, "set", text);
}

// --- recording --------------------------------------------------------------------------------
function folderSetting() {
    var box = jsthis.patcher.getnamed(FOLDER_BOX);
    var value = box ? String(box.getvalueof()) : "";
    return value.replace(/^\s+|\s+$/g, "").replace(/[\/\\]+$/, "");
}

function stamp() {
    var d = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + two(d.getMonth() + 1) + two(d.getDate()) + "-" + two(d.getHours())
        + two(d.getMinutes()) + two(d.getSeconds());
}

function record(on) {
    if (on) {
        var folder = folderSetting();
        if (!folder) {
            status("type a folder for takes first (one of the engine's allowed_input_dirs)");
            return;
        }
        state.recording = folder + "/samuel-take-" + stamp() + ".wav";
        state.takeStartBeats = Number(new LiveAPI("live_set").get("current_song_time"));
        outlet(0, "open", state.recording);
        outlet(0, 1);
        status("recording " + state.recording);
    } else if (state.recording) {
        outlet(0, 0);
        state.take = state.recording;
        state.recording = "";
        status("take ready: " + state.take);
    }
}

function usetrack(on) { state.useTrack = on ? 1 : 0; }
function arrange(on) { state.toArrangement = on ? 1 : 0; }

function generate() {
    state.sentTake = false;
    if (!state.useTrack) {
        outlet(2, "symbol", "capture");
    } else if (state.recording) {
        status("stop recording (Rec) first");
    } else if (!state.take) {
        status("record a take with Rec first (or turn Track off to use the engine's capture)");
    } else {
        state.sentTake = true;
        outlet(2, "symbol", "file:" + state.take);
    }
}

// --- results ----------------------------------------------------------------------------------
function done() {
    var args = arrayfromargs(arguments);
    try {
        place(args);
    } catch (e) {
        status("could not place the result (" + e.message + "): " + args[1]);
    }
}

function place(args) {
    var audio = String(args[1]);
    var duration = Number(args[2]);
    var midiName = args.length > 9 ? String(args[9]) : "";
    var bpm = Number(new LiveAPI("live_set").get("tempo"));
    var lengthBeats = duration * bpm / 60.0;
    var mine = trackIndex();
    var audioTrack = resultTrack(AUDIO_TRACK, false, mine + 1);
    var midiTrack = resultTrack(MIDI_TRACK, true, audioTrack + 1);
    var notes = [];
    if (midiName) {
        var smf = parseSmf(readBytes(folderOf(audio) + midiName));
        notes = smf ? liveNotes(smf, bpm) : [];
    }
    if (state.toArrangement) {
        var at = state.sentTake ? state.takeStartBeats : 0;
        new LiveAPI("live_set tracks " + audioTrack).call("create_audio_clip", audio, at);
        var track = new LiveAPI("live_set tracks " + midiTrack);
        track.call("create_midi_clip", at, lengthBeats);
        addNotes(arrangementClipAt(track, at), notes);
        status("placed at beat " + at + ": " + audio);
    } else {
        var scene = emptyScene([audioTrack, midiTrack]);
        slot(audioTrack, scene).call("create_audio_clip", audio);
        var midiSlot = slot(midiTrack, scene);
        midiSlot.call("create_clip", lengthBeats);
        addNotes(new LiveAPI(midiSlot.unquotedpath + " clip"), notes);
        status("placed in scene " + (scene + 1) + ": " + audio);
    }
}

function folderOf(path) {
    var cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
    return path.substring(0, cut + 1);
}

function readBytes(path) {
    var f = new File(path, "read");
    if (!f.isopen) {
        post("SAMUeL: cannot read " + path + "\n");
        return null;
    }
    var bytes = [];
    var size = f.eof;
    while (f.position < size) {
        var chunk = f.readbytes(Math.min(4096, size - f.position));
        if (!chunk || !chunk.length) { break; }
        bytes = bytes.concat(chunk);
    }
    f.close();
    return bytes;
}

function trackIndex() {
    var m = /tracks (\d+)/.exec(new LiveAPI("this_device").unquotedpath);
    return m ? parseInt(m[1], 10) : -1;
}

function resultTrack(name, midi, at) {
    var set = new LiveAPI("live_set");
    var count = set.getcount("tracks");
    for (var i = 0; i < count; i++) {
        if (String(new LiveAPI("live_set tracks " + i).get("name")) === name) { return i; }
    }
    set.call(midi ? "create_midi_track" : "create_audio_track", at);
    new LiveAPI("live_set tracks " + at).set("name", name);
    return at;
}

function slot(track, scene) {
    return new LiveAPI("live_set tracks " + track + " clip_slots " + scene);
}

function emptyScene(tracks) {
    var set = new LiveAPI("live_set");
    var m = /scenes (\d+)/.exec(new LiveAPI("live_set view selected_scene").unquotedpath);
    var scenes = set.getcount("scenes");
    for (var s = m ? parseInt(m[1], 10) : 0; s < scenes; s++) {
        var free = true;
        for (var t = 0; t < tracks.length; t++) {
            if (Number(slot(tracks[t], s).get("has_clip"))) { free = false; }
        }
        if (free) { return s; }
    }
    set.call("create_scene", -1);
    return scenes;
}

function arrangementClipAt(track, beats) {
    var count = track.getcount("arrangement_clips");
    for (var i = 0; i < count; i++) {
        var clip = new LiveAPI(track.unquotedpath + " arrangement_clips " + i);
        if (Math.abs(Number(clip.get("start_time")) - beats) < 1e-6) { return clip; }
    }
    return null;
}

function addNotes(clip, notes) {
    if (clip && notes.length) {
        clip.call("add_new_notes", { notes: notes });
    }
}

// --- Standard MIDI Files (pure; tested under Node) --------------------------------------------
// parseSmf(bytes) -> { ppq, tempos: [{tick, usec}], notes: [{pitch, velocity, on, off}] } with
// times in ticks (note-on velocity 0 = note-off; running status; SMPTE division unsupported),
// or null when BYTES is not a MIDI file.
function parseSmf(bytes) {
    if (!bytes || bytes.length < 14 || String.fromCharCode(bytes[0], bytes[1], bytes[2],
        bytes[3]) !== "MThd") {
        return null;
    }
    function u32(i) {
        return ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    }
    var ppq = (bytes[12] << 8) + bytes[13];
    if (ppq & 0x8000) { return null; }
    var tempos = [];
    var notes = [];
    var pos = 8 + u32(4);
    while (pos + 8 <= bytes.length) {
        var end = pos + 8 + u32(pos + 4);
        var id = String.fromCharCode(bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]);
        if (id === "MTrk") {
            readTrack(bytes, pos + 8, Math.min(end, bytes.length), tempos, notes);
        }
        pos = end;
    }
    tempos.sort(function (a, b) { return a.tick - b.tick; });
    notes.sort(function (a, b) { return a.on - b.on || a.pitch - b.pitch; });
    return { ppq: ppq, tempos: tempos, notes: notes };
}

function readTrack(bytes, i, end, tempos, notes) {
    var tick = 0;
    var running = 0;
    var open = {};
    function vlq() {
        var value = 0;
        var b;
        do { b = bytes[i++]; value = value * 128 + (b & 0x7f); } while (b & 0x80 && i < end);
        return value;
    }
    while (i < end) {
        tick += vlq();
        var status = bytes[i];
        if (status & 0x80) { i++; } else { status = running; }
        var kind = status & 0xf0;
        if (status === 0xff) {
            var type = bytes[i++];
            var len = vlq();
            if (type === 0x51 && len === 3) {
                tempos.push({ tick: tick,
                              usec: (bytes[i] << 16) + (bytes[i + 1] << 8) + bytes[i + 2] });
            }
            i += len;
        } else if (status === 0xf0 || status === 0xf7) {
            i += vlq();
        } else {
            running = status;
            var a = bytes[i++];
            var b = (kind === 0xc0 || kind === 0xd0) ? 0 : bytes[i++];
            var key = (status & 0x0f) * 128 + a;
            if (kind === 0x90 && b > 0) {
                if (open[key]) { closeNote(open[key], tick, notes); }
                open[key] = { pitch: a, velocity: b, on: tick };
            } else if ((kind === 0x80 || kind === 0x90) && open[key]) {
                closeNote(open[key], tick, notes);
                delete open[key];
            }
        }
    }
}

function closeNote(note, tick, notes) {
    note.off = tick;
    if (note.off > note.on) { notes.push(note); }
}

// Seconds at TICK under the tempo map (120 bpm until the first tempo event).
function tickSeconds(smf, tick) {
    var seconds = 0;
    var last = 0;
    var usec = 500000;
    for (var i = 0; i < smf.tempos.length && smf.tempos[i].tick < tick; i++) {
        seconds += (smf.tempos[i].tick - last) * usec / smf.ppq / 1e6;
        last = smf.tempos[i].tick;
        usec = smf.tempos[i].usec;
    }
    return seconds + (tick - last) * usec / smf.ppq / 1e6;
}

// The notes as Live's add_new_notes wants them, in beats of a set playing at BPM: the file's
// own tempo map gives each note's time in seconds, so the notes line up with the audio.
function liveNotes(smf, bpm) {
    var out = [];
    for (var i = 0; i < smf.notes.length; i++) {
        var n = smf.notes[i];
        var start = tickSeconds(smf, n.on) * bpm / 60.0;
        out.push({ pitch: n.pitch, start_time: start,
                   duration: tickSeconds(smf, n.off) * bpm / 60.0 - start,
                   velocity: n.velocity });
    }
    return out;
}

if (typeof module !== "undefined") {
    module.exports = { parseSmf: parseSmf, liveNotes: liveNotes, tickSeconds: tickSeconds,
                       record: record, usetrack: usetrack, arrange: arrange,
                       generate: generate, done: done, host: jsthis };
}
