"""The loss curve of a training run, as a PNG beside its loss.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from samuel_live.atomic import atomic_path


def plot_losses(csv_path: Path, png_path: Path) -> None:
    """Loss curve PNG; skipped quietly where matplotlib is not installed (e.g. a bare GPU box)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [float(r["train_loss"]) for r in rows], label="train")
    ax.plot(steps, [float(r["val_loss"]) for r in rows], label="validation (EMA)")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted v-loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
