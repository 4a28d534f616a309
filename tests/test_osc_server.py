"""The OSC bridge against real peers: python sockets, liblo's oscsend/oscdump, Pure Data, TCP
(SLIP and length-prefixed) and HTTP OSCQuery, plus a flood of garbage."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pythonosc import tcp_client
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from test_engine import TINY, make_config, sine

from samuel_live.audio.io import read_audio
from samuel_live.audio.playback import PlaybackConfig, Player
from samuel_live.audio.sources import MemorySource
from samuel_live.config import Config
from samuel_live.engine.engine import Engine
from samuel_live.osc.client import MAX_MESSAGE_BYTES, Message, OscClient, encode, parse_packet
from samuel_live.osc.commands import send
from samuel_live.osc.schema import ACCESS_OUT, load_namespace
from samuel_live.osc.server import Limits, OscServer
from samuel_live.pipeline import Accompanist

NS = load_namespace()
LONG_STEPS = 800
PORTS = ("server.udp_port=0", "server.tcp_port=0", "server.http_port=0")


class Listener:
    """A UDP peer that records every raw datagram the server sends it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.raw: list[bytes] = []
        self._cond = threading.Condition()
        self._run = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _loop(self) -> None:
        while self._run:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            with self._cond:
                self.raw.append(data)
                self._cond.notify_all()

    def messages(self) -> list[Message]:
        with self._cond:
            return [m for d in self.raw for m in parse_packet(d)]

    def send(self, port: int, address: str, *args: object) -> None:
        method = NS.methods.get(address)
        self.sock.sendto(encode(address, args, method.type_tags if method else None),  # type: ignore[arg-type]
                         ("127.0.0.1", port))

    def wait(self, address: str, timeout: float = 60.0, **match: object) -> Message:
        def found() -> Message | None:
            for m in self.messages():
                if m.address == address and all(m.args[int(k[1:])] == v for k, v in match.items()):
                    return m
            return None

        with self._cond:
            assert self._cond.wait_for(found, timeout), f"no {address} {match}: {self.messages()}"
            return found()  # type: ignore[return-value]

    def close(self) -> None:
        self._run = False
        self._thread.join()
        self.sock.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Engine, OscServer]]:
    yield from _serve(make_config(tmp_path, *PORTS))


def _serve(config: Config, limits: Limits | None = None) -> Iterator[tuple[Engine, OscServer]]:
    engine = Engine(config, accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                    warm_up=False)
    engine.start()
    engine.arm()
    server = OscServer(engine, config.server, limits=limits).start()
    yield engine, server
    server.close()
    engine.close()


@pytest.fixture
def peer() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def test_every_reply_conforms_to_the_namespace_and_is_small(
        served: tuple[Engine, OscServer], peer: Listener) -> None:
    _, server = served
    port = server.udp_port
    for address, args in [
        ("/samuel/ping", (5,)), ("/samuel/status", ()), ("/samuel/client/register", ()),
        ("/samuel/capture/level", ()), ("/samuel/capture/mark", ("start",)),
        ("/samuel/capture/mark", ("end",)), ("/samuel/post/get", ()),
        ("/samuel/post/set", ('[{"type": "highpass", "cutoff_hz": 50}]',)),
        ("/samuel/model/info", ()), ("/samuel/transport/tempo", (97.5,)),
        ("/samuel/transport/signature", (6, 8)), ("/samuel/transport/bar", (3,)),
        ("/samuel/cancel", (999,)), ("/samuel/nope", ()), ("/samuel/capture/arm", ()),
        ("/samuel/generate", ("capture", "conform", 1, 2)), ("/samuel/client/unregister", ()),
    ]:
        peer.send(port, address, *args)
        if address == "/samuel/generate":
            peer.wait("/samuel/done")
    time.sleep(0.2)
    replies = peer.messages()
    assert len(replies) >= 20
    for raw in peer.raw:
        assert len(raw) < MAX_MESSAGE_BYTES
    for msg in replies:
        method = NS.methods[msg.address]
        assert method.access == ACCESS_OUT
        assert len(msg.args) == len(method.args) and method.validate(msg.args)
    by_address = {m.address: m.args for m in replies}
    assert by_address["/samuel/pong"] == (5,)
    assert by_address["/samuel/transport/reply"][:3] == (97.5, 6, 8)
    assert by_address["/samuel/cancel/reply"] == (999, 0)
    assert json.loads(by_address["/samuel/post/get/reply"][0])[0]["cutoff_hz"] == 50
    assert by_address["/samuel/model/info/reply"][0] == "random-0"


def test_errors_name_the_address_and_the_problem(served: tuple[Engine, OscServer],
                                                 peer: Listener) -> None:
    _, server = served
    cases = [
        (("/samuel/nope", 1), "/samuel/nope", "unknown address"),
        (("/samuel/generate", "capture", "x", 3.5), "/samuel/generate", "whole number"),
        (("/samuel/generate", "capture", "../up"), "/samuel/generate", ".."),
        (("/samuel/generate", "capture", "/etc/x"), "/samuel/generate", "absolute"),
        (("/samuel/generate", "file:/etc/passwd"), "/samuel/generate", "allowed_input_dirs"),
        (("/samuel/post/set", "{not json"), "/samuel/post/set", "not valid JSON"),
        (("/samuel/model/load", "/no/such/model"), "/samuel/model/load", "/no/such/model"),
        (("/samuel/play", 12345), "/samuel/play", "no finished result"),
    ]
    for (address, *args), _, _ in cases:
        peer.sock.sendto(encode(address, args), ("127.0.0.1", server.udp_port))
    time.sleep(0.3)
    errors = [m.args for m in peer.messages() if m.address == "/samuel/error"]
    assert len(errors) == len(cases)
    for (where, message, job), (_, address, problem) in zip(errors, cases, strict=True):
        assert where == address and problem in message and job == -1


def test_malformed_datagrams_are_counted_and_answered(served: tuple[Engine, OscServer],
                                                      peer: Listener) -> None:
    _, server = served
    bad = [b"", b"hello", b"/samuel/ping\x00", b"/samuel/ping\x00\x00\x00\x00,i\x00\x00",
           b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 999), b"/x" * 20000]
    for packet in bad:
        peer.sock.sendto(packet, ("127.0.0.1", server.udp_port))
    peer.wait("/samuel/error", timeout=5)
    time.sleep(0.3)
    assert server.stats.malformed == len(bad)
    errors = [m for m in peer.messages() if m.address == "/samuel/error"]
    assert len(errors) == len(bad) and all("malformed" in m.args[1] for m in errors)


def test_bundles_are_unpacked(served: tuple[Engine, OscServer], peer: Listener) -> None:
    _, server = served
    builder = OscBundleBuilder(IMMEDIATELY)
    for token in (1, 2):
        builder.add_content(OscMessage(encode("/samuel/ping", (token,))))
    peer.sock.sendto(builder.build().dgram, ("127.0.0.1", server.udp_port))
    peer.wait("/samuel/pong", a0=2, timeout=5)
    assert [m.args for m in peer.messages()] == [(1,), (2,)]


def test_generate_progress_done_and_cancel_over_udp(served: tuple[Engine, OscServer],
                                                    peer: Listener) -> None:
    _, server = served
    peer.send(server.udp_port, "/samuel/generate", "capture", "udp-take", 4.0, 3.0, 1.0)
    job = peer.wait("/samuel/generate/ack").args[0]
    done = peer.wait("/samuel/done", a0=job)
    steps = [m.args[1] for m in peer.messages()
             if m.address == "/samuel/progress" and m.args[0] == job]
    # started (0), then steps at most 20 a second, always the last one
    assert steps[0] == 0 and steps[-1] == 3 and steps == sorted(set(steps))
    assert Path(done.args[1]).is_file()
    assert done.args[1] == str(server.engine.folder / "udp-take.wav")
    assert done.args[2] == pytest.approx(sine().shape[1] / 44100)
    queued_s, model_s, post_s, total_s, captured_at, capture_latency_s, midi = done.args[3:]
    assert midi == "udp-take.mid" and (Path(done.args[1]).parent / midi).is_file()
    assert min(queued_s, model_s, post_s) >= 0 and total_s >= model_s
    # the latency report: dated from the newest frame captured when the request arrived
    assert float(captured_at) <= time.time() and capture_latency_s >= total_s
    side = json.loads(Path(done.args[1] + ".json").read_text())
    timings, capture = side["timings"], side["capture"]
    assert capture["captured_at"] == pytest.approx(float(captured_at), abs=1e-6)
    assert capture["captured_monotonic"] <= time.monotonic()
    for key, value in zip(("queued_s", "model_s", "post_s", "total_s", "capture_latency_s"),
                          done.args[3:7] + done.args[8:9], strict=True):
        assert timings[key] == pytest.approx(value, abs=1e-3), key

    peer.send(server.udp_port, "/samuel/generate", "capture", "long", 1, LONG_STEPS)
    long_job = peer.wait("/samuel/generate/ack", a0=job + 1).args[0]
    peer.wait("/samuel/progress", a0=long_job, a1=1)
    peer.send(server.udp_port, "/samuel/cancel", long_job)
    peer.wait("/samuel/cancel/reply", a0=long_job, a1=1)
    peer.wait("/samuel/cancelled", a0=long_job)


def test_generate_takes_a_key_and_refuses_a_bad_one(served: tuple[Engine, OscServer],
                                                   peer: Listener) -> None:
    _, server = served
    peer.send(server.udp_port, "/samuel/generate", "capture", "keyed", 3, 1, -1.0, "-", "-", 5,
              0, 0, "-", "-", "E minor")
    job = peer.wait("/samuel/generate/ack").args[0]
    done = peer.wait("/samuel/done", a0=job)
    assert json.loads(Path(done.args[1] + ".json").read_text())["settings"]["key"] == "E minor"
    peer.send(server.udp_port, "/samuel/generate", "capture", "bad-key", 3, 1, -1.0, "-", "-",
              5, 0, 0, "-", "-", "H minor")
    where, message, _job = peer.wait("/samuel/error").args
    assert where == "/samuel/generate" and "tonic" in message


def test_loop_on_the_daw_transport(served: tuple[Engine, OscServer], peer: Listener) -> None:
    _, server = served
    peer.send(server.udp_port, "/samuel/transport/tempo", 100)
    peer.send(server.udp_port, "/samuel/transport/signature", 4, 4)
    peer.wait("/samuel/transport/reply", a0=100.0, a1=4)
    peer.send(server.udp_port, "/samuel/generate", "capture", "loop4", 3, 1, -1.0, "-", "-", 5,
              4)
    job = peer.wait("/samuel/generate/ack").args[0]
    done = peer.wait("/samuel/done", a0=job)
    assert read_audio(done.args[1]).shape == (2, 423360)  # 4 bars of 4 beats at 100 bpm
    side = json.loads(Path(done.args[1] + ".json").read_text())
    assert side["loop_bars"] == 4 and side["samples"] == 423360
    assert side["musical_time"] == {"bpm": 100.0, "beats_per_bar": 4, "beat_unit": 4,
                                    "source": "transport"}


@pytest.mark.jack
def test_autoplay_starts_the_loop_on_the_next_bar(jack_server: str, tmp_path: Path,
                                                  peer: Listener) -> None:
    player = Player(PlaybackConfig(device="system", hostapi="JACK")).start()
    engine = Engine(make_config(tmp_path, *PORTS), accompanist=Accompanist.random(TINY),
                    capture=MemorySource(sine()), player=player, warm_up=False)
    with engine, OscServer(engine, engine.config.server) as server:
        engine.arm()
        peer.send(server.udp_port, "/samuel/transport/tempo", 120)
        peer.send(server.udp_port, "/samuel/transport/bar", 1)
        peer.wait("/samuel/transport/reply", a0=120.0)
        peer.send(server.udp_port, "/samuel/generate", "capture", "auto", 3, 1, -1.0, "-", "-",
                  5, 1, 1)
        job = peer.wait("/samuel/generate/ack").args[0]
        peer.wait("/samuel/done", a0=job)
        _, frame, in_s = peer.wait("/samuel/play/reply", a0=job).args
        assert 0 <= in_s <= engine.transport.bar_seconds
        rate = player.device_rate
        next_bar = engine.transport.boundary_frame(player.position().stream_frame, rate, "bar")
        off_grid = (next_bar - frame) % (engine.transport.bar_seconds * rate)
        block = 512  # the stream frame counter advances a block at a time
        assert min(off_grid, engine.transport.bar_seconds * rate - off_grid) <= block + 1
        time.sleep(in_s + 0.3)
        assert player.position().playing and player.position().audio_frame is not None


def test_registered_clients_get_events_of_other_clients(served: tuple[Engine, OscServer],
                                                        peer: Listener) -> None:
    _, server = served
    watcher, other = Listener(), Listener()
    try:
        watcher.send(server.udp_port, "/samuel/client/register")
        other.send(server.udp_port, "/samuel/client/register", other.port)
        other.wait("/samuel/client/register/reply", a2=2)
        peer.send(server.udp_port, "/samuel/generate", "capture", "shared", 1, 2)
        path = peer.wait("/samuel/done").args[1]
        assert watcher.wait("/samuel/done").args[1] == path
        assert other.wait("/samuel/generate/ack")
        # The job's last event must have reached `other` before it unregisters; counting
        # earlier raced with a late progress/done (7 == 6).
        assert other.wait("/samuel/done").args[1] == path
        other.send(server.udp_port, "/samuel/client/unregister")
        other.wait("/samuel/client/unregister/reply", a2=1)
        seen = len(other.messages())
        peer.send(server.udp_port, "/samuel/ping", 42)
        watcher.wait("/samuel/pong", a0=42)
        assert len(other.messages()) == seen
    finally:
        watcher.close()
        other.close()


def test_reply_port_from_config(tmp_path: Path, peer: Listener) -> None:
    config = make_config(tmp_path, *PORTS, f"server.reply_port={peer.port}")
    for _, server in _serve(config):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(encode("/samuel/ping", (9,), "i"), ("127.0.0.1", server.udp_port))
        peer.wait("/samuel/pong", a0=9, timeout=5)


def test_allow_list_refuses_other_hosts(tmp_path: Path, peer: Listener) -> None:
    for _, server in _serve(make_config(tmp_path, *PORTS, "server.allow_clients=10.1.2.3")):
        peer.send(server.udp_port, "/samuel/ping", 1)
        time.sleep(0.3)
        assert peer.messages() == [] and server.stats.refused == 1


def test_rate_limit_drops_a_burst_and_says_so(tmp_path: Path, peer: Listener) -> None:
    config = make_config(tmp_path, *PORTS, "server.rate_limit_per_s=5", "server.rate_burst=5")
    for _, server in _serve(config):
        for i in range(50):
            peer.send(server.udp_port, "/samuel/ping", i)
        peer.wait("/samuel/error", timeout=5)
        time.sleep(0.3)
        pongs = [m for m in peer.messages() if m.address == "/samuel/pong"]
        assert 5 <= len(pongs) <= 8
        assert server.stats.rate_limited >= 40
        limit = [m for m in peer.messages() if m.address == "/samuel/error"]
        assert len(limit) == 1 and "rate limit" in limit[0].args[1]


def test_flood_does_not_stop_serving(served: tuple[Engine, OscServer], peer: Listener) -> None:
    engine, server = served
    peer.send(server.udp_port, "/samuel/generate", "capture", "during-flood", 1, 30)
    job = peer.wait("/samuel/generate/ack").args[0]
    rng = random.Random(0)
    templates = [encode("/samuel/generate", ("capture", "x", 1, 2)),
                 encode("/samuel/ping", (1,)), encode("/samuel/cancel", (1,))]
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            packet = rng.randbytes(rng.randint(0, 1500))
        elif kind == 1:  # a real message cut short or with bytes flipped
            t = bytearray(rng.choice(templates))
            t[rng.randrange(len(t))] = rng.randrange(256)
            packet = bytes(t[: rng.randint(1, len(t))])
        elif kind == 2:
            packet = b"/samuel/" + rng.randbytes(rng.randint(1, 64))
        else:
            packet = b"#bundle\x00" + rng.randbytes(rng.randint(0, 200))
        try:
            flood.sendto(packet, ("127.0.0.1", server.udp_port))
            sent += 1
        except OSError:
            pass
    flood.close()
    for _ in range(30):  # UDP: the kernel drops what arrives while the flood fills its buffer
        peer.send(server.udp_port, "/samuel/ping", 77)
        try:
            peer.wait("/samuel/pong", a0=77, timeout=1)
            break
        except AssertionError:
            continue
    peer.wait("/samuel/pong", a0=77, timeout=1)
    done = peer.wait("/samuel/done", a0=job, timeout=120)
    assert Path(done.args[1]).is_file()
    stats = server.stats
    assert stats.packets > 1000  # counted, not silently dropped by the parser
    assert stats.malformed + stats.rate_limited + stats.invalid >= stats.packets - 10
    assert engine.job(job).status.value == "done"  # type: ignore[union-attr]


def test_tcp_round_trips(served: tuple[Engine, OscServer]) -> None:
    _, server = served
    with OscClient("127.0.0.1", server.tcp_port, tcp=True) as client:
        client.send("/samuel/ping", 3)
        assert client.wait_for("/samuel/pong", 5).args == (3,)
        client.send("/samuel/nope")
        assert client.wait_for("/samuel/error", 5).args[0] == "/samuel/nope"
    for mode in ("1.1", "1.0"):  # python-osc's own client, SLIP and length-prefixed
        with tcp_client.SimpleTCPClient("127.0.0.1", server.tcp_port, mode=mode) as c:
            c.send_message("/samuel/ping", [11])
            reply = next(c.get_messages(5))
            assert (reply.address, reply.params) == ("/samuel/pong", [11])


def test_tcp_client_gets_job_events(served: tuple[Engine, OscServer]) -> None:
    _, server = served
    with OscClient("127.0.0.1", server.tcp_port, tcp=True) as client:
        client.send("/samuel/generate", "capture", "tcp-take", 1, 2)
        job = client.wait_for("/samuel/generate/ack", 10).args[0]
        assert Path(client.wait_for("/samuel/done", 60, (job,)).args[1]).is_file()


def test_oscquery_over_http(served: tuple[Engine, OscServer]) -> None:
    _, server = served
    port = server.start_http(0)
    base = f"http://127.0.0.1:{port}"
    root = json.load(urllib.request.urlopen(base + "/", timeout=5))
    assert root == NS.tree
    info = json.load(urllib.request.urlopen(base + "/?HOST_INFO", timeout=5))
    assert info["OSC_PORT"] == server.udp_port and info["OSC_TRANSPORT"] == "UDP"
    assert info["NAME"] == "samuel-live"
    node = json.load(urllib.request.urlopen(base + "/samuel/generate", timeout=5))
    assert node["TYPE"] == "ssiifssiiisss" and node["REPLY"] == "/samuel/generate/ack"
    assert json.load(urllib.request.urlopen(base + "/samuel/ping?TYPE", timeout=5)) == {
        "TYPE": "i"}
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/samuel/nothing", timeout=5)
    assert err.value.code == 404


def test_send_command_prints_until_done(served: tuple[Engine, OscServer]) -> None:
    _, server = served
    out = io.StringIO()
    rc = send("127.0.0.1", server.udp_port, "/samuel/generate",
              ["capture", "cmd-take", "1", "2"], timeout=60, tcp=False, out=out)
    lines = out.getvalue().splitlines()
    assert rc == 0 and lines[0].startswith("/samuel/generate/ack 1 ")
    assert lines[-1].startswith("/samuel/done 1 ") and "cmd-take.wav" in lines[-1]
    out = io.StringIO()
    assert send("127.0.0.1", server.tcp_port, "/samuel/ping", ["4"], 5, True, out) == 0
    assert out.getvalue() == "/samuel/pong 4\n"
    out = io.StringIO()
    assert send("127.0.0.1", server.udp_port, "/samuel/generate", ["capture", "../x"], 5,
                False, out) == 1
    assert out.getvalue().startswith("/samuel/error /samuel/generate")


# --- independent peers -------------------------------------------------------------------------
def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LineReader:
    """Collects a subprocess's output lines in a thread."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in output: {self.lines[-20:]}")


def test_liblo_oscsend_and_oscdump(served: tuple[Engine, OscServer]) -> None:
    _needs("oscsend")
    _needs("oscdump")
    _, server = served
    port = _free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    out = LineReader(dump.stdout)  # type: ignore[arg-type]
    target = ["oscsend", "127.0.0.1", str(server.udp_port)]
    try:
        subprocess.run([*target, "/samuel/client/register", "i", str(port)], check=True)
        for _ in range(50):  # until oscdump listens
            subprocess.run([*target, "/samuel/ping", "i", "1"], check=True)
            try:
                out.wait("/samuel/pong", 0.2)
                break
            except AssertionError:
                continue
        subprocess.run([*target, "/samuel/generate", "ssff", "capture", "liblo-take", "5", "2"],
                       check=True)
        done = out.wait("/samuel/done", 60)
        out.wait("/samuel/progress iiif 1 2 2", 5)
    finally:
        dump.terminate()
        dump.wait(5)
    assert "/samuel/generate/ack iif 1 0" in "\n".join(out.lines)
    path = done.split('"')[1]
    assert path.endswith("liblo-take.wav") and Path(path).is_file()
    assert json.loads(Path(path + ".json").read_text())["settings"]["seed"] == 5


def test_pure_data_patch_generates(served: tuple[Engine, OscServer]) -> None:
    _needs("pd")
    _, server = served
    patch = Path(__file__).parent / "pd" / "generate.pd"
    proc = subprocess.run(
        ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-nrt", "-open", str(patch),
         "-send", f"samuel-start {server.udp_port} {_free_udp_port()}"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "LANG": "C"},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("samuel-")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    assert lines[-1].startswith("samuel-done: 1 "), lines
    path = Path(lines[-1].split()[2])
    assert path == server.engine.folder / "pd-take.wav" and path.is_file()


def test_a_tcp_client_that_stops_reading_is_dropped_not_waited_for(
        served: tuple[Engine, OscServer]) -> None:
    """Regression: replies to a stuck TCP client blocked the sending (engine) thread forever."""
    _, server = served
    stuck = socket.create_connection(("127.0.0.1", server.tcp_port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"\xc0" + encode("/samuel/client/register", (0,)) + b"\xc0")  # SLIP frame
    deadline = time.monotonic() + 5
    while not server.registry.targets() and time.monotonic() < deadline:
        time.sleep(0.01)
    (peer,) = server.registry.targets()
    done = threading.Event()

    def flood() -> None:  # what the worker does when it reports progress, without reading
        for i in range(200_000):
            if not server.registry.targets():
                break
            server._reply(None, "/samuel/progress", (1, i, 25, 0.5))
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(20), "sending to a client that never reads blocked the sender"
    assert server.stats.send_errors >= 1 and server.stats.dropped_clients == 1
    assert peer not in server.registry.targets()
    stuck.close()


def test_instrument_over_osc_and_done_stays_under_1_kb(served: tuple[Engine, OscServer],
                                                      peer: Listener) -> None:
    _, server = served
    name = "n" * 150 + "/" + "m" * 150 + "/" + "x" * 180  # long, but allowed
    peer.send(server.udp_port, "/samuel/generate", "capture", name, 1, 1, 1.0, "-", "-", 5, 0,
              0, "tones", "-")
    job = peer.wait("/samuel/generate/ack").args[0]
    done = peer.wait("/samuel/done", a0=job)
    side = json.loads(Path(done.args[1] + ".json").read_text())
    assert side["instrument"]["name"] == "Tones (built-in)"
    assert done.args[-1] == "x" * 180 + ".mid"
    packet = encode("/samuel/done", done.args)
    assert len(packet) < 1024, len(packet)
    peer.send(server.udp_port, "/samuel/generate", "capture", "bad", 1, 1, 1.0, "-", "-", 5, 0,
              0, "kazoo")
    assert "kazoo" in peer.wait("/samuel/error").args[1]
