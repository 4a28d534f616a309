"""The OSC bridge: UDP, TCP and OSCQuery HTTP in front of one Engine.

This module routes; the work is elsewhere: ``transport`` owns the sockets and sending,
``admission`` the allow-list, rate limit and client registry, ``handlers`` the commands and
``events`` the engine's announcements. Every packet is counted; a malformed or invalid one is
answered with /samuel/error, and the server keeps serving whatever one message does.

Where messages go: a reply (or an engine event) goes to the peer that asked and to every
registered client, once per target. An error about a request goes to its sender and to the
clients registered from the sender's host only, so one peer's junk never reaches the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from samuel_live.config import ServerConfig
from samuel_live.engine.engine import Engine
from samuel_live.errors import OscPacketError, SamuelError
from samuel_live.osc.admission import AllowList, ClientRegistry, Limits, RateLimiter
from samuel_live.osc.client import MAX_MESSAGE_BYTES, encode, parse_packet
from samuel_live.osc.events import EventRelay
from samuel_live.osc.handlers import Handlers
from samuel_live.osc.logs import LimitedLog
from samuel_live.osc.oscquery import OscQueryServer
from samuel_live.osc.peers import Peer, ServerStats
from samuel_live.osc.schema import Namespace, OscArg, load_namespace
from samuel_live.osc.transport import Transport

log = logging.getLogger(__name__)
quiet = LimitedLog(log)

__all__ = ["Limits", "OscServer", "Peer", "ServerStats"]


class OscServer:
    """Serves the namespace over UDP, TCP and (for OSCQuery) HTTP for one Engine."""

    def __init__(self, engine: Engine, config: ServerConfig,
                 namespace: Namespace | None = None, limits: Limits | None = None) -> None:
        self.engine, self.config = engine, config
        self.namespace = namespace or load_namespace()
        self.limits = limits or Limits()
        self.stats = ServerStats()
        self.allowed = AllowList(config.allow_clients)
        self.rate = RateLimiter(config.rate_limit_per_s, config.rate_burst,
                                self.limits.max_hosts_tracked)
        self.registry = ClientRegistry(self.limits)
        self.handlers = Handlers(engine, self.registry)
        self._table = self.handlers.table(self.namespace)
        self.events = EventRelay(self._reply, self._event_error,
                                 lambda: self.handlers.model_requester)
        self.transport = Transport(
            config.host, config.udp_port, config.tcp_port, reply_port=config.reply_port,
            allowed=self.allowed, on_packet=self.handle_packet, on_error=self._stream_error,
            on_closed=self._closed, limits=self.limits, stats=self.stats)
        self._http: OscQueryServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> OscServer:
        """Bind the sockets (port 0 picks a free one) and serve in threads; BindError names
        a port that is taken."""
        self.transport.start()
        try:
            if self.config.http_port > 0:
                self.start_http(self.config.http_port)
        except SamuelError:
            self.transport.close()
            raise
        self.engine.subscribe(self.events)
        log.info("OSC on udp %s:%d tcp %s", self.config.host, self.udp_port, self.tcp_port)
        return self

    def start_http(self, port: int = 0) -> int:
        """Serve the OSCQuery namespace on ``port`` (0 = any free port); returns the port."""
        self._http = OscQueryServer(self.namespace, self.config.host, port, self.udp_port,
                                    tcp_port=self.tcp_port, allowed=self.allowed,
                                    limits=self.limits, stats=self.stats)
        return self._http.start()

    def close(self) -> None:
        """Stop serving. Close the engine first when its last answers should still go out."""
        self.engine.unsubscribe(self.events)
        self.transport.close()
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def udp_port(self) -> int:
        return self.transport.udp_port

    @property
    def tcp_port(self) -> int:
        return self.transport.tcp_port

    @property
    def http_port(self) -> int:
        return self._http.port if self._http else 0

    # --- receiving ---------------------------------------------------------------------------
    def handle_packet(self, data: bytes, peer: Peer) -> None:
        """Count, admit, parse and dispatch one datagram or stream frame. Every message of
        a bundle costs one token of its host's rate limit."""
        self.stats.packets += 1
        if not self.allowed(peer.host):
            self.stats.refused += 1
            quiet.warning("refused", f"refused a packet from {peer.host}: not in "
                          "server.allow_clients")
            return
        if not self.rate.take(peer.host):
            self.stats.rate_limited += 1
            self._rate_warning(peer)
            return
        self.registry.seen(peer.host)
        try:
            messages = parse_packet(data)
            if not messages:
                raise OscPacketError("an OSC bundle with no messages")
        except OscPacketError as exc:
            self.stats.malformed += 1
            quiet.warning("malformed", f"from {peer}: {exc}")
            self._error(peer, "", str(exc))
            return
        passed = 1 + (self.rate.take(peer.host, len(messages) - 1) if len(messages) > 1 else 0)
        for msg in messages[:passed]:
            self.stats.messages += 1
            self._dispatch(msg.address, msg.args, peer)
        if passed < len(messages):
            self.stats.rate_limited += len(messages) - passed
            self._rate_warning(peer)

    def _rate_warning(self, peer: Peer) -> None:
        dropped = self.rate.should_warn(peer.host)
        if dropped:
            message = (f"rate limit of {self.config.rate_limit_per_s:g} messages/s from "
                       f"{peer.host} exceeded; {dropped} message(s) dropped")
            quiet.warning("rate", message)
            self._error(peer, "", message)

    def _dispatch(self, address: str, args: Sequence[Any], peer: Peer) -> None:
        try:
            values = self.namespace.validate(address, args)
            replies = self._table[address](peer, *values)
        except SamuelError as exc:
            self.stats.invalid += 1
            quiet.warning("invalid", f"{address} from {peer}: {exc}")
            self._error(peer, address, str(exc))
            return
        except Exception as exc:
            log.exception("%s from %s failed", address[:100], peer)
            self._error(peer, address, f"internal error: {type(exc).__name__}: {exc}")
            return
        for reply_address, reply_args in replies:
            self._reply(peer, reply_address, reply_args)

    def _stream_error(self, peer: Peer, message: str) -> None:
        quiet.warning("stream", f"from {peer}: {message}")
        self._error(peer, "", message)

    def _closed(self, peer: Peer) -> None:
        self.registry.unregister(peer)

    # --- sending -----------------------------------------------------------------------------
    def _reply(self, peer: Peer | None, address: str, args: Sequence[OscArg]) -> None:
        """Send to ``peer`` and every registered client, once each."""
        self._send_all(_targets(peer, self.registry.targets()), self._packet(address, args))

    def _error(self, peer: Peer | None, address: str, message: str, job: int = -1) -> None:
        """A request's error: to its sender and the clients registered from the same host."""
        host = peer.host if peer is not None else None
        local = [p for p in self.registry.targets() if p.host == host]
        self._send_all(_targets(peer, local), self._error_packet(address, message, job))

    def _event_error(self, peer: Peer | None, address: str, message: str, job: int) -> None:
        """A job's or model's failure: to whoever asked and every registered client."""
        packet = self._error_packet(address, message, job)
        self._send_all(_targets(peer, self.registry.targets()), packet)

    def _send_all(self, targets: list[Peer], packet: bytes) -> None:
        for target in targets:
            self.transport.send(target, packet)

    def _packet(self, address: str, args: Sequence[OscArg]) -> bytes:
        method = self.namespace.methods.get(address)
        try:
            packet = encode(address, args, method.type_tags if method else None)
        except Exception as exc:  # a value the wire cannot carry: say so instead
            log.error("reply %s %r cannot be encoded: %s", address, tuple(args)[:8], exc)
            return self._error_packet(address, f"reply could not be encoded: {exc}", -1)
        if len(packet) >= MAX_MESSAGE_BYTES:
            log.error("reply %s is %d bytes; sending an error instead", address, len(packet))
            return self._error_packet(address, "reply too large to send", -1)
        return packet

    @staticmethod
    def _error_packet(address: str, message: str, job: int) -> bytes:
        return encode("/samuel/error", (_cut(address, 160), _cut(message, 700), job), "ssi")


def _targets(peer: Peer | None, others: list[Peer]) -> list[Peer]:
    """``peer`` first, then ``others``, each once."""
    first = [peer] if peer is not None else []
    return list(dict.fromkeys(first + others))


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes (every error stays under MAX_MESSAGE_BYTES)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
