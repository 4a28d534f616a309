"""The namespace over HTTP for OSCQuery clients: ``GET /path`` returns that node as JSON,
``GET /?HOST_INFO`` the server's name, OSC port and transport."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from samuel_live.osc.schema import Namespace

log = logging.getLogger(__name__)
SERVER_NAME = "samuel-live"


class OscQueryServer:
    """A small threaded HTTP server publishing the namespace (read-only)."""

    def __init__(self, namespace: Namespace, host: str, port: int, osc_port: int,
                 tcp_port: int = 0) -> None:
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
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
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


class _Handler(BaseHTTPRequestHandler):
    server_version = "samuel-live-oscquery"

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
        log.debug("oscquery %s", format % args)
