"""A wider "comping" corpus: music21's multi-part music rendered as (vocal, accompaniment) stems.

Two kinds of pairs, both with the piece's top line as the vocal on a voice-like patch:

- ``multipart``: all other parts as the accompaniment (as in the chorale recipe);
- ``textures``: an accompaniment generated from the piece's harmony (``textures.py``): block
  chords, arpeggios, Alberti bass, bass line with drums, or strummed guitar.

Held-out material is never used: music21's ``essenFolksong`` and ``monteverdi`` (evaluation),
``ryansMammoth`` (the styles tuning set), the held-out chorales of ``chorales_holdout.json``
and their duplicates, and any piece whose top line is a held-out chorale's soprano. Rendering
uses FluidR3_GM only. Pieces are concatenated (1 s gaps) and cut into sessions of exactly three
47.55 s windows, written as ``OUT/<session>/vocals.wav`` and ``accompaniment.wav`` for
``samuel-live prepare --kind stems``. ``OUT/comping.json`` records the rules, pieces and specs.

``python -m samuel_live.train.comping OUT [--hours H] [--seed S] [--workers N]``
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from samuel_live.errors import SamuelError
from samuel_live.train import chorales
from samuel_live.train.chorale_midi import SOUNDFONT, render_midi, write_midi
from samuel_live.train.comping_pieces import SessionWriter, load_piece, melody_print, write_parts
from samuel_live.train.textures import harmony, texture

log = logging.getLogger(__name__)

RESERVED = {
    "essenFolksong": "reserved for held-out evaluation",
    "monteverdi": "reserved for held-out evaluation",
    "ryansMammoth": "the 'styles' tuning set",
}
NOT_SCORES = {  # single melodic lines, analyses or test files: no parts to accompany with
    "airdsAirs", "oneills1850", "miscFolk", "nottingham-dataset", "leadSheet", "demos",
    "theoryExercises", "bach/choraleAnalyses",
}  # fmt: skip
EARLY = ("trecento", "josquin", "ciconia", "luca", "lusitano")
SUFFIX_RANK = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
KINDS_SHARE = {"textures": 2 / 3, "multipart": 1 / 3}
GROUP_SHARE = {
    "textures": {"chorales": 0.3, "palestrina": 0.25, "classical": 0.25, "bach": 0.1, "early": 0.1},
    "multipart": {"palestrina": 0.35, "classical": 0.35, "bach": 0.15, "early": 0.15},
}
TEXTURE_WEIGHTS = {
    "block": 0.22,
    "arpeggio": 0.22,
    "alberti": 0.18,
    "bassdrums": 0.18,
    "strum": 0.2,
}
PROGRAMS = {  # General MIDI programs (0-based) per texture role
    "block": (0, 1, 4, 5, 16, 19, 48, 49, 89, 88),
    "arpeggio": (0, 4, 6, 24, 46),
    "alberti": (0, 1, 4, 6),
    "strum": (24, 25, 26, 27),
    "bass": (32, 33, 34, 35),
    "pad": (48, 89, 16),
}
BEAT_BPM = (60.0, 140.0)
QUARTER_BPM = (50.0, 180.0)
MAX_EXCERPT_S = 200.0


class ReservedPieceError(SamuelError):
    """A piece reserved for evaluation or tuning was asked for as training material."""


def excluded_reason(name: str, holdout: dict) -> str | None:
    """Why corpus file ``name`` ('composer/.../file.ext') may not be used, or None."""
    for prefix, why in (*RESERVED.items(), *((p, "not a multi-part score") for p in NOT_SCORES)):
        if name == prefix or name.startswith(prefix + "/"):
            return f"{prefix}: {why}"
    if name.startswith("bach/"):
        stem = chorales.chorale_id(name).rsplit(".", 1)[0] if _has_suffix(name) else name
        cid = chorales.chorale_id(stem)
        banned = {
            chorales.chorale_id(n) for n in (*holdout["holdout"], *holdout["excluded_duplicates"])
        }
        if cid in banned or cid.split("-")[0] in {b.split("-")[0] for b in banned}:
            return f"{cid}: a held-out chorale (chorales_holdout.json) or a version of one"
    return None


def check_allowed(name: str, holdout: dict) -> None:
    """Raise ``ReservedPieceError`` when ``name`` is reserved or held out."""
    why = excluded_reason(name, holdout)
    if why is not None:
        raise ReservedPieceError(f"{name} may not be used for training ({why}); pick another piece")


def _has_suffix(name: str) -> bool:
    return name.lower().endswith(SUFFIX_RANK)


def candidates(names: Sequence[str], holdout: dict) -> dict[str, list[str]]:
    """Allowed corpus files by group ('chorales', 'palestrina', 'bach', 'classical', 'early'),
    one file per piece (MusicXML preferred over Humdrum or ABC), sorted."""
    best: dict[str, str] = {}
    for name in names:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in SUFFIX_RANK or excluded_reason(name, holdout) is not None:
            continue
        old = best.get(stem)
        if old is None or SUFFIX_RANK.index(suffix.lower()) < SUFFIX_RANK.index(
            os.path.splitext(old)[1].lower()
        ):
            best[stem] = name
    satb = {chorales.chorale_id(n) for n in chorales.training_names(holdout)}
    groups: dict[str, list[str]] = {
        g: [] for g in ("chorales", "palestrina", "bach", "classical", "early")
    }
    for stem, name in sorted(best.items()):
        top = stem.split("/", 1)[0]
        if top == "bach":
            groups["chorales" if chorales.chorale_id(stem) in satb else "bach"].append(name)
        elif top == "palestrina":
            groups["palestrina"].append(name)
        else:
            groups["early" if top in EARLY else "classical"].append(name)
    return groups


def corpus_files() -> list[str]:
    """Every file of music21's core corpus as 'composer/.../file.ext'."""
    from music21 import corpus

    return sorted(str(p).split("/corpus/", 1)[1] for p in corpus.getCorePaths())


@dataclass(frozen=True)
class Spec:
    """How one piece is rendered (drawn from the job's seed)."""

    kind: str
    name: str
    variant: int
    seed: int
    vocal_program: int
    programs: dict[str, int]
    texture: str | None
    per: str
    beat_bpm: float
    transpose: int
    velocity_base: int
    excerpt: tuple[float, float] = (0.0, 0.0)
    quarter_bpm: float = 0.0
    seconds: float = 0.0


def make_spec(kind: str, name: str, variant: int, seed: int) -> Spec:
    """Deterministic draw of patches, texture, tempo and key for (kind, piece, variant, seed)."""
    job_seed = zlib.crc32(f"{seed}:{kind}:{name}#{variant}".encode())
    rng = np.random.default_rng(job_seed)
    vocal = int(rng.choice(chorales.VOCAL_PROGRAMS))
    tex = None
    if kind == "textures":
        names = list(TEXTURE_WEIGHTS)
        tex = str(
            rng.choice(
                names, p=np.array(list(TEXTURE_WEIGHTS.values())) / sum(TEXTURE_WEIGHTS.values())
            )
        )
        roles = {"chords": tex if tex != "bassdrums" else "pad", "bass": "bass", "pad": "pad"}
        programs = {role: int(rng.choice(PROGRAMS[src])) for role, src in roles.items()}
    else:
        programs = {"parts": int(rng.choice(chorales.ACCOMP_PROGRAMS))}
    per = "beat" if name.startswith("bach/") or rng.random() < 0.5 else "halfbar"
    return Spec(
        kind=kind,
        name=name,
        variant=variant,
        seed=job_seed,
        vocal_program=vocal,
        programs=programs,
        texture=tex,
        per=per,
        beat_bpm=round(float(rng.uniform(*BEAT_BPM)), 1),
        transpose=int(rng.integers(chorales.TRANSPOSE_RANGE[0], chorales.TRANSPOSE_RANGE[1] + 1)),
        velocity_base=int(rng.integers(70, 101)),
    )


@dataclass(frozen=True)
class Job:
    """One piece to render: its kind, group, spec and where its two renders go."""

    kind: str
    group: str
    spec: Spec
    vocal: Path
    accomp: Path
    banned_prints: frozenset[str] = field(default_factory=frozenset)


def run_job(job: Job) -> tuple[Spec | None, str | None]:
    """Parse, excerpt, generate and render one piece: (final spec, None) or (None, reason)."""
    from samuel_live.train.comping_pieces import PieceError, excerpt

    try:
        piece = load_piece(job.spec.name)
        if melody_print(piece.melody) in job.banned_prints:
            return None, "its top line is a held-out chorale's soprano"
        spec = job.spec
        beat = (
            piece.bars[0].beat
            if piece.bars[0].length >= piece.bars[0].nominal
            else piece.bars[-1].beat
        )
        # half-note beats (alla breve, Renaissance 4/2) get slower pulses than quarter beats
        qbpm = round(
            float(np.clip(spec.beat_bpm * beat / (1.6 if beat >= 2 else 1), *QUARTER_BPM)), 1
        )
        max_q = MAX_EXCERPT_S * qbpm / 60.0
        rng = np.random.default_rng(spec.seed + 1)
        start_bar = 0
        if piece.end > max_q:
            fits = [i for i, b in enumerate(piece.bars) if piece.end - b.start >= max_q]
            start_bar = int(rng.choice(fits)) if fits else 0
        t0 = piece.bars[start_bar].start
        piece = excerpt(piece, start_bar, max_q)
        if not piece.melody or not piece.lower:
            return None, "the excerpt has no top line or no lower parts"
        with tempfile.TemporaryDirectory(prefix="samuel-comping-") as tmp:
            vocal_mid, accomp_mid = Path(tmp) / "v.mid", Path(tmp) / "a.mid"
            vel, tr = spec.velocity_base, spec.transpose
            write_midi(
                [piece.melody], vocal_mid, program=spec.vocal_program, bpm=qbpm,
                transpose=tr, velocity_base=vel + 8, seed=spec.seed,
            )  # fmt: skip
            if spec.kind == "multipart":
                lower = list(piece.lower[:8]) + (
                    [sum(piece.lower[8:], ())] if len(piece.lower) > 8 else []
                )
                write_midi(
                    lower, accomp_mid, program=spec.programs["parts"], bpm=qbpm,
                    transpose=tr, velocity_base=vel, seed=spec.seed + 1,
                )  # fmt: skip
            else:
                chords = harmony(piece.melody, piece.lower, piece.bars, spec.per)
                if not chords:
                    return None, "no harmony found under the top line"
                parts = texture(str(spec.texture), chords, rng)
                write_parts(parts, spec.programs, accomp_mid, bpm=qbpm, transpose=spec.transpose)
            render_midi(vocal_mid, job.vocal)
            render_midi(accomp_mid, job.accomp)
        seconds = piece.end * 60.0 / qbpm
        done = Spec(
            **{
                **asdict(spec),
                "excerpt": (t0, t0 + piece.end),
                "quarter_bpm": qbpm,
                "seconds": round(seconds, 2),
            }
        )
        return done, None
    except (PieceError, SamuelError) as exc:
        return None, str(exc)
    except Exception as exc:  # a corpus file music21 cannot read: reported and skipped
        return None, f"{type(exc).__name__}: {exc}"


def held_out_prints(holdout: dict) -> frozenset[str]:
    """Melody digests of the held-out chorales (and their excluded duplicates)."""
    prints = set()
    for name in (*holdout["holdout"], *holdout["excluded_duplicates"]):
        chorale = chorales.load_chorale(name)
        if chorale is not None:
            prints.add(melody_print(chorale.soprano))
    return frozenset(prints)


def plan(groups: dict[str, list[str]], seed: int) -> dict[tuple[str, str], list[str]]:
    """Each (kind, group)'s pieces in a seeded order (chorales feed only the textures)."""
    queues = {}
    for kind, shares in GROUP_SHARE.items():
        for group in shares:
            names = list(groups.get(group, []))
            rng = np.random.default_rng(zlib.crc32(f"{seed}:{kind}:{group}".encode()))
            queues[(kind, group)] = [names[i] for i in rng.permutation(len(names))]
    return queues


def build(out: Path, *, hours: float = 5.0, seed: int = 0, workers: int = 2) -> dict:
    """Render about ``hours`` of pairs into ``out`` (see the module docstring); returns the
    record also written to ``out/comping.json``."""
    from samuel_live.audio.io import read_audio

    if not SOUNDFONT.exists():
        raise SamuelError(f"{SOUNDFONT} is missing: `apt-get install fluid-soundfont-gm`")
    began = time.time()
    holdout = chorales.load_holdout()
    groups = candidates(corpus_files(), holdout)
    banned = held_out_prints(holdout)
    queues = plan(groups, seed)
    quota = {k: hours * 3600 * KINDS_SHARE[k[0]] * GROUP_SHARE[k[0]][k[1]] for k in queues}
    got = dict.fromkeys(queues, 0.0)
    cursor = dict.fromkeys(queues, 0)
    pieces_dir = out / ".pieces"
    pieces_dir.mkdir(parents=True, exist_ok=True)
    writer = SessionWriter(out)
    used: list[dict] = []
    skipped: dict[str, str] = {}
    with Pool(workers, initializer=os.nice, initargs=(10,)) as pool:
        while True:
            batch = []
            for key, names in queues.items():
                left = quota[key] - got[key]
                if left <= 0 or not names or cursor[key] >= 3 * len(names):
                    continue
                # batch size never changes what is kept: results are taken in queue order
                for _ in range(int(min(4, max(workers, left // 120)))):
                    if cursor[key] >= 3 * len(names):
                        break
                    name, variant = names[cursor[key] % len(names)], cursor[key] // len(names)
                    cursor[key] += 1
                    spec = make_spec(key[0], name, variant, seed)
                    stem = f"{key[0]}_{len(batch):02d}_{spec.seed:08x}"
                    batch.append(Job(key[0], key[1], spec, pieces_dir / f"{stem}_v.wav",
                                     pieces_dir / f"{stem}_a.wav", banned))  # fmt: skip
            if not batch:
                break
            for job, (spec, err) in zip(batch, pool.map(run_job, batch, chunksize=1), strict=True):
                key = (job.kind, job.group)
                if spec is None:
                    skipped[f"{job.kind}:{job.spec.name}#{job.spec.variant}"] = str(err)
                elif got[key] < quota[key]:
                    label = f"{job.kind}:{spec.name}#{spec.variant}"
                    writer.add(label, read_audio(job.vocal), read_audio(job.accomp))
                    got[key] += spec.seconds
                    used.append({"group": job.group, **asdict(spec)})
                for path in (job.vocal, job.accomp):
                    path.unlink(missing_ok=True)
            log.info("rendered %.2f h of %.2f h", sum(got.values()) / 3600, hours)
    writer.close()
    shutil.rmtree(pieces_dir, ignore_errors=True)
    record = summary(used, writer.sessions, skipped, holdout, groups, hours, seed)
    record["wall_s"] = round(time.time() - began, 1)
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    record["cpu_s"] = round(sum(u.ru_utime + u.ru_stime for u in usage), 1)
    path = out / "comping.json"
    path.write_text(json.dumps(record, indent=1))
    return record


def summary(used: list[dict], sessions: list[dict], skipped: dict[str, str], holdout: dict,
            groups: dict[str, list[str]], hours: float, seed: int) -> dict:  # fmt: skip
    """The corpus record: exclusion rules, hours per kind/group/texture, pieces, sessions."""
    hours_by: dict[str, float] = {}
    for u in used:
        for key in (
            u["kind"],
            f"{u['kind']}/{u['group']}",
            f"texture/{u['texture']}" if u["texture"] else None,
        ):
            if key:
                hours_by[key] = round(hours_by.get(key, 0.0) + u["seconds"] / 3600, 3)
    return {
        "command": f"python -m samuel_live.train.comping OUT --hours {hours:g} --seed {seed}",
        "soundfont": str(SOUNDFONT),
        "exclusions": {
            "collections": {
                **RESERVED,
                **dict.fromkeys(sorted(NOT_SCORES), "not a multi-part score"),
            },
            "held_out_chorales": holdout["holdout"],
            "excluded_duplicates": holdout["excluded_duplicates"],
            "rules": [
                "bach files whose BWV id (or its base before '-') is a held-out chorale or an "
                "excluded duplicate",
                "any piece whose top line's first 24 onsets (lengths and pitch steps) match a "
                "held-out chorale's soprano",
                "never rendered with TimGM6mb; FluidR3_GM only",
            ],
        },
        "candidates": {g: len(v) for g, v in groups.items()},
        "hours": {
            "total": round(sum(u["seconds"] for u in used) / 3600, 3),
            **dict(sorted(hours_by.items())),
        },
        "pieces": {
            "count": len(used),
            "distinct": len({u["name"] for u in used}),
            "by_kind": {
                k: sorted({u["name"] for u in used if u["kind"] == k}) for k in KINDS_SHARE
            },
        },
        "specs": used,
        "sessions": sessions,
        "skipped": skipped,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: build the comping corpus into OUT."""
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--hours", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    record = build(args.out, hours=args.hours, seed=args.seed, workers=args.workers)
    print(json.dumps({k: record[k] for k in ("hours", "candidates", "wall_s", "cpu_s")}, indent=1))
    counts = (record["pieces"]["count"], len(record["sessions"]), len(record["skipped"]))
    print("{} pieces, {} sessions, {} skipped".format(*counts))


if __name__ == "__main__":
    main()
