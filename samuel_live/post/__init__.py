"""Post-processing: effect chains (pedalboard), loudness normalisation and a true-peak ceiling."""

from samuel_live.post.chain import (
    CEILING_DBTP,
    EFFECT_TYPES,
    MAX_GAIN_DB,
    PRESETS,
    PostChain,
    build_chain,
    chain_from_json,
    validate_chain,
    validate_effect,
)

__all__ = [
    "CEILING_DBTP",
    "EFFECT_TYPES",
    "MAX_GAIN_DB",
    "PRESETS",
    "PostChain",
    "build_chain",
    "chain_from_json",
    "validate_chain",
    "validate_effect",
]
