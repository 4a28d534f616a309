"""The Stable Audio Open 1.0 VAE ("Oobleck") as a codec: 2048 samples <-> one 64-d latent frame.

The network runs as diffusers' ``AutoencoderOobleck``, not stable-audio-tools (SAT): the SAT
0.0.19 wheel's pins break this environment (a CUDA torchaudio build, a torchvision that fails to
import, a numpy downgrade), 0.0.20 refuses Python 3.11, and neither wheel ships its config files.
The released ``model.safetensors`` stores the VAE in SAT's naming under ``pretransform.model.*``;
``samuel_live.codec.sao_keys`` maps those names onto diffusers' key for key, and
``sao_autoencoder_config.json`` carries the SAO autoencoder settings for when a checkpoint comes
without its ``model_config.json``.

Long audio is encoded and decoded in overlapping chunks (sizes in latent frames) whose seams
are crossfaded, so memory stays bounded on a CPU; a chunk at least as long as the input gives
the plain unchunked result.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from samuel_live.codec.sao_keys import convert_sat_state_dict
from samuel_live.errors import CodecError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("sao_autoencoder_config.json")
SAT_PREFIXES = ("pretransform.model.", "")
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
LAYOUT_HELP = (
    "expected a stable-audio-open-1.0 download: a folder with model.safetensors (+ "
    "model_config.json), that model.safetensors file itself, its diffusers vae/ folder "
    f"(config.json + {DIFFUSERS_WEIGHTS}), or the repo root containing vae/. The repo is gated: "
    "accept the licence at https://huggingface.co/stabilityai/stable-audio-open-1.0 and download it"
)


@dataclass(frozen=True)
class OobleckConfig:
    """The shape of an Oobleck VAE, in terms both naming schemes can express."""

    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    strides: tuple[int, ...] = (2, 4, 4, 8, 8)
    encoder_latent: int = 128  # mean + scale
    decoder_channels: int = 128
    latent: int = 64
    audio_channels: int = 2
    sample_rate: int = 44100
    final_tanh: bool = False

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @classmethod
    def from_sat(cls, model_config: Mapping[str, Any]) -> OobleckConfig:
        """Read a stable-audio-tools model_config.json (whole model or bare autoencoder)."""
        ec, dc = _sat_oobleck_parts(model_config)
        try:
            return cls(
                channels=ec["channels"],
                c_mults=tuple(ec["c_mults"]),
                strides=tuple(ec["strides"]),
                encoder_latent=ec["latent_dim"],
                decoder_channels=dc["channels"],
                latent=dc["latent_dim"],
                audio_channels=ec.get("in_channels", 2),
                sample_rate=model_config.get("sample_rate", 44100),
                final_tanh=dc.get("final_tanh", True),  # SAT's default
            )
        except KeyError as exc:
            raise CodecError(f"model_config.json autoencoder settings lack {exc}") from exc

    @classmethod
    def from_diffusers(cls, config: Mapping[str, Any]) -> OobleckConfig:
        """Read a diffusers AutoencoderOobleck config.json."""
        defaults = cls()
        hidden = config.get("encoder_hidden_size", defaults.channels)
        return cls(
            channels=hidden,
            c_mults=tuple(config.get("channel_multiples", defaults.c_mults)),
            strides=tuple(config.get("downsampling_ratios", defaults.strides)),
            encoder_latent=hidden,
            decoder_channels=config.get("decoder_channels", defaults.decoder_channels),
            latent=config.get("decoder_input_channels", defaults.latent),
            audio_channels=config.get("audio_channels", defaults.audio_channels),
            sample_rate=config.get("sampling_rate", defaults.sample_rate),
        )


def _sat_oobleck_parts(model_config: Mapping[str, Any]) -> tuple[dict, dict]:
    """The encoder and decoder ``config`` dicts of an SAT config, if diffusers can run them."""
    try:
        model = model_config["model"]
        ae = model["pretransform"]["config"] if "pretransform" in model else model
        enc, dec = ae["encoder"], ae["decoder"]
        ec, dc = enc["config"], dec["config"]
        bottleneck = (ae.get("bottleneck") or {}).get("type")
    except (KeyError, TypeError) as exc:
        raise CodecError(f"model_config.json has no autoencoder settings ({exc!r})") from exc
    problems = [
        f"{side} type is {part.get('type')!r}, not 'oobleck'"
        for side, part in (("encoder", enc), ("decoder", dec))
        if part.get("type") != "oobleck"
    ]
    if not (ec.get("use_snake") and dc.get("use_snake")):
        problems.append("only snake activations are supported")
    if ec.get("antialias_activation") or dc.get("antialias_activation"):
        problems.append("antialiased activations are not supported")
    if dc.get("use_nearest_upsample"):
        problems.append("nearest-neighbour upsampling is not supported")
    if bottleneck != "vae":
        problems.append(f"bottleneck is {bottleneck!r}, not 'vae'")
    if any(ec.get(k) != dc.get(k) for k in ("c_mults", "strides")):
        problems.append("encoder and decoder c_mults/strides differ")
    if ec.get("latent_dim") != 2 * dc.get("latent_dim", 0):
        problems.append("encoder latent_dim must be twice the decoder's (mean + scale)")
    if problems:
        raise CodecError("unsupported autoencoder config: " + "; ".join(problems))
    return ec, dc


def load_sao_config(path: str | Path = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    """The SAT-style model config at ``path`` (default: the packaged SAO 1.0 autoencoder)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CodecError(f"cannot read autoencoder config {path}: {exc}") from exc


def build_oobleck(config: OobleckConfig, device: str | torch.device = "meta") -> torch.nn.Module:
    """An AutoencoderOobleck of this shape; on the meta device (no memory) by default.

    diffusers ties the encoder's output width to its hidden size; SAT does not, so the last
    encoder conv is rebuilt when the two differ.
    """
    try:
        from diffusers import AutoencoderOobleck
    except ImportError as exc:
        raise CodecError("the SAO codec needs diffusers: pip install 'samuel-live[sao]'") from exc
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore", FutureWarning)  # torch's weight_norm deprecation
        model = AutoencoderOobleck(
            encoder_hidden_size=config.channels,
            downsampling_ratios=list(config.strides),
            channel_multiples=list(config.c_mults),
            decoder_channels=config.decoder_channels,
            decoder_input_channels=config.latent,
            audio_channels=config.audio_channels,
            sampling_rate=config.sample_rate,
        )
        if config.encoder_latent != config.channels:
            width = config.channels * config.c_mults[-1]
            conv = torch.nn.Conv1d(width, config.encoder_latent, kernel_size=3, padding=1)
            model.encoder.conv2 = torch.nn.utils.weight_norm(conv)
    return model


def load_weights_strict(
    model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Load every parameter from ``tensors`` or raise CodecError naming what does not match."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{k} {tuple(tensors[k].shape)} != {expected[k]}"
        for k in set(expected) & set(tensors)
        if tuple(tensors[k].shape) != expected[k]
    )
    problems = [
        f"{label} ({len(items)}): {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if items
    ]
    if problems:
        raise CodecError(
            f"VAE weights in {source} do not match its config: {'; '.join(problems)}. "
            + LAYOUT_HELP
        )
    model.load_state_dict(dict(tensors), strict=True, assign=True)


def overlap_add(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    frames: int,
    chunk: int,
    overlap: int,
    in_hop: int,
    out_hop: int,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping chunks of ``x`` along its last axis and crossfade the seams.

    ``x`` holds ``frames * in_hop`` steps; ``fn`` maps ``c * in_hop`` steps to ``c * out_hop``.
    Chunks are ``chunk`` frames long and overlap by at least ``overlap`` frames (the last one is
    aligned to the end); where they overlap, linear ramps blend them.
    """
    if frames <= chunk:
        return fn(x)
    step = chunk - overlap
    starts = [*range(0, frames - chunk, step), frames - chunk]
    out = total = None
    for i, start in enumerate(starts):
        y = fn(x[..., start * in_hop : (start + chunk) * in_hop]).float()
        if out is None or total is None:
            out = y.new_zeros((*y.shape[:-1], frames * out_hop))
            total = y.new_zeros(frames * out_hop)
        fade_in = (starts[i - 1] + chunk - start) * out_hop if i > 0 else 0
        fade_out = (start + chunk - starts[i + 1]) * out_hop if i + 1 < len(starts) else 0
        weight = _ramp_weights(chunk * out_hop, fade_in, fade_out, y.device)
        span = slice(start * out_hop, (start + chunk) * out_hop)
        out[..., span] += y * weight
        total[span] += weight
    return out / total


def _ramp_weights(length: int, fade_in: int, fade_out: int, device: torch.device) -> torch.Tensor:
    """Ones with a linear rise over the first ``fade_in`` and fall over the last ``fade_out``."""
    weight = torch.ones(length, device=device)
    if fade_in:
        weight[:fade_in] = _rise(fade_in, device)
    if fade_out:
        weight[length - fade_out :] *= 1.0 - _rise(fade_out, device)
    return weight


def _rise(n: int, device: torch.device) -> torch.Tensor:
    """n evenly spaced values strictly between 0 and 1, so two opposite ramps sum to one."""
    return (torch.arange(n, device=device) + 0.5) / n


class SAOCodec:
    """Stable Audio Open VAE codec: (2, n) audio <-> (64, ceil(n / 2048)) posterior means."""

    name = "sao"

    def __init__(
        self,
        model: torch.nn.Module,
        config: OobleckConfig,
        *,
        encode_chunk: int = 128,
        encode_overlap: int = 16,
        decode_chunk: int = 128,
        decode_overlap: int = 16,
    ) -> None:
        for chunk, overlap in ((encode_chunk, encode_overlap), (decode_chunk, decode_overlap)):
            if overlap < 0 or chunk <= 2 * overlap:
                raise CodecError(
                    f"chunk ({chunk} frames) must be more than twice the overlap ({overlap})"
                )
        self.model = model.eval()
        self.config = config
        self.sample_rate = config.sample_rate
        self.hop = config.hop
        self.latent_channels = config.latent
        self.encode_chunk, self.encode_overlap = encode_chunk, encode_overlap
        self.decode_chunk, self.decode_overlap = decode_chunk, decode_overlap
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **chunking: int,
    ) -> SAOCodec:
        """Load the VAE from a stable-audio-open-1.0 download (either layout, see LAYOUT_HELP)."""
        path = Path(path).expanduser()
        if not path.exists():
            raise CodecError(f"nothing at {path}; {LAYOUT_HELP}")
        diffusers_dir = _diffusers_dir(path)
        if diffusers_dir is not None:
            model, config = _load_diffusers(diffusers_dir)
        else:
            model, config = _load_sat(path)
        # nn.Module.to, not ModelMixin.to: the latter logs a spurious fp32-modules warning.
        torch.nn.Module.to(model, device=device, dtype=dtype)
        return cls(model, config, **chunking)

    def encode(self, audio: np.ndarray) -> torch.Tensor:
        """Posterior mean latents (64, ceil(n / hop)) of (2, n) audio, float32 on the CPU."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] != self.config.audio_channels:
            raise CodecError(
                f"SAO codec encodes audio shaped ({self.config.audio_channels}, samples), "
                f"got {tuple(x.shape)}"
            )
        frames = -(-x.shape[1] // self.hop)
        padded = torch.zeros(1, x.shape[0], frames * self.hop, dtype=self.dtype)
        padded[0, :, : x.shape[1]] = x
        with torch.inference_mode():
            z = overlap_add(
                self._encode_mean,
                padded.to(self.device),
                frames,
                self.encode_chunk,
                self.encode_overlap,
                self.hop,
                1,
            )
        return z[0].float().cpu()

    def decode(self, latent: torch.Tensor | np.ndarray) -> np.ndarray:
        """Audio (2, F * hop) from (64, F) latents, or (B, 2, F * hop) from (B, 64, F)."""
        z = torch.as_tensor(latent).detach()
        if z.ndim not in (2, 3) or z.shape[-2] != self.latent_channels:
            raise CodecError(
                f"SAO codec decodes latents shaped ({self.latent_channels}, frames) or "
                f"(batch, {self.latent_channels}, frames), got {tuple(z.shape)}"
            )
        batch = z.unsqueeze(0) if z.ndim == 2 else z
        with torch.inference_mode():
            audio = overlap_add(
                self.model.decoder,
                batch.to(self.device, self.dtype),
                batch.shape[-1],
                self.decode_chunk,
                self.decode_overlap,
                1,
                self.hop,
            )
            if self.config.final_tanh:
                audio = torch.tanh(audio)
        out = audio.float().cpu().numpy()
        return out[0] if z.ndim == 2 else out

    def _encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encoder(x)[:, : self.latent_channels]


def _diffusers_dir(path: Path) -> Path | None:
    """The folder holding a diffusers VAE (config.json + weights), if ``path`` is or has one."""
    if path.is_file():
        is_vae = path.name == DIFFUSERS_WEIGHTS and (path.parent / "config.json").is_file()
        return path.parent if is_vae else None
    for candidate in (path, path / "vae"):
        if (candidate / "config.json").is_file() and (candidate / DIFFUSERS_WEIGHTS).is_file():
            return candidate
    return None


def _load_diffusers(folder: Path) -> tuple[torch.nn.Module, OobleckConfig]:
    raw = load_sao_config(folder / "config.json")
    if raw.get("_class_name", "AutoencoderOobleck") != "AutoencoderOobleck":
        raise CodecError(f"{folder / 'config.json'} is a {raw['_class_name']}, not an Oobleck VAE")
    config = OobleckConfig.from_diffusers(raw)
    model = build_oobleck(config)
    weights = folder / DIFFUSERS_WEIGHTS
    load_weights_strict(model, load_file(str(weights)), weights)
    return model, config


def _load_sat(path: Path) -> tuple[torch.nn.Module, OobleckConfig]:
    weights = path if path.is_file() else path / "model.safetensors"
    if not weights.is_file() or weights.suffix != ".safetensors":
        found = sorted(p.name for p in path.iterdir())[:10] if path.is_dir() else [path.name]
        raise CodecError(f"no VAE weights found at {path} (found {found}); {LAYOUT_HELP}")
    config_file = weights.with_name("model_config.json")
    raw = load_sao_config(config_file if config_file.is_file() else DEFAULT_CONFIG_PATH)
    config = OobleckConfig.from_sat(raw)
    tensors = _read_sat_tensors(weights)
    converted, unknown = convert_sat_state_dict(tensors, depth=len(config.strides))
    if unknown:
        raise CodecError(
            f"{weights} has VAE keys this loader does not know ({len(unknown)}): "
            f"{', '.join(sorted(unknown)[:5])}; it expects an Oobleck VAE with snake activations"
        )
    model = build_oobleck(config)
    load_weights_strict(model, converted, weights)
    return model, config


def _read_sat_tensors(weights: Path) -> dict[str, torch.Tensor]:
    """Only the VAE tensors of an SAT checkpoint, names stripped of their prefix."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            keys = list(f.keys())
            prefix = next(
                (p for p in SAT_PREFIXES if f"{p}encoder.layers.0.weight_v" in keys), None
            )
            if prefix is None:
                raise CodecError(
                    f"{weights} has no Oobleck VAE weights under "
                    f"'pretransform.model.encoder.*' / 'pretransform.model.decoder.*'; "
                    + LAYOUT_HELP
                )
            wanted = [k for k in keys if k.startswith((f"{prefix}encoder.", f"{prefix}decoder."))]
            return {k[len(prefix) :]: f.get_tensor(k) for k in wanted}
    except CodecError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CodecError(f"cannot read {weights} as safetensors: {exc}") from exc
