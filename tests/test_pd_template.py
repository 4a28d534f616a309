"""The Pure Data template: its wiring, its OSC against the schema, and a headless run against
a real engine (tiny random model, in-memory capture) that loads the result into its tables."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_engine import TINY, make_config, sine

from samuel_live.audio.sources import MemorySource
from samuel_live.engine.engine import Engine
from samuel_live.osc.schema import ACCESS_IN, load_namespace
from samuel_live.osc.server import OscServer
from samuel_live.pipeline import Accompanist

PATCH = Path(__file__).resolve().parent.parent / "daw_templates" / "puredata" / "samuel.pd"
NS = load_namespace()


@dataclass(frozen=True)
class PdBox:
    kind: str  # obj | msg | floatatom | text
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.words[0] if self.kind == "obj" and self.words else self.kind


def parse_patch(text: str) -> tuple[list[PdBox], list[tuple[int, int, int, int]]]:
    """The boxes (in Pd's numbering) and connections of a single-canvas patch."""
    boxes, wires = [], []
    for record in re.split(r"(?<!\\);\s*\n", text):
        words = record.split()
        if len(words) < 2 or words[0] != "#X":
            continue
        if words[1] in ("obj", "msg", "floatatom", "symbolatom", "text"):
            boxes.append(PdBox(words[1], tuple(words[4:])))
        elif words[1] == "connect":
            wires.append(tuple(int(w) for w in words[2:6]))  # type: ignore[arg-type]
    return boxes, wires


def pd_ports(box: PdBox) -> tuple[int, int]:
    """(inlets, outlets) of the vanilla objects the template uses."""
    if box.kind == "msg":
        return 1, 1
    if box.kind == "floatatom":
        receives = len(box.words) > 5 and box.words[5] != "-"
        return (0 if receives else 1), 1
    if box.kind == "text":
        return 0, 0
    if box.kind == "symbolatom":
        return 1, 1
    name, args = box.words[0], box.words[1:]
    fixed = {"loadbang": (1, 1), "r": (0, 1), "s": (1, 0), "netsend": (1, 1),
             "netreceive": (1, 2), "oscparse": (1, 1), "f": (2, 1), "print": (1, 0),
             "soundfiler": (1, 2), "spigot": (2, 1), "table": (1, 1), "tabplay~": (1, 2),
             "dac~": (2, 0)}
    if name in fixed:
        return fixed[name]
    if name == "list":
        return {"trim": (1, 1), "prepend": (2, 1), "append": (2, 1), "split": (2, 3)}[args[0]]
    if name == "file":  # Pd 0.52+: a result outlet and an error outlet
        return {"splitname": (1, 2), "join": (1, 2)}[args[0]]
    if name in ("t", "unpack"):
        return 1, len(args)
    if name == "pack":
        return len(args), 1
    if name == "route":
        return (2 if len(args) == 1 else 1), len(args) + 1
    if name == "oscformat":
        return 1, 1
    raise AssertionError(f"add the ports of [{name}] to pd_ports")


@pytest.fixture(scope="module")
def patch() -> tuple[list[PdBox], list[tuple[int, int, int, int]]]:
    return parse_patch(PATCH.read_text())


def test_connections_join_existing_objects_and_ports(patch) -> None:
    boxes, wires = patch
    assert len(boxes) > 50 and len(wires) > 50
    for src, outlet, dst, inlet in wires:
        assert 0 <= src < len(boxes) and 0 <= dst < len(boxes), (src, dst)
        assert outlet < pd_ports(boxes[src])[1], (boxes[src], outlet)
        assert inlet < pd_ports(boxes[dst])[0], (boxes[dst], inlet)


def test_only_vanilla_objects(patch) -> None:
    boxes, _ = patch
    for box in boxes:
        pd_ports(box)  # raises for anything outside the known vanilla set


def _sources(wires, index: int) -> list[tuple[int, int]]:
    return [(src, outlet) for src, outlet, dst, inlet in wires if dst == index and inlet == 0]


def _sent_tags(boxes: list[PdBox], src: int, outlet: int) -> list[str]:
    """What a box sends into an [oscformat]: "s" for symbols, "n" for numbers."""
    box = boxes[src]
    if box.kind == "msg":
        words = list(box.words[1:] if box.words[0] == "list" else box.words)
        return ["n" if re.fullmatch(r"-?[\d.]+|\\\$\d", w) else "s" for w in words]
    if box.name in ("f", "t") or box.kind == "floatatom":
        return ["n"]
    if box.name == "route":  # a matched selector with no arguments comes out as a bang
        return []
    raise AssertionError(f"cannot tell what {box} sends")


def test_oscformat_messages_match_the_schema(patch) -> None:
    boxes, wires = patch
    sent = set()
    for index, box in enumerate(boxes):
        if box.name != "oscformat":
            continue
        address = "/" + "/".join(box.words[1:])
        method = NS.methods.get(address)
        assert method is not None and method.access == ACCESS_IN, address
        sources = _sources(wires, index)
        assert sources, f"nothing feeds [oscformat {address}]"
        for src, outlet in sources:
            tags = _sent_tags(boxes, src, outlet)
            assert method.min_args <= len(tags) <= len(method.args), (address, tags)
            for spec, tag in zip(method.args, tags, strict=False):
                assert (spec.tag == "s") == (tag == "s"), (address, spec.name, tag)
        sent.add(address)
    assert {"/samuel/client/register", "/samuel/capture/arm", "/samuel/generate",
            "/samuel/cancel"} <= sent


def _route_addresses(boxes, wires, index: int, prefix: str) -> Iterator[tuple[str, int, int]]:
    """(address, route box, outlet) for every route reached from the [route samuel] chain."""
    args = boxes[index].words[1:]
    for outlet, word in enumerate(args):
        address = f"{prefix}/{word}"
        yield address, index, outlet
        for src, out, dst, _ in wires:
            if src == index and out == outlet and boxes[dst].name == "route":
                yield from _route_addresses(boxes, wires, dst, address)


def test_routes_and_unpacks_match_the_replies(patch) -> None:
    boxes, wires = patch
    root = next(i for i, b in enumerate(boxes) if b.words == ("route", "samuel"))
    found = {}
    for src, out, dst, _ in wires:
        if src == root and out == 0:
            for address, box, outlet in _route_addresses(boxes, wires, dst, "/samuel"):
                assert NS.node(address) is not None, f"{address} is not in the schema"
                found[address] = (box, outlet)
    assert {"/samuel/done", "/samuel/error", "/samuel/progress", "/samuel/generate/ack"} <= set(
        found)
    for address, (box, outlet) in found.items():
        method = NS.methods.get(address)
        for src, out, dst, _ in wires:
            if src == box and out == outlet and boxes[dst].name == "unpack" and method:
                assert len(boxes[dst].words) - 1 <= len(method.args), (address, boxes[dst])
    done_args = NS.methods["/samuel/done"].args
    done = next(i for i, b in enumerate(boxes) if b.words[:3] == ("unpack", "f", "s"))
    assert boxes[done].words[1:] == tuple("s" if a.tag == "s" else "f" for a in done_args)
    names = [a.name for a in done_args]
    # the MIDI file's name goes into the cold inlet of [list append] before the path arrives
    # (unpack fires right to left), and the path into [file splitname]: folder + name
    midi_to = {(dst, inlet) for src, out, dst, inlet in wires
               if src == done and out == names.index("midi")}
    path_to = {dst for src, out, dst, _ in wires if src == done and out == names.index("path")}
    [(append, inlet)] = midi_to
    assert inlet == 1
    assert boxes[append].words == ("list", "append")
    split = next(d for d in path_to if boxes[d].words == ("file", "splitname"))
    assert (split, 0, append - 1, 0) in wires and (append - 1, 0, append, 0) in wires


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OscServer]:
    config = make_config(tmp_path, "server.udp_port=0", "server.tcp_port=0",
                         "server.http_port=0")
    engine = Engine(config, accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                    warm_up=False)
    engine.start()
    engine.arm()
    osc = OscServer(engine, config.server).start()
    yield osc
    osc.close()
    engine.close()


def test_template_generates_headless_against_the_engine(server: OscServer) -> None:
    if shutil.which("pd") is None:
        pytest.skip("Pure Data is not installed (apt-get install puredata-core)")
    auto = f"samuel-auto {_free_udp_port()} {server.udp_port} 3 2 -1"
    proc = subprocess.run(
        ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-nrt", "-open", str(PATCH),
         "-send", auto],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "LANG": "C"},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("samuel-")]
    assert proc.returncode == 0, proc.stderr[-2000:]
    prefixes = [ln.split(":")[0] for ln in lines]
    assert "samuel-error" not in prefixes, lines
    assert prefixes[0] == "samuel-ack" and "samuel-progress" in prefixes, lines
    done = next(ln for ln in lines if ln.startswith("samuel-done:"))
    path = Path(done.split()[2])
    assert path.is_file() and path.parent == server.engine.folder
    midi = Path(next(ln for ln in lines if ln.startswith("samuel-midi:")).split(" ", 2)[2])
    assert midi.is_file() and midi.parent == path.parent and midi.suffix == ".mid"
    loaded = next(ln for ln in lines if ln.startswith("samuel-loaded:"))
    assert int(float(loaded.split()[1])) > 1000  # frames read into the samuel-left table
