"""The SAO codec loads both real checkpoint layouts key for key (tiny random weights here)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from samuel_live.codec import CODEC_NAMES, load_codec
from samuel_live.codec.base import Codec
from samuel_live.codec.harmonic import HarmonicCodec
from samuel_live.codec.sao import (
    DEFAULT_CONFIG_PATH,
    OobleckConfig,
    SAOCodec,
    build_oobleck,
    convert_sat_state_dict,
    load_sao_config,
    load_weights_strict,
    overlap_add,
)
from samuel_live.errors import CodecError

pytest.importorskip("diffusers")

TINY = 16  # channels; the real model has 128


def sat_oobleck_shapes(enc: dict[str, Any], dec: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of stable-audio-tools' OobleckEncoder + OobleckDecoder.

    Written from stable_audio_tools/models/autoencoders.py: both are nn.Sequential ``layers``;
    EncoderBlock = 3 ResidualUnits, snake, strided WNConv1d; DecoderBlock = snake,
    WNConvTranspose1d, 3 ResidualUnits; ResidualUnit = snake, WNConv1d k7, snake, WNConv1d k1;
    SnakeBeta keeps alpha/beta shaped (C,); weight_norm(dim=0) adds weight_g/weight_v.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int, bias: bool = True, t: bool = False) -> None:
        weight = (cin, cout, k) if t else (cout, cin, k)
        shapes[f"{name}.weight_g"] = (weight[0], 1, 1)
        shapes[f"{name}.weight_v"] = weight
        if bias:
            shapes[f"{name}.bias"] = (cout,)

    def snake(name: str, c: int) -> None:
        shapes[f"{name}.alpha"] = (c,)
        shapes[f"{name}.beta"] = (c,)

    def residual(name: str, c: int) -> None:
        snake(f"{name}.layers.0", c)
        conv(f"{name}.layers.1", c, c, 7)
        snake(f"{name}.layers.2", c)
        conv(f"{name}.layers.3", c, c, 1)

    ch, cm, st = enc["channels"], [1, *enc["c_mults"]], enc["strides"]
    conv("encoder.layers.0", enc["in_channels"], cm[0] * ch, 7)
    for i in range(len(cm) - 1):
        block = f"encoder.layers.{i + 1}.layers"
        for r in range(3):
            residual(f"{block}.{r}", cm[i] * ch)
        snake(f"{block}.3", cm[i] * ch)
        conv(f"{block}.4", cm[i] * ch, cm[i + 1] * ch, 2 * st[i])
    snake(f"encoder.layers.{len(cm)}", cm[-1] * ch)
    conv(f"encoder.layers.{len(cm) + 1}", cm[-1] * ch, enc["latent_dim"], 3)

    ch, cm, st = dec["channels"], [1, *dec["c_mults"]], dec["strides"]
    conv("decoder.layers.0", dec["latent_dim"], cm[-1] * ch, 7)
    for n, i in enumerate(range(len(cm) - 1, 0, -1)):
        block = f"decoder.layers.{n + 1}.layers"
        snake(f"{block}.0", cm[i] * ch)
        conv(f"{block}.1", cm[i] * ch, cm[i - 1] * ch, 2 * st[i - 1], t=True)
        for r in range(3):
            residual(f"{block}.{r + 2}", cm[i - 1] * ch)
    snake(f"decoder.layers.{len(cm)}", cm[0] * ch)
    conv(f"decoder.layers.{len(cm) + 1}", cm[0] * ch, dec["out_channels"], 7, bias=False)
    return shapes


def sao_model_config(channels: int = 128) -> dict[str, Any]:
    """A model_config.json of stable-audio-open-1.0's shape, VAE width ``channels``."""
    config = copy.deepcopy(load_sao_config())
    config["model_type"] = "diffusion_cond"
    ae = config["model"]["pretransform"]["config"]
    ae["encoder"]["config"]["channels"] = channels
    ae["decoder"]["config"]["channels"] = channels
    config["model"]["conditioning"] = {"cond_dim": 768, "configs": []}
    config["model"]["diffusion"] = {"type": "dit", "config": {"embed_dim": 1536, "depth": 24}}
    return config


def _pretransform_parts(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ae = config["model"]["pretransform"]["config"]
    return ae["encoder"]["config"], ae["decoder"]["config"]


def write_sat_checkpoint(folder: Path, channels: int = TINY) -> dict[str, torch.Tensor]:
    """model.safetensors + model_config.json in the released layout, random VAE weights."""
    folder.mkdir(parents=True, exist_ok=True)
    config = sao_model_config(channels)
    generator = torch.Generator().manual_seed(0)
    vae = {
        name: torch.randn(shape, generator=generator) * 0.1
        for name, shape in sat_oobleck_shapes(*_pretransform_parts(config)).items()
    }
    others = {
        "model.model.transformer.layers.0.self_attn.to_qkv.weight": torch.randn(12, 4),
        "conditioner.conditioners.seconds_total.embedder.embedding.1.weight": torch.randn(3, 2),
        "model.model.preprocess_conv.weight": torch.randn(4, 4, 1),
    }
    save_file(
        {**{f"pretransform.model.{k}": v for k, v in vae.items()}, **others},
        folder / "model.safetensors",
    )
    (folder / "model_config.json").write_text(json.dumps(config))
    return vae


@pytest.fixture(scope="module")
def sat_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    folder = tmp_path_factory.mktemp("stable-audio-open-1.0")
    return folder, write_sat_checkpoint(folder)


@pytest.fixture(scope="module")
def sat_codec(sat_dir: tuple[Path, dict[str, torch.Tensor]]) -> SAOCodec:
    return SAOCodec.from_pretrained(sat_dir[0])


def test_packaged_config_is_stable_audio_open() -> None:
    config = OobleckConfig.from_sat(load_sao_config(DEFAULT_CONFIG_PATH))
    assert config == OobleckConfig()
    assert (config.hop, config.latent, config.encoder_latent) == (2048, 64, 128)
    assert config.final_tanh is False


def test_full_size_model_has_the_published_parameter_count() -> None:
    model = build_oobleck(OobleckConfig())  # meta device: shapes only, no memory
    encoder = sum(p.numel() for p in model.encoder.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    assert encoder / 1e6 == pytest.approx(78.0, abs=0.05)
    assert decoder / 1e6 == pytest.approx(78.1, abs=0.05)


def test_full_size_sat_names_map_onto_diffusers_exactly() -> None:
    shapes = sat_oobleck_shapes(*_pretransform_parts(sao_model_config()))
    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    converted, unknown = convert_sat_state_dict(meta, depth=5)
    assert unknown == []
    model = build_oobleck(OobleckConfig())
    load_weights_strict(model, converted, Path("model.safetensors"))  # raises on any mismatch


SPOT_CHECKS = {
    "encoder.layers.0.weight_v": "encoder.conv1.weight_v",
    "encoder.layers.1.layers.4.weight_g": "encoder.block.0.conv1.weight_g",
    "encoder.layers.2.layers.1.layers.3.bias": "encoder.block.1.res_unit2.conv2.bias",
    "encoder.layers.5.layers.3.alpha": "encoder.block.4.snake1.alpha",
    "encoder.layers.6.beta": "encoder.snake1.beta",
    "encoder.layers.7.weight_v": "encoder.conv2.weight_v",
    "decoder.layers.0.weight_g": "decoder.conv1.weight_g",
    "decoder.layers.1.layers.1.weight_v": "decoder.block.0.conv_t1.weight_v",
    "decoder.layers.3.layers.4.layers.2.alpha": "decoder.block.2.res_unit3.snake2.alpha",
    "decoder.layers.5.layers.0.beta": "decoder.block.4.snake1.beta",
    "decoder.layers.6.alpha": "decoder.snake1.alpha",
    "decoder.layers.7.weight_v": "decoder.conv2.weight_v",
}


def test_sat_checkpoint_loads_key_for_key(
    sat_dir: tuple[Path, dict[str, torch.Tensor]], sat_codec: SAOCodec
) -> None:
    _, source = sat_dir
    loaded = sat_codec.model.state_dict()
    assert len(loaded) == len(source)
    # Every loaded tensor is exactly one source tensor (all values are distinct random draws).
    by_content = {}
    for sat_name, tensor in source.items():
        match = [
            k
            for k, v in loaded.items()
            if v.numel() == tensor.numel() and torch.equal(v.flatten(), tensor.flatten())
        ]
        assert len(match) == 1, sat_name
        by_content[sat_name] = match[0]
    assert len(set(by_content.values())) == len(loaded)
    for sat_name, diffusers_name in SPOT_CHECKS.items():
        assert by_content[sat_name] == diffusers_name
    assert loaded["encoder.block.0.res_unit1.snake1.alpha"].shape == (1, TINY, 1)


def test_sat_codec_encodes_and_decodes(sat_codec: SAOCodec) -> None:
    assert isinstance(sat_codec, Codec)
    assert (sat_codec.name, sat_codec.hop, sat_codec.latent_channels) == ("sao", 2048, 64)
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((2, 3 * 2048 + 100)) * 0.1).astype(np.float32)
    latent = sat_codec.encode(audio)
    assert latent.shape == (64, 4) and latent.dtype == torch.float32
    assert torch.isfinite(latent).all()
    # The posterior mean is the first half of the encoder output.
    padded = torch.zeros(1, 2, 4 * 2048)
    padded[0, :, : audio.shape[1]] = torch.from_numpy(audio)
    with torch.inference_mode():
        full = sat_codec.model.encode(padded).latent_dist.mean[0]
    torch.testing.assert_close(latent, full)
    out = sat_codec.decode(latent)
    assert out.shape == (2, 4 * 2048) and out.dtype == np.float32
    assert sat_codec.decode(torch.stack([latent, latent])).shape == (2, 2, 4 * 2048)


def test_chunked_codec_matches_unchunked_shape_and_content(
    sat_dir: tuple[Path, dict[str, torch.Tensor]], sat_codec: SAOCodec
) -> None:
    chunked = SAOCodec.from_pretrained(
        sat_dir[0], encode_chunk=5, encode_overlap=2, decode_chunk=5, decode_overlap=2
    )
    rng = np.random.default_rng(2)
    audio = (rng.standard_normal((2, 9 * 2048 - 5)) * 0.1).astype(np.float32)
    whole, pieces = sat_codec.encode(audio), chunked.encode(audio)
    assert pieces.shape == whole.shape == (64, 9)
    assert np.corrcoef(whole.ravel(), pieces.ravel())[0, 1] > 0.99
    decoded_whole, decoded_pieces = sat_codec.decode(whole), chunked.decode(whole)
    assert decoded_pieces.shape == decoded_whole.shape == (2, 9 * 2048)
    assert np.corrcoef(decoded_whole.ravel(), decoded_pieces.ravel())[0, 1] > 0.99


def test_overlap_add_of_a_local_function_is_exact() -> None:
    x = torch.randn(2, 3, 37)

    def upsample(t: torch.Tensor) -> torch.Tensor:
        return 2 * t.repeat_interleave(4, dim=-1)

    for chunk, overlap in ((8, 3), (10, 0), (37, 5), (50, 5)):
        out = overlap_add(upsample, x, 37, chunk, overlap, in_hop=1, out_hop=4)
        torch.testing.assert_close(out, upsample(x))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's weight_norm, inside diffusers
def test_diffusers_layout_loads_from_root_vae_folder_or_file(tmp_path: Path) -> None:
    from diffusers import AutoencoderOobleck

    torch.manual_seed(0)
    source = AutoencoderOobleck(
        encoder_hidden_size=TINY, decoder_channels=TINY, decoder_input_channels=TINY // 2
    )
    source.save_pretrained(tmp_path / "vae")
    expected = source.state_dict()
    for where in (
        tmp_path,
        tmp_path / "vae",
        tmp_path / "vae" / "diffusion_pytorch_model.safetensors",
    ):
        codec = SAOCodec.from_pretrained(where)
        loaded = codec.model.state_dict()
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    latent = codec.encode(np.zeros((2, 5000), np.float32))
    assert latent.shape == (TINY // 2, 3)
    assert codec.decode(latent).shape == (2, 3 * 2048)


def test_wrong_layouts_raise_codec_errors(tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="nothing at"):
        SAOCodec.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CodecError, match="model_config.json"):
        SAOCodec.from_pretrained(tmp_path / "empty")
    no_vae = tmp_path / "no_vae"
    no_vae.mkdir()
    save_file({"model.model.x": torch.zeros(2)}, no_vae / "model.safetensors")
    with pytest.raises(CodecError, match="pretransform.model.encoder"):
        SAOCodec.from_pretrained(no_vae)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CodecError, match="cannot read"):
        SAOCodec.from_pretrained(corrupt)


def _rewrite(folder: Path, edit: Any) -> None:
    from safetensors.torch import load_file

    tensors = load_file(folder / "model.safetensors")
    edit(tensors)
    save_file(tensors, folder / "model.safetensors")


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    write_sat_checkpoint(folder)
    _rewrite(folder, lambda t: t.pop("pretransform.model.decoder.layers.2.layers.3.layers.1.bias"))
    with pytest.raises(CodecError, match=r"missing \(1\): decoder.block.1.res_unit2.conv1.bias"):
        SAOCodec.from_pretrained(folder)
    write_sat_checkpoint(folder)
    _rewrite(
        folder,
        lambda t: t.update({"pretransform.model.encoder.layers.1.layers.9.alpha": torch.zeros(3)}),
    )
    with pytest.raises(CodecError, match="does not know"):
        SAOCodec.from_pretrained(folder)
    write_sat_checkpoint(folder)
    config = sao_model_config(channels=2 * TINY)
    (folder / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(CodecError, match="shape"):
        SAOCodec.from_pretrained(folder)


def test_unsupported_config_is_refused(tmp_path: Path) -> None:
    config = sao_model_config(TINY)
    _pretransform_parts(config)[0]["use_snake"] = False
    with pytest.raises(CodecError, match="snake"):
        OobleckConfig.from_sat(config)


def test_load_codec(sat_dir: tuple[Path, dict[str, torch.Tensor]]) -> None:
    assert CODEC_NAMES == ("harmonic", "sao")
    assert isinstance(load_codec("harmonic"), HarmonicCodec)
    assert isinstance(load_codec("sao", sat_dir[0]), SAOCodec)
    with pytest.raises(CodecError, match="stable-audio-open-1.0"):
        load_codec("sao")
    with pytest.raises(CodecError, match="choose one of"):
        load_codec("mp3")
