"""OSC over sockets: the UDP socket, the TCP listener and its streams, and sending.

Two threads serve every peer: one reads UDP, one runs the TCP listener and all TCP streams
through a selector (no thread per connection). Sending never blocks the caller: a UDP reply
that the kernel cannot take at once is dropped and counted; a TCP stream has its own output
queue, written as the peer reads, and a peer that lets it grow past ``tcp_queue_bytes`` is
dropped, so one slow client never delays another. TCP connections are capped in all and per
host, refused at accept when their host is not allowed, and closed after ``tcp_idle_s``
without traffic.
"""

from __future__ import annotations

import errno
import logging
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from samuel_live.errors import BindError, OscPacketError
from samuel_live.osc.admission import Limits
from samuel_live.osc.client import StreamDecoder, encode
from samuel_live.osc.logs import LimitedLog
from samuel_live.osc.peers import Peer, ServerStats

log = logging.getLogger(__name__)
quiet = LimitedLog(log)

PacketSink = Callable[[bytes, Peer], None]
ErrorSink = Callable[[Peer, str], None]
UDP_RECEIVE_BUFFER = 1 << 20
TCP_SEND_BUFFER = 64 * 1024
POLL_S = 0.2  # how often the loops look at the stop flag


@dataclass
class _Stream:
    sock: socket.socket
    peer: Peer
    decoder: StreamDecoder = field(default_factory=StreamDecoder)
    out: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_active: float = field(default_factory=time.monotonic)
    closed: bool = False


def bind(kind: str, family: int, sock_type: int, host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or BindError naming the port."""
    sock = socket.socket(family, sock_type)
    if sock_type == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BindError(kind, host, port, exc.strerror or str(exc)) from None
    return sock


class Transport:
    """The server's sockets. ``on_packet`` gets every datagram or stream frame with its peer;
    ``on_error`` gets a stream's framing error just before the stream is closed."""

    def __init__(self, host: str, udp_port: int, tcp_port: int, *, reply_port: int,
                 allowed: Callable[[str], bool], on_packet: PacketSink, on_error: ErrorSink,
                 on_closed: Callable[[Peer], None], limits: Limits, stats: ServerStats) -> None:
        self.host, self.reply_port, self.limits, self.stats = host, reply_port, limits, stats
        self._want = (udp_port, tcp_port)
        self.allowed, self.on_packet, self.on_error, self.on_closed = (
            allowed, on_packet, on_error, on_closed)
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._streams: dict[int, _Stream] = {}
        self._lock = threading.Lock()
        self._next_conn = 1
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Bind (port 0 picks a free one; a TCP port < 0 disables TCP) and serve in threads."""
        udp_port, tcp_port = self._want
        self._udp = bind("udp", self.family, socket.SOCK_DGRAM, self.host, udp_port)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self._udp.setblocking(False)
        if tcp_port >= 0:
            try:
                self._tcp = bind("tcp", self.family, socket.SOCK_STREAM, self.host, tcp_port)
            except BindError:
                self._udp.close()
                raise
            self._tcp.listen(self.limits.backlog)
            self._tcp.setblocking(False)
        self._running.set()
        self._spawn(self._udp_loop, "samuel-osc-udp")
        if self._tcp is not None:
            self._spawn(self._tcp_loop, "samuel-osc-tcp")

    def close(self) -> None:
        """Stop both loops and close every socket."""
        self._running.clear()
        self._wake()
        for t in self._threads:
            t.join(timeout=5)
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            _quiet_close(stream.sock)

    @property
    def udp_port(self) -> int:
        return int(self._udp.getsockname()[1]) if self._udp else 0

    @property
    def tcp_port(self) -> int:
        return int(self._tcp.getsockname()[1]) if self._tcp else 0

    def connections(self) -> int:
        with self._lock:
            return len(self._streams)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # already awake (buffer full) or closed

    # --- sending -----------------------------------------------------------------------------
    def send(self, peer: Peer, packet: bytes) -> bool:
        """Send without blocking; False when the packet could not be sent or queued."""
        ok = self._send_udp(peer, packet) if peer.kind == "udp" else self._send_tcp(peer, packet)
        if ok:
            self.stats.sent += 1
        else:
            self.stats.send_errors += 1
        return ok

    def _send_udp(self, peer: Peer, packet: bytes) -> bool:
        if self._udp is None:
            return False
        try:
            self._udp.sendto(packet, (peer.host, peer.port))
            return True
        except OSError as exc:  # BlockingIOError included: the reply is dropped, not waited for
            quiet.warning("udp-send", f"could not send to {peer}: {exc}")
            return False

    def _send_tcp(self, peer: Peer, packet: bytes) -> bool:
        with self._lock:
            stream = self._streams.get(peer.conn)
        if stream is None:
            return False
        with stream.lock:
            if stream.closed:
                return False
            data = stream.decoder.frame(packet)
            if not stream.out:
                try:
                    data = data[stream.sock.send(data):]
                except BlockingIOError:
                    pass
                except OSError:
                    self._doom(stream)
                    return False
            if len(stream.out) + len(data) > self.limits.tcp_queue_bytes:
                self.stats.dropped_clients += 1
                quiet.warning("tcp-slow", f"{peer} stopped reading ({len(stream.out)} bytes "
                              "unsent); closing the connection")
                self._doom(stream)
                return False
            stream.out += data
            stream.last_active = time.monotonic()
        if stream.out:
            self._wake()  # the selector thread writes the rest as the peer reads
        return True

    def _doom(self, stream: _Stream) -> None:
        """Mark ``stream`` closed (caller holds its lock); the selector thread cleans up."""
        stream.closed = True
        try:
            stream.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._wake()

    # --- UDP ---------------------------------------------------------------------------------
    def _udp_loop(self) -> None:
        udp = self._udp
        assert udp is not None
        poller = select.poll()  # not select(): any descriptor number works
        poller.register(udp, select.POLLIN)
        while self._running.is_set():
            try:
                if not poller.poll(POLL_S * 1000):
                    continue
                data, addr = udp.recvfrom(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:  # ICMP from an earlier reply's target
                    continue
                if self._running.is_set():
                    log.exception("UDP receive failed")
                return
            peer = Peer("udp", addr[0], self.reply_port or addr[1])
            self._deliver(data, peer)

    def _deliver(self, data: bytes, peer: Peer) -> None:
        try:
            self.on_packet(data, peer)
        except Exception:  # one bad packet must never end a loop
            log.exception("unexpected failure handling a packet from %s", peer)

    # --- TCP ---------------------------------------------------------------------------------
    def _tcp_loop(self) -> None:
        assert self._tcp is not None
        sel = selectors.DefaultSelector()
        sel.register(self._tcp, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        last_sweep = time.monotonic()
        try:
            while self._running.is_set():
                for key, mask in sel.select(timeout=POLL_S):
                    if key.data == "accept":
                        self._accept(sel)
                    elif key.data == "wake":
                        _drain(self._wake_r)
                    else:
                        self._ready(sel, key.data, mask)
                self._update_interest(sel)
                now = time.monotonic()
                if now - last_sweep >= min(1.0, self.limits.tcp_idle_s / 4):
                    last_sweep = now
                    self._close_idle(sel, now)
        except Exception:
            log.exception("the TCP loop failed; TCP clients are no longer served")
        finally:
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._tcp is not None
        for _ in range(64):  # take what is waiting, then serve the others
            try:
                sock, addr = self._tcp.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave it in the backlog for now
                quiet.warning("tcp-accept", f"accept failed: {exc}")
                return
            host = addr[0]
            reason = self._refusal(host)
            if reason:
                self.stats.refused += 1
                quiet.warning("tcp-refused", f"refused a TCP connection from {host}: {reason}")
                _quiet_close(sock)
                continue
            sock.setblocking(False)
            # A small kernel buffer: what a slow reader holds is mostly our queue, capped.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SEND_BUFFER)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # replies are small
            with self._lock:
                conn, self._next_conn = self._next_conn, self._next_conn + 1
                stream = _Stream(sock, Peer("tcp", host, addr[1], conn))
                self._streams[conn] = stream
            self.stats.connections += 1
            sel.register(sock, selectors.EVENT_READ, stream)

    def _refusal(self, host: str) -> str:
        if not self.allowed(host):
            return "not in server.allow_clients"
        with self._lock:
            total = len(self._streams)
            same = sum(1 for s in self._streams.values() if s.peer.host == host)
        if total >= self.limits.max_tcp:
            return f"{total} connections are open (the most the server takes)"
        if same >= self.limits.max_tcp_per_host:
            return f"{same} connections from this host are open (the most per host)"
        return ""

    def _ready(self, sel: selectors.BaseSelector, stream: _Stream, mask: int) -> None:
        if stream.closed:
            self._drop(sel, stream)
            return
        if mask & selectors.EVENT_WRITE:
            with stream.lock:
                try:
                    del stream.out[: stream.sock.send(stream.out)]
                    stream.last_active = time.monotonic()
                except BlockingIOError:
                    pass
                except OSError:
                    stream.closed = True
        if mask & selectors.EVENT_READ and not stream.closed:
            self._read(stream)
        if stream.closed:
            self._drop(sel, stream)

    def _read(self, stream: _Stream) -> None:
        try:
            data = stream.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            stream.closed = True
            return
        stream.last_active = time.monotonic()
        try:
            packets = stream.decoder.feed(data)
        except OscPacketError as exc:  # the stream cannot be re-synchronised
            self.stats.packets += 1
            self.stats.malformed += 1
            self.on_error(stream.peer, f"{exc}; closing the connection")
            stream.closed = True
            return
        for packet in packets:
            self._deliver(packet, stream.peer)

    def _update_interest(self, sel: selectors.BaseSelector) -> None:
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            if stream.closed:
                self._drop(sel, stream)
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if stream.out else 0)
            try:
                if sel.get_key(stream.sock).events != want:
                    sel.modify(stream.sock, want, stream)
            except (KeyError, ValueError):
                self._drop(sel, stream)

    def _close_idle(self, sel: selectors.BaseSelector, now: float) -> None:
        with self._lock:
            idle = [s for s in self._streams.values()
                    if now - s.last_active > self.limits.tcp_idle_s]
        for stream in idle:
            message = (f"connection idle for {self.limits.tcp_idle_s:g} s; closing it "
                       "(send /samuel/ping now and then to keep it open)")
            if stream.decoder.mode is not None:
                self._send_tcp(stream.peer, encode("/samuel/error", ("", message, -1), "ssi"))
            quiet.info("tcp-idle", f"{stream.peer}: {message}")
            self._drop(sel, stream)

    def _drop(self, sel: selectors.BaseSelector, stream: _Stream) -> None:
        with self._lock:
            if self._streams.pop(stream.peer.conn, None) is None:
                return
        stream.closed = True
        try:
            sel.unregister(stream.sock)
        except (KeyError, ValueError):
            pass
        _quiet_close(stream.sock)
        self.on_closed(stream.peer)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


def _quiet_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
