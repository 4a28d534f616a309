"""Malformed OSC against a running engine: 10,000+ bad packets over UDP and TCP (SLIP and
length-prefixed framing) while a generation runs.

The server runs in this process (its memory is measured here); the fuzzing client runs in
another process, as a hostile peer would. After every bad packet the client sends a ping
and waits for its pong: whatever arrives before the pong answers the bad packet, so a packet
with no answer at all is a *silent drop* (the target is 0). TCP frames that break the stream
itself (an oversized length, a bad SLIP escape) must be answered with an error before the
server closes the connection; the client then reconnects.

    .venv/bin/python bench/fuzz.py [--model PATH] [--udp 6000] [--tcp 2500] [--seed 0]
        [--rate 1e6]

--rate is the server's per-host message limit; the default lifts it so that every packet is
parsed (a limited flood is mostly refused before parsing, answered once a second).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import socket
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pythonosc import slip
from pythonosc.osc_message_builder import OscMessageBuilder

from samuel_live import SAMPLE_RATE
from samuel_live.audio.sources import MemorySource
from samuel_live.config import load_config
from samuel_live.engine.engine import CAPTURE_HEADROOM_S, Engine
from samuel_live.osc.client import StreamDecoder, encode, parse_packet
from samuel_live.osc.server import OscServer
from samuel_live.pipeline import STARTER_MODEL, Accompanist

EVENTS = ("/samuel/progress", "/samuel/done", "/samuel/cancelled", "/samuel/generate/ack",
          "/samuel/play/reply", "/samuel/model/loaded")  # job events, not answers
PING_TOKEN_BASE = 1_000_000


# --- bad packets -------------------------------------------------------------------------------
def _message(address: str, *args: tuple[str, Any]) -> bytes:
    builder = OscMessageBuilder(address)
    for tag, value in args:
        builder.add_arg(value, tag)
    return builder.build().dgram


def _bundle(*elements: bytes, sizes: list[int] | None = None) -> bytes:
    body = b""
    for i, e in enumerate(elements):
        size = sizes[i] if sizes and i < len(sizes) else len(e)
        body += struct.pack(">i", size) + e
    return b"#bundle\x00" + struct.pack(">Q", 1) + body


def bad_packet(rng: random.Random) -> bytes:
    """One malformed or hostile packet (never empty)."""
    # (no valid cancel of job 1: that is the background job, and any client may cancel it)
    valid = [encode("/samuel/generate", ("capture", "x", 1, 2)), encode("/samuel/ping", (1,)),
             encode("/samuel/cancel", (999_999,)),
             encode("/samuel/post/set", ('[{"type":"gain"}]',)),
             encode("/samuel/client/register", (0,)), encode("/samuel/model/load", ("/etc",))]
    kind = rng.randrange(14)
    if kind == 0:
        return rng.randbytes(rng.randint(1, 1500))
    if kind == 1:  # a real message with a byte flipped, or cut short
        t = bytearray(rng.choice(valid))
        t[rng.randrange(len(t))] = rng.randrange(256)
        return bytes(t[: rng.randint(1, len(t))])
    if kind == 2:
        return b"/samuel/" + rng.randbytes(rng.randint(1, 64))
    if kind == 3:
        return b"#bundle\x00" + rng.randbytes(rng.randint(0, 200))
    if kind == 4:  # integers and floats the wire cannot carry back
        return rng.choice([_message("/samuel/ping", ("h", 10**10)),
                           _message("/samuel/ping", ("f", 1e10)),
                           _message("/samuel/cancel", ("h", -(2**40))),
                           _message("/samuel/transport/tempo", ("d", float("nan"))),
                           _message("/samuel/transport/bar", ("f", float("inf")))])
    if kind == 5:  # argument types the namespace refuses
        return rng.choice([_message("/samuel/ping", ("b", b"blob")),
                           _message("/samuel/ping", ("T", True)),
                           _message("/samuel/ping", ("N", None)),
                           _message("/samuel/post/set", ("i", 3))])
    if kind == 6:  # a long unknown address
        return encode("/samuel/" + "x" * rng.randint(100, 8000), ())
    if kind == 7:  # bundle element sizes that lie
        ping = encode("/samuel/ping", (2,))
        return _bundle(ping, ping, sizes=[len(ping), rng.choice([-4, 0, 3, 9999])])
    if kind == 8:  # bundles nested too deep
        packet = encode("/samuel/ping", (3,))
        for _ in range(rng.randint(9, 20)):
            packet = _bundle(packet)
        return packet
    if kind == 9:  # paths that try to leave the render folder
        return encode("/samuel/generate", ("capture", rng.choice(
            ["../../etc/x", "/tmp/abs", "~/x", "a/../../b", "x\\y", "." * 300])))
    if kind == 10:
        return encode("/samuel/generate", (rng.choice(["file:/etc/passwd", "file:../x",
                                                       "nope", ""]),))
    if kind == 11:  # out-of-range values
        return encode("/samuel/generate", ("capture", "-", -5, 5000, 99.0, "euler"))
    if kind == 12:  # a server-to-client address sent to the server
        return encode("/samuel/done", (1, "x", 1.0, 0.0, 0.0, 0.0, 0.0, "", 0.0))
    return encode("/samuel/post/set", (rng.choice(["{", "[1,2", '[{"type":"vst3","path":"/x"}]',
                                                   "[" * 5000]),))


def stream_breaker(rng: random.Random, framing: str) -> bytes:
    """A frame after which the stream cannot be re-synchronised."""
    if framing == "length":
        return struct.pack(">I", rng.choice([1 << 20, 0xFFFFFFFF, 70000]))
    return slip.END + b"/samuel/ping" + slip.ESC + b"\x01" + slip.END  # a bad escape


# --- the hostile client --------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.packets = self.replies = self.errors = self.silent = self.closed_with_error = 0
        self.reconnects = 0
        self.rtts: list[float] = []

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _count(messages: list[Any], token: int, tally: Tally) -> bool:
    """Count answers; True once the pong ``token`` arrived."""
    for m in messages:
        if m.address == "/samuel/pong" and m.args == (token,):
            return True
        if m.address in EVENTS:
            continue
        tally.replies += 1
        tally.errors += m.address == "/samuel/error"
    return False


def fuzz_udp(port: int, n: int, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    for i in range(n):
        token = PING_TOKEN_BASE + i
        before = tally.replies
        sock.sendto(bad_packet(rng), ("127.0.0.1", port))
        t0 = time.perf_counter()
        sock.sendto(encode("/samuel/ping", (token,), "i"), ("127.0.0.1", port))
        tally.packets += 1
        sock.settimeout(5.0)
        try:
            while not _count(parse_packet(sock.recv(65536)), token, tally):
                pass
            tally.rtts.append(time.perf_counter() - t0)
        except TimeoutError:
            pass
        if tally.replies == before:
            tally.silent += 1
    sock.close()


def fuzz_tcp(port: int, n: int, seed: int, framing: str, tally: Tally) -> None:
    rng = random.Random(seed)
    sent = 0
    while sent < n:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        decoder = StreamDecoder()
        decoder.mode = "slip" if framing == "slip" else "length"
        tally.reconnects += 1
        # ~1 in 250 frames breaks the stream; the rest are well-framed junk
        while sent < n:
            sent += 1
            tally.packets += 1
            token = PING_TOKEN_BASE + sent
            before = tally.replies
            breaker = rng.random() < 0.004
            frame = (stream_breaker(rng, framing) if breaker
                     else decoder.frame(bad_packet(rng)))
            ping = decoder.frame(encode("/samuel/ping", (token,), "i"))
            t0 = time.perf_counter()
            sock.sendall(frame if breaker else frame + ping)
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    if _count([m for p in decoder.feed(data) for m in parse_packet(p)],
                              token, tally):
                        tally.rtts.append(time.perf_counter() - t0)
                        break
            except (TimeoutError, ConnectionResetError):
                data = b""
            if tally.replies == before:
                tally.silent += 1
            if not data:  # closed: expected only after a breaker, and with an error first
                tally.closed_with_error += breaker and tally.replies > before
                break
        sock.close()


def run_client(udp_port: int, tcp_port: int, udp_n: int, tcp_n: int,
               seed: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name, job in (("udp", lambda t: fuzz_udp(udp_port, udp_n, seed, t)),
                      ("tcp slip", lambda t: fuzz_tcp(tcp_port, tcp_n, seed + 1, "slip", t)),
                      ("tcp length", lambda t: fuzz_tcp(tcp_port, tcp_n, seed + 2, "length",
                                                        t))):
        tally = Tally()
        t0 = time.monotonic()
        job(tally)
        out[name] = {**tally.as_dict(), "seconds": time.monotonic() - t0}
    return out


# --- the server side ---------------------------------------------------------------------------
class LogMeter(logging.Handler):
    """Counts what the server would log: lines, bytes, the longest line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines = self.bytes = self.longest = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.lines += 1
        self.bytes += len(text) + 1
        self.longest = max(self.longest, len(text))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint (default: the shipped starter model)")
    parser.add_argument("--udp", type=int, default=6000, help="bad UDP packets")
    parser.add_argument("--tcp", type=int, default=2500, help="bad TCP frames per framing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1e6, help="server.rate_limit_per_s")
    parser.add_argument("--steps", type=int, default=200, help="steps of the background job")
    args = parser.parse_args()
    meter = LogMeter()
    meter.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[meter])

    folder = Path(tempfile.mkdtemp(prefix="samuel-fuzz-"))
    config = load_config(None, [f"render.folder={folder}", "server.udp_port=0",
                                "server.tcp_port=0", "server.http_port=0", "post.preset=clean",
                                f"server.rate_limit_per_s={args.rate:g}",
                                f"server.rate_burst={max(100, int(args.rate))}"])
    model = Accompanist.load(args.model or STARTER_MODEL)
    t = np.arange(int(10 * SAMPLE_RATE)) / SAMPLE_RATE
    vocal = np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    capture = MemorySource(vocal, seconds=config.capture.seconds + CAPTURE_HEADROOM_S)
    engine = Engine(config, accompanist=model, capture=capture).start()
    engine.arm()
    server = OscServer(engine, config.server).start()
    rss_before = rss_mib()
    job = engine.submit("capture", "fuzz-job", steps=args.steps)
    t0 = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.apply(run_client, (server.udp_port, server.tcp_port, args.udp, args.tcp,
                                          args.seed))
    fuzz_s = time.monotonic() - t0
    rss_after = rss_mib()
    running_during = not job.status.finished
    finished = engine.wait(job.id, timeout=600)
    print(f"model {model.info()['name']}, server rate limit {args.rate:g}/s per host; "
          f"fuzzing took {fuzz_s:.1f} s")
    total = {k: 0 for k in ("packets", "replies", "errors", "silent", "closed_with_error")}
    rtts: list[float] = []
    for name, r in results.items():
        for k in total:
            total[k] += r[k]
        rtts += r["rtts"]
        p99 = np.percentile(np.asarray(r["rtts"]) * 1000, 99) if r["rtts"] else float("nan")
        print(f"{name:<11} packets {r['packets']:6d}  replies {r['replies']:6d}  errors "
              f"{r['errors']:6d}  silent drops {r['silent']:3d}  connections "
              f"{r['reconnects']:3d}  closed after an error {r['closed_with_error']:3d}  "
              f"ping p99 {p99:6.2f} ms")
    ms = np.asarray(rtts) * 1000
    print(f"{'all':<11} packets {total['packets']:6d}  replies {total['replies']:6d}  errors "
          f"{total['errors']:6d}  silent drops {total['silent']:3d}")
    print(f"ping after each bad packet: p50 {statistics.median(ms):.2f} ms, p99 "
          f"{np.percentile(ms, 99):.2f} ms, max {ms.max():.1f} ms (n={len(ms)})")
    print(f"server RSS {rss_before:.0f} MiB before, {rss_after:.0f} MiB after")
    print(f"server log: {meter.lines} lines, {meter.bytes} bytes "
          f"({meter.bytes / max(1, total['packets']):.1f} bytes a bad packet), longest line "
          f"{meter.longest} characters")
    print(f"background job ({args.steps} steps): still running when fuzzing ended: "
          f"{running_during}; finished: {finished.status.value}")
    print(f"server stats {server.stats}")
    server.close()
    engine.close()


if __name__ == "__main__":
    main()
