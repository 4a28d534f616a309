"""The OSC server against a hostile peer (issue 12), each test against a real running server:
registration floods, rate limits by message and host, integers outside int32, shutdown order,
connection caps, idle timeouts, the allow-list on every socket, slow readers, log floods."""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from test_engine import make_config, sine
from test_osc_server import PORTS, Listener, _serve

from samuel_live.audio.io import write_audio_atomic
from samuel_live.engine.engine import Engine
from samuel_live.errors import BindError
from samuel_live.osc.client import OscClient, encode, parse_packet
from samuel_live.osc.commands import bind_advice, send
from samuel_live.osc.server import Limits, OscServer

UNLIMITED = ("server.rate_limit_per_s=1000000", "server.rate_burst=1000000")


@contextlib.contextmanager
def serving(tmp_path: Path, *overrides: str,
            limits: Limits | None = None) -> Iterator[tuple[Engine, OscServer]]:
    yield from _serve(make_config(tmp_path, *PORTS, *overrides), limits)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Engine, OscServer]]:
    with serving(tmp_path) as pair:
        yield pair


@pytest.fixture
def udp_peer() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def bundle(*messages: bytes) -> bytes:
    body = b"".join(struct.pack(">i", len(m)) + m for m in messages)
    return b"#bundle\x00" + struct.pack(">Q", 1) + body


def ping_rtts(port: int, n: int) -> list[float]:
    """Round trips of ``n`` pings from a fresh UDP client, in seconds."""
    rtts = []
    with OscClient("127.0.0.1", port) as client:
        for token in range(n):
            t0 = time.perf_counter()
            client.send("/samuel/ping", token)
            client.wait_for("/samuel/pong", 5.0, (token,))
            rtts.append(time.perf_counter() - t0)
    return rtts


def until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def tcp_closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closes ``sock`` within ``timeout`` (what it sent is skipped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


# --- item 2: client registration -----------------------------------------------------------
def test_a_registration_flood_is_capped_and_pings_stay_fast(tmp_path: Path,
                                                           udp_peer: Listener) -> None:
    with serving(tmp_path, *UNLIMITED) as (_, server):
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for b in range(30):  # 3,000 registrations, 100 a bundle, each for another port
            ports = range(20000 + 100 * b, 20100 + 100 * b)
            flood.sendto(bundle(*(encode("/samuel/client/register", (p,), "i") for p in ports)),
                         ("127.0.0.1", server.udp_port))
            time.sleep(0.005)
        until(lambda: server.stats.messages >= 3000)
        assert len(server.registry) == Limits().max_clients_per_host
        flood.settimeout(2)
        answers = [m for m in parse_packet(flood.recv(65536))]
        flood.close()
        assert answers[0].address == "/samuel/client/register/reply"
        rtts = ping_rtts(server.udp_port, 300)
        p50 = statistics.median(rtts) * 1000
        print(f"ping after 3,000 registrations: p50 {p50:.2f} ms, "
              f"p99 {sorted(rtts)[296] * 1000:.2f} ms")
        assert p50 < 5.0
        # a client registered on the port it sends from gets each reply once, not twice
        udp_peer.send(server.udp_port, "/samuel/client/unregister", 20000)
        udp_peer.send(server.udp_port, "/samuel/client/register")
        udp_peer.wait("/samuel/client/register/reply")
        udp_peer.send(server.udp_port, "/samuel/ping", 31)
        udp_peer.wait("/samuel/pong", a0=31)
        time.sleep(0.2)
        assert [m.args for m in udp_peer.messages() if m.address == "/samuel/pong"] == [(31,)]


def test_the_client_cap_counts_all_hosts_and_silent_clients_lapse(tmp_path: Path) -> None:
    limits = Limits(max_clients=3, max_clients_per_host=2, client_ttl_s=0.6)
    a, b, c = Listener("127.0.0.1"), Listener("127.0.0.2"), Listener("127.0.0.3")
    try:
        with serving(tmp_path, limits=limits) as (_, server):
            port = server.udp_port
            a.send(port, "/samuel/client/register")
            a.send(port, "/samuel/client/register", 9)
            a.send(port, "/samuel/client/register", 10)
            assert "most per host" in a.wait("/samuel/error").args[1]
            b.send(port, "/samuel/client/register")
            b.wait("/samuel/client/register/reply", a2=3)
            c.send(port, "/samuel/client/register")
            assert "the most the server takes" in c.wait("/samuel/error").args[1]
            for _ in range(8):  # b keeps talking, a is silent
                b.send(port, "/samuel/ping", 0)
                time.sleep(0.15)
            c.send(port, "/samuel/client/register")
            c.wait("/samuel/client/register/reply", a2=2)  # a's two lapsed, b's stayed
            c.send(port, "/samuel/ping", 77)
            b.wait("/samuel/pong", a0=77, timeout=5)
            time.sleep(0.2)
            assert not [m for m in a.messages() if m.args[:1] == (77,)]
    finally:
        for listener in (a, b, c):
            listener.close()


# --- item 3: rate limit ----------------------------------------------------------------------
def test_rate_limit_counts_messages_in_bundles_and_keys_on_host(tmp_path: Path,
                                                                udp_peer: Listener) -> None:
    rate, burst = 20, 20
    with serving(tmp_path, f"server.rate_limit_per_s={rate}",
                 f"server.rate_burst={burst}") as (_, server):
        t0 = time.monotonic()
        for _ in range(20):  # 20 bundles of 100 pings
            udp_peer.sock.sendto(bundle(*[encode("/samuel/ping", (1,), "i")] * 100),
                             ("127.0.0.1", server.udp_port))
        udp_peer.wait("/samuel/error", timeout=5)
        time.sleep(0.3)
        allowed = burst + rate * (time.monotonic() - t0) + 1
        pongs = [m for m in udp_peer.messages() if m.address == "/samuel/pong"]
        assert burst <= len(pongs) <= allowed
        # a refused packet counts once; a bundle cut short counts the messages it lost
        assert server.stats.messages == len(pongs) and server.stats.rate_limited >= 19 + 80
        assert "rate limit" in udp_peer.wait("/samuel/error").args[1]

        # 400 source ports on one host share its budget ...
        socks = []
        t0 = time.monotonic()
        for _ in range(400):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.4", 0))
            s.sendto(encode("/samuel/ping", (2,), "i"), ("127.0.0.1", server.udp_port))
            socks.append(s)
        time.sleep(0.5)
        answered = 0
        for s in socks:
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                answered += any(m.address == "/samuel/pong" for m in parse_packet(s.recv(2048)))
            s.close()
        assert burst <= answered <= burst + rate * (time.monotonic() - t0) + 1
        # ... and another host still has its own
        other = Listener("127.0.0.5")
        try:
            other.send(server.udp_port, "/samuel/ping", 3)
            other.wait("/samuel/pong", a0=3, timeout=5)
        finally:
            other.close()


# --- item 5: int32 -----------------------------------------------------------------------------
def _big_ping_bundle() -> bytes:
    wide = OscMessageBuilder("/samuel/ping")
    wide.add_arg(10_000_000_000, "h")  # an int64 token
    floaty = OscMessageBuilder("/samuel/ping")
    floaty.add_arg(1e10, "f")
    return bundle(wide.build().dgram, floaty.build().dgram, encode("/samuel/ping", (5,), "i"))


def test_integers_outside_int32_are_answered_and_the_rest_is_served(
        tmp_path: Path, udp_peer: Listener) -> None:
    with serving(tmp_path) as (_, server):
        udp_peer.sock.sendto(_big_ping_bundle(), ("127.0.0.1", server.udp_port))
        udp_peer.wait("/samuel/pong", a0=5, timeout=5)
        errors = [m.args for m in udp_peer.messages() if m.address == "/samuel/error"]
        assert len(errors) == 2 and all("32-bit" in e[1] and e[0] == "/samuel/ping"
                                        for e in errors)
        with OscClient("127.0.0.1", server.tcp_port, tcp=True) as client:
            client.send("/samuel/client/register")
            client.wait_for("/samuel/client/register/reply", 5)
            client.send_raw(_big_ping_bundle())
            assert "32-bit" in client.wait_for("/samuel/error", 5).args[1]
            assert client.wait_for("/samuel/pong", 5).args == (5,)
            client.send("/samuel/ping", 6)  # the connection and its registration survive
            assert client.wait_for("/samuel/pong", 5).args == (6,)
            assert any(p.kind == "tcp" for p in server.registry.targets())


# --- item 7: shutdown order --------------------------------------------------------------------
def test_sigterm_answers_the_running_job_before_the_server_closes(tmp_path: Path,
                                                                 udp_peer: Listener) -> None:
    folder = tmp_path / "renders"
    folder.mkdir()
    write_audio_atomic(folder / "voice.wav", sine(4.0), 44100)
    port = _free_udp_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "samuel_live.cli", "serve", "--udp-port", str(port),
             "--tcp-port", "-1", "--http-port", "0", "--render-folder", str(folder),
             "--set", "post.preset=clean", "--set", "model.device=cpu"],
            stdout=subprocess.PIPE, stderr=log_file, text=True, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready and "samuel-live serving" in proc.stdout.readline(), log_path.read_text()
        udp_peer.send(port, "/samuel/generate", "file:voice.wav", "long", 1, 800)
        job = udp_peer.wait("/samuel/generate/ack").args[0]
        udp_peer.wait("/samuel/progress", a0=job, a1=1)
        proc.send_signal(signal.SIGTERM)
        udp_peer.wait("/samuel/cancelled", a0=job, timeout=60)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_taken_port_is_named_with_the_flag_that_moves_it(running: tuple[Engine, OscServer],
                                                           tmp_path: Path) -> None:
    engine, first = running
    for kind, override in (("udp", f"server.udp_port={first.udp_port}"),
                           ("tcp", f"server.tcp_port={first.tcp_port}")):
        config = make_config(tmp_path, *PORTS, override)
        with pytest.raises(BindError) as info:
            OscServer(engine, config.server).start()
        assert info.value.kind == kind
        advice = bind_advice(info.value)
        port = first.udp_port if kind == "udp" else first.tcp_port
        assert f"{kind.upper()} port {port}" in advice and f"--{kind}-port N" in advice


def test_send_without_a_server_says_where_and_how_to_start_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_udp_port()
    for tcp in (False, True):
        t0 = time.monotonic()
        assert send("127.0.0.1", port, "/samuel/ping", [], timeout=10, tcp=tcp,
                    out=io.StringIO()) == 1
        assert time.monotonic() - t0 < 5  # was: the whole 10 s timeout, then "no final reply"
        err = capsys.readouterr().err
        assert f"not answering on 127.0.0.1:{port}" in err and "samuel-live serve" in err


# --- item 8: connections -----------------------------------------------------------------------
def test_tcp_connections_are_capped_per_host_and_idle_ones_closed(tmp_path: Path) -> None:
    limits = Limits(max_tcp_per_host=3, tcp_idle_s=0.8)
    with serving(tmp_path, limits=limits) as (_, server):
        clients = [OscClient("127.0.0.1", server.tcp_port, tcp=True) for _ in range(3)]
        for i, client in enumerate(clients):
            client.send("/samuel/ping", i)
            assert client.wait_for("/samuel/pong", 5).args == (i,)
        extra = socket.create_connection(("127.0.0.1", server.tcp_port))
        assert tcp_closed(extra) and server.stats.refused == 1
        extra.close()
        other_host = socket.create_connection(("127.0.0.1", server.tcp_port),
                                              source_address=("127.0.0.6", 0))
        other_host.sendall(b"\xc0" + encode("/samuel/ping", (8,), "i") + b"\xc0")
        other_host.settimeout(5)
        assert b"/samuel/pong" in other_host.recv(1024)
        other_host.close()
        for client in clients:  # silent from now on: closed with a word of why
            assert "idle" in client.wait_for("/samuel/error", 5).args[1]
            assert tcp_closed(client.sock)
            client.close()
        until(lambda: server.transport.connections() == 0, 5)


def test_the_allow_list_applies_to_tcp_and_http_too(tmp_path: Path) -> None:
    with serving(tmp_path, "server.allow_clients=127.0.0.2") as (_, server):
        http_port = server.start_http(0)
        refused = socket.create_connection(("127.0.0.1", server.tcp_port))
        assert tcp_closed(refused)
        with socket.create_connection(("127.0.0.1", server.tcp_port),
                                      source_address=("127.0.0.2", 0)) as allowed:
            allowed.sendall(b"\xc0" + encode("/samuel/ping", (4,), "i") + b"\xc0")
            allowed.settimeout(5)
            assert b"/samuel/pong" in allowed.recv(1024)
        denied_http = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            denied_http.request("GET", "/?HOST_INFO")
            denied_http.getresponse()
        good_http = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5,
                                               source_address=("127.0.0.2", 0))
        good_http.request("GET", "/?HOST_INFO")
        assert good_http.getresponse().status == 200
        assert server.stats.refused == 2


def test_http_connections_are_capped_and_time_out(tmp_path: Path) -> None:
    limits = Limits(max_http=2, http_timeout_s=0.6)
    with serving(tmp_path, limits=limits) as (_, server):
        port = server.start_http(0)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.1)
        busy = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        busy.request("GET", "/samuel/ping")
        assert busy.getresponse().status == 503
        for sock in idle:  # said nothing: closed after the timeout
            assert tcp_closed(sock, 5)
            sock.close()
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        fresh.request("GET", "/samuel/ping")
        assert fresh.getresponse().status == 200


def test_tcp_clients_that_never_read_delay_no_one(tmp_path: Path) -> None:
    limits = Limits(tcp_queue_bytes=16384)
    with serving(tmp_path, *UNLIMITED, limits=limits) as (_, server):
        stuck = []
        for _ in range(8):  # the per-host cap, all registered, none reading
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", server.tcp_port))
            s.sendall(b"\xc0" + encode("/samuel/client/register", (0,), "i") + b"\xc0")
            stuck.append(s)
        until(lambda: len(server.registry) == 8, 5)
        stop = threading.Event()

        def chatter() -> None:  # replies that fan out to every registered client
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                while not stop.is_set():
                    s.sendto(bundle(*[encode("/samuel/post/get", ())] * 20),
                             ("127.0.0.1", server.udp_port))
                    time.sleep(0.002)

        thread = threading.Thread(target=chatter, daemon=True)
        thread.start()
        try:
            rtts = ping_rtts(server.udp_port, 300)
            # the chatter goes on until the stuck clients' queues overflow: on a fast, idle
            # machine 300 pings end before enough replies have piled up
            until(lambda: server.stats.dropped_clients == 8, 10)
        finally:
            stop.set()
            thread.join()
        p50, worst = statistics.median(rtts) * 1000, max(rtts) * 1000
        print(f"ping with 8 stuck TCP clients: p50 {p50:.2f} ms, max {worst:.1f} ms, "
              f"{server.stats.dropped_clients} dropped")
        assert p50 < 20 and worst < 1000
        assert len(server.registry) == 0
        for s in stuck:
            s.close()


# --- log flood, model paths, wire defaults -----------------------------------------------------
def test_junk_is_logged_briefly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="samuel_live.osc")
    with serving(tmp_path, *UNLIMITED) as (_, server):
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(2000):
            packet = ((b"/x" * 2000) if i % 3 == 1 else os.urandom(1400) if i % 3 == 2
                      else encode("/samuel/" + "x" * 3000, ()))  # an unknown address
            junk.sendto(packet, ("127.0.0.1", server.udp_port))
            if i % 10 == 0:
                time.sleep(0.003)
        junk.close()
        until(lambda: server.stats.packets >= 1000, 20)  # UDP: the kernel may drop some
        time.sleep(0.3)
        junk_packets = server.stats.packets
        assert server.stats.invalid > 300
    text = [r.getMessage() for r in caplog.records if r.name.startswith("samuel_live.osc")]
    assert max(len(line) for line in text) <= 300
    assert sum(len(line) for line in text) < junk_packets * 10  # < 10 bytes a junk packet


def test_model_load_answers_alike_for_missing_and_forbidden_paths(
        running: tuple[Engine, OscServer], udp_peer: Listener) -> None:
    _, server = running
    for path in ("/etc/passwd", "/no/such/model.safetensors"):
        udp_peer.send(server.udp_port, "/samuel/model/load", path)
    until(lambda: len([m for m in udp_peer.messages() if m.address == "/samuel/error"]) == 2, 10)
    forbidden, missing = [m.args[1] for m in udp_peer.messages() if m.address == "/samuel/error"]
    assert forbidden.replace("/etc/passwd", "P") == missing.replace(
        "/no/such/model.safetensors", "P")


def test_wire_defaults_reach_the_engine_as_defaults(tmp_path: Path, udp_peer: Listener) -> None:
    with serving(tmp_path, "generate.steps=2") as (_, server):
        udp_peer.send(server.udp_port, "/samuel/generate", "capture", "", -1, 0, -1.0, "", "", 5)
        job = udp_peer.wait("/samuel/generate/ack").args[0]
        done = udp_peer.wait("/samuel/done", a0=job)
        totals = {m.args[2] for m in udp_peer.messages() if m.address == "/samuel/progress"}
        assert totals == {2} and Path(done.args[1]).is_file()
        udp_peer.send(server.udp_port, "/samuel/generate", "capture", "-", -1, 0, -1.0, "-", "-")
        udp_peer.wait("/samuel/done", a0=job + 1)
