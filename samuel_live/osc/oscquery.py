"""The namespace over HTTP for OSCQuery clients: ``GET /path`` returns that node as JSON,
``GET /?HOST_INFO`` the server's name, OSC port and transport.

Connections from hosts outside the allow-list are closed at accept; at most ``max_http`` are
served at once (the rest get 503), and each is closed after ``http_timeout_s`` of silence.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from samuel_live.errors import BindError
from samuel_live.osc.admission import Limits
from samuel_live.osc.logs import LimitedLog, shorten
from samuel_live.osc.peers import ServerStats
from samuel_live.osc.schema import Namespace

log = logging.getLogger(__name__)
quiet = LimitedLog(log)
SERVER_NAME = "samuel-live"


class OscQueryServer:
    """A small threaded HTTP server publishing the namespace (read-only)."""

    def __init__(self, namespace: Namespace, host: str, port: int, osc_port: int,
                 tcp_port: int = 0, *, allowed: Callable[[str], bool] = lambda host: True,
                 limits: Limits | None = None, stats: ServerStats | None = None) -> None:
        self.namespace = namespace
        self.host_info = {
            "NAME": SERVER_NAME,
            "OSC_IP": host,
            "OSC_PORT": osc_port,
            "OSC_TRANSPORT": "UDP",
            "EXTENSIONS": {"ACCESS": True, "RANGE": True, "DESCRIPTION": True, "TYPE": True,
                           "EXTENDED_TYPE": True, "VALUE": False, "LISTEN": False},
        }
        if tcp_port:
            self.host_info["OSC_TCP_PORT"] = tcp_port
        try:
            self._httpd = _HttpServer((host, port), allowed, limits or Limits(),
                                      stats or ServerStats())
        except OSError as exc:
            raise BindError("http", host, port, exc.strerror or str(exc)) from None
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> int:
        """Serve in a daemon thread; returns the bound port."""
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="samuel-oscquery", daemon=True)
        self._thread.start()
        return self.port

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, target: str) -> tuple[int, Any]:
        """(HTTP status, JSON body) for a request target such as ``/samuel/ping?TYPE``."""
        parts = urlsplit(target)
        query = unquote(parts.query)
        if query == "HOST_INFO":
            return 200, self.host_info
        node = self.namespace.node(unquote(parts.path) or "/")
        if node is None:
            return 404, {"error": f"no node at {parts.path}"}
        if query:
            if query not in node:
                return 204, None
            return 200, {query: node[query]}
        return 200, node


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with the allow-list at accept, a cap on live connections and a
    listen backlog from ``Limits``."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], allowed: Callable[[str], bool],
                 limits: Limits, stats: ServerStats) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.request_queue_size = limits.backlog
        self.allowed, self.limits, self.stats = allowed, limits, stats
        self.live = threading.BoundedSemaphore(limits.max_http)
        super().__init__(address, _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.allowed(client_address[0]):
            return True
        self.stats.refused += 1
        quiet.warning("http-refused", f"refused an HTTP connection from {client_address[0]}: "
                      "not in server.allow_clients")
        return False

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.live.acquire(blocking=False):
            self.stats.refused += 1
            quiet.warning("http-busy", f"{self.limits.max_http} HTTP connections are open; "
                          f"answering {client_address[0]} with 503")
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.live.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.live.release()


class _Handler(BaseHTTPRequestHandler):
    server_version = "samuel-live-oscquery"

    def setup(self) -> None:
        self.timeout = self.server.limits.http_timeout_s  # type: ignore[attr-defined]
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner: OscQueryServer = self.server.owner  # type: ignore[attr-defined]
        status, body = owner.answer(self.path)
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("oscquery %s", shorten(format % args))

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        quiet.warning("http-error", "oscquery " + format % args)
