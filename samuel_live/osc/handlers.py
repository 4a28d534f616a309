"""One handler per command of the namespace: /samuel/a/b -> ``Handlers._on_a_b``.

A handler gets the peer and the arguments already checked against the namespace, calls the
engine and returns the replies. It only validates and enqueues, so a client never waits for a
generation. The wire's conventions for "the default" (seed -1, steps 0, cfg < 0, "-" or ""
for a name) become None here: nothing below the OSC layer knows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from samuel_live.engine.engine import Engine
from samuel_live.errors import SamuelError
from samuel_live.osc.admission import ClientRegistry
from samuel_live.osc.peers import Peer
from samuel_live.osc.schema import Namespace, OscArg
from samuel_live.post.chain import chain_from_json

ROOT = "/samuel"
Reply = tuple[str, tuple[OscArg, ...]]
Handler = Callable[..., list[Reply]]
DEFAULT_NAMES = ("-", "")  # a name argument that means "the default"


def generate_options(output: str = "-", seed: int = -1, steps: int = 0, cfg: float = -1.0,
                     sampler: str = "-", post: str = "-", instrument: str = "-",
                     soundfont: str = "-", key: str = "-") -> dict[str, Any]:
    """/samuel/generate's optional arguments as engine.submit keywords, None for "default"."""
    return {
        "key": None if key in (*DEFAULT_NAMES, "default") else key,
        "instrument": None if instrument in (*DEFAULT_NAMES, "default") else instrument,
        "soundfont": None if soundfont in (*DEFAULT_NAMES, "default") else soundfont,
        "output": None if output in (*DEFAULT_NAMES, "auto") else output,
        "seed": None if seed < 0 else seed,
        "steps": None if steps <= 0 else steps,
        "cfg": None if cfg < 0 else cfg,
        "sampler": None if sampler in (*DEFAULT_NAMES, "default") else sampler,
        "post": None if post in (*DEFAULT_NAMES, "default-chain") else post,
    }


class Handlers:
    """The command handlers of one server."""

    def __init__(self, engine: Engine, registry: ClientRegistry) -> None:
        self.engine, self.registry = engine, registry
        self.model_requester: Peer | None = None  # who gets /samuel/model/loaded

    def table(self, namespace: Namespace) -> dict[str, Handler]:
        """The handler of every command in ``namespace``; SamuelError if one is missing."""
        table = {}
        for method in namespace.commands():
            name = handler_name(method.address)
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
        return [("/samuel/status/reply", (s.state, s.queued, s.running, len(self.registry),
                                          t.bpm, t.beats, t.bar_at(), s.model))]

    def _on_client_register(self, peer: Peer, port: int = 0) -> list[Reply]:
        client = _client_peer(peer, port)
        count = self.registry.register(client)
        return [("/samuel/client/register/reply", (client.host, client.port, count))]

    def _on_client_unregister(self, peer: Peer, port: int = 0) -> list[Reply]:
        client = _client_peer(peer, port)
        count = self.registry.unregister(client)
        return [("/samuel/client/unregister/reply", (client.host, client.port, count))]

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
                     priority: int = 5, loop_bars: int = 0, autoplay: int = 0,
                     instrument: str = "-", soundfont: str = "-",
                     key: str = "-") -> list[Reply]:
        options = generate_options(output, seed, steps, cfg, sampler, post, instrument,
                                   soundfont, key)
        # The ack goes out from the engine's "queued" event, so it always precedes progress.
        self.engine.submit(source, priority=priority, origin=peer, loop_bars=loop_bars,
                           autoplay=bool(autoplay), **options)
        return []

    def _on_cancel(self, peer: Peer, job: int) -> list[Reply]:
        return [("/samuel/cancel/reply", (job, int(self.engine.cancel(job))))]

    def _on_post_get(self, peer: Peer) -> list[Reply]:
        return [("/samuel/post/get/reply", (compact_json(self.engine.post_chain()),))]

    def _on_post_set(self, peer: Peer, text: str) -> list[Reply]:
        chain = self.engine.set_post_chain(chain_from_json(text))
        return [("/samuel/post/get/reply", (compact_json(chain),))]

    def _on_model_load(self, peer: Peer, path: str) -> list[Reply]:
        # No check of our own here: the engine's answer is the same for a missing file and a
        # forbidden one, so a client cannot probe which paths exist.
        self.engine.load_model(path)
        self.model_requester = peer
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


def handler_name(address: str) -> str:
    """/samuel/client/register -> _on_client_register."""
    return "_on_" + address.removeprefix(ROOT + "/").replace("/", "_")


def _client_peer(peer: Peer, port: int) -> Peer:
    if peer.kind == "tcp" or not port:
        return peer
    return Peer("udp", peer.host, port)


def compact_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
