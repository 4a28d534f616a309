"""Who may talk to the server and how much: the allow-list, a message-rate limit per host and
the registry of clients that receive every reply and job event (capped, and forgotten when
their host has been silent for ``client_ttl_s``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from samuel_live.errors import SamuelError
from samuel_live.osc.peers import Peer


@dataclass(frozen=True)
class Limits:
    """The server's caps and timeouts (one place for their defaults)."""

    max_clients: int = 32  # registered clients, all hosts together
    max_clients_per_host: int = 8
    client_ttl_s: float = 600.0  # a registration lapses after this long without a message
    max_hosts_tracked: int = 4096  # rate-limit buckets kept (least recently seen go first)
    max_tcp: int = 64  # open TCP connections, all hosts together
    max_tcp_per_host: int = 8
    tcp_idle_s: float = 300.0  # a TCP connection with no traffic either way is closed
    tcp_queue_bytes: int = 256 * 1024  # unsent replies a TCP client may hold before it is dropped
    max_http: int = 16  # concurrent OSCQuery HTTP connections
    http_timeout_s: float = 10.0
    backlog: int = 128  # listen backlog of the TCP and HTTP sockets


class AllowList:
    """``server.allow_clients``: empty allows every host."""

    def __init__(self, hosts: tuple[str, ...]) -> None:
        self.hosts = frozenset(hosts)

    def __call__(self, host: str) -> bool:
        return not self.hosts or host in self.hosts


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    warned: float = -1e9
    dropped: int = 0


class RateLimiter:
    """A token bucket per host (not per port: a peer can open any number of ports), charged
    one token per message, so a bundle costs as much as its messages sent one by one."""

    def __init__(self, rate: float, burst: int, max_hosts: int) -> None:
        self.rate, self.burst, self.max_hosts = rate, float(max(1, burst)), max_hosts
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, host: str, n: int = 1) -> int:
        """Take up to ``n`` tokens for ``host``; returns how many messages may pass."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(host, None) or _Bucket(self.burst, now)
            self._buckets[host] = bucket  # most recently seen last
            while len(self._buckets) > self.max_hosts:
                self._buckets.popitem(last=False)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            granted = min(n, int(bucket.tokens))
            bucket.tokens -= granted
            bucket.dropped += n - granted
            return granted

    def should_warn(self, host: str) -> int:
        """Messages dropped for ``host`` since the last warning, if a warning is due (at most
        one a second), else 0."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(host)
            if bucket is None or not bucket.dropped or now - bucket.warned < 1.0:
                return 0
            bucket.warned, dropped, bucket.dropped = now, bucket.dropped, 0
            return dropped


class ClientRegistry:
    """Clients that asked for every reply and event. A registration lapses when its host has
    sent nothing for ``ttl_s``; any message from the host renews all of its registrations."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._clients: dict[Peer, None] = {}  # insertion-ordered set
        self._last_seen: dict[str, float] = {}  # host -> monotonic time of its last message
        self._lock = threading.Lock()
        self._swept = 0.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def seen(self, host: str) -> None:
        """A message arrived from ``host``: its registrations stay alive."""
        with self._lock:
            if host in self._last_seen:
                self._last_seen[host] = time.monotonic()

    def register(self, peer: Peer) -> int:
        """Add ``peer`` (again is fine); returns the number of clients, or SamuelError when a
        cap is reached."""
        with self._lock:
            self._expire(time.monotonic(), force=True)
            if peer not in self._clients:
                same_host = sum(1 for p in self._clients if p.host == peer.host)
                if same_host >= self.limits.max_clients_per_host:
                    raise SamuelError(
                        f"{same_host} clients are registered from {peer.host} already (the "
                        f"most per host); send /samuel/client/unregister for one you no longer "
                        f"use, or wait {self.limits.client_ttl_s:g} s for silent ones to lapse")
                if len(self._clients) >= self.limits.max_clients:
                    raise SamuelError(
                        f"{len(self._clients)} clients are registered (the most the server "
                        f"takes); unregister one or wait {self.limits.client_ttl_s:g} s for "
                        "silent ones to lapse")
            self._clients[peer] = None
            self._last_seen[peer.host] = time.monotonic()
            return len(self._clients)

    def unregister(self, peer: Peer) -> int:
        """Remove ``peer`` if registered; returns the number of clients left."""
        with self._lock:
            self._drop(peer)
            return len(self._clients)

    def targets(self) -> list[Peer]:
        """The live registrations, oldest first."""
        with self._lock:
            self._expire(time.monotonic())
            return list(self._clients)

    def _drop(self, peer: Peer) -> None:
        self._clients.pop(peer, None)
        if not any(p.host == peer.host for p in self._clients):
            self._last_seen.pop(peer.host, None)

    def _expire(self, now: float, force: bool = False) -> None:
        if not force and now - self._swept < min(1.0, self.limits.client_ttl_s / 4):
            return
        self._swept = now
        ttl = self.limits.client_ttl_s
        for peer in [p for p in self._clients if now - self._last_seen.get(p.host, 0.0) > ttl]:
            self._drop(peer)
