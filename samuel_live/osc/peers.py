"""Who the server talks to (``Peer``) and what it has counted (``ServerStats``): the two
values shared by the transport, admission and routing modules."""

from __future__ import annotations

from dataclasses import dataclass


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
    """Counters since start; read them from any thread. Every packet that arrives ends up
    counted as messages, malformed, rate_limited or refused."""

    packets: int = 0
    messages: int = 0
    malformed: int = 0
    invalid: int = 0
    rate_limited: int = 0
    refused: int = 0
    sent: int = 0
    send_errors: int = 0
    dropped_clients: int = 0  # TCP clients closed because they stopped reading
    connections: int = 0  # TCP connections accepted
