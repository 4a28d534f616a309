"""Mutation testing of the maths (issue 11): mutmut over diffusion/, model/ and pipeline.py.

Runs on a snapshot of the committed tree (``git archive HEAD``) in a scratch folder, so edits in
the working tree never disturb the run and no mutant ever lands in it. Prints the kill ratio
per module and overall. Needs ``pip install mutmut`` (3.x) in the same environment.

    python bench/mutation.py --fresh              # new snapshot, full run (hours on 2 cores)
    python bench/mutation.py --report             # only re-print the last run's figures
    python bench/mutation.py --only 'samuel_live.diffusion.*'   # a subset of mutants
    python bench/mutation.py --sample 40 --only 'samuel_live.model.*'   # 40 random untested

Without ``--fresh`` an existing snapshot is reused and mutmut keeps the verdicts it already
has, so a long run can be done module by module.

A mutant is killed when a test fails (or times out) with it in place; "no tests" mutants (code
the selected tests never run) count as survivors; mutants not yet run ("not checked", after an
interrupted or partial run) are left out of the ratio and listed. ``mutmut results`` and
``mutmut show NAME`` inside the scratch folder list and show the survivors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTATE = ["samuel_live/diffusion/*", "samuel_live/model/*", "samuel_live/pipeline.py"]
# The fast tests that exercise those modules (mutmut runs only the ones covering a mutant).
TESTS = [
    "tests/test_diffusion.py",
    "tests/test_model.py",
    "tests/test_joins_model.py",
    "tests/test_joins_sampling.py",
    "tests/test_longform.py",
    "tests/test_train.py",
]
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def snapshot(dest: Path) -> None:
    """A fresh copy of the committed tree plus a mutmut config."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    (dest / "SNAPSHOT").write_text(head + "\n")
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    lines = ["[mutmut]", "source_paths = samuel_live", "only_mutate ="]
    lines += [f"    {p}" for p in MUTATE]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in TESTS]
    lines += ["pytest_add_cli_args =", "    -p", "    no:cacheprovider", "    -q",
              "process_isolation = forkserver", "use_git_change_detection = false",
              # CPU-time limit per mutant = 3 x its tests' clean time + 10 s (mutmut's 15x
              # default let a few looping mutants hold a worker for 20+ minutes).
              "timeout_multiplier = 3.0", "timeout_constant = 10.0", ""]
    (dest / "setup.cfg").write_text("\n".join(lines))


def untested_sample(work: Path, n: int, patterns: list[str], seed: int = 0) -> list[str]:
    """``n`` random mutant names (seeded) without a verdict yet, matching ``patterns`` if any:
    a quick estimate where the full run does not fit."""
    names = []
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += sorted(k for k, v in codes.items() if v is None
                        and (not patterns or any(fnmatch(k, p) for p in patterns)))
    return random.Random(seed).sample(names, min(n, len(names)))


def status_of(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def report(work: Path) -> float:
    """Print killed / total per module and overall; returns the overall ratio."""
    by_module: dict[str, Counter[str]] = {}
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(work / "mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            by_module[module] = Counter(status_of(c) for c in codes.values())
    if not by_module:
        print(f"no mutation results under {work}/mutants; run without --report first")
        return 0.0
    total = Counter[str]()
    print(f"{'module':42} {'killed':>7} {'tested':>6} {'ratio':>6}  others")
    for module, counts in by_module.items():
        total.update(counts)
        _row(module, counts)
    _row("overall", total)
    killed, n = _killed(total), _checked(total)
    return killed / n if n else 0.0


def _killed(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k in KILLED)


def _checked(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k != "not checked")


def _row(name: str, counts: Counter[str]) -> None:
    n, killed = _checked(counts), _killed(counts)
    others = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "killed")
    ratio = f"{killed / n:6.1%}" if n else "     -"
    print(f"{name:42} {killed:7d} {n:6d} {ratio}  {others}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/samuel-mutation"),
                    help="scratch folder for the snapshot and mutmut's results")
    ap.add_argument("--report", action="store_true", help="only print the last run's figures")
    ap.add_argument("--fresh", action="store_true", help="take a new snapshot of HEAD")
    ap.add_argument("--only", nargs="*", default=[], help="mutant name patterns to run")
    ap.add_argument("--sample", type=int, default=0,
                    help="run only this many random untested mutants (needs a previous run)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel mutants")
    args = ap.parse_args()
    if not args.report:
        if args.fresh or not (args.work / "SNAPSHOT").exists():
            snapshot(args.work)
        print(f"snapshot of commit {(args.work / 'SNAPSHOT').read_text().strip()} in {args.work}")
        start = time.monotonic()
        only = untested_sample(args.work, args.sample, args.only) if args.sample else args.only
        cmd = ["nice", sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs),
               *only]
        code = subprocess.run(cmd, cwd=args.work).returncode
        minutes = (time.monotonic() - start) / 60
        print(f"\nmutmut exited {code} after {minutes:.1f} min on {os.cpu_count()} CPUs")
    ratio = report(args.work)
    print(f"kill ratio {ratio:.1%}")


if __name__ == "__main__":
    main()
