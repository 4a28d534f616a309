"""Render only the chorale test split (the 32 chorales training never sees): a TUNING set.

    python bench/make_heldout_chorales.py [--out data/chorales/test]

The same pairs ``samuel-live prepare --kind chorales`` writes under ``test/`` (variant 0's
instruments, tempo and key, FluidR3_GM), without rendering the 6.8 h training corpus. Not
reserved material: defaults may be chosen on it (bench/quality.py --set chorales).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from samuel_live.train.chorales import RenderJob, chorale_id, load_holdout, render_jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/chorales/test"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in load_holdout()["holdout"]:
        bwv = chorale_id(name)
        jobs.append(RenderJob(name, 0, args.out / f"{bwv}_vocal.wav",
                              args.out / f"{bwv}_accomp.wav"))
    failures = render_jobs(jobs, workers=args.workers)
    for name, why in failures.items():
        print(f"skipped {name}: {why}")
    print(f"{len(jobs) - len(failures)} pairs in {args.out}")


if __name__ == "__main__":
    main()
