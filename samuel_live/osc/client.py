"""OSC on the wire: encode and parse packets, frame TCP streams, and a small blocking client.

The server uses the same helpers, so both ends agree on one encoding: arguments are typed from
the namespace (an "f" argument is always sent as float, even when given 3).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pythonosc import slip
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from samuel_live.errors import OscPacketError, SamuelError
from samuel_live.osc.schema import Namespace, OscArg, load_namespace

MAX_MESSAGE_BYTES = 1024  # every message the server sends stays below this
MAX_STREAM_FRAME = 65536
MAX_BUNDLE_DEPTH = 8
BUNDLE_PREFIX = b"#bundle\x00"




@dataclass(frozen=True)
class Message:
    address: str
    args: tuple[OscArg, ...]


def encode(address: str, args: Sequence[OscArg], tags: str | None = None) -> bytes:
    """One OSC message; ``tags`` (e.g. "sif") fixes the types, otherwise they are inferred."""
    builder = OscMessageBuilder(address=address)
    for i, value in enumerate(args):
        tag = tags[i] if tags and i < len(tags) else _infer_tag(value)
        if tag == "i":
            builder.add_arg(int(value), "i")
        elif tag == "f":
            builder.add_arg(float(value), "f")
        else:
            builder.add_arg(str(value), "s")
    return builder.build().dgram


def _infer_tag(value: OscArg) -> str:
    if isinstance(value, bool):
        return "i"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    return "s"


def parse_packet(data: bytes) -> list[Message]:
    """All messages in a datagram (bundles flattened, timetags ignored), or OscPacketError."""
    try:
        return list(_parse(data, 0))
    except OscPacketError:
        raise
    except Exception as exc:  # python-osc raises ParseError, IndexError, struct.error ...
        raise OscPacketError(f"malformed OSC packet of {len(data)} bytes: {exc}") from None


def _parse(data: bytes, depth: int) -> Iterable[Message]:
    if data.startswith(b"/"):
        yield _message(OscMessage(data))
    elif data.startswith(BUNDLE_PREFIX):
        # Walked here rather than by OscBundle, which skips elements it cannot identify.
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscPacketError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < 16:
            raise OscPacketError(f"malformed OSC bundle of {len(data)} bytes: no timetag")
        index = 16
        while index < len(data):
            (size,) = struct.unpack(">i", data[index : index + 4].ljust(4, b"\0"))
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise OscPacketError(
                    f"malformed OSC bundle: element of {size} bytes at byte {index - 4} "
                    f"does not fit the {len(data)}-byte bundle"
                )
            yield from _parse(data[index : index + size], depth + 1)
            index += size
    else:
        raise OscPacketError(
            f"malformed OSC packet of {len(data)} bytes: it starts with neither '/' nor "
            "'#bundle'"
        )


def _message(msg: OscMessage) -> Message:
    args = []
    for value in msg.params:
        if isinstance(value, bool):  # OSC 1.1 T/F
            value = int(value)
        elif isinstance(value, bytes | bytearray):
            raise OscPacketError(f"{msg.address}: blob arguments are not accepted")
        elif value is None or isinstance(value, tuple | list):
            raise OscPacketError(f"{msg.address}: nil, array and MIDI arguments are not accepted")
        args.append(value)
    return Message(msg.address, tuple(args))


class StreamDecoder:
    """Splits a TCP byte stream into OSC packets: SLIP (OSC 1.1, python-osc's default) or
    4-byte length prefixes (OSC 1.0, liblo's default), chosen by the first byte."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if self.mode is None and self._buf:
            self.mode = "slip" if self._buf[0] == slip.END[0] else "length"
        packets = self._slip() if self.mode == "slip" else self._length()
        if len(self._buf) > MAX_STREAM_FRAME:
            raise OscPacketError(f"stream frame longer than {MAX_STREAM_FRAME} bytes")
        return packets

    def _slip(self) -> list[bytes]:
        out = []
        while True:
            end = self._buf.find(slip.END, 1 if self._buf[:1] == slip.END else 0)
            if end < 0:
                return out
            frame = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            body = frame.strip(slip.END)
            if body:
                try:
                    out.append(slip.decode(slip.END + body + slip.END))
                except slip.ProtocolError as exc:
                    raise OscPacketError(f"bad SLIP frame: {exc}") from None

    def _length(self) -> list[bytes]:
        out = []
        while len(self._buf) >= 4:
            (n,) = struct.unpack(">I", self._buf[:4])
            if n > MAX_STREAM_FRAME:
                raise OscPacketError(f"stream frame of {n} bytes is too long")
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4 : 4 + n]))
            del self._buf[: 4 + n]
        return out

    def frame(self, packet: bytes) -> bytes:
        """``packet`` framed the way this stream's peer framed its own."""
        if self.mode == "length":
            return struct.pack(">I", len(packet)) + packet
        return slip.encode(packet)


class OscClient:
    """A blocking OSC client over UDP (its own socket receives the replies) or TCP (SLIP)."""

    def __init__(self, host: str, port: int, *, tcp: bool = False,
                 namespace: Namespace | None = None, timeout: float = 5.0) -> None:
        self.host, self.port, self.tcp = host, port, tcp
        self.namespace = namespace or load_namespace()
        self._decoder = StreamDecoder()
        self._pending: list[Message] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if tcp:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            self._decoder.mode = "slip"
        else:
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, address: str, *args: OscArg) -> None:
        """Send a message typed from the namespace (unknown addresses: types inferred)."""
        method = self.namespace.methods.get(address)
        self.send_raw(encode(address, args, method.type_tags if method else None))

    def send_raw(self, packet: bytes) -> None:
        if self.tcp:
            self.sock.sendall(self._decoder.frame(packet))
        else:
            self.sock.sendto(packet, (self.host, self.port))

    def receive(self, timeout: float) -> Message | None:
        """The next message from the server, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if self.tcp and not data:
                raise SamuelError(f"server {self.host}:{self.port} closed the connection")
            packets = self._decoder.feed(data) if self.tcp else [data]
            for packet in packets:
                self._pending.extend(parse_packet(packet))
        return self._pending.pop(0)

    def wait_for(self, address: str, timeout: float, match: tuple[OscArg, ...] = ()) -> Message:
        """Receive until ``address`` arrives (its first arguments equal ``match``)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise SamuelError(f"no {address} within {timeout} s")
            if msg.address == address and msg.args[: len(match)] == match:
                return msg

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> OscClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
