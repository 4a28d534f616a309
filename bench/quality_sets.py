"""The evaluation sets of bench/quality.py and how their figures are printed.

Tuning sets (choose defaults on these): ``chorales`` (the 32 chorales training never sees,
FluidR3_GM; bench/make_heldout_chorales.py) and ``styles`` (Ryan's Mammoth fiddle tunes on
unseen GM patches, FluidR3_GM; bench/make_heldout_styles.py). Reserved held-out sets (final
figures only, never tune on them): ``essen`` and ``monteverdi`` (TimGM6mb;
bench/make_heldout_reserved.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from samuel_live.train.metrics import Scores, bootstrap_ci

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class EvalSet:
    """A folder of ``NAME_vocal.*`` (+ optional ``NAME_accomp.*``) files and its role."""

    name: str
    folder: Path
    role: str  # "tuning" or "held-out"
    what: str
    make: str  # the command that renders it


SETS = {
    "chorales": EvalSet("chorales", DATA / "chorales" / "test", "tuning",
                        "Bach chorales held out of training (soprano vs ATB), FluidR3_GM",
                        "python bench/make_heldout_chorales.py"),
    "styles": EvalSet("styles", DATA / "styles", "tuning",
                      "Ryan's Mammoth fiddle tunes on unseen GM patches, FluidR3_GM, no reference",
                      "python bench/make_heldout_styles.py"),
    "essen": EvalSet("essen", DATA / "reserved" / "essen", "held-out",
                     "essenFolksong melodies, TimGM6mb, no reference",
                     "python bench/make_heldout_reserved.py"),
    "monteverdi": EvalSet("monteverdi", DATA / "reserved" / "monteverdi", "held-out",
                          "Monteverdi madrigals (top voice vs the lower four), TimGM6mb",
                          "python bench/make_heldout_reserved.py"),
}

COLUMNS = (("chroma", "chroma vs real"), ("consonance", "consonance"), ("key", "key agreement"),
           ("key_corr", "key-profile corr"), ("clarity", "clarity"), ("onset", "onset agreement"),
           ("echo", "echo"))


def find_pairs(folder: Path) -> list[tuple[str, Path, Path | None]]:
    """(name, vocal, accompaniment or None) of every ``NAME_vocal.*`` in ``folder``, by name."""
    pairs = []
    for vocal in sorted(folder.glob("*_vocal.*")):
        name = vocal.name.split("_vocal.")[0]
        acc = sorted(folder.glob(f"{name}_accomp.*"))
        pairs.append((name, vocal, acc[0] if acc else None))
    return pairs


def cell(values: list[float]) -> str:
    """``mean [lo, hi]`` (bootstrap 95%) of the finite values, or n/a."""
    mean, lo, hi = bootstrap_ci(values)
    return "n/a" if math.isnan(mean) else f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def table(results: dict[str, list[Scores]], columns=COLUMNS) -> str:
    """A Markdown table: one row per system, a ``mean [lo, hi]`` cell per metric.

    Columns with no finite value in any row (e.g. chroma vs real without references) are left
    out."""
    keep = [(f, title) for f, title in columns
            if any(not math.isnan(getattr(r, f)) for rows in results.values() for r in rows)]
    lines = ["| system | " + " | ".join(t for _, t in keep) + " |",
             "|---" * (len(keep) + 1) + "|"]
    most = max((len(rows) for rows in results.values()), default=0)
    for label, rows in results.items():
        if rows:
            label = label if len(rows) == most else f"{label} ({len(rows)} clips)"
            lines.append(f"| {label} | "
                         + " | ".join(cell([getattr(r, f) for r in rows]) for f, _ in keep)
                         + " |")
    return "\n".join(lines)
