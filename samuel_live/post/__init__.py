"""Post-processing: effect chains (pedalboard), loudness normalisation and a true-peak ceiling.

``spec`` checks chains (pure, safe on the network thread), ``plugins`` decides where VST3
effects may load from, ``chain`` builds and runs them.
"""

from samuel_live.post.chain import CEILING_DBTP, MAX_GAIN_DB, PostChain, build_chain
from samuel_live.post.plugins import plugin_roots, resolve_plugin, system_vst3_dirs
from samuel_live.post.spec import (
    EFFECT_TYPES,
    MAX_CHAIN_JSON_BYTES,
    MAX_EFFECTS,
    PRESETS,
    chain_from_json,
    check_post,
    validate_chain,
    validate_effect,
)

__all__ = [
    "CEILING_DBTP",
    "EFFECT_TYPES",
    "MAX_CHAIN_JSON_BYTES",
    "MAX_EFFECTS",
    "MAX_GAIN_DB",
    "PRESETS",
    "PostChain",
    "build_chain",
    "chain_from_json",
    "check_post",
    "plugin_roots",
    "resolve_plugin",
    "system_vst3_dirs",
    "validate_chain",
    "validate_effect",
]
