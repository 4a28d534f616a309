"""Bach-chorale starter corpus: music21's chorales rendered with FluidSynth.

The soprano alone becomes the "vocal"; alto, tenor and bass together the "accompaniment". Each
rendered example draws its own instruments, tempo, transposition and velocities from a seed made
of the chorale name and the variant number, so reruns reproduce it exactly. A fixed 10% of the
chorales (see ``chorales_holdout.json``) is never rendered for training.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from samuel_live.atomic import atomic_write_bytes
from samuel_live.errors import RenderError
from samuel_live.train.chorale_midi import Note, render_midi, write_midi

log = logging.getLogger(__name__)

HOLDOUT_JSON = Path(__file__).with_name("chorales_holdout.json")
SATB = ("Soprano", "Alto", "Tenor", "Bass")

# General MIDI programs (0-based). Varied on purpose so the model hears more than one timbre.
VOCAL_PROGRAMS = (53, 52, 54, 73, 71, 68, 40, 56, 65, 74)  # oohs, aahs, synth voice, flute,
# clarinet, oboe, violin, trumpet, alto sax, recorder
ACCOMP_PROGRAMS = (0, 4, 19, 24, 48, 89, 16, 46, 49)  # piano, e-piano, church organ, nylon
# guitar, strings, warm pad, drawbar organ, harp, slow strings
BPM_RANGE = (60.0, 110.0)
TRANSPOSE_RANGE = (-5, 6)
HOLDOUT_EVERY = 10
SESSION_GAP_S = 1.0


@dataclass(frozen=True)
class Chorale:
    """A chorale's notes: the soprano line and the three lower voices."""

    name: str
    soprano: tuple[Note, ...]
    lower: tuple[tuple[Note, ...], ...]


@dataclass(frozen=True)
class RenderSpec:
    """How one example of one chorale is rendered (all drawn from the example's seed)."""

    name: str
    variant: int
    vocal_program: int
    accomp_program: int
    bpm: float
    transpose: int
    velocity_base: int
    seed: int

    @property
    def stem(self) -> str:
        """File stem shared by the example's vocal and accompaniment renders."""
        return f"{chorale_id(self.name)}_v{self.variant}"


def chorale_id(name: str) -> str:
    """'bach/bwv248.12-2' -> 'bwv248.12-2' (the catalogue number used in file names)."""
    return name.rsplit("/", 1)[-1]


def catalogue_key(name: str) -> tuple[int, ...]:
    """Numeric sort key from a BWV number: 'bwv248.12-2' -> (248, 12, 2)."""
    return tuple(int(x) for x in re.findall(r"\d+", chorale_id(name)))


def corpus_names() -> list[str]:
    """All chorale names in music21's bundled corpus, sorted by catalogue number."""
    from music21 import corpus

    names = [str(n) for n in corpus.chorales.Iterator(returnType="filename")]
    return sorted(set(names), key=lambda n: (catalogue_key(n), n))


def load_chorale(name: str) -> Chorale | None:
    """Parse one chorale; None unless its parts are exactly Soprano, Alto, Tenor, Bass."""
    from music21 import corpus

    score = corpus.parse(name)
    if tuple(p.partName for p in score.parts) != SATB:
        return None
    voices = [_part_notes(part) for part in score.parts]
    return Chorale(name=name, soprano=voices[0], lower=tuple(voices[1:]))


def _part_notes(part: object) -> tuple[Note, ...]:
    notes = []
    for n in part.stripTies().flatten().notes:  # type: ignore[attr-defined]
        length = float(n.quarterLength)
        if length <= 0:  # grace notes carry no duration of their own
            continue
        for p in n.pitches:
            notes.append(Note(float(n.offset), length, int(p.midi)))
    return tuple(sorted(notes, key=lambda x: (x.start, x.pitch)))


def holdout_rule(satb_names: Sequence[str]) -> list[str]:
    """Every 10th SATB chorale in catalogue order (positions 9, 19, 29, ...) is held out."""
    ordered = sorted(satb_names, key=lambda n: (catalogue_key(n), n))
    return [n for i, n in enumerate(ordered) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]


def load_holdout() -> dict:
    """The committed hold-out list: {'rule', 'satb', 'holdout', 'excluded_duplicates'}."""
    if not HOLDOUT_JSON.exists():
        raise RenderError(
            f"{HOLDOUT_JSON} is missing; rebuild it with "
            "`python -m samuel_live.train.chorales --write-holdout`"
        )
    return json.loads(HOLDOUT_JSON.read_text())


def fingerprint(chorale: Chorale) -> str:
    """Transposition-free digest of soprano and bass, to catch the same setting twice."""
    voices = (chorale.soprano, chorale.lower[-1])
    ref = chorale.soprano[0].pitch if chorale.soprano else 0
    text = "|".join(
        ";".join(f"{n.start:g},{n.length:g},{n.pitch - ref}" for n in v) for v in voices
    )
    return f"{zlib.crc32(text.encode()):08x}"


def build_holdout(chorales: Iterable[Chorale]) -> dict:
    """Apply the hold-out rule and list training chorales that duplicate a held-out one."""
    chorales = list(chorales)
    holdout = holdout_rule([c.name for c in chorales])
    held = set(holdout)
    held_prints = {fingerprint(c) for c in chorales if c.name in held}
    duplicates = [c.name for c in chorales if c.name not in held and fingerprint(c) in held_prints]
    return {
        "rule": (
            "SATB chorales of music21's corpus sorted by BWV number (numeric parts); every "
            f"{HOLDOUT_EVERY}th from the {HOLDOUT_EVERY}th is held out; training chorales with "
            "the same soprano+bass as a held-out one (transposition-free) are excluded too"
        ),
        "satb": sorted((c.name for c in chorales), key=lambda n: (catalogue_key(n), n)),
        "holdout": holdout,
        "excluded_duplicates": sorted(duplicates, key=lambda n: (catalogue_key(n), n)),
    }


def make_spec(name: str, variant: int) -> RenderSpec:
    """Deterministic augmentation for (chorale, variant); variant 0 is the first pass."""
    seed = zlib.crc32(f"{name}#{variant}".encode())
    rng = np.random.default_rng(seed)
    return RenderSpec(
        name=name,
        variant=variant,
        vocal_program=int(rng.choice(VOCAL_PROGRAMS)),
        accomp_program=int(rng.choice(ACCOMP_PROGRAMS)),
        bpm=round(float(rng.uniform(*BPM_RANGE)), 1),
        transpose=int(rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1)),
        velocity_base=int(rng.integers(70, 101)),
        seed=seed,
    )


def example_paths(folder: Path, spec: RenderSpec, ext: str = "flac") -> tuple[Path, Path]:
    """(vocal, accompaniment) render paths of one example."""
    return folder / f"{spec.stem}_vocal.{ext}", folder / f"{spec.stem}_accomp.{ext}"


def render_example(chorale: Chorale, spec: RenderSpec, vocal: Path, accomp: Path) -> None:
    """Render both halves of one example; an existing output is kept (resumable)."""
    jobs = (
        (vocal, [chorale.soprano], spec.vocal_program, spec.velocity_base + 8),
        (accomp, list(chorale.lower), spec.accomp_program, spec.velocity_base),
    )
    with tempfile.TemporaryDirectory(prefix="samuel-chorale-") as tmp:
        for i, (out, voices, program, velocity) in enumerate(jobs):
            if out.exists():
                continue
            midi = Path(tmp) / f"{i}.mid"
            write_midi(
                voices,
                midi,
                program=program,
                bpm=spec.bpm,
                transpose=spec.transpose,
                velocity_base=velocity,
                seed=spec.seed + i,
            )
            render_midi(midi, out)


@dataclass(frozen=True)
class RenderJob:
    """One unit of parallel work: a chorale name, its variant and where the pair goes."""

    name: str
    variant: int
    vocal: Path
    accomp: Path


def _run_job(job: RenderJob) -> tuple[str, str | None]:
    try:
        chorale = load_chorale(job.name)
        if chorale is None:
            return job.name, "not exactly Soprano/Alto/Tenor/Bass"
        render_example(chorale, make_spec(job.name, job.variant), job.vocal, job.accomp)
        return job.name, None
    except Exception as exc:  # reported and skipped by the caller, never silently
        return job.name, f"{type(exc).__name__}: {exc}"


def render_jobs(jobs: Sequence[RenderJob], workers: int = 2) -> dict[str, str]:
    """Render jobs in parallel (``nice``d workers); returns {name: reason} of failures."""
    from tqdm import tqdm

    todo = [j for j in jobs if not (j.vocal.exists() and j.accomp.exists())]
    failures: dict[str, str] = {}
    if not todo:
        return failures
    with Pool(workers, initializer=os.nice, initargs=(10,)) as pool:
        for name, err in tqdm(
            pool.imap_unordered(_run_job, todo),
            total=len(todo),
            desc="rendering chorales",
            unit="ex",
        ):
            if err is not None:
                log.warning("skipped %s: %s", name, err)
                failures[name] = err
    return failures


def training_names(holdout: dict) -> list[str]:
    """SATB chorales that training may see (neither held out nor a duplicate of one)."""
    banned = set(holdout["holdout"]) | set(holdout["excluded_duplicates"])
    return [n for n in holdout["satb"] if n not in banned]


def render_corpus(root: Path, *, variants: int = 1, workers: int = 2) -> dict[str, str]:
    """Render training examples under root/audio and held-out pairs under root/test.

    Held-out chorales get one pair each, ``test/{bwv}_vocal.wav`` and ``test/{bwv}_accomp.wav``
    (variant 0's instruments, tempo and key). Returns {example: reason} of failures.
    """
    holdout = load_holdout()
    audio, test = root / "audio", root / "test"
    audio.mkdir(parents=True, exist_ok=True)
    test.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in holdout["holdout"]:
        bwv = chorale_id(name)
        jobs.append(RenderJob(name, 0, test / f"{bwv}_vocal.wav", test / f"{bwv}_accomp.wav"))
    for variant in range(variants):
        for name in training_names(holdout):
            vocal, accomp = example_paths(audio, make_spec(name, variant))
            jobs.append(RenderJob(name, variant, vocal, accomp))
    failures = render_jobs(jobs, workers=workers)
    specs = [asdict(make_spec(j.name, j.variant)) for j in jobs]
    _write_json(root / "render_specs.json", {"examples": specs, "failures": failures})
    return failures


@dataclass(frozen=True)
class Session:
    """Consecutive training examples concatenated (with gaps) into one long pair of stems."""

    name: str
    vocal_files: tuple[Path, ...]
    accomp_files: tuple[Path, ...]


def plan_sessions(root: Path, *, variants: int = 1, per_session: int = 8) -> list[Session]:
    """Group training examples, in catalogue order, into sessions of ``per_session``.

    Groups are fixed by position in the training list, so a session's name always means the
    same chorales; an example whose render is missing is left out of its session.
    """
    names = training_names(load_holdout())
    sessions = []
    for variant in range(variants):
        for k in range(0, len(names), per_session):
            pairs = [
                example_paths(root / "audio", make_spec(n, variant))
                for n in names[k : k + per_session]
            ]
            pairs = [p for p in pairs if p[0].exists() and p[1].exists()]
            if pairs:
                sessions.append(
                    Session(
                        name=f"chorales_v{variant}_s{k // per_session:03d}",
                        vocal_files=tuple(p[0] for p in pairs),
                        accomp_files=tuple(p[1] for p in pairs),
                    )
                )
    return sessions


def concatenate_pairs(
    vocals: Sequence[np.ndarray], accomps: Sequence[np.ndarray], gap_s: float = SESSION_GAP_S
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (2, n) pairs with silent gaps; each pair is padded to its longer half first,
    so vocal and accompaniment stay sample-aligned."""
    gap = np.zeros((2, round(gap_s * 44100)), dtype=np.float32)
    v_parts, a_parts = [], []
    for v, a in zip(vocals, accomps, strict=True):
        n = max(v.shape[1], a.shape[1])
        v_parts += [_pad(v, n), gap]
        a_parts += [_pad(a, n), gap]
    return np.concatenate(v_parts[:-1], axis=1), np.concatenate(a_parts[:-1], axis=1)


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x.astype(np.float32, copy=False), ((0, 0), (0, n - x.shape[1])))


def _write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, default=str).encode("utf-8"))


def _parse_all(names: Sequence[str], workers: int) -> list[Chorale]:
    with Pool(workers) as pool:
        return [c for c in pool.map(load_chorale, names, chunksize=8) if c is not None]


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m samuel_live.train.chorales --write-holdout | --render ROOT [--variants N]`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-holdout", action="store_true")
    parser.add_argument("--render", type=Path, metavar="ROOT")
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.write_holdout:
        _write_json(HOLDOUT_JSON, build_holdout(_parse_all(corpus_names(), args.workers)))
    if args.render:
        failures = render_corpus(args.render, variants=args.variants, workers=args.workers)
        print(f"rendered; {len(failures)} failures")


if __name__ == "__main__":
    main()
