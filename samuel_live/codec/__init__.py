"""Latent codecs: stereo 44.1 kHz audio <-> (64, frames) latents at 2048 samples a frame."""

from __future__ import annotations

from pathlib import Path

from samuel_live.codec.base import Codec
from samuel_live.errors import CodecError

CODEC_NAMES = ("harmonic", "sao")


def load_codec(name: str, path: str | Path | None = None, device: str = "cpu") -> Codec:
    """The codec called ``name``: "harmonic" (built in, no weights) or "sao" (needs ``path``)."""
    if name == "harmonic":
        from samuel_live.codec.harmonic import HarmonicCodec

        return HarmonicCodec()
    if name == "sao":
        if path is None:
            raise CodecError(
                "the sao codec needs the Stable Audio Open 1.0 weights: accept the licence at "
                "https://huggingface.co/stabilityai/stable-audio-open-1.0, download it (e.g. "
                "`huggingface-cli download stabilityai/stable-audio-open-1.0`), and pass the "
                "folder (or its vae/ folder) as the codec path"
            )
        from samuel_live.codec.sao import SAOCodec

        return SAOCodec.from_pretrained(path, device=device)
    raise CodecError(f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}")


__all__ = ["CODEC_NAMES", "Codec", "load_codec"]
