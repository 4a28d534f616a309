"""The OSC bridge: UDP and TCP sockets in front of the Engine.

Datagrams are parsed here (not by python-osc's servers, which drop bad or large datagrams
silently): every packet is counted, and a malformed one is answered with /samuel/error. The
handler table is built from the namespace; a handler only validates and enqueues, so a client
never waits for a generation. Replies go to the sender and to every registered client; job
events go to the client that asked and to every registered client.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import socketserver
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samuel_live.config import ServerConfig
from samuel_live.engine.engine import Engine, EngineEvent
from samuel_live.errors import SamuelError
from samuel_live.osc.client import (
    MAX_MESSAGE_BYTES,
    OscPacketError,
    StreamDecoder,
    encode,
    parse_packet,
)
from samuel_live.osc.oscquery import OscQueryServer
from samuel_live.osc.schema import Namespace, OscArg, load_namespace

SEND_TIMEOUT_S = 0.5  # a TCP client that stops reading is dropped after this long
log = logging.getLogger(__name__)

ROOT = "/samuel"
PROGRESS_INTERVAL_S = 0.05  # at most 20 progress messages a second per job
MAX_BUCKETS = 4096
Reply = tuple[str, tuple[OscArg, ...]]


@dataclass(frozen=True)
class Peer:
    """Where a message came from and where its replies go (a UDP address or a TCP stream)."""

    kind: str  # "udp" | "tcp"
    host: str
    port: int
    conn: int = 0  # TCP connection number; 0 for UDP

    def __str__(self) -> str:
        return f"{self.kind}://{self.host}:{self.port}"


@dataclass
class ServerStats:
    """Counters since start; read them from any thread."""

    packets: int = 0
    messages: int = 0
    malformed: int = 0
    invalid: int = 0
    rate_limited: int = 0
    refused: int = 0
    sent: int = 0
    send_errors: int = 0


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)
    warned: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class OscServer:
    """Serves the namespace over UDP, TCP and (for OSCQuery) HTTP for one Engine."""

    def __init__(self, engine: Engine, config: ServerConfig,
                 namespace: Namespace | None = None) -> None:
        self.engine, self.config = engine, config
        self.namespace = namespace or load_namespace()
        self.stats = ServerStats()
        self._handlers = self._build_handlers()
        self._clients: dict[Peer, None] = {}  # insertion-ordered set
        self._buckets: OrderedDict[Peer, TokenBucket] = OrderedDict()
        self._tcp_streams: dict[int, tuple[socket.socket, StreamDecoder, threading.Lock]] = {}
        self._conn_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._last_progress: dict[int, float] = {}
        self._model_requester: Peer | None = None
        self._udp: socket.socket | None = None
        self._tcp: socketserver.ThreadingTCPServer | None = None
        self._http: OscQueryServer | None = None
        self._threads: list[threading.Thread] = []
        self._running = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> OscServer:
        """Bind the sockets (port 0 picks a free one) and start serving in threads."""
        c = self.config
        family = socket.AF_INET6 if ":" in c.host else socket.AF_INET
        self._udp = socket.socket(family, socket.SOCK_DGRAM)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._udp.bind((c.host, c.udp_port))
        self._udp.settimeout(0.2)  # lets the loop notice close(); data still returns at once
        self._running.set()
        self._spawn(self._udp_loop, "samuel-osc-udp")
        if c.tcp_port >= 0:
            self._tcp = _TcpServer((c.host, c.tcp_port), self)
            self._spawn(self._tcp.serve_forever, "samuel-osc-tcp")
        if c.http_port > 0:
            self.start_http(c.http_port)
        self.engine.subscribe(self._on_event)
        log.info("OSC on udp %s:%d tcp %s", c.host, self.udp_port, self.tcp_port)
        return self

    def start_http(self, port: int = 0) -> int:
        """Serve the OSCQuery namespace on ``port`` (0 = any free port); returns the port."""
        self._http = OscQueryServer(self.namespace, self.config.host, port, self.udp_port,
                                    tcp_port=self.tcp_port)
        return self._http.start()

    def close(self) -> None:
        self.engine.unsubscribe(self._on_event)
        self._running.clear()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
        with self._lock:
            streams = list(self._tcp_streams.values())
        for sock, _, _ in streams:
            _quiet_close(sock)
        if self._http is not None:
            self._http.close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def udp_port(self) -> int:
        return int(self._udp.getsockname()[1]) if self._udp else 0

    @property
    def tcp_port(self) -> int:
        return int(self._tcp.server_address[1]) if self._tcp else 0

    @property
    def http_port(self) -> int:
        return self._http.port if self._http else 0

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # --- receiving ---------------------------------------------------------------------------
    def _udp_loop(self) -> None:
        assert self._udp is not None
        while self._running.is_set():
            try:
                data, addr = self._udp.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._running.is_set():
                    log.exception("UDP receive failed")
                return
            peer = Peer("udp", addr[0], self.config.reply_port or addr[1])
            try:
                self.handle_packet(data, peer)
            except Exception:  # one bad packet must never end the loop
                log.exception("unexpected failure handling a packet from %s", peer)

    def handle_packet(self, data: bytes, peer: Peer) -> None:
        """Count, admit, parse and dispatch one datagram or stream frame."""
        self.stats.packets += 1
        if self.config.allow_clients and peer.host not in self.config.allow_clients:
            self.stats.refused += 1
            log.warning("refused a packet from %s: not in server.allow_clients", peer.host)
            return
        if not self._admit(peer):
            return
        try:
            messages = parse_packet(data)
        except OscPacketError as exc:
            self.stats.malformed += 1
            log.warning("from %s: %s", peer, exc)
            self._error(peer, "", str(exc))
            return
        for msg in messages:
            self.stats.messages += 1
            self._dispatch(msg.address, msg.args, peer)

    def _admit(self, peer: Peer) -> bool:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(peer, None) or TokenBucket(
                self.config.rate_limit_per_s, float(self.config.rate_burst))
            self._buckets[peer] = bucket  # most recent last
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        if bucket.take(now):
            return True
        self.stats.rate_limited += 1
        if now - bucket.warned > 1.0:  # tell the client, but at most once a second
            bucket.warned = now
            log.warning("rate limit: dropping messages from %s", peer)
            self._error(peer, "", f"rate limit of {self.config.rate_limit_per_s:g} messages/s "
                        "exceeded; messages are being dropped")
        return False

    def _dispatch(self, address: str, args: Sequence[Any], peer: Peer) -> None:
        try:
            values = self.namespace.validate(address, args)
            handler = self._handlers[address]
            replies = handler(peer, *values)
        except SamuelError as exc:
            self.stats.invalid += 1
            log.warning("%s from %s: %s", address, peer, exc)
            self._error(peer, address, str(exc))
            return
        except Exception as exc:
            log.exception("%s from %s failed", address, peer)
            self._error(peer, address, f"internal error: {type(exc).__name__}: {exc}")
            return
        for reply_address, reply_args in replies:
            self._reply(peer, reply_address, reply_args)

    # --- sending -----------------------------------------------------------------------------
    def _targets(self, peer: Peer | None) -> list[Peer]:
        with self._lock:
            targets = list(self._clients)
        if peer is not None and peer not in self._clients:
            targets.insert(0, peer)
        return targets

    def _reply(self, peer: Peer | None, address: str, args: Sequence[OscArg]) -> None:
        """Send to ``peer`` and every registered client."""
        method = self.namespace.methods.get(address)
        packet = encode(address, args, method.type_tags if method else None)
        if len(packet) >= MAX_MESSAGE_BYTES:
            log.error("reply %s is %d bytes; sending an error instead", address, len(packet))
            packet = encode("/samuel/error", (address, "reply too large to send", -1), "ssi")
        for target in self._targets(peer):
            self._send(target, packet)

    def _send(self, peer: Peer, packet: bytes) -> None:
        try:
            if peer.kind == "udp":
                assert self._udp is not None
                self._udp.sendto(packet, (peer.host, peer.port))
            else:
                self._send_tcp(peer, packet)
            self.stats.sent += 1
        except OSError as exc:
            self.stats.send_errors += 1
            log.warning("could not send to %s: %s", peer, exc)
            if peer.kind == "tcp":
                self._forget(peer)

    def _send_tcp(self, peer: Peer, packet: bytes) -> None:
        with self._lock:
            stream = self._tcp_streams.get(peer.conn)
        if stream is None:
            raise OSError("connection closed")
        sock, decoder, lock = stream
        with lock:
            try:
                sock.sendall(decoder.frame(packet))
            except OSError:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # ends its reader thread too
                raise

    def _error(self, peer: Peer | None, address: str, message: str, job: int = -1) -> None:
        self._reply(peer, "/samuel/error", (address[:160], message[:700], job))

    # --- engine events -----------------------------------------------------------------------
    def _on_event(self, event: EngineEvent) -> None:
        job = event.job
        if event.kind == "queued" and job is not None:
            self._reply(job.origin, "/samuel/generate/ack", (job.id, job.position, job.eta_s))
        elif event.kind == "started" and job is not None:
            self._reply(job.origin, "/samuel/progress", (job.id, 0, job.total, job.eta_s))
        elif event.kind == "progress" and job is not None:
            self._progress(job)
        elif event.kind == "done" and job is not None and job.result is not None:
            self._reply(job.origin, "/samuel/done", _done_args(job))
        elif event.kind == "failed" and job is not None:
            self._error(job.origin, "/samuel/generate", event.message, job.id)
        elif event.kind == "cancelled" and job is not None:
            self._reply(job.origin, "/samuel/cancelled", (job.id,))
        elif event.kind == "playing" and job is not None:
            self._reply(job.origin, "/samuel/play/reply",
                        (job.id, int(event.data["frame"]), float(event.data["in_s"])))
        elif event.kind == "play_failed" and job is not None:
            self._error(job.origin, "/samuel/play", event.message, job.id)
        elif event.kind == "model_loaded":
            info = event.data
            self._reply(self._model_requester, "/samuel/model/loaded",
                        (str(info.get("name", "")), str(info.get("hash", ""))))
        elif event.kind == "model_failed":
            self._error(self._model_requester, "/samuel/model/load", event.message)
        if job is not None and job.status.finished:
            self._last_progress.pop(job.id, None)

    def _progress(self, job: Any) -> None:
        now = time.monotonic()
        if job.step < job.total and now - self._last_progress.get(job.id, 0.0) < (
                PROGRESS_INTERVAL_S):
            return
        self._last_progress[job.id] = now
        self._reply(job.origin, "/samuel/progress", (job.id, job.step, job.total, job.eta_s))

    # --- handlers ----------------------------------------------------------------------------
    def _build_handlers(self) -> dict[str, Callable[..., list[Reply]]]:
        """One handler per command in the namespace: /samuel/a/b -> self._on_a_b."""
        table = {}
        for method in self.namespace.commands():
            name = "_on_" + method.address.removeprefix(ROOT + "/").replace("/", "_")
            handler = getattr(self, name, None)
            if handler is None:
                raise SamuelError(f"namespace command {method.address} has no handler {name}")
            table[method.address] = handler
        return table

    def _on_ping(self, peer: Peer, token: int = 0) -> list[Reply]:
        return [("/samuel/pong", (token,))]

    def _on_status(self, peer: Peer) -> list[Reply]:
        s = self.engine.status()
        t = s.transport
        return [("/samuel/status/reply", (s.state, s.queued, s.running, len(self._clients),
                                          t.bpm, t.beats, t.bar_at(), s.model))]

    def _on_client_register(self, peer: Peer, port: int = 0) -> list[Reply]:
        client = self._client_peer(peer, port)
        with self._lock:
            self._clients[client] = None
        log.info("registered client %s", client)
        return [("/samuel/client/register/reply", (client.host, client.port, len(self._clients)))]

    def _on_client_unregister(self, peer: Peer, port: int = 0) -> list[Reply]:
        client = self._client_peer(peer, port)
        self._forget(client)
        return [("/samuel/client/unregister/reply",
                 (client.host, client.port, len(self._clients)))]

    def _client_peer(self, peer: Peer, port: int) -> Peer:
        if peer.kind == "tcp" or not port:
            return peer
        return Peer("udp", peer.host, port)

    def _forget(self, peer: Peer) -> None:
        with self._lock:
            self._clients.pop(peer, None)

    def _on_capture_arm(self, peer: Peer) -> list[Reply]:
        self.engine.arm()
        return [("/samuel/ok", ("/samuel/capture/arm",))]

    def _on_capture_stop(self, peer: Peer) -> list[Reply]:
        self.engine.stop_capture()
        return [("/samuel/ok", ("/samuel/capture/stop",))]

    def _on_capture_clear(self, peer: Peer) -> list[Reply]:
        self.engine.clear_capture()
        return [("/samuel/ok", ("/samuel/capture/clear",))]

    def _on_capture_level(self, peer: Peer) -> list[Reply]:
        rms, peak, seconds, armed = self.engine.level()
        return [("/samuel/capture/level/reply", (rms, peak, seconds, int(armed)))]

    def _on_capture_mark(self, peer: Peer, which: str) -> list[Reply]:
        return [("/samuel/capture/mark/reply", (which, self.engine.mark(which)))]

    def _on_generate(self, peer: Peer, source: str, output: str = "-", seed: int = -1,
                     steps: int = 0, cfg: float = -1.0, sampler: str = "-", post: str = "-",
                     priority: int = 5, loop_bars: int = 0, autoplay: int = 0) -> list[Reply]:
        # The ack goes out from the engine's "queued" event, so it always precedes progress.
        self.engine.submit(source, output, seed=seed, steps=steps, cfg=cfg, sampler=sampler,
                           post=post, priority=priority, origin=peer, loop_bars=loop_bars,
                           autoplay=bool(autoplay))
        return []

    def _on_cancel(self, peer: Peer, job: int) -> list[Reply]:
        return [("/samuel/cancel/reply", (job, int(self.engine.cancel(job))))]

    def _on_post_get(self, peer: Peer) -> list[Reply]:
        return [("/samuel/post/get/reply", (_compact_json(self.engine.post_chain()),))]

    def _on_post_set(self, peer: Peer, text: str) -> list[Reply]:
        from samuel_live.post.chain import chain_from_json

        chain = self.engine.set_post_chain(chain_from_json(text))
        return [("/samuel/post/get/reply", (_compact_json(chain),))]

    def _on_model_load(self, peer: Peer, path: str) -> list[Reply]:
        if not Path(path).expanduser().is_file():
            raise SamuelError(f"model file {path} not found; give the path of a checkpoint")
        self._model_requester = peer
        self.engine.load_model(path)
        return [("/samuel/ok", ("/samuel/model/load",))]

    def _on_model_info(self, peer: Peer) -> list[Reply]:
        i = self.engine.model_info()
        return [("/samuel/model/info/reply", (
            str(i.get("name", "")), str(i.get("hash", "")), int(i.get("params", 0)),
            str(i.get("codec", "")), str(i.get("device", "")), int(i.get("sample_rate", 0))))]

    def _transport(self) -> list[Reply]:
        t = self.engine.transport
        return [("/samuel/transport/reply", (t.bpm, t.beats, t.unit, t.bar_at()))]

    def _on_transport_tempo(self, peer: Peer, bpm: float | None = None) -> list[Reply]:
        if bpm is not None:
            self.engine.set_tempo(bpm)
        return self._transport()

    def _on_transport_signature(self, peer: Peer, beats: int | None = None,
                                unit: int | None = None) -> list[Reply]:
        if beats is not None:
            self.engine.set_signature(beats, unit if unit is not None else 4)
        return self._transport()

    def _on_transport_bar(self, peer: Peer, bar: int | None = None) -> list[Reply]:
        if bar is not None:
            self.engine.set_bar(bar)
        return self._transport()

    def _on_play(self, peer: Peer, job: int, loop: int = 0, quantise: str = "bar") -> list[Reply]:
        start = self.engine.play(job, bool(loop), quantise)
        return [("/samuel/play/reply", (start.job, start.frame, start.in_s))]

    def _on_stop(self, peer: Peer) -> list[Reply]:
        self.engine.stop_playback()
        return [("/samuel/ok", ("/samuel/stop",))]

    # --- TCP streams -------------------------------------------------------------------------
    def _serve_stream(self, sock: socket.socket, addr: tuple[Any, ...]) -> None:
        conn = next(self._conn_ids)
        decoder = StreamDecoder()
        peer = Peer("tcp", addr[0], addr[1], conn)
        # Replies are sent from the engine's threads: a client that stops reading must cost
        # them at most SEND_TIMEOUT_S once, then it is dropped (recv stays blocking).
        sec, usec = int(SEND_TIMEOUT_S), int(SEND_TIMEOUT_S % 1 * 1e6)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", sec, usec))
        with self._lock:
            self._tcp_streams[conn] = (sock, decoder, threading.Lock())
        try:
            while self._running.is_set():
                data = sock.recv(65536)
                if not data:
                    break
                try:
                    packets = decoder.feed(data)
                except OscPacketError as exc:  # the stream cannot be re-synchronised
                    self.stats.malformed += 1
                    self._error(peer, "", f"{exc}; closing the connection")
                    break
                for packet in packets:
                    self.handle_packet(packet, peer)
        except OSError:
            pass
        finally:
            self._forget(peer)
            with self._lock:
                self._tcp_streams.pop(conn, None)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: OscServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _TcpHandler)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _TcpServer = self.server  # type: ignore[assignment]
        server.owner._serve_stream(self.request, self.client_address)


def _done_args(job: Any) -> tuple[OscArg, ...]:
    """/samuel/done: the file, its length and the latency report. The capture time goes as
    text: an OSC float cannot hold a UNIX time to the millisecond."""
    r, captured = job.result, job.request.source.captured_at
    return (job.id, str(r.path), r.duration_s, r.queued_s, r.model_s, r.post_s, r.total_s,
            f"{captured:.6f}" if captured is not None else "", r.capture_latency_s)


def _compact_json(obj: Any) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))


def _quiet_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
