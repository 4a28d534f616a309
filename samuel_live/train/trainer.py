"""The training loop shared by the shipped starter model and users' own models.

The paper's recipe: AdamW (lr 3.5e-4, weight decay 0.01) with cosine annealing, batch 16,
v-prediction loss with SNR weighting, 10% condition dropout for classifier-free guidance, a 10%
held-out validation set with early stopping; plus EMA weights, gradient clipping, bf16 autocast
on CUDA, and checkpoints that resume to the exact step (model, EMA, optimiser, scheduler, RNG).
Under torchrun the same loop trains with DDP (samuel_live.train.distributed): ``batch_size`` is
the global batch, each process trains on its share, and only rank 0 writes.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import pickle
import random
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samuel_live import LATENT_FRAMES
from samuel_live.atomic import atomic_path
from samuel_live.device import pick_device, pick_dtype
from samuel_live.diffusion.guidance import GUIDANCE_MAX_LAMBDA, distillation_target
from samuel_live.diffusion.loss import diffusion_loss
from samuel_live.errors import SamuelError
from samuel_live.model.checkpoint import (
    CheckpointMeta,
    file_hash,
    load_checkpoint,
    save_checkpoint,
)
from samuel_live.model.schedule import model_schedule, schedule_entry
from samuel_live.model.unet import SamuelUNet, UNetConfig
from samuel_live.train import distributed as dd
from samuel_live.train.batches import (
    Batches,
    WindowOrder,
    crop_at,
    parse_curriculum,
    stats_from_manifest,
)
from samuel_live.train.plots import plot_losses


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; read from TOML (``[train]`` and ``[model]`` tables)."""

    data: str = "data/chorales/shards"
    out: str = "runs/starter"
    model: dict[str, Any] = field(default_factory=dict)  # UNetConfig overrides
    batch_size: int = 16  # the global batch: split over the processes of a distributed run
    lr: float = 3.5e-4
    weight_decay: float = 0.01
    max_steps: int = 2000
    warmup_steps: int = 100
    crop_frames: int = 1024  # random crops; the last stage of any curriculum
    crop_curriculum: str = ""  # e.g. "256@0,512@0.3,1024@0.6": crop length by run fraction
    short_crops: bool = False  # allow ending on crops shorter than the sampling window
    cond_drop: float = 0.1
    weighting: str = "snr"  # snr (the paper) | min_snr | none
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    eval_every: int = 200
    patience: int = 5  # evaluations without improvement before early stopping
    transpose: int = 0  # harmonic codec only: random shift of +-N semitone bands
    gain_db: float = 0.0  # random level change of the vocal condition, +-dB
    tilt_db: float = 0.0  # random spectral tilt of the vocal, +-dB from lowest to highest band
    noise_db: float = 0.0  # add a broadband floor this many dB below the vocal peak, at most
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # CPU threads; 0 = torch default
    time_limit_s: float = 0.0  # stop cleanly (and checkpoint) after this long; 0 = none
    dist_timeout_s: float = 600.0  # a distributed run ends when a process is silent this long
    export_dtype: str = "float16"
    init: str = ""  # start from this checkpoint's weights (fine-tuning); "" = random init
    # Guidance distillation: learn this checkpoint's guided v (scale teacher_cfg, guidance
    # interval included) in one conditional forward, and its unconditional v on the
    # cond_drop rows; init defaults to the teacher.
    teacher: str = ""
    teacher_cfg: float = 7.0


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a training TOML (``[train]`` keys + optional ``[model]`` table) and overrides."""
    data: dict[str, Any] = {}
    if path:
        raw = tomllib.loads(Path(path).read_text())
        data.update(raw.get("train", {}))
        if "model" in raw:
            data["model"] = raw["model"]
    types = {f.name: f.type for f in fields(TrainConfig)}
    for item in overrides or []:
        key, _, value = item.partition("=")
        if key not in types or key == "model":
            raise SamuelError(f"unknown training option {key!r}; known: {sorted(types)}")
        default = getattr(TrainConfig(), key)
        data[key] = _parse_bool(key, value) if isinstance(default, bool) else type(default)(value)
    unknown = set(data) - set(types)
    if unknown:
        raise SamuelError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(types)}")
    return TrainConfig(**data)


def _parse_bool(key: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SamuelError(f"training option {key} takes true or false, got {value!r}")


def check_window(cfg: TrainConfig, window: int) -> list[tuple[float, int]]:
    """The crop stages of ``cfg`` for data windows of ``window`` frames, refusing a run that
    would end on crops shorter than the sampling window (global attention would then meet
    RoPE distances at generation that it never trained on) unless ``short_crops`` says so."""
    stages = parse_curriculum(cfg.crop_curriculum, cfg.crop_frames)
    sampling = min(window, LATENT_FRAMES)
    if min(cfg.crop_frames, window) < sampling and not cfg.short_crops:
        raise SamuelError(
            f"crop_frames = {cfg.crop_frames} ends training on crops shorter than the "
            f"{sampling}-frame window the model samples; set crop_frames = {sampling} (a "
            "crop_curriculum may start shorter), or short_crops = true to train short anyway"
        )
    return stages


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        p = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    return f


@dataclass
class TrainResult:
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    stopped_early: bool
    seconds: float
    checkpoint: Path


def _np_rng_state() -> tuple[Any, ...]:
    """numpy's global RNG state with its key as a tensor, so torch.load(weights_only) takes it."""
    name, keys, *rest = np.random.get_state()
    return (name, torch.from_numpy(np.asarray(keys, np.int64)), *rest)


class Trainer:
    """Owns model, EMA, optimiser, scheduler and data; ``run()`` trains until done or stopped."""

    def __init__(
        self,
        cfg: TrainConfig,
        vocal: torch.Tensor,
        accomp: torch.Tensor,
        manifest: dict[str, Any],
        val_mask: torch.Tensor | None = None,
        world: dd.World | None = None,
    ) -> None:
        self.cfg = cfg
        self.world = world or dd.World()
        self.rows = self.world.rows(cfg.batch_size)
        self.device = self.world.device(pick_device(cfg.device))
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.codec = manifest.get("codec", "harmonic")
        self.crops = check_window(cfg, vocal.shape[-1])
        init_path = cfg.init or cfg.teacher
        init = load_checkpoint(init_path, expect_codec=self.codec) if init_path else None
        if init and init[1].distilled_cfg is not None and not cfg.teacher:
            raise SamuelError(
                f"init {init_path} is guidance-distilled (its conditional branch is already "
                "guided); fine-tune the model it was distilled from (its training.distilled."
                "teacher, e.g. samuel_live/models/starter-teacher.safetensors), then distil again")
        # fine-tuning keeps the normalisation the model learned, whatever the new data's
        self.stats = init[1].stats if init else stats_from_manifest(manifest)
        if val_mask is None:
            val_mask = torch.zeros(vocal.shape[0], dtype=torch.bool)
            val_mask[:: max(2, round(1 / 0.1))] = True  # every 10th window
        if val_mask.all() or not val_mask.any():
            raise SamuelError("need at least one training and one validation window")
        self.train = Batches(vocal[~val_mask], accomp[~val_mask], self.stats, cfg, self.codec)
        self.val = Batches(vocal[val_mask], accomp[val_mask], self.stats, cfg, self.codec)
        self.model_cfg = UNetConfig.from_dict({**UNetConfig().to_dict(), **cfg.model})
        self.model = SamuelUNet(self.model_cfg).to(self.device)
        if init:
            self._load_init(init_path, *init)
        self.teacher, self.distilled, self.sampler_defaults = (
            self._load_teacher() if cfg.teacher else (None, {}, None))
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.net = dd.wrap(self.model, self.world, self.device)  # what the step trains through
        self.order = WindowOrder(self.train.vocal.shape[0], cfg.seed)
        self.schedule = model_schedule(self.model, where=f"training model ({cfg.init or 'new'})")
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg))
        self.gen = torch.Generator().manual_seed(cfg.seed)  # data: crops, augmentation
        self.noise_gen = torch.Generator(self.device).manual_seed(cfg.seed + 1)  # t, eps, drop
        self.step = 0
        self.best_val = math.inf
        self.bad_evals = 0
        self.saved_step: int | None = None  # of the last train_state.pt
        self.log_path = self.out / "loss.csv"
        self._val_batch = self._fixed_val_batch()

    def _load_init(self, path: str, state: dict[str, torch.Tensor], meta: CheckpointMeta) -> None:
        """Fine-tune: take weights (not optimiser state) from an exported checkpoint."""
        # global_weight changes how attention mixes, not which weights exist: a model may be
        # fine-tuned into the other direction (the A/B of issue 13)
        same = {**UNetConfig.from_dict(meta.model).to_dict(), "global_weight": None} == \
            {**self.model_cfg.to_dict(), "global_weight": None}
        if not same:
            raise SamuelError(f"init checkpoint {path} has another architecture than [model]")
        self.model.load_state_dict(state)

    def _load_teacher(self) -> tuple[SamuelUNet, dict[str, Any], dict[str, Any]]:
        """The frozen teacher of guidance distillation, what the export records about it, and
        the student's sampler defaults. The teacher runs in the dtype generation would use
        (bfloat16 on CPUs with native bf16), so the student learns what sampling with the
        teacher actually produces, rounding included."""
        cfg = self.cfg
        if not 1.0 < cfg.teacher_cfg <= 20.0:
            raise SamuelError(f"teacher_cfg must be above 1 and at most 20 (a guided scale), "
                              f"got {cfg.teacher_cfg}")
        state, meta = load_checkpoint(cfg.teacher, expect_codec=self.codec)
        if meta.distilled_cfg is not None:
            raise SamuelError(
                f"teacher {cfg.teacher} is itself guidance-distilled, so guiding it again would "
                "compound the scale; use the model it was distilled from (e.g. "
                "samuel_live/models/starter-teacher.safetensors)")
        if UNetConfig.from_dict(meta.model) != self.model_cfg or meta.stats != self.stats:
            raise SamuelError(f"teacher {cfg.teacher} has another architecture or latent "
                              "normalisation than the student; distil into the same [model]")
        net = SamuelUNet(self.model_cfg)
        net.load_state_dict(state)
        net = net.to(self.device).eval().requires_grad_(False)
        teacher = net.inference_copy(pick_dtype("auto", self.device))
        record = {"teacher": cfg.teacher, "teacher_hash": file_hash(cfg.teacher),
                  "cfg": cfg.teacher_cfg, "max_lambda": GUIDANCE_MAX_LAMBDA}
        # the student samples as its teacher does, at the scale it learned
        return teacher, record, {**meta.sampler_defaults, "cfg": cfg.teacher_cfg}

    def _target(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                keep: torch.Tensor) -> torch.Tensor:
        """The teacher's v (guided where the vocal is kept): the distillation target."""
        assert self.teacher is not None
        return distillation_target(self.teacher, x_t, t, cond, keep, self.cfg.teacher_cfg).float()

    # --- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "bad_evals": self.bad_evals,
            "gen": self.gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "py_rng": random.getstate(),
            "np_rng": _np_rng_state(),
            "order_seed": self.order.seed,
            "config": asdict(self.cfg),
        }

    def save_state(self) -> Path:
        path = self.out / "train_state.pt"
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)
        return path

    def load_state(self, path: str | Path) -> None:
        # CPU first: RNG states must stay CPU byte tensors; load_state_dict moves the rest
        try:  # weights_only: a state file must not be able to run code when loaded
            s = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, OSError ...
            why = ("it holds objects other than tensors and plain values, which could run code"
                   if isinstance(exc, pickle.UnpicklingError) else f"{type(exc).__name__}: {exc}")
            raise SamuelError(
                f"cannot resume from {path} ({why}); it is missing, damaged or not from this "
                "samuel-live version: train again without --resume"
            ) from exc
        self.model.load_state_dict(s["model"])
        self.ema.load_state_dict(s["ema"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        self.step, self.best_val, self.bad_evals = s["step"], s["best_val"], s["bad_evals"]
        self.gen.set_state(s["gen"])
        self.noise_gen.set_state(s["noise_gen"])
        self.order = WindowOrder(self.order.windows, s.get("order_seed", self.cfg.seed))
        self.saved_step = self.step
        torch.set_rng_state(s["torch_rng"])
        random.setstate(s["py_rng"])
        name, keys, *rest = s["np_rng"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))

    def export(self, path: str | Path | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write the EMA weights as an inference checkpoint (fp16 by default)."""
        meta = CheckpointMeta(
            model=self.model_cfg.to_dict(),
            codec=self.codec,
            stats=self.stats,
            schedule=schedule_entry(self.model),
            **({"sampler_defaults": self.sampler_defaults} if self.sampler_defaults else {}),
            training={
                "step": self.step,
                "best_val_loss": self.best_val,
                **({"distilled": self.distilled} if self.distilled else {}),
                **(extra or {}),
                "config": asdict(self.cfg),
            },
        )
        dtype = getattr(torch, self.cfg.export_dtype)
        return save_checkpoint(path or self.out / "model", self.ema.state_dict(), meta, dtype)

    # --- loop --------------------------------------------------------------------------------
    def _fixed_val_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
        g = torch.Generator().manual_seed(12345)
        n = min(64, max(8, self.val.vocal.shape[0] * 4))
        v, a = self.val.sample(n, g)
        return v, a, g

    def _loss(
        self,
        model: SamuelUNet,
        v: torch.Tensor,
        a: torch.Tensor,
        gen: torch.Generator | None,
        cond_drop: float,
        weighting: str | None = None,
        part: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        use_amp = self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            return diffusion_loss(
                model,
                a.to(self.device),
                v.to(self.device),
                self.schedule,
                generator=gen,
                cond_drop=cond_drop,
                weighting=weighting or self.cfg.weighting,
                min_snr_gamma=self.cfg.min_snr_gamma,
                part=part,
                target_fn=self._target if self.teacher is not None else None,
            )

    @torch.no_grad()
    def validate(self, weighting: str | None = None) -> float:
        """Loss of the EMA model on a fixed validation batch (fixed t and noise each time).

        ``weighting="none"`` gives the plain v-MSE, comparable between runs trained with
        different loss weightings (the paper's SNR vs min-SNR)."""
        v, a, _ = self._val_batch
        g = torch.Generator(self.device).manual_seed(999)
        losses = [
            self._loss(self.ema, v[i : i + 16], a[i : i + 16], g, 0.0, weighting).item()
            for i in range(0, v.shape[0], 16)
        ]
        return float(np.mean(losses))

    def train_step(self) -> float:
        """One optimiser step on this step's global batch (this process's rows of it)."""
        self.model.train()
        size, rows = self.cfg.batch_size, self.rows
        crop = crop_at(self.crops, self.step, self.cfg.max_steps)
        v, a = self.train.sample(size, self.gen, self.order.batch(self.step, size), crop)
        loss = self._loss(self.net, v[rows], a[rows], self.noise_gen, self.cfg.cond_drop,
                          part=(rows.start, size))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        self._update_ema()
        self.step += 1
        return float(loss.item())

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        for pe, pm in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            pe.lerp_(pm, 1 - d)
        for be, bm in zip(self.ema.buffers(), self.model.buffers(), strict=True):
            be.copy_(bm)

    def _log(self, row: dict[str, Any]) -> None:
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def run(self, progress: bool = True) -> TrainResult:
        """Train to ``max_steps`` (or early stop, or the time limit); a distributed run whose
        process group breaks ends with a ClusterError naming the checkpoint to resume."""
        try:
            return self._run(progress)
        except (RuntimeError, dd.dist.DistError) as exc:
            if not dd.is_lost_process(exc, self.world):
                raise
            raise dd.lost_process(self.world, self.step, self.saved_step,
                                  self.out / "train_state.pt", exc) from exc

    def _run(self, progress: bool) -> TrainResult:
        cfg, t0, world = self.cfg, time.monotonic(), self.world
        train_loss, val_loss, stopped = math.nan, math.nan, False
        bar = _progress(cfg.max_steps, self.step, progress and world.main)
        if world.main:
            self._announce()
        running: list[float] = []
        while self.step < cfg.max_steps:
            running.append(self.train_step())
            bar.update(1)
            timed_out = bool(cfg.time_limit_s) and time.monotonic() - t0 > cfg.time_limit_s
            if cfg.time_limit_s:  # every rank stops at the same step
                timed_out = dd.anyone(timed_out, world, self.device)
            if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps or timed_out:
                train_loss = dd.mean(float(np.mean(running)), world, self.device)
                val_loss = dd.from_main(self.validate() if world.main else 0.0, world,
                                        self.device)
                running = []
                if val_loss < self.best_val:
                    self.best_val, self.bad_evals = val_loss, 0
                    if world.main:
                        self.export()
                else:
                    self.bad_evals += 1
                if world.main:
                    self._checkpoint(train_loss, val_loss, time.monotonic() - t0)
                self.saved_step = self.step
                bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
                if self.bad_evals >= cfg.patience:
                    stopped = True
                    break
                if timed_out:
                    break
        bar.close()
        if world.main and not (self.out / "model.safetensors").exists():
            self.export()
        dd.barrier(world)  # nobody leaves while rank 0 still writes
        return TrainResult(
            self.step,
            train_loss,
            val_loss,
            self.best_val,
            stopped,
            time.monotonic() - t0,
            self.out / "model.safetensors",
        )

    def _checkpoint(self, train_loss: float, val_loss: float, seconds: float) -> None:
        """Rank 0's writes at an evaluation: the log row, train_state.pt and the plot."""
        self._log(
            {
                "step": self.step,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_v_mse": self.validate("none"),
                "lr": self.sched.get_last_lr()[0],
                "seconds": round(seconds, 1),
            }
        )
        self.save_state()
        plot_losses(self.log_path, self.out / "loss.png")

    def _announce(self) -> None:
        """Say how a distributed run splits the batch (one process: nothing changes)."""
        if self.world.distributed:
            per = self.rows.stop - self.rows.start
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            print(f"DDP: {self.world.size} processes ({backend}), {per} rows each: effective "
                  f"batch {self.cfg.batch_size}, lr {self.cfg.lr:g} (the recipe's: the global "
                  "batch does not change with the process count)", file=sys.stderr, flush=True)


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step")


def train_from_config(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Load shards, build a Trainer, optionally resume, and run it; under torchrun (RANK,
    WORLD_SIZE, ... set) as one process of a DDP run."""
    from samuel_live.train.shards import load_corpus

    world = dd.World.from_env()
    with dd.process_group(world, world.device(pick_device(cfg.device)), cfg.dist_timeout_s):
        vocal, accomp, manifest = load_corpus(cfg.data)
        val = manifest.pop("validation_mask", None)
        val_mask = torch.as_tensor(val, dtype=torch.bool) if val is not None else None
        trainer = Trainer(cfg, vocal, accomp, manifest, val_mask, world)
        state = Path(cfg.out) / "train_state.pt"
        if resume and state.exists():
            trainer.load_state(state)
        if world.main:
            (Path(cfg.out) / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
        return trainer.run(progress=progress)
