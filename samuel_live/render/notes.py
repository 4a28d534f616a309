"""Notes from a semitone-band latent: the accompaniment as an editable piano roll.

The ``harmonic`` codec's latent is already a piano roll (64 semitone bands, MIDI 36-99, one frame
per 2048 samples), so notes come straight from it; any other result is first analysed by that
codec's encoder. Per band: hysteresis on the level (relative to the clip's loudest band),
boundaries refined to the half-amplitude crossing (sub-frame), repeated notes split at dips,
overtones of a louder band below dropped, a minimum length, a polyphony cap, and velocity from
the band's peak level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samuel_live import HOP, SAMPLE_RATE
from samuel_live.codec.harmonic import FLOOR, LOWEST_MIDI, band_frequencies
from samuel_live.errors import SamuelError

OVERTONES = (12, 19, 24, 28, 31)  # semitones from a fundamental to its harmonics 2..6
SMEAR_FRACTION = 0.55  # a real note lasts at least about half its band's analysis window


def analysis_seconds() -> np.ndarray:
    """Length of each band's analysis window in the harmonic codec (C2: about 0.5 s): even a
    click shows in a band for about half of it, so a shorter "note" is another's smear."""
    periods = 2.0 / (2.0 ** (1.0 / 12.0) - 1.0)
    return np.maximum(periods / band_frequencies(), 2 * HOP / SAMPLE_RATE)


@dataclass(frozen=True)
class NoteOptions:
    """How notes are found. Levels in dB below the clip's loudest band."""

    on_db: float = 30.0  # a note sounds once its band is within this of the loudest band
    hysteresis_db: float = 6.0  # ... and keeps sounding until it falls this much further
    split_db: float = 6.0  # a dip this deep between two peaks starts a new note
    overtone_db: float = 1.0  # this much quieter than a band an overtone below: its partial
    min_seconds: float = 0.14  # shorter notes are dropped (three frames): onset smear
    max_polyphony: int = 6  # at most this many notes at once; the quietest go first
    masked_db: float = 15.0  # this far below the loudest note sounding with it: a thump, dropped
    velocity_range_db: float = 40.0  # velocity 127 at the reference level, 1 this far below
    context_s: float = 1.0  # thresholds follow the loudest band within this many seconds
    reference_percentile: float = 99.0  # the clip's "loudest" level: this percentile of its
    # frames' loudest bands, so a few spikes (a generated latent has them) do not mute the rest

    def __post_init__(self) -> None:
        if not 1 <= self.max_polyphony <= 64:
            raise SamuelError(f"max polyphony must be 1..64, got {self.max_polyphony}")
        if self.on_db <= 0 or self.hysteresis_db < 0 or self.min_seconds < 0:
            raise SamuelError("note thresholds must be positive")


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number
    start_s: float
    end_s: float
    velocity: int  # 1..127


def notes_from_latent(latent: np.ndarray, options: NoteOptions = NoteOptions(), *,
                      hop: int = HOP, sample_rate: int = SAMPLE_RATE,
                      duration_s: float | None = None) -> list[Note]:
    """Notes of a (64, frames) band latent (log magnitudes), sorted by start then pitch."""
    z = np.asarray(latent, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != 64:
        raise SamuelError(f"notes need a (64, frames) band latent, got {z.shape}")
    amp = np.maximum(np.exp(z) - FLOOR, 0.0)
    level = 20 * np.log10(amp + 1e-9)
    top = _reference_level(level, options.reference_percentile)
    local = _local_reference(level, top, max(1, round(options.context_s * sample_rate / hop)))
    if top < -80.0:  # silence
        return []
    high = local - options.on_db  # per frame: the music around it sets the bar
    low = high - options.hysteresis_db
    candidate = level >= low[None, :]
    frame_s = hop / sample_rate
    shortest = SMEAR_FRACTION * analysis_seconds()
    notes: list[Note] = []
    peaks: list[float] = []
    for band in range(64):
        least = max(options.min_seconds, shortest[band]) / frame_s - 1.0  # frames
        for a, b in _runs(candidate[band]):
            if b - a < least or not (level[band, a:b] >= high[a:b]).any():
                continue  # too short to hold a note, or never loud enough
            for s, e in _split(level[band], a, b, options.split_db):
                if _is_overtone(level, band, s, e, options.overtone_db):
                    continue
                peak = float(level[band, s:e].max())
                start, end = _crossings(amp[band], s, e, 10 ** ((peak - 6.0) / 20))
                if (end - start) * frame_s < max(options.min_seconds, shortest[band]):
                    continue
                vel = 1 + (126 * (1 + (peak - top) / options.velocity_range_db))
                notes.append(Note(LOWEST_MIDI + band, _time(start, frame_s),
                                  _time(end, frame_s), int(np.clip(round(vel), 1, 127))))
                peaks.append(peak)
    notes = _cap_polyphony(_unmasked(notes, peaks, options.masked_db), options.max_polyphony)
    if duration_s is not None:
        notes = [Note(n.pitch, n.start_s, min(n.end_s, duration_s), n.velocity)
                 for n in notes if n.start_s < duration_s]
    return sorted(notes, key=lambda n: (n.start_s, n.pitch))


def _reference_level(level: np.ndarray, percentile: float) -> float:
    """The level the thresholds hang from: a high percentile of each frame's loudest band."""
    if not level.size:
        return -180.0
    return float(np.percentile(level.max(axis=0), percentile))


def _local_reference(level: np.ndarray, top: float, half: int) -> np.ndarray:
    """Per frame: the loudest band within ``half`` frames either side, at most ``top``."""
    from scipy.ndimage import maximum_filter1d

    return np.minimum(maximum_filter1d(level.max(axis=0), size=2 * half + 1, mode="nearest"),
                      top)


def _time(frame: float, frame_s: float) -> float:
    """Seconds of a (fractional) frame position; frame k is centred at (k + 1/2) hops."""
    return max(0.0, (frame + 0.5) * frame_s)


def _is_overtone(level: np.ndarray, band: int, s: int, e: int, margin_db: float) -> bool:
    """Whether frames [s, e) of ``band`` are mostly the overtone of a clearly louder band
    below (harmonics 2-6), judged over the whole note so its onset is not cut up."""
    own = level[band, s:e]
    for step in OVERTONES:
        if band - step >= 0 and np.mean(own < level[band - step, s:e] - margin_db) > 0.5:
            return True
    return False


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _split(level: np.ndarray, a: int, b: int, dip_db: float) -> list[tuple[int, int]]:
    """Split [a, b) at every frame that dips ``dip_db`` below the peaks on both sides."""
    seg = level[a:b]
    k = np.arange(1, len(seg) - 1)
    dips = k[(seg[k] <= seg[k - 1]) & (seg[k] < seg[k + 1])] if len(seg) > 2 else k
    cuts = [a]
    for d in dips:
        left, right = level[cuts[-1]:a + d].max(), seg[d + 1:].max()
        if min(left, right) - seg[d] >= dip_db:
            cuts.append(a + int(d))
    cuts.append(b)
    return [(s, e) for s, e in zip(cuts[:-1], cuts[1:], strict=True) if e > s]


def _crossings(amp: np.ndarray, s: int, e: int, threshold: float) -> tuple[float, float]:
    """Fractional frames where the band first rises to, and last falls from, ``threshold``
    within [s, e) (the half-amplitude points of a held note), interpolated linearly."""
    above = np.flatnonzero(amp[s:e] >= threshold) + s
    first, last = int(above[0]), int(above[-1])
    start = float(first)
    if first > 0 and amp[first] > amp[first - 1]:
        start = first - (amp[first] - threshold) / (amp[first] - amp[first - 1])
    end = float(last + 1)
    if last + 1 < len(amp) and amp[last] > amp[last + 1]:
        end = last + (amp[last] - threshold) / (amp[last] - amp[last + 1])
    return start, end


def _unmasked(notes: list[Note], peaks: list[float], masked_db: float) -> list[Note]:
    """Drop notes far quieter than the loudest note sounding with them (attack thumps, bow
    noise and other non-notes that show in the bands)."""
    if not notes:
        return notes
    start = np.array([n.start_s for n in notes])
    end = np.array([n.end_s for n in notes])
    peak = np.array(peaks)
    overlap = (start[None, :] < end[:, None]) & (start[:, None] < end[None, :])
    loudest = np.where(overlap, peak[None, :], -np.inf).max(axis=1)
    return [n for n, keep in zip(notes, peak >= loudest - masked_db, strict=True) if keep]


def _cap_polyphony(notes: list[Note], cap: int) -> list[Note]:
    """Keep the loudest notes so that no more than ``cap`` sound at once."""
    kept: list[Note] = []
    for note in sorted(notes, key=lambda n: -n.velocity):
        overlapping = [k for k in kept if k.start_s < note.end_s and note.start_s < k.end_s]
        points = [note.start_s, *(k.start_s for k in overlapping if k.start_s > note.start_s)]
        if all(sum(k.start_s <= t < k.end_s for k in overlapping) < cap for t in points):
            kept.append(note)
    return kept

