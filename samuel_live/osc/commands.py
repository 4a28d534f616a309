"""What the CLI's ``serve``, ``send`` and ``schema`` commands do (argument parsing is the CLI's)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import TextIO

from samuel_live.config import Config
from samuel_live.errors import BindError, SamuelError
from samuel_live.osc.client import Message, OscClient
from samuel_live.osc.schema import Method, OscArg, SchemaError, load_namespace

log = logging.getLogger(__name__)


def serve(config: Config) -> int:
    """Run the engine and its OSC bridge until SIGINT/SIGTERM; returns the exit code."""
    from samuel_live.engine.engine import Engine
    from samuel_live.osc.server import OscServer

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine = Engine(config)
    try:
        engine.start()
        server = OscServer(engine, config.server).start()
    except BindError as exc:
        engine.close()
        print(f"samuel-live: cannot serve: {bind_advice(exc)}", file=sys.stderr)
        return 1
    except (SamuelError, OSError) as exc:
        engine.close()
        print(f"samuel-live: cannot serve: {exc}", file=sys.stderr)
        return 1
    status = engine.status()
    print(f"samuel-live serving: OSC udp {config.server.host}:{server.udp_port}, "
          f"tcp {server.tcp_port or 'off'}, OSCQuery http {server.http_port or 'off'}; "
          f"model {status.model or '(none: ' + status.state + ')'}; renders in {engine.folder}",
          flush=True)
    try:
        stop.wait()
    finally:
        # The engine first: the jobs it cancels are answered while the server still sends.
        engine.close()
        server.close()
    return 0


BIND_FLAGS = {"udp": "--udp-port", "tcp": "--tcp-port", "http": "--http-port"}


def bind_advice(exc: BindError) -> str:
    """What went wrong binding, and the flag that picks another port."""
    flag = BIND_FLAGS.get(exc.kind, "--udp-port")
    return (f"{exc.kind.upper()} port {exc.port} on {exc.host} is not available "
            f"({exc.reason}); is another `samuel-live serve` running? Pick another port with "
            f"`samuel-live serve {flag} N`")


def send(host: str, port: int, address: str, args: list[str], timeout: float = 10.0,
         tcp: bool = False, out: TextIO | None = None) -> int:
    """Send one message, print every reply until a final one or ``timeout``.

    Returns 0 when the final reply is not an error, 1 on /samuel/error or a timeout.
    """
    out = out or sys.stdout
    namespace = load_namespace()
    method = namespace.methods.get(address)
    try:
        values = parse_cli_args(args, method)
    except SamuelError as exc:
        print(f"samuel-live send: {exc}", file=sys.stderr)
        return 1
    try:
        client = OscClient(host, port, tcp=tcp, namespace=namespace)
        if not tcp and _is_loopback(host):
            # Connected, the socket hears the kernel's "port unreachable" at once when no
            # server listens, instead of waiting out the timeout.
            client.sock.connect((host, port))
    except OSError as exc:
        print(f"samuel-live send: {not_answering(host, port, tcp, exc.strerror or str(exc))}",
              file=sys.stderr)
        return 1
    with client:
        try:
            client.send(address, *values)
            return _print_replies(client, address, method, timeout, out)
        except OSError as exc:  # UDP: the kernel reports "port unreachable" as refused
            print(f"samuel-live send: {not_answering(host, port, tcp, exc.strerror or str(exc))}",
                  file=sys.stderr)
            return 1


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def not_answering(host: str, port: int, tcp: bool, why: str) -> str:
    """The message for a server that does not answer, with how to start one."""
    kind = "tcp" if tcp else "udp"
    return (f"the server is not answering on {host}:{port} ({kind}: {why}); start it with "
            f"`samuel-live serve` (it listens on udp 9000, tcp 9001 unless configured) or "
            f"check --host/--port")


def _print_replies(client: OscClient, address: str, method: Method | None, timeout: float,
                   out: TextIO) -> int:
    import time

    deadline = time.monotonic() + timeout
    job: int | None = None
    answered = False
    while True:
        try:
            msg = client.receive(max(0.0, deadline - time.monotonic()))
        except SamuelError as exc:
            print(f"samuel-live send: {exc}", file=sys.stderr)
            return 1
        if msg is None:
            problem = (f"no final reply to {address} within {timeout:g} s" if answered else
                       not_answering(client.host, client.port, client.tcp,
                                     f"no reply within {timeout:g} s"))
            print(f"samuel-live send: {problem}", file=sys.stderr)
            return 1
        answered = True
        print(format_message(msg), file=out, flush=True)
        if msg.address == "/samuel/generate/ack" and job is None:
            job = int(msg.args[0])
        if _is_final(msg, address, method, job):
            return 1 if msg.address == "/samuel/error" else 0


_FINAL_EVENTS = {
    "/samuel/generate": ("/samuel/done", "/samuel/cancelled"),
    "/samuel/model/load": ("/samuel/model/loaded",),
}


def _is_final(msg: Message, address: str, method: Method | None, job: int | None) -> bool:
    if address == "/samuel/generate":
        if msg.address in ("/samuel/done", "/samuel/cancelled", "/samuel/error"):
            mine = msg.args[-1] if msg.address == "/samuel/error" else msg.args[0]
            return mine == job or (msg.address == "/samuel/error" and mine == -1 and
                                   msg.args[0] in (address, ""))
        return False
    if msg.address == "/samuel/error":
        return msg.args[0] in (address, "")
    finals = _FINAL_EVENTS.get(address) or ((method.reply,) if method and method.reply else ())
    return msg.address in finals or not finals


def parse_cli_args(args: list[str], method: Method | None) -> list[OscArg]:
    """Command-line strings typed by the namespace (i, f, s), or guessed for unknown addresses."""
    if method is None:
        return [_guess(a) for a in args]
    values: list[OscArg] = []
    for i, text in enumerate(args):
        tag = method.args[i].tag if i < len(method.args) else _tag_of(_guess(text))
        try:
            values.append(int(float(text)) if tag == "i" and float(text).is_integer()
                          else float(text) if tag in "if" else text)
        except ValueError:
            raise SchemaError(f"{method.address}: argument {i + 1} ({method.args[i].name}) "
                              f"must be a number, got {text!r}") from None
    return values


def _guess(text: str) -> OscArg:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _tag_of(value: OscArg) -> str:
    return "i" if isinstance(value, int) else "f" if isinstance(value, float) else "s"


def format_message(msg: Message) -> str:
    """``/address arg arg`` with strings quoted only when they contain spaces."""
    parts = [msg.address]
    for a in msg.args:
        if isinstance(a, str):
            parts.append(json.dumps(a) if (" " in a or not a) else a)
        elif isinstance(a, float):
            parts.append(f"{a:.6g}")
        else:
            parts.append(str(a))
    return " ".join(parts)


def schema_text(fmt: str = "json") -> str:
    """The namespace as OSCQuery JSON or as a Markdown table."""
    namespace = load_namespace()
    if fmt == "json":
        return json.dumps(namespace.tree, indent=2) + "\n"
    if fmt == "markdown":
        return namespace.markdown_table()
    raise SamuelError(f"schema format must be json or markdown, got {fmt!r}")
