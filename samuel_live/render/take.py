"""One render path: a take in; accompaniment audio, its notes as MIDI, and its sidecar out.

``render_take`` is what the CLI's ``generate``, batch ``render`` and the engine's worker all call:
sampling (whole take or seamless loop), the notes, the post chain (built here, on the calling
thread, from the frozen ``PostSection`` the request carries), the output sample rate, and the
sidecar. ``samuel_live.render.output.write_result`` writes it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from samuel_live import SAMPLE_RATE, WINDOW_SAMPLES
from samuel_live.config import PostSection
from samuel_live.errors import InvalidArgumentError, SamuelError
from samuel_live.render.instrument import Instrument, render_notes
from samuel_live.render.midi import midi_file, parse_grid
from samuel_live.render.notes import Note, notes_from_latent
from samuel_live.render.sidecar import Sidecar
from samuel_live.settings import GenerateSettings
from samuel_live.timing import MusicalTime, resolve_time

Progress = Callable[[int, int], None]
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000


class Model(Protocol):
    """What rendering needs of an ``Accompanist``."""

    def accompany_latent(self, vocal: np.ndarray, settings: GenerateSettings, *,
                         progress: Progress | None = None) -> torch.Tensor: ...

    def decode(self, latent: torch.Tensor, samples: int) -> np.ndarray: ...

    def accompany_loop(self, vocal: np.ndarray, settings: GenerateSettings, loop_samples: int,
                       *, progress: Progress | None = None) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LoopSpec:
    """A seamless loop of ``bars`` bars. ``transport`` is the tempo given with the request
    (the DAW's or the CLI's; None: estimate it from the take), ``meter`` its beats per bar if
    one was given, and ``unit`` the meter's note value."""

    bars: int
    transport: MusicalTime | None = None
    meter: int | None = None
    unit: int = 4

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise InvalidArgumentError(f"a loop needs at least one bar, got {self.bars}")
        if self.transport is not None and self.samples(self.transport) > WINDOW_SAMPLES:
            raise InvalidArgumentError(
                f"{self.bars} bars at {self.transport.bpm:g} bpm are longer than "
                f"{WINDOW_SAMPLES / SAMPLE_RATE:.2f} s, the longest loop; ask for fewer bars")

    def resolve(self, take: np.ndarray | None) -> MusicalTime:
        """Tempo and meter: the given ones (keeping where they came from), else the take's own
        tempo estimate."""
        if self.transport is not None:
            if self.meter is None:
                return self.transport
            return replace(self.transport, beats_per_bar=self.meter, beat_unit=self.unit)
        meter = f"{self.meter}/{self.unit}" if self.meter else None
        try:
            return resolve_time(None, meter, self.transport, take)
        except SamuelError as exc:
            raise SamuelError(
                f"a loop needs a tempo and none could be estimated from the take ({exc}); "
                "give the tempo (--bpm, or /samuel/transport/tempo BPM before /samuel/generate)"
            ) from None

    def samples(self, tempo: MusicalTime, sample_rate: int = SAMPLE_RATE) -> int:
        """The loop's exact length in samples (the tempo carries the meter's note value)."""
        return tempo.bars_samples(self.bars, sample_rate)


@dataclass(frozen=True)
class TakeSpec:
    """Everything about one render except the sampling settings and the vocal itself."""

    source: str  # for the sidecar: "file:PATH", "capture[a:b]", ...
    post: PostSection | None = PostSection()  # None = no post processing
    loop: LoopSpec | None = None
    musical_time: MusicalTime | None = None  # the tempo given with the request, if any
    sample_rate: int = SAMPLE_RATE  # of the result
    start_s: float = 0.0  # where the take starts in its source
    audio: bool = True  # False: notes (MIDI) only, no audio
    quantize: str | None = None  # MIDI grid, e.g. "1/16"; None = as played
    program: int = 0  # General MIDI program of the MIDI track (an instrument's wins)
    instrument: Instrument | None = None  # play the notes on it instead of the codec's decode

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        parse_grid(self.quantize)


@dataclass(frozen=True)
class RenderedTake:
    """A rendered take: its audio (None for MIDI only), its notes as a MIDI file, its sidecar
    (``audio`` and ``midi`` names are filled in when it is written)."""

    audio: np.ndarray | None
    midi: bytes
    notes: tuple[Note, ...]
    sidecar: Sidecar


def check_sample_rate(rate: int) -> int:
    if not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:
        raise InvalidArgumentError(
            f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}; "
            "use the rate of your DAW session, e.g. 44100 or 48000")
    return int(rate)


def render_take(
    model: Model,
    vocal: np.ndarray,
    settings: GenerateSettings,
    spec: TakeSpec,
    *,
    progress: Progress | None = None,
) -> RenderedTake:
    """Accompany a (2, n) 44.1 kHz take: audio at ``spec.sample_rate`` through the post chain,
    its notes as MIDI, and the sidecar saying how it was made."""
    from samuel_live.post.chain import build_chain

    chain = build_chain(spec.post) if spec.post is not None and spec.audio else None
    t0 = time.monotonic()
    tempo = spec.musical_time
    if spec.loop is None:
        latent = model.accompany_latent(vocal, settings, progress=progress)
        dry = vocal
        audio = model.decode(latent, vocal.shape[1])
        # Notes are found in the decoded audio, re-analysed: the analysis windows smooth the
        # generated latent's frame-to-frame flicker, which cut held notes into fragments.
        bands = harmonic_bands(audio)
    else:
        tempo = spec.loop.resolve(vocal)
        n = spec.loop.samples(tempo)
        if n > WINDOW_SAMPLES:
            raise SamuelError(f"a loop of {spec.loop.bars} bars at {tempo.bpm:g} bpm is "
                              f"{n / SAMPLE_RATE:.1f} s; loops are limited to "
                              f"{WINDOW_SAMPLES / SAMPLE_RATE:.2f} s, ask for fewer bars")
        dry = vocal[:, -n:]  # the newest bars of the take
        audio = model.accompany_loop(dry, settings, n, progress=progress)
        bands = harmonic_bands(audio)
    t1 = time.monotonic()
    notes = tuple(notes_from_latent(bands, duration_s=dry.shape[1] / SAMPLE_RATE))
    tempo = tempo or _tempo_of(vocal)
    program = spec.instrument.program if spec.instrument is not None else spec.program
    midi = midi_file(notes, tempo, grid=parse_grid(spec.quantize), program=program)
    rate, periodic = spec.sample_rate, spec.loop is not None
    samples = spec.loop.samples(tempo, rate) if periodic else int(
        round(dry.shape[1] * rate / SAMPLE_RATE))
    if not spec.audio:
        audio = None
    elif spec.instrument is not None:  # the notes, played: replaces the codec's decode
        audio = render_notes(notes, spec.instrument, samples, rate, loop=periodic)
    elif rate != SAMPLE_RATE:
        audio = convert_rate(audio, rate, samples, periodic=periodic)
    if audio is not None and rate != SAMPLE_RATE:
        dry = convert_rate(dry, rate, audio.shape[1], periodic=periodic)
    if audio is not None and chain is not None:
        audio = (chain.process(audio, vocal=dry, sample_rate=rate) if spec.loop is None
                 else chain.process_loop(audio, vocal=dry, sample_rate=rate))
    if audio is not None:
        audio, samples = np.ascontiguousarray(audio, dtype=np.float32), audio.shape[1]
    t2 = time.monotonic()
    sidecar = Sidecar(
        audio=None, source=spec.source, start_s=round(spec.start_s, 6), samples=samples,
        sample_rate=rate, settings=_settings_json(settings),
        post=chain.describe() if chain is not None else None,
        loop_bars=spec.loop.bars if spec.loop is not None else 0,
        musical_time={"bpm": tempo.bpm, "beats_per_bar": tempo.beats_per_bar,
                      "beat_unit": tempo.beat_unit, "source": tempo.source},
        model=model_summary(model.info()),
        timings={"model_s": round(t1 - t0, 4), "post_s": round(t2 - t1, 4)},
        notes=len(notes), quantize=spec.quantize,
        instrument=None if spec.instrument is None else spec.instrument.describe(),
    )
    return RenderedTake(audio, midi, notes, sidecar)


def harmonic_bands(audio: np.ndarray) -> np.ndarray:
    """The semitone-band latent of any audio (how notes are found in a non-harmonic result)."""
    return _analyser().encode(audio).numpy()


@functools.cache
def _analyser() -> Any:
    from samuel_live.codec.harmonic import HarmonicCodec

    return HarmonicCodec()


def _tempo_of(vocal: np.ndarray) -> MusicalTime:
    """The take's own tempo for its MIDI file; 120 bpm in 4/4 when it has none to find."""
    try:
        return resolve_time(None, None, None, vocal)
    except SamuelError:
        return MusicalTime(120.0, 4, "default", 4)


def convert_rate(audio: np.ndarray, rate: int, length: int | None = None, *,
                 periodic: bool = False) -> np.ndarray:
    """44.1 kHz audio at ``rate``, exactly ``length`` samples long (default: the duration in
    whole samples). A loop is resampled as one period (FFT), so its seam stays seamless."""
    from scipy.signal import resample, resample_poly

    n = audio.shape[1]
    length = length if length is not None else int(round(n * rate / SAMPLE_RATE))
    if periodic:
        out = resample(audio.astype(np.float64), length, axis=1)
    else:
        out = resample_poly(audio, rate, SAMPLE_RATE, axis=1)
        out = out[:, :length] if out.shape[1] >= length else np.pad(
            out, ((0, 0), (0, length - out.shape[1])))
    return np.ascontiguousarray(out, dtype=np.float32)


def model_summary(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info.get(k) for k in ("name", "hash", "codec", "params", "device", "precision")}


def _settings_json(settings: GenerateSettings) -> dict[str, Any]:
    return {"sampler": settings.sampler, "steps": settings.steps, "cfg": settings.cfg,
            "seed": settings.seed, "key": settings.key}
