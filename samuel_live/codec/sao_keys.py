"""Stable Audio Open's VAE weights under diffusers' names: the key mapping from the SAT layout
(``pretransform.model.encoder.layers.3.layers.1.layers.1.weight_g``) to diffusers'
``AutoencoderOobleck`` (``encoder.block.2.res_unit2.conv1.weight_g``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

_RES_UNIT = ("snake1", "conv1", "snake2", "conv2")


def sat_to_diffusers_key(key: str, depth: int) -> str | None:
    """Map an SAT Oobleck name (``encoder.layers.3.layers.1.layers.1.weight_g``) to diffusers'
    (``encoder.block.2.res_unit2.conv1.weight_g``); None if it is not an Oobleck VAE name."""
    parts = key.split(".")
    if len(parts) < 4 or parts[0] not in ("encoder", "decoder") or parts[1] != "layers":
        return None
    side, param = parts[0], parts[-1]
    try:
        index, inner = int(parts[2]), [int(p) for p in parts[3:-1] if p != "layers"]
    except ValueError:
        return None
    if index == 0 and not inner:
        module = "conv1"
    elif index == depth + 1 and not inner:
        module = "snake1"
    elif index == depth + 2 and not inner:
        module = "conv2"
    elif 1 <= index <= depth:
        module = _block_module(side, inner)
        if module is None:
            return None
        module = f"block.{index - 1}.{module}"
    else:
        return None
    return f"{side}.{module}.{param}"


def _block_module(side: str, inner: list[int]) -> str | None:
    """The diffusers name inside one encoder/decoder block for SAT's nested layer indices."""
    first_res = 0 if side == "encoder" else 2
    heads = {"encoder": {3: "snake1", 4: "conv1"}, "decoder": {0: "snake1", 1: "conv_t1"}}[side]
    if len(inner) == 1 and inner[0] in heads:
        return heads[inner[0]]
    if len(inner) == 2 and first_res <= inner[0] < first_res + 3 and 0 <= inner[1] < 4:
        return f"res_unit{inner[0] - first_res + 1}.{_RES_UNIT[inner[1]]}"
    return None


def convert_sat_state_dict(
    tensors: Mapping[str, torch.Tensor], depth: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """SAT-named VAE tensors renamed (and snake params reshaped) for diffusers.

    Returns the converted dict and the SAT names that have no diffusers counterpart.
    """
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in tensors.items():
        name = sat_to_diffusers_key(key, depth)
        if name is None:
            unknown.append(key)
            continue
        if name.endswith((".alpha", ".beta")):
            tensor = tensor.reshape(1, -1, 1)  # SAT keeps (C,), diffusers (1, C, 1)
        converted[name] = tensor
    return converted, unknown
